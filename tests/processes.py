"""Find the redis-servers and tmux servers a test left running, stop them, and say which.

Other test runs share this machine, so nothing is looked up by name across the machine. What
counts as left running by a test:

- a ``redis-server`` or ``tmux`` process that descends from this pytest process and was not
  there when the test began (parentage read from ``/proc/<pid>/stat``);
- a tmux server answering on a socket under the test's own ``$TMUX_TMPDIR``: every
  ``tmux -L NAME`` the test or its subprocesses run puts its socket there, and
  :func:`tmux_socket` gives ``tmux -S`` users a path there. tmux servers daemonize (their parent
  becomes 1), so they are found by socket, not by parentage;
- a port registered with :meth:`LeakCheck.track_redis_port` (a daemonized redis-server, such
  as the one ``scripts/test.sh`` starts) that still accepts connections.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

SERVER_NAMES = ("redis-server", "tmux")
# Servers a session- or module-scoped fixture owns and stops itself (the loopback cluster's
# nodes): started inside whichever test first needs them, they are not that test's leak.
FIXTURE_PIDS: set[int] = set()
_GRACE_SECONDS = 3.0  # a server told to stop a moment ago may still be on its way out


def _read(path: str) -> bytes:
    """A small /proc file (raw reads: pathlib costs ten times as much on some kernels)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.read(fd, 4096)
    finally:
        os.close(fd)


def _parents() -> dict[int, int]:
    """pid -> parent pid of every process, from ``/proc/<pid>/stat`` (some kernels lack the
    ``/proc/<pid>/task/*/children`` files)."""
    parents = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                fields = _read(f"/proc/{name}/stat").rsplit(b")", 1)[1].split()
                parents[int(name)] = int(fields[1])
    return parents


def descendants(pid: int) -> set[int]:
    """Every process below ``pid``."""
    below: dict[int, list[int]] = {}
    for child, parent in _parents().items():
        below.setdefault(parent, []).append(child)
    found: set[int] = set()
    todo = list(below.get(pid, []))
    while todo:
        child = todo.pop()
        if child not in found:
            found.add(child)
            todo += below.get(child, [])
    return found


def process_name(pid: int) -> str | None:
    """The process's name (``comm``), or None when it is gone or a zombie."""
    try:
        state = _read(f"/proc/{pid}/stat").rsplit(b")", 1)[1].split()[0]
        name = _read(f"/proc/{pid}/comm").decode(errors="replace").strip()
    except (OSError, IndexError):
        return None
    return None if state in (b"Z", b"X") else name


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie does not)."""
    return process_name(pid) is not None


def running_servers() -> dict[int, str]:
    """pid -> name of the redis-server and tmux processes below this process."""
    servers = {}
    for pid in descendants(os.getpid()):
        name = process_name(pid)
        if name is not None and name.startswith(SERVER_NAMES):
            servers[pid] = name
    return servers


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something accepts TCP connections at ``host:port``."""
    with socket.socket() as s:
        s.settimeout(1.0)
        return s.connect_ex((host, port)) == 0


def tmux_server_answers(path: str) -> bool:
    """Whether a tmux server listens on the socket ``path`` (a stale file does not count)."""
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(1.0)
        return s.connect_ex(path) == 0


def tmux_socket(label: str = "sq-test") -> str:
    """A new ``tmux -S`` socket path in the test's ``$TMUX_TMPDIR`` (checked for leaks there)."""
    folder = Path(os.environ.get("TMUX_TMPDIR") or tempfile.gettempdir())
    return str(folder / f"{label}-{uuid.uuid4().hex[:10]}")


def _sockets_under(folder: Path) -> list[str]:
    found = []
    for path in folder.rglob("*"):
        with contextlib.suppress(OSError):
            if stat.S_ISSOCK(path.lstat().st_mode):
                found.append(str(path))
    return sorted(found)


def _stop_pid(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 3
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # our own child: do not leave a zombie


class LeakCheck:
    """What one test (or the whole session) started, checked when it ends.

    ``tmux_dir`` becomes ``$TMUX_TMPDIR`` for the test; :meth:`leaks` lists what still runs,
    :meth:`stop` ends it.
    """

    def __init__(self, tmux_dir: Path) -> None:
        self.tmux_dir = tmux_dir
        self.before = set(running_servers())
        self.redis_ports: dict[int, int | None] = {}
        self.tmux_sockets: set[str] = set()

    @classmethod
    @contextlib.contextmanager
    def temporary(cls) -> Iterator[LeakCheck]:
        """A check with a short-named tmux folder of its own (socket paths are capped at 107)."""
        folder = Path(tempfile.mkdtemp(prefix="sqt-"))
        try:
            yield cls(folder)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def track_redis_port(self, port: int, pid: int | None = None) -> None:
        """Check at the end that nothing listens on ``port`` any more (``pid``: to stop it)."""
        self.redis_ports[port] = pid

    def track_tmux_socket(self, path: str) -> None:
        """Check at the end that no tmux server answers on ``path`` (outside ``tmux_dir``)."""
        self.tmux_sockets.add(path)

    def _find(self) -> tuple[dict[int, str], list[str], list[int]]:
        processes = {
            p: n
            for p, n in running_servers().items()
            if p not in self.before and p not in FIXTURE_PIDS
        }
        sockets = sorted({*_sockets_under(self.tmux_dir), *self.tmux_sockets})
        return (
            processes,
            [s for s in sockets if tmux_server_answers(s)],
            sorted(p for p in self.redis_ports if port_open(p)),
        )

    def leaks(self) -> list[str]:
        """What still runs, one phrase each; waits a few seconds for servers on their way out."""
        deadline = time.monotonic() + _GRACE_SECONDS
        while True:
            processes, sockets, ports = self._find()
            if not (processes or sockets or ports) or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        return [
            *(f"{name} (pid {pid})" for pid, name in sorted(processes.items())),
            *(f"a tmux server on {path}" for path in sockets),
            *(f"a server on 127.0.0.1:{port}" for port in ports),
        ]

    def stop(self) -> None:
        """Stop whatever :meth:`leaks` found (tmux servers first, then processes)."""
        processes, sockets, ports = self._find()
        for path in sockets:
            subprocess.run(["tmux", "-S", path, "kill-server"], capture_output=True, check=False)
        pids = [*processes, *(self.redis_ports[port] for port in ports)]
        for pid in pids:
            if pid is not None:
                _stop_pid(pid)
