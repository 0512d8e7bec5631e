"""Each URL scheme builds its kind of client, sync and asyncio, with the same retries and timeouts.

One Redis, TLS and a unix socket are checked on the clients' settings; Sentinel against a private
master + replica + 3 sentinels (``tests/redis_sentinel.py``): the task queue, the asyncio queue,
the CLI, and RQ (enqueue and a worker) on the Sentinel master; a Redis Cluster against the
loopback cluster (``tests/redis_cluster.py``). Both are under marker ``cluster`` (they start
servers); URL parsing and client construction run in the default suite.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator, Mapping

import pytest
import redis
import redis.asyncio
import redis.asyncio.sentinel
import redis.cluster
import redis.sentinel
from click.testing import CliRunner

from distributor.cli import main
from distributor.demo.redis_source import wait_for_redis
from distributor.messaging.agents import AgentRegistry
from distributor.messaging.broker import broker_client
from distributor.messaging.messages import Messenger
from distributor.settings import Settings
from distributor.store import counters
from distributor.store.client import block_limit
from distributor.store.connect import (
    AsyncSentinelTlsConnection,
    AsyncTlsConnection,
    ConnectionRetry,
    SentinelTlsConnection,
    TlsConnection,
    async_redis_from_url,
    is_cluster,
    parse_redis_url,
    redis_from_url,
)
from distributor.store.sentinel import AsyncEpochSentinel, EpochSentinel, newest_master
from distributor.tasks.aio import AsyncTaskQueue
from distributor.tasks.queue import TaskQueue
from distributor.testing import delete_swarm
from tests.messaging_support import delete_rq_keys, messaging_settings, unique_host
from tests.redis_cluster import LoopbackCluster, redis_cluster  # noqa: F401  (fixture)
from tests.redis_sentinel import SentinelSet, sentinel_set

PLAN = {"tasks": [{"id": "a", "title": "A"}, {"id": "b", "title": "B", "dependencies": ["a"]}]}


def test_parsed_targets_name_nodes_service_and_credentials() -> None:
    target = parse_redis_url("redis+sentinel://u:p%40ss@s1:1,[::1]/svc/2?sentinel_password=sp")
    assert (target.kind, target.tls, target.service) == ("sentinel", False, "svc")
    assert target.nodes == (("s1", 1), ("::1", 26379))
    assert target.node_options == {"username": "u", "password": "p@ss", "db": 2}
    assert target.sentinel_options == {"sentinel_password": "sp"}
    cluster = parse_redis_url("rediss+cluster://n1,n2:7001/0?ssl_cert_reqs=none")
    assert (cluster.kind, cluster.tls, cluster.nodes) == (
        "cluster",
        True,
        (("n1", 6379), ("n2", 7001)),
    )
    assert cluster.options == {"ssl_cert_reqs": "none"}
    assert parse_redis_url("unix:///run/r.sock?db=1").kind == "redis"


def test_one_redis_tls_and_unix_clients() -> None:
    plain = redis_from_url("redis://127.0.0.1:6379/0?socket_timeout=4", 2)
    assert isinstance(plain, redis.Redis) and not is_cluster(plain)
    kwargs = plain.get_connection_kwargs()
    assert kwargs["socket_timeout"] == 4.0 and kwargs["socket_connect_timeout"] == 5.0
    assert isinstance(kwargs["retry"], ConnectionRetry)
    tls = redis_from_url("rediss://127.0.0.1:6380/0?ssl_cert_reqs=none", 1)
    assert isinstance(tls, redis.Redis)
    assert tls.connection_pool.connection_class is TlsConnection
    local = redis_from_url("unix:///run/redis.sock?db=3", 1)
    assert isinstance(local, redis.Redis)
    assert local.connection_pool.connection_class is redis.UnixDomainSocketConnection
    async_tls = async_redis_from_url("rediss://127.0.0.1:6380/0", 1)
    assert isinstance(async_tls, redis.asyncio.Redis)
    assert async_tls.connection_pool.connection_class is AsyncTlsConnection


def test_sentinel_clients_are_built_without_connecting() -> None:
    """Nothing listens at these ports: building the client must not connect."""
    url = "rediss+sentinel://:pw@127.0.0.1:1,127.0.0.1:2/svc/4?socket_timeout=3&sentinel_password=s"
    client = redis_from_url(url, 1)
    assert isinstance(client, redis.Redis)
    pool = client.connection_pool
    assert isinstance(pool, redis.sentinel.SentinelConnectionPool)
    assert pool.service_name == "svc" and pool.connection_class is SentinelTlsConnection
    assert pool.connection_kwargs["db"] == 4 and pool.connection_kwargs["password"] == "pw"
    assert block_limit(client) == pytest.approx(1.5)
    sentinels = pool.sentinel_manager.sentinels
    assert [s.get_connection_kwargs()["port"] for s in sentinels] == [1, 2]
    assert sentinels[0].get_connection_kwargs()["password"] == "s"
    assert isinstance(pool.sentinel_manager, EpochSentinel)
    aclient = async_redis_from_url(url, 1)
    assert isinstance(aclient, redis.asyncio.Redis)
    apool = aclient.connection_pool
    assert isinstance(apool, redis.asyncio.sentinel.SentinelConnectionPool)
    assert apool.connection_class is AsyncSentinelTlsConnection
    assert isinstance(apool.sentinel_manager, AsyncEpochSentinel)


def test_the_master_is_the_newest_healthy_answer() -> None:
    """A sentinel that missed a failover (older epoch) loses to one that saw it."""

    def state(port: int, epoch: int, healthy: bool = True) -> dict[str, object]:
        return {"ip": "127.0.0.1", "port": port, "config-epoch": epoch, "healthy": healthy}

    def ok(s: Mapping[str, object]) -> bool:
        return bool(s["healthy"])

    stale, fresh = state(1, 3), state(2, 4)
    assert newest_master([stale, None, fresh], ok) == fresh
    assert newest_master([fresh, stale], ok) == fresh
    assert newest_master([stale, state(3, 9, healthy=False)], ok) == stale
    assert newest_master([None, state(3, 9, healthy=False)], ok) is None


@pytest.fixture(scope="module")
def sentinels() -> Iterator[SentinelSet]:
    with sentinel_set(for_failover=False) as deployment:
        yield deployment


@pytest.fixture
def sentinel_queue(sentinels: SentinelSet) -> Iterator[TaskQueue]:
    queue = TaskQueue.from_url(sentinels.url, f"test-sentinel-{unique_host()[10:]}")
    yield queue
    delete_swarm(queue)
    queue.redis.close()


@pytest.mark.cluster  # a private Sentinel: a few seconds to start
def test_sentinel_url_reaches_the_master_sync_and_async(
    sentinels: SentinelSet, sentinel_queue: TaskQueue
) -> None:
    assert isinstance(sentinel_queue.redis, redis.Redis)
    pool = sentinel_queue.redis.connection_pool
    assert isinstance(pool, redis.sentinel.SentinelConnectionPool)
    assert pool.get_master_address() == ("127.0.0.1", sentinels.master.port)  # type: ignore[no-untyped-call]
    sentinel_queue.submit(PLAN)
    claim = sentinel_queue.claim_next("agent-1")
    assert claim is not None and claim.task.id == "a"

    async def finish() -> list[str]:
        async with AsyncTaskQueue.from_url(sentinels.url, sentinel_queue.swarm) as aq:
            done = await aq.complete("a", "agent-1", claim.token)
            return done.unblocked

    assert asyncio.run(finish()) == ["b"]
    with redis.Redis(port=sentinels.replica.port) as replica:  # replicated, so readable there
        sentinels.wait_until(lambda: replica.exists(sentinel_queue.keys.task("b")), "replication")


@pytest.mark.cluster  # a private Sentinel: a few seconds to start
def test_cli_on_a_sentinel_url(
    sentinels: SentinelSet, sentinel_queue: TaskQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SWARMQUEUE_REDIS_URL", sentinels.url)
    monkeypatch.setenv("SWARMQUEUE_SWARM", sentinel_queue.swarm)
    runner = CliRunner()
    submitted = runner.invoke(main, ["plan", "submit", "-"], input=json.dumps(PLAN))
    assert submitted.exit_code == 0, submitted.output
    status = runner.invoke(main, ["status", "--json"])
    assert status.exit_code == 0, status.output
    assert json.loads(status.stdout)["total"] == 2
    wait_for_redis(sentinels.url, timeout=5)  # the demo's probe takes the same URL


@pytest.mark.cluster  # a private Sentinel: a few seconds to start
def test_rq_delivers_through_the_sentinel_master(
    sentinels: SentinelSet, sentinel_queue: TaskQueue
) -> None:
    """The broker is the Sentinel's master client: a broadcast's job is enqueued there, and a
    worker built on that client runs it, recording each recipient's outcome in the store."""
    from workers.worker import run_worker

    host = unique_host()
    settings = messaging_settings(sentinel_queue.swarm, host, redis_url=sentinels.url)
    store = sentinel_queue.redis
    broker = broker_client(settings, store)
    assert broker is store  # the store is one (Sentinel-managed) Redis: it is the broker too
    AgentRegistry(store, sentinel_queue.swarm, settings=settings).register(
        "agent-1", "%1", socket="/nonexistent/tmux-socket", host=host
    )
    messenger = Messenger.from_url(settings=settings)
    try:
        message_id = messenger.broadcast("hello over sentinel")
        assert run_worker(settings, host, burst=True)
        (delivery,) = messenger.get(message_id).deliveries
        assert delivery.status.value == "failed" and delivery.reason == "server_not_found"
    finally:
        delete_rq_keys(broker, host)


