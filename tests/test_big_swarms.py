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
from distributor.cli.plans import FIRST_OF_LAYER, SUMMARY_OVER, dependency_layers, outline_summary
from distributor.errors import UnknownDependency
from distributor.tasks.queries import Layer
from distributor.tasks.queue import TaskQueue
from distributor.testing import advance_clock
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
        "python -c pass", "floor: redis-py PING", "next", "claim", "done", "heartbeat", "status",
        "inbox", "--help",
    }  # fmt: skip
    assert all(t["p50_ms"] > 0 for t in cli.values())
    assert set(figures["bigswarm"]) == {
        "status_ms", "tasks_ms", "plan_show_ms", "submit_ms", "submit_peak_mb", "submit_rss_mb",
    }  # fmt: skip


def stored_layers(queue: TaskQueue) -> dict[str, int | None]:
    """Each task's layer as submit and add stored it (``None``: none stored)."""
    found = {}
    for t in queue.tasks():
        raw = queue.redis.hget(queue.keys.task(t.id), "layer")
        found[t.id] = None if raw is None else int(raw)
    return found


def graph_layers(queue: TaskQueue) -> dict[str, int]:
    """Each task's layer computed from the whole graph, as ``plan show --full`` lays it out."""
    return {
        t.id: depth for depth, layer in enumerate(dependency_layers(queue.tasks())) for t in layer
    }


def test_submit_and_add_store_each_tasks_layer(queue: TaskQueue) -> None:
    sync_queue = queue  # both clients
    sync_queue.submit(
        [
            # a diamond listed dependents first: d after b and c, both after a
            {"id": "d", "title": "D", "dependencies": ["b", "c"]},
            {"id": "b", "title": "B", "dependencies": ["a"]},
            {"id": "c", "title": "C", "dependencies": ["a", "x2"]},
            {"id": "a", "title": "A"},
            # a chain beside it, its middle listed first
            {"id": "x1", "title": "X1", "dependencies": ["x0"]},
            {"id": "x0", "title": "X0"},
            {"id": "x2", "title": "X2", "dependencies": ["x1"]},
        ]
    )
    assert stored_layers(sync_queue) == {
        "a": 0, "b": 1, "c": 3, "d": 4, "x0": 0, "x1": 1, "x2": 2,
    }  # fmt: skip
    # a later plan continues below the tasks it depends on, completed or not
    claim = sync_queue.claim_next("w")
    assert claim is not None and claim.task.id == "a"
    sync_queue.complete("a", "w", claim.token)
    sync_queue.submit([{"id": "e", "title": "E", "dependencies": ["a", "d"]},
                       {"id": "f", "title": "F", "dependencies": ["a"]}])  # fmt: skip
    # a task discovered at runtime: one below its deepest dependency; the task it blocks,
    # and what waits on that, move down so they stay below it
    sync_queue.add_task("Found", task_id="n", depends_on=["x2", "f"], blocks="b")
    sync_queue.add_task("Loose", task_id="m")
    layers = stored_layers(sync_queue)
    assert layers == {
        "a": 0, "b": 4, "c": 3, "d": 5, "e": 6, "f": 1, "m": 0, "n": 3,
        "x0": 0, "x1": 1, "x2": 2,
    }  # fmt: skip
    assert layers == graph_layers(sync_queue)
    assert sync_queue.layers(first=2) == [
        Layer(0, {"completed": 1, "available": 2}, ["a", "x0"]),  # and m
        Layer(1, {"available": 1, "blocked": 1}, ["x1", "f"]),
        Layer(2, {"blocked": 1}, ["x2"]),
        Layer(3, {"blocked": 2}, ["c", "n"]),
        Layer(4, {"blocked": 1}, ["b"]),
        Layer(5, {"blocked": 1}, ["d"]),
        Layer(6, {"blocked": 1}, ["e"]),
    ]


def test_summary_counts_equal_status_through_every_transition(
    cli_obj: CliContext, sync_queue: TaskQueue
) -> None:
    sync_queue.submit(layered(SUMMARY_OVER + 20, 40))

    def check() -> dict[str, Any]:
        summary: dict[str, Any] = json.loads(run(cli_obj, "plan", "show", "--json").stdout)
        status = json.loads(run(cli_obj, "status", "--json").stdout)
        assert summary["total"] == status["total"]
        assert summary["counts"] == {s: status[s] for s in summary["counts"]}
        for name, count in summary["counts"].items():
            assert sum(layer["counts"][name] for layer in summary["layers"]) == count
        # the layers read from the graph agree with the stored ones
        assert sync_queue.layers() == outline_summary(sync_queue.outline())
        return summary

    claims = [sync_queue.claim_next(f"a{i}", lease=30) for i in range(8)]
    assert all(claims)
    held = [(c.task.id, c.task.agent_id or "", c.token) for c in claims if c]
    sync_queue.complete(*held[0])
    sync_queue.fail(*held[1], "boom", retry=False)
    sync_queue.fail(*held[2], "again")  # waiting for its retry
    sync_queue.release(*held[3])
    sync_queue.start(*held[4])
    sync_queue.cancel(held[5][0])
    check()
    sync_queue.retry(held[1][0])
    advance_clock(sync_queue, 120)  # the retry is due, the leases left ran out
    check()
    assert sync_queue.reap() == 3  # two claimed, one in progress
    summary = check()
    assert summary["counts"]["claimed"] == summary["counts"]["in_progress"] == 0
    # a discovered task blocking one of the first layer: it and its dependents move down
    sync_queue.add_task("Found late", task_id="late", depends_on=["t41"], blocks="t2")
    summary = check()
    assert stored_layers(sync_queue) == graph_layers(sync_queue)
    layer_of = {t["id"]: layer["layer"] for layer in summary["layers"] for t in layer["tasks"]}
    # t2 follows late (layer 2) in layer 3, submitted first there; t42, t82, ... below it
    assert layer_of["t2"] == 3 and layer_of["t122"] == 6 and layer_of["t202"] == 8
    assert [layer["total"] for layer in summary["layers"]] == [39, 39, 40, 40, 40, 20, 1, 1, 1]


def test_a_swarm_stored_without_layers_still_summarises(
    cli_obj: CliContext, sync_queue: TaskQueue
) -> None:
    sync_queue.submit(layered(SUMMARY_OVER + 30, 70))
    claim = sync_queue.claim_next("w")
    assert claim is not None
    sync_queue.complete(claim.task.id, "w", claim.token)
    expected = run(cli_obj, "plan", "show", "--json").stdout
    # an older version stored no layers (here: every other task lost its layer)
    for t in sync_queue.tasks()[::2]:
        sync_queue.redis.hdel(sync_queue.keys.task(t.id), "layer")
    assert sync_queue.layers() is None
    assert run(cli_obj, "plan", "show", "--json").stdout == expected
    # new work depending on an unlayered task is stored unlayered too, and still shown right
    sync_queue.submit([{"id": "after-old", "title": "Later", "dependencies": ["t228"]}])
    sync_queue.add_task("Found", task_id="found", depends_on=["t0"])
    assert stored_layers(sync_queue)["after-old"] is None
    assert stored_layers(sync_queue)["found"] is None
    summary = json.loads(run(cli_obj, "plan", "show", "--json").stdout)
    assert summary["total"] == SUMMARY_OVER + 32
    assert [layer["total"] for layer in summary["layers"]] == [70, 71, 70, 20, 1]
