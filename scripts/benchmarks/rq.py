"""RQ running the benchmark's graph: no-op jobs chained with ``depends_on``, ``SimpleWorker``s.

Each worker process loops ``work(burst=True)`` (a fresh ``SimpleWorker`` each time) until the
queue's finished-job registry holds every job: a burst worker stops when the queue is empty for a
moment, which happens while dependents are still deferred behind another worker's job.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import redis
from rq import Queue, SimpleWorker
from rq.executions import Execution
from rq.job import Job
from rq.registry import FinishedJobRegistry

from benchmarks import dag as bench_dag
from benchmarks.procs import Done, GroupRun, run_group

IDLE_PAUSE = 0.002  # seconds a worker that found the queue empty waits before looking again


def noop() -> None:
    """The job: nothing, so the benchmark measures the queue alone."""


class CountingWorker(SimpleWorker):
    """A ``SimpleWorker`` that remembers the ids of the jobs it performed successfully."""

    performed: list[str]

    def perform_job(self, job: Job, queue: Queue, execution: Execution) -> bool:
        ok = super().perform_job(job, queue, execution)
        if ok:
            self.performed.append(job.id)
        return ok


def new_queue(client: redis.Redis) -> Queue:
    """A queue of its own; its name (8 hex digits) also prefixes its job ids."""
    return Queue(uuid.uuid4().hex[:8], connection=client)


def job_id(queue: Queue, i: int) -> str:
    return f"{queue.name}{bench_dag.task_id(i)}"


def enqueue_dag(queue: Queue, count: int, width: int) -> None:
    """Enqueue the layered graph, each job depending on its parent's job."""
    for i in range(count):
        dep = bench_dag.parent(i, width)
        queue.enqueue(
            noop,
            job_id=job_id(queue, i),
            depends_on=None if dep is None else job_id(queue, dep),
        )


def delete_queue(queue: Queue) -> None:
    """Delete the queue with its jobs, results and registries."""
    client = queue.connection
    queue.delete(delete_jobs=True)
    for pattern in (f"rq:job:{queue.name}*", f"rq:results:{queue.name}*", f"rq:*:{queue.name}*"):
        keys = list(client.scan_iter(match=pattern, count=1000))
        for start in range(0, len(keys), 500):
            client.delete(*keys[start : start + 500])


def _worker(url: str, queue_name: str, total: int, timeout: float) -> Callable[..., Done]:
    def work(index: int, ready: Callable[[], None]) -> Done:
        client = redis.Redis.from_url(url)
        queue = Queue(queue_name, connection=client)
        finished = FinishedJobRegistry(queue=queue)
        client.ping()
        ids: list[str] = []
        last = time.monotonic()
        ready()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            worker = CountingWorker(
                [queue], connection=client, name=f"bench-{index}-{uuid.uuid4().hex[:8]}"
            )
            worker.performed = ids
            if worker.work(burst=True, logging_level="WARNING"):
                last = time.monotonic()
            if finished.count >= total:
                break
            time.sleep(IDLE_PAUSE)
        client.close()
        return Done(len(ids), ids, last)

    return work


def run_rq(url: str, count: int, width: int, processes: int, timeout: float) -> GroupRun:
    """Enqueue the graph on a fresh queue and let ``processes`` SimpleWorkers run it."""
    client = redis.Redis.from_url(url)
    queue = new_queue(client)
    enqueue_dag(queue, count, width)
    try:
        run = run_group(_worker(url, queue.name, count, timeout), processes, timeout)
        finished = FinishedJobRegistry(queue=queue).count
    finally:
        delete_queue(queue)
    if run.count != count or len(set(run.ids)) != count or finished != count:
        raise RuntimeError(
            f"RQ miscounted: {run.count} jobs run, {len(set(run.ids))} distinct, "
            f"{finished} finished"
        )
    client.close()
    return run
