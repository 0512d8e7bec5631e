"""Broadcast and send: record a message with every recipient's outcome, and hand it to workers.

``broadcast()`` never calls tmux. In one Lua script it resolves the recipients, applies the
sender's rate limit, records the message with each recipient ``pending``, appends it to each
recipient's inbox and puts it in each host's outbox; then it enqueues one delivery job per host
(:mod:`distributor.messaging.dispatch`) and returns the message id. A worker on each host types the
message into the panes and records every recipient's outcome (``delivered`` or ``failed`` with
a reason), shown by :meth:`Messenger.get`.

The outbox is the durable trace of every delivery not yet final: a message leaves a host's
outbox only when every recipient there is final. Each worker's sweep (``workers/sweep.py``)
looks at the entries that are due and, through :meth:`Messenger.redispatch`, replaces a job that
is gone (an enqueue lost with the connection, a job popped by a worker that died) or abandoned
(started by a worker whose lease ran out), and dispatches the retries of transient failures::

    t0   broadcast: recorded, outbox score t0+5s, job J enqueued
    t1   worker A takes J, leases the delivery (renewed while it runs), is SIGKILLed
    t1+10s  the lease has run out (Redis time); worker B's sweep sees J started, no lease:
            dead; msg_redispatch names J-1, B enqueues it, J-1 checks the panes and finishes

The logic is written once as generators (:class:`MessageOps`); :class:`Messenger` drives them
with a blocking client and :class:`AsyncMessenger` with ``redis.asyncio``, running the blocking
RQ enqueue in a thread so the event loop is never blocked.
"""

from __future__ import annotations

import asyncio
import functools
import json
import re
import secrets
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar, Literal, cast, get_args

import redis

from distributor.errors import (
    AgentNotFoundError,
    MessageNotFound,
    RateLimitExceeded,
    ValidationError,
)
from distributor.log import get_logger
from distributor.messaging.acks import Acknowledged, Reminded, acknowledge, remind
from distributor.messaging.broker import broker_client
from distributor.messaging.dispatch import Dispatcher, enqueue_errors
from distributor.messaging.job_ids import delivery_job_id
from distributor.messaging.names import check_host, validated_agent_id
from distributor.messaging.ratelimit import RateUsage, usage
from distributor.messaging.sanitize import clean_content, strip_controls
from distributor.messaging.types import MessageType, MessageTypeLike, parse_message_type
from distributor.records import Record
from distributor.settings import Settings
from distributor.store import counters
from distributor.store.calls import Batch, Command, Op, ScriptCall, text
from distributor.store.client import AsyncRedis, SwarmClient, SyncClient, SyncRedis
from distributor.store.codec import decode_map, redis_now_ms, script_reply
from distributor.store.connect import async_redis_from_url, redis_from_url
from distributor.store.executor import AsyncExecutor, SyncExecutor
from distributor.store.keys import NAMESPACE, SwarmKeys
from distributor.tasks.ids import check_agent_id, validated
from distributor.tasks.models import ms_to_datetime

log = get_logger(__name__)

__all__ = [
    "DEFAULT_SENDER",
    "DISPATCH_GRACE_MS",
    "FINAL_STATUSES",
    "MAX_RAW_CONTENT",
    "MAX_RECIPIENTS",
    "MESSAGE_ID_RE",
    "QUEUED_RECHECK_MS",
    "Acknowledged",
    "AsyncMessenger",
    "Delivery",
    "DeliveryStatus",
    "InboxEntry",
    "Message",
    "MessageOps",
    "MessageType",
    "MessageTypeLike",
    "Messenger",
    "Outgoing",
    "PendingDelivery",
    "Posted",
    "Redispatched",
    "Reminded",
    "Unread",
    "check_message_id",
    "format_line",
    "message_tag",
    "parse_message_type",
    "prepare",
    "window_ms",
]

MESSAGE_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
MAX_RAW_CONTENT = 8 * 1024 * 1024
MAX_RECIPIENTS = 10_000
DEFAULT_SENDER = "swarmqueue"
# How long after a message is recorded (or its job replaced) the sweep first checks that a job
# exists for it: the enqueue follows the recording at once, so this only catches a lost one.
DISPATCH_GRACE_MS = 5_000
QUEUED_RECHECK_MS = 10_000  # a job waiting in its queue is looked at again this much later
_THREAD_CLEAN_ABOVE = 64 * 1024  # async: sanitize bigger contents off the event loop


class DeliveryStatus(StrEnum):
    """A recipient's outcome: ``typing`` while a job types into its pane (see ``Delivery``);
    ``acknowledged`` once the recipient acknowledged it, ``unacknowledged`` when a message to
    acknowledge was re-delivered ``ack_redeliveries`` times without it (both final)."""

    PENDING = "pending"
    TYPING = "typing"
    DELIVERED = "delivered"
    FAILED = "failed"
    ACKNOWLEDGED = "acknowledged"
    UNACKNOWLEDGED = "unacknowledged"


FINAL_STATUSES = frozenset(
    {DeliveryStatus.DELIVERED, DeliveryStatus.ACKNOWLEDGED, DeliveryStatus.UNACKNOWLEDGED}
)


FailureReason = Literal[
    "pane_not_found",
    "server_not_found",
    "tmux_error",
    "timeout",
    "shell_prompt",
    "not_an_agent",
    "foreground_changed",
    "unknown",
]
DeliveredAs = Literal["paste", "comment"]


