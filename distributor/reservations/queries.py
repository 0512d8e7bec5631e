"""Reading the live reservations of a swarm (one round trip, by Redis time)."""

from __future__ import annotations

import json
from typing import Any

from distributor.reservations.models import Reservation, from_script
from distributor.store import codec
from distributor.store.calls import Batch, Command, Op, text
from distributor.store.keys import SwarmKeys


def live(keys: SwarmKeys) -> Op[list[Reservation]]:
    """Every live reservation, soonest to expire first (expired ones not yet dropped are left
    out: they hold nothing)."""
    time_reply, clock, records, expiries = yield Batch(
        (
            Command(("TIME",)),
            Command(("GET", keys.clock)),
            Command(("HGETALL", keys.resv_all)),
            Command(("ZRANGE", keys.resv_exp, 0, -1, "WITHSCORES")),
        )
    )
    now = codec.redis_now_ms(time_reply, clock)
    by_id = codec.decode_map(records)
    found = []
    for rid, score in _pairs(expiries):
        raw = by_id.get(rid)
        if raw is None or score <= now:
            continue
        found.append(from_script({**json.loads(raw), "id": rid, "x": score}))
    return found


def _pairs(reply: list[Any]) -> list[tuple[str, float]]:
    """A ``WITHSCORES`` reply as (member, score): flat, or already paired by the client."""
    if reply and isinstance(reply[0], list | tuple):
        return [(text(m), float(s)) for m, s in reply]
    return [(text(m), float(s)) for m, s in zip(reply[::2], reply[1::2], strict=True)]
