"""A task as its Redis hash, and as the JSON object ``submit_plan.lua`` stores in it."""

from __future__ import annotations

import json
from typing import Any

from distributor.reservations.models import script_entries
from distributor.store.codec import decode_map
from distributor.tasks.models import Task, ms_to_datetime
from distributor.tasks.status import TaskStatus

_TIME_FIELDS = (
    "created_at",
    "claimed_at",
    "started_at",
    "completed_at",
    "failed_at",
    "lease_expires_at",
    "retry_at",
)


def task_from_hash(raw: Any, unmet: list[str] | None = None) -> Task:
    """Build a :class:`Task` from its Redis hash.

    Every field was validated when the task was submitted, and Redis holds only what the
    scripts wrote, so the model is built without validating it again (``model_construct``):
    that saves ~40% of this function, which runs on every claim and completion
    (docs/benchmarks.md).
    """
    h = decode_map(raw)
    fields: dict[str, Any] = {
        "id": h["id"],
        "title": h["title"],
        "description": h.get("description", ""),
        "files": json.loads(h.get("files") or "[]"),
        "shared_files": json.loads(h.get("shared_files") or "[]"),
        "dependencies": json.loads(h.get("dependencies") or "[]"),
        "priority": int(h.get("priority") or 0),
        "estimated_minutes": int(h["estimated_minutes"]) if h.get("estimated_minutes") else None,
        "max_attempts": int(h.get("max_attempts") or 3),
        "lease_seconds": int(h["lease_ms"]) / 1000 if h.get("lease_ms") else None,
        "status": TaskStatus(h["status"]),
        "agent_id": h.get("agent_id") or None,
        "attempts": int(h.get("attempts") or 0),
        "token": int(h.get("token") or 0),
        "last_error": h.get("last_error") or None,
        "discovered_from": h.get("discovered_from") or None,
        "related": json.loads(h["related"]) if h.get("related") else [],
        "unmet_dependencies": sorted(unmet or []),
    }
    for name in _TIME_FIELDS:
        fields[name] = ms_to_datetime(h.get(name))
    return Task.model_construct(**fields)


def plan_payload(tasks: list[Task], default_lease_ms: int) -> str:
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


def task_to_script(task: Task, default_lease_ms: int) -> dict[str, Any]:
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
