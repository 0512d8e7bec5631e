#!/usr/bin/env python3
"""swarmqueue benchmarks side by side with RQ and BullMQ for Python, and the speed and memory goals.

Usage: .venv/bin/python scripts/bench.py [--quick] [--json] [--redis-url URL] [--repeat N]
                                         [--only SECTIONS] [--baseline DIR]

Starts a private redis-server on a free loopback port (unless ``--redis-url``), runs the same
workloads on each system in this process tree, and prints one report: tables of absolute
figures and ratios, then every goal marked met or missed. ``--baseline DIR`` (a checkout of an
older swarmqueue, with its own ``.venv``) adds that version to the lifecycle, cli and bigswarm
sections, timed in the same run (scripts/benchmarks/baseline.py). Writes nothing to disk; ``--json``
prints the report as JSON on stdout. ``--quick`` uses tiny sizes (the test suite runs it to
check the benchmark's own counting, never its speed). See docs/benchmarks.md.

Sections: lifecycle, growth, memory, wakeup, broadcast, recovery, mcp, reservations (file
reservations: claim_next's cost by live reservations, and the lifecycle with every task
reserving its files beside the same run without), replication; and, only when named with
``--only``: cluster (starts a loopback Redis Cluster of its own, see
scripts/benchmarks/cluster.py), cli (start-up of agent commands as whole processes beside
the redis-py floor) and bigswarm (status, tasks, plan show at 100,000 tasks; a 10,000-task
submit's time and memory).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import platform
import shutil
import signal
import statistics
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import redis

from benchmarks import baseline as bench_baseline
from benchmarks import broadcast as bench_broadcast
from benchmarks import growth as bench_growth
from benchmarks import lifecycle as bench_lifecycle
from benchmarks import memory as bench_memory
from benchmarks import placement as bench_placement
from benchmarks import recovery as bench_recovery
from benchmarks import replication as bench_replication
from benchmarks import reservations as bench_reservations
from benchmarks import rq as bench_rq
from benchmarks import wakeup as bench_wakeup
from benchmarks.procs import GroupRun
from benchmarks.report import Goal, Report, Table, number, ratio
from benchmarks.server import PrivateRedis, redis_version
from distributor.log import configure_logging
from distributor.store.connect import redis_from_url

SECTIONS = (
    "lifecycle", "growth", "memory", "wakeup", "broadcast", "recovery", "mcp", "reservations",
    "replication",
)
# not in the default run: six redis-servers of its own / minutes of processes / 100,000 tasks
ON_REQUEST = ("cluster", "cli", "bigswarm")


@dataclass(frozen=True)
class Sizes:
    """How much work each section does."""

    tasks: int  # lifecycle graph
    width: int
    processes: tuple[int, ...]
    pings: int  # per process, for the round-trip bound
    growth: tuple[int, ...]  # swarm sizes; the first is the baseline
    growth_samples: int
    fan_out: tuple[int, ...]
    fan_out_repeats: int
    memory_tasks: int
    completions: int  # memory after this many completions (stored replies included)
    wakeup_samples: int
    broadcasts: int
    panes: tuple[int, ...]
    pane_runs: int
    recovery_points: tuple[str, ...]  # where the killed worker stopped (workers/delivery.py)
    recovery_panes: int
    timeout: float  # seconds any one group of processes may take
    reservations_live: tuple[int, ...] = (0, 100, 1_000)  # live reservations of other agents
    reservation_samples: int = 500
    repeats: int = 1  # lifecycle runs per system and process count; the best one counts
    baseline: Path | None = None  # an older checkout: its agent loop is one more column
    placement: str = "free"  # CPUs of the 1-process lifecycle row (benchmarks/placement.py)


FULL = Sizes(
    tasks=10_000,
    width=50,
    processes=(1, 4, 8),
    pings=5_000,
    growth=(1_000, 10_000, 100_000),
    growth_samples=500,
    fan_out=(1, 100, 1_000),
    fan_out_repeats=5,
    memory_tasks=10_000,
    completions=100_000,
    wakeup_samples=300,
    broadcasts=1_000,
    panes=(50, 100),
    pane_runs=5,
    recovery_points=("start", "typing", "typed"),
    recovery_panes=20,
    timeout=240.0,
)
QUICK = Sizes(
    tasks=120,
    width=6,
    processes=(1, 2),
    pings=200,
    growth=(40, 200),
    growth_samples=10,
    fan_out=(1, 10),
    fan_out_repeats=2,
    memory_tasks=100,
    completions=200,
    wakeup_samples=5,
    broadcasts=10,
    panes=(2, 4),
    pane_runs=1,
    recovery_points=("typed",),
    recovery_panes=3,
    timeout=60.0,
    reservations_live=(0, 10, 50),
    reservation_samples=10,
)


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _cpu_model() -> str:
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def context(url: str, sizes: Sizes) -> dict[str, Any]:
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return {
        "machine": f"{os.cpu_count()} cores, {_cpu_model()}",
        "load average at start": load,
        "redis-server": redis_version(url),
        "python": platform.python_version(),
        "peers": f"rq {_version('rq')}, bullmq {_version('bullmq')}",
        "sizes": "quick" if sizes.tasks == QUICK.tasks else "full",
        "lifecycle runs per system": f"{sizes.repeats} (best counts)",
        "baseline (swarmqueue (before))": str(sizes.baseline or "-"),
        "1-process lifecycle placement": sizes.placement,
    }


Runner = Callable[[str, int, int, int, float], GroupRun]
BEFORE = "swarmqueue (before)"  # the lifecycle column of --baseline DIR


def _peer_runners(baseline: Path | None) -> dict[str, Runner | str]:
    """Each system's lifecycle runner, or why it cannot run."""
    runners: dict[str, Runner | str] = {"swarmqueue": bench_lifecycle.run_swarmqueue}
    if baseline is not None:
        runners[BEFORE] = bench_baseline.runner(baseline)
    runners["RQ"] = bench_rq.run_rq
    try:
        from benchmarks import bullmq as bench_bullmq
    except ModuleNotFoundError as exc:
        runners["BullMQ"] = f"not installed ({exc.name})"
    else:
        runners["BullMQ"] = bench_bullmq.run_bullmq
    return runners


