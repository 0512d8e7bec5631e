"""Counters of what went wrong after a transition committed, kept in the swarm's ``counters``
hash so any process (and an operator with ``redis-cli HGETALL``) can read them.

A transition's result is never turned into an error by what follows it (an announcement, the
enqueue of a delivery job, waiting for replicas): those failures are logged with their reason
and counted here, field ``<kind>`` (a count) and ``<kind>:last`` (the last reason, one short
line). Kinds: ``announce_failed``, ``enqueue_failed``, ``under_replicated``. Counting is
best effort: when the store itself cannot be reached the count is lost and the log line says so.
"""

from __future__ import annotations

from typing import Literal

import redis
from redis.exceptions import RedisClusterException

from distributor.log import get_logger
from distributor.store.calls import text
from distributor.store.connect import AsyncRedis, SyncRedis
from distributor.store.keys import SwarmKeys

log = get_logger(__name__)

CounterKind = Literal["announce_failed", "enqueue_failed", "under_replicated"]
KINDS: tuple[CounterKind, ...] = ("announce_failed", "enqueue_failed", "under_replicated")
_REASON_CHARS = 200


def count(client: SyncRedis, keys: SwarmKeys, kind: CounterKind, reason: str) -> None:
    """Add one to ``kind`` and remember ``reason``; a failure to count is logged, not raised."""
    try:
        pipe = client.pipeline(transaction=False)
        pipe.hincrby(keys.counters, kind, 1)
        pipe.hset(keys.counters, f"{kind}:last", " ".join(reason.split())[:_REASON_CHARS])
        pipe.execute()
    except (redis.RedisError, RedisClusterException) as exc:
        log.warning("counter_not_written", kind=kind, reason=reason, error=str(exc))


async def acount(client: AsyncRedis, keys: SwarmKeys, kind: CounterKind, reason: str) -> None:
    """The asyncio twin of :func:`count`."""
    try:
        async with client.pipeline(transaction=False) as pipe:
            pipe.hincrby(keys.counters, kind, 1)
            pipe.hset(keys.counters, f"{kind}:last", " ".join(reason.split())[:_REASON_CHARS])
            await pipe.execute()
    except (redis.RedisError, RedisClusterException) as exc:
        log.warning("counter_not_written", kind=kind, reason=reason, error=str(exc))


def read(client: SyncRedis, keys: SwarmKeys) -> dict[str, int | str]:
    """The swarm's counters: every kind (0 when it never happened) and the last reasons."""
    raw = {text(k): text(v) for k, v in client.hgetall(keys.counters).items()}
    out: dict[str, int | str] = {kind: int(raw.pop(kind, 0)) for kind in KINDS}
    out.update(raw)
    return out
