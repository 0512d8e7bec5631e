"""BullMQ for Python running the benchmark's graph: no-op jobs, dependencies as flows.

A BullMQ flow is a tree whose parent job runs after its children, so each column of the graph
(a chain) is one flow: the last task is the root and the first task the deepest child. Each
process runs one asyncio ``Worker`` with ``concurrency`` 1, like one agent working one task at
a time; it stops once the queue reports every job completed.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable
from typing import Any

from bullmq import FlowProducer, Queue, Worker

from benchmarks import dag as bench_dag
from benchmarks.procs import Done, GroupRun, run_group

POLL_SECONDS = 0.02  # how often a worker process asks whether all jobs are completed
CLOSE_SECONDS = 5.0


def _flow(queue_name: str, chain: list[int]) -> dict[str, Any]:
    """One chain as a nested flow: ``chain[-1]`` at the root, ``chain[0]`` deepest."""
    node: dict[str, Any] | None = None
    for i in chain:
        job: dict[str, Any] = {"name": "noop", "queueName": queue_name, "data": {"i": i}}
        if node is not None:
            job["children"] = [node]
        node = job
    assert node is not None
    return node


async def add_dag(url: str, queue_name: str, count: int, width: int) -> None:
    """Add the graph as one flow per chain, in one atomic call."""
    producer = FlowProducer({"connection": url})
    try:
        await producer.addBulk([_flow(queue_name, c) for c in bench_dag.chains(count, width)])
    finally:
        await producer.close()


async def completed(queue: Queue) -> int:
    counts = await queue.getJobCounts("completed")
    return int(counts["completed"])


async def _work(
    url: str, queue_name: str, total: int, timeout: float, ready: Callable[[], None]
) -> Done:
    ids: list[str] = []
    last = time.monotonic()

    async def process(job: Any, token: str) -> None:
        ids.append(str(job.id))

    def on_completed(job: Any, result: Any) -> None:
        nonlocal last
        last = time.monotonic()

    queue = Queue(queue_name, {"connection": url})
    await completed(queue)  # connected
    await asyncio.to_thread(ready)
    worker = Worker(queue_name, process, {"connection": url, "concurrency": 1})
    worker.on("completed", on_completed)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and await completed(queue) < total:
        await asyncio.sleep(POLL_SECONDS)
    # Worker.close() can hang after the last job (seen once in ~30 runs of bullmq 3.4.4); the
    # work is done and timed by then, so give it a few seconds and move on.
    for closing in (worker.close(), queue.close()):
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(closing, CLOSE_SECONDS)
    return Done(len(ids), ids, last)


def _worker(url: str, queue_name: str, total: int, timeout: float) -> Callable[..., Done]:
    def work(index: int, ready: Callable[[], None]) -> Done:
        return asyncio.run(_work(url, queue_name, total, timeout, ready))

    return work


def run_bullmq(url: str, count: int, width: int, processes: int, timeout: float) -> GroupRun:
    """Add the graph to a fresh queue and let ``processes`` workers run it."""
    queue_name = f"bench-{uuid.uuid4().hex[:10]}"
    asyncio.run(add_dag(url, queue_name, count, width))
    run = run_group(_worker(url, queue_name, count, timeout), processes, timeout)

    async def check() -> int:
        queue = Queue(queue_name, {"connection": url})
        try:
            return await completed(queue)
        finally:
            await queue.close()

    done = asyncio.run(check())
    if run.count != count or len(set(run.ids)) != count or done != count:
        raise RuntimeError(
            f"BullMQ miscounted: {run.count} jobs run, {len(set(run.ids))} distinct, "
            f"{done} completed"
        )
    return run