def _spread(values: list[float]) -> dict[str, float]:
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


def _take_turns(
    runners: dict[str, Runner | str],
    url: str,
    sizes: Sizes,
    procs: int,
    rates: dict[str, float | None],
    row: dict[str, Any],
    bounds: list[float],
) -> None:
    """``sizes.repeats`` rounds in which each system runs once after a bound sample; each
    system's best run goes into ``rates`` and ``row``."""
    for _ in range(sizes.repeats):
        for name, runner in runners.items():
            if isinstance(runner, str):
                row[name] = {"skipped": runner}
                continue
            pings = bench_lifecycle.ping_rate(url, procs, sizes.pings, sizes.timeout)
            bounds.append(pings / 2)
            try:
                run = runner(url, sizes.tasks, sizes.width, procs, sizes.timeout)
            except TimeoutError as exc:
                if name == "swarmqueue":
                    raise
                # a peer that hangs (BullMQ 3.4's flows stalled once in ~10 runs here) is
                # reported, not fatal: its best other run, if any, still counts
                row.setdefault(name, {"failed": str(exc)})
                print(f"{name} with {procs} process(es): {exc}", file=sys.stderr)
                continue
            if run.per_second > (rates[name] or 0):
                rates[name] = run.per_second
                row[name] = {"completed": run.count, "distinct": len(set(run.ids)),
                             "seconds": run.seconds, "per_second": run.per_second}  # fmt: skip


