"""broadcast()/send(): validation, recipients, recording, inboxes and one RQ job per host; the
outbox, redispatch and the workers' sweep (their Redis side: no tmux, no worker process)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

import pytest
import redis
import redis.asyncio

from distributor.errors import (
    AgentNotFoundError,
    MessageNotFound,
    RedisUnavailable,
    ValidationError,
)
from distributor.messaging.dispatch import Dispatcher
from distributor.messaging.job_ids import delivery_job_id
from distributor.messaging.messages import AsyncMessenger, DeliveryStatus, MessageType, prepare
from tests.conftest import snapshot
from tests.messaging_support import Messaging, delete_rq_keys, sweep


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
        assert entry.line().endswith(f"[TASK_AVAILABLE #{message_id[:8]}]: tasks ready")


def test_one_job_per_host_and_redispatch_is_harmless(ms: Messaging) -> None:
    other = ms.host + "-b"
    try:
        ms.registry.register("carol", "%1", host=other)
        message_id = ms.messenger.broadcast("hi")
        assert sorted(ms.messenger.get(message_id).hosts) == sorted([ms.host, other])
        assert ms.queued_job_ids(other) == [delivery_job_id(message_id, other)]
        ms.messenger.dispatcher.dispatch(ms.swarm, message_id, [ms.host, other])
        found = {r.host: r for r in ms.messenger.redispatch([message_id])}
        assert {h: (r.action, r.job_id) for h, r in found.items()} == {
            ms.host: ("queued", delivery_job_id(message_id, ms.host)),
            other: ("queued", delivery_job_id(message_id, other)),
        }
        assert ms.queued_job_ids() == [delivery_job_id(message_id, ms.host)]
        assert ms.queued_job_ids(other) == [delivery_job_id(message_id, other)]
    finally:
        delete_rq_keys(ms.client, other)


def test_each_host_outbox_holds_the_message_until_its_recipients_are_final(ms: Messaging) -> None:
    message_id = ms.messenger.broadcast("hi")
    (entry,) = ms.outbox()
    assert entry[:2] == (message_id, ms.host)
    sent = ms.messenger.get(message_id).at.timestamp() * 1000
    assert 4_000 <= entry[2] - sent <= 6_000  # looked at by a sweep 5 s after sending
    assert ms.client.smembers(ms.keys.hosts) == {ms.host.encode()}
    (pending,) = ms.messenger.pending()
    assert (pending.message_id, pending.host, pending.holder) == (message_id, ms.host, None)
    assert pending.counts == {"pending": 2, "typing": 0, "delivered": 0, "failed": 0,
                              "acknowledged": 0, "unacknowledged": 0}  # fmt: skip
    assert pending.job_id == delivery_job_id(message_id, ms.host)


def test_a_lost_enqueue_is_replaced_by_a_new_job(ms: Messaging) -> None:
    message_id = ms.messenger.broadcast("hi")
    first = delivery_job_id(message_id, ms.host)  # as if the enqueue was lost
    ms.client.delete(f"rq:queue:swarmqueue-deliver-{ms.host}", f"rq:job:{first}")
    assert ms.messenger.redispatch(due_only=True) == []  # not due yet: the enqueue may come
    ms.advance_clock(6)
    (found,) = ms.messenger.redispatch(due_only=True)
    assert (found.action, found.seen, found.job_id) == ("replaced", "missing", first + "-1")
    assert ms.queued_job_ids() == [first + "-1"]
    (again,) = ms.messenger.redispatch()  # the new job waits in the queue: left alone
    assert (again.action, again.job_id) == ("queued", first + "-1")
    assert ms.queued_job_ids() == [first + "-1"]


def test_a_job_popped_by_a_dead_worker_or_finished_is_replaced(ms: Messaging) -> None:
    message_id = ms.messenger.broadcast("hi")
    first = delivery_job_id(message_id, ms.host)
    queue = f"rq:queue:swarmqueue-deliver-{ms.host}"
    ms.client.lmove(queue, queue + ":intermediate")  # BLMOVE by a worker killed right after
    (found,) = ms.messenger.redispatch()
    assert (found.action, found.seen, found.job_id) == ("replaced", "popped", first + "-1")
    ms.client.hset(f"rq:job:{first}-1", "status", "finished")  # ran, but left it unfinished
    ms.client.delete(queue)
    (found,) = ms.messenger.redispatch()
    assert (found.action, found.seen, found.job_id) == ("replaced", "finished", first + "-2")


def test_a_leased_delivery_is_left_to_its_job(ms: Messaging) -> None:
    message_id = ms.messenger.broadcast("hi")
    lease = ms.keys.delivering(message_id, ms.host)
    ms.client.set(lease, "worker-a 0badf00d", px=8_000)
    ms.client.delete(f"rq:job:{delivery_job_id(message_id, ms.host)}")  # even with no job
    (found,) = ms.messenger.redispatch()
    assert (found.action, found.holder) == ("running", "worker-a 0badf00d")
    (entry,) = ms.outbox()
    assert found.due is not None and entry[2] == int(found.due.timestamp() * 1000)
    assert ms.messenger.pending()[0].holder == "worker-a 0badf00d"


def test_only_one_of_two_sweepers_replaces_a_job(ms: Messaging) -> None:
    message_id = ms.messenger.broadcast("hi")
    first = delivery_job_id(message_id, ms.host)
    step = {
        "seen_job": "",
        "verdict": "dead",
        "first_job": first,
        "due_only": False,
    }
    ops = ms.messenger.ops
    executor = ms.messenger._executor
    one = executor.run(ops.redispatch_step(message_id, ms.host, **step))  # type: ignore[arg-type]
    two = executor.run(ops.redispatch_step(message_id, ms.host, **step))  # type: ignore[arg-type]
    assert one == ("replaced", {"job_id": first + "-1", "due": one[1]["due"]})
    assert two == ("moved", {"job_id": first + "-1"})


def test_finished_and_expired_messages_need_nothing(ms: Messaging) -> None:
    done = ms.messenger.broadcast("done")
    ms.client.zrem(ms.keys.outbox(ms.host), done)  # every recipient final
    (found,) = ms.messenger.redispatch([done])
    assert found.action == "finished"
    gone = ms.messenger.broadcast("gone")
    ms.client.delete(ms.keys.message(gone))  # expired
    (found,) = ms.messenger.redispatch(due_only=False)
    assert (found.message_id, found.action) == (gone, "gone")
    assert ms.outbox() == []
    with pytest.raises(MessageNotFound):
        ms.messenger.redispatch([gone])


def test_a_resent_recording_records_one_message(ms: Messaging) -> None:
    outgoing = prepare("once", "INFO", "lead", None, ms.settings)
    ops, executor = ms.messenger.ops, ms.messenger._executor
    first = executor.run(ops.post(outgoing, message_id="0123456789abcdef"))
    again = executor.run(ops.post(outgoing, message_id="0123456789abcdef"))
    assert again == first.model_copy(update={"recipients": sorted(first.recipients)})
    for agent in ("alice", "bob"):
        assert [e.message_id for e in ms.messenger.inbox(agent)] == ["0123456789abcdef"]
    assert ms.client.zcard(ms.keys.rate("lead")) == 1
    other = prepare("another text", "INFO", "lead", None, ms.settings)
    with pytest.raises(ValidationError, match="belongs to another message"):
        executor.run(ops.post(other, message_id="0123456789abcdef"))


def test_an_outcome_recorded_twice_by_one_attempt_counts_once(ms: Messaging) -> None:
    message_id = ms.messenger.broadcast("hi")
    ops, executor = ms.messenger.ops, ms.messenger._executor
    failed = {"alice": {"status": "failed", "reason": "timeout", "detail": "x", "final": False}}
    assert executor.run(ops.record(message_id, failed, "a1b2c3d4")) == 1
    assert executor.run(ops.record(message_id, failed, "a1b2c3d4")) == 0  # re-sent
    assert executor.run(ops.record(message_id, failed, "feedf00d")) == 1  # the next attempt
    alice = {d.agent_id: d for d in ms.messenger.get(message_id).deliveries}["alice"]
    assert (alice.status, alice.attempts) == ("failed", 2)


def test_a_failed_enqueue_is_dispatched_by_the_sweep(
    ms: Messaging, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unreachable(*args: object, **kwargs: object) -> None:
        raise RedisUnavailable("Redis unreachable: connection reset (test)")

    real_enqueue = Dispatcher.enqueue
    monkeypatch.setattr(Dispatcher, "enqueue", unreachable)
    message_id = ms.messenger.broadcast("recorded, not enqueued")
    monkeypatch.setattr(Dispatcher, "enqueue", real_enqueue)  # (undo() would drop the env too)
    assert ms.queued_job_ids() == []
    assert sweep(ms.client, ms.host, ms.settings).actions == {}  # not due yet
    ms.advance_clock(6)
    report = sweep(ms.client, ms.host, ms.settings)
    (found,) = report.replaced()
    assert (found.message_id, found.seen) == (message_id, "missing")
    assert ms.queued_job_ids() == [found.job_id]


def test_registering_names_the_swarm_for_its_host_and_the_sweep_forgets_it(
    ms: Messaging,
) -> None:
    assert ms.client.smembers(ms.keys.host_swarms(ms.host)) == {ms.swarm.encode()}
    message_id = ms.messenger.broadcast("hi")
    ms.registry.remove("alice")
    ms.registry.remove("bob")
    assert sweep(ms.client, ms.host, ms.settings).forgotten == []  # its outbox is not empty
    ms.client.zrem(ms.keys.outbox(ms.host), message_id)
    assert sweep(ms.client, ms.host, ms.settings).forgotten == [ms.swarm]
    assert ms.client.smembers(ms.keys.host_swarms(ms.host)) == set()


def test_the_sweep_prunes_long_gone_agents(redis_client: redis.Redis, swarm: str) -> None:
    m = Messaging(redis_client, swarm, agent_prune_seconds=60)
    try:
        m.registry.register("gone", "%1")
        m.advance_clock(61)
        m.registry.register("here", "%2")
        assert sweep(m.client, m.host, m.settings).pruned == {swarm: ["gone"]}
        assert [a.id for a in m.registry.list()] == ["here"]
    finally:
        m.close()


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
        messenger = AsyncMessenger(client, ms.rq, ms.swarm, settings=ms.settings)
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
