"""A private redis-server for tests that stop, restart or configure their Redis.

Never the shared one at 127.0.0.1:6379. The server is a child of the test process (not
daemonized), so the suite's leak check sees it; :meth:`RedisServer.stop` ends it by PID.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Self

from distributor.demo.redis_source import free_port
from tests.processes import port_open

_START_TIMEOUT = 10.0


def spawn_listening(
    command: list[str], port: int, log_path: Path, what: str, timeout: float = _START_TIMEOUT
) -> subprocess.Popen[bytes]:
    """Start ``command`` (output appended to ``log_path``) and return once ``port`` accepts
    connections; if it exits or is not listening in time, kill it and fail with its log's end."""
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
        )
    deadline = time.monotonic() + timeout
    while not port_open(port):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            raise AssertionError(f"{what} did not start: {log_path.read_text()[-2000:]}")
        time.sleep(0.02)
    return proc


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

    def start(self) -> Self:
        """Start it (again, on the same port) and return once it accepts connections."""
        assert self.proc is None, "already running"
        base = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.proc = spawn_listening(
            ["redis-server", *base, "--dir", str(self.folder), *self.args],
            self.port,
            self.folder / "redis.log",
            "redis-server",
        )
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

    def kill(self) -> None:
        """SIGKILL: no shutdown, no final write, clients are cut off mid-reply; :meth:`start`
        brings it back on the same port and folder."""
        if self.proc is None:
            return
        self.proc.kill()
        self.proc.wait()
        self.proc = None


class AofRedis(RedisServer):
    """A private redis-server that writes every change to its AOF before replying, so a
    SIGKILL loses nothing a client was answered (or would have been).

    It runs with ``--aof-load-truncated no``: a kill can leave the AOF ending in the middle of a
    script's ``MULTI``/``EXEC`` block, and with the default (``yes``) Redis 7.0 cuts only the
    torn command, keeps the block's first commands and appends new writes after them; at the
    next restart half of the script is applied, or the writes after it are dropped (fixed in
    Valkey by valkey-io/valkey#4342). So the server refuses to start on a torn AOF, and
    :meth:`start` repairs it with ``redis-check-aof --fix``, which cuts before the ``MULTI``, as
    an operator would. ``repairs`` counts those.
    """

    def __init__(self, folder: Path) -> None:
        super().__init__(
            folder, "--appendonly", "yes", "--appendfsync", "always", "--aof-load-truncated", "no"
        )
        self.repairs = 0

    def start(self) -> Self:
        try:
            super().start()
        except AssertionError:
            if "redis-check-aof --fix" not in self._log_tail():
                raise
            self.repair()
            super().start()
        return self

    def repair(self) -> None:
        """Cut a torn AOF back to its last whole command or transaction."""
        manifest = self.folder / "appendonlydir" / "appendonly.aof.manifest"
        done = subprocess.run(
            ["redis-check-aof", "--fix", str(manifest)],
            input="y\n",
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, f"redis-check-aof --fix failed: {done.stdout}{done.stderr}"
        self.repairs += 1

    def _log_tail(self) -> str:
        return (self.folder / "redis.log").read_text()[-2000:]
