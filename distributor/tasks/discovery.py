"""Work discovered at runtime: one task added to a live swarm, with its links.

An agent that finds more work while doing a task adds it where it belongs in the graph:
``depends_on`` tasks it must wait for (already completed ones count as met), ``blocks`` a task
not yet claimed that must now wait for it, and soft links that never block: ``discovered_from``
(the task whose work turned it up) and ``related``. ``lua/add_task.lua`` checks and writes it
in one step, so a refusal (unknown task, a claimed ``blocks``, a cycle) writes nothing.

Combining ``blocks`` with ``depends_on`` puts the new task between two others; that is also the
only way an added task can close a cycle (its ``depends_on`` waiting, through others, on
``blocks``), refused with :class:`~distributor.errors.WouldCreateCycle`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, NamedTuple

from distributor.errors import (
    CannotBlockTask,
    DependencyCycle,
    DuplicateTask,
    UnknownDependency,
    UnknownLinkedTask,
    ValidationError,
    WouldCreateCycle,
)
from distributor.tasks.hashes import task_to_script
from distributor.tasks.ids import check_agent_id, check_task_id, validated

if TYPE_CHECKING:
    from distributor.tasks.specs import TaskSpec

UNNAMED = "new task"  # how errors name a task whose id the script has not made yet
_PLACEHOLDER_ID = "new-task"
_FIELD_NAMES = {"dependencies": "depends_on"}  # Task's field -> the name add_task takes


class NewTask(NamedTuple):
    """A validated task to add: its fields, whether its id was given, and its hard links."""

    task: TaskSpec
    id_given: bool
    blocks: str | None
    agent_id: str | None

    @property
    def name(self) -> str:
        """How messages name the task (its id, or "new task" when the script makes one)."""
        return self.task.id if self.id_given else UNNAMED


def _listed(value: Iterable[str]) -> list[str]:
    """A list of ids or paths; one string counts as one item (not as its characters)."""
    return [value] if isinstance(value, str) else list(value)


def _twice(ids: Iterable[str], what: str) -> None:
    seen: set[str] = set()
    for i in ids:
        if i in seen:
            raise ValidationError(f"{what} lists {i!r} twice")
        seen.add(i)


def new_task(
    title: str,
    *,
    task_id: str | None = None,
    description: str = "",
    files: Iterable[str] = (),
    priority: int = 0,
    estimated_minutes: int | None = None,
    max_attempts: int = 3,
    lease_seconds: float | None = None,
    depends_on: Iterable[str] = (),
    blocks: str | None = None,
    discovered_from: str | None = None,
    related: Iterable[str] = (),
    agent_id: str | None = None,
) -> NewTask:
    """Validate a task to add (the limits of a plan's tasks apply); raise before any I/O.

    Wrong whatever the swarm holds, so refused here: a bad field, an id listed twice, a task
    that depends on or blocks itself, or blocks a task it also depends on
    (``DependencyCycle``), a soft link to itself.
    """
    from pydantic import ValidationError as PydanticValidationError  # pydantic: only to add

    from distributor.tasks.specs import TaskSpec

    deps, rel = _listed(depends_on), _listed(related)
    _twice(deps, "depends_on")
    _twice(rel, "related")
    if blocks is not None:
        validated(check_task_id, blocks)
    if agent_id is not None:
        validated(check_agent_id, agent_id)
    try:
        task = TaskSpec.model_validate(
            {
                "id": _PLACEHOLDER_ID if task_id is None else task_id,
                "title": title,
                "description": description,
                "files": _listed(files),
                "dependencies": deps,
                "priority": priority,
                "estimated_minutes": estimated_minutes,
                "max_attempts": max_attempts,
                "lease_seconds": lease_seconds,
                "discovered_from": discovered_from,
                "related": rel,
            }
        )
    except PydanticValidationError as exc:
        first = exc.errors()[0]
        loc = [_FIELD_NAMES.get(str(p), str(p)) for p in first["loc"]]
        msg = str(first["msg"]).removeprefix("Value error, ")
        where = ".".join(loc)
        raise ValidationError(f"{where}: {msg}" if where else msg) from None
    new = NewTask(task, task_id is not None, blocks, agent_id)
    name = new.name
    if task_id is not None and (task_id in deps or task_id == blocks):
        raise DependencyCycle([task_id, task_id])
    if blocks is not None and blocks in deps:
        raise DependencyCycle([name, blocks, name])
    if task_id is not None and (task_id == discovered_from or task_id in rel):
        raise ValidationError(f"task {task_id!r} cannot link to itself")
    return new


def script_payload(new: NewTask, default_lease_seconds: float) -> str:
    """The JSON object ``lua/add_task.lua`` takes (ARGV[6])."""
    t = new.task
    payload: dict[str, Any] = task_to_script(t, round(default_lease_seconds * 1000))
    payload.update(
        id=t.id if new.id_given else "",
        blocks=new.blocks or "",
        discovered_from=t.discovered_from or "",
        related=json.dumps(t.related),
        related_ids=t.related,
        agent=new.agent_id or "",
    )
    return json.dumps(payload)


def raise_refusal(new: NewTask, status: str, body: dict[str, Any]) -> None:
    """Raise the typed error for a refusal of ``lua/add_task.lua`` (nothing was written)."""
    if status == "ok":
        return
    if status == "duplicate":
        raise DuplicateTask(list(body["ids"]))
    if status == "unknown_dependency":
        raise UnknownDependency(new.name, str(body["dependency"]))
    if status == "unknown_link":
        raise UnknownLinkedTask(str(body["link"]), str(body["task"]))
    if status == "not_blockable":
        raise CannotBlockTask(str(body["task"]), str(body["status"]), body.get("agent"))
    if status == "cycle":
        raise WouldCreateCycle([str(i) or UNNAMED for i in body["cycle"]])
    raise RuntimeError(f"unexpected reply from add_task: {status}")  # a script/code mismatch
