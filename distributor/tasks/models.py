"""The task graph's data: tasks, plans and the results of claims and completions.

Everything that enters the queue passes through these pydantic models first, so a hostile or
malformed id is refused before a single Redis command is sent.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from pydantic import ValidationError as PydanticValidationError

from distributor.errors import ValidationError
from distributor.reservations.models import FilePattern, Reservation
from distributor.tasks.ids import check_agent_id, check_task_id
from distributor.tasks.status import TaskStatus

T = TypeVar("T")

_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROL_EXCEPT_WS_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")

MAX_TITLE = 200
MAX_DESCRIPTION = 10_000
MAX_FILES = 100
MAX_DEPENDENCIES = 100
MAX_PLAN_TASKS = 10_000
MAX_PRIORITY = 1_000
MAX_LEASE_SECONDS = 7 * 24 * 3600


def _single_line(value: str) -> str:
    if _CONTROL_RE.search(value):
        raise ValueError("must not contain control characters")
    return value


def _text(value: str) -> str:
    if _CONTROL_EXCEPT_WS_RE.search(value):
        raise ValueError("must not contain control characters other than newline and tab")
    return value


TaskId = Annotated[str, AfterValidator(check_task_id)]
AgentId = Annotated[str, AfterValidator(check_agent_id)]
SingleLine = Annotated[str, AfterValidator(_single_line)]


class Task(BaseModel):
    """One unit of work: what to do (given by the planner) and where it stands (kept by Redis)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: TaskId
    title: Annotated[SingleLine, Field(min_length=1, max_length=MAX_TITLE)]
    description: Annotated[str, AfterValidator(_text), Field(max_length=MAX_DESCRIPTION)] = ""
    # The paths the task changes (reserved exclusively while it is claimed) and those it only
    # reads (reserved shared); normalised, see distributor.reservations.patterns.
    files: Annotated[list[FilePattern], Field(max_length=MAX_FILES)] = Field(default_factory=list)
    shared_files: Annotated[list[FilePattern], Field(max_length=MAX_FILES)] = Field(
        default_factory=list
    )
    dependencies: Annotated[list[TaskId], Field(max_length=MAX_DEPENDENCIES)] = Field(
        default_factory=list
    )
    priority: Annotated[int, Field(ge=-MAX_PRIORITY, le=MAX_PRIORITY)] = 0
    estimated_minutes: Annotated[int, Field(ge=0, le=100_000)] | None = None
    max_attempts: Annotated[int, Field(ge=1, le=100)] = 3
    lease_seconds: Annotated[float, Field(gt=0, le=MAX_LEASE_SECONDS)] | None = None
    # Soft links of a task added at runtime (``TaskQueue.add_task``); they never block.
    discovered_from: TaskId | None = None
    related: Annotated[list[TaskId], Field(max_length=MAX_DEPENDENCIES)] = Field(
        default_factory=list
    )

    # (list defaults are factories: pydantic deep-copies a literal [] for every task built)
    # State, kept by Redis; ignored when a task is submitted.
    status: TaskStatus = TaskStatus.BLOCKED
    agent_id: AgentId | None = None
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
    unmet_dependencies: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_dependencies(self) -> Task:
        if len(set(self.dependencies)) != len(self.dependencies):
            raise ValueError(f"task {self.id!r} lists a dependency twice")
        return self


class Plan(BaseModel):
    """A set of tasks submitted together, all or nothing."""

    model_config = ConfigDict(extra="forbid")

    tasks: Annotated[list[Task], Field(min_length=1, max_length=MAX_PLAN_TASKS)]
    lease_seconds: Annotated[float, Field(gt=0, le=MAX_LEASE_SECONDS)] | None = None

    @model_validator(mode="after")
    def _no_soft_links(self) -> Plan:
        for task in self.tasks:
            if task.discovered_from is not None or task.related:
                raise ValueError(
                    f"task {task.id!r}: discovered_from and related are set when a task is "
                    "added to a live swarm (swarmqueue add), not in a plan"
                )
        return self


class Claim(BaseModel):
    """A held claim: the task and the fencing token that proves who holds it."""

    model_config = ConfigDict(frozen=True)

    task: Task
    token: int

    @property
    def task_id(self) -> str:
        return self.task.id


ClaimRefusal = Literal[
    "not_found", "already_claimed", "blocked", "waiting", "not_available", "reserved"
]


class ClaimResult(BaseModel):
    """The answer to a claim of one named task.

    ``claimed`` is False for exactly one ``reason``:
    ``not_found`` (no such task), ``already_claimed`` (another claim holds it),
    ``blocked`` (a dependency is unfinished), ``waiting`` (in a retry backoff until
    ``task.retry_at``), ``not_available`` (completed or failed) or ``reserved`` (another
    agent's live reservation conflicts with the task's files: ``holders`` names them).
    """

    model_config = ConfigDict(frozen=True)

    claimed: bool
    reason: ClaimRefusal | None = None
    claim: Claim | None = None
    task: Task | None = None
    holders: list[Reservation] = []


class NextClaim(BaseModel):
    """The answer to ``claim_next`` in full: the claim, or why there is none.

    Without a claim, ``holders`` are the live reservations of other agents that kept the ready
    tasks ``skipped`` (empty when simply nothing was ready), and ``next_due`` is when a retry
    backoff, a lease or one of those reservations next ends.
    """

    model_config = ConfigDict(frozen=True)

    claim: Claim | None = None
    holders: list[Reservation] = []
    skipped: list[str] = []
    next_due: datetime | None = None

    @property
    def held_up(self) -> bool:
        """True when ready tasks exist but their files are held by other agents."""
        return self.claim is None and bool(self.skipped)


class Completion(BaseModel):
    """A finished task, the dependents its completion made available, and (when asked with
    ``claim_next=True``) the agent's next claim, taken in the same atomic step."""

    model_config = ConfigDict(frozen=True)

    task: Task
    unblocked: list[str]
    next: Claim | None = None


class FailOutcome(BaseModel):
    """What a reported failure did: retry later, or give up."""

    model_config = ConfigDict(frozen=True)

    task: Task
    will_retry: bool
    retry_at: datetime | None = None


class Event(BaseModel):
    """One entry of the swarm's event log (a Redis Stream entry)."""

    model_config = ConfigDict(frozen=True)

    id: str
    type: str
    task_id: str
    agent_id: str | None = None
    at: datetime
    data: dict[str, str] = {}

    @property
    def unblocked(self) -> list[str]:
        raw = self.data.get("unblocked", "")
        return raw.split(",") if raw else []


def validation_error(exc: PydanticValidationError) -> ValidationError:
    """Our :class:`ValidationError` naming pydantic's first bad field (and how many more)."""
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    msg = str(first["msg"]).removeprefix("Value error, ")
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return ValidationError(f"{where}: {msg}{more}" if where else f"{msg}{more}")


def ms_to_datetime(value: Any) -> datetime | None:
    """Convert Redis milliseconds (str, bytes or int; empty means unset) to an aware datetime."""
    if value is None or value in ("", b""):
        return None
    return datetime.fromtimestamp(int(value) / 1000, tz=UTC)
