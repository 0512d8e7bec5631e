"""Eight agent processes on a real Redis work a 1,000-task DAG whose tasks share files in
overlapping groups (files, directories, globs, shared reads); an audit replays the event stream
and finds no moment at which two agents held conflicting reservations, and every task
completed exactly once."""

from __future__ import annotations

import json
import multiprocessing
import random
from typing import Any

import pytest
import redis

from distributor import TaskQueue
from distributor.errors import FilesReserved
from distributor.reservations.patterns import overlap, parse
from distributor.store.calls import text
from distributor.testing import delete_swarm

AGENTS = 8
TASKS = 1000
GROUPS = 12


def shared_files_dag(n: int, seed: int = 11) -> dict[str, Any]:
    """A DAG whose tasks touch files of a few groups: neighbours in a group overlap."""
    rng = random.Random(seed)
    tasks: list[dict[str, Any]] = []
    for i in range(n):
        deps = sorted({f"n{rng.randrange(i)}" for _ in range(rng.randint(0, 2))}) if i else []
        g = rng.randrange(GROUPS)
        files = [f"pkg{g}/mod{rng.randrange(6)}.py" for _ in range(rng.randint(1, 3))]
        roll = rng.random()
        if roll < 0.05:
            files.append(f"pkg{g}/")  # the whole group
        elif roll < 0.10:
            files.append(f"pkg{g}/mod*")
        shared = [f"pkg{(g + 1) % GROUPS}/api.py"] if rng.random() < 0.3 else []
        if rng.random() < 0.05:
            files.append(f"pkg{(g + 1) % GROUPS}/api.py")  # a writer of what others read
        tasks.append(
            {"id": f"n{i}", "title": f"node {i}", "dependencies": deps, "files": sorted(set(files)),
             "shared_files": shared}
        )  # fmt: skip
    return {"tasks": tasks}


def agent_loop(url: str, swarm: str, agent: str, seed: int, out: Any) -> None:
    """Claim and complete until every task is done (half the time claiming the next task in the
    completion's own step); now and then reserve a file explicitly for a moment."""
    rng = random.Random(seed)
    queue = TaskQueue(redis.Redis.from_url(url), swarm)
    done: list[str] = []
    claim = None
    while True:
        if claim is None:
            claim = queue.claim_next(agent, wait=0.5)
            if claim is None:
                if queue.progress()["completed"] == TASKS:
                    break
                continue
        if rng.random() < 0.02:
            try:
                queue.reserve([f"pkg{rng.randrange(GROUPS)}/mod0.py"], agent, ttl=60)
                queue.unreserve(agent)
            except FilesReserved:  # another agent holds it: nothing was reserved
                pass
        chained = rng.random() < 0.5
        completion = queue.complete(claim.task.id, agent, claim.token, claim_next=chained)
        done.append(claim.task.id)
        claim = completion.next
    out.put((agent, done))


def audit(entries: list[Any]) -> tuple[int, int]:
    """Replay reservations in stream order; fail on any moment two agents held conflicting
    ones. Returns (reservations taken, most held at once)."""
    held: dict[str, tuple[str, str, bool]] = {}  # rid -> (agent, pattern, shared)
    taken = most = 0
    for _, raw in entries:
        fields = {text(k): text(v) for k, v in raw.items()}
        if fields["type"] == "reserved":
            agent = fields["agent"]
            for rid, pattern, shared in json.loads(fields["reservations"]):
                for other, (holder, theirs, their_shared) in held.items():
                    if holder != agent and not (shared and their_shared):
                        assert not overlap(parse(pattern), parse(theirs)), (rid, other)
                held[rid] = (agent, pattern, bool(shared))
                taken += 1
            most = max(most, len(held))
        elif fields["type"] == "unreserved":
            for rid in json.loads(fields["ids"]):
                del held[rid]
    assert not held, "reservations outlived the work"
    return taken, most


@pytest.mark.slow
@pytest.mark.long
def test_eight_processes_never_hold_conflicting_files(real_redis_url: str, swarm: str) -> None:
    queue = TaskQueue(redis.Redis.from_url(real_redis_url), swarm)
    queue.submit(shared_files_dag(TASKS))
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    procs = [
        ctx.Process(target=agent_loop, args=(real_redis_url, swarm, f"agent-{i}", i, out))
        for i in range(AGENTS)
    ]
    try:
        for p in procs:
            p.start()
        results = dict(out.get(timeout=240) for _ in procs)
        for p in procs:
            p.join(timeout=10)
            assert p.exitcode == 0
        completed = [t for done in results.values() for t in done]
        assert len(completed) == TASKS and len(set(completed)) == TASKS
        assert sum(1 for done in results.values() if done) > 1

        entries: Any = queue.redis.xrange(queue.keys.events)
        assert text(entries[0][1][b"type"]) == "submitted"  # the log was not trimmed
        types = [text(f[b"type"]) for _, f in entries]
        assert types.count("completed") == TASKS and types.count("claimed") == TASKS
        taken, most = audit(entries)
        assert taken >= TASKS and most > 1
        assert "reserve-refused" in types  # the groups did collide, and were kept apart
        assert queue.reservations() == []
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
        delete_swarm(queue)
