"""Fixtures: every store test runs on fakeredis and on a real redis-server.

The real server is ``$SWARMQUEUE_TEST_REDIS_URL`` (scripts/test.sh sets it, starting a private
server when none answers). Each test uses its own swarm name and deletes only that swarm's keys.

``queue`` is also parametrized over the client: ``sync`` is a ``TaskQueue``; ``async`` is an
``AsyncTaskQueue`` behind a blocking facade (``tests/async_facade.py``), so one test body checks
both clients. ``sync_queue`` is always the sync client (the CLI's, via ``cli_obj``).

A test that leaves a redis-server or tmux server running fails (``leak_check``, see
``tests/processes.py``): each test gets its own ``$TMUX_TMPDIR``, so every tmux server it starts
can be found there, and ``tests.processes.tmux_socket()`` gives ``tmux -S`` users a path in it.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import fakeredis
import pytest
import redis
import redis.asyncio
from hypothesis import HealthCheck, settings

from distributor.cli.app import CliContext
from distributor.settings import Settings
from distributor.store.connect import SyncRedis
from distributor.tasks.queue import TaskQueue
from distributor.testing import delete_swarm
from tests.async_facade import BlockingAsyncQueue
from tests.processes import LeakCheck
from tests.redis_cluster import (
    async_cluster_client,
    cluster_client,
    redis_cluster,  # noqa: F401  (the session's loopback cluster)
    skip_if_not_on_cluster_yet,
)

settings.register_profile(
    "swarmqueue", max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("swarmqueue")

REAL_REDIS_URL = os.environ.get("SWARMQUEUE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
# "cluster": the session's loopback Redis Cluster (tests/redis_cluster.py), only with -m cluster.
BACKENDS = ["fakeredis", "redis", pytest.param("cluster", marks=pytest.mark.cluster)]
CLIENTS = ["sync", "async"]


@pytest.fixture(scope="session")
def real_redis_url() -> str:
    """URL of a real Redis; the suite fails (not skips) when none answers."""
    try:
        redis.Redis.from_url(REAL_REDIS_URL, socket_connect_timeout=2).ping()
    except redis.ConnectionError as exc:
        pytest.fail(
            f"no Redis answers at {REAL_REDIS_URL} ({exc}); run ./scripts/test.sh, "
            "which starts a private one, or set SWARMQUEUE_TEST_REDIS_URL"
        )
    return REAL_REDIS_URL


def make_client(backend: str, url: str, server: Any = None) -> redis.Redis:
    if backend == "fakeredis":
        client: redis.Redis = fakeredis.FakeRedis(server=server or fakeredis.FakeServer())
        return client
    if backend == "cluster":  # the Python API takes a cluster client where it takes a Redis
        return cast(redis.Redis, cluster_client(url))
    return redis.Redis.from_url(url)


def make_async_client(backend: str, url: str, server: Any = None) -> redis.asyncio.Redis:
    """An asyncio client; for fakeredis on ``server``, shared with a sync ``FakeRedis``."""
    if backend == "fakeredis":
        client: redis.asyncio.Redis = fakeredis.FakeAsyncRedis(server=server)
        return client
    if backend == "cluster":
        return cast(redis.asyncio.Redis, async_cluster_client(url))
    return redis.asyncio.Redis.from_url(url)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "cluster":
        skip_if_not_on_cluster_yet(request.node.nodeid)
        # what a worker of a cluster store has: the store's URL and a plain delivery broker
        # (delivery jobs run in the test's process read them from the environment)
        monkeypatch: pytest.MonkeyPatch = request.getfixturevalue("monkeypatch")
        monkeypatch.setenv("SWARMQUEUE_REDIS_URL", request.getfixturevalue("redis_cluster").url)
        broker = request.getfixturevalue("real_redis_url")
        monkeypatch.setenv("SWARMQUEUE_DELIVERY_REDIS_URL", broker)
    return str(request.param)


@pytest.fixture
def backend_url(backend: str, request: pytest.FixtureRequest) -> str:
    """The real Redis URL, the cluster's ``redis+cluster://`` URL, or '' for fakeredis."""
    if backend == "cluster":
        return str(request.getfixturevalue("redis_cluster").url)
    return str(request.getfixturevalue("real_redis_url")) if backend == "redis" else ""


@pytest.fixture
def fake_server(backend: str) -> Any:
    """The in-process server every fakeredis client of a test shares (None for real Redis)."""
    return fakeredis.FakeServer() if backend == "fakeredis" else None


@pytest.fixture
def redis_client(backend: str, backend_url: str, fake_server: Any) -> Iterator[redis.Redis]:
    client = make_client(backend, backend_url, fake_server)
    yield client
    client.close()


