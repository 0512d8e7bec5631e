"""The asyncio client in its own event loop: waiting never blocks the loop.

The lifecycle tests run on ``AsyncTaskQueue`` through the ``queue`` fixture (see conftest);
these check what only asyncio code can see. Both backends.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import pytest
import redis
import redis.asyncio
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialBackoff

from distributor import AsyncTaskQueue, Event, RedisUnavailable, Settings, TaskQueue
from tests.conftest import chain_plan
from tests.redis_cluster import shard_subscribers_async

T = TypeVar("T")
LONG_WAIT = 30.0


def run(
    factory: Callable[[], redis.asyncio.Redis],
    queue: TaskQueue,
    body: Callable[[AsyncTaskQueue], Coroutine[Any, Any, T]],
) -> T:
    """Run ``body`` with an AsyncTaskQueue on the test's swarm, in a fresh event loop."""

    async def main() -> T:
        async with AsyncTaskQueue(factory(), queue.swarm, settings=queue.settings) as aq:
            return await body(aq)

    return asyncio.run(main())


async def subscribed(aq: AsyncTaskQueue, n: int) -> None:
    """Yield to the loop until ``n`` waiters listen on the channel (readiness, not timing)."""
    async with asyncio.timeout(10):
        while await shard_subscribers_async(aq.redis, aq.keys.channel) < n:
            await asyncio.sleep(0.005)


def test_event_loop_keeps_running_while_a_client_waits(
    async_client_factory: Callable[[], redis.asyncio.Redis], sync_queue: TaskQueue
) -> None:
    async def body(aq: AsyncTaskQueue) -> tuple[int, str]:
        await aq.submit(chain_plan(2))
        first = await aq.claim_next("a1")
        assert first is not None
        waiter = asyncio.create_task(aq.claim_next("a2", wait=LONG_WAIT))
        ticks = 0

        async def other_work() -> None:
            nonlocal ticks
            while ticks < 500:
                assert not waiter.done()  # the waiter is still waiting ...
                ticks += 1  # ... while this coroutine makes progress
                await asyncio.sleep(0)

        await subscribed(aq, 1)
        await other_work()
        await aq.complete("t0", "a1", first.token)
        claim = await waiter
        assert claim is not None
        return ticks, claim.task_id

    assert run(async_client_factory, sync_queue, body) == (500, "t1")


def test_five_coroutines_waiting_one_ready_task_exactly_one_claims(
    async_client_factory: Callable[[], redis.asyncio.Redis], sync_queue: TaskQueue
) -> None:
    async def body(aq: AsyncTaskQueue) -> list[str]:
        await aq.submit(chain_plan(2))
        gate = await aq.claim_next("op")
        assert gate is not None
        waiters = [asyncio.create_task(aq.claim_next(f"w{i}", wait=LONG_WAIT)) for i in range(5)]
        await subscribed(aq, 5)
        await aq.complete("t0", "op", gate.token)
        done, pending = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        assert len(done) == 1 and len(pending) == 4
        await aq.submit({"tasks": [{"id": f"more{i}", "title": "M"} for i in range(4)]})
        claims = await asyncio.gather(*waiters)
        return sorted(c.task_id for c in claims if c is not None)

    got = run(async_client_factory, sync_queue, body)
    assert got == ["more0", "more1", "more2", "more3", "t1"]


def test_async_for_follows_events_live(
    async_client_factory: Callable[[], redis.asyncio.Redis], sync_queue: TaskQueue
) -> None:
    async def body(aq: AsyncTaskQueue) -> list[Event]:
        await aq.submit(chain_plan(3))
        seen: list[Event] = []

        async def produce() -> None:
            for _ in range(3):
                claim = await aq.claim_next("a1")
                assert claim is not None
                await aq.complete(claim.task_id, "a1", claim.token)

        producer = asyncio.create_task(produce())
        async for event in aq.follow(since="0", timeout=LONG_WAIT):
            seen.append(event)
            if len(seen) == 9:
                break
        await producer
        return seen

    seen = run(async_client_factory, sync_queue, body)
    assert [e.id for e in seen] == [e.id for e in sync_queue.events()]
    assert [e.type for e in seen] == ["submitted"] * 3 + ["claimed", "completed"] * 3


def test_from_url_configures_retries(real_redis_url: str) -> None:
    async def body() -> None:
        settings = Settings(redis_retries=4)
        async with AsyncTaskQueue.from_url(real_redis_url, "aio-url", settings=settings) as aq:
            assert isinstance(aq.redis, redis.asyncio.Redis)
            kwargs = aq.redis.connection_pool.connection_kwargs
            retry = kwargs["retry"]
            assert isinstance(retry, AsyncRetry)
            assert retry._retries == 4
            assert isinstance(retry._backoff, ExponentialBackoff)
            assert kwargs["socket_connect_timeout"] == 5
            assert kwargs["health_check_interval"] == 30
            assert await aq.ping()

    asyncio.run(body())


def test_unreachable_redis_raises_redis_unavailable() -> None:
    async def body() -> None:
        settings = Settings(redis_retries=0, retry_budget_seconds=0.3)
        async with AsyncTaskQueue.from_url("redis://127.0.0.1:1/0", "x", settings=settings) as aq:
            with pytest.raises(RedisUnavailable):
                await aq.claim_next("a1")
            with pytest.raises(RedisUnavailable):
                await aq.claim_next("a1", wait=1)

    asyncio.run(body())