class Delivery(Record):
    """One recipient's outcome.

    ``delivered`` says ``as`` what: ``paste`` (the message and Enter) or ``comment`` (a shell
    prompt got one inert comment line; see ``workers/programs.py``). ``failed`` carries a
    ``reason`` and ``detail``: ``pane_not_found``, ``server_not_found`` (no tmux server or
    binary), ``tmux_error``, ``timeout``, ``shell_prompt`` and ``not_an_agent`` (the pane's
    foreground program gets no keystrokes; the inbox keeps the message), ``foreground_changed``
    (it changed while the message was being typed elsewhere; retried), ``unknown`` (a job
    stopped while typing and the pane cannot tell whether the message arrived; the inbox keeps
    it). ``final`` is False while a transient failure will be retried. ``attempts`` counts
    recorded attempts.

    ``typing`` (with ``attempt`` and ``typing_at``) is recorded right before a job types into
    the pane. A job that finds it (the one before stopped between typing and recording) checks
    the pane first: ``verified`` means the pane showed the message had arrived, ``retyped``
    that it showed it had not, so it was typed now (``workers/delivery.py``).

    ``requires_ack``: the sender asked for an acknowledgement. Until it comes, ``remind_at`` says
    when the message is typed again (``reminders`` counts the re-deliveries so far); after
    ``ack_redeliveries`` of them (the setting when it was sent) and one more wait, the outcome
    becomes ``unacknowledged`` (at ``unacked_at``).
    ``acknowledged`` carries ``acked_at``; ``late`` when it came after the give-up.
    """

    _dumped_as: ClassVar[dict[str, str]] = {"delivered_as": "as"}  # as stored and shown

    agent_id: str
    host: str
    pane: str
    socket: str | None = None
    status: DeliveryStatus
    delivered_as: DeliveredAs | None = None
    reason: FailureReason | None = None
    detail: str | None = None
    attempts: int = 0
    final: bool = False
    attempt: str | None = None
    typing_at: datetime | None = None
    verified: bool = False
    retyped: bool = False
    first_attempt_at: datetime | None = None
    last_attempt_at: datetime | None = None
    delivered_at: datetime | None = None
    requires_ack: bool = False
    ack_redeliveries: int = 0
    reminders: int = 0
    remind_at: datetime | None = None
    acked_at: datetime | None = None
    late: bool = False
    unacked_at: datetime | None = None

    @property
    def done(self) -> bool:
        """Nothing more will be typed for this recipient (until a re-delivery is due)."""
        return self.status in FINAL_STATUSES or (
            self.status is DeliveryStatus.FAILED and self.final
        )


class Message(Record):
    """A recorded message and every recipient's outcome."""

    id: str
    sender: str
    type: MessageType
    content: str
    at: datetime
    hosts: list[str]
    deliveries: list[Delivery]
    requires_ack: bool = False
    reply_to: str | None = None
    thread: str | None = None  # the thread's root message id (None: not part of a thread)

    def line(self) -> str:
        """The message as typed into a pane (:func:`format_line`)."""
        return format_line(
            self.sender, self.type, self.at, self.content, self.id,
            reply_to=self.reply_to, requires_ack=self.requires_ack,
        )  # fmt: skip

    def counts(self) -> dict[str, int]:
        """Recipients per status."""
        out = {s.value: 0 for s in DeliveryStatus}
        for d in self.deliveries:
            out[d.status.value] += 1
        return out


class InboxEntry(Record):
    """A message as kept in a recipient's inbox stream."""

    message_id: str
    sender: str
    type: MessageType
    content: str
    at: datetime
    reply_to: str | None = None
    requires_ack: bool = False
    entry_id: str | None = None  # its place in the inbox stream (what a read mark points at)

    def line(self) -> str:
        return format_line(
            self.sender, self.type, self.at, self.content, self.message_id,
            reply_to=self.reply_to, requires_ack=self.requires_ack,
        )  # fmt: skip


class Unread(Record):
    """An agent's unread messages (the first ones, oldest first) and how many there are."""

    entries: list[InboxEntry]
    total: int


_STREAM_ID = re.compile(r"\d{1,20}-\d{1,20}")


def _stream_key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def _after(entry_id: str) -> str:
    """The XRANGE start just after ``entry_id`` (exclusive ranges need Redis 6.2)."""
    ms, seq = _stream_key(entry_id)
    return f"{ms}-{seq + 1}"


def _inbox_entry(entry_id: bytes | str, fields: Any) -> InboxEntry:
    f = decode_map(_pairs(fields))
    at = ms_to_datetime(f["at"])
    assert at is not None
    return InboxEntry(
        message_id=f["id"],
        sender=f["sender"],
        type=MessageType(f["type"]),
        content=f["content"],
        at=at,
        reply_to=f.get("reply_to") or None,
        requires_ack=f.get("ack") == "1",
        entry_id=text(entry_id),
    )


class Outgoing(Record):
    """A message to send, validated and made inert; built by :func:`prepare`."""

    content: str
    type: MessageType
    sender: str
    recipients: list[str] | None
    reply_to: str | None = None
    requires_ack: bool = False
    include_self: bool = False


RedispatchAction = Literal["replaced", "queued", "running", "finished", "gone", "moved", "not_due"]
_REDISPATCH_ACTIONS: frozenset[str] = frozenset(get_args(RedispatchAction))


class Redispatched(Record):
    """What :meth:`Messenger.redispatch` found for one message's delivery on one host.

    ``action``: ``replaced`` (its job was gone or abandoned; ``job_id`` is the new one, enqueued),
    ``queued`` (its job waits in the host's queue), ``running`` (a worker holds its lease:
    ``holder``), ``finished`` (every recipient on the host is final), ``gone`` (the message
    expired), ``moved`` (someone else replaced the job meanwhile), ``not_due`` (rescheduled
    meanwhile). ``seen`` is what the old job looked like: its RQ status, ``missing``, or
    ``popped`` (taken from the queue by a worker that never started it).
    """

    message_id: str
    host: str
    action: RedispatchAction
    job_id: str | None = None
    holder: str | None = None
    seen: str | None = None
    due: datetime | None = None


class PendingDelivery(Record):
    """A message whose recipients on ``host`` are not all final (its outbox entry)."""

    message_id: str
    host: str
    sender: str
    type: MessageType
    at: datetime
    due: datetime
    holder: str | None
    job_id: str
    counts: dict[str, int]


class Posted(Record):
    """What recording a message did: its id, Redis time, recipients and their hosts."""

    message_id: str
    at: datetime
    recipients: list[str]
    hosts: list[str]
    thread: str | None = None


