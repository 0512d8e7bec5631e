"""Whole swarms: find them, summarise them, delete one with everything it left in Redis.

A swarm is nothing but the keys under ``<namespace>:{<swarm>}:`` plus the RQ jobs that deliver
its messages. Finding swarms walks the keyspace with ``SCAN`` (an operator's command, never on an
agent's hot path: it costs one pass over the database's keys); summarising one reads its
counters. Deleting removes the delivery jobs first (so no worker types a message of a swarm that
no longer exists), then every key under the prefix. Agents still working on the swarm would write
keys again: stop them first.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

import redis
from pydantic import BaseModel

from distributor.store import codec
from distributor.store.calls import Batch, Command, Op, text
from distributor.store.connect import SyncRedis
from distributor.store.executor import SyncExecutor
from distributor.store.keys import NAMESPACE, SwarmKeys, check_swarm, host_swarms_key
from distributor.store.scripts import SCRIPT_NAMES
from distributor.tasks.models import ms_to_datetime
from distributor.tasks.queries import completion_pct, status_counts

_SCAN_COUNT = 1000
_DELETE_BATCH = 500
# Keys that only a live swarm has; any one of them makes a swarm visible to find_swarms.
_MARKERS = ("counts", "agents", "events")


class SwarmSummary(BaseModel):
    """One swarm at a glance: progress, agents, activity and how many tasks it holds."""

    name: str
    total: int
    counts: dict[str, int]
    completion_pct: float
    agents: int
    events: int
    last_activity: datetime | None


class Deleted(BaseModel):
    """What :func:`delete_swarm` removed."""

    swarm: str
    keys: int
    jobs: int


def find_swarms(client: SyncRedis, namespace: str = NAMESPACE) -> list[str]:
    """Names of every swarm with tasks, agents or events in this Redis, sorted."""
    pattern = re.compile(rf"{re.escape(namespace)}:\{{([^{{}}]+)\}}:")
    names: set[str] = set()
    for marker in _MARKERS:
        for key in client.scan_iter(match=f"{namespace}:{{*}}:{marker}", count=_SCAN_COUNT):
            found = pattern.match(text(key))
            if found:
                names.add(found.group(1))
    return sorted(n for n in names if _valid(n))


def _valid(name: str) -> bool:
    try:
        check_swarm(name)
    except ValueError:
        return False
    return True


def summary(keys: SwarmKeys) -> Op[SwarmSummary]:
    """Progress (the same counts as ``status``), agents and last activity of one swarm."""
    counts, _ = yield from status_counts(keys)
    agents, events, last = yield Batch(
        (
            Command(("ZCARD", keys.agents)),
            Command(("XLEN", keys.events)),
            Command(("XREVRANGE", keys.events, "+", "-", "COUNT", 1)),
        )
    )
    last_ms = _event_ms(last[0]) if last else None
    return SwarmSummary(
        name=keys.swarm,
        total=sum(counts.values()),
        counts=counts,
        completion_pct=completion_pct(counts),
        agents=int(agents),
        events=int(events),
        last_activity=ms_to_datetime(last_ms) if last_ms is not None else None,
    )


def summaries(client: SyncRedis, namespace: str = NAMESPACE) -> list[SwarmSummary]:
    """The :func:`summary` of every swarm in this Redis, by name."""
    executor = SyncExecutor(client, SCRIPT_NAMES)
    return [executor.run(summary(SwarmKeys(n, namespace))) for n in find_swarms(client, namespace)]


def _event_ms(entry: Any) -> int:
    """The swarm-clock time of a stream entry (its ``ts`` field), else the entry id's time."""
    stream_id, fields = entry
    return int(codec.decode_map(fields).get("ts") or text(stream_id).split("-")[0])


def finished(s: SwarmSummary) -> bool:
    """Every task is completed (100 %): a failed or cancelled task may still be retried."""
    return s.total > 0 and s.counts["completed"] == s.total