def lifecycle(report: Report, url: str, sizes: Sizes) -> None:
    """Each system's best of ``repeats`` runs per process count, the systems taking turns; the
    round-trip bound (PINGs per second of as many processes, halved) is measured before each
    system's turn, so it samples the machine's load as the systems meet it: its median is the
    one the ratio uses, its min and max show how much the load moved meanwhile. The 1-process
    row runs at ``sizes.placement`` (benchmarks/placement.py: where the processes run moves a
    1-process PING bound by 3x on this VM)."""
    runners = _peer_runners(sizes.baseline)
    before = BEFORE in runners
    samples = sizes.repeats * sum(not isinstance(r, str) for r in runners.values())
    table = Table(
        f"1. Task lifecycle throughput (tasks/s): {sizes.tasks:,} tasks, {sizes.width} wide, "
        "each depending on one task of the layer before; best of "
        f"{sizes.repeats}, systems taking turns; bound: median (min-max) of "
        f"{samples} samples taken between the runs"
        + ("" if sizes.placement == "free" else f"; 1-process row: placement {sizes.placement}"),
        ["processes", "swarmqueue", *([BEFORE] if before else []), "RQ", "BullMQ", "bound",
         "vs RQ", "vs BullMQ", "vs bound", *(["vs before"] if before else [])],
    )  # fmt: skip
    figures: dict[str, Any] = {}
    for procs in sizes.processes:
        rates: dict[str, float | None] = dict.fromkeys(runners)
        row: dict[str, Any] = {"tasks": sizes.tasks, "repeats": sizes.repeats}
        bounds: list[float] = []
        placement = sizes.placement if procs == 1 else "free"
        row["placement"] = placement
        with bench_placement.placed(placement, url):
            _take_turns(runners, url, sizes, procs, rates, row, bounds)
        spread = _spread(bounds)
        bound = spread["median"]
        row["bound"] = bound
        row["bound_spread"] = {**spread, "samples": bounds}
        figures[str(procs)] = row
        sq = rates["swarmqueue"]
        table.rows.append(
            [
                str(procs),
                number(sq),
                *([number(rates[BEFORE])] if before else []),
                number(rates["RQ"]),
                number(rates["BullMQ"]) if rates["BullMQ"] else str(runners["BullMQ"]),
                f"{number(bound)} ({number(spread['min'])}-{number(spread['max'])})",
                ratio(sq, rates["RQ"]),
                ratio(sq, rates["BullMQ"]),
                f"{100 * sq / bound:.0f}% ({100 * sq / spread['max']:.0f}-"
                f"{100 * sq / spread['min']:.0f}%)"
                if sq and bound
                else "-",
                *([ratio(sq, rates[BEFORE])] if before else []),
            ]
        )
        report.goals.append(_ratio_goal(f"lifecycle vs RQ, {procs} proc", sq, rates["RQ"], 15))
        report.goals.append(
            _ratio_goal(f"lifecycle vs BullMQ, {procs} proc", sq, rates["BullMQ"], 2)
        )
        if procs == 1:
            report.goals.append(
                Goal("single agent vs round-trip bound (median)", sq and 100 * sq / bound, ">=",
                     35, "%")
            )  # fmt: skip
    report.tables.append(table)
    report.figures["lifecycle"] = figures


def _ratio_goal(name: str, ours: float | None, theirs: float | None, target: float) -> Goal:
    measured = ours / theirs if ours and theirs else None
    return Goal(name, measured, ">=", target, "x", "" if theirs else "peer not measured")


def growth(report: Report, url: str, sizes: Sizes) -> None:
    table = Table(
        "2. Cost growth: median time per call (µs) by tasks in the swarm",
        ["tasks", "claim_next", "complete", "claim_next vs first", "complete vs first"],
    )
    costs = bench_growth.call_costs(url, list(sizes.growth), sizes.growth_samples)
    base = costs[0]
    for c in costs:
        table.rows.append(
            [
                f"{c.tasks:,}",
                number(c.claim_next_us, 1),
                number(c.complete_us, 1),
                ratio(c.claim_next_us, base.claim_next_us),
                ratio(c.complete_us, base.complete_us),
            ]
        )
    last = costs[-1]
    span = f"{last.tasks:,} vs {base.tasks:,} tasks"
    report.goals.append(
        Goal(f"claim_next cost, {span}", last.claim_next_us / base.claim_next_us, "<=", 1.3, "x")
    )
    report.goals.append(
        Goal(f"complete cost, {span}", last.complete_us / base.complete_us, "<=", 1.3, "x")
    )
    fan = Table("   A completion that unblocks many dependents", ["dependents", "complete() ms"])
    fan_figures = {}
    for d in sizes.fan_out:
        ms = bench_growth.fan_out_ms(url, d, sizes.fan_out_repeats)
        fan.rows.append([f"{d:,}", number(ms, 2)])
        fan_figures[str(d)] = ms
    report.tables += [table, fan]
    report.figures["growth"] = {"calls": [vars(c) for c in costs], "fan_out_ms": fan_figures}


