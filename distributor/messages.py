"""Broadcast and send: record a message with every recipient's outcome, and hand it to workers.

``broadcast()`` never calls tmux. In one Lua script it resolves the recipients, applies the
sender's rate limit, records the message with each recipient ``pending`` and appends it to each
recipient's inbox; then it enqueues one delivery job per host (:mod:`distributor.dispatch`) and
returns the message id. A worker on each host types the message into the panes and records every
recipient's outcome (``delivered`` or ``failed`` with a reason), shown by :meth:`Messenger.get`.

The logic is written once as generators (:class:`MessageOps`); :class:`Messenger` drives them
with a blocking client and :class:`AsyncMessenger` with ``redis.asyncio``, running the blocking
RQ enqueue in a thread so the event loop is never blocked.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

import redis
import redis.asyncio as aioredis
from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError

from distributor.agents import validated_agent_id
from distributor.calls import Batch, Command, Op, ScriptCall, text
from distributor.client import SwarmClient, SyncClient, async_redis_from_url, redis_from_url
from distributor.codec import decode_map, redis_now_ms, script_reply
from distributor.dispatch import Dispatcher
from distributor.errors import (
    AgentNotFoundError,
    MessageNotFound,
    RateLimitExceeded,
    ValidationError,
)
from distributor.executor import AsyncExecutor, SyncExecutor
from distributor.keys import NAMESPACE, SwarmKeys
from distributor.models import AgentId, ms_to_datetime, validation_error
from distributor.ratelimit import WINDOW_SECONDS
from distributor.sanitize import clean_content, strip_controls
from distributor.settings import Settings

MESSAGE_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
MAX_RAW_CONTENT = 8 * 1024 * 1024
MAX_RECIPIENTS = 10_000
DEFAULT_SENDER = "swarmqueue"
_THREAD_CLEAN_ABOVE = 64 * 1024  # async: sanitize bigger contents off the event loop


class MessageType(StrEnum):
    """What a message announces; shown in the pane as ``[TYPE]``."""

    INFO = "INFO"
    QUESTION = "QUESTION"
    ANSWER = "ANSWER"
    ALERT = "ALERT"
    TASK_AVAILABLE = "TASK_AVAILABLE"
    CLAIMED = "CLAIMED"
    COMPLETED = "COMPLETED"
    BLOCKED = "BLOCKED"
    REVIEW_REQUEST = "REVIEW_REQUEST"


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


FailureReason = Literal[
    "pane_not_found",
    "server_not_found",
    "tmux_error",
    "timeout",
    "shell_prompt",
    "not_an_agent",
    "foreground_changed",
]
DeliveredAs = Literal["paste", "comment"]


class Delivery(BaseModel):
    """One recipient's outcome.

    ``delivered`` says ``as`` what: ``paste`` (the message and Enter) or ``comment`` (a shell
    prompt got one inert comment line; see ``workers/programs.py``). ``failed`` carries a
    ``reason`` and ``detail``: ``pane_not_found``, ``server_not_found`` (no tmux server or
    binary), ``tmux_error``, ``timeout``, ``shell_prompt`` and ``not_an_agent`` (the pane's
    foreground program gets no keystrokes; the inbox keeps the message), ``foreground_changed``
    (it changed while the message was being typed elsewhere; retried). ``final`` is False while
    RQ will retry a transient failure. ``attempts`` counts recorded attempts.
    """

    model_config = ConfigDict(frozen=True, validate_by_name=True, serialize_by_alias=True)

    agent_id: str
    host: str
    pane: str
    socket: str | None = None
    status: DeliveryStatus
    delivered_as: DeliveredAs | None = Field(None, alias="as")
    reason: FailureReason | None = None
    detail: str | None = None
    attempts: int = 0
    final: bool = False
    first_attempt_at: datetime | None = None
    last_attempt_at: datetime | None = None
    delivered_at: datetime | None = None


class Message(BaseModel):
    """A recorded message and every recipient's outcome."""

    model_config = ConfigDict(frozen=True)

    id: str
    sender: str
    type: MessageType
    content: str
    at: datetime
    hosts: list[str]
    deliveries: list[Delivery]

    def counts(self) -> dict[str, int]:
        """Recipients per status."""
        out = {s.value: 0 for s in DeliveryStatus}
        for d in self.deliveries:
            out[d.status.value] += 1
        return out


class InboxEntry(BaseModel):
    """A message as kept in a recipient's inbox stream."""

    model_config = ConfigDict(frozen=True)

    message_id: str
    sender: str
    type: MessageType
    content: str
    at: datetime

    def line(self) -> str:
        return format_line(self.sender, self.type, self.at, self.content)


class Outgoing(BaseModel):
    """A message to send, validated and made inert; built by :func:`prepare`."""

    model_config = ConfigDict(frozen=True)

    content: Annotated[str, Field(min_length=1)]
    type: MessageType
    sender: AgentId
    recipients: Annotated[list[AgentId], Field(min_length=1, max_length=MAX_RECIPIENTS)] | None


