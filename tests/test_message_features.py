"""Messages as agents use them (issue 14): type aliases, acknowledgements (their refusals and
idempotence), re-delivery bookkeeping, replies and threads, broadcasts that skip their sender,
and the rate-limit window and its reset. The Redis side, on fakeredis and a real Redis; the
tmux side of re-delivery is in test_ack_delivery.py.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Callable, Iterator

import pytest
import redis
import redis.asyncio

from distributor.errors import (
    AgentNotFoundError,
    MessageNotFound,
    NotARecipient,
    RateLimitExceeded,
    ValidationError,
)
from distributor.messaging.messages import (
    AsyncMessenger,
    DeliveryStatus,
    MessageType,
    parse_message_type,
)
from tests.conftest import snapshot
from tests.messaging_support import Messaging
from workers.delivery import deliver_message


@pytest.fixture
def ms(redis_client: redis.Redis, swarm: str) -> Iterator[Messaging]:
    m = Messaging(redis_client, swarm, ack_redeliveries=1, ack_first_delay_seconds=10)
    for agent, pane in (("ann", "%1"), ("bob", "%2"), ("cy", "%3")):
        m.registry.register(agent, pane)
    yield m
    m.close()


class PredecessorType(enum.Enum):
    """How claude-swarm spelled its types (an enum of its own, valued with a hyphen)."""

    REVIEW_REQUEST = "REVIEW-REQUEST"
    ACK = "ACK"
    CHALLENGE = "CHALLENGE"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("REVIEW-REQUEST", MessageType.REVIEW_REQUEST),
        ("review_request", MessageType.REVIEW_REQUEST),
        ("Review-Request", MessageType.REVIEW_REQUEST),
        ("review request", MessageType.REVIEW_REQUEST),
        (PredecessorType.REVIEW_REQUEST, MessageType.REVIEW_REQUEST),
        ("ack", MessageType.ACK),
        (PredecessorType.ACK, MessageType.ACK),
        ("Challenge", MessageType.CHALLENGE),
        (PredecessorType.CHALLENGE, MessageType.CHALLENGE),
        ("task-available", MessageType.TASK_AVAILABLE),
        (MessageType.INFO, MessageType.INFO),
    ],
)
def test_types_accept_the_predecessors_spellings(given: object, expected: MessageType) -> None:
    assert parse_message_type(given) is expected


@pytest.mark.parametrize("given", ["REVIEW--", "", "nope", 3, "A" * 100, "INFO\x1b[2J"])
def test_unknown_types_are_refused(given: object) -> None:
    with pytest.raises(ValidationError, match="unknown message type") as info:
        parse_message_type(given)
    assert "\x1b" not in str(info.value)


def test_a_message_sent_with_an_alias_is_recorded_with_the_canonical_type(ms: Messaging) -> None:
    message_id = ms.messenger.send("bob", "please review #42", PredecessorType.REVIEW_REQUEST)
    message = ms.messenger.get(message_id)
    assert message.type is MessageType.REVIEW_REQUEST
    (entry,) = ms.messenger.inbox("bob")
    assert entry.line().endswith(f"[REVIEW_REQUEST #{message_id[:8]}]: please review #42")


# -- acknowledgements -------------------------------------------------------------------------


def test_acknowledging_records_the_time_once_and_is_idempotent(ms: Messaging) -> None:
    message_id = ms.messenger.broadcast("freeze main", "ALERT", "lead", requires_ack=True)
    message = ms.messenger.get(message_id)
    assert message.requires_ack and all(d.requires_ack for d in message.deliveries)
    first = ms.messenger.acknowledge(message_id, "bob")
    assert (first.already, first.late, first.agent_id) == (False, False, "bob")
    ms.advance_clock(5)
    again = ms.messenger.acknowledge(message_id, "bob")
    assert (again.already, again.acked_at) == (True, first.acked_at)
    outcomes = {d.agent_id: d for d in ms.messenger.get(message_id).deliveries}
    assert outcomes["bob"].status is DeliveryStatus.ACKNOWLEDGED
    assert outcomes["bob"].acked_at == first.acked_at
    assert outcomes["ann"].status is DeliveryStatus.PENDING and outcomes["ann"].acked_at is None


def test_acknowledging_what_was_not_sent_to_you_is_refused_and_changes_nothing(
    ms: Messaging,
) -> None:
    message_id = ms.messenger.send("bob", "for bob only", requires_ack=True)
    before = snapshot(ms.client, ms.keys.prefix)
    with pytest.raises(NotARecipient, match="was not sent to 'ann'"):
        ms.messenger.acknowledge(message_id, "ann")
    with pytest.raises(MessageNotFound):
        ms.messenger.acknowledge("0123456789abcdef", "bob")
    with pytest.raises(ValidationError):
        ms.messenger.acknowledge("bad id!", "bob")
    assert snapshot(ms.client, ms.keys.prefix) == before


def test_a_message_acknowledged_from_the_inbox_is_not_typed(ms: Messaging) -> None:
    message_id = ms.messenger.broadcast("read the inbox", sender="lead", requires_ack=True)
    for agent in ("ann", "bob", "cy"):
        ms.messenger.acknowledge(message_id, agent)
    report = deliver_message(ms.client, ms.swarm, message_id, ms.host, settings=ms.settings)
    assert (report.skipped, report.delivered, report.failed) == (3, 0, 0)  # no tmux was asked
    assert ms.outbox() == []
    assert ms.messenger.remind().reminded == []


def test_any_message_received_can_be_acknowledged(ms: Messaging) -> None:
    message_id = ms.messenger.send("cy", "fyi")
    assert ms.messenger.acknowledge(message_id, "cy").already is False
    (d,) = ms.messenger.get(message_id).deliveries
    assert (d.status, d.requires_ack) == (DeliveryStatus.ACKNOWLEDGED, False)


def test_failed_deliveries_wait_for_the_ack_too_and_the_bound_holds(ms: Messaging) -> None:
    """No tmux server at the panes: each (re-)delivery fails for good, the acknowledgement is
    still awaited, re-delivered once (ack_redeliveries=1), then given up."""
    message_id = ms.messenger.send("ann", "are you there?", requires_ack=True)

    def run_job() -> None:
        deliver_message(ms.client, ms.swarm, message_id, ms.host, settings=ms.settings)

    def ann() -> tuple[str, int, bool]:
        (d,) = ms.messenger.get(message_id).deliveries
        return d.status.value, d.reminders, d.remind_at is not None

    run_job()
    assert ann() == ("failed", 0, True)
    assert ms.messenger.remind().reminded == []  # 10 s not over
    ms.advance_clock(10.5)
    assert ms.messenger.remind().reminded == [(message_id, "ann", 1)]
    assert ann() == ("pending", 1, False)
    assert [e[0] for e in ms.outbox()] == [message_id]  # due for the host's sweep
    run_job()
    assert ann() == ("failed", 1, True)
    ms.advance_clock(15)
    assert ms.messenger.remind().unacknowledged == []  # the give-up waits twice as long (20 s)
    ms.advance_clock(6)
    assert ms.messenger.remind().unacknowledged == [(message_id, "ann")]
    assert ann() == ("unacknowledged", 1, False)
    assert ms.client.zcard(ms.keys.acks) == 0


def test_a_redelivery_waits_while_a_job_delivers_the_message_on_its_host(ms: Messaging) -> None:
    """The job's finish would drop the outbox entry the re-delivery needs: it waits a moment."""
    message_id = ms.messenger.send("ann", "still there?", requires_ack=True)
    deliver_message(ms.client, ms.swarm, message_id, ms.host, settings=ms.settings)
    ms.client.set(ms.keys.delivering(message_id, ms.host), "another-worker a1", px=60_000)
    ms.advance_clock(10.5)
    assert ms.messenger.remind().reminded == []
    assert ms.outbox() == []
    ms.client.delete(ms.keys.delivering(message_id, ms.host))  # that job finished
    ms.advance_clock(1.1)
    assert ms.messenger.remind().reminded == [(message_id, "ann", 1)]
    assert [e[0] for e in ms.outbox()] == [message_id]


