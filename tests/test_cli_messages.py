"""The agents and messaging commands: output, --json, and exit codes."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from distributor.cli import main
from distributor.cli.app import CliContext
from distributor.tasks.queue import TaskQueue
from tests.messaging_support import Messaging, TmuxLab


@pytest.fixture
def ms(sync_queue: TaskQueue) -> Iterator[Messaging]:
    m = Messaging(sync_queue.redis, sync_queue.swarm)
    yield m
    m.close()


Run = Callable[..., Result]


@pytest.fixture
def run(ms: Messaging, sync_queue: TaskQueue, monkeypatch: pytest.MonkeyPatch) -> Run:
    monkeypatch.delenv("TMUX", raising=False)
    monkeypatch.delenv("TMUX_PANE", raising=False)
    obj = CliContext(ms.settings, sync_queue)

    def invoke(*args: str, input: str | None = None) -> Result:
        return CliRunner().invoke(main, list(args), obj=obj, input=input)

    return invoke


def test_agents_register_list_remove(run: Run, ms: Messaging) -> None:
    result = run("agents", "register", "--agent", "alice", "--pane", "%3", "--capability", "py")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("registered alice at")
    listed = json.loads(run("agents", "list", "--json").output)
    assert [(a["id"], a["pane"], a["capabilities"], a["stale"]) for a in listed] == [
        ("alice", "%3", ["py"], False)
    ]
    assert run("agents", "remove", "alice").exit_code == 0
    assert run("agents", "remove", "alice").exit_code == 1


def test_agents_prune_forgets_agents_unseen_past_the_window(run: Run, ms: Messaging) -> None:
    ms.registry.register("old", "%1")
    ms.advance_clock(ms.settings.agent_prune_seconds + 1)
    ms.registry.register("new", "%2")
    pruned = run("agents", "prune", "--json")
    assert pruned.exit_code == 0, pruned.output
    assert json.loads(pruned.stdout) == {"pruned": ["old"]}
    assert [a.id for a in ms.registry.list()] == ["new"]
    assert run("agents", "prune").stdout.strip() == "pruned 0 agent(s): -"


def test_register_inside_tmux_takes_pane_and_socket_from_the_environment(
    run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TMUX", "/tmp/tmux-7/work,123,0")
    monkeypatch.setenv("TMUX_PANE", "%12")
    result = run("agents", "register", "--agent", "bob", "--json")
    out = json.loads(result.stdout)
    assert (out["pane"], out["socket"]) == ("%12", "/tmp/tmux-7/work")
    assert "no tmux server at /tmp/tmux-7/work" in result.stderr  # not on this host now


def test_register_warns_when_no_tmux_server_runs_here(run: Run, ms: Messaging) -> None:
    result = run("agents", "register", "--agent", "alice", "--pane", "%99")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("registered alice at")
    assert result.stderr.startswith("swarmqueue: warning: pane %99 could not be found on this")
    assert result.stderr.endswith("; registered anyway\n") and result.stderr.count("\n") == 1
    assert ms.registry.get("alice").pane == "%99"  # registered all the same


@pytest.mark.slow
def test_register_warns_when_the_pane_is_not_on_the_tmux_server(
    run: Run, ms: Messaging, tmp_path: Path
) -> None:
    lab = TmuxLab(tmp_path)
    try:
        (pane,) = lab.spawn(1)
        here = run("agents", "register", "--agent", "alice", "--pane", pane, "--socket", lab.socket)
        assert (here.exit_code, here.stderr) == (0, "")
        gone = run("agents", "register", "--agent", "bob", "--pane", "%99", "--socket", lab.socket)
        assert gone.exit_code == 0
        assert gone.stderr == (
            f"swarmqueue: warning: pane %99 does not exist on {lab.socket} of this host now; "
            "registered anyway\n"
        )
        assert ms.registry.get("bob").pane == "%99"
    finally:
        lab.close()


def test_register_does_not_look_for_another_hosts_pane(run: Run) -> None:
    result = run("agents", "register", "--agent", "carol", "--pane", "%99", "--host", "elsewhere")
    assert (result.exit_code, result.stderr) == (0, "")


def test_register_outside_tmux_needs_a_pane(run: Run) -> None:
    result = run("agents", "register", "--agent", "bob")
    assert result.exit_code == 2 and "TMUX_PANE" in result.output


def test_broadcast_deliveries_and_inbox(run: Run, ms: Messaging) -> None:
    ms.registry.register("alice", "%1")
    ms.registry.register("bob", "%2")
    result = run("broadcast", "build is green", "--type", "info", "--sender", "ci")
    assert result.exit_code == 0, result.output
    message_id = result.output.strip()

    shown = json.loads(run("deliveries", message_id, "--json").output)
    assert {k: v for k, v in shown["counts"].items() if v} == {"pending": 2}
    assert [d["agent_id"] for d in shown["deliveries"]] == ["alice", "bob"]
    text = run("deliveries", message_id).output
    assert "alice" in text and "pending" in text

    sent = run("send", "bob", "-", "--json", "--sender", "ci", input="just you\n")
    sent_id = json.loads(sent.output)["message_id"]
    inbox = json.loads(run("inbox", "--agent", "bob", "--json").output)
    assert [e["message_id"] for e in inbox] == [message_id, sent_id]
    lines = run("inbox", "--agent", "bob").output.splitlines()
    assert lines[-1].startswith("[ci][") and lines[-1].endswith(f"[INFO #{sent_id[:8]}]: just you")


def test_pending_deliveries_and_redispatch(run: Run, ms: Messaging) -> None:
    ms.registry.register("alice", "%1")
    message_id = run("broadcast", "hello", "--sender", "ci").output.strip()
    pending = json.loads(run("deliveries", "--pending", "--json").output)
    assert [(p["message_id"], p["host"], p["holder"]) for p in pending] == [
        (message_id, ms.host, None)
    ]
    assert pending[0]["counts"]["pending"] == 1
    text = run("deliveries", "--pending").output.splitlines()
    assert text[0].startswith("MESSAGE\tHOST") and text[1].startswith(f"{message_id}\t{ms.host}")

    found = json.loads(run("redispatch", "--json").output)
    assert [(f["message_id"], f["action"]) for f in found] == [(message_id, "queued")]
    ms.client.delete(f"rq:queue:swarmqueue-deliver-{ms.host}")  # the job is lost
    result = run("redispatch", message_id, "--host", ms.host)
    assert result.exit_code == 0, result.output
    assert f"{message_id}\t{ms.host}\treplaced\tjob " in result.output
    assert "(the old one was popped)" in result.output
    assert ms.queued_job_ids() == [f["job_id"] + "-1" for f in found]

    assert run("deliveries").exit_code == 2  # a message id or --pending
    assert run("deliveries", message_id, "--pending").exit_code == 2
    assert run("redispatch", "0123456789abcdef").exit_code == 1  # no such message


def test_errors_are_one_line_with_exit_codes(run: Run, ms: Messaging) -> None:
    ms.registry.register("alice", "%1")
    assert run("send", "nobody", "hi").exit_code == 1
    assert run("broadcast", "hi", "--to", "bad id!").exit_code == 2
    assert run("deliveries", "0123456789abcdef").exit_code == 1
    for i in range(10):
        assert run("broadcast", f"m{i}", "--sender", "chatty").exit_code == 0
    limited = run("broadcast", "again", "--sender", "chatty")
    assert limited.exit_code == 1
    assert limited.output.count("\n") == 1 and "retry in" in limited.output
