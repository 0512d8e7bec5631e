"""Where the one-process lifecycle row runs: ``scripts/bench.py --placement``.

On this 2-core VM a PING round trip takes ~32 µs when the client and redis-server share a CPU
and ~115 µs when they run on different ones (waking the other, idle vCPU is slow), and the
scheduler picks either from one process to the next: consecutive 1-process bounds read
5,900-15,200. ``same`` pins redis-server and every 1-process worker (each system's, and the
pinger's) to CPU 0, ``apart`` redis-server to CPU 0 and the workers to CPU 1, so the systems and
the bound are compared at one placement; ``free`` (the default) leaves it to the scheduler.
Only a local redis-server can be pinned (its pid from ``INFO server``).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from benchmarks.procs import CPUS_ENV
from distributor.store.connect import redis_from_url

PLACEMENTS = ("free", "same", "apart")
_WORKER_CPU = {"same": 0, "apart": 1}
_SERVER_CPU = 0


def _server_pid(url: str) -> int:
    client = redis_from_url(url, 1)
    try:
        return int(client.info("server")["process_id"])
    finally:
        client.close()


@contextlib.contextmanager
def placed(placement: str, url: str) -> Iterator[None]:
    """Pin redis-server and the worker processes started meanwhile as ``placement`` says."""
    if placement == "free":
        yield
        return
    if len(os.sched_getaffinity(0)) < 2:
        raise RuntimeError("--placement needs 2 CPUs")
    pid = _server_pid(url)
    before = os.sched_getaffinity(pid)
    os.sched_setaffinity(pid, {_SERVER_CPU})
    os.environ[CPUS_ENV] = str(_WORKER_CPU[placement])
    try:
        yield
    finally:
        del os.environ[CPUS_ENV]
        os.sched_setaffinity(pid, before)
