"""Read-only views of a swarm (task, listing, progress, workload), written once for both clients.

None of these scan on the hot path: progress reads the per-status counters; only listings and
the "blocked by failed task" report walk what they report.

A ``waiting`` task is ``available`` from its ``retry_at`` on, whether or not a claim or reap
has recorded that yet: every read compares ``retry_at`` with Redis time (``TIME`` plus the
swarm's clock, as the scripts do) and shows what the next claim would find, so ``status``,
``tasks``, ``task`` and ``claim`` never disagree.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from distributor.errors import TaskNotFound, ValidationError
from distributor.reservations import queries as reservation_queries
from distributor.reservations.index import Holdings, file_states
from distributor.reservations.models import Reservation
from distributor.store import codec
from distributor.store.calls import Batch, Command, Op, ScriptCall, text
from distributor.store.keys import SwarmKeys
from distributor.tasks.hashes import task_from_hash
from distributor.tasks.ids import check_task_id, validated
from distributor.tasks.models import Task
from distributor.tasks.status import ACTIVE_STATUSES, TaskStatus

_CHUNK = 500


def _dependencies(h: dict[str, str]) -> list[str]:
    return [str(d) for d in json.loads(h.get("dependencies") or "[]")]


def _unmet(h: dict[str, str], status_of: dict[str, str]) -> list[str]:
    """A task's dependencies that are not completed (the hash keeps only their count)."""
    if h.get("unmet", "0") == "0":
        return []
    return [d for d in _dependencies(h) if status_of.get(d) != TaskStatus.COMPLETED.value]


def get(keys: SwarmKeys, task_id: str) -> Op[Task]:
    found = yield from many(keys, [task_id])
    if not found:
        raise TaskNotFound(task_id)
    return found[0]


def as_of(h: dict[str, str], now_ms: int) -> dict[str, str]:
    """A task hash as it stands at ``now_ms``: a waiting task whose retry time has come is
    available (what ``promote`` in ``lua/include/common.lua`` will record)."""
    if h.get("status") == TaskStatus.WAITING.value and int(h.get("retry_at") or 0) <= now_ms:
        shown = {k: v for k, v in h.items() if k != "retry_at"}
        shown["status"] = TaskStatus.AVAILABLE.value
        return shown
    return h


def _load(keys: SwarmKeys, ids: list[str]) -> Op[list[dict[str, str]]]:
    """The hashes of the tasks in ``ids`` that exist, as they stand now (see :func:`as_of`)."""
    hashes: list[dict[str, str]] = []
    now_ms = 0
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        reads = tuple(Command(("HGETALL", keys.task(i))) for i in chunk)
        if start == 0:  # Redis' "now" rides along with the first chunk
            reads += (Command(("TIME",)), Command(("GET", keys.clock)))
        replies = yield Batch(reads)
        if start == 0:
            *replies, time_reply, clock = replies
            now_ms = codec.redis_now_ms(time_reply, clock)
        hashes.extend(as_of(h, now_ms) for h in (codec.decode_map(r) for r in replies) if h)
    return hashes


def many(keys: SwarmKeys, task_ids: list[str]) -> Op[list[Task]]:
    """The named tasks that exist, in the order given (a plan's tasks, without a full listing)."""
    for task_id in task_ids:
        validated(check_task_id, task_id)
    hashes = yield from _load(keys, task_ids)
    status_of = {h["id"]: h["status"] for h in hashes}
    outside = sorted({d for h in hashes for d in _dependencies(h) if d not in status_of})
    if outside and any(h.get("unmet", "0") != "0" for h in hashes):
        replies = yield Batch(tuple(Command(("HGET", keys.task(d), "status")) for d in outside))
        status_of.update({d: text(s) for d, s in zip(outside, replies, strict=True) if s})
    return [task_from_hash(h, _unmet(h, status_of)) for h in hashes]


def _wanted(status: TaskStatus | str | None) -> TaskStatus | None:
    if status is None:
        return None
    try:
        return TaskStatus(status)
    except ValueError:
        choices = ", ".join(s.value for s in TaskStatus)
        raise ValidationError(f"unknown status {status!r}: choose one of {choices}") from None


