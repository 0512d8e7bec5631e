"""A private redis-server for tests that stop, restart or configure their Redis.

Never the shared one at 127.0.0.1:6379. The server is a child of the test process (not
daemonized), so the suite's leak check sees it; :meth:`RedisServer.stop` ends it by PID.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from distributor.demo.redis_source import free_port
from tests.processes import port_open

_START_TIMEOUT = 10.0


class RedisServer:
    """``redis-server`` on 127.0.0.1 at ``port`` in ``folder`` with ``args`` added.

    By default it listens on plain TCP at ``port``; pass ``plain=False`` when ``args`` choose
    the listeners (``--port 0 --tls-port PORT``). Nothing is kept on disk.
    """

    def __init__(
        self, folder: Path, *args: str, port: int | None = None, plain: bool = True
    ) -> None:
        self.folder = folder
        self.port = port or free_port()
        self.args = [*(["--port", str(self.port)] if plain else []), *args]
        self.proc: subprocess.Popen[bytes] | None = None
        folder.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        """Start it (again, on the same port) and return once it accepts connections."""
        assert self.proc is None, "already running"
        log = (self.folder / "redis.log").open("ab")
        base = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.proc = subprocess.Popen(
            ["redis-server", *base, "--dir", str(self.folder), *self.args],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + _START_TIMEOUT
        while not port_open(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                output = (self.folder / "redis.log").read_text()[-2000:]
                self.stop()
                raise AssertionError(f"redis-server did not start: {output}")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        """Stop it by PID and wait until it is gone; nothing to do when it is not running."""
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None