def message_tag(message_id: str) -> str:
    """The short id a pane shows with the message, ``#`` and its first 8 characters."""
    return "#" + message_id[:8]


def format_line(
    sender: str,
    msg_type: str,
    at: datetime,
    content: str,
    message_id: str | None = None,
    *,
    reply_to: str | None = None,
    requires_ack: bool = False,
) -> str:
    """The text typed into a pane: ``[SENDER][UTC time][TYPE #tag]: content``.

    The tag (:func:`message_tag`) lets a reader tell a message seen twice from two messages, and
    lets a delivery job find the message in a pane's history (``workers/delivery.py``). A reply
    names its parent's tag (``[ANSWER #tag re #parent]``); a message to acknowledge ends with
    the command that does it (`` (ack: swarmqueue ack <id>)``). Ids are letters, digits, ``_``
    and ``-`` only (:func:`check_message_id`), so neither can carry anything a terminal runs.
    """
    safe_sender = strip_controls(sender)
    kind = f"{msg_type} {message_tag(message_id)}" if message_id else msg_type
    if reply_to:
        kind += f" re {message_tag(check_message_id(reply_to))}"
    line = f"[{safe_sender}][{at:%Y-%m-%d %H:%M:%S} UTC][{kind}]: {content}"
    if requires_ack and message_id:
        line += f" (ack: swarmqueue ack {check_message_id(message_id)})"
    return line


def prepare(
    content: str,
    msg_type: MessageTypeLike,
    sender: str,
    recipients: list[str] | None,
    settings: Settings,
    *,
    reply_to: str | None = None,
    requires_ack: bool = False,
    include_self: bool = False,
) -> Outgoing:
    """Validate a message at the boundary and sanitize its content; ``ValidationError`` if bad."""
    if not isinstance(content, str):
        raise ValidationError("content must be a string")
    if len(content) > MAX_RAW_CONTENT:
        raise ValidationError(f"content is larger than {MAX_RAW_CONTENT} characters")
    validated(check_agent_id, sender, "sender")
    if recipients is not None:
        recipients = list(dict.fromkeys(recipients))  # keep order, drop repeats
        if not 1 <= len(recipients) <= MAX_RECIPIENTS:
            raise ValidationError(f"recipients: between 1 and {MAX_RECIPIENTS} agents")
        for i, recipient in enumerate(recipients):
            validated(check_agent_id, recipient, f"recipients.{i}")
    cleaned = clean_content(
        content, settings.message_max_chars, keep_newlines=settings.message_keep_newlines
    )
    if not cleaned:
        raise ValidationError("content is empty once control characters are removed")
    kind = parse_message_type(msg_type)
    if reply_to is not None:
        check_message_id(reply_to)
    return Outgoing(
        content=cleaned,
        type=kind,
        sender=sender,
        recipients=recipients,
        reply_to=reply_to,
        requires_ack=bool(requires_ack),
        include_self=bool(include_self),
    )


def check_message_id(message_id: str) -> str:
    if not isinstance(message_id, str) or not MESSAGE_ID_RE.fullmatch(message_id):
        raise ValidationError("invalid message id: must be 1-64 letters, digits, '_' or '-'")
    return message_id



def _delivery(agent_id: str, raw: Any) -> Delivery:
    d = json.loads(text(raw))
    return Delivery(
        agent_id=agent_id,
        host=d.get("host") or "",
        pane=d.get("pane") or "",
        socket=d.get("socket") or None,
        status=DeliveryStatus(d["status"]),
        delivered_as=d.get("as") or None,
        reason=d.get("reason") or None,
        detail=d.get("detail") or None,
        attempts=int(d.get("attempts") or 0),
        final=bool(d.get("final")),
        attempt=d.get("attempt") or None,
        typing_at=ms_to_datetime(d.get("typing_at")),
        verified=bool(d.get("verified")),
        retyped=bool(d.get("retyped")),
        first_attempt_at=ms_to_datetime(d.get("first_attempt_at")),
        last_attempt_at=ms_to_datetime(d.get("last_attempt_at")),
        delivered_at=ms_to_datetime(d.get("delivered_at")),
        requires_ack=bool(d.get("ack")),
        ack_redeliveries=int(d.get("ack_max") or 0),
        reminders=int(d.get("reminders") or 0),
        remind_at=ms_to_datetime(d.get("remind_at")),
        acked_at=ms_to_datetime(d.get("acked_at")),
        late=bool(d.get("late")),
        unacked_at=ms_to_datetime(d.get("unacked_at")),
    )


