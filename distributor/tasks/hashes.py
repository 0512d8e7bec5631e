"""A task as its Redis hash, and as the JSON object ``submit_plan.lua`` stores in it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from distributor.records import built
from distributor.reservations.models import script_entries
from distributor.store.codec import decode_map
from distributor.tasks.models import Task
from distributor.tasks.status import TaskStatus

if TYPE_CHECKING:
    from distributor.tasks.specs import TaskSpec


def _list(raw: str | None) -> list[Any]:
    """A JSON list field (most are empty: no decoder call for those)."""
    return json.loads(raw) if raw and raw != "[]" else []


def _ms(raw: str | None) -> datetime | None:
    """A time field (Redis ms) as an aware datetime; unset: ``None``."""
    return datetime.fromtimestamp(int(raw) / 1000, tz=UTC) if raw else None


def task_from_hash(raw: Any, unmet: list[str] | None = None) -> Task:
    """Build a :class:`Task` from its Redis hash.

    Every field was validated when the task was submitted, and Redis holds only what the
    scripts wrote, so the record is built as it is read (:func:`built`): this runs twice per
    completion of an agent's loop (docs/benchmarks.md).
    """
    return _task(decode_map(raw), unmet)


def task_from_reply(h: dict[str, str]) -> Task:
    """:func:`task_from_hash` for a task of a script's JSON reply (its keys and values are
    ``str`` already)."""
    return _task(h, None)


def _task(h: dict[str, str], unmet: list[str] | None) -> Task:
    g = h.get
    return built(
        Task,
        {
            "id": h["id"],
            "title": h["title"],
            "description": g("description", ""),
            "files": _list(g("files")),
            "shared_files": _list(g("shared_files")),
            "dependencies": _list(g("dependencies")),
            "priority": int(g("priority") or 0),
            "estimated_minutes": int(h["estimated_minutes"]) if g("estimated_minutes") else None,
            "max_attempts": int(g("max_attempts") or 3),
            "lease_seconds": int(h["lease_ms"]) / 1000 if g("lease_ms") else None,
            "discovered_from": g("discovered_from") or None,
            "related": _list(g("related")),
            "status": TaskStatus(h["status"]),
            "agent_id": g("agent_id") or None,
            "attempts": int(g("attempts") or 0),
            "token": int(g("token") or 0),
            "created_at": _ms(g("created_at")),
            "claimed_at": _ms(g("claimed_at")),
            "started_at": _ms(g("started_at")),
            "completed_at": _ms(g("completed_at")),
            "failed_at": _ms(g("failed_at")),
            "lease_expires_at": _ms(g("lease_expires_at")),
            "retry_at": _ms(g("retry_at")),
            "last_error": g("last_error") or None,
            "unmet_dependencies": sorted(unmet) if unmet else [],
        },
    )


def plan_payload(tasks: Sequence[TaskSpec], default_lease_ms: int) -> str:
    """The JSON list ``submit_plan.lua`` takes: per task only what is set (a big plan's tasks
    are mostly defaults and empty lists), compact, the dependencies once (the script writes
    their JSON text)."""
    rows = []
    for task in tasks:
        lease_ms = round(task.lease_seconds * 1000) if task.lease_seconds else default_lease_ms
        row: dict[str, Any] = {
            "id": task.id,
            "title": task.title,
            "priority": task.priority,
            "max_attempts": task.max_attempts,
            "lease_ms": lease_ms,
        }
        if task.dependencies:
            row["deps"] = task.dependencies
        if task.description:
            row["description"] = task.description
        if task.estimated_minutes is not None:
            row["estimated_minutes"] = str(task.estimated_minutes)
        if task.files or task.shared_files:
            row["files"] = _json_list(task.files)
            row["shared_files"] = _json_list(task.shared_files)
            row["rkeys"] = script_entries(
                [*task.files, *task.shared_files],
                [False] * len(task.files) + [True] * len(task.shared_files),
            )
        rows.append(row)
    return json.dumps(rows, separators=(",", ":"))


def _json_list(values: list[str]) -> str:
    """``values`` as JSON text (most lists of a big plan are empty: no encoder call for them)."""
    return json.dumps(values) if values else "[]"


def task_to_script(task: TaskSpec, default_lease_ms: int) -> dict[str, Any]:
    """The JSON object ``submit_plan.lua`` expects for one task."""
    lease_ms = round(task.lease_seconds * 1000) if task.lease_seconds else default_lease_ms
    return {
        "id": task.id,
        "title": task.title,
        "description": task.description,
        "files": _json_list(task.files),
        "shared_files": _json_list(task.shared_files),
        "rkeys": script_entries(
            [*task.files, *task.shared_files],
            [False] * len(task.files) + [True] * len(task.shared_files),
        )
        if task.files or task.shared_files
        else "",
        "dependencies": _json_list(task.dependencies),
        "deps": task.dependencies,
        "priority": task.priority,
        "estimated_minutes": "" if task.estimated_minutes is None else str(task.estimated_minutes),
        "max_attempts": task.max_attempts,
        "lease_ms": lease_ms,
    }
