"""Cost growth: time per ``claim_next()`` and ``complete()`` as the swarm grows, and per
completion that unblocks many dependents.

The swarm of ``n`` tasks is two layers: ``n/2`` ready tasks, each with one blocked dependent,
so the ready set (where ``claim_next`` pops) holds half the swarm. Each call is timed alone
and the median is reported; all sizes exist at once and are measured in turns.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Any

from benchmarks.lifecycle import new_swarm, submit_dag
from distributor.settings import Settings
from distributor.tasks.models import Claim
from distributor.tasks.queue import TaskQueue
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


def call_costs(url: str, sizes: list[int], samples: int, rounds: int = 5) -> list[CallCosts]:
    """Per swarm size: median time of ``samples`` claim_next calls and of each claimed task's
    ``complete``. The sizes take turns, ``rounds`` times, so a change in the machine's load
    during the run affects them alike instead of skewing the ratio."""
    queues = [_queue(url) for _ in sizes]
    try:
        for queue, size in zip(queues, sizes, strict=True):
            submit_dag(queue, size, width=size // 2)
        claim_times: list[list[float]] = [[] for _ in sizes]
        complete_times: list[list[float]] = [[] for _ in sizes]
        per_round = [samples // rounds + (r < samples % rounds) for r in range(rounds)]
        for count in per_round:
            for queue, claimed, completed in zip(queues, claim_times, complete_times, strict=True):
                _time_calls(queue, count, claimed, completed)
        for queue in queues:
            if queue.progress()["completed"] != samples:
                raise RuntimeError("cost growth: not every timed task was completed once")
        return [
            CallCosts(size, samples, statistics.median(cl) * 1e6, statistics.median(co) * 1e6)
            for size, cl, co in zip(sizes, claim_times, complete_times, strict=True)
        ]
    finally:
        for queue in queues:
            delete_swarm(queue)
            queue.redis.close()


def _time_calls(queue: TaskQueue, count: int, claimed: list[float], completed: list[float]) -> None:
    claims: list[Claim] = []
    for _ in range(count):
        start = time.perf_counter()
        claim = queue.claim_next("agent")
        claimed.append(time.perf_counter() - start)
        if claim is None:
            raise RuntimeError("nothing ready to claim: too many samples for the swarm")
        claims.append(claim)
    for claim in claims:
        start = time.perf_counter()
        queue.complete(claim.task_id, "agent", claim.token)
        completed.append(time.perf_counter() - start)


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
