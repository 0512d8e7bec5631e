"""A private Sentinel deployment for tests: a master, a replica and three sentinels.

Everything runs on free loopback ports in one temporary folder and is stopped by PID (never the
shared Redis at 6379). The sentinels judge the master down after ``DOWN_AFTER_MS`` so a
failover completes in a few seconds, well inside ``settings.retry_budget_seconds``.
``redis-sentinel`` (Debian's package) is used when installed, else ``redis-server --sentinel``
(the same program). :attr:`SentinelSet.url` is what clients connect with.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Self

import redis

from distributor.demo.redis_source import free_port
from tests.redis_server import RedisServer, spawn_listening

SERVICE = "sq-test-master"
DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 5000
QUORUM = 2
_START_TIMEOUT = 20.0


class Sentinel:
    """One sentinel process monitoring ``SERVICE`` at ``master_port``."""

    def __init__(self, folder: Path, master_port: int) -> None:
        self.folder = folder
        self.port = free_port()
        folder.mkdir(parents=True, exist_ok=True)
        self.config = folder / "sentinel.conf"
        self.config.write_text(
            f"port {self.port}\nbind 127.0.0.1\ndir {folder}\n"
            f"sentinel monitor {SERVICE} 127.0.0.1 {master_port} {QUORUM}\n"
            f"sentinel down-after-milliseconds {SERVICE} {DOWN_AFTER_MS}\n"
            f"sentinel failover-timeout {SERVICE} {FAILOVER_TIMEOUT_MS}\n"
            f"sentinel parallel-syncs {SERVICE} 1\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Self:
        program = ["redis-sentinel"] if shutil.which("redis-sentinel") else ["redis-server"]
        mode = [] if program == ["redis-sentinel"] else ["--sentinel"]
        self.proc = spawn_listening(
            [*program, str(self.config), *mode],
            self.port,
            self.folder / "sentinel.log",
            "sentinel",
            _START_TIMEOUT,
        )
        return self

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.kill()
        self.proc.wait()
        self.proc = None

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=5, decode_responses=True)


class SentinelSet:
    """Master + replica + 3 sentinels in ``folder``; :meth:`close` stops all of them."""

    def __init__(self, folder: Path, sentinels: int = 3, *, for_failover: bool = True) -> None:
        self.folder = folder
        # a failover needs the sentinels to know each other (a few seconds of gossip); clients
        # only need one sentinel that knows the master
        self.for_failover = for_failover
        fast = ("--repl-diskless-sync-delay", "0")  # a replica syncs at once, not after 5 s
        self.master = RedisServer(folder / "master", *fast)
        self.replica = RedisServer(
            folder / "replica", *fast, "--replicaof", "127.0.0.1", str(self.master.port)
        )
        self.sentinels = [
            Sentinel(folder / f"sentinel-{i}", self.master.port) for i in range(sentinels)
        ]

    @property
    def url(self) -> str:
        nodes = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        return f"redis+sentinel://{nodes}/{SERVICE}/0"

    @property
    def servers(self) -> list[RedisServer]:
        return [self.master, self.replica]

    def start(self) -> Self:
        self.master.start()
        self.replica.start()
        for sentinel in self.sentinels:
            sentinel.start()
        self.wait_until(self._ready, "sentinels did not see the master, its replica and each other")
        return self

    def _ready(self) -> bool:
        for sentinel in self.sentinels:
            with sentinel.client() as client:
                replicas = client.execute_command("SENTINEL", "REPLICAS", SERVICE)
                peers = client.execute_command("SENTINEL", "SENTINELS", SERVICE)
            if (
                not any("s_down" not in str(r) for r in replicas)
                or len(peers) < len(self.sentinels) - 1
            ):
                return False
        with redis.Redis(port=self.replica.port) as replica:
            info = replica.info("replication")
        return bool(info.get("master_link_status") == "up")

    def master_port(self, sentinel: int = 0) -> int:
        """The master's port as the ``sentinel``-th sentinel sees it now."""
        with self.sentinels[sentinel].client() as client:
            _, port = client.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", SERVICE)
        return int(port)

    def wait_until(self, done: object, what: str, timeout: float = _START_TIMEOUT) -> None:
        assert callable(done)
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(redis.RedisError):
                if done():
                    return
            if time.monotonic() > deadline:
                raise AssertionError(what)
            time.sleep(0.1)

    def close(self) -> None:
        for sentinel in self.sentinels:
            sentinel.stop()
        for server in self.servers:
            server.kill()
        shutil.rmtree(self.folder, ignore_errors=True)


@contextlib.contextmanager
def sentinel_set(*, for_failover: bool = True) -> Iterator[SentinelSet]:
    """A started :class:`SentinelSet`, stopped and removed afterwards; ``for_failover=False``
    returns before the sentinels have found each other (enough for clients, not failovers)."""
    folder = Path(tempfile.mkdtemp(prefix="sq-test-sentinel-"))
    deployment = SentinelSet(folder, for_failover=for_failover)
    try:
        yield deployment.start()
    finally:
        deployment.close()
