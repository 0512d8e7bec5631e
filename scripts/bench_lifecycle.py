"""Task lifecycle throughput of swarmqueue: agent processes doing claim_next + complete.

Also the round-trip bound: how many ``PING`` round trips the same redis-py client makes per
second (per process, in a group of the same size), halved, because each task costs two round
trips (one ``claim_next``, one ``complete``).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import bench_dag
from bench_procs import Done, GroupRun, run_group

from distributor.client import redis_from_url
from distributor.queue import TaskQueue
from distributor.settings import Settings
from distributor.testing import delete_swarm

WAIT_SECONDS = 0.5  # an idle agent waits this long for a task to become ready, then re-checks


def new_swarm() -> str:
    """A fresh swarm name: 8 hex digits, as long as the RQ queue names (key sizes are alike)."""
    return uuid.uuid4().hex[:8]


def submit_dag(queue: TaskQueue, count: int, width: int, offset: int = 0) -> None:
    """Submit the layered graph (in plans of at most 10,000 tasks)."""
    for plan in bench_dag.plans(count, width, offset):
        queue.submit(plan)


def _agent(url: str, swarm: str, total: int, timeout: float) -> Callable[..., Done]:
    def work(index: int, ready: Callable[[], None]) -> Done:
        queue = TaskQueue.from_url(url, swarm, settings=Settings(swarm=swarm))
        queue.ping()
        agent = f"agent-{index}"
        ids: list[str] = []
        last = time.monotonic()
        ready()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            claim = queue.claim_next(agent)
            if claim is None:
                if queue.progress()["completed"] >= total:
                    break
                claim = queue.claim_next(agent, wait=WAIT_SECONDS)
                if claim is None:
                    continue
            queue.complete(claim.task_id, agent, claim.token)
            ids.append(claim.task_id)
            last = time.monotonic()
        queue.redis.close()
        return Done(len(ids), ids, last)

    return work


def run_swarmqueue(url: str, count: int, width: int, processes: int, timeout: float) -> GroupRun:
    """Submit the graph to a fresh swarm and let ``processes`` agents finish it."""
    swarm = new_swarm()
    queue = TaskQueue.from_url(url, swarm, settings=Settings(swarm=swarm))
    submit_dag(queue, count, width)
    try:
        run = run_group(_agent(url, swarm, count, timeout), processes, timeout)
        progress = queue.progress()
    finally:
        delete_swarm(queue)
        queue.redis.close()
    if progress["completed"] != count or len(set(run.ids)) != count or run.count != count:
        raise RuntimeError(
            f"swarmqueue lifecycle miscounted: {run.count} completions, "
            f"{len(set(run.ids))} distinct, {progress['completed']} completed in Redis"
        )
    return run


def _pinger(url: str, pings: int) -> Callable[..., Done]:
    def work(index: int, ready: Callable[[], None]) -> Done:
        client = redis_from_url(url, Settings().redis_retries)
        client.ping()
        ready()
        for _ in range(pings):
            client.ping()
        done = Done(pings, [], time.monotonic())
        client.close()
        return done

    return work


def ping_rate(url: str, processes: int, pings: int, timeout: float) -> float:
    """PING round trips per second of ``processes`` clients together."""
    return run_group(_pinger(url, pings), processes, timeout).per_second