def memory(report: Report, url: str, sizes: Sizes) -> None:
    n = sizes.memory_tasks
    ours = bench_memory.swarmqueue_bytes_per_task(url, n, sizes.width)
    rq = bench_memory.rq_bytes_per_job(url, n, sizes.width)
    table = Table(
        f"3. Memory: Redis bytes per task ({n:,} submitted, same graph)",
        ["swarmqueue task", "RQ job (one dependency)", "ratio"],
        [[number(ours), number(rq), ratio(ours, rq)]],
    )
    report.goals.append(Goal("bytes per task vs RQ bytes per job", ours / rq, "<=", 1.0, "x"))
    c = bench_memory.completion_memory(url, sizes.completions, sizes.width)
    mb = 1_000_000
    after = Table(
        f"   Redis memory after {c.completions:,} completions (one agent's loop, same graph)",
        ["right after (MB)", "replies gone (MB)", "per stored reply (B)", "MEMORY USAGE (B)",
         "value (B)"],
        [[number(c.after_run / mb, 1), number(c.without_replies / mb, 1), number(c.reply_bytes),
          number(c.reply_memory_usage), number(c.reply_value_bytes)]],
    )  # fmt: skip
    report.tables += [table, after]
    report.goals.append(
        Goal(f"Redis MB after {c.completions:,} completions", c.after_run / mb, "<=", 60, "MB")
    )
    report.figures["memory"] = {
        "tasks": n,
        "swarmqueue_bytes": ours,
        "rq_bytes": rq,
        "completions": vars(c),
    }


def wakeup(report: Report, url: str, sizes: Sizes) -> None:
    table = Table(
        "4. Wake-up latency (ms): complete() returning -> the waiting agent holding its claim",
        ["client", "samples", "p50", "p99", "max"],
    )
    figures = {}
    for client in ("sync", "async"):
        r = bench_wakeup.measure_wakeup(url, sizes.wakeup_samples, client)
        figures[client] = r
        table.rows.append(
            [client, str(r["samples"]), number(r["p50_ms"], 2), number(r["p99_ms"], 2),
             number(r["max_ms"], 2)]
        )  # fmt: skip
        report.goals.append(Goal(f"wake-up p99 ({client} client)", r["p99_ms"], "<", 10, "ms"))
    report.tables.append(table)
    report.figures["wakeup"] = figures


def broadcast(report: Report, url: str, sizes: Sizes) -> None:
    client = redis_from_url(url, 1)
    if not isinstance(client, redis.Redis):
        raise SystemExit("the broadcast section needs one Redis or a Sentinel URL (RQ)")
    try:
        lat = bench_broadcast.broadcast_latency(client, sizes.broadcasts)
        table = Table("5. Broadcast (ms)", ["measure", "samples", "p50", "p99 / max"])
        table.rows.append(
            ["broadcast() returns", str(lat.samples), number(lat.p50_ms, 3), number(lat.p99_ms, 3)]
        )
        report.goals.append(Goal("broadcast() return p99", lat.p99_ms, "<", 2, "ms"))
        figures: dict[str, Any] = {"broadcast": vars(lat)}
        if shutil.which("tmux") is None:
            table.rows.append(["delivery to panes", "-", "tmux not installed", "-"])
            report.goals.append(Goal("100 panes delivered", None, "<", 100, "ms", "no tmux"))
        else:
            panes = bench_broadcast.pane_delivery(client, list(sizes.panes), sizes.pane_runs)
            for p in panes:
                table.rows.append(
                    [f"one job, {p.panes} panes", str(p.latency.samples),
                     number(p.latency.p50_ms, 1), number(p.latency.p99_ms, 1)]
                )  # fmt: skip
                if p.delivered != p.panes:
                    raise RuntimeError(f"delivery: {p.delivered} of {p.panes} panes delivered")
            biggest = panes[-1]
            report.goals.append(
                Goal(f"{biggest.panes} panes delivered (median)", biggest.latency.p50_ms, "<",
                     100, "ms")
            )  # fmt: skip
            figures["panes"] = {
                str(p.panes): {**vars(p.latency), "delivered": p.delivered} for p in panes
            }
    finally:
        client.close()
    report.tables.append(table)
    report.figures["broadcast"] = figures


