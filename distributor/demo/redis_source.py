"""Choose the Redis the demo runs on, and start (and later stop) a private one when needed.

``auto`` takes ``SWARMQUEUE_REDIS_URL`` (or ``--redis-url``, or ``swarmqueue.toml``) when set,
else a private ``redis-server`` when the binary exists, else an embedded fakeredis TCP server,
so the demo works with nothing installed. A private server listens on 127.0.0.1 on a free port,
keeps nothing on disk and lives in a temporary directory; it is stopped when the demo ends.
Only a shared Redis (``url``) has other data on it, so only then does the demo delete its keys.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import redis

from distributor.errors import DemoError
from distributor.log import get_logger
from distributor.store.client import redact_url, redis_from_url

log = get_logger(__name__)

RedisMode = Literal["auto", "url", "server", "fakeredis"]
REDIS_MODES: tuple[RedisMode, ...] = ("auto", "url", "server", "fakeredis")
_START_TIMEOUT = 10.0


@dataclass(frozen=True)
class RedisSource:
    """The Redis the demo uses: its URL, what it is, and whether other data may live on it."""

    url: str
    kind: Literal["url", "server", "fakeredis"]
    shared: bool

    def describe(self) -> str:
        what = {
            "url": "the Redis at",
            "server": "a private redis-server at",
            "fakeredis": "an embedded fakeredis server at",
        }[self.kind]
        return f"{what} {redact_url(self.url)}"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_redis(url: str, timeout: float = _START_TIMEOUT) -> None:
    """Return once ``url`` answers PING; ``DemoError`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    client = redis_from_url(url, 0, socket_connect_timeout=0.5, socket_timeout=1)
    try:
        while True:
            try:
                if client.ping():
                    return
            except (redis.ConnectionError, redis.TimeoutError):
                pass
            if time.monotonic() > deadline:
                raise DemoError(f"Redis at {redact_url(url)} did not answer within {timeout:g}s")
            time.sleep(0.05)
    finally:
        client.close()


@contextlib.contextmanager
def private_redis_server(binary: str = "redis-server") -> Iterator[RedisSource]:
    """A throwaway redis-server: free port, no persistence, in a temporary directory."""
    with tempfile.TemporaryDirectory(prefix="swarmqueue-demo-redis-") as tmp:
        port = free_port()
        args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
        args += ["--appendonly", "no", "--dir", tmp, "--logfile", str(Path(tmp) / "redis.log")]
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        url = f"redis://127.0.0.1:{port}/0"
        try:
            wait_for_redis(url)
            log.info("private redis-server started", url=url, pid=proc.pid)
            yield RedisSource(url, "server", shared=False)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _with_plain_addresses(handler: Any) -> Any:
    """fakeredis's TCP handler, made to report ``addr``/``laddr`` as ``host:port``.

    fakeredis 2.41 stores the peer addresses as Python tuples, so ``CLIENT INFO`` answers
    ``addr=('127.0.0.1', 5000) ...``; redis-py cannot parse the space in it, and an RQ worker
    calls ``CLIENT INFO`` when it starts, so it would crash. Real Redis answers ``host:port``.
    """

    class PlainAddresses(handler):  # type: ignore[misc]
        def setup(self) -> None:
            super().setup()
            info: dict[str, Any] = getattr(self.current_client.get_socket(), "_client_info", {})
            for key in ("addr", "laddr"):
                value = info.get(key)
                if isinstance(value, tuple):
                    info[key] = f"{value[0]}:{value[1]}"

    return PlainAddresses


@contextlib.contextmanager
def embedded_fakeredis() -> Iterator[RedisSource]:
    """A fakeredis TCP server (with Lua) in a thread of this process, for other processes."""
    import fakeredis

    server = fakeredis.TcpFakeServer(("127.0.0.1", free_port()), server_version=(7, 0))
    server.RequestHandlerClass = _with_plain_addresses(server.RequestHandlerClass)
    # A connection thread blocked in a command (an RQ worker's BLPOP) only ends when the
    # command does, minutes later; it must not hold up the end of the demo.
    server.daemon_threads = True
    server.block_on_close = False
    url = f"redis://127.0.0.1:{server.server_address[1]}/0"
    thread = threading.Thread(target=server.serve_forever, name="fakeredis-tcp", daemon=True)
    thread.start()
    try:
        wait_for_redis(url)
        log.info("embedded fakeredis server started", url=url)
        yield RedisSource(url, "fakeredis", shared=False)
    finally:
        server.shutdown()  # stops serve_forever and tells connection threads to end
        server.server_close()
        thread.join(timeout=5)


@contextlib.contextmanager
def open_redis(mode: RedisMode, url: str | None) -> Iterator[RedisSource]:
    """The demo's Redis for ``mode``; ``url`` is the configured one (None when not set)."""
    if mode == "url" or (mode == "auto" and url):
        if not url:
            raise DemoError("--redis url needs SWARMQUEUE_REDIS_URL (or --redis-url) to be set")
        wait_for_redis(url, timeout=3)
        yield RedisSource(url, "url", shared=True)
        return
    binary = shutil.which("redis-server")
    if mode == "server" or (mode == "auto" and binary):
        if binary is None:
            raise DemoError("redis-server not found; install it or use --redis fakeredis")
        with private_redis_server(binary) as source:
            yield source
        return
    with embedded_fakeredis() as source:
        yield source