@pytest.mark.cluster
def test_cluster_url_builds_cluster_clients(redis_cluster: LoopbackCluster) -> None:  # noqa: F811
    client = redis_from_url(redis_cluster.url, 1)
    assert isinstance(client, redis.cluster.RedisCluster) and is_cluster(client)
    masters = {n.port for n in redis_cluster.masters()}
    assert masters <= {n.port for n in client.get_nodes()} <= {n.port for n in redis_cluster.nodes}  # type: ignore[no-untyped-call]
    queue = TaskQueue(client, f"test-cluster-{unique_host()[10:]}")
    try:
        queue.submit(PLAN)
        claim = queue.claim_next("agent-1")
        assert claim is not None and claim.task.id == "a"

        async def finish() -> list[str]:
            async with AsyncTaskQueue.from_url(redis_cluster.url, queue.swarm) as aq:
                assert isinstance(aq.redis, redis.asyncio.RedisCluster)
                return (await aq.complete("a", "agent-1", claim.token)).unblocked

        assert asyncio.run(finish()) == ["b"]
    finally:
        delete_swarm(queue)
        client.close()


@pytest.mark.cluster
def test_min_replicas_on_a_cluster_waits_on_the_slot_owner(
    redis_cluster: LoopbackCluster,  # noqa: F811
) -> None:
    """WAIT goes to the master that owns the swarm's slot, on the script's connection."""
    client = redis_from_url(redis_cluster.url, 1)
    settings = Settings(min_replicas=1, min_replicas_timeout_ms=5000)
    queue = TaskQueue(client, f"test-cluster-{unique_host()[10:]}", settings=settings)
    try:
        queue.submit(PLAN)
        assert queue.claim_next("agent-1") is not None
        assert queue.last_replication is not None
        assert (queue.last_replication.script, queue.last_replication.acked) == ("claim_next", 1)
        assert queue.shortfalls == []
    finally:
        delete_swarm(queue)
        client.close()


