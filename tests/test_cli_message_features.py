"""The messaging commands of issue 14 as agents and operators run them: who is sending when
``--sender`` is omitted inside a pane, ``agents register --pane session:window.pane``, ``ack``,
``--reply-to`` and ``inbox --thread``, ``--include-self``, type aliases and ``ratelimit``."""

from __future__ import annotations

import json
import shlex
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from click.testing import CliRunner, Result

from distributor.cli import main
from distributor.cli.app import CliContext
from distributor.errors import AgentNotFoundError
from distributor.tasks.queue import TaskQueue
from tests.messaging_support import Messaging, TmuxLab, wait_for

SOCKET = "/tmp/tmux-1000/work"

Run = Callable[..., Result]


@pytest.fixture
def ms(sync_queue: TaskQueue) -> Iterator[Messaging]:
    m = Messaging(sync_queue.redis, sync_queue.swarm)
    yield m
    m.close()


@pytest.fixture
def run(ms: Messaging, sync_queue: TaskQueue, monkeypatch: pytest.MonkeyPatch) -> Run:
    for name in ("TMUX", "TMUX_PANE", "SWARMQUEUE_AGENT"):
        monkeypatch.delenv(name, raising=False)
    obj = CliContext(ms.settings, sync_queue)

    def invoke(*args: str) -> Result:
        return CliRunner().invoke(main, list(args), obj=obj)

    return invoke


def in_pane(monkeypatch: pytest.MonkeyPatch, pane: str, socket: str = SOCKET) -> None:
    """What tmux sets in a pane's environment."""
    monkeypatch.setenv("TMUX", f"{socket},4242,0")
    monkeypatch.setenv("TMUX_PANE", pane)


def sent_by(ms: Messaging, result: Result) -> str:
    assert result.exit_code == 0, result.output
    return ms.messenger.get(result.stdout.strip()).sender


def test_inside_a_pane_the_sender_is_the_agent_registered_for_it(
    run: Run, ms: Messaging, monkeypatch: pytest.MonkeyPatch
) -> None:
    ms.registry.register("ann", "%7", socket=SOCKET)
    ms.registry.register("bob", "%8", socket=SOCKET)
    ms.registry.register("elsewhere", "%7", socket=SOCKET, host=ms.host + "-b")
    in_pane(monkeypatch, "%7")
    assert sent_by(ms, run("send", "bob", "hello")) == "ann"
    broadcast = run("broadcast", "hi all")
    assert sent_by(ms, broadcast) == "ann"
    recipients = [d.agent_id for d in ms.messenger.get(broadcast.stdout.strip()).deliveries]
    assert recipients == ["bob", "elsewhere"]  # all but the sender (%7 of this host)
    assert sent_by(ms, run("send", "bob", "hi", "--sender", "lead")) == "lead"
    monkeypatch.setenv("SWARMQUEUE_AGENT", "from-env")
    assert sent_by(ms, run("send", "bob", "hi")) == "from-env"


def test_inside_an_unregistered_pane_sending_is_refused_with_a_clear_error(
    run: Run, ms: Messaging, monkeypatch: pytest.MonkeyPatch
) -> None:
    ms.registry.register("bob", "%8", socket=SOCKET)
    in_pane(monkeypatch, "%9")
    result = run("send", "bob", "hello")
    assert result.exit_code == 1
    assert result.output == (
        f"swarmqueue: no agent is registered for pane %9 on host {ms.host}; run 'swarmqueue"
        " agents register --agent ID' in the pane, or pass --sender/--agent\n"
    )
    assert ms.messenger.inbox("bob") == []
    ms.registry.register("twin-a", "%9")  # registered without a socket: any server's %9
    ms.registry.register("twin-b", "%9")
    result = run("send", "bob", "hello")
    assert result.exit_code == 1 and "several agents" in result.output
    assert "twin-a, twin-b" in result.output


def test_outside_tmux_the_sender_is_swarmqueue(run: Run, ms: Messaging) -> None:
    ms.registry.register("bob", "%8")
    assert sent_by(ms, run("send", "bob", "hello")) == "swarmqueue"


