"""``claim_next(wait=...)``: woken by the channel or at next_due; one ready task, one winner.

Every test runs on both clients (sync, and asyncio through the facade) and both backends.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

import pytest
import redis
import redis.asyncio
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ConstantBackoff
from redis.retry import Retry

from distributor import Claim, TaskQueue, ValidationError
from distributor.settings import Settings
from distributor.tasks.waiting import Waiter, is_wake
from distributor.testing import delete_swarm
from tests.async_facade import BlockingAsyncQueue
from tests.conftest import chain_plan
from tests.redis_cluster import shard_subscribers

LONG_WAIT = 30.0  # an upper bound only: every waiter below is woken long before it


@pytest.fixture
def test_settings() -> Settings:
    return Settings(retry_backoff_seconds=0.2, retry_backoff_max_seconds=1.0)


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=8) as executor:
        yield executor


def subscribers(queue: TaskQueue) -> int:
    return shard_subscribers(queue.redis, queue.keys.channel)


def until(condition: Callable[[], bool], what: str) -> None:
    """Wait for another thread to reach a state (a readiness check, not a timing assertion)."""
    deadline = time.monotonic() + 10
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.005)


def drops_closed_subscriptions(backend: str, client_kind: str) -> bool:
    """Whether a closed waiter's subscription disappears from PUBSUB SHARDNUMSUB.

    Not with fakeredis' asyncio client: closing a ``FakeAsyncRedis`` connection (as redis-py's
    ``PubSub.aclose`` does) leaves its fake socket subscribed on the ``FakeServer``. Real Redis
    drops the subscriptions of a closed connection, for both clients.
    """
    return not (backend == "fakeredis" and client_kind == "async")


def waiting(pool: ThreadPoolExecutor, queue: TaskQueue, agent: str) -> Future[Claim | None]:
    return pool.submit(queue.claim_next, agent, wait=LONG_WAIT)


def claimed_by(queue: TaskQueue, task_id: str) -> list[str]:
    return [
        e.agent_id or "" for e in queue.events() if e.type == "claimed" and e.task_id == task_id
    ]


def test_waiting_agent_woken_by_completion_claims_unblocked_task(
    queue: TaskQueue, pool: ThreadPoolExecutor, backend: str, client_kind: str
) -> None:
    queue.submit(chain_plan(2))
    first = queue.claim_next("a1")
    assert first is not None
    waiter = waiting(pool, queue, "a2")
    until(lambda: subscribers(queue) == 1, "the waiter to subscribe")
    assert not waiter.done()  # t1 is blocked: the waiter has nothing yet

    completion = queue.complete("t0", "a1", first.token)

    assert completion.unblocked == ["t1"]
    claim = waiter.result(timeout=LONG_WAIT)
    assert claim is not None
    assert (claim.task_id, claim.task.agent_id) == ("t1", "a2")
    assert claimed_by(queue, "t1") == ["a2"]
    if drops_closed_subscriptions(backend, client_kind):
        until(lambda: subscribers(queue) == 0, "the waiter to unsubscribe")


def test_five_waiters_one_ready_task_exactly_one_claims(
    queue: TaskQueue, pool: ThreadPoolExecutor
) -> None:
    queue.submit(
        {
            "tasks": [
                {"id": "gate", "title": "G"},
                {"id": "prize", "title": "P", "dependencies": ["gate"]},
            ]
        }
    )
    gate = queue.claim("gate", "op").claim
    assert gate is not None
    waiters = [waiting(pool, queue, f"w{i}") for i in range(5)]
    until(lambda: subscribers(queue) == 5, "five waiters to subscribe")

    queue.complete("gate", "op", gate.token)

    done, pending = wait(waiters, timeout=LONG_WAIT, return_when=FIRST_COMPLETED)
    assert len(done) == 1
    winner = done.pop().result()
    assert winner is not None and winner.task_id == "prize"
    assert len(pending) == 4  # the others went back to waiting ...
    assert claimed_by(queue, "prize") == [winner.task.agent_id]

    queue.submit({"tasks": [{"id": f"more{i}", "title": "M"} for i in range(4)]})

    others = [f.result(timeout=LONG_WAIT) for f in waiters]  # ... and get these
    got = sorted(c.task_id for c in others if c is not None)
    assert got == ["more0", "more1", "more2", "more3", "prize"]
    assert len({c.task.agent_id for c in others if c is not None}) == 5


def test_ready_task_is_claimed_without_waiting(queue: TaskQueue) -> None:
    queue.submit(chain_plan(1))
    claim = queue.claim_next("a1", wait=LONG_WAIT)
    assert claim is not None and claim.task_id == "t0"
    assert subscribers(queue) == 0  # the fast path never subscribed


def test_wait_runs_out_with_none(queue: TaskQueue, backend: str, client_kind: str) -> None:
    assert queue.claim_next("a1", wait=0.2) is None
    if drops_closed_subscriptions(backend, client_kind):
        until(lambda: subscribers(queue) == 0, "the waiter to unsubscribe")
    assert queue.claim_next("a1", wait=0) is None


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf")])
def test_wait_must_be_finite_and_not_negative(queue: TaskQueue, bad: float) -> None:
    with pytest.raises(ValidationError):
        queue.claim_next("a1", wait=bad)


def test_waiter_wakes_when_retry_backoff_ends(queue: TaskQueue, pool: ThreadPoolExecutor) -> None:
    # No event is published when a backoff ends: the waiter learns next_due from the "failed"
    # event's re-check and wakes then by itself.
    queue.submit(chain_plan(1))
    held = queue.claim_next("a1")
    assert held is not None
    waiter = waiting(pool, queue, "a2")
    until(lambda: subscribers(queue) == 1, "the waiter to subscribe")

    outcome = queue.fail("t0", "a1", held.token, "flaky")

    assert outcome.will_retry
    claim = waiter.result(timeout=LONG_WAIT)
    assert claim is not None
    assert (claim.task_id, claim.task.attempts, claim.token) == ("t0", 2, 2)


def test_waiter_recovers_a_lease_that_runs_out(queue: TaskQueue, pool: ThreadPoolExecutor) -> None:
    queue.submit(chain_plan(1))
    assert queue.claim_next("a1", lease=0.3) is not None  # a1 then goes silent

    claim = waiting(pool, queue, "a2").result(timeout=LONG_WAIT)

    assert claim is not None
    assert (claim.task_id, claim.task.agent_id, claim.token) == ("t0", "a2", 2)
    assert [e.type for e in queue.events()][-2:] == ["expired", "claimed"]


def test_waiter_hears_a_claim_whose_lease_ends_first(
    queue: TaskQueue, pool: ThreadPoolExecutor
) -> None:
    # The waiter starts with nothing due; a later short claim must become its next_due.
    queue.submit(
        {
            "tasks": [
                {"id": "gate", "title": "G"},
                {"id": "x", "title": "X", "dependencies": ["gate"]},
            ]
        }
    )
    gate = queue.claim("gate", "op").claim
    assert gate is not None
    waiter = waiting(pool, queue, "a2")
    until(lambda: subscribers(queue) == 1, "the waiter to subscribe")
    # "op" finishes gate and at once claims x with a short lease (two scripts; the waiter
    # may win x in between, which is also correct).
    queue.complete("gate", "op", gate.token)
    queue.claim("x", "op", lease=0.3)

    claim = waiter.result(timeout=LONG_WAIT)

    assert claim is not None and claim.task_id == "x" and claim.task.agent_id == "a2"


# -- the decisions, without I/O --------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def message(kind: str, data: str = "") -> dict[str, Any]:
    return {"type": kind, "channel": b"c", "pattern": None, "data": data.encode()}


def test_waiter_rechecks_on_subscribe_and_wake_events_only() -> None:
    assert is_wake(message("subscribe"))  # also after every reconnect
    assert is_wake(message("message", "1-0 completed t1"))
    assert is_wake(message("message", "1-0 claimed t1"))
    assert not is_wake(message("message", "1-0 started t1"))
    assert not is_wake(message("message", "1-0 heartbeat-lost t1"))
    assert not is_wake(message("pong"))


def test_waiter_blocks_until_due_or_deadline() -> None:
    clock = FakeClock()
    waiter = Waiter(10.0, clock)
    waiter.tried(None)
    assert waiter.block_for() == 10.0
    waiter.tried(2.0)
    block = waiter.block_for()
    assert block is not None and 2.0 < block < 2.1
    clock.now += 1
    waiter.heard(message("message", "1-0 started t1"))
    assert not waiter.recheck  # not due yet, not a wake event
    clock.now += 1.5
    waiter.heard(message("message", "1-0 started t1"))
    assert waiter.recheck  # due, even though a stream of other messages keeps arriving
    waiter.tried(None)
    waiter.heard(message("subscribe"))
    assert waiter.recheck
    clock.now += 10
    assert waiter.block_for() is None


# -- reconnects (real Redis only) -------------------------------------------------------------
# fakeredis cannot model a dropped pub/sub connection: after CLIENT KILL, the killed fake
# connection stays silently deaf (get_message returns None, never a ConnectionError) and later
# commands on it keep failing, so redis-py never reconnects. The re-check on reconnect is
# therefore exercised here on a real Redis, and its decision rule (a subscribe confirmation
# means "check again") above without I/O.


def _named_queue(
    kind: str, url: str, name: str, swarm: str, settings: Settings
) -> TaskQueue | BlockingAsyncQueue:
    if kind == "sync":
        client = redis.Redis.from_url(url, client_name=name, retry=Retry(ConstantBackoff(0.3), 5))
        return TaskQueue(client, swarm, settings=settings)

    def make() -> redis.asyncio.Redis:
        retry = AsyncRetry(ConstantBackoff(0.3), 5)
        return redis.asyncio.Redis.from_url(url, client_name=name, retry=retry)

    return BlockingAsyncQueue(make, redis.Redis.from_url(url), swarm, settings)


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_waiter_rechecks_after_its_connection_drops(
    real_redis_url: str, swarm: str, test_settings: Settings, kind: str, pool: ThreadPoolExecutor
) -> None:
    name = f"waiter-{uuid.uuid4().hex[:10]}"
    admin = TaskQueue(redis.Redis.from_url(real_redis_url), swarm, settings=test_settings)
    waiter_queue = _named_queue(kind, real_redis_url, name, swarm, test_settings)
    try:
        admin.submit(chain_plan(2))
        first = admin.claim_next("a1")
        assert first is not None
        waiter = pool.submit(waiter_queue.claim_next, "a2", wait=LONG_WAIT)
        until(lambda: subscribers(admin) == 1, "the waiter to subscribe")

        # Drop the waiter's connections; the completion is announced while it reconnects
        # (its retry waits 0.3 s), so only the re-check after re-subscribing can find t1.
        killed = [
            admin.redis.client_kill_filter(_id=client["id"])
            for client in admin.redis.client_list()
            if client.get("name") == name
        ]
        assert sum(killed) >= 1
        admin.complete("t0", "a1", first.token)

        claim = waiter.result(timeout=LONG_WAIT)
        assert claim is not None and claim.task_id == "t1"
    finally:
        if isinstance(waiter_queue, BlockingAsyncQueue):
            waiter_queue.close()
        else:
            waiter_queue.redis.close()
        delete_swarm(admin)
        admin.redis.close()
