"""Cost growth: time per ``claim_next()`` and ``complete()`` as the swarm grows, and per
completion that unblocks many dependents.

The swarm of ``n`` tasks is two layers: ``n/2`` ready tasks, each with one blocked dependent,
so the ready set (where ``claim_next`` pops) holds half the swarm. Each call is timed alone
and the median is reported.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Any

from bench_lifecycle import new_swarm, submit_dag

from distributor.models import Claim
from distributor.queue import TaskQueue
from distributor.settings import Settings
from distributor.testing import delete_swarm


@dataclass(frozen=True)
class CallCosts:
    """Median microseconds per call in a swarm of ``tasks`` tasks."""

    tasks: int
    samples: int
    claim_next_us: float
    complete_us: float


def _queue(url: str) -> TaskQueue:
    swarm = new_swarm()
    return TaskQueue.from_url(url, swarm, settings=Settings(swarm=swarm))


def call_costs(url: str, tasks: int, samples: int) -> CallCosts:
    """Time ``samples`` claim_next calls, then the ``complete`` of each claimed task."""
    queue = _queue(url)
    try:
        submit_dag(queue, tasks, width=tasks // 2)
        claims: list[Claim] = []
        claim_times = []
        for _ in range(samples):
            start = time.perf_counter()
            claim = queue.claim_next("agent")
            claim_times.append(time.perf_counter() - start)
            if claim is None:
                raise RuntimeError("nothing ready to claim: too many samples for the swarm")
            claims.append(claim)
        complete_times = []
        for claim in claims:
            start = time.perf_counter()
            queue.complete(claim.task_id, "agent", claim.token)
            complete_times.append(time.perf_counter() - start)
        if queue.progress()["completed"] != samples:
            raise RuntimeError("cost growth: not every timed task was completed once")
        return CallCosts(
            tasks,
            samples,
            statistics.median(claim_times) * 1e6,
            statistics.median(complete_times) * 1e6,
        )
    finally:
        delete_swarm(queue)
        queue.redis.close()


def fan_out_ms(url: str, dependents: int, repeats: int) -> float:
    """Median milliseconds of one ``complete()`` that makes ``dependents`` tasks available."""
    times = []
    for _ in range(repeats):
        queue = _queue(url)
        try:
            plan: list[dict[str, Any]] = [{"id": "root", "title": "root"}]
            plan += [
                {"id": f"d{i}", "title": "dependent", "dependencies": ["root"]}
                for i in range(dependents)
            ]
            queue.submit(plan)
            claim = queue.claim_next("agent")
            assert claim is not None
            start = time.perf_counter()
            completion = queue.complete(claim.task_id, "agent", claim.token)
            times.append(time.perf_counter() - start)
            if len(completion.unblocked) != dependents:
                raise RuntimeError(
                    f"fan-out: {len(completion.unblocked)} of {dependents} unblocked"
                )
        finally:
            delete_swarm(queue)
            queue.redis.close()
    return statistics.median(times) * 1000
