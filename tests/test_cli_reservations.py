"""File reservations on the command line: reserve / unreserve / reservations, `next` naming the
holders, `claim` refused for held files, and `task`, `plan show` and `status` showing them."""

from __future__ import annotations

import json

from click.testing import CliRunner, Result

from distributor.cli import main
from distributor.cli.app import CliContext
from distributor.tasks.queue import TaskQueue


def run(obj: CliContext, *args: str) -> Result:
    return CliRunner().invoke(main, list(args), obj=obj, catch_exceptions=False)


def test_reserve_unreserve_and_list(cli_obj: CliContext) -> None:
    out = run(cli_obj, "reserve", "src/api/", "./README.md", "--agent", "alice", "--ttl", "600",
              "--reason", "rename endpoints")  # fmt: skip
    assert out.exit_code == 0, out.output
    assert out.stdout.startswith("reserved src/api/, README.md for alice (exclusive) until ")
    refused = run(cli_obj, "reserve", "src/api/v2.py", "--agent", "bob")
    assert refused.exit_code == 1 and refused.stdout == ""
    line = refused.stderr.strip()
    assert line.startswith("swarmqueue: cannot reserve: src/api/ held by alice (exclusive, until ")
    assert len(refused.stderr.splitlines()) == 1
    listing = json.loads(run(cli_obj, "reservations", "--json").stdout)
    assert sorted((r["pattern"], r["agent_id"], r["reason"]) for r in listing) == [
        ("README.md", "alice", "rename endpoints"),
        ("src/api/", "alice", "rename endpoints"),
    ]
    text = run(cli_obj, "reservations").stdout.splitlines()
    assert text[0] == "PATTERN\tAGENT\tMODE\tUNTIL\tTASK/REASON"
    assert any(line.startswith("src/api/\talice\texclusive\t") for line in text[1:])
    assert run(cli_obj, "reservations", "--agent", "bob", "--json").stdout.strip() == "[]"
    freed = run(cli_obj, "unreserve", "README.md", "--agent", "alice")
    assert freed.stdout.strip() == "freed 1: README.md"
    assert run(cli_obj, "unreserve", "--agent", "alice").stdout.strip() == "freed 1: src/api/"
    assert run(cli_obj, "reservations", "--json").stdout.strip() == "[]"


def test_bad_paths_exit_2_and_nothing_is_written(cli_obj: CliContext) -> None:
    for bad in ("../etc", "/etc/passwd", "a//b", "a/\x1b[2Jb"):
        out = run(cli_obj, "reserve", bad, "--agent", "alice")
        assert out.exit_code == 2, out.output
        assert "\x1b" not in out.stderr and len(out.stderr.splitlines()) == 1
    assert run(cli_obj, "reservations", "--json").stdout.strip() == "[]"


def test_next_claim_task_plan_show_and_status_show_held_files(
    cli_obj: CliContext, sync_queue: TaskQueue
) -> None:
    sync_queue.submit(
        [
            {"id": "jwt", "title": "JWT", "files": ["app/security/jwt.py"]},
            {"id": "docs", "title": "Docs", "files": ["docs/"], "shared_files": ["app/"]},
        ]
    )
    assert run(cli_obj, "reserve", "app/security/", "--agent", "alice").exit_code == 0
    taken = run(cli_obj, "next", "--agent", "bob", "--json")  # jwt passed over: docs reads app/
    assert taken.exit_code == 1, taken.output  # ... but app/ (shared) overlaps alice's too
    assert "2 ready task(s) wait for files: app/security/ held by alice (exclusive" in taken.stderr
    waited = run(cli_obj, "next", "--agent", "bob", "--wait", "0.2")
    assert waited.exit_code == 1
    assert (
        "no task became ready within 0.2s: ready tasks wait for files: app/security/ held by"
        in (waited.stderr)
    )
    claim = run(cli_obj, "claim", "jwt", "--agent", "bob")
    assert claim.exit_code == 1
    assert "task 'jwt' not claimed: its files are reserved: app/security/ held by alice" in (
        claim.stderr
    )
    shown = run(cli_obj, "task", "jwt").stdout
    assert "  file app/security/jwt.py (exclusive): held: app/security/ held by alice" in shown
    status = run(cli_obj, "status")
    assert "2 available task(s) wait only on reserved files: docs, jwt" in status.stdout
    assert json.loads(run(cli_obj, "status", "--json").stdout)["waiting_on_reservations"] == 2

    run(cli_obj, "unreserve", "--agent", "alice")
    assert run(cli_obj, "next", "--agent", "bob").exit_code == 0  # jwt
    plan = run(cli_obj, "plan", "show").stdout
    assert "      app/security/jwt.py (exclusive): reserved by its claim (bob)" in plan
    assert "      app/ (shared): held: app/security/jwt.py held by bob (exclusive" in plan
    data = json.loads(run(cli_obj, "task", "docs", "--json").stdout)
    assert [(f["pattern"], f["shared"], f["free"]) for f in data["file_states"]] == [
        ("docs/", False, True),
        ("app/", True, False),
    ]
    assert run(cli_obj, "next", "--agent", "bob").exit_code == 0  # its own file: no conflict