def test_ack_and_inbox_take_the_agent_from_the_pane(
    run: Run, ms: Messaging, monkeypatch: pytest.MonkeyPatch
) -> None:
    ms.registry.register("ann", "%7", socket=SOCKET)
    ms.registry.register("bob", "%8", socket=SOCKET)
    message_id = ms.messenger.broadcast("freeze main", "ALERT", "lead", requires_ack=True)
    assert run("ack", message_id).exit_code == 2  # outside tmux: --agent is needed
    in_pane(monkeypatch, "%8")
    acked = run("ack", message_id, "--json")
    assert acked.exit_code == 0, acked.output
    out = json.loads(acked.stdout)
    assert (out["agent_id"], out["already"]) == ("bob", False)
    again = run("ack", message_id)
    assert again.stdout.startswith(f"{message_id}\talready acknowledged by bob at ")
    inbox = run("inbox")
    assert inbox.stdout.strip().endswith(f"freeze main (ack: swarmqueue ack {message_id})")
    shown = json.loads(run("deliveries", message_id, "--json").stdout)
    assert {d["agent_id"]: d["status"] for d in shown["deliveries"]} == {
        "ann": "pending",
        "bob": "acknowledged",
    }
    text = run("deliveries", message_id).stdout
    assert "(acknowledgement requested)" in text and "acknowledged at" in text


def test_ack_refusals_exit_1_and_change_nothing(run: Run, ms: Messaging) -> None:
    ms.registry.register("ann", "%7")
    ms.registry.register("bob", "%8")
    message_id = ms.messenger.send("bob", "for bob", requires_ack=True)
    result = run("ack", message_id, "--agent", "ann")
    assert (result.exit_code, result.output) == (
        1, f"swarmqueue: message {message_id!r} was not sent to 'ann'; nothing to acknowledge\n"
    )  # fmt: skip
    assert run("ack", "feedfacefeedface", "--agent", "bob").exit_code == 1
    assert run("ack", "bad;id", "--agent", "bob").exit_code == 2
    (d,) = ms.messenger.get(message_id).deliveries
    assert d.status.value == "pending"


def test_reply_to_and_inbox_thread(run: Run, ms: Messaging) -> None:
    ms.registry.register("ann", "%7")
    ms.registry.register("bob", "%8")
    root = run("send", "bob", "which port?", "--type", "question", "--sender", "ann").stdout.strip()
    reply = run(
        "send", "ann", "6380", "--type", "answer", "--sender", "bob", "--reply-to", root
    ).stdout.strip()
    challenge = run(
        "broadcast", "6379 is taken?", "--type", "challenge", "--sender", "ann",
        "--reply-to", reply,
    ).stdout.strip()  # fmt: skip
    thread = run("inbox", "--thread", challenge)
    assert thread.exit_code == 0, thread.output
    lines = thread.stdout.splitlines()
    assert lines[0] == f"thread #{root[:8]} (3 message(s))"
    assert f"[QUESTION #{root[:8]}]: which port?  [to bob]" in lines[1]
    assert f"[ANSWER #{reply[:8]} re #{root[:8]}]: 6380  [to ann]" in lines[2]
    assert f"[CHALLENGE #{challenge[:8]} re #{reply[:8]}]: 6379 is taken?  [to bob]" in lines[3]
    as_json = json.loads(run("inbox", "--thread", root, "--json").stdout)
    assert [(m["id"], m["reply_to"]) for m in as_json] == [
        (root, None), (reply, root), (challenge, reply)
    ]  # fmt: skip
    missing = run("send", "bob", "re?", "--reply-to", "feedfacefeedface")
    assert (missing.exit_code, missing.output) == (
        1, "swarmqueue: message 'feedfacefeedface' not found\n"
    )  # fmt: skip


def test_include_self_and_type_aliases(run: Run, ms: Messaging) -> None:
    ms.registry.register("ann", "%7")
    ms.registry.register("bob", "%8")
    message_id = run(
        "broadcast", "please look", "--type", "REVIEW-REQUEST", "--sender", "ann", "--include-self"
    ).stdout.strip()
    message = ms.messenger.get(message_id)
    assert message.type.value == "REVIEW_REQUEST"
    assert [d.agent_id for d in message.deliveries] == ["ann", "bob"]
    for spelling in ("review_request", "Ack", "challenge"):
        assert run("send", "bob", "x", "--type", spelling).exit_code == 0
    bad = run("send", "bob", "x", "--type", "urgent")
    assert bad.exit_code == 2 and "unknown message type 'urgent'" in bad.output


