"""swarmqueue's task graph: a Redis-backed DAG of tasks that AI coding agents claim and finish."""

from distributor.aio import AsyncTaskQueue
from distributor.distributor import BroadcastSummary, WorkDistributor
from distributor.errors import (
    DependencyCycle,
    DuplicateTask,
    InvalidTransition,
    RedisUnavailable,
    StaleClaim,
    SwarmQueueError,
    TaskNotFound,
    UnknownDependency,
    ValidationError,
)
from distributor.models import (
    Claim,
    ClaimResult,
    Completion,
    Event,
    FailOutcome,
    Plan,
    Task,
    TaskStatus,
)
from distributor.queue import TaskQueue
from distributor.settings import Settings

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
    "InvalidTransition",
    "Plan",
    "RedisUnavailable",
    "Settings",
    "StaleClaim",
    "SwarmQueueError",
    "Task",
    "TaskNotFound",
    "TaskQueue",
    "TaskStatus",
    "UnknownDependency",
    "ValidationError",
    "WorkDistributor",
]
