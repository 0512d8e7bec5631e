"""The task graph's replies: tasks, and the results of claims and completions.

Plain records (:mod:`distributor.records`): Redis holds only what the scripts wrote, so a reply
is read back without validating it again, and an agent's command never imports pydantic. What
enters the queue is validated first by :mod:`distributor.tasks.specs` (limits below).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from distributor.records import Record, field
from distributor.reservations.models import Reservation
from distributor.tasks.status import TaskStatus

MAX_TITLE = 200
MAX_DESCRIPTION = 10_000
MAX_FILES = 100
MAX_DEPENDENCIES = 100
MAX_PLAN_TASKS = 10_000
MAX_PRIORITY = 1_000
MAX_LEASE_SECONDS = 7 * 24 * 3600


class Task(Record):
    """One unit of work: what to do (given by the planner) and where it stands (kept by Redis).

    A plan may list ``Task`` objects: they are validated when submitted, as
    :class:`~distributor.tasks.specs.TaskSpec`, and their state fields are ignored.
    """

    id: str
    title: str
    description: str = ""
    # The paths the task changes (reserved exclusively while it is claimed) and those it only
    # reads (reserved shared); normalised, see distributor.reservations.patterns.
    files: list[str] = field(default_factory=list)
    shared_files: list[str] = field(default_factory=list)
    dependencies: list[str] = field(default_factory=list)
    priority: int = 0
    estimated_minutes: int | None = None
    max_attempts: int = 3
    lease_seconds: float | None = None
    # Soft links of a task added at runtime (``TaskQueue.add_task``); they never block.
    discovered_from: str | None = None
    related: list[str] = field(default_factory=list)

    # State, kept by Redis.
    status: TaskStatus = TaskStatus.BLOCKED
    agent_id: str | None = None
    attempts: int = 0
    token: int = 0
    created_at: datetime | None = None
    claimed_at: datetime | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    failed_at: datetime | None = None
    lease_expires_at: datetime | None = None
    retry_at: datetime | None = None
    last_error: str | None = None
    unmet_dependencies: list[str] = field(default_factory=list)


class Claim(Record):
    """A held claim: the task and the fencing token that proves who holds it."""

    task: Task
    token: int

    @property
    def task_id(self) -> str:
        return self.task.id


ClaimRefusal = Literal[
    "not_found", "already_claimed", "blocked", "waiting", "not_available", "reserved"
]


class ClaimResult(Record):
    """The answer to a claim of one named task.

    ``claimed`` is False for exactly one ``reason``:
    ``not_found`` (no such task), ``already_claimed`` (another claim holds it),
    ``blocked`` (a dependency is unfinished), ``waiting`` (in a retry backoff until
    ``task.retry_at``), ``not_available`` (completed or failed) or ``reserved`` (another
    agent's live reservation conflicts with the task's files: ``holders`` names them).
    """

    claimed: bool
    reason: ClaimRefusal | None = None
    claim: Claim | None = None
    task: Task | None = None
    holders: list[Reservation] = field(default_factory=list)


class NextClaim(Record):
    """The answer to ``claim_next`` in full: the claim, or why there is none.

    Without a claim, ``holders`` are the live reservations of other agents that kept the ready
    tasks ``skipped`` (empty when simply nothing was ready), and ``next_due`` is when a retry
    backoff, a lease or one of those reservations next ends.
    """

    claim: Claim | None = None
    holders: list[Reservation] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    next_due: datetime | None = None

    @property
    def held_up(self) -> bool:
        """True when ready tasks exist but their files are held by other agents."""
        return self.claim is None and bool(self.skipped)


class Completion(Record):
    """A finished task, the dependents its completion made available, and (when asked with
    ``claim_next=True``) the agent's next claim, taken in the same atomic step."""

    task: Task
    unblocked: list[str]
    next: Claim | None = None


class FailOutcome(Record):
    """What a reported failure did: retry later, or give up."""

    task: Task
    will_retry: bool
    retry_at: datetime | None = None


class Event(Record):
    """One entry of the swarm's event log (a Redis Stream entry)."""

    id: str
    type: str
    task_id: str
    agent_id: str | None = None
    at: datetime
    data: dict[str, str] = field(default_factory=dict)

    @property
    def unblocked(self) -> list[str]:
        raw = self.data.get("unblocked", "")
        return raw.split(",") if raw else []


def ms_to_datetime(value: Any) -> datetime | None:
    """Convert Redis milliseconds (str, bytes or int; empty means unset) to an aware datetime."""
    if value is None or value in ("", b""):
        return None
    return datetime.fromtimestamp(int(value) / 1000, tz=UTC)
