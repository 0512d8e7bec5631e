"""Replies as plain records: what Redis holds, read back without validating it again.

What enters the queue is validated by pydantic models at the boundary
(:mod:`distributor.tasks.specs`, :mod:`distributor.reservations.requests`). What comes back
was written by our own scripts, so it is held in frozen dataclasses: an agent's command does
not import pydantic, and the hot path builds a task without a validator (docs/benchmarks.md).
They keep pydantic's ``model_dump``, so replies serialise the way the rest of the API does.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from enum import Enum
from typing import Any, Literal


class Record:
    """Base of the reply dataclasses: ``model_dump`` as pydantic's, for the fields they have."""

    __slots__ = ()

    def model_dump(
        self, *, mode: Literal["python", "json"] = "python", exclude: Collection[str] = ()
    ) -> dict[str, Any]:
        """The fields as a dict, nested records too; ``mode="json"`` gives JSON values
        (datetimes as ISO 8601 with ``Z`` for UTC, enums as their values), as pydantic does."""
        as_json = mode == "json"
        names: dict[str, Any] = type(self).__dataclass_fields__  # type: ignore[attr-defined]
        return {n: _dumped(getattr(self, n), as_json) for n in names if n not in exclude}


def _dumped(value: Any, as_json: bool) -> Any:
    if isinstance(value, Record):
        return value.model_dump(mode="json" if as_json else "python")
    if isinstance(value, list | tuple):
        return [_dumped(v, as_json) for v in value]
    if isinstance(value, dict):
        return {k: _dumped(v, as_json) for k, v in value.items()}
    if as_json:
        if isinstance(value, datetime):
            text = value.isoformat()
            return text[:-6] + "Z" if text.endswith("+00:00") else text
        if isinstance(value, Enum):
            return value.value
    return value
