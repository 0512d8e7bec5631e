"""Many agent processes against one real Redis: every task done exactly once, in DAG order."""

from __future__ import annotations

import multiprocessing
import random
import time
from typing import Any

import pytest
import redis

from distributor import TaskQueue
from distributor.store.calls import text
from distributor.testing import delete_swarm

AGENTS = 8
TASKS = 2000


def random_dag(n: int, seed: int = 7) -> dict[str, Any]:
    rng = random.Random(seed)
    tasks: list[dict[str, Any]] = []
    for i in range(n):
        deps = sorted({f"n{rng.randrange(i)}" for _ in range(rng.randint(0, 3))}) if i else []
        tasks.append({"id": f"n{i}", "title": f"node {i}", "dependencies": deps})
    return {"tasks": tasks}


def agent_loop(url: str, swarm: str, agent: str, out: Any) -> None:
    """Claim and complete until every task is done; report what this agent completed."""
    queue = TaskQueue(redis.Redis.from_url(url), swarm)
    done: list[str] = []
    while True:
        claim = queue.claim_next(agent)
        if claim is None:
            if queue.progress()["completed"] == TASKS:
                break
            time.sleep(0.001)
            continue
        queue.complete(claim.task.id, agent, claim.token)
        done.append(claim.task.id)
    out.put((agent, done))


@pytest.mark.slow
def test_eight_processes_complete_every_task_once_in_order(real_redis_url: str, swarm: str) -> None:
    queue = TaskQueue(redis.Redis.from_url(real_redis_url), swarm)
    plan = random_dag(TASKS)
    queue.submit(plan)
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    procs = [
        ctx.Process(target=agent_loop, args=(real_redis_url, swarm, f"agent-{i}", out))
        for i in range(AGENTS)
    ]
    try:
        for p in procs:
            p.start()
        results = dict(out.get(timeout=90) for _ in procs)
        for p in procs:
            p.join(timeout=10)
            assert p.exitcode == 0
        completed = [t for done in results.values() for t in done]
        assert len(completed) == TASKS and len(set(completed)) == TASKS
        assert sum(1 for done in results.values() if done) > 1  # the work was shared

        entries: Any = queue.redis.xrange(queue.keys.events)
        position: dict[str, int] = {}
        claims: dict[str, int] = {}
        for index, (_, fields) in enumerate(entries):
            kind, task = text(fields[b"type"]), text(fields[b"task"])
            if kind == "completed":
                assert task not in position, f"{task} completed twice"
                position[task] = index
            elif kind == "claimed":
                claims[task] = claims.get(task, 0) + 1
        assert len(position) == TASKS
        assert set(claims.values()) == {1}
        for task in plan["tasks"]:
            for dep in task["dependencies"]:
                assert position[dep] < position[task["id"]], f"{task['id']} before {dep}"
        progress = queue.progress()
        assert (progress["completed"], progress["completion_pct"]) == (TASKS, 100.0)
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
        delete_swarm(queue)