@pytest.fixture
def async_client_factory(
    backend: str, backend_url: str, fake_server: Any
) -> Callable[[], redis.asyncio.Redis]:
    """Makes asyncio clients on the test's server (call it inside the event loop that uses it)."""
    return lambda: make_async_client(backend, backend_url, fake_server)


@pytest.fixture
def swarm() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def test_settings() -> Settings:
    return Settings(retry_backoff_seconds=1.0, retry_backoff_max_seconds=8.0)


@pytest.fixture
def sync_queue(
    redis_client: redis.Redis, swarm: str, test_settings: Settings
) -> Iterator[TaskQueue]:
    q = TaskQueue(redis_client, swarm, settings=test_settings)
    yield q
    delete_swarm(q)


@pytest.fixture(params=CLIENTS)
def client_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def queue(
    client_kind: str,
    sync_queue: TaskQueue,
    async_client_factory: Callable[[], redis.asyncio.Redis],
) -> Iterator[TaskQueue]:
    """The test's swarm through the sync client, or through the asyncio one (same interface)."""
    if client_kind == "sync":
        yield sync_queue
        return
    facade = BlockingAsyncQueue(
        async_client_factory, sync_queue.redis, sync_queue.swarm, sync_queue.settings
    )
    try:
        yield cast(TaskQueue, facade)
    finally:
        facade.close()


@pytest.fixture
def cli_obj(sync_queue: TaskQueue) -> CliContext:
    """A CLI context bound to the test's swarm (pass as ``obj=`` to CliRunner.invoke)."""
    return CliContext(
        sync_queue.settings.model_copy(update={"swarm": sync_queue.swarm}), sync_queue
    )


_SESSION_CHECK = pytest.StashKey[LeakCheck]()


def pytest_sessionstart(session: pytest.Session) -> None:
    """Give the session a ``$TMUX_TMPDIR`` of its own (module fixtures' tmux servers land there)."""
    folder = Path(tempfile.mkdtemp(prefix="sqt-"))
    os.environ["TMUX_TMPDIR"] = str(folder)
    session.stash[_SESSION_CHECK] = LeakCheck(folder)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Fail the session if a redis-server or tmux server it started still runs."""
    check = session.stash.get(_SESSION_CHECK, None)
    if check is None:
        return
    left = check.leaks()
    if left:
        check.stop()
        print(
            "\nswarmqueue tests: left running at the end of the session (stopped now): "
            + "; ".join(left),
            file=sys.stderr,
        )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    shutil.rmtree(check.tmux_dir, ignore_errors=True)


@pytest.fixture(autouse=True)
def leak_check(monkeypatch: pytest.MonkeyPatch) -> Iterator[LeakCheck]:
    """Fail the test if it leaves a redis-server or tmux server running (then stop it)."""
    with LeakCheck.temporary() as check:
        monkeypatch.setenv("TMUX_TMPDIR", str(check.tmux_dir))
        yield check
        left = check.leaks()
        if left:
            check.stop()
            pytest.fail("the test left running (stopped now): " + "; ".join(left), pytrace=False)


@pytest.fixture(autouse=True)
def _state_dir(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the CLI's remembered tokens inside the test's tmp dir."""
    monkeypatch.setenv("SWARMQUEUE_STATE_DIR", str(tmp_path / "state"))


def chain_plan(n: int, prefix: str = "t") -> dict[str, Any]:
    """A plan of n tasks where each depends on the one before."""
    tasks: list[dict[str, Any]] = [{"id": f"{prefix}{i}", "title": f"Task {i}"} for i in range(n)]
    for i in range(1, n):
        tasks[i]["dependencies"] = [f"{prefix}{i - 1}"]
    return {"tasks": tasks}


def snapshot(client: SyncRedis, prefix: str) -> dict[str, Any]:
    """Every key under ``prefix`` with its type and content (to prove nothing changed)."""
    result: dict[str, Any] = {}
    for raw in client.scan_iter(match=prefix + "*"):
        key = raw.decode() if isinstance(raw, bytes) else raw
        kind = client.type(key)
        kind = kind.decode() if isinstance(kind, bytes) else kind
        readers: dict[str, Callable[[str], Any]] = {
            "string": client.get,
            "hash": client.hgetall,
            "set": lambda k: sorted(client.smembers(k)),
            "zset": lambda k: client.zrange(k, 0, -1, withscores=True),
            "stream": client.xrange,
            "list": lambda k: client.lrange(k, 0, -1),
        }
        result[key] = (kind, readers[kind](key))
    return result