class Posted(BaseModel):
    """What recording a message did: its id, Redis time, recipients and their hosts."""

    model_config = ConfigDict(frozen=True)

    message_id: str
    at: datetime
    recipients: list[str]
    hosts: list[str]


def format_line(sender: str, msg_type: str, at: datetime, content: str) -> str:
    """The text typed into a pane: ``[SENDER][UTC time][TYPE]: content``."""
    safe_sender = strip_controls(sender)
    return f"[{safe_sender}][{at:%Y-%m-%d %H:%M:%S} UTC][{msg_type}]: {content}"


def prepare(
    content: str,
    msg_type: MessageType | str,
    sender: str,
    recipients: list[str] | None,
    settings: Settings,
) -> Outgoing:
    """Validate a message at the boundary and sanitize its content; ``ValidationError`` if bad."""
    if not isinstance(content, str):
        raise ValidationError("content must be a string")
    if len(content) > MAX_RAW_CONTENT:
        raise ValidationError(f"content is larger than {MAX_RAW_CONTENT} characters")
    if recipients is not None:
        recipients = list(dict.fromkeys(recipients))  # keep order, drop repeats
    cleaned = clean_content(
        content, settings.message_max_chars, keep_newlines=settings.message_keep_newlines
    )
    if not cleaned:
        raise ValidationError("content is empty once control characters are removed")
    try:
        kind = MessageType(msg_type.upper() if isinstance(msg_type, str) else msg_type)
    except ValueError:
        choices = ", ".join(t.value for t in MessageType)
        raise ValidationError(f"unknown message type {msg_type!r}: one of {choices}") from None
    try:
        return Outgoing(content=cleaned, type=kind, sender=sender, recipients=recipients)
    except PydanticValidationError as exc:
        raise validation_error(exc) from None


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
        status=d["status"],
        delivered_as=d.get("as") or None,
        reason=d.get("reason") or None,
        detail=d.get("detail") or None,
        attempts=int(d.get("attempts") or 0),
        final=bool(d.get("final")),
        first_attempt_at=ms_to_datetime(d.get("first_attempt_at")),
        last_attempt_at=ms_to_datetime(d.get("last_attempt_at")),
        delivered_at=ms_to_datetime(d.get("delivered_at")),
    )


class MessageOps:
    """Messaging operations of one swarm as generators of Redis calls."""

    def __init__(self, keys: SwarmKeys, settings: Settings) -> None:
        self.keys = keys
        self.settings = settings

    def post(self, outgoing: Outgoing) -> Op[Posted]:
        """Record ``outgoing`` (see ``lua/msg_send.lua``); raises the refusals it reports."""
        k, s = self.keys, self.settings
        message_id = secrets.token_hex(8)
        recipients = "" if outgoing.recipients is None else json.dumps(outgoing.recipients)
        reply = yield ScriptCall(
            "msg_send",
            [
                k.agents,
                k.message(message_id),
                k.deliveries(message_id),
                k.rate(outgoing.sender),
                k.outbox,
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
                WINDOW_SECONDS * 1000,
                s.inbox_cap,
                s.message_ttl_seconds,
            ],
        )
        status, body = script_reply(reply)
        if status == "not_found":
            raise AgentNotFoundError(list(body["ids"]))
        if status == "no_agents":
            raise AgentNotFoundError([], "no active agent to broadcast to")
        if status == "rate_limited":
            raise RateLimitExceeded(
                outgoing.sender, s.rate_limit_per_minute, int(body["wait_ms"]) / 1000
            )
        at = ms_to_datetime(body["at"])
        assert at is not None
        return Posted(
            message_id=message_id,
            at=at,
            recipients=[str(r) for r in body["recipients"]],
            hosts=[str(h) for h in body["hosts"]],
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
        )

    def record(self, message_id: str, outcomes: dict[str, dict[str, Any]]) -> Op[int]:
        """Store outcomes of one attempt (``lua/msg_outcome.lua``); returns how many changed."""
        if not outcomes:
            return 0
        k = self.keys
        reply = yield ScriptCall(
            "msg_outcome", [k.deliveries(message_id), k.clock], [json.dumps(outcomes)]
        )
        _, body = script_reply(reply)
        return int(body["recorded"])

    def started(self, message_id: str, host: str) -> Op[None]:
        """The delivery job of ``message_id`` on ``host`` runs: it left the outbox."""
        yield Command(("ZREM", self.keys.outbox, f"{message_id} {host}"))

    def undispatched(self, older_than: float) -> Op[list[tuple[str, str]]]:
        """(message id, host) of delivery jobs not started ``older_than`` seconds after sending."""
        time_reply, clock = yield Batch((Command(("TIME",)), Command(("GET", self.keys.clock))))
        now_ms = redis_now_ms(time_reply, clock)
        due = yield Command(("ZRANGEBYSCORE", self.keys.outbox, "-inf", now_ms - older_than * 1000))
        pairs = []
        for entry in due:
            message_id, _, host = text(entry).partition(" ")
            pairs.append((message_id, host))
        return pairs

    def inbox(self, agent_id: str, count: int) -> Op[list[InboxEntry]]:
        """The agent's latest ``count`` messages, oldest first."""
        if not 1 <= count <= 10_000:
            raise ValidationError("count must be between 1 and 10000")
        validated_agent_id(agent_id)
        entries = yield Command(("XREVRANGE", self.keys.inbox(agent_id), "+", "-", "COUNT", count))
        out = []
        for _, fields in reversed(entries):
            f = decode_map(_pairs(fields))
            at = ms_to_datetime(f["at"])
            assert at is not None
            out.append(
                InboxEntry(
                    message_id=f["id"],
                    sender=f["sender"],
                    type=MessageType(f["type"]),
                    content=f["content"],
                    at=at,
                )
            )
        return out