class MessageOps:
    """Messaging operations of one swarm as generators of Redis calls."""

    def __init__(self, keys: SwarmKeys, settings: Settings) -> None:
        self.keys = keys
        self.settings = settings

    def post(self, outgoing: Outgoing, message_id: str | None = None) -> Op[Posted]:
        """Record ``outgoing`` (see ``lua/msg_send.lua``); raises the refusals it reports.

        Sending the same call again (same ``message_id``) changes nothing and returns the same
        reply, so a reply lost on the wire and re-sent by the client's retry records one message.
        """
        k, s = self.keys, self.settings
        message_id = check_message_id(message_id) if message_id else secrets.token_hex(8)
        recipients = "" if outgoing.recipients is None else json.dumps(outgoing.recipients)
        reply = yield ScriptCall(
            "msg_send",
            [
                k.agents,
                k.message(message_id),
                k.deliveries(message_id),
                k.rate(outgoing.sender),
                k.hosts,
                k.clock,
            ],
            [
                k.prefix,
                message_id,
                outgoing.sender,
                outgoing.type.value,
                outgoing.content,
                recipients,
                round(s.agent_stale_seconds * 1000),
                s.rate_limit_per_minute,
                window_ms(s),
                s.inbox_cap,
                s.message_ttl_seconds,
                DISPATCH_GRACE_MS,
                outgoing.reply_to or "",
                "1" if outgoing.requires_ack else "0",
                s.ack_redeliveries,
                round(s.ack_first_delay_seconds * 1000),
                "1" if outgoing.include_self else "0",
            ],
            request_id=message_id,  # re-sent through outages: one message (see above)
        )
        status, body = script_reply(reply)
        if status == "not_found":
            raise AgentNotFoundError(list(body["ids"]))
        if status == "no_agents":
            raise AgentNotFoundError([], "no active agent to broadcast to")
        if status == "rate_limited":
            raise RateLimitExceeded(
                outgoing.sender,
                s.rate_limit_per_minute,
                int(body["wait_ms"]) / 1000,
                s.rate_limit_window_seconds,
            )
        if status == "id_taken":
            raise ValidationError(f"message id {message_id!r} belongs to another message")
        if status == "no_parent":
            assert outgoing.reply_to is not None
            raise MessageNotFound(outgoing.reply_to)
        at = ms_to_datetime(body["at"])
        assert at is not None
        return Posted(
            message_id=message_id,
            at=at,
            recipients=[str(r) for r in _list(body["recipients"])],
            hosts=[str(h) for h in _list(body["hosts"])],
            thread=str(body.get("thread") or "") or None,
        )

    def get(self, message_id: str) -> Op[Message]:
        """The message with every recipient's outcome; ``MessageNotFound`` if absent."""
        check_message_id(message_id)
        raw, deliveries = yield Batch(
            (
                Command(("HGETALL", self.keys.message(message_id))),
                Command(("HGETALL", self.keys.deliveries(message_id))),
            )
        )
        if not raw:
            raise MessageNotFound(message_id)
        h = decode_map(raw)
        at = ms_to_datetime(h["at"])
        assert at is not None
        return _message(h, deliveries)

    def record(
        self, message_id: str, outcomes: dict[str, dict[str, Any]], attempt: str = ""
    ) -> Op[int]:
        """Store outcomes of one attempt (``lua/msg_outcome.lua``; recorded once per
        ``attempt``, so a re-sent call changes nothing); returns how many changed."""
        if not outcomes:
            return 0
        k = self.keys
        reply = yield ScriptCall(
            "msg_outcome",
            [k.deliveries(message_id), k.clock, k.acks],
            [json.dumps(outcomes), attempt, message_id],
        )
        _, body = script_reply(reply)
        return int(body["recorded"])

    # -- the delivery job's lease (workers/delivery.py) ------------------------------------

    @property
    def lease_ms(self) -> int:
        return round(self.settings.delivery_lease_seconds * 1000)

    def begin(self, message_id: str, host: str, holder: str) -> Op[tuple[str, str]]:
        """Take the delivery's lease (``lua/msg_begin.lua``): ``(status, holder)``, status one
        of ``ok``, ``busy`` (``holder`` has it), ``done``, ``gone``."""
        k = self.keys
        reply = yield ScriptCall(
            "msg_begin",
            [k.message(message_id), k.delivering(message_id, host), k.outbox(host), k.clock],
            [message_id, holder, self.lease_ms],
        )
        status, body = script_reply(reply)
        return status, str(body.get("holder") or "")

    def typing(
        self, message_id: str, host: str, holder: str, attempt: str, agent_ids: list[str]
    ) -> Op[bool]:
        """Mark ``agent_ids`` ``typing`` before their panes are typed into
        (``lua/msg_typing.lua``); False, with nothing changed, if the lease was lost."""
        k = self.keys
        reply = yield ScriptCall(
            "msg_typing",
            [k.deliveries(message_id), k.delivering(message_id, host), k.clock],
            [holder, self.lease_ms, attempt, json.dumps(agent_ids)],
        )
        status, _ = script_reply(reply)
        return status == "ok"

    def renew(self, message_id: str, host: str, holder: str) -> Op[bool]:
        """Renew the lease (``lua/msg_lease.lua``); False if it ran out or someone else has it."""
        reply = yield ScriptCall(
            "msg_lease", [self.keys.delivering(message_id, host)], [holder, self.lease_ms]
        )
        status, _ = script_reply(reply)
        return status == "ok"

    def finish(self, message_id: str, host: str, holder: str, retry_in: float | None) -> Op[bool]:
        """Release the lease and drop the message from the outbox, or (``retry_in`` seconds)
        have the sweep dispatch it again then; False if another job holds the lease by now."""
        k = self.keys
        retry_ms = "" if retry_in is None else str(round(retry_in * 1000))
        reply = yield ScriptCall(
            "msg_finish",
            [k.delivering(message_id, host), k.outbox(host), k.clock],
            [message_id, holder, retry_ms],
        )
        status, _ = script_reply(reply)
        return status == "ok"

    # -- the outbox: deliveries not yet final (workers/sweep.py, redispatch) ---------------

    def outbox(
        self, host: str | None = None, *, due_only: bool = False, limit: int = 1000
    ) -> Op[list[tuple[str, str, int]]]:
        """``(message id, host, due ms)`` of deliveries not yet final, on ``host`` or on every
        host the swarm sent to; ``due_only``: those whose time to be looked at has come."""
        k = self.keys
        time_reply, clock, hosts = yield Batch(
            (Command(("TIME",)), Command(("GET", k.clock)), Command(("SMEMBERS", k.hosts)))
        )
        now_ms = redis_now_ms(time_reply, clock)
        names = [host] if host else sorted(text(h) for h in hosts)
        if not names:
            return []
        upper = now_ms if due_only else "+inf"
        replies = yield Batch(
            tuple(
                Command(("ZRANGEBYSCORE", k.outbox(h), "-inf", upper, "WITHSCORES", "LIMIT", 0,
                         limit))
                for h in names
            )
        )  # fmt: skip
        out = []
        for h, flat in zip(names, replies, strict=True):
            out += [(text(m), h, int(float(score))) for m, score in _scored(flat)]
        return out

    def dispatch_view(self, message_id: str, host: str) -> Op[tuple[str, str | None]]:
        """The delivery's current job as ``msg:<id>`` names it (``''``: the first job) and the
        holder of its lease (None: no job runs it)."""
        k = self.keys
        job, holder = yield Batch(
            (
                Command(("HGET", k.message(message_id), f"job:{host}")),
                Command(("GET", k.delivering(message_id, host))),
            )
        )
        return (text(job) if job else ""), (text(holder) if holder else None)

    def hosts_of(self, message_id: str) -> Op[list[str]]:
        """The hosts ``message_id`` was sent to; ``MessageNotFound`` if it is not recorded."""
        check_message_id(message_id)
        hosts = yield Command(("HGET", self.keys.message(message_id), "hosts"))
        if hosts is None:
            raise MessageNotFound(message_id)
        return [str(h) for h in json.loads(text(hosts))]

    def redispatch_step(
        self,
        message_id: str,
        host: str,
        *,
        seen_job: str,
        verdict: Literal["queued", "dead"],
        first_job: str,
        due_only: bool,
    ) -> Op[tuple[str, dict[str, Any]]]:
        """Act on what the caller saw of the delivery's job (``lua/msg_redispatch.lua``)."""
        k = self.keys
        reply = yield ScriptCall(
            "msg_redispatch",
            [k.message(message_id), k.delivering(message_id, host), k.outbox(host), k.clock],
            [
                message_id,
                host,
                seen_job,
                verdict,
                first_job,
                QUEUED_RECHECK_MS,
                DISPATCH_GRACE_MS,
                "1" if due_only else "0",
            ],
        )
        return script_reply(reply)

    def inbox(self, agent_id: str, count: int) -> Op[list[InboxEntry]]:
        """The agent's latest ``count`` messages, oldest first."""
        if not 1 <= count <= 10_000:
            raise ValidationError("count must be between 1 and 10000")
        validated_agent_id(agent_id)
        entries = yield Command(("XREVRANGE", self.keys.inbox(agent_id), "+", "-", "COUNT", count))
        return [_inbox_entry(i, fields) for i, fields in reversed(entries)]

    def unread(self, agent_id: str, count: int) -> Op[Unread]:
        """The agent's messages after its read mark (at most ``count``, oldest first) and how
        many there are in all; reading changes nothing (see :meth:`mark_read`)."""
        if not 1 <= count <= 10_000:
            raise ValidationError("count must be between 1 and 10000")
        validated_agent_id(agent_id)
        mark = text((yield Command(("HGET", self.keys.inbox_read, agent_id))) or "0-0")
        inbox = self.keys.inbox(agent_id)
        entries = yield Command(("XRANGE", inbox, _after(mark), "+", "COUNT", count))
        total = len(entries)
        if total == count:  # more may follow: count them (bounded by the inbox's length cap)
            total += len((yield Command(("XRANGE", inbox, _after(text(entries[-1][0])), "+"))))
        return Unread(entries=[_inbox_entry(i, f) for i, f in entries], total=total)

    def mark_read(self, agent_id: str, entry_id: str) -> Op[None]:
        """Move the agent's read mark to ``entry_id`` (never back: a slower reader that read
        less does not bring read messages back)."""
        validated_agent_id(agent_id)
        if not _STREAM_ID.fullmatch(entry_id):
            raise ValidationError(f"not an inbox entry id: {entry_id[:40]!r}")
        mark = text((yield Command(("HGET", self.keys.inbox_read, agent_id))) or "0-0")
        if _stream_key(entry_id) > _stream_key(mark):
            yield Command(("HSET", self.keys.inbox_read, agent_id, entry_id))

    # -- acknowledgements, threads, rate limits (issue 14) -----------------------------------

    def acknowledge(self, message_id: str, agent_id: str) -> Op[Acknowledged]:
        """Record that ``agent_id`` acknowledged ``message_id`` (``lua/msg_ack.lua``)."""
        return acknowledge(self.keys, check_message_id(message_id), agent_id)

    def remind(self, limit: int = 1000) -> Op[Reminded]:
        """Re-deliver or give up the overdue acknowledgements (``lua/msg_remind.lua``)."""
        return remind(self.keys, limit)

    def thread(self, message_id: str) -> Op[list[Message]]:
        """The thread ``message_id`` belongs to: its root, then the replies in the order they
        were sent (messages that expired are left out); ``MessageNotFound`` if it is absent."""
        check_message_id(message_id)
        k = self.keys
        root = yield Command(("HGET", k.message(message_id), "thread"))
        if root is None and not (yield Command(("EXISTS", k.message(message_id)))):
            raise MessageNotFound(message_id)
        root_id = text(root) if root else message_id
        members = yield Command(("ZRANGE", k.thread(root_id), 0, -1))
        ids = [text(m) for m in members] or [root_id]
        replies = yield Batch(
            tuple(
                Command(("HGETALL", key))
                for i in ids
                for key in (k.message(i), k.deliveries(i))
            )
        )
        out = []
        for raw, deliveries in zip(replies[::2], replies[1::2], strict=True):
            if raw:
                out.append(_message(decode_map(raw), deliveries))
        return out

    def reset_rate_limit(self, sender: str) -> Op[int]:
        """Forget the messages counted against ``sender``'s window; how many there were."""
        validated_agent_id(sender)
        key = self.keys.rate(sender)
        used, _ = yield Batch((Command(("ZCARD", key)), Command(("DEL", key))))
        return int(used)


