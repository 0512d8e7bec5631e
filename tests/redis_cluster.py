"""A private loopback Redis Cluster for tests: 3 masters + 3 replicas from Debian's redis-server.

Every node is a child ``redis-server`` (see :mod:`tests.redis_server`) on a free port with its
cluster bus on a second free port (``cluster-port``), each in its own folder under one temporary
directory. ``redis-cli --cluster create ... --cluster-replicas 1 --cluster-yes`` joins them;
:meth:`LoopbackCluster.start` returns once every node reports ``cluster_state:ok``, all 16384
slots are covered, every node knows every other one and every replica's link to its master is
up. Nothing is kept on disk after :meth:`LoopbackCluster.close`.

Use the session fixture ``redis_cluster`` for tests that leave the cluster as they found it
(they may move slots; they must not kill nodes). Tests that kill or restart nodes start their own
with :func:`loopback_cluster` (a restarted node is a new child process, which the per-test leak
check would otherwise count against the test that owns the shared cluster's first use).
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Self

import pytest
import redis
import redis.asyncio.cluster
import redis.cluster

from distributor.demo.redis_source import free_port
from tests.processes import FIXTURE_PIDS
from tests.redis_server import RedisServer

HOST = "127.0.0.1"
SLOTS = 16384
_READY_TIMEOUT = 60.0


class ClusterNode(RedisServer):
    """One cluster node: ``redis-server`` in cluster mode on ``port`` (bus on ``bus_port``)."""

    def __init__(self, folder: Path, node_timeout_ms: int) -> None:
        port, bus_port = free_port(), free_port()
        while bus_port == port:
            bus_port = free_port()
        super().__init__(
            folder,
            "--cluster-enabled", "yes",
            "--cluster-config-file", "nodes.conf",
            "--cluster-node-timeout", str(node_timeout_ms),
            "--cluster-port", str(bus_port),
            port=port,
        )  # fmt: skip
        self.bus_port = bus_port

    @property
    def address(self) -> str:
        """``host:port``, as in ``CLUSTER NODES`` and ``redis+cluster://`` URLs."""
        return f"{HOST}:{self.port}"

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}"

    def client(self, **options: Any) -> redis.Redis:
        """A plain (non-cluster) client of this one node; close it after use."""
        return redis.Redis(host=HOST, port=self.port, socket_timeout=5, **options)

    def start(self) -> Self:
        """Start it; its pid is the fixture's to stop (see ``tests.processes.FIXTURE_PIDS``)."""
        super().start()
        assert self.proc is not None
        FIXTURE_PIDS.add(self.proc.pid)
        return self

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class LoopbackCluster:
    """A Redis Cluster of ``masters`` masters with ``replicas`` replicas each, on 127.0.0.1.

    ``nodes`` keep their order (the first ``masters`` are the masters ``redis-cli`` was given
    first; roles change after a failover: ask :meth:`masters`). ``url`` is the
    ``redis+cluster://host:port,...`` URL naming every node.
    """

    def __init__(
        self,
        masters: int = 3,
        replicas: int = 1,
        *,
        node_timeout_ms: int = 2000,
        folder: Path | None = None,
    ) -> None:
        self.folder = folder or Path(tempfile.mkdtemp(prefix="sq-test-cluster-"))
        self.nodes = [
            ClusterNode(self.folder / f"node{i}", node_timeout_ms)
            for i in range(masters * (1 + replicas))
        ]
        self.replicas = replicas

    # -- addresses ---------------------------------------------------------------------------

    @property
    def urls(self) -> list[str]:
        """``redis://host:port`` of every node."""
        return [node.url for node in self.nodes]

    @property
    def url(self) -> str:
        """``redis+cluster://host:port,host:port,...`` naming every node."""
        return "redis+cluster://" + ",".join(node.address for node in self.nodes)

    @property
    def startup_nodes(self) -> list[redis.cluster.ClusterNode]:
        return [
            redis.cluster.ClusterNode(HOST, node.port)  # type: ignore[no-untyped-call]
            for node in self.nodes
        ]

    def client(self, **options: Any) -> redis.cluster.RedisCluster:
        """A blocking cluster client seeded with every node (close it after use)."""
        return cluster_client(self.url, **options)

    def async_client(self, **options: Any) -> redis.asyncio.cluster.RedisCluster:
        """An asyncio cluster client (make it inside the event loop that uses it)."""
        return async_cluster_client(self.url, **options)

    # -- life cycle --------------------------------------------------------------------------

    def start(self) -> Self:
        """Start every node, create the cluster and wait until it serves every slot."""
        try:
            for node in self.nodes:
                node.start()
            created = subprocess.run(
                [
                    "redis-cli", "--cluster", "create",
                    *(node.address for node in self.nodes),
                    "--cluster-replicas", str(self.replicas),
                    "--cluster-yes",
                ],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=_READY_TIMEOUT,
                check=False,
            )  # fmt: skip
            if created.returncode != 0:
                raise AssertionError(f"redis-cli --cluster create failed: {created.stdout[-2000:]}")
            self.wait_ok()
        except BaseException:
            self.close()
            raise
        return self

    def wait_ok(self, timeout: float = _READY_TIMEOUT) -> None:
        """Return once every running node sees a healthy cluster that knows all running nodes.

        Healthy: ``cluster_state:ok``, every slot covered, and each replica's link to its master
        up (so a master killed next has a replica ready to take over).
        """
        running = [node for node in self.nodes if node.running]
        deadline = time.monotonic() + timeout
        problem: str | None = "not checked yet"
        while time.monotonic() < deadline:
            problem = self._problem(running)
            if problem is None:
                return
            time.sleep(0.1)
        raise AssertionError(f"the loopback cluster is not ready after {timeout:g}s: {problem}")

    def _problem(self, running: list[ClusterNode]) -> str | None:
        for node in running:
            try:
                with node.client() as client:
                    info = client.cluster("INFO")
                    role = client.info("replication")
            except redis.RedisError as exc:
                return f"{node.address}: {exc}"
            if info.get("cluster_state") != "ok":
                return f"{node.address}: cluster_state {info.get('cluster_state')}"
            if int(info.get("cluster_slots_ok", 0)) != SLOTS:
                return f"{node.address}: {info.get('cluster_slots_ok')} slots ok"
            if int(info.get("cluster_known_nodes", 0)) < len(running):
                return f"{node.address}: knows {info.get('cluster_known_nodes')} nodes"
            if role.get("role") == "slave" and role.get("master_link_status") != "up":
                return f"{node.address}: replica link {role.get('master_link_status')}"
        return None

    def close(self) -> None:
        """SIGKILL every node (nothing of theirs is kept) and remove the folder."""
        for node in self.nodes:
            node.kill()
        shutil.rmtree(self.folder, ignore_errors=True)

    # -- topology ----------------------------------------------------------------------------

    def _node_at(self, port: int) -> ClusterNode:
        for node in self.nodes:
            if node.port == port:
                return node
        raise KeyError(port)

    def _view(self) -> dict[str, dict[str, Any]]:
        """``CLUSTER NODES`` of the first running node, keyed by ``host:port``."""
        for node in self.nodes:
            if node.running:
                with node.client(decode_responses=True) as client:
                    nodes: dict[str, dict[str, Any]] = client.cluster("NODES")
                return {address.split("@")[0]: info for address, info in nodes.items()}
        raise AssertionError("no node of the loopback cluster is running")

    def masters(self) -> list[ClusterNode]:
        """The running nodes that are masters with slots now, in ``nodes`` order."""
        view = self._view()
        found = []
        for node in self.nodes:
            info = view.get(node.address)
            flags = info["flags"] if info else ""
            serving = bool(info and info["slots"]) and "fail" not in flags
            if node.running and serving and "master" in flags:
                found.append(node)
        return found

    def node_id(self, node: ClusterNode) -> str:
        with node.client(decode_responses=True) as client:
            return str(client.cluster("MYID"))

    def owner(self, key: str) -> ClusterNode:
        """The master that serves ``key``'s slot now."""
        slot = slot_of(key)
        for address, info in self._view().items():
            if "master" not in info["flags"] or "fail" in info["flags"]:
                continue
            for first_last in info["slots"]:
                first = int(first_last[0])
                last = int(first_last[1]) if len(first_last) > 1 else first
                if first <= slot <= last:
                    return self._node_at(int(address.rsplit(":", 1)[1]))
        raise AssertionError(f"no master serves slot {slot}")

    def kill(self, node: ClusterNode) -> None:
        """SIGKILL one node (as a crash: no shutdown, clients cut off mid-reply)."""
        node.kill()

    def restart(self, node: ClusterNode) -> None:
        """Start a killed node again on its port and folder (it rejoins from ``nodes.conf``)."""
        node.start()


