"""What a planner gives: a task to add and a plan, validated before a single Redis command.

Everything that enters the task graph passes through these pydantic models, so a hostile or
malformed id is refused at the boundary; the replies are plain records
(:mod:`distributor.tasks.models`). Imported only by the operations that take new tasks.
"""

from __future__ import annotations

import graphlib
import re
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from distributor.errors import DependencyCycle, DuplicateInPlan
from distributor.reservations.requests import FilePattern
from distributor.tasks.ids import check_agent_id, check_task_id
from distributor.tasks.models import (
    MAX_DEPENDENCIES,
    MAX_DESCRIPTION,
    MAX_FILES,
    MAX_LEASE_SECONDS,
    MAX_PLAN_TASKS,
    MAX_PRIORITY,
    MAX_TITLE,
    Task,
)
from distributor.validation import single_line, validated_as

_CONTROL_EXCEPT_WS_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _text(value: str) -> str:
    if _CONTROL_EXCEPT_WS_RE.search(value):
        raise ValueError("must not contain control characters other than newline and tab")
    return value


TaskId = Annotated[str, AfterValidator(check_task_id)]
AgentId = Annotated[str, AfterValidator(check_agent_id)]
SingleLine = Annotated[str, AfterValidator(single_line)]


class TaskSpec(BaseModel):
    """A task as a planner gives it: the fields of :class:`~distributor.tasks.models.Task` that
    say what to do, validated. The state fields of a ``Task`` (or of its dump, such as
    ``swarmqueue tasks --json`` prints) are kept by Redis and ignored here."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: TaskId
    title: Annotated[SingleLine, Field(min_length=1, max_length=MAX_TITLE)]
    description: Annotated[str, AfterValidator(_text), Field(max_length=MAX_DESCRIPTION)] = ""
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
    discovered_from: TaskId | None = None
    related: Annotated[list[TaskId], Field(max_length=MAX_DEPENDENCIES)] = Field(
        default_factory=list
    )
    # (list defaults are factories: pydantic deep-copies a literal [] for every task built)

    @model_validator(mode="before")
    @classmethod
    def _given_fields(cls, data: Any) -> Any:
        """A ``Task`` as its given fields; a dict without the state fields Redis keeps."""
        if isinstance(data, Task):
            return {name: getattr(data, name) for name in cls.model_fields}
        if isinstance(data, dict) and not _STATE_FIELDS.isdisjoint(data):
            return {k: v for k, v in data.items() if k not in _STATE_FIELDS}
        return data

    @model_validator(mode="after")
    def _unique_dependencies(self) -> TaskSpec:
        if len(set(self.dependencies)) != len(self.dependencies):
            raise ValueError(f"task {self.id!r} lists a dependency twice")
        return self


_STATE_FIELDS = frozenset(Task._fields) - set(TaskSpec.model_fields)


class Plan(BaseModel):
    """A set of tasks submitted together, all or nothing."""

    model_config = ConfigDict(extra="forbid")

    tasks: Annotated[list[TaskSpec], Field(min_length=1, max_length=MAX_PLAN_TASKS)]
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


def parse_plan(plan: Plan | dict[str, Any] | list[Any]) -> Plan:
    """Validate a plan (model, ``{"tasks": [...]}`` or a bare list of tasks)."""
    if isinstance(plan, Plan):
        return plan
    return validated_as(Plan, {"tasks": plan} if isinstance(plan, list) else plan)


def check_plan(plan: Plan) -> list[TaskSpec]:
    """The plan's tasks in their given order, after refusing duplicate ids and cycles."""
    by_id: dict[str, TaskSpec] = {}
    dups: set[str] = set()
    for task in plan.tasks:
        if task.id in by_id:
            dups.add(task.id)
        by_id[task.id] = task
    if dups:
        raise DuplicateInPlan(sorted(dups))
    earlier: set[str] = set()
    for task in plan.tasks:  # the usual plan lists dependencies first: then it has no cycle
        if any(d in by_id and d not in earlier for d in task.dependencies):
            break
        earlier.add(task.id)
    else:
        return plan.tasks
    sorter = graphlib.TopologicalSorter({t.id: t.dependencies for t in plan.tasks})
    try:
        sorter.prepare()
    except graphlib.CycleError as exc:
        raise DependencyCycle(list(reversed(exc.args[1]))) from None
    return plan.tasks