def window_ms(settings: Settings) -> int:
    """The rate-limit window in ms (``rate_limit_window_seconds``)."""
    return round(settings.rate_limit_window_seconds * 1000)


def _list(value: Any) -> list[Any]:
    """A JSON list from a script (Lua's cjson encodes an empty table as ``{}``)."""
    return list(value) if isinstance(value, list) else []


def _message(h: dict[str, str], deliveries: Any) -> Message:
    """A :class:`Message` from its ``msg:<id>`` hash (decoded) and its outcomes."""
    at = ms_to_datetime(h["at"])
    assert at is not None
    return Message(
        id=h["id"],
        sender=h["sender"],
        type=MessageType(h["type"]),
        content=h["content"],
        at=at,
        hosts=json.loads(h.get("hosts") or "[]"),
        deliveries=sorted(
            (_delivery(text(a), d) for a, d in (deliveries or {}).items()),
            key=lambda d: d.agent_id,
        ),
        requires_ack=h.get("ack") == "1",
        reply_to=h.get("reply_to") or None,
        thread=h.get("thread") or None,
    )


def _pairs(fields: Any) -> dict[Any, Any]:
    """A stream entry's fields (a flat list or a dict, depending on the client) as a dict."""
    if isinstance(fields, dict):
        return fields
    return dict(zip(fields[::2], fields[1::2], strict=True))