def slot_of(key: str) -> int:
    """The hash slot of ``key`` (hash tags honoured), as the cluster computes it."""
    from redis.crc import key_slot

    return int(key_slot(key.encode()))


def _seeds(url: str) -> list[tuple[str, int]]:
    """``(host, port)`` of each node in a ``redis+cluster://host:port,...`` URL."""
    hosts = url.removeprefix("redis+cluster://").split("/", 1)[0]
    return [(host, int(port)) for host, port in (h.rsplit(":", 1) for h in hosts.split(","))]


def cluster_client(url: str, **options: Any) -> redis.cluster.RedisCluster:
    """A blocking cluster client for a ``redis+cluster://`` URL (until the product builds them)."""
    nodes = [redis.cluster.ClusterNode(h, p) for h, p in _seeds(url)]  # type: ignore[no-untyped-call]
    return redis.cluster.RedisCluster(startup_nodes=nodes, **options)


def async_cluster_client(url: str, **options: Any) -> redis.asyncio.cluster.RedisCluster:
    """The asyncio twin of :func:`cluster_client` (make it in the loop that uses it)."""
    nodes = [redis.asyncio.cluster.ClusterNode(h, p) for h, p in _seeds(url)]
    return redis.asyncio.cluster.RedisCluster(startup_nodes=nodes, **options)


