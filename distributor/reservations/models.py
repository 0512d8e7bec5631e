"""What a reservation is, as the scripts return it (a plain record: no pydantic here; the
validated requests that create one are in :mod:`distributor.reservations.requests`)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from distributor.records import Record
from distributor.reservations.patterns import Pattern, parse


class Reservation(Record):
    """A live reservation: ``agent_id`` holds ``pattern`` until ``expires_at`` (Redis time).

    ``task_id`` names the claimed task that took it (``None``: an explicit ``reserve``);
    such a reservation ends with the claim and is extended by its heartbeats.
    """

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