def prune_finished(
    client: SyncRedis, older_than_seconds: float, namespace: str = NAMESPACE
) -> list[Deleted]:
    """Delete the swarms that finished and saw no event for ``older_than_seconds`` (Redis time)."""
    executor = SyncExecutor(client, SCRIPT_NAMES)
    pruned = []
    for s in summaries(client, namespace):
        if not finished(s) or s.last_activity is None:
            continue
        now_ms = executor.run(_now_ms(SwarmKeys(s.name, namespace)))
        idle_ms = now_ms - round(s.last_activity.timestamp() * 1000)
        if idle_ms >= older_than_seconds * 1000:
            pruned.append(delete_swarm(client, s.name, namespace))
    return pruned


def _now_ms(keys: SwarmKeys) -> Op[int]:
    time_reply, clock = yield Batch((Command(("TIME",)), Command(("GET", keys.clock))))
    return codec.redis_now_ms(time_reply, clock)


def delete_swarm(
    client: SyncRedis,
    swarm: str,
    namespace: str = NAMESPACE,
    broker: redis.Redis | None = None,
) -> Deleted:
    """Delete every key of ``swarm`` and the RQ jobs that would deliver its messages (on
    ``broker``, the delivery broker; default: the store when it is one Redis)."""
    keys = SwarmKeys(swarm, namespace)
    if broker is None and isinstance(client, redis.Redis):
        broker = client
    jobs = _delete_delivery_jobs(client, keys, broker) if broker is not None else 0
    forget_hosts(client, swarm, namespace)
    return Deleted(swarm=swarm, keys=delete_keys(client, keys.prefix), jobs=jobs)


def forget_hosts(client: SyncRedis, swarm: str, namespace: str = NAMESPACE) -> None:
    """Remove ``swarm`` from every host's set of swarms (``keys.host_swarms_key``); the workers'
    sweeps would drop it too, once it has no agents."""
    before, after = host_swarms_key("\x00", namespace).split("\x00")
    pattern = _glob_escape(before) + "*" + _glob_escape(after)
    for key in client.scan_iter(match=pattern, count=_SCAN_COUNT):
        client.srem(key, swarm)


def delete_keys(client: SyncRedis, prefix: str) -> int:
    """Delete every key that starts with ``prefix`` (and only those); returns how many."""
    deleted = 0
    batch: list[Any] = []
    for key in client.scan_iter(match=_glob_escape(prefix) + "*", count=_SCAN_COUNT):
        batch.append(key)
        if len(batch) >= _DELETE_BATCH:
            deleted += int(client.delete(*batch))
            batch.clear()
    if batch:
        deleted += int(client.delete(*batch))
    return deleted


def _delete_delivery_jobs(client: SyncRedis, keys: SwarmKeys, broker: redis.Redis) -> int:
    """Remove the swarm's delivery jobs from RQ (queues and registries); how many existed."""
    from rq.exceptions import NoSuchJobError

    from distributor.messaging.job_ids import delivery_job_id
    from distributor.messaging.jobs import fetch_job

    job_ids: list[str] = []
    for key in client.scan_iter(match=_glob_escape(keys.prefix) + "msg:*", count=_SCAN_COUNT):
        message_id = text(key).removeprefix(keys.prefix + "msg:")
        fields = {text(k): text(v) for k, v in client.hgetall(key).items()}
        hosts = json.loads(fields.get("hosts") or "[]")
        job_ids += [delivery_job_id(message_id, str(h)) for h in hosts]
        # jobs that replaced a lost one (lua/msg_redispatch.lua)
        job_ids += [v for k, v in fields.items() if k.startswith("job:")]
    removed = 0
    for job_id in job_ids:
        try:
            fetch_job(job_id, broker).delete(remove_from_queue=True)
        except NoSuchJobError:
            continue
        removed += 1
    return removed


def _glob_escape(prefix: str) -> str:
    """``prefix`` with the glob characters SCAN MATCH would interpret escaped."""
    return re.sub(r"([\\*?\[\]])", r"\\\1", prefix)