# Store tests the ``cluster`` backend skips, with why.
_RQ = (
    "the test drives RQ or the sweep with the store's own client; on a cluster RQ needs a "
    "separate plain Redis "
    "(SWARMQUEUE_DELIVERY_REDIS_URL), which tests/test_connect.py::"
    "test_cluster_store_with_a_plain_broker_through_the_cli drives end to end"
)
NOT_ON_CLUSTER_YET = {
    "tests/test_broadcast.py::test_a_lost_enqueue_is_replaced_by_a_new_job": _RQ,
    "tests/test_broadcast.py::test_a_job_popped_by_a_dead_worker_or_finished_is_replaced": _RQ,
    "tests/test_broadcast.py::test_a_failed_enqueue_is_dispatched_by_the_sweep": _RQ,
    "tests/test_cli_messages.py::test_pending_deliveries_and_redispatch": _RQ,
    "tests/test_shell_safety.py::test_a_pane_that_became_a_shell_is_not_typed_into": _RQ,
    "tests/test_swarms.py::test_delete_removes_every_key_and_delivery_job_and_nothing_else": _RQ,
}


def skip_if_not_on_cluster_yet(nodeid: str) -> None:
    """Skip the test on the ``cluster`` backend when it is in :data:`NOT_ON_CLUSTER_YET`."""
    for prefix, reason in NOT_ON_CLUSTER_YET.items():
        if nodeid.startswith(prefix):
            pytest.skip(f"not on the cluster backend: {reason}")


def shard_subscribers(client: Any, channel: str) -> int:
    """``PUBSUB SHARDNUMSUB channel`` where the channel lives (a cluster client sends it to a
    random node otherwise, which counts only its own subscribers)."""
    if isinstance(client, redis.cluster.RedisCluster):
        node = client.get_node_from_key(channel)  # type: ignore[no-untyped-call]
        return int(client.pubsub_shardnumsub(channel, target_nodes=node)[0][1])
    return int(client.pubsub_shardnumsub(channel)[0][1])


async def shard_subscribers_async(client: Any, channel: str) -> int:
    """The asyncio twin of :func:`shard_subscribers`."""
    if isinstance(client, redis.asyncio.cluster.RedisCluster):
        await client.initialize()
        node = client.get_node_from_key(channel)
        return int((await client.pubsub_shardnumsub(channel, target_nodes=node))[0][1])
    return int((await client.pubsub_shardnumsub(channel))[0][1])


@contextlib.contextmanager
def loopback_cluster(
    masters: int = 3, replicas: int = 1, *, node_timeout_ms: int = 2000
) -> Iterator[LoopbackCluster]:
    """A cluster of its own for one test or module (kill nodes in it freely)."""
    cluster = LoopbackCluster(masters, replicas, node_timeout_ms=node_timeout_ms)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.close()


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[LoopbackCluster]:
    """The session's shared loopback cluster (3 masters + 3 replicas); never kill its nodes."""
    with loopback_cluster() as cluster:
        yield cluster
