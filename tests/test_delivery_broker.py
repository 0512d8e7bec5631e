"""A committed transition is never reported as failed, whatever the delivery broker does.

The store holds the transition; the announcement that follows goes through the delivery broker
(RQ). With a broker at a closed port, or one that refuses RQ's commands, ``plan submit``,
``next`` and ``done`` still answer with the transition's result and exit 0; the failures are
logged with their reason and counted in the swarm's ``counters`` hash.
"""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from distributor.cli import main
from distributor.cli.app import CliContext
from distributor.errors import DeliveryBrokerRequired
from distributor.messaging.agents import AgentRegistry
from distributor.messaging.broker import broker_client, delivery_url
from distributor.messaging.messages import Messenger
from distributor.planning.announce import Announcer
from distributor.settings import Settings
from distributor.store import counters
from distributor.tasks.queue import TaskQueue
from distributor.testing import delete_swarm
from tests.messaging_support import delete_rq_keys, messaging_settings, unique_host
from tests.private_redis import PrivateRedis, one_line_error, private_redis, run_cli

PLAN = {"tasks": [{"id": "a", "title": "A"}, {"id": "b", "title": "B", "dependencies": ["a"]}]}
# A broker that answers but refuses every command RQ needs (an ACL without them).
REFUSING = [
    "--port",
    "{port}",
    "--user",
    "default",
    "on",
    "nopass",
    "~*",
    "-@all",
    "+ping",
    "+hello",
]


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def refusing_broker() -> Iterator[PrivateRedis]:
    with private_redis(REFUSING) as server:
        yield server


@pytest.fixture(params=["closed port", "refusing"])
def broker_url(request: pytest.FixtureRequest) -> str:
    if request.param == "closed port":
        return f"redis://127.0.0.1:{closed_port()}/0"
    return str(request.getfixturevalue("refusing_broker").url)


@pytest.fixture
def host(sync_queue: TaskQueue) -> Iterator[str]:
    name = unique_host()
    yield name
    delete_rq_keys(sync_queue.redis, name)


def registered(queue: TaskQueue, host: str, broker: str) -> Settings:
    """Settings of the test's swarm with two agents on ``host`` and deliveries via ``broker``."""
    settings = messaging_settings(queue.swarm, host, delivery_redis_url=broker, redis_retries=0)
    registry = AgentRegistry(queue.redis, queue.swarm, settings=settings)
    for n in (1, 2):
        registry.register(f"agent-{n}", f"%{n}", host=host)
    return settings


def test_cli_transitions_exit_0_with_a_broken_broker(
    sync_queue: TaskQueue, host: str, broker_url: str
) -> None:
    settings = registered(sync_queue, host, broker_url)
    obj = CliContext(settings, sync_queue)
    runner = CliRunner()
    plan = json.dumps(PLAN)
    submitted = runner.invoke(main, ["plan", "submit", "-"], obj=obj, input=plan)
    claimed = runner.invoke(main, ["next", "--agent", "agent-1", "--json"], obj=obj)
    token = str(json.loads(claimed.stdout)["token"])
    done = runner.invoke(main, ["done", "a", "--agent", "agent-1", "--token", token], obj=obj)
    for result in (submitted, claimed, done):
        assert result.exit_code == 0, result.output
        assert "Traceback" not in result.stderr
        failed = [json.loads(line) for line in result.stderr.splitlines() if "enqueue" in line]
        assert [f["event"] for f in failed] == [
            "delivery enqueue failed; a worker's sweep dispatches it"
        ]
        assert failed[0]["reason"] in ("RedisUnavailable", "NoPermissionError")
    assert sync_queue.get("a").status.value == "completed"
    assert sync_queue.get("b").status.value == "available"
    seen = counters.read(sync_queue.redis, sync_queue.keys)
    assert seen["enqueue_failed"] == 3 and seen["announce_failed"] == 0
    assert str(seen["enqueue_failed:last"]).split(":")[0] in (
        "RedisUnavailable",
        "NoPermissionError",
    )


