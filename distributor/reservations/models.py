"""What a reservation is, and the validated requests that create one."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from distributor.reservations.patterns import Pattern, normalise, parse
from distributor.tasks.ids import check_agent_id

MAX_PATTERNS = 100
MAX_REASON = 200
MAX_TTL_SECONDS = 7 * 24 * 3600
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _one_line(value: str) -> str:
    if _CONTROL_RE.search(value):
        raise ValueError("must not contain control characters")
    return value


FilePattern = Annotated[str, AfterValidator(normalise)]
"""A path, directory or glob as a task's ``files`` and reservations take it, normalised."""


class Reservation(BaseModel):
    """A live reservation: ``agent_id`` holds ``pattern`` until ``expires_at`` (Redis time).

    ``task_id`` names the claimed task that took it (``None``: an explicit ``reserve``);
    such a reservation ends with the claim and is extended by its heartbeats.
    """

    model_config = ConfigDict(frozen=True)

    id: str
    agent_id: str
    pattern: str
    shared: bool = False
    expires_at: datetime
    task_id: str | None = None
    reason: str = ""
    created_at: datetime | None = None

    @property
    def parsed(self) -> Pattern:
        return parse(self.pattern)

    @property
    def mode(self) -> str:
        return "shared" if self.shared else "exclusive"


class ReserveRequest(BaseModel):
    """An explicit reservation request, validated before anything is sent."""

    model_config = ConfigDict(extra="forbid")

    agent_id: Annotated[str, AfterValidator(check_agent_id)]
    patterns: Annotated[list[FilePattern], Field(min_length=1, max_length=MAX_PATTERNS)]
    ttl_seconds: Annotated[float, Field(gt=0, le=MAX_TTL_SECONDS)]
    shared: bool = False
    reason: Annotated[str, AfterValidator(_one_line), Field(max_length=MAX_REASON)] = ""


class UnreserveRequest(BaseModel):
    """Which explicit reservations of an agent to free (none named: all of them)."""

    model_config = ConfigDict(extra="forbid")

    agent_id: Annotated[str, AfterValidator(check_agent_id)]
    patterns: Annotated[list[FilePattern], Field(max_length=MAX_PATTERNS)] = []


def ms_to_datetime(value: Any) -> datetime:
    """Redis milliseconds (str, bytes, int or float) as an aware UTC datetime."""
    raw = value.decode() if isinstance(value, bytes) else value
    return datetime.fromtimestamp(int(float(raw)) / 1000, tz=UTC)


def script_entries(patterns: list[str], shared: list[bool]) -> str:
    """Patterns as the scripts take them: JSON ``[[kind, key, shared 0/1, text], ...]``."""
    entries = []
    for text, is_shared in zip(patterns, shared, strict=True):
        p = parse(text)
        entries.append([p.kind, p.key, 1 if is_shared else 0, p.text])
    return json.dumps(entries)


def from_script(raw: dict[str, Any]) -> Reservation:
    """A reservation as a script returns it: ``{id, a, k, p, s, t, d, r, c, x}``."""
    return Reservation(
        id=str(raw["id"]),
        agent_id=str(raw["a"]),
        pattern=str(raw["d"]),
        shared=bool(int(raw.get("s") or 0)),
        expires_at=ms_to_datetime(raw["x"]),
        task_id=str(raw["t"]) if raw.get("t") else None,
        reason=str(raw.get("r") or ""),
        created_at=ms_to_datetime(raw["c"]) if raw.get("c") else None,
    )