def recovery(report: Report, url: str, sizes: Sizes) -> None:
    quick = sizes.tasks == QUICK.tasks
    table = Table(
        f"6. Recovery after a worker's SIGKILL (s): a broadcast to {sizes.recovery_panes} panes,"
        " the worker killed mid-delivery, a new worker started at once or after the lease"
        + (" (2 s lease, 0.5 s sweeps)" if quick else " (default 10 s lease, 2 s sweeps)"),
        ["killed at", "new worker", "kill -> final", "start -> final", "delivered"],
    )
    if shutil.which("tmux") is None:
        report.goals.append(Goal("recovery after SIGKILL", None, "<", 30, "s", "no tmux"))
        return
    runs = bench_recovery.measure_recovery(
        url, sizes.recovery_panes, list(sizes.recovery_points), quick
    )
    for r in runs:
        table.rows.append(
            [r.point, r.start, number(r.kill_to_final_s, 1), number(r.start_to_final_s, 1),
             f"{r.delivered}/{r.panes}"]
        )  # fmt: skip
    report.goals.append(
        Goal("kill -> final outcomes (worst)", max(r.kill_to_final_s for r in runs), "<", 30, "s")
    )
    report.goals.append(
        Goal("new worker start -> final outcomes (worst)",
             max(r.start_to_final_s for r in runs), "<", 30, "s")
    )  # fmt: skip
    report.tables.append(table)
    report.figures["recovery"] = [vars(r) for r in runs]


def mcp(report: Report, url: str, sizes: Sizes) -> None:
    """One task's round trip (complete and claim the next) via the API, MCP and the CLI."""
    from benchmarks import mcp_roundtrip as bench_mcp  # needs the mcp extra: imported only when run

    quick = sizes.tasks == QUICK.tasks
    figures = bench_mcp.measure_mcp(url, 5 if quick else 500, 1 if quick else 30)
    table = Table(
        "7. One task's round trip: complete + claim the next (ms; CPU per call: caller / server)",
        ["through", "samples", "p50", "p99", "mean", "CPU"],
    )
    for name, r in figures.items():
        shown_cpu = "-" if "cpu_ms" not in r else number(r["cpu_ms"], 2)
        if "server_cpu_ms" in r:
            shown_cpu += " / " + number(r["server_cpu_ms"], 2)
        table.rows.append(
            [name, str(r["samples"]), number(r["p50_ms"], 2), number(r["p99_ms"], 2),
             number(r["mean_ms"], 2), shown_cpu]
        )  # fmt: skip
    gap = figures["MCP (stdio)"]["p50_ms"] - figures["Python API"]["p50_ms"]
    report.goals.append(Goal("MCP p50 minus the Python API's p50", gap, "<", 2, "ms"))
    report.tables.append(table)
    report.figures["mcp"] = figures