def _pairs(fields: Any) -> dict[Any, Any]:
    """A stream entry's fields (a flat list or a dict, depending on the client) as a dict."""
    if isinstance(fields, dict):
        return fields
    return dict(zip(fields[::2], fields[1::2], strict=True))


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
    """

    def _setup(self) -> None:
        self.ops = MessageOps(self.keys, self.settings)
        self._executor = SyncExecutor(self.redis)
        self.dispatcher = Dispatcher(self.redis, self.settings)

    def broadcast(
        self,
        content: str,
        msg_type: MessageType | str = MessageType.INFO,
        sender: str = DEFAULT_SENDER,
        recipients: list[str] | None = None,
    ) -> str:
        """Record a message for ``recipients`` (default: every active agent) and enqueue its
        delivery; returns the message id at once.

        Raises ``ValidationError``, ``AgentNotFoundError`` (a named agent is unknown, or no
        agent is active) or ``RateLimitExceeded``; in each case nothing is recorded or enqueued.
        """
        outgoing = prepare(content, msg_type, sender, recipients, self.settings)
        posted = self._executor.run(self.ops.post(outgoing))
        self.dispatcher.dispatch(self.keys.swarm, posted.message_id, posted.hosts)
        return posted.message_id

    def send(
        self,
        recipient: str,
        content: str,
        msg_type: MessageType | str = MessageType.INFO,
        sender: str = DEFAULT_SENDER,
    ) -> str:
        """:meth:`broadcast` to one agent (delivered even if it is stale)."""
        return self.broadcast(content, msg_type, sender, [recipient])

    def get(self, message_id: str) -> Message:
        """The message and each recipient's outcome."""
        return self._executor.run(self.ops.get(message_id))

    def inbox(self, agent_id: str, count: int = 20) -> list[InboxEntry]:
        """The agent's latest messages, oldest first (kept even when its pane is gone)."""
        return self._executor.run(self.ops.inbox(agent_id, count))

    def redispatch(self, older_than: float = 60.0) -> int:
        """Enqueue again deliveries whose job has not started ``older_than`` seconds after
        sending (say, the enqueue was lost with the connection); existing jobs are left alone.
        Returns how many deliveries were looked at."""
        pairs = self._executor.run(self.ops.undispatched(older_than))
        for message_id, host in pairs:
            self.dispatcher.dispatch(self.keys.swarm, message_id, [host])
        return len(pairs)


class AsyncMessenger(SwarmClient[aioredis.Redis]):
    """:class:`Messenger` for asyncio code: Redis calls are awaited, and the blocking RQ enqueue
    (and sanitizing a large content) run in a worker thread, so the event loop never blocks.

    RQ needs a blocking client; pass one as ``rq_redis`` (it is only used from that thread).
    """

    def __init__(
        self,
        redis_client: aioredis.Redis,
        rq_redis: redis.Redis,
        swarm: str | None = None,
        *,
        settings: Settings | None = None,
        namespace: str = NAMESPACE,
    ) -> None:
        self.rq_redis = rq_redis
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
        url = url or settings.redis_url
        return cls(
            async_redis_from_url(url, settings.redis_retries),
            redis_from_url(url, settings.redis_retries),
            swarm,
            settings=settings,
        )

    async def broadcast(
        self,
        content: str,
        msg_type: MessageType | str = MessageType.INFO,
        sender: str = DEFAULT_SENDER,
        recipients: list[str] | None = None,
    ) -> str:
        """See :meth:`Messenger.broadcast`."""
        args = (content, msg_type, sender, recipients, self.settings)
        if isinstance(content, str) and len(content) > _THREAD_CLEAN_ABOVE:
            outgoing = await asyncio.to_thread(prepare, *args)
        else:
            outgoing = prepare(*args)
        posted = await self._executor.run(self.ops.post(outgoing))
        await asyncio.to_thread(
            self.dispatcher.dispatch, self.keys.swarm, posted.message_id, posted.hosts
        )
        return posted.message_id

    async def send(
        self,
        recipient: str,
        content: str,
        msg_type: MessageType | str = MessageType.INFO,
        sender: str = DEFAULT_SENDER,
    ) -> str:
        """See :meth:`Messenger.send`."""
        return await self.broadcast(content, msg_type, sender, [recipient])

    async def get(self, message_id: str) -> Message:
        return await self._executor.run(self.ops.get(message_id))

    async def inbox(self, agent_id: str, count: int = 20) -> list[InboxEntry]:
        return await self._executor.run(self.ops.inbox(agent_id, count))
