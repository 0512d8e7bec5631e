"""The command line: a plan driven by hand to 100%, exit codes, one-line errors, --json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from distributor.cli import main
from distributor.cli.app import CliContext
from distributor.tasks.queue import TaskQueue
from tests.test_models import HOSTILE_IDS

PLAN_YAML = """
tasks:
  - {id: schema, title: Design the schema}
  - {id: api, title: Write the API, dependencies: [schema]}
  - {id: docs, title: Document it, dependencies: [api]}
"""


def run(obj: CliContext | None, *args: str) -> Result:
    return CliRunner().invoke(main, list(args), obj=obj, catch_exceptions=False)


def test_drive_plan_by_hand_to_completion(cli_obj: CliContext, tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(PLAN_YAML)
    assert run(cli_obj, "plan", "submit", str(plan)).exit_code == 0
    for agent, task in (("alice", "schema"), ("bob", "api"), ("alice", "docs")):
        out = run(cli_obj, "next", "--agent", agent, "--json")
        assert out.exit_code == 0, out.output
        data = json.loads(out.stdout)
        assert (data["id"], data["token"]) == (task, 1)
        assert run(cli_obj, "next", "--agent", "carol").exit_code == 1  # nothing else ready
        done = run(cli_obj, "done", task, "--agent", agent)  # token remembered
        assert done.exit_code == 0, done.output
    status = run(cli_obj, "status", "--json")
    assert json.loads(status.stdout)["completion_pct"] == 100.0
    assert "3/3 completed" in run(cli_obj, "status").stdout
    listing = run(cli_obj, "tasks", "--json")
    assert [t["agent_id"] for t in json.loads(listing.stdout)] == ["alice", "bob", "alice"]
    assert "Write the API" in run(cli_obj, "task", "api").stdout


def test_refusals_exit_1_with_one_line(cli_obj: CliContext, queue: TaskQueue) -> None:
    queue.submit({"tasks": [{"id": "a", "title": "A"}]})
    assert run(cli_obj, "claim", "a", "--agent", "x").exit_code == 0
    taken = run(cli_obj, "claim", "a", "--agent", "y")
    assert taken.exit_code == 1
    assert taken.stderr.strip() == "swarmqueue: task 'a' not claimed: already_claimed"
    stale = run(cli_obj, "done", "a", "--agent", "x", "--token", "99")
    assert stale.exit_code == 1 and "stale" in stale.stderr
    assert len(stale.stderr.strip().splitlines()) == 1
    missing = run(cli_obj, "done", "a", "--agent", "nobody")  # no token remembered: a refusal
    assert missing.exit_code == 1 and "--token" in missing.stderr


@pytest.mark.parametrize("bad", HOSTILE_IDS)
def test_hostile_ids_exit_2(cli_obj: CliContext, bad: str) -> None:
    for args in (["claim", bad, "--agent", "a"], ["claim", "t", "--agent", bad], ["task", bad]):
        result = run(cli_obj, *args)
        assert result.exit_code == 2
        assert result.stderr.startswith("swarmqueue: invalid")
        assert "Traceback" not in result.output


def test_bad_plan_files_exit_2(cli_obj: CliContext, tmp_path: Path) -> None:
    cycle = tmp_path / "cycle.json"
    cycle.write_text(json.dumps({"tasks": [{"id": "a", "title": "A", "dependencies": ["a"]}]}))
    assert run(cli_obj, "plan", "submit", str(cycle)).exit_code == 2  # a cycle: wrong in itself
    garbage = tmp_path / "garbage.yaml"
    garbage.write_text("tasks: [unclosed")
    result = run(cli_obj, "plan", "submit", str(garbage))
    assert result.exit_code == 2 and "not valid JSON or YAML" in result.stderr
    assert run(cli_obj, "plan", "submit", str(tmp_path / "absent.json")).exit_code == 2


def test_unreachable_redis_exit_3(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWARMQUEUE_RETRY_BUDGET_SECONDS", "0.3")  # exit 3 once it is used up
    result = run(None, "--redis-url", "redis://127.0.0.1:1/0", "status")
    assert result.exit_code == 3
    assert result.stderr.startswith("swarmqueue: cannot reach Redis at redis://127.0.0.1:1/0")
    assert "Traceback" not in result.output


def test_lease_commands(cli_obj: CliContext, queue: TaskQueue) -> None:
    queue.submit({"tasks": [{"id": "a", "title": "A", "max_attempts": 2}]})
    assert run(cli_obj, "next", "--agent", "x", "--lease", "60").exit_code == 0
    assert run(cli_obj, "start", "a", "--agent", "x").exit_code == 0
    assert run(cli_obj, "heartbeat", "a", "--agent", "x", "--json").exit_code == 0
    failed = run(cli_obj, "fail", "a", "--agent", "x", "--reason", "flaky", "--json")
    assert json.loads(failed.stdout)["will_retry"] is True
    assert run(cli_obj, "cancel", "a").exit_code == 0
    assert run(cli_obj, "retry", "a", "--json").exit_code == 0
    assert run(cli_obj, "claim", "a", "--agent", "y").exit_code == 0
    assert run(cli_obj, "release", "a", "--agent", "y").exit_code == 0
    reaped = run(cli_obj, "reap", "--json")
    assert json.loads(reaped.stdout) == {"expired": 0}
    assert queue.get("a").status.value == "available"


def test_done_next_completes_and_claims_in_one_step(cli_obj: CliContext, tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(PLAN_YAML)
    run(cli_obj, "plan", "submit", str(plan))
    assert run(cli_obj, "next", "--agent", "alice").exit_code == 0
    out = run(cli_obj, "done", "schema", "--agent", "alice", "--next", "--json")
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert data["completed"]["unblocked"] == ["api"]
    assert (data["next"]["id"], data["next"]["token"]) == ("api", 1)
    human = run(cli_obj, "done", "api", "--agent", "alice", "--next")  # token remembered
    assert human.exit_code == 0
    assert "completed api" in human.stdout and "docs\t(token 1" in human.stdout
    last = run(cli_obj, "done", "docs", "--agent", "alice", "--next", "--json")
    assert json.loads(last.stdout)["next"] is None
    assert run(cli_obj, "done", "docs", "--agent", "alice", "--wait", "1").exit_code == 2
