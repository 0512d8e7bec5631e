"""A swarm's hash slot moves between cluster masters while agents work (``-m cluster``).

While the slot is half-moved no script may run (half of the swarm's keys are on each master,
see ``distributor/store/keys.py``): every script call is refused with TRYAGAIN and the executor
sends it again within the retry budget. After ``SETSLOT NODE`` the work goes on at the new
master: every task done once, in dependency order.
"""

from __future__ import annotations

import multiprocessing
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

import pytest
import redis

from distributor import TaskQueue
from distributor.settings import Settings
from distributor.store.calls import text
from distributor.testing import advance_clock, delete_swarm
from tests.cluster_migration import SlotMove
from tests.redis_cluster import LoopbackCluster, cluster_client, shard_subscribers, slot_of
from tests.test_race import random_dag

pytestmark = pytest.mark.cluster

AGENTS = 4
TASKS = 300
BUDGET = Settings(retry_budget_seconds=60, redis_retries=3, request_ttl_seconds=600)


def cluster_queue(url: str, swarm: str) -> TaskQueue:
    """A TaskQueue on a cluster client (the Python API takes it where it takes a Redis)."""
    return TaskQueue(cast(redis.Redis, cluster_client(url)), swarm, settings=BUDGET)


def move_for(cluster: LoopbackCluster, queue: TaskQueue) -> SlotMove:
    """A move of the swarm's slot from its master to another one."""
    source = cluster.owner(queue.keys.prefix)
    target = next(node for node in cluster.masters() if node is not source)
    return SlotMove(cluster, slot_of(queue.keys.prefix), source, target)


def test_no_script_runs_while_the_slot_is_half_moved(
    redis_cluster: LoopbackCluster, swarm: str
) -> None:
    queue = cluster_queue(redis_cluster.url, swarm)
    try:
        queue.submit({"tasks": [{"id": f"t{i}", "title": f"task {i}"} for i in range(40)]})
        # every fixed key of the swarm exists (a declared key that is missing would make
        # Redis refuse the script anyway): a retry backoff, a failure, a claim, the clock
        for task_id, outcome in (("t0", "retry"), ("t1", "fail"), ("t2", "hold")):
            held = queue.claim(task_id, "agent-z").claim
            assert held is not None
            if outcome != "hold":
                queue.fail(task_id, "agent-z", held.token, "no", retry=outcome == "retry")
        advance_clock(queue, 0)
        assert all(queue.redis.exists(key) for key in queue.keys.script_keys())
        move = move_for(redis_cluster, queue)
        move.begin()
        # the worst order for a script: the swarm's sorted sets and counters still on the
        # source, the ready tasks' hashes on the target. Without the slot guard claim_next
        # runs on the source and fails reading the task it picked ("non local key").
        move.move_keys([queue.keys.task(f"t{i}") for i in range(3, 40)])
        with ThreadPoolExecutor(1) as pool:
            claimed = pool.submit(queue.claim_next, "agent-a")
            time.sleep(1.0)
            assert not claimed.done(), "a script ran against a half-moved slot"
            while move.move_batch(50):
                pass
            move.finish()
            claim = claimed.result(timeout=60)
        assert claim is not None and claim.task.id not in ("t0", "t1", "t2")
        assert redis_cluster.owner(queue.keys.prefix) is move.target
        progress = queue.progress()
        assert (progress["claimed"], progress["available"]) == (2, 36)
        assert (progress["waiting"], progress["failed"]) == (1, 1)
        assert queue.complete(claim.task.id, "agent-a", claim.token) is not None
    finally:
        delete_swarm(queue)
        queue.redis.close()


def agent_loop(url: str, swarm: str, agent: str, out: Any) -> None:
    """Claim and complete until every task is done; report what this agent completed."""
    queue = cluster_queue(url, swarm)
    done: list[str] = []
    while True:
        claim = queue.claim_next(agent, wait=1.0)  # on the swarm's shard channel
        if claim is None:
            if queue.progress()["completed"] == TASKS:
                break
            continue
        time.sleep(0.002)  # the work
        queue.complete(claim.task.id, agent, claim.token)
        done.append(claim.task.id)
    out.put((agent, done))


