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
    assert "No messages." in idle.output


def test_prime_refuses_a_bad_agent_or_swarm_in_one_line(cli_obj: CliContext) -> None:
    for args in (["--agent", "no spaces"], ["--agent", "A", "--swarm", ".."]):
        result = CliRunner().invoke(main, ["prime", *args], obj=cli_obj)
        assert result.exit_code == 2, result.output
        assert result.stderr.startswith("swarmqueue: ") and result.stderr.count("\n") == 1