def _scored(reply: Any) -> list[tuple[Any, Any]]:
    """``(member, score)`` pairs of a ``WITHSCORES`` reply, flat or already paired."""
    if reply and isinstance(reply[0], list | tuple):
        return [(m, sc) for m, sc in reply]
    return list(zip(reply[::2], reply[1::2], strict=True))


def _enqueue_failed(
    store: SyncRedis | None, keys: SwarmKeys, message_id: str, exc: BaseException
) -> None:
    """The message is recorded but its job could not be enqueued (the broker is down or
    refuses, or there is none): logged, counted (``enqueue_failed``, see
    :mod:`distributor.store.counters`; ``store`` None: the caller counts), and a worker's sweep
    dispatches it once the broker answers."""
    reason = f"{type(exc).__name__}: {exc}"
    log.warning(
        "delivery enqueue failed; a worker's sweep dispatches it",
        swarm=keys.swarm,
        message_id=message_id,
        reason=type(exc).__name__,
        error=str(exc),
        within_seconds=DISPATCH_GRACE_MS / 1000,
    )
    if store is not None:
        counters.count(store, keys, "enqueue_failed", reason)


class Messenger(SyncClient):
    """Send messages to the swarm's agents (blocking client).

    Callers catch what they can act on::

        try:
            message_id = messenger.broadcast("schema is ready", MessageType.TASK_AVAILABLE)
        except RateLimitExceeded as exc:   # wait exc.retry_after seconds
            ...
        except AgentNotFoundError:         # nobody to tell (or a named agent is unknown)
            ...

    Per-recipient outcomes arrive later; read them with :meth:`get`.

    ``broker`` is the Redis of the delivery queues (see :mod:`distributor.messaging.broker`);
    by default the store itself when it is one Redis. On a cluster store without a broker,
    messages are recorded and each enqueue is counted as failed.
    """

    def __init__(
        self,
        redis_client: SyncRedis,
        swarm: str | None = None,
        *,
        settings: Settings | None = None,
        namespace: str = NAMESPACE,
        broker: redis.Redis | None = None,
    ) -> None:
        if broker is None and isinstance(redis_client, redis.Redis):
            broker = redis_client
        self.broker = broker
        super().__init__(redis_client, swarm, settings=settings, namespace=namespace)

    @classmethod
    def from_url(
        cls, url: str | None = None, swarm: str | None = None, *, settings: Settings | None = None
    ) -> Messenger:
        """Connect to the store at ``url`` (default: ``settings.redis_url``) and to the delivery
        broker (``settings.delivery_redis_url``; :class:`DeliveryBrokerRequired` when the store
        is a cluster and there is none)."""
        settings = settings or Settings()
        if url:
            settings = settings.model_copy(update={"redis_url": url})
        store = redis_from_url(settings.redis_url, settings.redis_retries)
        return cls(store, swarm, settings=settings, broker=broker_client(settings, store))

    def _setup(self) -> None:
        self.ops = MessageOps(self.keys, self.settings)
        self._executor = SyncExecutor(self.redis)
        self.dispatcher = Dispatcher(self.broker, self.settings)

    def broadcast(
        self,
        content: str,
        msg_type: MessageTypeLike = MessageType.INFO,
        sender: str = DEFAULT_SENDER,
        recipients: list[str] | None = None,
        message_id: str | None = None,
        *,
        reply_to: str | None = None,
        requires_ack: bool = False,
        include_self: bool = False,
    ) -> str:
        """Record a message for ``recipients`` (default: every active agent but the sender,
        unless ``include_self``) and enqueue its delivery; returns the message id at once.

        ``reply_to``: the parent message's id (``MessageNotFound`` if it is not recorded); the
        message joins its thread (:meth:`thread`). ``requires_ack``: each recipient is asked to
        :meth:`acknowledge` it; until then it is typed again ``ack_redeliveries`` times, the
        first ``ack_first_delay_seconds`` after its delivery and each later one twice as late,
        then its outcome becomes ``unacknowledged`` (the workers' sweep, :meth:`remind`).

        Raises ``ValidationError``, ``AgentNotFoundError`` (a named agent is unknown, or no
        agent is active) or ``RateLimitExceeded``; in each case nothing is recorded or enqueued.
        Once the message is recorded it is delivered: if Redis cannot be reached for the
        enqueue, that is logged and the id returned, and a worker's sweep dispatches it a few
        seconds later (sending it again would deliver it twice).

        Recording is re-sent through a Redis outage of up to ``retry_budget_seconds``; past it,
        ``RedisUnavailable`` carries the message id as ``request_id``: calling again with
        ``message_id=exc.request_id`` records the message once (a given id is one message).
        """
        outgoing = prepare(
            content, msg_type, sender, recipients, self.settings,
            reply_to=reply_to, requires_ack=requires_ack, include_self=include_self,
        )  # fmt: skip
        posted = self._executor.run(self.ops.post(outgoing, message_id))
        try:
            self.dispatcher.dispatch(self.keys.swarm, posted.message_id, posted.hosts)
        except enqueue_errors() as exc:
            _enqueue_failed(self.redis, self.keys, posted.message_id, exc)
        return posted.message_id

    def send(
        self,
        recipient: str,
        content: str,
        msg_type: MessageTypeLike = MessageType.INFO,
        sender: str = DEFAULT_SENDER,
        message_id: str | None = None,
        *,
        reply_to: str | None = None,
        requires_ack: bool = False,
    ) -> str:
        """:meth:`broadcast` to one agent (delivered even if it is stale)."""
        return self.broadcast(
            content, msg_type, sender, [recipient], message_id,
            reply_to=reply_to, requires_ack=requires_ack,
        )  # fmt: skip

    def get(self, message_id: str) -> Message:
        """The message and each recipient's outcome."""
        return self._executor.run(self.ops.get(message_id))

    def inbox(self, agent_id: str, count: int = 20) -> list[InboxEntry]:
        """The agent's latest messages, oldest first (kept even when its pane is gone)."""
        return self._executor.run(self.ops.inbox(agent_id, count))

    def unread(self, agent_id: str, count: int = 20) -> Unread:
        """The agent's messages after its read mark, oldest first, and how many in all."""
        return self._executor.run(self.ops.unread(agent_id, count))

    def mark_read(self, agent_id: str, entry_id: str) -> None:
        """Everything up to inbox entry ``entry_id`` counts as read by ``agent_id``."""
        self._executor.run(self.ops.mark_read(agent_id, entry_id))

    def acknowledge(self, message_id: str, agent_id: str) -> Acknowledged:
        """``agent_id`` acknowledges ``message_id``: its outcome becomes ``acknowledged`` (with
        Redis time) and it is not typed again. Idempotent: acknowledging again changes nothing
        and returns the first time with ``already=True``. Raises ``MessageNotFound`` (unknown
        or expired) and ``NotARecipient`` (not sent to ``agent_id``), changing nothing."""
        return self._executor.run(self.ops.acknowledge(message_id, agent_id))

    def thread(self, message_id: str) -> list[Message]:
        """The thread of ``message_id`` (any message of it): the root, then each reply in the
        order sent, with their outcomes; ``MessageNotFound`` if ``message_id`` is absent."""
        return self._executor.run(self.ops.thread(message_id))

    def remind(self, limit: int = 1000) -> Reminded:
        """Re-deliver the messages whose acknowledgement is overdue (their recipients become
        ``pending`` again and the message is due in the host's outbox, dispatched by
        :meth:`redispatch`), or give the recipients up as ``unacknowledged`` after
        ``ack_redeliveries``. The workers' sweep calls it; safe anywhere, any time."""
        return self._executor.run(self.ops.remind(limit))

    def reset_rate_limit(self, sender: str) -> int:
        """Empty ``sender``'s rate-limit window (an operator's decision); returns how many
        messages it held."""
        cleared = self._executor.run(self.ops.reset_rate_limit(sender))
        log.info("rate limit reset", swarm=self.keys.swarm, sender=sender, cleared=cleared)
        return cleared

    def rate_usage(self, sender: str) -> RateUsage:
        """How much of its window ``sender`` has used, without counting a message."""
        return self._executor.run(
            usage(self.keys, sender, self.settings.rate_limit_per_minute, window_ms(self.settings))
        )

    def redispatch(
        self,
        message_ids: list[str] | None = None,
        *,
        host: str | None = None,
        due_only: bool = False,
        limit: int = 1000,
    ) -> list[Redispatched]:
        """Make sure every delivery not yet final has a live job: replace the jobs that are gone
        (an enqueue lost with the connection, a job popped by a worker that died before starting
        it, a finished job whose transient failures are due for a retry) or abandoned (started by
        a worker whose lease ran out), and leave queued and running ones alone.

        ``message_ids`` (default: every message in the outboxes), on ``host`` (default: every
        host); ``due_only`` (the workers' sweep): only outbox entries whose time has come, at
        most ``limit`` per host. Safe to run anywhere, any time, by several processes at once:
        the replacement is one script that checks nobody replaced or leased it meanwhile.
        """
        if host is not None:
            validated(check_host, host)
        if message_ids is not None:
            targets = []
            for message_id in message_ids:
                hosts = self._executor.run(self.ops.hosts_of(message_id))
                targets += [(message_id, h) for h in hosts if host in (None, h)]
        else:
            targets = [
                (m, h)
                for m, h, _ in self._executor.run(
                    self.ops.outbox(host, due_only=due_only, limit=limit)
                )
            ]
        return [self._redispatch_one(m, h, due_only) for m, h in targets]

    def _redispatch_one(self, message_id: str, host: str, due_only: bool) -> Redispatched:
        first_job = delivery_job_id(message_id, host)
        seen_job, holder = self._executor.run(self.ops.dispatch_view(message_id, host))
        verdict: Literal["queued", "dead"] = "queued"
        seen = None
        if holder is None:  # a leased delivery is running: the script says so without the verdict
            verdict, seen = self.dispatcher.inspect(host, seen_job or first_job)
        status, body = self._executor.run(
            self.ops.redispatch_step(
                message_id,
                host,
                seen_job=seen_job,
                verdict=verdict,
                first_job=first_job,
                due_only=due_only,
            )
        )
        job_id = str(body.get("job_id") or "") or (first_job if "job_id" in body else None)
        if status not in _REDISPATCH_ACTIONS:  # a script/code mismatch
            raise RuntimeError(f"unexpected reply from msg_redispatch: {status}")
        result = Redispatched(
            message_id=message_id,
            host=host,
            action=cast(RedispatchAction, status),  # the script's statuses are the actions
            job_id=job_id,
            holder=body.get("holder"),
            seen=seen,
            due=ms_to_datetime(body.get("due")),
        )
        if status == "replaced":
            assert job_id is not None
            self.dispatcher.enqueue(self.keys.swarm, message_id, host, job_id)
            log.info(
                "delivery job replaced",
                swarm=self.keys.swarm,
                message_id=message_id,
                host=host,
                old_job=seen_job or first_job,
                seen=seen,
                job_id=job_id,
            )
        return result

    def pending(self, host: str | None = None) -> list[PendingDelivery]:
        """Deliveries not yet final (every host, or ``host``), with who runs each and when the
        sweep looks at it next; oldest message first."""
        if host is not None:
            validated(check_host, host)
        out = []
        for message_id, h, due in self._executor.run(self.ops.outbox(host)):
            seen_job, holder = self._executor.run(self.ops.dispatch_view(message_id, h))
            try:
                message = self.get(message_id)
            except MessageNotFound:
                continue  # expired; the next sweep drops its entry
            counts = {st.value: 0 for st in DeliveryStatus}
            for d in message.deliveries:
                if d.host == h:
                    counts[d.status.value] += 1
            due_at = ms_to_datetime(due)
            assert due_at is not None
            out.append(
                PendingDelivery(
                    message_id=message_id,
                    host=h,
                    sender=message.sender,
                    type=message.type,
                    at=message.at,
                    due=due_at,
                    holder=holder,
                    job_id=seen_job or delivery_job_id(message_id, h),
                    counts=counts,
                )
            )
        return sorted(out, key=lambda p: (p.at, p.message_id, p.host))


