"""Big swarms: what an operator's read commands and a large submit cost at 100,000 tasks.

The read commands run in this process through click (import and connection already paid, as
the CLI start-up section measures those), output captured; each figure is the median of a few
runs. The submit is timed on its own and its client memory is tracemalloc's peak in a second,
untimed run; the growth of a fresh process' peak RSS while it submits is measured too.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
import tracemalloc
from typing import Any

import redis
from click.testing import CliRunner

from distributor.cli import main
from distributor.tasks.queue import TaskQueue


def _plan(prefix: str, count: int, width: int, offset: int = 0) -> dict[str, Any]:
    """``count`` tasks in layers ``width`` wide, each after the task ``width`` before it."""
    tasks = []
    for i in range(offset, offset + count):
        deps = [f"{prefix}{i - width}"] if i >= width else []
        tasks.append({"id": f"{prefix}{i}", "title": f"task {i}", "dependencies": deps})
    return {"tasks": tasks}


def _clean(url: str, swarm: str) -> None:
    r = redis.Redis.from_url(url)
    for key in r.scan_iter(f"*{swarm}*", count=5000):
        r.delete(key)


def _timed(runner: CliRunner, env: dict[str, str], args: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        result = runner.invoke(main, args, env=env, catch_exceptions=False)
        times.append((time.perf_counter() - start) * 1000)
        assert result.exit_code == 0, result.output
    return statistics.median(times)


# The peak is the kernel's VmHWM of this process image: getrusage's ru_maxrss survives exec, so
# a child of a big parent (this benchmark, after its submits) starts at the parent's peak and
# reads no growth at all.
_RSS_CHILD = """
import sys
sys.path.insert(0, sys.argv[3])
from benchmarks.bigswarm import _plan
from distributor.tasks.queue import TaskQueue

def peak_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise SystemExit("no VmHWM in /proc/self/status")

queue = TaskQueue.from_url(sys.argv[1], swarm=sys.argv[2])
queue.ping()
plan = _plan("r", int(sys.argv[4]), 100)
before = peak_mb()
queue.submit(plan)
print(peak_mb() - before)
"""


def _submit_rss_mb(url: str, swarm: str, count: int) -> float:
    """How much a fresh process' peak RSS grows while it submits ``count`` tasks (MB)."""
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run(
        [sys.executable, "-c", _RSS_CHILD, url, swarm, here, str(count)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return float(done.stdout)


def measure_big(url: str, total: int, submit_tasks: int, runs: int = 3) -> dict[str, float]:
    """Figures (ms, MB) for a swarm of ``total`` tasks and a ``submit_tasks`` plan."""
    swarm = f"bigswarm{os.getpid()}"
    figures: dict[str, float] = {}
    queue = TaskQueue.from_url(url, swarm=swarm)
    try:
        submits = []
        for _ in range(runs):  # one submit is too noisy a figure on a shared machine
            plan = _plan("s", submit_tasks, 100)
            start = time.perf_counter()
            queue.submit(plan)
            submits.append((time.perf_counter() - start) * 1000)
            _clean(url, swarm)
        figures["submit_ms"] = statistics.median(submits)
        queue = TaskQueue.from_url(url, swarm=swarm)
        plan = _plan("s", submit_tasks, 100)
        tracemalloc.start()
        queue.submit(plan)
        figures["submit_peak_mb"] = tracemalloc.get_traced_memory()[1] / 1e6
        tracemalloc.stop()
        del plan
        _clean(url, swarm)
        figures["submit_rss_mb"] = _submit_rss_mb(url, swarm, submit_tasks)
        _clean(url, swarm)
        queue = TaskQueue.from_url(url, swarm=swarm)
        chunk = 10_000
        for offset in range(0, total, chunk):
            queue.submit(_plan("t", min(chunk, total - offset), 1000, offset))
        for _ in range(total // 10):  # some progress, so every status shows up
            queue.claim_next("bench")
        runner = CliRunner()
        env = {"SWARMQUEUE_REDIS_URL": url, "SWARMQUEUE_SWARM": swarm}
        figures["status_ms"] = _timed(runner, env, ["status"], runs)
        figures["tasks_ms"] = _timed(runner, env, ["tasks"], runs)
        figures["plan_show_ms"] = _timed(runner, env, ["plan", "show"], runs)
    finally:
        _clean(url, swarm)
    return figures
