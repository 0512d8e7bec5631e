"""swarmqueue's task graph: a Redis-backed DAG of tasks that AI coding agents claim and finish.

Names are imported on first use (PEP 562), so ``import distributor.tasks.models`` or the CLI
does not pay for the asyncio client, messaging and the settings unless it uses them.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from distributor.errors import (
        DependencyCycle,
        DuplicateTask,
        FilesReserved,
        InvalidTransition,
        RedisUnavailable,
        RequestIdReused,
        StaleClaim,
        SwarmQueueError,
        TaskNotFound,
        UnknownDependency,
        ValidationError,
    )
    from distributor.planning.distributor import BroadcastSummary, WorkDistributor
    from distributor.reservations.models import Reservation
    from distributor.settings import Settings
    from distributor.tasks.aio import AsyncTaskQueue
    from distributor.tasks.models import (
        Claim,
        ClaimResult,
        Completion,
        Event,
        FailOutcome,
        NextClaim,
        Task,
    )
    from distributor.tasks.queue import TaskQueue
    from distributor.tasks.specs import Plan, TaskSpec
    from distributor.tasks.status import TaskStatus

_HOMES = {
    "AsyncTaskQueue": "distributor.tasks.aio",
    "BroadcastSummary": "distributor.planning.distributor",
    "WorkDistributor": "distributor.planning.distributor",
    "TaskQueue": "distributor.tasks.queue",
    "Settings": "distributor.settings",
    "Reservation": "distributor.reservations.models",
    **dict.fromkeys(
        (
            "Claim",
            "ClaimResult",
            "Completion",
            "Event",
            "FailOutcome",
            "NextClaim",
            "Task",
        ),
        "distributor.tasks.models",
    ),
    **dict.fromkeys(("Plan", "TaskSpec"), "distributor.tasks.specs"),
    "TaskStatus": "distributor.tasks.status",
    **dict.fromkeys(
        (
            "DependencyCycle",
            "DuplicateTask",
            "FilesReserved",
            "InvalidTransition",
            "RedisUnavailable",
            "RequestIdReused",
            "StaleClaim",
            "SwarmQueueError",
            "TaskNotFound",
            "UnknownDependency",
            "ValidationError",
        ),
        "distributor.errors",
    ),
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'distributor' has no attribute {name!r}")
    value = getattr(import_module(home), name)
    globals()[name] = value
    return value


__all__ = [
    "AsyncTaskQueue",
    "BroadcastSummary",
    "Claim",
    "ClaimResult",
    "Completion",
    "DependencyCycle",
    "DuplicateTask",
    "Event",
    "FailOutcome",
    "FilesReserved",
    "InvalidTransition",
    "NextClaim",
    "Plan",
    "RedisUnavailable",
    "RequestIdReused",
    "Reservation",
    "Settings",
    "StaleClaim",
    "SwarmQueueError",
    "Task",
    "TaskNotFound",
    "TaskQueue",
    "TaskSpec",
    "TaskStatus",
    "UnknownDependency",
    "ValidationError",
    "WorkDistributor",
]