def completed(queue: TaskQueue) -> int:
    return int(queue.progress()["completed"])


@pytest.mark.slow
def test_agents_ride_through_a_slot_migration(redis_cluster: LoopbackCluster, swarm: str) -> None:
    queue = cluster_queue(redis_cluster.url, swarm)
    plan = random_dag(TASKS)
    queue.submit(plan)
    move = move_for(redis_cluster, queue)
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    procs = [
        ctx.Process(target=agent_loop, args=(redis_cluster.url, swarm, f"agent-{i}", out))
        for i in range(AGENTS)
    ]
    try:
        for p in procs:
            p.start()
        deadline = time.monotonic() + 60
        while completed(queue) < TASKS // 5:
            assert time.monotonic() < deadline, "the agents did not start working"
            time.sleep(0.05)
        before = completed(queue)
        seconds = move.run(batch=10, pause=0.05)
        after = completed(queue)
        results = dict(out.get(timeout=120) for _ in procs)
        for p in procs:
            p.join(timeout=10)
            assert p.exitcode == 0
        print(
            f"\nslot {move.slot}: {move.moved_keys} keys in {move.batches} batches, {seconds:.1f}s;"
            f" completed {before} before, {after} when it ended, {TASKS} in all"
        )
        assert redis_cluster.owner(queue.keys.prefix) is move.target
        assert move.batches > 5  # the agents met the slot half-moved many times
        assert after < TASKS  # work resumed on the new master

        finished = [t for done in results.values() for t in done]
        assert sorted(finished) == sorted(t["id"] for t in plan["tasks"])  # 0 lost, 0 doubled
        position: dict[str, int] = {}
        claims: dict[str, int] = {}
        entries: Any = queue.redis.xrange(queue.keys.events)
        for index, (_, fields) in enumerate(entries):
            kind, task = text(fields[b"type"]), text(fields[b"task"])
            if kind == "completed":
                assert task not in position, f"{task} completed twice"
                position[task] = index
            elif kind == "claimed":
                claims[task] = claims.get(task, 0) + 1
        assert len(position) == TASKS and set(claims.values()) == {1}
        for task in plan["tasks"]:
            for dep in task["dependencies"]:
                assert position[dep] < position[task["id"]], f"{task['id']} before {dep}"
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
        delete_swarm(queue)
        queue.redis.close()


def test_a_waiter_is_woken_after_the_slot_moved(
    redis_cluster: LoopbackCluster, swarm: str
) -> None:
    """The old master ends the shard subscription when the slot leaves it; the waiter
    subscribes again at the new one and hears the completion that unblocks its task."""
    queue = cluster_queue(redis_cluster.url, swarm)
    try:
        queue.submit({"tasks": [{"id": "a", "title": "A"},
                                {"id": "b", "title": "B", "dependencies": ["a"]}]})  # fmt: skip
        held = queue.claim_next("agent-a")
        assert held is not None
        waiter = cluster_queue(redis_cluster.url, swarm)
        with ThreadPoolExecutor(1) as pool:
            waited = pool.submit(waiter.claim_next, "agent-b", wait=20)
            deadline = time.monotonic() + 10
            while shard_subscribers(queue.redis, queue.keys.channel) < 1:
                assert time.monotonic() < deadline, "the waiter did not subscribe"
                time.sleep(0.01)
            move_for(redis_cluster, queue).run(batch=5, pause=0.01)
            queue.complete("a", "agent-a", held.token)
            claim = waited.result(timeout=30)
        assert claim is not None and claim.task.id == "b"  # None: the wake-up was missed
        waiter.redis.close()
    finally:
        delete_swarm(queue)
        queue.redis.close()
