"""``swarmqueue add``: discovered work from the command line, its refusals and exit codes."""

from __future__ import annotations

import json

from click.testing import CliRunner, Result

from distributor.cli import main
from distributor.cli.app import CliContext
from distributor.tasks.queue import TaskQueue
from tests.conftest import chain_plan, snapshot


def run(obj: CliContext, *args: str) -> Result:
    return CliRunner().invoke(main, list(args), obj=obj, catch_exceptions=False)


def test_add_with_every_link_then_drive_it_through(
    cli_obj: CliContext, sync_queue: TaskQueue
) -> None:
    queue = sync_queue
    queue.submit(chain_plan(3))  # t0 <- t1 <- t2
    out = run(
        cli_obj,
        "add",
        "--title", "Handle token expiry",
        "--id", "expiry",
        "--description", "found while writing t1",
        "--files", "app/jwt.py", "--file", "tests/test_jwt.py",
        "--priority", "7",
        "--depends-on", "t0",
        "--blocks", "t2",
        "--discovered-from", "t1",
        "--related", "t0,t1",
        "--agent", "alice",
        "--json",
    )  # fmt: skip
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert (data["id"], data["status"], data["dependencies"]) == ("expiry", "blocked", ["t0"])
    assert (data["discovered_from"], data["related"]) == ("t1", ["t0", "t1"])
    assert data["files"] == ["app/jwt.py", "tests/test_jwt.py"] and data["priority"] == 7
    shown = run(cli_obj, "task", "expiry").stdout
    assert "discovered from: t1, related: t0, t1" in shown
    assert "depends on: t1, expiry (unmet: expiry, t1)" in run(cli_obj, "task", "t2").stdout
    plan = run(cli_obj, "plan", "show").stdout
    assert "expiry: Handle token expiry after t0 (discovered from t1; related t0, t1)" in plan
    events = run(cli_obj, "events", "--json").stdout.splitlines()
    added = [json.loads(line) for line in events if '"task_added"' in line]
    assert added[0]["data"]["blocks"] == "t2" and added[0]["agent_id"] == "alice"
    done = []
    for _ in range(4):
        taken = run(cli_obj, "next", "--agent", "bob", "--json")
        assert taken.exit_code == 0, taken.output
        done.append(json.loads(taken.stdout)["id"])
        assert run(cli_obj, "done", done[-1], "--agent", "bob").exit_code == 0
    assert done[0] == "t0" and done[-1] == "t2"  # expiry (priority 7) before t1
    assert done[1] == "expiry"


def test_add_prints_a_made_id(cli_obj: CliContext, sync_queue: TaskQueue) -> None:
    queue = sync_queue
    queue.submit(chain_plan(1))
    out = run(cli_obj, "add", "--title", "Loose end", "--depends-on", "t0")
    assert out.exit_code == 0, out.output
    first = out.stdout.splitlines()[0]
    assert first.startswith("added task-") and first.endswith("(blocked): Loose end")
    assert "  depends on: t0 (unmet: t0)" in out.stdout


def test_refusals_exit_codes_and_nothing_written(
    cli_obj: CliContext, sync_queue: TaskQueue
) -> None:
    queue = sync_queue
    queue.submit(chain_plan(3))
    assert run(cli_obj, "claim", "t0", "--agent", "alice").exit_code == 0
    before = snapshot(queue.redis, queue.keys.prefix)
    cases = {
        ("--blocks", "t0"): (1, "task 't0' cannot wait for a new task: it is claimed by alice"),
        ("--depends-on", "nope"): (1, "depends on unknown task 'nope'"),
        ("--discovered-from", "nope"): (1, "discovered_from names unknown task 'nope'"),
        ("--depends-on", "t2", "--blocks", "t1"): (1, "dependency cycle: new task -> t2 -> t1"),
        ("--id", "x", "--depends-on", "x"): (2, "x -> x (depends on itself)"),
        ("--id", "t1"): (1, "task id(s) already in the swarm: t1"),
        ("--depends-on", "bad id"): (2, "invalid task id"),
        ("--priority", "5000"): (2, "priority"),
    }
    for extra, (code, text) in cases.items():
        out = run(cli_obj, "add", "--title", "X", *extra)
        assert out.exit_code == code, (extra, out.output)
        assert text in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr
        assert out.stdout == ""
    assert snapshot(queue.redis, queue.keys.prefix) == before


def test_a_rerun_with_the_same_request_id_adds_once(
    cli_obj: CliContext, sync_queue: TaskQueue
) -> None:
    queue = sync_queue
    queue.submit(chain_plan(1))
    args = ("add", "--title", "Once", "--request-id", "r-1", "--json")
    first, again = run(cli_obj, *args), run(cli_obj, *args)
    assert json.loads(first.stdout)["id"] == json.loads(again.stdout)["id"]
    assert queue.progress()["total"] == 2
    other = run(cli_obj, "add", "--title", "Other", "--request-id", "r-1")
    assert other.exit_code == 2 and "already used for a different request" in other.stderr
