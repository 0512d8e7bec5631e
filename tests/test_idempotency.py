"""A request whose reply is lost on the wire is retried by redis-py and applied only once."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import fakeredis
import pytest
import redis
from fakeredis._clients._sync import FakeRedisConnection
from redis.backoff import NoBackoff
from redis.retry import Retry

from distributor import TaskQueue, TaskStatus
from distributor.store.calls import text
from distributor.testing import delete_swarm


class DropReplyMixin:
    """Reads a reply of EVALSHA, then drops the connection as if the reply never arrived."""

    drops: ClassVar[list[int]] = [0]
    dropped: ClassVar[list[int]] = [0]
    _last: str = ""

    def send_command(self, *args: Any, **kwargs: Any) -> None:
        self._last = text(args[0]).upper() if args else ""
        super().send_command(*args, **kwargs)  # type: ignore[misc]

    def read_response(self, *args: Any, **kwargs: Any) -> Any:
        reply = super().read_response(*args, **kwargs)  # type: ignore[misc]
        if self._last == "EVALSHA" and self.drops[0] > 0:
            self.drops[0] -= 1
            self.dropped[0] += 1
            self.disconnect()  # type: ignore[attr-defined]
            raise redis.ConnectionError("reply lost (simulated)")
        return reply


class DropRealConnection(DropReplyMixin, redis.connection.Connection):
    pass


class DropFakeConnection(DropReplyMixin, FakeRedisConnection):
    pass


@pytest.fixture
def flaky_queue(backend: str, swarm: str, request: pytest.FixtureRequest) -> Iterator[TaskQueue]:
    retry: dict[str, Any] = {
        "retry": Retry(NoBackoff(), 3),
        "retry_on_error": [redis.ConnectionError],
    }
    client: redis.Redis
    if backend == "fakeredis":
        pool = redis.ConnectionPool(
            connection_class=DropFakeConnection,
            server=fakeredis.FakeServer(),
            version=(7, 4),
            server_type="redis",
            lua_modules=set(),
            client_class=fakeredis.FakeRedis,
            **retry,
        )
        client = fakeredis.FakeRedis(connection_pool=pool)
    else:
        url = request.getfixturevalue("real_redis_url")
        real_pool = redis.ConnectionPool.from_url(url, connection_class=DropRealConnection, **retry)
        client = redis.Redis(connection_pool=real_pool)
    DropReplyMixin.drops[0] = DropReplyMixin.dropped[0] = 0
    queue = TaskQueue(client, swarm)
    queue.submit({"tasks": [{"id": f"t{i}", "title": "T"} for i in range(3)]})
    yield queue
    DropReplyMixin.drops[0] = 0
    delete_swarm(queue)


def claimed_events(queue: TaskQueue) -> int:
    entries: Any = queue.redis.xrange(queue.keys.events)
    return sum(1 for _, fields in entries if fields[b"type"] == b"claimed")


def test_lost_claim_next_reply_claims_once(flaky_queue: TaskQueue) -> None:
    DropReplyMixin.drops[0] = 1
    claim = flaky_queue.claim_next("a1")
    assert DropReplyMixin.dropped[0] == 1  # the script ran, its reply was lost, redis-py retried
    assert claim is not None and claim.token == 1
    assert flaky_queue.progress()["claimed"] == 1
    assert claimed_events(flaky_queue) == 1
    assert flaky_queue.workload() == {"a1": [claim.task.id]}


def test_lost_claim_reply_claims_once(flaky_queue: TaskQueue) -> None:
    DropReplyMixin.drops[0] = 1
    result = flaky_queue.claim("t1", "a1")
    assert DropReplyMixin.dropped[0] == 1
    assert result.claimed and result.claim is not None and result.claim.token == 1
    assert claimed_events(flaky_queue) == 1


def test_lost_complete_reply_completes_once(flaky_queue: TaskQueue) -> None:
    claim = flaky_queue.claim_next("a1")
    assert claim is not None
    DropReplyMixin.drops[0] = 1
    done = flaky_queue.complete(claim.task.id, "a1", claim.token)  # no StaleClaim on the retry
    assert DropReplyMixin.dropped[0] == 1
    assert done.task.status == TaskStatus.COMPLETED
    assert flaky_queue.progress()["completed"] == 1


def test_same_request_id_replays_the_outcome(flaky_queue: TaskQueue) -> None:
    first = flaky_queue.claim_next("a1", request_id="req-1")
    again = flaky_queue.claim_next("a1", request_id="req-1")
    assert first is not None and again is not None
    assert (again.task.id, again.token) == (first.task.id, first.token)
    other = flaky_queue.claim_next("a1", request_id="req-2")
    assert other is not None and other.task.id != first.task.id
    outcome = flaky_queue.fail(first.task.id, "a1", first.token, "x", request_id="f-1")
    replay = flaky_queue.fail(first.task.id, "a1", first.token, "x", request_id="f-1")
    assert outcome == replay and outcome.task.attempts == 1
