"""Timed groups of processes: all start together, each reports what it finished and when.

A worker function runs in each child (forked, so it may be a closure). It connects, calls
``ready()`` (which returns when every child is connected), works, and returns :class:`Done`.
The group's time runs from that common start to the last child's last completion.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.synchronize import Barrier
from typing import Any


@dataclass(frozen=True)
class Done:
    """What one process did: how many units, which ids (when known), when it finished."""

    count: int
    ids: list[str]
    finished_at: float  # time.monotonic() of its last completion (system-wide on Linux)


@dataclass(frozen=True)
class GroupRun:
    """What a group of processes did together."""

    processes: int
    count: int
    ids: list[str]
    seconds: float

    @property
    def per_second(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else 0.0


Worker = Callable[[int, Callable[[], None]], Done]

# Comma-separated CPUs every worker process is pinned to (unset: the scheduler's choice); set
# by scripts/bench.py --placement (see benchmarks.placement), inherited by a baseline's child.
CPUS_ENV = "SWARMQUEUE_BENCH_CPUS"


def _pin() -> None:
    cpus = os.environ.get(CPUS_ENV)
    if cpus:
        os.sched_setaffinity(0, {int(c) for c in cpus.split(",")})


def _child(worker: Worker, index: int, barrier: Barrier, results: Any, timeout: float) -> None:
    def ready() -> None:
        barrier.wait(timeout)

    try:
        _pin()
        results.put(("ok", worker(index, ready)))
    except BaseException:  # noqa: BLE001 -- sent to the parent, which raises it
        results.put(("error", traceback.format_exc()))
        barrier.abort()


def run_group(worker: Worker, processes: int, timeout: float) -> GroupRun:
    """Run ``worker`` in ``processes`` forked children at once; raise if any fails or hangs."""
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(processes + 1)
    results = ctx.Queue()
    children = [
        ctx.Process(target=_child, args=(worker, i, barrier, results, timeout), daemon=True)
        for i in range(processes)
    ]
    for child in children:
        child.start()
    deadline = time.monotonic() + timeout
    try:
        barrier.wait(timeout)
        start = time.monotonic()
        done: list[Done] = []
        while len(done) < processes:
            try:
                status, value = results.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                raise TimeoutError(f"workers did not finish within {timeout:g}s") from None
            if status != "ok":
                raise RuntimeError(f"a benchmark worker failed:\n{value}")
            done.append(value)
    except BaseException:
        for child in children:
            if child.is_alive():
                child.terminate()
        raise
    finally:
        for child in children:
            child.join(timeout=10)
            if child.is_alive():  # it reported, but hangs on its way out
                child.terminate()
                child.join(timeout=10)
    ids = [i for d in done for i in d.ids]
    finished = max((d.finished_at for d in done if d.count), default=start)
    return GroupRun(processes, sum(d.count for d in done), ids, max(0.0, finished - start))
