"""Live updates: ONE reader of each watched swarm's event stream, fanned out to every page.

The first page that opens a swarm's stream starts a reader task; the last one to close stops
it. The reader blocks on ``XREAD`` after the newest event it saw; for each batch it reads the
swarm's counts (the ``counts`` script) and the new status of the tasks the batch names (one
pipeline), then hands the same update to every subscriber's queue. So an update costs three
Redis calls however many browsers watch. A subscriber whose queue is full (a stalled browser)
is dropped; its EventSource reconnects by itself.

A page passes the newest event id it was rendered with; on connecting it gets, once, the
events after that id (one read of its own), so nothing between render and connect is missed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import redis

from distributor.errors import SwarmQueueError
from distributor.log import get_logger
from distributor.store import codec
from distributor.store.calls import Batch, Command, Op, text
from distributor.store.connect import AsyncRedis
from distributor.store.executor import AsyncExecutor
from distributor.store.keys import SwarmKeys
from distributor.store.scripts import SCRIPT_NAMES
from distributor.tasks import events as event_log
from distributor.tasks import queries
from distributor.tasks.models import Event

log = get_logger(__name__)

QUEUE_SIZE = 256
READ_BLOCK_SECONDS = 2.0  # one XREAD BLOCK at most; the reader notices it should stop this fast
CATCH_UP_MAX = 1000


def update_op(keys: SwarmKeys, batch: list[Event]) -> Op[dict[str, Any]]:
    """What every page needs after ``batch``: the events, the counts, the named tasks' status."""
    counts, _ = yield from queries.status_counts(keys)
    named = sorted(
        {e.task_id for e in batch if e.task_id} | {u for e in batch for u in e.unblocked}
    )
    statuses: dict[str, str] = {}
    if named:
        replies = yield Batch(
            (
                Command(("TIME",)),
                Command(("GET", keys.clock)),
                *(Command(("HMGET", keys.task(t), "status", "retry_at")) for t in named),
            )
        )
        now = codec.redis_now_ms(replies[0], replies[1])
        for task_id, (status, retry_at) in zip(named, replies[2:], strict=True):
            if status is not None:
                shown = {"status": text(status), "retry_at": text(retry_at) if retry_at else ""}
                statuses[task_id] = queries.as_of(shown, now)["status"]
    return {
        "last": batch[-1].id if batch else None,
        "events": [_event_json(e) for e in batch],
        "counts": counts,
        "total": sum(counts.values()),
        "pct": queries.completion_pct(counts),
        "statuses": statuses,
    }


def _event_json(e: Event) -> dict[str, Any]:
    return {
        "id": e.id,
        "type": e.type,
        "task": e.task_id,
        "agent": e.agent_id or "",
        "at": e.at.isoformat(),
        "data": e.data,
    }


@dataclass
class Feed:
    """One swarm's reader and the queues of the pages it serves."""

    keys: SwarmKeys
    subscribers: set[asyncio.Queue[dict[str, Any] | None]] = field(default_factory=set)
    task: asyncio.Task[None] | None = None
    position: str = "$"
    reads: int = 0  # Redis calls made by this reader (the benchmark and tests look at it)
    updates: int = 0  # updates fanned out


class Hub:
    """The feeds of every watched swarm, on one asyncio Redis client."""

    def __init__(self, client_factory: Callable[[], AsyncRedis]) -> None:
        self._factory = client_factory
        self._client: AsyncRedis | None = None
        self._executor: AsyncExecutor | None = None
        self.feeds: dict[str, Feed] = {}

    @property
    def executor(self) -> AsyncExecutor:
        if self._executor is None:  # made inside the running loop, which the client binds to
            self._client = self._factory()
            self._executor = AsyncExecutor(self._client, SCRIPT_NAMES)
        return self._executor

    @contextlib.asynccontextmanager
    async def subscribe(
        self, keys: SwarmKeys, since: str | None = None
    ) -> AsyncIterator[asyncio.Queue[dict[str, Any] | None]]:
        """A queue of this swarm's updates (``None``: dropped, reconnect), from ``since`` on."""
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(QUEUE_SIZE)
        feed = self.feeds.get(keys.swarm)
        if feed is None:
            feed = self.feeds[keys.swarm] = Feed(keys)
            feed.position = await self.executor.run(event_log.last_id(keys))
        feed.subscribers.add(queue)
        if feed.task is None or feed.task.done():
            feed.task = asyncio.create_task(self._read(feed), name=f"dashboard-feed-{keys.swarm}")
        try:
            if since is not None and since != feed.position:
                await self._catch_up(feed, queue, since)
            yield queue
        finally:
            feed.subscribers.discard(queue)
            if not feed.subscribers and feed.task is not None:
                feed.task.cancel()
                self.feeds.pop(keys.swarm, None)

    async def _catch_up(
        self, feed: Feed, queue: asyncio.Queue[dict[str, Any] | None], since: str
    ) -> None:
        batch = await self.executor.run(event_log.read(feed.keys, since, CATCH_UP_MAX))
        if batch:
            queue.put_nowait(await self.executor.run(update_op(feed.keys, batch)))

    async def _read(self, feed: Feed) -> None:
        executor = self.executor
        while feed.subscribers:
            try:
                batch = await executor.run(
                    event_log.read(
                        feed.keys,
                        feed.position,
                        event_log.PAGE,
                        READ_BLOCK_SECONDS,
                        READ_BLOCK_SECONDS,
                    )
                )
                feed.reads += 1
                if not batch:
                    continue
                update = await executor.run(update_op(feed.keys, batch))
                feed.reads += 2
            except (SwarmQueueError, redis.RedisError) as exc:  # Redis away: pages wait, we retry
                log.warning("dashboard feed cannot read", swarm=feed.keys.swarm, error=str(exc))
                await asyncio.sleep(1.0)
                continue
            feed.position = batch[-1].id
            feed.updates += 1
            for queue in list(feed.subscribers):
                try:
                    queue.put_nowait(update)
                except asyncio.QueueFull:
                    log.info("dashboard page too slow, dropped", swarm=feed.keys.swarm)
                    feed.subscribers.discard(queue)
                    queue.get_nowait()
                    queue.put_nowait(None)

    def end_streams(self) -> None:
        """Tell every open page's stream to end (the server is stopping)."""
        for feed in list(self.feeds.values()):
            for queue in list(feed.subscribers):
                with contextlib.suppress(asyncio.QueueFull, asyncio.QueueEmpty):
                    if queue.full():
                        queue.get_nowait()
                    queue.put_nowait(None)

    async def close(self) -> None:
        """Stop every reader, tell every page to go, and close the client."""
        self.end_streams()
        for feed in list(self.feeds.values()):
            if feed.task is not None:
                feed.task.cancel()
        self.feeds.clear()
        if self._client is not None:
            await self._client.aclose()
            self._client = self._executor = None
