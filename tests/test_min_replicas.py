"""``SWARMQUEUE_MIN_REPLICAS``: a state change returns once a replica has it, or says it did not.

A private master with a real replica (``redis-server --replicaof``): with ``min_replicas=1``
each claim and completion is on the replica by the time the call returns. With the replica
killed, the transition still happens and returns; the shortfall is reported on the client
(``shortfalls``), counted in the swarm's counters, and the CLI prints one warning line on stderr
and exits 0. fakeredis has no ``WAIT``: the same shortfall path, never an error.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from collections.abc import Iterator
from pathlib import Path

import fakeredis
import pytest
import redis
from click.testing import CliRunner

from distributor.cli import main
from distributor.cli.app import CliContext
from distributor.settings import Settings
from distributor.store import counters
from distributor.store.connect import redis_from_url
from distributor.tasks.aio import AsyncTaskQueue
from distributor.tasks.queue import TaskQueue
from tests.redis_server import RedisServer

PLAN = {"tasks": [{"id": "a", "title": "A"}, {"id": "b", "title": "B", "dependencies": ["a"]}]}
FAST_SYNC = ("--repl-diskless-sync-delay", "0")


class Replicated:
    """A private master and one replica of it, in a temporary folder."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="sq-test-replica-"))
        self.master = RedisServer(self.folder / "master", *FAST_SYNC)
        self.replica = RedisServer(
            self.folder / "replica", *FAST_SYNC, "--replicaof", "127.0.0.1", str(self.master.port)
        )

    def start(self) -> Replicated:
        self.master.start()
        self.replica.start()
        with redis.Redis(port=self.master.port) as master:
            for _ in range(200):
                if master.info("replication").get("connected_slaves") == 1:
                    replica = master.info("replication")["slave0"]
                    if replica.get("state") == "online":
                        return self
                master.execute_command("WAIT", 1, 50)
        raise AssertionError("the replica did not come online")

    def close(self) -> None:
        self.replica.kill()
        self.master.kill()


@pytest.fixture
def replicated() -> Iterator[Replicated]:
    pair = Replicated().start()
    yield pair
    pair.close()


def durable(timeout_ms: int = 5000) -> Settings:
    return Settings(swarm="durable", min_replicas=1, min_replicas_timeout_ms=timeout_ms)


def test_each_state_change_is_on_the_replica_when_it_returns(replicated: Replicated) -> None:
    queue = TaskQueue(redis_from_url(replicated.master.url, 1), settings=durable())
    replica = redis.Redis(port=replicated.replica.port, decode_responses=True)
    queue.submit(PLAN)
    claim = queue.claim_next("agent-1")
    assert claim is not None
    # no waiting here: WAIT already held the reply until the replica had the claim
    assert replica.hget(queue.keys.task("a"), "status") == "claimed"
    assert queue.last_replication is not None and queue.last_replication.ok
    assert queue.last_replication.acked == 1
    queue.complete("a", "agent-1", claim.token)
    assert replica.hget(queue.keys.task("a"), "status") == "completed"
    assert replica.hget(queue.keys.task("b"), "status") == "available"
    assert queue.shortfalls == []

    async def through_asyncio() -> int:
        settings = durable()
        async with AsyncTaskQueue.from_url(replicated.master.url, settings=settings) as aq:
            claim_b = await aq.claim_next("agent-2")
            assert claim_b is not None
            assert aq.last_replication is not None
            return aq.last_replication.acked

    assert asyncio.run(through_asyncio()) == 1
    assert replica.hget(queue.keys.task("b"), "status") == "claimed"
    replica.close()


def test_a_missing_replica_is_reported_never_an_error(replicated: Replicated) -> None:
    settings = durable(timeout_ms=200)
    queue = TaskQueue(redis_from_url(replicated.master.url, 1), settings=settings)
    queue.submit(PLAN)
    replicated.replica.kill()  # replication stops: no WAIT is answered by a replica now
    claim = queue.claim_next("agent-1")
    assert claim is not None and claim.task.id == "a"  # the transition happened
    # the claim's script, and any script of the same call that wrote after the replica died
    shortfall = queue.shortfalls[-1]
    assert (shortfall.script, shortfall.wanted, shortfall.acked) == ("claim_next", 1, 0)
    seen = counters.read(queue.redis, queue.keys)
    assert seen["under_replicated"] == len(queue.shortfalls)
    assert "claim_next: 0 of 1" in str(seen["under_replicated:last"])

    obj = CliContext(settings, TaskQueue(queue.redis, settings=settings))
    token = str(claim.token)
    done = CliRunner().invoke(main, ["done", "a", "--agent", "agent-1", "--token", token], obj=obj)
    assert done.exit_code == 0, done.output
    warnings = [line for line in done.stderr.splitlines() if line.startswith("swarmqueue: ")]
    assert warnings == [
        "swarmqueue: warning: under-replicated: complete: 0 of 1 replica(s) acknowledged it in"
        " time; it is applied on the master, but a failover now could lose it"
    ]
    assert queue.get("a").status.value == "completed"
    assert (
        json.loads(CliRunner().invoke(main, ["status", "--json"], obj=obj).stdout)["completed"] == 1
    )

    async def claim_b() -> int:
        async with AsyncTaskQueue.from_url(replicated.master.url, settings=settings) as aq:
            claim_b = await aq.claim_next("agent-2")
            assert claim_b is not None and claim_b.task.id == "b"
            return len(aq.shortfalls)

    before = counters.read(queue.redis, queue.keys)["under_replicated"]
    assert asyncio.run(claim_b()) == 1  # the asyncio client reports and counts it the same way
    assert counters.read(queue.redis, queue.keys)["under_replicated"] == int(before) + 1


def test_without_wait_support_the_change_stands_and_is_reported() -> None:
    """fakeredis (and an ACL without +wait) refuse WAIT: a shortfall, not an exit 4."""
    queue = TaskQueue(fakeredis.FakeRedis(), settings=durable())
    queue.submit(PLAN)
    claim = queue.claim_next("agent-1")
    assert claim is not None
    (shortfall,) = queue.shortfalls[-1:]
    assert shortfall.acked == 0 and "unknown command" in shortfall.error
