"""Where a task stands: the statuses the counters in Redis are kept by (no pydantic here, so
the CLI can name them before it loads the models)."""

from __future__ import annotations

from enum import StrEnum


class TaskStatus(StrEnum):
    """Where a task stands; the counters in Redis are kept per status.

    ``waiting`` is a task whose attempt failed and that waits out its retry backoff until
    ``retry_at``; from then on it is ``available`` (reads say so at once, by Redis time).
    """

    BLOCKED = "blocked"
    AVAILABLE = "available"
    WAITING = "waiting"
    CLAIMED = "claimed"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"


ACTIVE_STATUSES = (TaskStatus.CLAIMED, TaskStatus.IN_PROGRESS)
