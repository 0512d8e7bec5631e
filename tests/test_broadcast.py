"""broadcast()/send(): validation, recipients, recording, inboxes and one RQ job per host."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

import pytest
import redis
import redis.asyncio

from distributor.dispatch import delivery_job_id
from distributor.errors import AgentNotFoundError, MessageNotFound, ValidationError
from distributor.messages import AsyncMessenger, DeliveryStatus, MessageType
from tests.conftest import snapshot
from tests.messaging_support import Messaging, delete_rq_keys


@pytest.fixture
def ms(redis_client: redis.Redis, swarm: str) -> Iterator[Messaging]:
    m = Messaging(redis_client, swarm, agent_stale_seconds=60)
    m.registry.register("alice", "%1")
    m.registry.register("bob", "%2")
    yield m
    m.close()


def test_broadcast_records_pending_outcomes_inboxes_and_one_job(ms: Messaging) -> None:
    message_id = ms.messenger.broadcast("tasks ready", MessageType.TASK_AVAILABLE, "lead")

    message = ms.messenger.get(message_id)
    assert (message.sender, message.type) == ("lead", "TASK_AVAILABLE")
    assert message.content == "tasks ready"
    assert message.hosts == [ms.host]
    assert [(d.agent_id, d.status, d.pane) for d in message.deliveries] == [
        ("alice", DeliveryStatus.PENDING, "%1"),
        ("bob", DeliveryStatus.PENDING, "%2"),
    ]
    assert ms.queued_job_ids() == [delivery_job_id(message_id, ms.host)]
    for agent in ("alice", "bob"):
        (entry,) = ms.messenger.inbox(agent)
        assert (entry.message_id, entry.content) == (message_id, "tasks ready")
        assert entry.line().endswith("[TASK_AVAILABLE]: tasks ready")


def test_one_job_per_host_and_redispatch_is_harmless(ms: Messaging) -> None:
    other = ms.host + "-b"
    try:
        ms.registry.register("carol", "%1", host=other)
        message_id = ms.messenger.broadcast("hi")
        assert sorted(ms.messenger.get(message_id).hosts) == sorted([ms.host, other])
        assert ms.queued_job_ids(other) == [delivery_job_id(message_id, other)]
        ms.messenger.dispatcher.dispatch(ms.swarm, message_id, [ms.host, other])
        assert ms.queued_job_ids() == [delivery_job_id(message_id, ms.host)]
        assert ms.queued_job_ids(other) == [delivery_job_id(message_id, other)]
    finally:
        delete_rq_keys(ms.client, other)


def test_undispatched_deliveries_are_enqueued_again(ms: Messaging) -> None:
    message_id = ms.messenger.broadcast("hi")
    job_id = delivery_job_id(message_id, ms.host)  # as if the enqueue was lost
    ms.client.delete(f"rq:queue:swarmqueue-deliver-{ms.host}", f"rq:job:{job_id}")
    assert ms.messenger.redispatch(older_than=60) == 0  # not overdue yet
    ms.advance_clock(61)
    assert ms.messenger.redispatch(older_than=60) == 1
    assert ms.queued_job_ids() == [delivery_job_id(message_id, ms.host)]


def test_send_reaches_a_stale_agent_that_broadcasts_skip(ms: Messaging) -> None:
    ms.advance_clock(61)
    ms.registry.heartbeat("bob")
    broadcast_id = ms.messenger.broadcast("to the present")
    assert [d.agent_id for d in ms.messenger.get(broadcast_id).deliveries] == ["bob"]
    send_id = ms.messenger.send("alice", "wake up")
    assert [d.agent_id for d in ms.messenger.get(send_id).deliveries] == ["alice"]


def test_unknown_recipient_is_refused_and_nothing_is_written(ms: Messaging) -> None:
    before = snapshot(ms.client, ms.keys.prefix)
    with pytest.raises(AgentNotFoundError) as info:
        ms.messenger.broadcast("hi", recipients=["alice", "nobody"])
    assert info.value.agent_ids == ["nobody"]
    assert snapshot(ms.client, ms.keys.prefix) == before
    assert ms.queued_job_ids() == []


def test_no_active_agent_is_refused(ms: Messaging) -> None:
    ms.advance_clock(61)
    with pytest.raises(AgentNotFoundError, match="no active agent"):
        ms.messenger.broadcast("anyone?")


@pytest.mark.parametrize(
    ("content", "kwargs"),
    [
        ("", {}),
        ("\x1b[2J\x07", {}),  # nothing left once made inert
        ("hi", {"msg_type": "SHOUT"}),
        ("hi", {"sender": "bad sender"}),
        ("hi", {"recipients": []}),
        ("hi", {"recipients": ["bad id!"]}),
        ("x" * (8 * 1024 * 1024 + 1), {}),
    ],
)
def test_invalid_messages_are_refused_and_nothing_is_written(
    ms: Messaging, content: str, kwargs: dict[str, object]
) -> None:
    before = snapshot(ms.client, ms.keys.prefix)
    with pytest.raises(ValidationError):
        ms.messenger.broadcast(content, **kwargs)  # type: ignore[arg-type]
    assert snapshot(ms.client, ms.keys.prefix) == before


def test_unknown_message(ms: Messaging) -> None:
    with pytest.raises(MessageNotFound):
        ms.messenger.get("0123456789abcdef")
    with pytest.raises(ValidationError):
        ms.messenger.get("../etc")


def test_async_broadcast_runs_without_blocking_the_loop(
    ms: Messaging, async_client_factory: Callable[[], redis.asyncio.Redis]
) -> None:
    async def scenario() -> tuple[str, int]:
        client = async_client_factory()
        messenger = AsyncMessenger(client, ms.client, ms.swarm, settings=ms.settings)
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0)

        task = asyncio.create_task(ticker())
        message_id = await messenger.broadcast("x" * 200_000, "INFO", "lead", ["alice"])
        task.cancel()
        inbox = await messenger.inbox("alice")
        assert inbox[-1].message_id == message_id
        await client.aclose()
        return message_id, ticks

    message_id, ticks = asyncio.run(scenario())
    assert ticks > 0  # the loop kept running while the message was prepared and enqueued
    assert ms.queued_job_ids() == [delivery_job_id(message_id, ms.host)]
