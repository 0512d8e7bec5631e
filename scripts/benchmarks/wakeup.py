"""Wake-up latency: from ``complete()`` returning to the waiting agent holding its claim.

Each sample: a holder claims ``gate``; a waiter blocks in ``claim_next(wait=...)`` (subscribed,
nothing ready); the holder completes ``gate``, which makes ``work`` available; the time from
``complete()`` returning to the waiter's ``claim_next`` returning with ``work`` is one sample.
Measured with the sync client (waiter in a thread) and the asyncio client (waiter a task on the
same loop), on a real Redis. Goal: p99 under 10 ms.

Usage: ``.venv/bin/python scripts/benchmarks/wakeup.py [--url redis://...] [--samples 500]``.
``scripts/bench.py`` imports :func:`measure_wakeup`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import threading
import time
import uuid
from typing import Any

from distributor import AsyncTaskQueue, Claim, Settings, TaskQueue
from distributor.testing import delete_swarm

WAIT = 30.0
SETTLE = 0.002  # after SSUBSCRIBE shows up: let the waiter's post-subscribe re-check finish


def _pair(i: int) -> dict[str, Any]:
    return {
        "tasks": [
            {"id": f"gate{i}", "title": "gate"},
            {"id": f"work{i}", "title": "work", "dependencies": [f"gate{i}"]},
        ]
    }


def _summary(latencies: list[float], client: str) -> dict[str, Any]:
    ms = sorted(x * 1000 for x in latencies)
    cuts = statistics.quantiles(ms, n=100, method="inclusive")
    return {
        "client": client,
        "samples": len(ms),
        "p50_ms": round(statistics.median(ms), 3),
        "p99_ms": round(cuts[98], 3),
        "max_ms": round(ms[-1], 3),
        "mean_ms": round(statistics.fmean(ms), 3),
    }


def _subscribers(queue: TaskQueue) -> int:
    return int(queue.redis.pubsub_shardnumsub(queue.keys.channel)[0][1])


def _wait_subscribed(queue: TaskQueue) -> None:
    while _subscribers(queue) < 1:
        time.sleep(0.0002)
    time.sleep(SETTLE)


def _measure_sync(holder: TaskQueue, waiter: TaskQueue, samples: int) -> list[float]:
    latencies: list[float] = []
    for i in range(samples):
        holder.submit(_pair(i))
        gate = holder.claim(f"gate{i}", "holder").claim
        assert gate is not None
        got: dict[str, Any] = {}

        def wait(got: dict[str, Any] = got) -> None:
            got["claim"] = waiter.claim_next("waiter", wait=WAIT)
            got["at"] = time.perf_counter()

        thread = threading.Thread(target=wait)
        thread.start()
        _wait_subscribed(holder)
        holder.complete(f"gate{i}", "holder", gate.token)
        returned = time.perf_counter()
        thread.join()
        claim: Claim | None = got["claim"]
        if claim is None or claim.task_id != f"work{i}":
            raise RuntimeError(f"sample {i}: waiter got {claim!r}")
        latencies.append(got["at"] - returned)
    return latencies


async def _measure_async(holder: AsyncTaskQueue, samples: int) -> list[float]:
    latencies: list[float] = []
    for i in range(samples):
        await holder.submit(_pair(i))
        gate = (await holder.claim(f"gate{i}", "holder")).claim
        assert gate is not None
        at: list[float] = []

        async def wait(at: list[float] = at) -> Claim | None:
            claim = await holder.claim_next("waiter", wait=WAIT)
            at.append(time.perf_counter())
            return claim

        task = asyncio.create_task(wait())
        while (await holder.redis.pubsub_shardnumsub(holder.keys.channel))[0][1] < 1:
            await asyncio.sleep(0.0002)
        await asyncio.sleep(SETTLE)
        await holder.complete(f"gate{i}", "holder", gate.token)
        returned = time.perf_counter()
        claim = await task
        if claim is None or claim.task_id != f"work{i}":
            raise RuntimeError(f"sample {i}: waiter got {claim!r}")
        latencies.append(at[0] - returned)
    return latencies


def measure_wakeup(redis_url: str, samples: int = 500, client: str = "sync") -> dict[str, Any]:
    """Wake-up latency percentiles (ms) on ``redis_url`` with the ``sync`` or ``async`` client.

    Uses a fresh swarm and deletes only its keys afterwards.
    """
    if samples < 2:
        raise ValueError("samples must be at least 2")
    swarm = f"bench-wakeup-{uuid.uuid4().hex[:10]}"
    settings = Settings(redis_url=redis_url)
    holder = TaskQueue.from_url(redis_url, swarm, settings=settings)
    try:
        if client == "sync":
            waiter = TaskQueue.from_url(redis_url, swarm, settings=settings)
            try:
                latencies = _measure_sync(holder, waiter, samples)
            finally:
                waiter.redis.close()
        elif client == "async":

            async def run() -> list[float]:
                async with AsyncTaskQueue.from_url(redis_url, swarm, settings=settings) as aq:
                    return await _measure_async(aq, samples)

            latencies = asyncio.run(run())
        else:
            raise ValueError(f"client must be 'sync' or 'async', not {client!r}")
    finally:
        delete_swarm(holder)
        holder.redis.close()
    return _summary(latencies, client)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=Settings().redis_url, help="a real Redis")
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--json", action="store_true", help="one JSON object per client")
    args = parser.parse_args()
    for client in ("sync", "async"):
        result = measure_wakeup(args.url, args.samples, client)
        if args.json:
            print(json.dumps(result))
        else:
            print(
                f"wake-up latency ({client}, {result['samples']} samples): "
                f"p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms, max {result['max_ms']} ms"
            )


if __name__ == "__main__":
    main()
