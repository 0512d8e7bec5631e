"""The agent registry: register, presence, stale agents, removal, and tmux pane discovery."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from distributor.errors import AgentNotFoundError, TmuxServerNotFound, ValidationError
from distributor.messaging.names import tmux_location
from tests.conftest import snapshot
from tests.messaging_support import Messaging, TmuxLab
from workers.tmux import discover


@pytest.fixture
def ms(redis_client: redis.Redis, swarm: str) -> Iterator[Messaging]:
    m = Messaging(redis_client, swarm, agent_stale_seconds=60)
    yield m
    m.close()


def test_register_and_list(ms: Messaging) -> None:
    agent = ms.registry.register("alice", "%3", socket="/tmp/tmux-1/default", capabilities=["py"])
    assert (agent.id, agent.pane, agent.socket, agent.host) == (
        "alice",
        "%3",
        "/tmp/tmux-1/default",
        ms.host,
    )
    ms.registry.register("bob", "%4", host="other-host")
    listed = {a.id: a for a in ms.registry.list()}
    assert set(listed) == {"alice", "bob"}
    assert listed["alice"].capabilities == ["py"] and not listed["alice"].stale
    assert listed["bob"].host == "other-host" and listed["bob"].socket is None


def test_register_again_moves_the_agent(ms: Messaging) -> None:
    ms.registry.register("alice", "%3", capabilities=["py"])
    ms.registry.register("alice", "%9")
    (agent,) = ms.registry.list()
    assert agent.pane == "%9" and agent.capabilities == []


def test_unseen_agent_becomes_stale_and_heartbeat_revives_it(ms: Messaging) -> None:
    ms.registry.register("alice", "%3")
    ms.advance_clock(61)
    assert ms.registry.get("alice").stale
    seen = ms.registry.heartbeat("alice")
    agent = ms.registry.get("alice")
    assert not agent.stale and agent.last_seen == seen


def test_remove(ms: Messaging) -> None:
    ms.registry.register("alice", "%3")
    ms.registry.remove("alice")
    assert ms.registry.list() == []
    with pytest.raises(AgentNotFoundError):
        ms.registry.remove("alice")
    with pytest.raises(AgentNotFoundError):
        ms.registry.heartbeat("alice")


@pytest.mark.parametrize(
    "fields",
    [
        {"agent_id": "bad id", "pane": "%1"},
        {"agent_id": "a", "pane": "1"},
        {"agent_id": "a", "pane": "%1; kill-server"},
        {"agent_id": "a", "pane": "%1", "socket": "relative/path"},
        {"agent_id": "a", "pane": "%1", "socket": "/tmp/x\n"},
        {"agent_id": "a", "pane": "%1", "host": "bad host"},
        {"agent_id": "a", "pane": "%1", "capabilities": ["ok", "not ok"]},
    ],
)
def test_bad_registration_is_refused_and_writes_nothing(
    ms: Messaging, fields: dict[str, object]
) -> None:
    before = snapshot(ms.client, ms.keys.prefix)
    with pytest.raises(ValidationError):
        ms.registry.register(**fields)  # type: ignore[arg-type]
    assert snapshot(ms.client, ms.keys.prefix) == before


def test_tmux_location_from_the_environment() -> None:
    assert tmux_location("/tmp/tmux-1000/default,4242,0", "%7") == ("%7", "/tmp/tmux-1000/default")
    assert tmux_location(None, None) == (None, None)


@pytest.mark.slow
def test_discover_lists_the_panes_of_a_server(tmp_path: Path) -> None:
    lab = TmuxLab(tmp_path)
    try:
        panes = lab.spawn(2)
        found = discover(lab.socket)
        assert sorted(p.pane for p in found) == sorted(panes)
        assert all(p.socket == lab.socket and p.session for p in found)
    finally:
        lab.close()


def test_discover_without_a_server_is_a_typed_error(tmp_path: Path) -> None:
    with pytest.raises(TmuxServerNotFound):
        discover(str(tmp_path / "none.sock"))
    with pytest.raises(ValidationError):
        discover("not/absolute")


def test_prune_forgets_only_agents_unseen_past_the_window(redis_client: redis.Redis) -> None:
    import uuid

    m = Messaging(
        redis_client, f"test-{uuid.uuid4().hex[:12]}", agent_stale_seconds=60,
        agent_prune_seconds=3600,
    )
    try:
        m.registry.register("old", "%1")
        m.registry.register("fresh", "%2")
        m.messenger.broadcast("hi", sender="lead", recipients=["old", "fresh"])
        m.advance_clock(3000)
        m.registry.heartbeat("fresh")
        assert m.registry.prune() == []  # 3,000 s unseen: away, not yet pruned
        assert {a.id: a.stale for a in m.registry.list()} == {"fresh": False, "old": True}

        m.advance_clock(601)
        assert m.registry.prune() == ["old"]
        assert [a.id for a in m.registry.list()] == ["fresh"]
        assert not redis_client.exists(m.keys.agent("old"), m.keys.inbox("old"))
        assert len(m.messenger.inbox("fresh")) == 1
        with pytest.raises(AgentNotFoundError):
            m.registry.get("old")
    finally:
        m.close()
