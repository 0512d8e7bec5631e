"""Task lifecycle throughput of swarmqueue: agent processes claiming and completing tasks.

Each agent runs the loop an agent is meant to run: ``complete(..., claim_next=True)`` finishes a
task and claims the next in one atomic step (one round trip per task, like BullMQ's worker
fetching its next job when it completes one); ``claim_next`` (waiting when nothing is ready)
only starts the loop again. Each process has one connection (``single_connection``), as RQ's
and BullMQ's workers do.

Also the round-trip bound as issue 7 defines it: how many ``PING`` round trips the same client
makes per second (per process, in a group of the same size), halved (two round trips per task
for a queue without the combined step).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

from benchmarks import dag as bench_dag
from benchmarks.procs import Done, GroupRun, run_group
from distributor.settings import Settings
from distributor.store.client import redis_from_url
from distributor.tasks.models import Claim
from distributor.tasks.queue import TaskQueue
from distributor.testing import delete_swarm

WAIT_SECONDS = 0.5  # an idle agent waits this long for a task to become ready, then re-checks


def new_swarm() -> str:
    """A fresh swarm name: 8 hex digits, as long as the RQ queue names (key sizes are alike)."""
    return uuid.uuid4().hex[:8]


def submit_dag(queue: TaskQueue, count: int, width: int, offset: int = 0, files: int = 0) -> None:
    """Submit the layered graph (in plans of at most 10,000 tasks; ``files`` per task)."""
    for plan in bench_dag.plans(count, width, offset, files):
        queue.submit(plan)


def _agent(url: str, swarm: str, total: int, timeout: float) -> Callable[..., Done]:
    def work(index: int, ready: Callable[[], None]) -> Done:
        settings = Settings(swarm=swarm, single_connection=True)
        queue = TaskQueue.from_url(url, swarm, settings=settings)
        queue.ping()
        agent = f"agent-{index}"
        ids: list[str] = []
        last = time.monotonic()
        ready()
        deadline = time.monotonic() + timeout
        claim: Claim | None = None
        while time.monotonic() < deadline:
            if claim is None:
                claim = queue.claim_next(agent)
            if claim is None:
                if queue.progress()["completed"] >= total:
                    break
                claim = queue.claim_next(agent, wait=WAIT_SECONDS)
                if claim is None:
                    continue
            done = queue.complete(claim.task_id, agent, claim.token, claim_next=True)
            ids.append(claim.task_id)
            last = time.monotonic()
            claim = done.next
        queue.redis.close()
        return Done(len(ids), ids, last)

    return work


def run_swarmqueue(
    url: str, count: int, width: int, processes: int, timeout: float, files: int = 0
) -> GroupRun:
    """Submit the graph to a fresh swarm and let ``processes`` agents finish it (each claim
    reserving its task's ``files`` files, see docs/benchmarks.md "File reservations")."""
    swarm = new_swarm()
    queue = TaskQueue.from_url(url, swarm, settings=Settings(swarm=swarm))
    submit_dag(queue, count, width, files=files)
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
        client = redis_from_url(url, Settings().redis_retries, single_connection=True)
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