# -- replies and threads ----------------------------------------------------------------------


def test_replies_name_their_parent_and_a_thread_lists_them_in_order(ms: Messaging) -> None:
    root = ms.messenger.send("bob", "which schema version?", "QUESTION", "ann")
    other = ms.messenger.send("cy", "unrelated", sender="ann")
    first = ms.messenger.send("ann", "v3", "ANSWER", "bob", reply_to=root)
    second = ms.messenger.send("bob", "why not v4?", "CHALLENGE", "ann", reply_to=first)
    ms.messenger.broadcast("v4 is not migrated yet", "ANSWER", "bob", reply_to=second)

    for member in (root, first, second):
        thread = ms.messenger.thread(member)
        assert [m.id for m in thread][:3] == [root, first, second]
        assert len(thread) == 4
    thread = ms.messenger.thread(root)
    assert [m.reply_to for m in thread] == [None, root, first, second]
    assert [m.thread for m in thread] == [None, root, root, root]
    assert [m.id for m in ms.messenger.thread(other)] == [other]
    entry = next(e for e in ms.messenger.inbox("ann") if e.message_id == first)
    assert entry.reply_to == root
    assert f"[ANSWER #{first[:8]} re #{root[:8]}]: v3" in entry.line()


def test_a_reply_to_an_unknown_message_is_refused_and_nothing_is_written(ms: Messaging) -> None:
    before = snapshot(ms.client, ms.keys.prefix)
    with pytest.raises(MessageNotFound):
        ms.messenger.send("bob", "re: ?", reply_to="feedfacefeedface")
    with pytest.raises(ValidationError):
        ms.messenger.send("bob", "re: ?", reply_to="not an id")
    assert snapshot(ms.client, ms.keys.prefix) == before
    with pytest.raises(MessageNotFound):
        ms.messenger.thread("feedfacefeedface")