def tasks(keys: SwarmKeys, status: TaskStatus | str | None = None) -> Op[list[Task]]:
    """Every task in submission order, optionally only those with ``status``."""
    wanted = _wanted(status)
    ids = [text(i) for i in (yield Command(("ZRANGE", keys.all, 0, -1)))]
    hashes = yield from _load(keys, ids)
    status_of = {h["id"]: h["status"] for h in hashes}  # every task is listed: deps included
    return [
        task_from_hash(h, _unmet(h, status_of))
        for h in hashes
        if wanted is None or h["status"] == wanted.value
    ]


def page(
    keys: SwarmKeys,
    status: TaskStatus | str | None = None,
    after: str | None = None,
    limit: int = 50,
) -> Op[tuple[list[Task], bool]]:
    """Up to ``limit`` tasks in submission order after the task ``after`` (from the first
    without it), optionally only those with ``status``, and whether more follow.

    Pages follow each task's place in submission order, which never changes, so walking the
    pages with the last id of each as the next ``after`` returns every task exactly once while
    tasks change status (tasks added meanwhile come at the end).
    """
    wanted = _wanted(status)
    if limit < 1:
        raise ValidationError(f"limit must be at least 1, not {limit}")
    low: str | float = "-inf"
    if after is not None:
        validated(check_task_id, after)
        score = yield Command(("ZSCORE", keys.all, after))
        if score is None:
            raise TaskNotFound(after)
        low = f"({text(score)}"
    step = limit + 1 if wanted is None else max(limit + 1, _CHUNK)
    found: list[Task] = []
    while len(found) <= limit:
        reply = yield Command(
            ("ZRANGEBYSCORE", keys.all, low, "+inf", "WITHSCORES", "LIMIT", 0, step)
        )
        pairs = _with_scores(reply)
        if not pairs:
            break
        low = f"({pairs[-1][1]}"
        chunk = yield from many(keys, [i for i, _ in pairs])
        found += [t for t in chunk if wanted is None or t.status == wanted]
        if len(pairs) < step:
            break
    return found[:limit], len(found) > limit


def _with_scores(reply: Any) -> list[tuple[str, str]]:
    """(member, score) pairs of a WITHSCORES reply, flat (RESP2) or paired (RESP3)."""
    items = list(reply or [])
    if items and isinstance(items[0], list | tuple):
        return [(text(m), text(s)) for m, s in items]
    return [(text(items[i]), text(items[i + 1])) for i in range(0, len(items), 2)]


_OUTLINE_CHUNK = 5_000  # tasks per outline.lua call: a few ms of Redis time each


def outline(keys: SwarmKeys) -> Op[list[tuple[str, str, list[str]]]]:
    """Every task as (id, status, dependencies) in submission order: what a summary of a large
    graph needs, read a slice per script call without loading whole tasks (statuses as
    :func:`as_of` shows them; see lua/outline.lua)."""
    result: list[tuple[str, str, list[str]]] = []
    start = 0
    while True:
        stop = start + _OUTLINE_CHUNK - 1
        call = ScriptCall(
            "outline", keys.script_keys(), [keys.prefix, 0, "", "", 0, start, stop],
            repeatable=True,
        )  # fmt: skip
        _, listed, rows = yield call
        for row in text(rows).split("\n") if rows else []:
            task_id, status, deps = row.split("\t")
            # a JSON list of ids, which hold no quote, space or comma (see TASK_ID_RE)
            needs = deps[1:-1].replace('"', "").replace(" ", "").split(",") if len(deps) > 2 else []
            result.append((task_id, status, needs))
        if int(listed) < _OUTLINE_CHUNK:
            return result
        start = stop + 1


_LAYERS_CHUNK = 10_000  # tasks per layers.lua call: ~20 ms of Redis time each (2 fields a task)


@dataclass
class Layer:
    """One layer of the graph as a summary shows it: counts per status, its first task ids."""

    depth: int
    counts: dict[str, int] = field(default_factory=dict)
    first: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def layers(keys: SwarmKeys, first: int) -> Op[list[Layer] | None]:
    """The swarm's tasks counted per layer and status from the layers stored at submit (see
    lua/layers.lua), with each layer's first ``first`` ids in submission order; shallowest
    layer first. ``None`` when a task has no stored layer (submitted by an older version):
    :func:`outline` then gives the graph to layer."""
    found: dict[int, Layer] = {}
    start = 0
    while True:
        stop = start + _LAYERS_CHUNK - 1
        call = ScriptCall(
            "layers", keys.script_keys(), [keys.prefix, 0, "", "", 0, start, stop, first],
            repeatable=True,
        )  # fmt: skip
        status, listed, rows = yield call
        if text(status) != "ok":
            return None
        for depth, counts, ids in json.loads(text(rows)):
            layer = found.setdefault(depth, Layer(depth))
            for name, n in counts.items():
                layer.counts[name] = layer.counts.get(name, 0) + n
            layer.first += ids[: first - len(layer.first)]
        if int(listed) < _LAYERS_CHUNK:
            return [found[d] for d in sorted(found)]
        start = stop + 1


