"""``scripts/bench.py --quick`` runs, and counts its own work right: every task it timed was
completed exactly once, on every system it compared. Speed is never asserted here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.long]  # ~30 s: runs with -m long (CI)

BENCH = Path(__file__).resolve().parent.parent / "scripts" / "bench.py"


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--json"],
        capture_output=True,
        text=True,
        timeout=150,  # the reservations section included
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_every_timed_task_was_completed_once(report: dict[str, Any]) -> None:
    lifecycle = report["figures"]["lifecycle"]
    assert set(lifecycle) == {"1", "2"}
    for row in lifecycle.values():
        tasks = row["tasks"]
        for system in ("swarmqueue", "RQ", "BullMQ"):
            figures = row[system]
            if "skipped" in figures:
                assert system == "BullMQ", figures  # only an optional peer may be missing
                continue
            assert figures["completed"] == tasks, (system, figures)
            assert figures["distinct"] == tasks, (system, figures)
            assert figures["seconds"] > 0
        spread = row["bound_spread"]
        assert 0 < spread["min"] <= row["bound"] == spread["median"] <= spread["max"]


def test_cost_growth_and_fan_out_were_measured(report: dict[str, Any]) -> None:
    growth = report["figures"]["growth"]
    assert [c["tasks"] for c in growth["calls"]] == [40, 200]
    assert all(c["samples"] == 10 for c in growth["calls"])
    assert set(growth["fan_out_ms"]) == {"1", "10"}


def test_memory_wakeup_and_broadcast_were_measured(report: dict[str, Any]) -> None:
    figures = report["figures"]
    assert figures["memory"]["tasks"] == 100
    assert figures["memory"]["completions"]["completions"] == 200
    assert {r["samples"] for r in figures["wakeup"].values()} == {5}
    assert figures["broadcast"]["broadcast"]["samples"] == 10
    panes = figures["broadcast"]["panes"]
    assert {n: p["delivered"] for n, p in panes.items()} == {"2": 2, "4": 4}


def test_reservation_costs_and_lifecycle_were_measured(report: dict[str, Any]) -> None:
    figures = report["figures"]["reservations"]
    assert [c["live"] for c in figures["claim_next"]] == [0, 0, 10, 50]  # no files, then files
    assert all(c["samples"] == 10 for c in figures["claim_next"])
    for row in figures["lifecycle"].values():
        for run in row.values():
            assert run["completed"] == run["distinct"] == 120


def test_replication_was_measured_with_and_without_wait(report: dict[str, Any]) -> None:
    replication = report["figures"]["replication"]
    assert set(replication) == {"0", "1"}
    for figures in replication.values():
        assert figures["claim"]["samples"] == figures["complete"]["samples"] == 10
        assert figures["shortfalls"] == 0  # the replica acknowledged every state change


def test_every_goal_is_marked(report: dict[str, Any]) -> None:
    goals = report["goals"]
    assert len(goals) >= 10
    assert all(g["met"] in (True, False) for g in goals), goals


def test_every_mcp_round_trip_completed_its_task(report: dict[str, Any]) -> None:
    mcp = report["figures"]["mcp"]
    assert set(mcp) == {"Python API", "Python API (asyncio)", "MCP (stdio)", "CLI"}
    for name, row in mcp.items():
        assert row["completed"] == row["samples"] == (1 if name == "CLI" else 5), (name, row)
        assert row["p50_ms"] > 0


def test_a_baseline_checkout_is_timed_beside_the_others() -> None:
    """``--baseline DIR`` runs DIR's agent loop (here this checkout's own) as one more column."""
    done = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--json", "--only", "lifecycle",
         "--baseline", str(BENCH.parent.parent)],
        capture_output=True, text=True, timeout=150, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    lifecycle = json.loads(done.stdout)["figures"]["lifecycle"]
    for row in lifecycle.values():
        before = row["swarmqueue (before)"]
        assert before["completed"] == before["distinct"] == row["tasks"], before
    refused = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--only", "lifecycle", "--baseline", "/"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert refused.returncode == 2 and "not a swarmqueue checkout" in refused.stderr