@pytest.mark.cluster
def test_cluster_store_with_a_plain_broker_through_the_cli(
    redis_cluster: LoopbackCluster,  # noqa: F811
    real_redis_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The README's cluster deployment: the store on redis+cluster://, RQ on one Redis."""
    swarm, host = f"test-cluster-{unique_host()[10:]}", unique_host()
    monkeypatch.setenv("SWARMQUEUE_REDIS_URL", redis_cluster.url)
    monkeypatch.setenv("SWARMQUEUE_DELIVERY_REDIS_URL", real_redis_url)
    monkeypatch.setenv("SWARMQUEUE_SWARM", swarm)
    monkeypatch.setenv("SWARMQUEUE_HOST", host)
    from workers.worker import run_worker

    settings = Settings()
    queue = TaskQueue.from_url(settings=settings)
    broker = broker_client(settings, queue.redis)
    AgentRegistry(queue.redis, swarm, settings=settings).register(
        "agent-1", "%1", socket="/nonexistent/tmux-socket", host=host
    )
    try:
        runner = CliRunner()
        submitted = runner.invoke(main, ["plan", "submit", "-"], input=json.dumps(PLAN))
        assert submitted.exit_code == 0, submitted.output
        assert "enqueue failed" not in submitted.stderr
        claimed = runner.invoke(main, ["next", "--agent", "agent-1", "--json"])
        assert claimed.exit_code == 0, claimed.output
        assert queue.get("a").status.value in ("claimed", "in_progress")
        # the worker: RQ on the broker, the job opens the cluster store by its URL
        assert run_worker(settings, host, burst=True)
        assert counters.read(queue.redis, queue.keys)["enqueue_failed"] == 0
        listed = runner.invoke(main, ["deliveries", "--pending", "--json"])
        assert listed.exit_code == 0, listed.output
        assert json.loads(listed.stdout) == []  # every message's recipient has its outcome
    finally:
        delete_swarm(queue)
        delete_rq_keys(broker, host)
