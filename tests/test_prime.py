"""``swarmqueue prime``: an agent's start-of-session brief, as text and ``--json``."""

from __future__ import annotations

import json

from click.testing import CliRunner

from distributor.cli import main
from distributor.cli.app import CliContext
from tests.conftest import chain_plan
from tests.messaging_support import Messaging


def test_prime_briefs_an_agent_on_its_claim_messages_and_progress(cli_obj: CliContext) -> None:
    queue = cli_obj.queue
    queue.submit(chain_plan(4))
    assert queue.claim_next("A") is not None
    queue.start("t0", "A", queue.get("t0").token)
    m = Messaging(queue.redis, queue.swarm)
    try:
        m.registry.register("A", "%1", host=m.host)
        m.messenger.send("A", "ping \x1b[31mme\x1b[0m when t0 lands", sender="B")
        text = CliRunner().invoke(main, ["prime", "--agent", "A"], obj=cli_obj)
        as_json = CliRunner().invoke(main, ["prime", "--agent", "A", "--json"], obj=cli_obj)
        idle = CliRunner().invoke(main, ["prime", "--agent", "C"], obj=cli_obj)
    finally:
        m.close()
    assert text.exit_code == 0, text.output
    out = text.output
    assert f"agent A in swarm {queue.swarm}: 0/4 tasks completed (0.0%)" in out
    assert "t0 (in_progress, attempt 1, lease left " in out
    assert f"swarmqueue --swarm {queue.swarm} done TASK --agent A --next" in out
    assert "[B]" in out and "ping me when t0 lands" in out and "\x1b" not in out
    assert len(out.split()) < 300  # a few hundred tokens at most

    data = json.loads(as_json.output)
    [held] = data["held"]
    assert held["id"] == "t0" and 0 < held["lease_left_seconds"] <= queue.settings.lease_seconds
    assert data["inbox"][0]["sender"] == "B" and data["counts"]["in_progress"] == 1
    assert any(step["command"].endswith("next --agent A --wait 60") for step in data["loop"])

    assert idle.exit_code == 0 and "You hold no task." in idle.output
    assert "No unread messages." in idle.output


def test_prime_refuses_a_bad_agent_or_swarm_in_one_line(cli_obj: CliContext) -> None:
    for args in (["--agent", "no spaces"], ["--agent", "A", "--swarm", ".."]):
        result = CliRunner().invoke(main, ["prime", *args], obj=cli_obj)
        assert result.exit_code == 2, result.output
        assert result.stderr.startswith("swarmqueue: ") and result.stderr.count("\n") == 1


def test_unread_messages_one_read_mark_for_prime_the_cli_and_the_api(cli_obj: CliContext) -> None:
    queue = cli_obj.queue
    m = Messaging(queue.redis, queue.swarm)
    try:
        m.registry.register("A", "%1", host=m.host)
        for i in range(3):
            m.messenger.send("A", f"note {i}", sender="B")
        before = CliRunner().invoke(main, ["prime", "--agent", "A", "--messages", "2"], obj=cli_obj)
        first = CliRunner().invoke(
            main, ["inbox", "--agent", "A", "--unread", "--count", "2"], obj=cli_obj
        )
        assert m.messenger.unread("A").total == 1  # the third is still unread
        m.messenger.send("A", "note 3", sender="B")
        rest = CliRunner().invoke(
            main, ["inbox", "--agent", "A", "--unread", "--json"], obj=cli_obj
        )
        after = CliRunner().invoke(main, ["prime", "--agent", "A"], obj=cli_obj)
        latest = CliRunner().invoke(main, ["inbox", "--agent", "A", "--count", "2"], obj=cli_obj)
        entries = m.messenger.inbox("A")
        assert entries[0].entry_id is not None
        m.messenger.mark_read("A", entries[0].entry_id)  # never moves the mark back
        assert m.messenger.unread("A").total == 0
    finally:
        m.close()
    assert "3 unread message(s), the first 2 shown" in before.output
    assert "note 0" in before.output and "note 2" not in before.output
    assert first.exit_code == 0 and "note 1" in first.output
    assert "(1 more unread: run it again)" in first.output
    data = json.loads(rest.output)
    assert [e["content"] for e in data["entries"]] == ["note 2", "note 3"] and data["total"] == 2
    assert "No unread messages." in after.output
    assert "note 2" in latest.output and "note 3" in latest.output  # the plain inbox is unchanged