def reservations(report: Report, url: str, sizes: Sizes) -> None:
    costs = bench_reservations.claim_costs(
        url, list(sizes.reservations_live), sizes.reservation_samples
    )
    table = Table(
        "8. File reservations: median claim_next (µs), tasks of 5 files (3 path levels), by"
        " live reservations of other agents",
        ["reservations", "claim_next", "vs 0 live", "vs no files", "in Redis", "vs 0 live"],
    )
    base = next(c for c in costs if c.live == 0 and c.label != "no files")
    plain = costs[0]
    for c in costs:
        table.rows.append(
            [c.label, number(c.claim_next_us, 1), ratio(c.claim_next_us, base.claim_next_us),
             ratio(c.claim_next_us, plain.claim_next_us), number(c.redis_us, 1),
             ratio(c.redis_us, base.redis_us)]
        )  # fmt: skip
    most = costs[-1]
    report.goals.append(
        Goal(f"claim_next with {most.live:,} live reservations vs 0",
             most.claim_next_us / base.claim_next_us, "<=", 1.5, "x")
    )  # fmt: skip
    report.goals.append(
        Goal(f"claim_next in Redis with {most.live:,} live reservations vs 0",
             most.redis_us / base.redis_us, "<=", 1.5, "x")
    )  # fmt: skip
    life = Table(
        f"   Lifecycle (tasks/s), {sizes.tasks:,} tasks as in table 1, each reserving 5 files"
        " when claimed (freed when completed)",
        ["processes", "no files", "5 files each", "ratio"],
    )
    figures: dict[str, Any] = {}
    for procs in sizes.processes:
        row: dict[str, Any] = {}
        for label, files in (("plain", 0), ("files", bench_reservations.FILES)):
            best = None
            for _ in range(sizes.repeats):
                run = bench_lifecycle.run_swarmqueue(
                    url, sizes.tasks, sizes.width, procs, sizes.timeout, files
                )
                if best is None or run.per_second > best.per_second:
                    best = run
            assert best is not None
            row[label] = {"completed": best.count, "distinct": len(set(best.ids)),
                          "seconds": best.seconds, "per_second": best.per_second}  # fmt: skip
        figures[str(procs)] = row
        plain_rate, files_rate = row["plain"]["per_second"], row["files"]["per_second"]
        life.rows.append(
            [str(procs), number(plain_rate), number(files_rate), ratio(files_rate, plain_rate)]
        )
    report.tables += [table, life]
    report.figures["reservations"] = {"claim_next": [vars(c) for c in costs], "lifecycle": figures}


def replication(report: Report, url: str, sizes: Sizes) -> None:
    """SWARMQUEUE_MIN_REPLICAS 0 vs 1 on a private master + replica (``url`` is not used)."""
    table = Table(
        "9. Durability: claim_next / complete latency (ms) with SWARMQUEUE_MIN_REPLICAS"
        " (private master + 1 replica, loopback)",
        ["min_replicas", "samples", "claim p50", "claim p99", "complete p50", "complete p99",
         "shortfalls"],
    )  # fmt: skip
    figures = bench_replication.measure_replication(sizes.broadcasts)
    for wanted, f in figures.items():
        claim, complete = f["claim"], f["complete"]
        table.rows.append(
            [wanted, str(claim["samples"]), number(claim["p50_ms"], 3),
             number(claim["p99_ms"], 3), number(complete["p50_ms"], 3),
             number(complete["p99_ms"], 3), str(f["shortfalls"])]
        )  # fmt: skip
    report.tables.append(table)
    report.figures["replication"] = figures


