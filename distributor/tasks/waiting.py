"""Waiting for work: ``claim_next(agent, wait=SECONDS)`` without polling Redis in a loop.

A waiter subscribes to the swarm's channel, where every state change is announced, and tries
``claim_next`` again only when something may have become claimable, or when the ``next_due``
moment that the last try reported (a retry backoff or a lease running out) has come.

Closing the race between "nothing ready" and "subscribed", in a timeline::

    t0  waiter W: claim_next -> nothing ready
    t1  agent A completes T, which makes U available; the "completed" message goes out
    t2  W's SUBSCRIBE reaches Redis: it never hears about t1

so W tries again after Redis confirms the subscription, and again after every reconnect (redis-py
re-subscribes and Redis confirms again; messages sent while disconnected are lost).

The channel is a shard channel (``SSUBSCRIBE``; the scripts ``SPUBLISH``, Redis >= 7.0): on a
Redis Cluster a wake-up then travels only within the swarm's shard instead of to every node
over the cluster bus (numbers in docs/benchmarks.md); on one server it works as ``PUBLISH``
does. When the swarm's slot moves to another master, the old one ends the subscription
(``sunsubscribe``) or answers ``MOVED``: the waiter tries to claim again (which teaches the
client the slot's new owner) and subscribes again there.

When the channel's connection fails (a Redis restart), the waiter pauses and tries to claim
again: the claim rides out the outage within the client's retry budget, then the channel is
listened to again; outages longer than the budget raise ``RedisUnavailable``. Many waiters
woken by one ready task all try; the claim script is atomic, so exactly one gets it and the others
go back to waiting.

:class:`Waiter` holds the decisions (no I/O); :func:`wait_for_claim` and
:func:`wait_for_claim_async` are the same loop for the sync and asyncio clients.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, Protocol

import redis
import redis.asyncio as aioredis
import redis.asyncio.cluster
import redis.cluster

from distributor.errors import RedisUnavailable, ValidationError
from distributor.store.calls import (
    CLUSTER_REFUSALS,
    CONNECTION_ERRORS,
    RetryBudget,
    text,
    unavailable,
)
from distributor.store.connect import AsyncRedis, SyncRedis
from distributor.store.executor import AsyncExecutor, SyncExecutor
from distributor.store.keys import SwarmKeys
from distributor.tasks.ids import check_request_id
from distributor.tasks.models import Claim
from distributor.tasks.ops import Operations


class WaitingClient(Protocol):
    """What :func:`wait_for_claim` needs of a client (``TaskQueue`` has it): waiting is a part of
    the clients, so it names what it uses instead of importing them."""

    ops: Operations
    keys: SwarmKeys
    _executor: SyncExecutor

    @property
    def redis(self) -> SyncRedis: ...

    @property
    def max_block(self) -> float: ...


class AsyncWaitingClient(Protocol):
    """What :func:`wait_for_claim_async` needs of a client (``AsyncTaskQueue`` has it)."""

    ops: Operations
    keys: SwarmKeys
    _executor: AsyncExecutor

    @property
    def redis(self) -> AsyncRedis: ...

    @property
    def max_block(self) -> float: ...

# Events after which a task may be claimable, or the next due moment earlier than known
# ("claimed" starts a lease that may end before anything else is due; "unreserved": files a
# ready task waited for were freed).
WAKE_TYPES = frozenset(
    {"submitted", "completed", "released", "expired", "retried", "failed", "claimed", "task_added",
     "unreserved"}
)
# Wake a hair after next_due: Redis times are whole milliseconds.
_DUE_MARGIN = 0.002

Attempt = tuple[Claim | None, float | None]


def check_wait(wait: float) -> float:
    """Seconds to wait: a finite number >= 0."""
    if not isinstance(wait, int | float) or math.isnan(wait) or wait < 0 or math.isinf(wait):
        raise ValidationError("wait must be a finite number of seconds >= 0")
    return float(wait)


def is_wake(message: dict[str, Any]) -> bool:
    """Whether a pub/sub message should make a waiter try to claim again.

    A (re)subscribe confirmation does: messages may have been missed before it.
    """
    kind = message.get("type")
    if kind in ("subscribe", "ssubscribe"):
        return True
    if kind not in ("message", "smessage"):
        return False  # pong (health checks), unsubscribe
    parts = text(message.get("data", "")).split(" ")
    return len(parts) >= 2 and parts[1] in WAKE_TYPES


class Waiter:
    """When to try again and how long to block: the shared logic of both wait loops."""

    def __init__(self, wait: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._deadline = clock() + wait
        self._due_at: float | None = None
        self.recheck = False

    def tried(self, due_in: float | None) -> None:
        """A claim attempt found nothing; ``due_in`` seconds until something may be due."""
        self.recheck = False
        self._due_at = None if due_in is None else self._clock() + due_in + _DUE_MARGIN

    def heard(self, message: dict[str, Any] | None) -> None:
        """A pub/sub message arrived, or (``None``) the block timed out."""
        if message is not None and is_wake(message):
            self.recheck = True
        if self._due_at is not None and self._clock() >= self._due_at:
            self.recheck = True

    def block_for(self, max_block: float | None = None) -> float | None:
        """Seconds to block for the next message, or ``None`` when the wait is over.

        At most ``max_block`` (the client's :func:`~distributor.store.client.block_limit`): a long
        wait is many short listens, each answered before the socket timeout.
        """
        now = self._clock()
        remaining = self._deadline - now
        if remaining <= 0:
            return None
        if self._due_at is not None:
            remaining = max(0.0, min(remaining, self._due_at - now))
        return remaining if max_block is None else min(remaining, max_block)


def dropped(message: dict[str, Any] | None) -> bool:
    """Whether Redis ended the subscription (the swarm's slot moved to another master)."""
    return message is not None and message.get("type") in ("sunsubscribe", "unsubscribe")


def next_message(pubsub: Any, timeout: float) -> dict[str, Any] | None:
    """The next message of ``pubsub``: a cluster's pub/sub keeps shard messages apart."""
    if isinstance(pubsub, redis.cluster.ClusterPubSub):
        message = pubsub.get_sharded_message(timeout=timeout)  # type: ignore[no-untyped-call]
        return message  # type: ignore[no-any-return]
    return pubsub.get_message(timeout=timeout)  # type: ignore[no-any-return]


async def next_message_async(pubsub: Any, timeout: float) -> dict[str, Any] | None:
    """The asyncio twin of :func:`next_message`."""
    if isinstance(pubsub, aioredis.cluster.ClusterPubSub):
        return await pubsub.get_sharded_message(timeout=timeout)
    return await pubsub.get_message(timeout=timeout)  # type: ignore[no-any-return]


def _unreachable(exc: Exception) -> RedisUnavailable:
    return unavailable(exc, "Redis unreachable while waiting")


class Outage:
    """Connection errors of the channel in a row, ridden out within the retry budget."""

    def __init__(self, budget: RetryBudget) -> None:
        self._budget = budget
        self._pauses: Iterator[float] | None = None

    def pause(self, exc: Exception) -> float:
        """Seconds to pause before trying again; ``RedisUnavailable`` once the budget is used."""
        if self._pauses is None:
            self._pauses = self._budget.pauses()
        pause = next(self._pauses, None)
        if pause is None:
            raise _unreachable(exc) from exc
        return pause

    def over(self) -> None:
        """The channel answered: the next error starts a new outage."""
        self._pauses = None


def wait_for_claim(
    queue: WaitingClient, agent_id: str, wait: float, lease: float | None, request_id: str | None
) -> Claim | None:
    """Claim the best ready task, waiting up to ``wait`` seconds for one (sync client)."""
    wait = check_wait(wait)
    rid = check_request_id(request_id)  # one id: a retried final claim is answered once

    def attempt() -> Attempt:
        return queue._executor.run(queue.ops.claim_next_in(agent_id, lease, rid))

    claim, due_in = attempt()
    if claim is not None or wait == 0:
        return claim
    waiter = Waiter(wait)
    waiter.tried(due_in)
    outage = Outage(queue._executor.retry_budget)
    pubsub = queue.redis.pubsub()  # type: ignore[no-untyped-call]
    subscribed = False
    try:
        while True:
            if waiter.recheck:
                claim, due_in = attempt()
                if claim is not None:
                    return claim
                waiter.tried(due_in)
            timeout = waiter.block_for(queue.max_block)
            if timeout is None:
                return None
            try:
                if not subscribed:
                    pubsub.ssubscribe(queue.keys.channel)
                    subscribed = True
                message = next_message(pubsub, timeout)
            except CONNECTION_ERRORS as exc:
                time.sleep(min(outage.pause(exc), timeout))
                waiter.recheck = True  # wake-ups may have been missed meanwhile
                continue
            except CLUSTER_REFUSALS as exc:  # the channel's slot moved: listen at its new node
                pubsub.close()
                pubsub = queue.redis.pubsub()  # type: ignore[no-untyped-call]
                subscribed, waiter.recheck = False, True  # the claim's MOVED updates the map
                time.sleep(min(outage.pause(exc), timeout))
                continue
            outage.over()
            if dropped(message):
                subscribed, waiter.recheck = False, True
            waiter.heard(message)
    finally:
        pubsub.close()


async def wait_for_claim_async(
    queue: AsyncWaitingClient,
    agent_id: str,
    wait: float,
    lease: float | None,
    request_id: str | None,
) -> Claim | None:
    """The asyncio twin of :func:`wait_for_claim`; the event loop runs while it waits."""
    wait = check_wait(wait)
    rid = check_request_id(request_id)

    def attempt() -> Awaitable[Attempt]:
        return queue._executor.run(queue.ops.claim_next_in(agent_id, lease, rid))

    claim, due_in = await attempt()
    if claim is not None or wait == 0:
        return claim
    waiter = Waiter(wait)
    waiter.tried(due_in)
    outage = Outage(queue._executor.retry_budget)
    pubsub = queue.redis.pubsub()
    subscribed = False
    try:
        while True:
            if waiter.recheck:
                claim, due_in = await attempt()
                if claim is not None:
                    return claim
                waiter.tried(due_in)
            timeout = waiter.block_for(queue.max_block)
            if timeout is None:
                return None
            try:
                if not subscribed:
                    await pubsub.ssubscribe(queue.keys.channel)
                    subscribed = True
                message = await next_message_async(pubsub, timeout)
            except CONNECTION_ERRORS as exc:
                await asyncio.sleep(min(outage.pause(exc), timeout))
                waiter.recheck = True
                continue
            except CLUSTER_REFUSALS as exc:
                await pubsub.aclose()  # type: ignore[no-untyped-call]
                pubsub = queue.redis.pubsub()
                subscribed, waiter.recheck = False, True
                await asyncio.sleep(min(outage.pause(exc), timeout))
                continue
            outage.over()
            if dropped(message):
                subscribed, waiter.recheck = False, True
            waiter.heard(message)
    finally:
        await pubsub.aclose()  # type: ignore[no-untyped-call]