def blocked_by_failures(keys: SwarmKeys, failed: list[str]) -> Op[dict[str, list[str]]]:
    """For each failed task, the unfinished tasks that wait on it (directly or through others)."""
    report: dict[str, list[str]] = {}
    for root in sorted(failed):
        seen: set[str] = set()
        frontier = [root]
        while frontier:
            replies = yield Batch(
                tuple(Command(("HGET", keys.task(t), "dependents")) for t in frontier)
            )
            waiting_ids = {d for r in replies if r for d in text(r).split(",") if d}
            frontier = sorted(waiting_ids - seen)
            seen.update(frontier)
        if seen:
            statuses = yield Batch(
                tuple(Command(("HGET", keys.task(t), "status")) for t in sorted(seen))
            )
            waiting = [
                t for t, s in zip(sorted(seen), statuses, strict=True) if text(s) == "blocked"
            ]
            if waiting:
                report[root] = waiting
    return report


def status_counts(keys: SwarmKeys) -> Op[tuple[dict[str, int], list[str]]]:
    """Tasks per status (every status, zeros included) and the failed tasks' ids, read with
    Redis time in one atomic step (see lua/counts.lua: a due retry counts as available)."""
    call = ScriptCall("counts", keys.script_keys(), [keys.prefix, 0, "", "", 0], repeatable=True)
    _, body = codec.script_reply((yield call))
    counts = {s.value: 0 for s in TaskStatus}
    counts.update({k: int(v) for k, v in codec.decode_map(body["counts"]).items()})
    return counts, [text(f) for f in body["failed"] or []]


def completion_pct(counts: dict[str, int]) -> float:
    """Completed tasks as a percentage of all, to one decimal (0.0 for no tasks)."""
    total = sum(counts.values())
    return round(100.0 * counts["completed"] / total, 1) if total else 0.0


def progress(keys: SwarmKeys) -> Op[dict[str, Any]]:
    """Counts per status, completion percentage, and which failed tasks block others."""
    counts, failed = yield from status_counts(keys)
    blocked_by = yield from blocked_by_failures(keys, failed)
    return {
        "total": sum(counts.values()),
        **counts,
        "completion_pct": completion_pct(counts),
        "blocked_by_failed": blocked_by,
    }


def workload(keys: SwarmKeys) -> Op[dict[str, list[str]]]:
    """Each agent's claimed and in-progress tasks."""
    ids = [text(i) for i in (yield Command(("ZRANGE", keys.claimed, 0, -1)))]
    if not ids:
        return {}
    holders = yield Batch(
        tuple(Command(("HMGET", keys.task(i), "agent_id", "status")) for i in ids)
    )
    result: dict[str, list[str]] = {}
    active = {s.value for s in ACTIVE_STATUSES}
    for task_id, (agent, status) in zip(ids, holders, strict=True):
        if agent is not None and status is not None and text(status) in active:
            result.setdefault(text(agent), []).append(task_id)
    return {agent: sorted(ids) for agent, ids in sorted(result.items())}


def held_up(
    keys: SwarmKeys, live: list[Reservation] | None = None
) -> Op[dict[str, list[Reservation]]]:
    """Available tasks whose files another agent's live reservation holds: task id -> holders
    (what ``status`` counts as waiting only on reservations; empty without reservations).
    ``live``: the live reservations when the caller has read them already."""
    found = (yield from reservation_queries.live(keys)) if live is None else live
    if not found:
        return {}
    holdings = Holdings(found)
    result: dict[str, list[Reservation]] = {}
    ready = [text(i) for i in (yield Command(("ZRANGE", keys.ready, 0, -1)))]
    for t in (yield from many(keys, ready)):  # the ready set: no walk over the whole swarm
        holders = [r for _, _, rs in file_states(holdings, t.files, t.shared_files) for r in rs]
        if holders:
            result[t.id] = list({r.id: r for r in holders}.values())
    return result
