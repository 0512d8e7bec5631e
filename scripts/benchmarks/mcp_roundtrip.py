"""One task's round trip as an agent makes it: complete the task it holds and claim the next one
in the same step, through the Python API (sync and asyncio), through MCP (``swarmqueue mcp`` over
stdio, driven by the SDK's own client) and through the CLI (``swarmqueue done T --next``, a
process per task, as an agent's shell runs it). Goal: MCP's p50 within 2 ms of the API's.

Each system gets its own swarm of independent tasks; one agent claims the first, then every
sample is one complete-and-claim-next call, timed by the caller, until the swarm is done. The API
and MCP samples are taken in turn (one of each, then the next round), so a machine busy with other
work slows them alike. The MCP server's start (the SDK's import) is not timed: an agent CLI starts
it once per session.

Usage: ``.venv/bin/python scripts/benchmarks/mcp_roundtrip.py [--url redis://...] [--tasks 500]``.
``scripts/bench.py --only mcp`` imports :func:`measure_mcp`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from distributor import AsyncTaskQueue, TaskQueue
from distributor.testing import delete_swarm

SWARMQUEUE = Path(sys.executable).with_name("swarmqueue")
AGENT = "bench-agent"


def _plan(n: int) -> dict[str, Any]:
    return {"tasks": [{"id": f"m{i:05d}", "title": f"task {i}"} for i in range(n)]}


def _summary(seconds: list[float], completed: int, cpu: float | None = None) -> dict[str, Any]:
    ms = sorted(x * 1000 for x in seconds)
    cuts = statistics.quantiles(ms, n=100, method="inclusive") if len(ms) > 1 else ms * 99
    out = {
        "samples": len(ms),
        "completed": completed,
        "p50_ms": round(statistics.median(ms), 3),
        "p99_ms": round(cuts[98], 3),
        "mean_ms": round(statistics.fmean(ms), 3),
    }
    if cpu is not None:  # CPU of the calling process per call, in ms
        out["cpu_ms"] = round(cpu * 1000 / max(1, len(ms)), 3)
    return out


def _children_cpu() -> float:
    """CPU seconds (user + system) used so far by this process's children (the MCP server)."""
    total, me = 0.0, os.getpid()
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", encoding="ascii") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == me:
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _swarm(url: str, n: int) -> TaskQueue:
    queue = TaskQueue.from_url(url, f"bench-mcp-{uuid.uuid4().hex[:10]}")
    queue.submit(_plan(n))
    return queue


async def _interleaved(url: str, n: int) -> dict[str, dict[str, Any]]:
    """The API (sync and asyncio) and MCP samples taken in turn, so a busy machine slows all
    of them alike: one complete-and-claim-next through each, then the next round."""
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    sync_q, async_swarm, mcp_swarm = _swarm(url, n), _swarm(url, n), _swarm(url, n)
    env = {"SWARMQUEUE_REDIS_URL": url, "SWARMQUEUE_SWARM": mcp_swarm.swarm}
    env["SWARMQUEUE_LOG_LEVEL"] = "WARNING"
    params = StdioServerParameters(command=str(SWARMQUEUE), args=["mcp", "--agent", AGENT], env=env)
    names = ("Python API", "Python API (asyncio)", "MCP (stdio)")
    times: dict[str, list[float]] = {name: [] for name in names}
    cpu = dict.fromkeys(names, 0.0)
    try:
        async with (
            AsyncTaskQueue.from_url(url, async_swarm.swarm) as aq,
            stdio_client(params) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            first = await session.call_tool("next_task", {})
            assert first.structured_content is not None and not first.is_error
            task: dict[str, Any] | None = first.structured_content["task"]
            sync_claim, async_claim = sync_q.claim_next(AGENT), await aq.claim_next(AGENT)
            server_cpu = _children_cpu()
            while sync_claim is not None and async_claim is not None and task is not None:
                start, used = time.perf_counter(), time.process_time()
                step = sync_q.complete(sync_claim.task.id, AGENT, sync_claim.token, claim_next=True)
                times["Python API"].append(time.perf_counter() - start)
                cpu["Python API"] += time.process_time() - used
                sync_claim = step.next
                start, used = time.perf_counter(), time.process_time()
                astep = await aq.complete(
                    async_claim.task.id, AGENT, async_claim.token, claim_next=True
                )
                times["Python API (asyncio)"].append(time.perf_counter() - start)
                cpu["Python API (asyncio)"] += time.process_time() - used
                async_claim = astep.next
                start, used = time.perf_counter(), time.process_time()
                reply = await session.call_tool("complete_task", {"task_id": task["id"]})
                times["MCP (stdio)"].append(time.perf_counter() - start)
                cpu["MCP (stdio)"] += time.process_time() - used
                assert reply.structured_content is not None and not reply.is_error, reply
                task = reply.structured_content["next"]
            server_cpu = _children_cpu() - server_cpu  # the server process's own share
        finished = {
            name: sum(t.status.value == "completed" for t in q.tasks())
            for name, q in (
                ("Python API", sync_q), ("Python API (asyncio)", async_swarm),
                ("MCP (stdio)", mcp_swarm),
            )
        }  # fmt: skip
        out = {name: _summary(ts, finished[name], cpu[name]) for name, ts in times.items()}
        out["MCP (stdio)"]["server_cpu_ms"] = round(server_cpu * 1000 / len(times[names[2]]), 3)
        return out
    finally:
        for q in (sync_q, async_swarm, mcp_swarm):
            delete_swarm(q)
            q.redis.close()


def measure_cli(url: str, n: int) -> dict[str, Any]:
    """``swarmqueue done T --agent A --next --json`` per task, a process each."""
    queue = _swarm(url, n)
    state = tempfile.mkdtemp(prefix="bench-mcp-")  # the CLI's remembered tokens
    env = {**os.environ, "SWARMQUEUE_REDIS_URL": url, "SWARMQUEUE_SWARM": queue.swarm}
    env.update(SWARMQUEUE_LOG_LEVEL="WARNING", SWARMQUEUE_STATE_DIR=state)
    cli = [str(SWARMQUEUE)]
    try:
        first = subprocess.run(
            [*cli, "next", "--agent", AGENT, "--json"],
            env=env, capture_output=True, text=True, check=True, timeout=60,
        )  # fmt: skip
        task: dict[str, Any] | None = json.loads(first.stdout)
        times, done = [], 0
        while task is not None:
            start = time.perf_counter()
            step = subprocess.run(
                [*cli, "done", task["id"], "--agent", AGENT, "--next", "--json"],
                env=env, capture_output=True, text=True, check=True, timeout=60,
            )  # fmt: skip
            times.append(time.perf_counter() - start)
            done += 1
            task = json.loads(step.stdout)["next"]
        return _summary(times, done)
    finally:
        shutil.rmtree(state, ignore_errors=True)
        delete_swarm(queue)
        queue.redis.close()


def measure_mcp(url: str, tasks: int, cli_tasks: int) -> dict[str, dict[str, Any]]:
    """Every system's figures, keyed by name."""
    return {**asyncio.run(_interleaved(url, tasks)), "CLI": measure_cli(url, cli_tasks)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--tasks", type=int, default=500)
    parser.add_argument("--cli-tasks", type=int, default=30)
    args = parser.parse_args()
    print(json.dumps(measure_mcp(args.url, args.tasks, args.cli_tasks), indent=2))


if __name__ == "__main__":
    main()