class AsyncMessenger(SwarmClient[AsyncRedis]):
    """:class:`Messenger` for asyncio code: Redis calls are awaited, and the blocking RQ enqueue
    (and sanitizing a large content) run in a worker thread, so the event loop never blocks.

    RQ needs a blocking client of the delivery broker; pass one as ``rq_redis`` (it is only used
    from that thread; ``None``: the store is a cluster without a broker, every enqueue fails
    and is counted). Failed enqueues are counted through ``counter_client``, a blocking client
    of the store (default: none, only logged).
    """

    def __init__(
        self,
        redis_client: AsyncRedis,
        rq_redis: redis.Redis | None,
        swarm: str | None = None,
        *,
        settings: Settings | None = None,
        namespace: str = NAMESPACE,
        counter_client: SyncRedis | None = None,
    ) -> None:
        self.rq_redis = rq_redis
        self.counter_client = counter_client
        super().__init__(redis_client, swarm, settings=settings, namespace=namespace)

    def _setup(self) -> None:
        self.ops = MessageOps(self.keys, self.settings)
        self._executor = AsyncExecutor(self.redis)
        self.dispatcher = Dispatcher(self.rq_redis, self.settings)

    @classmethod
    def from_url(
        cls, url: str | None = None, swarm: str | None = None, *, settings: Settings | None = None
    ) -> AsyncMessenger:
        settings = settings or Settings()
        if url:
            settings = settings.model_copy(update={"redis_url": url})
        store = redis_from_url(settings.redis_url, settings.redis_retries)
        return cls(
            async_redis_from_url(settings.redis_url, settings.redis_retries),
            broker_client(settings, store),
            swarm,
            settings=settings,
            counter_client=store,
        )

    async def broadcast(
        self,
        content: str,
        msg_type: MessageTypeLike = MessageType.INFO,
        sender: str = DEFAULT_SENDER,
        recipients: list[str] | None = None,
        message_id: str | None = None,
        *,
        reply_to: str | None = None,
        requires_ack: bool = False,
        include_self: bool = False,
    ) -> str:
        """See :meth:`Messenger.broadcast`."""
        make = functools.partial(
            prepare, content, msg_type, sender, recipients, self.settings,
            reply_to=reply_to, requires_ack=requires_ack, include_self=include_self,
        )  # fmt: skip
        if isinstance(content, str) and len(content) > _THREAD_CLEAN_ABOVE:
            outgoing = await asyncio.to_thread(make)
        else:
            outgoing = make()
        posted = await self._executor.run(self.ops.post(outgoing, message_id))
        try:
            await asyncio.to_thread(
                self.dispatcher.dispatch, self.keys.swarm, posted.message_id, posted.hosts
            )
        except enqueue_errors() as exc:
            client = self.counter_client
            await asyncio.to_thread(_enqueue_failed, client, self.keys, posted.message_id, exc)
        return posted.message_id

    async def send(
        self,
        recipient: str,
        content: str,
        msg_type: MessageTypeLike = MessageType.INFO,
        sender: str = DEFAULT_SENDER,
        message_id: str | None = None,
        *,
        reply_to: str | None = None,
        requires_ack: bool = False,
    ) -> str:
        """See :meth:`Messenger.send`."""
        return await self.broadcast(
            content, msg_type, sender, [recipient], message_id,
            reply_to=reply_to, requires_ack=requires_ack,
        )  # fmt: skip

    async def get(self, message_id: str) -> Message:
        return await self._executor.run(self.ops.get(message_id))

    async def inbox(self, agent_id: str, count: int = 20) -> list[InboxEntry]:
        return await self._executor.run(self.ops.inbox(agent_id, count))

    async def unread(self, agent_id: str, count: int = 20) -> Unread:
        """See :meth:`Messenger.unread`."""
        return await self._executor.run(self.ops.unread(agent_id, count))

    async def mark_read(self, agent_id: str, entry_id: str) -> None:
        """See :meth:`Messenger.mark_read`."""
        await self._executor.run(self.ops.mark_read(agent_id, entry_id))

    async def acknowledge(self, message_id: str, agent_id: str) -> Acknowledged:
        """See :meth:`Messenger.acknowledge`."""
        return await self._executor.run(self.ops.acknowledge(message_id, agent_id))

    async def thread(self, message_id: str) -> list[Message]:
        """See :meth:`Messenger.thread`."""
        return await self._executor.run(self.ops.thread(message_id))

    async def remind(self, limit: int = 1000) -> Reminded:
        """See :meth:`Messenger.remind`."""
        return await self._executor.run(self.ops.remind(limit))

    async def rate_usage(self, sender: str) -> RateUsage:
        """See :meth:`Messenger.rate_usage`."""
        return await self._executor.run(
            usage(self.keys, sender, self.settings.rate_limit_per_minute, window_ms(self.settings))
        )

    async def reset_rate_limit(self, sender: str) -> int:
        """See :meth:`Messenger.reset_rate_limit`."""
        cleared = await self._executor.run(self.ops.reset_rate_limit(sender))
        log.info("rate limit reset", swarm=self.keys.swarm, sender=sender, cleared=cleared)
        return cleared