def test_ratelimit_show_and_reset(run: Run, ms: Messaging) -> None:
    ms.registry.register("bob", "%8")
    for i in range(ms.settings.rate_limit_per_minute):
        assert run("send", "bob", f"m{i}", "--sender", "chatty").exit_code == 0
    refused = run("send", "bob", "one more", "--sender", "chatty")
    assert refused.exit_code == 1 and "reached 10 messages per minute" in refused.output
    shown = json.loads(run("ratelimit", "show", "chatty", "--json").stdout)
    assert (shown["used"], shown["limit"], shown["window_seconds"]) == (10, 10, 60)
    reset = run("ratelimit", "reset", "chatty")
    assert reset.stdout == "rate limit of chatty reset (10 message(s) cleared from its window)\n"
    assert run("send", "bob", "one more", "--sender", "chatty").exit_code == 0
    assert json.loads(run("ratelimit", "reset", "chatty", "--json").stdout) == {
        "sender": "chatty", "cleared": 1
    }  # fmt: skip
    assert run("ratelimit", "reset", "bad sender!").exit_code == 2


@pytest.mark.slow
def test_register_by_session_window_pane_stores_the_pane_id(
    run: Run, ms: Messaging, tmp_path: Path
) -> None:
    lab = TmuxLab(tmp_path)
    try:
        first, second = lab.spawn(2)
        target = lab.tmux(
            "display-message", "-p", "-t", second, "#{session_name}:#{window_index}.#{pane_index}"
        )
        assert not target.startswith("%")
        result = run(
            "agents", "register", "--agent", "ann", "--pane", target, "--socket", lab.socket,
            "--json",
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        assert (json.loads(result.stdout)["pane"], result.stderr) == (second, "")
        assert ms.registry.get("ann").pane == second != first
        missing = run("agents", "register", "--agent", "bob", "--pane", "nosuch:0.0",
                      "--socket", lab.socket)  # fmt: skip
        assert missing.exit_code == 1 and "nosuch" in missing.output
        elsewhere = run("agents", "register", "--agent", "bob", "--pane", target,
                        "--host", "other-host")  # fmt: skip
        assert elsewhere.exit_code == 2 and "%N pane id" in elsewhere.output
        bad = run("agents", "register", "--agent", "bob", "--pane", "-t", "--socket", lab.socket)
        assert bad.exit_code == 2
        with pytest.raises(AgentNotFoundError):  # none of the refused ones was registered
            ms.registry.get("bob")
    finally:
        lab.close()


@pytest.mark.slow
def test_in_a_real_pane_the_cli_sends_as_the_agent_registered_there(
    real_redis_url: str, swarm: str, tmp_path: Path
) -> None:
    """Two panes of a private tmux server run the CLI with the $TMUX and $TMUX_PANE tmux gives
    them: one registers itself and sends without --sender, the other is not registered."""
    client = redis.Redis.from_url(real_redis_url)
    m = Messaging(client, swarm)
    lab = TmuxLab(tmp_path)
    cli = shlex.quote(str(Path(sys.executable).with_name("swarmqueue")))
    env = " ".join(
        f"{k}={shlex.quote(v)}"
        for k, v in {
            "SWARMQUEUE_REDIS_URL": real_redis_url,
            "SWARMQUEUE_SWARM": swarm,
            "SWARMQUEUE_HOST": m.host,
            "SWARMQUEUE_LOG_LEVEL": "ERROR",
        }.items()
    )
    try:
        m.registry.register("bob", "%999")
        registered, stranger = tmp_path / "registered.out", tmp_path / "stranger.out"
        script = (
            f"export {env}; {cli} agents register --agent ann >/dev/null 2>&1;"
            f" {cli} send bob 'from the pane' > {registered} 2>&1; echo $? >> {registered}"
        )
        lab.tmux("new-session", "-d", "-x", "120", "-y", "20", f"sh -c {shlex.quote(script)}")
        script = f"export {env}; {cli} send bob 'who am I' > {stranger} 2>&1; echo $? >> {stranger}"
        lab.tmux("new-window", "-d", f"sh -c {shlex.quote(script)}")
        for out in (registered, stranger):

            def finished(out: Path = out) -> bool:  # the command's output, then its status
                return out.exists() and len(out.read_text().splitlines()) >= 2

            wait_for(finished, timeout=60, what=str(out))
        message_id, status = registered.read_text().split()
        assert status == "0"
        message = m.messenger.get(message_id)
        assert message.sender == "ann"
        ann = m.registry.get("ann")
        assert (ann.socket, ann.host) == (lab.socket, m.host) and ann.pane.startswith("%")
        error, status = stranger.read_text().splitlines()
        assert status == "1"
        assert error.startswith("swarmqueue: no agent is registered for pane %")
        assert [e.content for e in m.messenger.inbox("bob")] == ["from the pane"]
    finally:
        lab.close()
        m.close()
        client.close()
