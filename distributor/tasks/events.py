"""The swarm's event log: one Redis Stream entry per state change, read as history or live.

Every Lua script appends its event to the capped stream ``keys.events`` (fields ``type``,
``task``, ``agent``, ``ts`` in ms, plus extras such as ``unblocked``) and publishes
``"<stream id> <type> <task>"`` on ``keys.channel`` for waiters (see
:mod:`distributor.tasks.waiting`), once per script call: the first event of a call (a
completion that claims the next task publishes ``completed``, not also ``claimed``), and a
plan's one ``submitted`` event per task once, for the last.

The stream id is the cursor. Replay and live reading are the same ``XREAD ... STREAMS key <id>``
("entries after id"), only with ``BLOCK`` once caught up, so there is no seam between them where
an event could be lost or repeated. A follower that reconnects (redis-py re-sends the blocked
XREAD with the same id, or the caller calls ``follow(since=last_id)``) resumes exactly after the
last event it saw. The one limit: events trimmed by the length cap before they were read are gone.

A wait of any length is several ``XREAD BLOCK`` calls from the same cursor, each at most
``max_block`` seconds (the client's :func:`~distributor.store.client.block_limit`, half its socket
timeout): a blocked read must answer before the socket timeout, or redis-py gives up on it and
its retries re-send the same read into the same timeout.

Reads are written once as :data:`~distributor.store.calls.Op` generators; :func:`follow` and
:func:`follow_async` are the sync and asyncio loops around them.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

from distributor.errors import ValidationError
from distributor.store.calls import Command, Op, text
from distributor.store.client import MAX_BLOCK_SECONDS
from distributor.store.keys import SwarmKeys
from distributor.tasks.models import Event, ms_to_datetime

PAGE = 1000
FOLLOW_BLOCK_SECONDS = 5.0  # how often a follower without a timeout reads again
_MIN_BLOCK = 0.001  # XREAD BLOCK counts whole milliseconds (and 0 would mean forever)
_STREAM_ID_RE = re.compile(r"\d{1,20}(-\d{1,20})?")
_BASE_FIELDS = ("type", "task", "agent", "ts")


def check_since(since: str) -> str:
    """A read cursor: a stream id (``1700000000000-0``), ``0`` (the start) or ``$`` (now)."""
    if since == "$" or _STREAM_ID_RE.fullmatch(since):
        return since
    shown = since if len(since) <= 40 else since[:40] + "..."
    raise ValidationError(
        f"invalid event id {shown!r}: use a stream id like 1700000000000-0, 0 or $"
    )


def event_from_entry(entry_id: Any, fields: Any) -> Event:
    """One stream entry (id and field map, bytes or str) as an :class:`Event`."""
    data = {text(k): text(v) for k, v in (fields or {}).items()}
    at = ms_to_datetime(data.get("ts"))
    if at is None:
        raise ValueError(f"event {text(entry_id)} has no ts field")
    return Event(
        id=text(entry_id),
        type=data.get("type", ""),
        task_id=data.get("task", ""),
        agent_id=data.get("agent") or None,
        at=at,
        data={k: v for k, v in data.items() if k not in _BASE_FIELDS},
    )


def _xread_entries(reply: Any) -> list[Event]:
    """Parse an XREAD reply of one stream: RESP2 ``[[name, entries]]``, RESP3 ``{name: entries}``,
    or nothing (``None`` / empty) when a ``BLOCK`` ran out."""
    if not reply:
        return []
    streams = list(reply.values()) if isinstance(reply, dict) else [item[1] for item in reply]
    return [
        event_from_entry(entry_id, fields) for entries in streams for entry_id, fields in entries
    ]


def last_id(keys: SwarmKeys) -> Op[str]:
    """The id of the newest event, or ``0-0`` when the log is empty."""
    newest = yield Command(("XREVRANGE", keys.events, "+", "-", "COUNT", 1))
    return text(newest[0][0]) if newest else "0-0"


def read(
    keys: SwarmKeys,
    since: str = "0",
    count: int | None = None,
    block: float | None = None,
    max_block: float = MAX_BLOCK_SECONDS,
) -> Op[list[Event]]:
    """Events after ``since``, oldest first: at most ``count`` (``None``: all, in pages).

    With ``block`` (seconds) and nothing newer yet, wait that long for the first event, in
    blocking reads of at most ``max_block`` seconds each.
    """
    cursor = check_since(since)
    if count is not None and count < 1:
        raise ValidationError("count must be a positive integer")
    if block is not None and not block > 0:
        raise ValidationError("block must be a positive number of seconds")
    if not max_block > 0:
        raise ValidationError("max_block must be a positive number of seconds")
    if cursor == "$":
        cursor = yield from last_id(keys)
    deadline = None if block is None else time.monotonic() + block
    found: list[Event] = []
    while True:
        page = PAGE if count is None else min(PAGE, count - len(found))
        args: list[str | int] = ["XREAD", "COUNT", page]
        if deadline is not None and not found:
            wait = min(max_block, deadline - time.monotonic())
            args += ["BLOCK", max(1, math.ceil(wait * 1000))]
        batch = _xread_entries((yield Command((*args, "STREAMS", keys.events, cursor))))
        found.extend(batch)
        if not found and deadline is not None and time.monotonic() < deadline:
            continue  # this read's block ran out before the caller's wait: read again
        if len(batch) < page or (count is not None and len(found) >= count):
            return found
        cursor = batch[-1].id


class Cursor:
    """A follower's place in the log, and when it stops for lack of events.

    ``timeout`` (seconds, ``None`` = never) is measured from the last event received, on this
    host's monotonic clock: it decides only how long this reader listens.
    """

    def __init__(self, since: str, timeout: float | None) -> None:
        self.position = check_since(since)
        if timeout is not None and not timeout > 0:
            raise ValidationError("timeout must be a positive number of seconds")
        self.timeout = timeout
        self._last_heard = time.monotonic()

    def _remaining(self) -> float | None:
        if self.timeout is None:
            return None
        return self.timeout - (time.monotonic() - self._last_heard)

    @property
    def idle(self) -> bool:
        """True once ``timeout`` seconds passed without an event."""
        remaining = self._remaining()
        return remaining is not None and remaining <= 0

    def step(self, keys: SwarmKeys, max_block: float = MAX_BLOCK_SECONDS) -> Op[list[Event]]:
        """Read the next batch after the cursor, waiting up to the timeout (or a few seconds)."""
        if self.position == "$":
            self.position = yield from last_id(keys)
        remaining = self._remaining()
        block = FOLLOW_BLOCK_SECONDS if remaining is None else remaining
        batch = yield from read(keys, self.position, PAGE, max(block, _MIN_BLOCK), max_block)
        if batch:
            self.position = batch[-1].id
            self._last_heard = time.monotonic()
        return batch


def follow(
    run: Callable[[Op[list[Event]]], list[Event]],
    keys: SwarmKeys,
    since: str = "$",
    timeout: float | None = None,
    max_block: float = MAX_BLOCK_SECONDS,
) -> Iterator[Event]:
    """Every event after ``since``, replayed then live, until ``timeout`` idle seconds pass.

    Each blocking read lasts at most ``max_block`` seconds (see the module's docstring).
    """
    cursor = Cursor(since, timeout)
    while not cursor.idle:
        yield from run(cursor.step(keys, max_block))


async def follow_async(
    run: Callable[[Op[list[Event]]], Awaitable[list[Event]]],
    keys: SwarmKeys,
    since: str = "$",
    timeout: float | None = None,
    max_block: float = MAX_BLOCK_SECONDS,
) -> AsyncIterator[Event]:
    """The asyncio twin of :func:`follow`: the event loop runs while XREAD blocks."""
    cursor = Cursor(since, timeout)
    while not cursor.idle:
        for event in await run(cursor.step(keys, max_block)):
            yield event
