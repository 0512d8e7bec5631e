"""File reservations: what ``claim_next`` costs with 0, 100 and 1,000 live reservations.

Every task reserves 5 files of 3 path levels (``d3/e7/f123-2.py``). The live reservations are
those of claims held by other agents, in the very directories the timed agent's tasks use, so
every index set on the way (the root, ``d3``, ``d3/e7``) is the one a real swarm would have.
The timed agent's tasks conflict with none of them: the cost measured is the check, not a
skip. Each timed claim is completed before the next (untimed), so the timed agent never
holds reservations itself; "no files" is the same swarm with tasks that reserve nothing.
Besides the time the client waits, Redis' own time for each timed script (``INFO
commandstats``, read before and after it) is kept: on a loaded machine it shows the script's
cost with less of the scheduling noise.
The sizes take turns, ``rounds`` times, so a change in the machine's load affects all alike.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Any

from benchmarks.lifecycle import new_swarm
from distributor.settings import Settings
from distributor.tasks.queue import TaskQueue
from distributor.testing import delete_swarm

FILES = 5


@dataclass(frozen=True)
class ClaimCost:
    """Median microseconds per ``claim_next`` with ``live`` reservations of other agents."""

    label: str
    live: int
    samples: int
    claim_next_us: float
    redis_us: float  # Redis' own time per claim_next script (median)


def _files(n: int) -> list[str]:
    return [f"d{n % 10}/e{(n // 10) % 10}/f{n}-{k}.py" for k in range(FILES)]


def _swarm(url: str, live: int, samples: int, files: bool) -> TaskQueue:
    swarm = new_swarm()
    queue = TaskQueue.from_url(url, swarm, settings=Settings(swarm=swarm))
    holders = live // FILES
    plan: list[dict[str, Any]] = [
        {"id": f"h{i}", "title": "held", "files": _files(i)} for i in range(holders)
    ]
    plan += [
        {"id": f"w{i}", "title": "timed", "files": _files(holders + i) if files else []}
        for i in range(samples)
    ]
    queue.submit(plan)
    for i in range(holders):  # other agents hold these claims: their files stay reserved
        if not queue.claim(f"h{i}", f"holder-{i % 50}", lease=3600).claimed:
            raise RuntimeError("reservation benchmark: a holder could not claim")
    if len(queue.reservations()) != holders * FILES:
        raise RuntimeError("reservation benchmark: wrong number of live reservations")
    return queue


def claim_costs(url: str, live_counts: list[int], samples: int, rounds: int = 5) -> list[ClaimCost]:
    """Median ``claim_next`` time per number of live reservations (plus tasks without files)."""
    setups = [("no files", 0, False)] + [(f"{n:,} live", n, True) for n in live_counts]
    queues = [_swarm(url, live, samples, files) for _, live, files in setups]
    times: list[list[float]] = [[] for _ in setups]
    server: list[list[float]] = [[] for _ in setups]
    try:
        per_round = [samples // rounds + (r < samples % rounds) for r in range(rounds)]
        for count in per_round:
            for queue, timed, inside in zip(queues, times, server, strict=True):
                for _ in range(count):
                    before = _script_usec(queue)
                    start = time.perf_counter()
                    claim = queue.claim_next("agent")
                    timed.append(time.perf_counter() - start)
                    inside.append(_script_usec(queue) - before)
                    if claim is None or not claim.task_id.startswith("w"):
                        raise RuntimeError("reservation benchmark: claimed the wrong task")
                    queue.complete(claim.task_id, "agent", claim.token)
        return [
            ClaimCost(label, live, len(t), statistics.median(t) * 1e6, statistics.median(r))
            for (label, live, _), t, r in zip(setups, times, server, strict=True)
        ]
    finally:
        for queue in queues:
            delete_swarm(queue)
            queue.redis.close()


def _script_usec(queue: TaskQueue) -> float:
    """Microseconds Redis has spent in EVALSHA so far (``INFO commandstats``)."""
    stats: Any = queue.redis.info("commandstats")
    return float(stats["cmdstat_evalsha"]["usec"])
