"""The executor registers a Lua script when it first runs it, and only the scripts it may run."""

from __future__ import annotations

import fakeredis
import pytest

from distributor import TaskQueue
from distributor.store.executor import Scripts


def test_a_script_is_registered_on_its_first_call_and_kept() -> None:
    scripts = Scripts(fakeredis.FakeRedis(), ("claim", "heartbeat"))
    assert len(scripts) == 0
    claim = scripts["claim"]
    assert scripts["claim"] is claim and list(scripts) == ["claim"]
    with pytest.raises(KeyError, match="complete"):
        scripts["complete"]  # a task script, but not one of these


def test_a_queue_registers_only_what_it_ran() -> None:
    queue = TaskQueue(fakeredis.FakeRedis(), "lazy-scripts")
    queue.submit([{"id": "a", "title": "A"}])
    assert queue.claim("a", "a1").claimed
    assert set(queue._executor._scripts) == {"submit_plan", "claim"}
