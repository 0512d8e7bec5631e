"""A throwaway ``redis-server`` a test may configure, kill or break, and the CLI as a process.

The shared Redis of the test run must never be restarted or reconfigured; tests about dead
servers, passwords or TLS start one of these on a free loopback port and stop it by pid.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import redis

START_TIMEOUT = 10.0
CLI = [sys.executable, "-c", "from distributor.cli import main; main(prog_name='swarmqueue')"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class PrivateRedis:
    """A redis-server on a free port with extra ``args``; ``url`` reaches it, ``kill()`` ends it.

    ``ping_url`` is how readiness is checked (e.g. with the password, or over TLS); ``url`` is
    what tests connect with (``{port}`` is filled in for both).
    """

    def __init__(
        self, args: Sequence[str] = (), ping_url: str = "", url: str = "redis://127.0.0.1:{port}/0"
    ) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="sq-test-redis-"))
        self.url = url.format(port=self.port)
        self._ping_url = (ping_url or url).format(port=self.port)
        self._args = [a.format(port=self.port) for a in args] or ["--port", str(self.port)]
        self.pid: int | None = None

    def start(self) -> PrivateRedis:
        pidfile = self.dir / "redis.pid"
        subprocess.run(
            [
                "redis-server", *self._args,
                "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--dir", str(self.dir), "--daemonize", "yes",
                "--pidfile", str(pidfile), "--logfile", str(self.dir / "redis.log"),
            ],
            check=True,
            capture_output=True,
        )  # fmt: skip
        client = redis.Redis.from_url(self._ping_url, socket_connect_timeout=1, socket_timeout=1)
        deadline = time.monotonic() + START_TIMEOUT
        try:
            while True:
                with contextlib.suppress(redis.ConnectionError, redis.TimeoutError, ValueError):
                    if client.ping() and pidfile.exists():
                        self.pid = int(pidfile.read_text().strip())
                        return self
                if time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not start; see {self.dir}/redis.log")
                time.sleep(0.05)
        finally:
            client.close()

    def kill(self) -> None:
        """Stop the server at once (SIGKILL: no goodbye to clients) and wait until it is gone."""
        if self.pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.02)
        self.pid = None

    def close(self) -> None:
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


@contextlib.contextmanager
def private_redis(
    args: Sequence[str] = (), ping_url: str = "", url: str = "redis://127.0.0.1:{port}/0"
) -> Iterator[PrivateRedis]:
    server = PrivateRedis(args, ping_url, url)
    try:
        yield server.start()
    finally:
        server.close()


def start_cli(*args: str) -> subprocess.Popen[str]:
    """``swarmqueue ARGS`` as a separate process (stdout and stderr captured as text)."""
    return subprocess.Popen(
        [*CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def run_cli(*args: str, timeout: float = 90) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run ``swarmqueue ARGS`` to its end; the result and how many seconds it took."""
    started = time.monotonic()
    done = subprocess.run(
        [*CLI, *args], check=False, capture_output=True, text=True, timeout=timeout
    )
    return done, time.monotonic() - started


def one_line_error(stderr: str) -> str:
    """The single ``swarmqueue: ...`` line of ``stderr`` (asserting there is nothing else)."""
    assert "Traceback" not in stderr, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("swarmqueue: "), stderr
    return lines[0]