def test_announcer_counts_errors_that_are_no_redis_errors(
    sync_queue: TaskQueue, host: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cluster client's own errors (RedisClusterException is no RedisError) are counted too,
    in the announcer and in the swarm's counters, and the caller gets None (not an error)."""
    from redis.exceptions import RedisClusterException

    settings = registered(sync_queue, host, "")
    announcer = Announcer.on(sync_queue.redis, sync_queue.swarm, settings)

    def cluster_down(*args: object, **kwargs: object) -> str:
        raise RedisClusterException("Redis Cluster cannot be connected")

    monkeypatch.setattr(Messenger, "broadcast", cluster_down)
    sync_queue.submit(PLAN)
    claim = sync_queue.claim_next("agent-1")
    assert claim is not None
    assert announcer.claimed(claim.task) is None
    assert announcer.failures == {"RedisClusterException": 1}
    seen = counters.read(sync_queue.redis, sync_queue.keys)
    assert seen["announce_failed"] == 1
    assert "cannot be connected" in str(seen["announce_failed:last"])


def test_delivery_url_defaults_and_refusals() -> None:
    plain = Settings(redis_url="redis://h:6379/0")
    assert delivery_url(plain) == "redis://h:6379/0"
    sentinel = Settings(redis_url="redis+sentinel://s1,s2/m")
    assert delivery_url(sentinel) == "redis+sentinel://s1,s2/m"
    cluster = Settings(redis_url="redis+cluster://n1:7000")
    with pytest.raises(DeliveryBrokerRequired, match="set SWARMQUEUE_DELIVERY_REDIS_URL"):
        delivery_url(cluster)
    with pytest.raises(DeliveryBrokerRequired, match="store is a Redis Cluster"):
        broker_client(cluster)
    both = cluster.model_copy(update={"delivery_redis_url": "redis://b:6379/1"})
    assert delivery_url(both) == "redis://b:6379/1"
    twice = cluster.model_copy(update={"delivery_redis_url": "redis+cluster://n2:7000"})
    with pytest.raises(DeliveryBrokerRequired, match="is a Redis Cluster"):
        delivery_url(twice)


@pytest.mark.parametrize(
    ("env", "why"),
    [
        (
            {"SWARMQUEUE_REDIS_URL": "redis+cluster://127.0.0.1:7000"},
            "the store is a Redis Cluster",
        ),
        (
            {
                "SWARMQUEUE_REDIS_URL": "redis+cluster://127.0.0.1:7000",
                "SWARMQUEUE_DELIVERY_REDIS_URL": "redis+cluster://u:Secret-1@127.0.0.1:7001",
            },
            "is a Redis Cluster",
        ),
        ({"SWARMQUEUE_DELIVERY_REDIS_URL": "http://127.0.0.1:6379"}, "unsupported scheme"),
    ],
)
def test_cli_refuses_a_missing_or_cluster_broker_with_exit_2(
    env: dict[str, str], why: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(main, ["status"], catch_exceptions=False)
    assert result.exit_code == 2
    line = one_line_error(result.stderr)
    assert why in line and "Secret-1" not in line


@pytest.mark.long  # three CLI processes: several seconds on a loaded machine
def test_cli_processes_ride_over_a_closed_broker_port(
    real_redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same as a user runs it: separate processes, the broker at a closed port."""
    swarm, host = f"test-broker-{uuid.uuid4().hex[:10]}", unique_host()
    queue = TaskQueue.from_url(real_redis_url, swarm)
    AgentRegistry(queue.redis, swarm, settings=messaging_settings(swarm, host)).register(
        "agent-1", "%1", host=host
    )
    for name, value in {
        "SWARMQUEUE_REDIS_URL": real_redis_url,
        "SWARMQUEUE_SWARM": swarm,
        "SWARMQUEUE_HOST": host,
        "SWARMQUEUE_DELIVERY_REDIS_URL": f"redis://127.0.0.1:{closed_port()}/0",
        "SWARMQUEUE_STATE_DIR": str(tmp_path / "state"),
    }.items():
        monkeypatch.setenv(name, value)
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps(PLAN))
    try:
        submitted, _ = run_cli("plan", "submit", str(plan))
        claimed, _ = run_cli("next", "--agent", "agent-1", "--json")
        token = str(json.loads(claimed.stdout)["token"])
        done, _ = run_cli("done", "a", "--agent", "agent-1", "--token", token)
        for result in (submitted, claimed, done):
            assert result.returncode == 0, result.stderr
            assert "Traceback" not in result.stderr
            assert "delivery enqueue failed" in result.stderr  # logged, with its reason
        assert queue.get("a").status.value == "completed"
        assert counters.read(queue.redis, queue.keys)["enqueue_failed"] == 3
    finally:
        delete_swarm(queue)
        delete_rq_keys(queue.redis, host)


def test_a_separate_broker_carries_the_jobs_and_the_job_opens_the_store(
    real_redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Store and broker on two Redis servers: the job is queued on the broker only, and the
    worker's job records the outcome in the store it opened with the store URL."""
    from workers.worker import run_worker

    swarm, host = f"test-broker-{uuid.uuid4().hex[:10]}", unique_host()
    with private_redis() as broker_server:
        monkeypatch.setenv("SWARMQUEUE_REDIS_URL", real_redis_url)
        monkeypatch.setenv("SWARMQUEUE_DELIVERY_REDIS_URL", broker_server.url)
        settings = messaging_settings(swarm, host)
        queue = TaskQueue.from_url(settings=settings)
        AgentRegistry(queue.redis, swarm, settings=settings).register(
            "agent-1", "%1", socket="/nonexistent/tmux-socket", host=host
        )
        messenger = Messenger.from_url(settings=settings)
        try:
            assert messenger.broker is not None and messenger.broker is not queue.redis
            message_id = messenger.broadcast("via the broker")
            assert messenger.broker.keys(f"rq:job:*{message_id}*")  # queued on the broker
            assert queue.redis.keys(f"rq:*{message_id}*") == []  # and not in the store
            assert run_worker(settings, host, burst=True)
            (delivery,) = messenger.get(message_id).deliveries
            assert (delivery.status.value, delivery.reason) == ("failed", "server_not_found")
            assert counters.read(queue.redis, queue.keys)["enqueue_failed"] == 0
        finally:
            delete_swarm(queue)
            delete_rq_keys(queue.redis, host)
