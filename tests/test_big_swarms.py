"""Big swarms through the CLI: ``tasks`` pages, ``plan show`` summarises, a big refused submit
writes nothing (issue 17 item 2). Sizes are small enough for the default run; the same code
paths serve 100,000 tasks (timed by ``scripts/bench.py --only bigswarm``, never here)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from distributor.cli import main
from distributor.cli.app import CliContext
from distributor.cli.plans import FIRST_OF_LAYER, SUMMARY_OVER
from distributor.errors import UnknownDependency
from distributor.tasks.queue import TaskQueue
from tests.conftest import snapshot


def run(obj: CliContext, *args: str) -> Result:
    return CliRunner().invoke(main, list(args), obj=obj, catch_exceptions=False)


def layered(count: int, width: int, prefix: str = "t") -> dict[str, Any]:
    """``count`` tasks in layers ``width`` wide, each after the task ``width`` before it."""
    return {
        "tasks": [
            {
                "id": f"{prefix}{i}",
                "title": f"Task {i}",
                "dependencies": [f"{prefix}{i - width}"] if i >= width else [],
                "files": [f"src/f{i}.py"] if i % 2 == 0 else [],
            }
            for i in range(count)
        ]
    }


def page(obj: CliContext, *args: str) -> list[dict[str, Any]]:
    out = run(obj, "tasks", "--json", *args)
    assert out.exit_code == 0, out.output
    found: list[dict[str, Any]] = json.loads(out.stdout)
    return found


def test_pages_return_every_task_once_while_statuses_change(
    cli_obj: CliContext, sync_queue: TaskQueue
) -> None:
    sync_queue.submit(layered(60, 20))
    seen: list[str] = []
    after: list[str] = []
    turn = 0
    while True:
        found = page(cli_obj, "--limit", "7", *after)
        if not found:
            break
        assert len(found) <= 7
        seen += [t["id"] for t in found]
        after = ["--after", found[-1]["id"]]
        turn += 1
        # the swarm moves on between pages: claims, completions, a failure, a new task
        claim = sync_queue.claim_next(f"agent{turn % 3}")
        assert claim is not None
        if turn % 2:
            sync_queue.complete(claim.task.id, claim.task.agent_id or "", claim.token)
        elif turn == 4:
            sync_queue.fail(claim.task.id, claim.task.agent_id or "", claim.token, "boom")
        if turn == 3:
            sync_queue.add_task("Found on the way", task_id="late")
    assert len(seen) == len(set(seen)) == 61
    assert seen == [t.id for t in sync_queue.tasks()]  # submission order, "late" last

    # one status only, paged: exactly the tasks with that status
    available: list[str] = []
    after = []
    while found := page(cli_obj, "--status", "available", "--limit", "4", *after):
        available += [t["id"] for t in found]
        after = ["--after", found[-1]["id"]]
    assert available == [t.id for t in sync_queue.tasks("available")]


def test_the_default_page_fits_a_screen_and_names_the_next(
    cli_obj: CliContext, sync_queue: TaskQueue
) -> None:
    sync_queue.submit(layered(75, 25))
    out = run(cli_obj, "tasks")
    rows = out.stdout.splitlines()
    assert rows[0] == "ID\tSTATUS\tAGENT\tATTEMPTS\tTITLE"
    assert [r.split("\t")[0] for r in rows[1:]] == [f"t{i}" for i in range(50)]
    assert "more tasks: --after t49" in out.stderr  # stdout stays rows only
    rest = run(cli_obj, "tasks", "--after", "t49")
    assert len(rest.stdout.splitlines()) == 26
    assert "more tasks" not in rest.stderr


def test_limit_zero_streams_every_task_as_the_full_listing(
    cli_obj: CliContext, sync_queue: TaskQueue
) -> None:
    sync_queue.submit(layered(1_100, 100))  # more than one read chunk
    streamed = run(cli_obj, "tasks", "--limit", "0", "--json")
    expected = [t.model_dump(mode="json") for t in sync_queue.tasks()]
    assert json.loads(streamed.stdout) == expected
    text = run(cli_obj, "tasks", "--limit", "0").stdout.splitlines()
    assert len(text) == 1 + 1_100
    empty = run(cli_obj, "tasks", "--limit", "0", "--json", "--status", "failed")
    assert json.loads(empty.stdout) == []


def test_paging_refuses_an_unknown_or_bad_cursor(
    cli_obj: CliContext, sync_queue: TaskQueue
) -> None:
    sync_queue.submit(layered(3, 1))
    missing = run(cli_obj, "tasks", "--after", "nope")
    assert missing.exit_code == 1
    assert "task 'nope' not found" in missing.stderr
    bad = run(cli_obj, "tasks", "--limit", "-1")
    assert bad.exit_code == 2


def test_summary_counts_equal_status(cli_obj: CliContext, sync_queue: TaskQueue) -> None:
    sync_queue.submit(layered(SUMMARY_OVER + 50, 60))
    for agent in ("a", "b", "c", "d"):
        claim = sync_queue.claim_next(agent)
        assert claim is not None
        if agent == "a":
            sync_queue.complete(claim.task.id, agent, claim.token)
        if agent == "b":
            sync_queue.fail(claim.task.id, agent, claim.token, "boom", retry=False)
        if agent == "c":
            sync_queue.fail(claim.task.id, agent, claim.token, "again")  # waiting to retry
    # another agent holds a file of a ready task: it waits only on that reservation
    sync_queue.reserve(["src/f4.py"], "zed")
    out = run(cli_obj, "plan", "show", "--json")
    summary = json.loads(out.stdout)
    status = json.loads(run(cli_obj, "status", "--json").stdout)
    assert summary["total"] == status["total"] == SUMMARY_OVER + 50
    assert summary["counts"] == {s: status[s] for s in summary["counts"]}
    assert summary["waiting_on_reservations"] == status["waiting_on_reservations"] == 1
    layers = summary["layers"]
    assert [layer["total"] for layer in layers] == [60, 60, 60, 60, 10]
    for status_name, count in summary["counts"].items():
        assert sum(layer["counts"][status_name] for layer in layers) == count
    first = layers[0]["tasks"]
    assert [t["id"] for t in first] == [f"t{i}" for i in range(FIRST_OF_LAYER)]
    assert layers[0]["more"] == 60 - FIRST_OF_LAYER
    assert first[0]["file_states"][0]["pattern"] == "src/f0.py"

    text = run(cli_obj, "plan", "show").stdout
    assert text.startswith(f"{SUMMARY_OVER + 50} tasks in 5 layer(s) (summary;")
    assert "1 available task(s) wait only on reserved files" in text
    assert "layer 4: 10 task(s) (blocked 10)" in text
    assert "      src/f4.py (exclusive): held: src/f4.py held by zed" in text
    assert text.count("  ... 55 more") == 4


def test_small_graphs_stay_in_full_and_the_flags_choose(
    cli_obj: CliContext, sync_queue: TaskQueue, tmp_path: Path
) -> None:
    sync_queue.submit(layered(30, 10))
    full = json.loads(run(cli_obj, "plan", "show", "--json").stdout)
    assert [len(layer) for layer in full] == [10, 10, 10]  # the full view: layers of tasks
    assert json.loads(run(cli_obj, "plan", "show", "--full", "--json").stdout) == full
    summary = json.loads(run(cli_obj, "plan", "show", "--summary", "--json").stdout)
    assert [layer["total"] for layer in summary["layers"]] == [10, 10, 10]
    assert run(cli_obj, "plan", "show", "--full", "--summary").exit_code == 2
    sync_queue.submit(layered(SUMMARY_OVER, 50, prefix="u"))
    assert isinstance(json.loads(run(cli_obj, "plan", "show", "--json").stdout), dict)
    big_full = json.loads(run(cli_obj, "plan", "show", "--full", "--json").stdout)
    assert sum(len(layer) for layer in big_full) == SUMMARY_OVER + 30


def test_a_big_submit_refused_at_its_last_task_writes_nothing(sync_queue: TaskQueue) -> None:
    sync_queue.submit(layered(5, 5, prefix="old"))
    before = snapshot(sync_queue.redis, sync_queue.keys.prefix)
    plan = layered(2_000, 100)
    plan["tasks"][-1]["dependencies"] = ["missing"]
    with pytest.raises(UnknownDependency):
        sync_queue.submit(plan)
    assert snapshot(sync_queue.redis, sync_queue.keys.prefix) == before


@pytest.mark.long  # ~1 min of processes: runs with -m long (CI)
def test_the_cli_and_bigswarm_bench_sections_run_and_count() -> None:
    bench = Path(__file__).resolve().parent.parent / "scripts" / "bench.py"
    done = subprocess.run(
        [sys.executable, str(bench), "--quick", "--json", "--only", "cli,bigswarm"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout)["figures"]
    cli = {t["name"]: t for t in figures["cli"]}
    assert set(cli) == {
        "python -c pass", "floor: redis-py PING", "next", "done", "heartbeat", "status",
        "inbox", "--help",
    }  # fmt: skip
    assert all(t["p50_ms"] > 0 for t in cli.values())
    assert set(figures["bigswarm"]) == {
        "status_ms", "tasks_ms", "plan_show_ms", "submit_ms", "submit_peak_mb", "submit_rss_mb",
    }  # fmt: skip
