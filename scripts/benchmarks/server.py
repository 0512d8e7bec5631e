"""A private ``redis-server`` for the benchmark: loopback only, no persistence, stopped by pid."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

import redis
import redis.cluster

from distributor.store.connect import SyncRedis, redis_from_url

START_TIMEOUT = 10.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def redis_version(url: str) -> str:
    """The ``redis_version`` the server at ``url`` reports."""
    client = redis_from_url(url, 1)  # any URL swarmqueue takes (Sentinel, cluster)
    try:
        info = client.info("server")
        if isinstance(client, redis.cluster.RedisCluster):  # one reply per node
            info = next(iter(info.values()))
        return str(info["redis_version"])
    finally:
        client.close()


def used_memory(client: SyncRedis) -> int:
    """``INFO memory`` ``used_memory`` in bytes."""
    return int(client.info("memory")["used_memory"])


class PrivateRedis:
    """``with PrivateRedis() as url:`` runs a throwaway redis-server on a free loopback port."""

    def __init__(self, *args: str) -> None:
        self._args = list(args)  # more redis-server options (a replica's --replicaof ...)
        self._dir = Path(tempfile.mkdtemp(prefix="sq-bench-redis-"))
        self._pid: int | None = None
        self.url = ""

    def __enter__(self) -> str:
        port = free_port()
        pidfile = self._dir / "redis.pid"
        subprocess.run(
            [
                "redis-server",
                "--port", str(port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                "--dir", str(self._dir),
                "--daemonize", "yes",
                "--pidfile", str(pidfile),
                "--logfile", str(self._dir / "redis.log"),
                *self._args,
            ],
            check=True,
            capture_output=True,
        )  # fmt: skip
        self.url = f"redis://127.0.0.1:{port}/0"
        deadline = time.monotonic() + START_TIMEOUT
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1)
        try:
            while True:
                # Not up yet, or the pidfile is half written: look again.
                with contextlib.suppress(redis.ConnectionError, ValueError):
                    if client.ping() and pidfile.exists():
                        self._pid = int(pidfile.read_text().strip())
                        return self.url
                if time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not start; see {self._dir}/redis.log")
                time.sleep(0.05)
        finally:
            client.close()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._pid, signal.SIGTERM)
            deadline = time.monotonic() + START_TIMEOUT
            while time.monotonic() < deadline:
                try:
                    os.kill(self._pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.02)
        for path in self._dir.iterdir():
            path.unlink()
        self._dir.rmdir()
