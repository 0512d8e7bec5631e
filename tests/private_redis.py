"""A throwaway ``redis-server`` a test may configure, kill or break, and the CLI as a process.

The shared Redis of the test run must never be restarted or reconfigured; tests about dead
servers, passwords or TLS start one of these on a free loopback port and stop it by pid.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from distributor.demo.redis_source import free_port
from tests.redis_server import RedisServer

CLI = [sys.executable, "-c", "from distributor.cli import main; main(prog_name='swarmqueue')"]


class PrivateRedis(RedisServer):
    """A redis-server on a free port, in a temporary folder, with extra ``args``.

    ``args`` replace the default ``--port PORT`` when given, and ``{port}`` in them and in
    ``url`` (what tests connect with) is filled in. A child of the test process, so the suite's
    leak check sees it; ``kill()`` SIGKILLs it, ``close()`` also removes its folder.
    """

    def __init__(self, args: Sequence[str] = (), url: str = "redis://127.0.0.1:{port}/0") -> None:
        port = free_port()
        chosen = [a.format(port=port) for a in args]
        folder = Path(tempfile.mkdtemp(prefix="sq-test-redis-"))
        super().__init__(folder, *chosen, port=port, plain=not chosen)
        self._url = url.format(port=port)

    @property
    def url(self) -> str:
        return self._url

    def close(self) -> None:
        self.kill()
        shutil.rmtree(self.folder, ignore_errors=True)


@contextlib.contextmanager
def private_redis(
    args: Sequence[str] = (), url: str = "redis://127.0.0.1:{port}/0"
) -> Iterator[PrivateRedis]:
    server = PrivateRedis(args, url)
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
