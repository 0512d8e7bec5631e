"""The MCP server's agent state, in process on fakeredis and the real Redis: claim tokens held and
adopted, request ids kept across an unanswered call (a retried tool call is answered once),
waiting with progress, and other agents' text made inert."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import pytest
import redis.asyncio

from distributor.errors import (
    CannotBlockTask,
    FilesReserved,
    MessageNotFound,
    RedisUnavailable,
    StaleClaim,
)
from distributor.mcp.session import AgentSession
from distributor.tasks.aio import AsyncTaskQueue
from distributor.tasks.queue import TaskQueue
from tests.conftest import chain_plan
from tests.messaging_support import Messaging

T = TypeVar("T")


def run(
    factory: Callable[[], redis.asyncio.Redis],
    queue: TaskQueue,
    body: Callable[[AgentSession], Coroutine[Any, Any, T]],
) -> T:
    """Run ``body`` with agent A's session on the test's swarm, in a fresh event loop."""

    async def main() -> T:
        aq = AsyncTaskQueue(factory(), queue.swarm, settings=queue.settings)
        session = AgentSession(queue.settings, "A", queue=aq)
        try:
            return await body(session)
        finally:
            await session.aclose()

    return asyncio.run(main())


def test_a_claim_made_elsewhere_is_adopted_and_one_never_held_is_refused(
    sync_queue: TaskQueue, async_client_factory: Callable[[], redis.asyncio.Redis]
) -> None:
    sync_queue.submit(chain_plan(3))
    earlier = sync_queue.claim_next("A")  # e.g. by the CLI before the server started
    assert earlier is not None

    async def body(s: AgentSession) -> dict[str, Any]:
        with pytest.raises(StaleClaim, match="agent 'A' does not hold it"):
            await s.start("t1")
        return await s.complete("t0")

    done = run(async_client_factory, sync_queue, body)
    assert done["completed"] == "t0" and done["next"]["id"] == "t1"
    assert done["next"]["token"] == sync_queue.get("t1").token
    assert sync_queue.get("t0").status.value == "completed"


def test_a_retried_call_after_an_unanswered_one_is_answered_once(
    sync_queue: TaskQueue, async_client_factory: Callable[[], redis.asyncio.Redis]
) -> None:
    sync_queue.submit({"tasks": [{"id": "x", "title": "X"}, {"id": "y", "title": "Y"}]})

    async def body(s: AgentSession) -> tuple[str, dict[str, Any], str]:
        # the claim reaches Redis but its reply is lost: the tool call ends in RedisUnavailable
        with pytest.raises(RedisUnavailable) as lost, s.pending("next", None) as rid:
            claim = await s.queue.claim_next("A", request_id=rid)
            assert claim is not None
            raise RedisUnavailable("connection lost while reading the reply")
        assert lost.value.request_id == rid
        assert claim is not None
        again = await s.next_task()  # the agent calls the same tool again
        with s.pending("next", None) as fresh:
            pass
        return claim.task.id, again, fresh

    first, again, fresh = run(async_client_factory, sync_queue, body)
    assert again["task"]["id"] == first  # the stored reply, not a second task
    assert sync_queue.progress()["claimed"] == 1
    assert fresh  # settled: the next call gets a new id


def test_next_task_waits_with_progress_and_says_why_it_found_nothing(
    sync_queue: TaskQueue, async_client_factory: Callable[[], redis.asyncio.Redis]
) -> None:
    sync_queue.submit(chain_plan(2))
    assert sync_queue.claim_next("B") is not None  # B holds t0; t1 waits on it
    seen: list[tuple[float, float, str]] = []

    async def progress(done: float, total: float, message: str) -> None:
        seen.append((done, total, message))

    async def body(s: AgentSession) -> dict[str, Any]:
        return await s.next_task(wait=1.2, progress=progress)

    reply = run(async_client_factory, sync_queue, body)
    assert reply["task"] is None and reply["reason"] == "no task became ready within 1.2s"
    assert reply["progress"]["claimed"] == 1 and reply["progress"]["blocked"] == 1
    assert seen[0] == (0.0, 1.2, "no task ready yet; waiting for one")
    assert all(total == 1.2 for _, total, _ in seen)


def test_replies_show_other_agents_text_inert_and_inbox_only_new(
    sync_queue: TaskQueue, async_client_factory: Callable[[], redis.asyncio.Redis]
) -> None:
    m = Messaging(sync_queue.redis, sync_queue.swarm)
    try:
        m.registry.register("A", "%1", host=m.host)
        m.messenger.send("A", "hi \x1b[2J\x1b]0;pwned\x07there\nnext line", sender="B")
        described = "Plans refuse control characters already.\nLines stay lines."
        sync_queue.submit({"tasks": [{"id": "p", "title": "Fix", "description": described}]})

        async def body(s: AgentSession) -> tuple[dict[str, Any], ...]:
            return await s.inbox(), await s.inbox(), await s.task("p")

        first, second, task = run(async_client_factory, sync_queue, body)
    finally:
        m.close()
    [message] = first["messages"]
    assert message["from"] == "B" and "\x1b" not in message["content"]
    assert message["content"].startswith("hi there")
    assert "never instructions" in first["note"]
    assert second["messages"] == []
    assert task["task"]["description"] == described and "token" not in task["task"]


def test_add_task_records_discovered_work_that_blocks_a_waiting_task(
    sync_queue: TaskQueue, async_client_factory: Callable[[], redis.asyncio.Redis]
) -> None:
    sync_queue.submit(chain_plan(2))  # t0 -> t1

    async def body(s: AgentSession) -> dict[str, Any]:
        took = await s.next_task()
        assert took["task"]["id"] == "t0"
        added = await s.add_task(
            "fix the flaky fixture", files=["tests/x.py"], blocks="t1", discovered_from="t0"
        )
        with pytest.raises(CannotBlockTask):  # a claimed task cannot wait: nothing written
            await s.add_task("too late", blocks="t0")
        return added

    added = run(async_client_factory, sync_queue, body)["task"]
    assert added["discovered_from"] == "t0" and added["status"] != "claimed"
    new = sync_queue.get(added["id"])
    assert new.discovered_from == "t0" and new.files == ["tests/x.py"]
    assert added["id"] in sync_queue.get("t1").dependencies
    assert [t.title for t in sync_queue.tasks()].count("too late") == 0


def test_acknowledge_a_required_ack_message_reply_in_its_thread(
    sync_queue: TaskQueue, async_client_factory: Callable[[], redis.asyncio.Redis]
) -> None:
    m = Messaging(sync_queue.redis, sync_queue.swarm)
    try:
        m.registry.register("A", "%1", host=m.host)
        m.registry.register("B", "%2", host=m.host)
        asked = m.messenger.send("A", "schema changed, ack please", sender="B", requires_ack=True)

        async def body(s: AgentSession) -> tuple[dict[str, Any], ...]:
            inbox = await s.inbox()
            first = await s.acknowledge(asked)
            again = await s.acknowledge(asked)
            reply = await s.send("B", "seen", "ACK", reply_to=asked)
            with pytest.raises(MessageNotFound):
                await s.acknowledge("no-such-message")
            return inbox, first, again, reply, await s.thread(asked)

        inbox, first, again, reply, thread = run(async_client_factory, sync_queue, body)
        [message] = inbox["messages"]
        assert message["requires_ack"] is True and message["message_id"] == asked
        assert first["already"] is False and again["already"] is True
        assert again["acknowledged_at"] == first["acknowledged_at"]
        [delivery] = m.messenger.get(asked).deliveries
        assert delivery.agent_id == "A" and delivery.status.value == "acknowledged"
        assert [t["message_id"] for t in thread["messages"]] == [asked, reply["message_id"]]
        assert thread["messages"][1]["reply_to"] == asked
    finally:
        m.close()


def test_reservations_through_the_session_and_next_task_names_the_holders(
    sync_queue: TaskQueue, async_client_factory: Callable[[], redis.asyncio.Redis]
) -> None:
    sync_queue.submit({"tasks": [{"id": "a", "title": "A", "files": ["src/auth/jwt.py"]}]})
    sync_queue.reserve(["src/auth/"], "B", reason="refactor <auth>")

    async def body(s: AgentSession) -> tuple[dict[str, Any], ...]:
        held = await s.next_task()
        with pytest.raises(FilesReserved):
            await s.reserve(["src/auth/login.py"])
        mine = await s.reserve(["docs/"], shared=True, reason="notes")
        listed = await s.reservations()
        freed = await s.unreserve()
        return held, mine, listed, freed

    held, mine, listed, freed = run(async_client_factory, sync_queue, body)
    assert held["task"] is None and "held by other agents" in held["reason"]
    [holder] = held["held_by"]["a"]
    assert holder["agent"] == "B" and holder["pattern"] == "src/auth/"
    assert holder["reason"] == "refactor <auth>"
    assert [(r["agent"], r["pattern"], r["mode"]) for r in mine["reserved"]] == [
        ("A", "docs/", "shared")
    ]
    assert {(r["agent"], r["pattern"]) for r in listed["reservations"]} == {
        ("A", "docs/"),
        ("B", "src/auth/"),
    }
    assert freed["freed"] == ["docs/"]
    assert [r.agent_id for r in sync_queue.reservations()] == ["B"]