# -- sender exclusion -------------------------------------------------------------------------


def test_a_broadcast_skips_its_sender_unless_asked(ms: Messaging) -> None:
    skipped = ms.messenger.get(ms.messenger.broadcast("hi all", sender="ann"))
    assert [d.agent_id for d in skipped.deliveries] == ["bob", "cy"]
    assert ms.messenger.inbox("ann") == []
    included = ms.messenger.broadcast("hi all and me", sender="ann", include_self=True)
    assert [d.agent_id for d in ms.messenger.get(included).deliveries] == ["ann", "bob", "cy"]
    named = ms.messenger.broadcast("note to self", sender="ann", recipients=["ann"])
    assert [d.agent_id for d in ms.messenger.get(named).deliveries] == ["ann"]  # named: sent


def test_a_broadcast_with_only_its_sender_active_has_nobody_to_tell(
    redis_client: redis.Redis, swarm: str
) -> None:
    m = Messaging(redis_client, swarm)
    try:
        m.registry.register("solo", "%1")
        with pytest.raises(AgentNotFoundError, match="no active agent"):
            m.messenger.broadcast("anyone?", sender="solo")
        assert m.messenger.broadcast("me then", sender="solo", include_self=True)
    finally:
        m.close()


# -- rate-limit window and reset --------------------------------------------------------------


def test_the_window_is_a_setting_and_a_reset_frees_the_sender(
    redis_client: redis.Redis, swarm: str
) -> None:
    m = Messaging(redis_client, swarm, rate_limit_per_minute=2, rate_limit_window_seconds=5)
    try:
        m.registry.register("bob", "%2")
        m.messenger.send("bob", "1", sender="chatty")
        m.messenger.send("bob", "2", sender="chatty")
        with pytest.raises(RateLimitExceeded, match="2 messages per 5s") as info:
            m.messenger.send("bob", "3", sender="chatty")
        assert 0 < info.value.retry_after <= 5
        m.advance_clock(5.1)
        m.messenger.send("bob", "3", sender="chatty")  # the window is 5 s
        m.messenger.send("bob", "4", sender="chatty")
        assert m.messenger.rate_usage("chatty").used == 2
        assert m.messenger.reset_rate_limit("chatty") == 2
        assert m.messenger.rate_usage("chatty").used == 0
        m.messenger.send("bob", "5", sender="chatty")
        assert m.messenger.reset_rate_limit("nobody-yet") == 0
    finally:
        m.close()


# -- the asyncio client -----------------------------------------------------------------------


def test_async_acknowledge_thread_remind_and_reset(
    ms: Messaging, async_client_factory: Callable[[], redis.asyncio.Redis]
) -> None:
    async def scenario() -> None:
        client = async_client_factory()
        am = AsyncMessenger(client, ms.rq, ms.swarm, settings=ms.settings)
        try:
            root = await am.send("bob", "ping", sender="ann", requires_ack=True)
            reply = await am.send("ann", "pong", "ACK", "bob", reply_to=root)
            assert [m.id for m in await am.thread(reply)] == [root, reply]
            assert (await am.acknowledge(root, "bob")).already is False
            assert (await am.acknowledge(root, "bob")).already is True
            assert (await am.remind()).reminded == []
            assert await am.reset_rate_limit("ann") == 1
            skipped = await am.broadcast("all but me", sender="cy")
            assert [d.agent_id for d in (await am.get(skipped)).deliveries] == ["ann", "bob"]
        finally:
            await client.aclose()

    asyncio.run(scenario())