def cluster(report: Report, url: str, sizes: Sizes) -> None:
    """One redis-server against a 3-master cluster; publish costs; failover pause."""
    from benchmarks import cluster as bench_cluster  # imports the tests' cluster fixture

    per_swarm, width = max(20, sizes.tasks // 5), max(2, sizes.width // 5)
    swarms = bench_cluster.SWARMS
    table = Table(
        f"10. Redis Cluster: {swarms} swarms x {per_swarm:,} tasks ({width} wide), one agent "
        "process per swarm (tasks/s; per node: commands/s and CPU s during the run)",
        ["where", "tasks/s", "node 1", "node 2", "node 3"],
    )
    figures: dict[str, Any] = {}
    one = redis.Redis.from_url(url, decode_responses=True)
    names = [bench_lifecycle.new_swarm() for _ in range(swarms)]
    run, load = bench_cluster.lifecycle_on(
        lambda: redis.Redis.from_url(url), [one], names, per_swarm, width, sizes.timeout
    )
    one.close()
    figures["one_node"] = {"per_second": run.per_second, "nodes": load}
    table.rows.append(["1 redis-server", number(run.per_second), *_loads(load), "", ""])
    with bench_cluster.cluster() as started:
        nodes = bench_cluster.node_clients(started)
        names = bench_cluster.spread_swarms(started)
        run, load = bench_cluster.lifecycle_on(
            bench_cluster.cluster_maker(started), nodes, names, per_swarm, width, sizes.timeout
        )
        figures["cluster"] = {"per_second": run.per_second, "nodes": load}
        table.rows.append(["3-master cluster", number(run.per_second), *_loads(load)])
        for node in nodes:
            node.close()
        publishes = bench_cluster.publish_cost(started, sizes.wakeup_samples * 10)
    figures["publish"] = publishes
    report.tables.append(table)
    wake = Table(
        "10b. Wake-up publish on the cluster: script round trip, delivery to a subscriber "
        "(median µs); per message, what the nodes outside the channel's shard receive over the "
        "cluster bus and the CPU they spend (includes their idle housekeeping)",
        ["command", "round trip", "delivery", "bus msgs to other nodes", "their CPU µs"],
    )
    for command, cost in publishes.items():
        wake.rows.append([command, number(cost["round_trip_us"]), number(cost["delivery_us"]),
                          number(cost["other_nodes_bus_messages_per_message"], 2),
                          number(cost["other_nodes_cpu_us_per_message"], 1)])  # fmt: skip
    report.tables.append(wake)
    runs = [bench_cluster.failover_pause() for _ in range(sizes.pane_runs)]
    pauses = [run["pause_seconds"] for run in runs]
    figures["failover"] = runs
    lost = sum(r["completions_seen_by_agent"] - r["completed_in_redis"] for r in runs)
    doubled = sum(r["completed_twice"] for r in runs)
    report.tables.append(
        Table(
            "10c. Failover pause: SIGKILL of the swarm's master to the first transition sent "
            "after it (cluster-node-timeout 2000 ms)",
            ["runs", "seconds each", "acknowledged but lost", "completed twice"],
            [
                [
                    str(len(pauses)),
                    " / ".join(f"{p:.2f}" for p in pauses),
                    number(lost),
                    number(doubled),
                ]
            ],
        )
    )
    report.figures["cluster"] = figures


def _loads(load: list[dict[str, float]]) -> list[str]:
    return [f"{number(n['ops_per_second'])} ({n['cpu_seconds']:.1f} s)" for n in load]


def cli(report: Report, url: str, sizes: Sizes) -> None:
    """Each agent command's start-up as a whole process beside the floors (issue 17 item 1)."""
    from benchmarks import cli_start

    runs = 3 if sizes.tasks == QUICK.tasks else 20
    timings = cli_start.measure_cli(url, runs, sizes.baseline)
    table = Table(
        f"11. CLI start-up, whole processes, {runs} interleaved rounds (ms; import share: the"
        " command's imports over its p50)",
        ["command", "p50", "p90", "vs floor", "imports", "import share"],
    )
    floor = next(t for t in timings if t.name.startswith("floor"))
    bare = timings[0]
    for t in timings:
        share = "-" if t.import_share is None else f"{100 * t.import_share:.0f} %"
        table.rows.append(
            [t.name, number(t.p50_ms, 1), number(t.p90_ms, 1), ratio(t.p50_ms, floor.p50_ms),
             "-" if t.import_ms is None else number(t.import_ms, 1), share]
        )  # fmt: skip
        if t.name in ("next", "done", "heartbeat", "status"):
            report.goals.append(Goal(f"{t.name} p50 vs the redis-py floor",
                                     t.p50_ms / floor.p50_ms, "<=", 1.3, "x"))  # fmt: skip
        if t.name == "--help":
            report.goals.append(
                Goal("--help p50 minus python -c pass", t.p50_ms - bare.p50_ms, "<=", 100, "ms")
            )
    report.tables.append(table)
    report.figures["cli"] = [vars(t) for t in timings]


def bigswarm(report: Report, url: str, sizes: Sizes) -> None:
    """Operator reads at 100,000 tasks and a 10,000-task submit (issue 17 item 2)."""
    from benchmarks import bigswarm as bench_big

    quick = sizes.tasks == QUICK.tasks
    total, submit = (2_000, 500) if quick else (100_000, 10_000)
    f = bench_big.measure_big(url, total, submit)
    # --baseline: the older checkout measured right after, by the same code, on the same Redis
    old = bench_baseline.big_swarm(sizes.baseline, url, total, submit) if sizes.baseline else None
    table = Table(
        f"12. Big swarms: {total:,} tasks (ms, in process after start-up; median of 3)",
        ["figure", "measured", *(["before"] if old else []), "goal"],
    )
    rows = [
        ("status", "status_ms", 50), ("tasks (first page)", "tasks_ms", 300),
        ("plan show", "plan_show_ms", 1000), (f"submit {submit:,} tasks", "submit_ms", 500),
    ]  # fmt: skip

    def before(key: str, unit: str = "") -> list[str]:
        return [number(old[key], 1) + unit] if old else []

    for label, key, goal in rows:
        table.rows.append([label, number(f[key], 1), *before(key), f"< {goal}"])
        report.goals.append(Goal(f"{label} at {total:,} tasks", f[key], "<", goal, "ms"))
    table.rows.append([f"submit {submit:,} tasks: client peak", number(f["submit_peak_mb"], 1)
                       + " MB", *before("submit_peak_mb", " MB"), "< 40 MB"])  # fmt: skip
    table.rows.append([f"submit {submit:,} tasks: peak RSS growth",
                       number(f["submit_rss_mb"], 1) + " MB", *before("submit_rss_mb", " MB"),
                       "< 40 MB"])  # fmt: skip
    report.goals.append(Goal(f"submit {submit:,}: client memory (tracemalloc peak)",
                             f["submit_peak_mb"], "<", 40, "MB"))  # fmt: skip
    report.goals.append(Goal(f"submit {submit:,}: client peak RSS growth",
                             f["submit_rss_mb"], "<", 40, "MB"))  # fmt: skip
    report.tables.append(table)
    report.figures["bigswarm"] = {**f, **({"before": old} if old else {})}


RUNNERS: dict[str, Callable[[Report, str, Sizes], None]] = {
    "lifecycle": lifecycle,
    "growth": growth,
    "memory": memory,
    "wakeup": wakeup,
    "broadcast": broadcast,
    "recovery": recovery,
    "mcp": mcp,
    "reservations": reservations,
    "replication": replication,
    "cluster": cluster,
    "cli": cli,
    "bigswarm": bigswarm,
}


@contextlib.contextmanager
def redis_url(given: str | None) -> Iterator[str]:
    if given:
        yield given
        return
    with PrivateRedis() as url:
        yield url


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (checks, not figures)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--redis-url", help="use this Redis instead of a private redis-server")
    parser.add_argument(
        "--repeat", type=int, default=1, help="lifecycle runs per system (the best counts)"
    )
    parser.add_argument(
        "--baseline",
        metavar="DIR",
        help="an older swarmqueue checkout: the lifecycle section also runs its agent loop "
        f"(column {BEFORE!r}), taking turns with the others",
    )
    parser.add_argument(
        "--placement",
        choices=bench_placement.PLACEMENTS,
        default="free",
        help="CPUs of the 1-process lifecycle row: the scheduler's (free), redis-server and "
        "the workers on one CPU (same) or on two (apart); see scripts/benchmarks/placement.py",
    )
    parser.add_argument(
        "--only",
        default=",".join(SECTIONS),
        help=f"comma-separated: {', '.join(SECTIONS + ON_REQUEST)}",
    )
    args = parser.parse_args(argv)
    sections = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(sections) - set(SECTIONS) - set(ON_REQUEST)
    if unknown:
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")
    configure_logging("WARNING")  # delivery jobs log every delivery at INFO
    # On SIGTERM, unwind (stopping the private redis-server and tmux server) instead of dying.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    try:
        baseline = bench_baseline.check_dir(args.baseline) if args.baseline else None
    except ValueError as exc:
        parser.error(str(exc))
    sizes = dataclasses.replace(
        QUICK if args.quick else FULL,
        repeats=max(1, args.repeat),
        baseline=baseline,
        placement=args.placement,
    )
    with redis_url(args.redis_url) as url:
        report = Report(context(url, sizes))
        for name in sections:
            if not args.json:
                print(f"running {name}...", file=sys.stderr, flush=True)
            RUNNERS[name](report, url, sizes)
    print(json.dumps(report.to_json(), indent=2) if args.json else report.render())
    return 0


if __name__ == "__main__":
    sys.exit(main())
