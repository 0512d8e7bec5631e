"""Hosts made of Linux namespaces, for the several-host test (``tests/test_hosts.py``).

A host is one anchor process (``sleep``) holding namespaces of its own, and every process of
the host is started with ``nsenter`` into them:

- a network namespace (``ip netns add``) with one address on ``eth0``, the end of a veth pair
  whose other end is a port of a bridge living in a namespace of its own (the lab's switch);
- a UTS namespace: its own host name, which swarmqueue takes as the host's name;
- a mount namespace with a tmpfs of its own at ``<lab>/private``: that folder differs on each
  host (as ``/tmp`` does on separate machines), so a tmux socket there is only reachable from
  its own host, even where two hosts use the same path.

Nothing is made in the machine's own network namespace (each veth pair is created with its
ends already in the host's and the bridge's namespaces), so the machine's interfaces, routes and
its Redis on 127.0.0.1 are never touched; the addresses are private to the lab. Names carry a
random suffix, so parallel runs do not collide.

:meth:`Lab.close` ends every process in the lab's namespaces (only the lab's processes can be
there) and deletes the namespaces, which deletes their links; the tmpfs mounts go with their
last process. It runs also when building the lab failed half-way.
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

SUBNET = "10.213.0"  # /24, only inside the lab's namespaces
BRIDGE = "br0"
_TOOLS = {"ip": "iproute2", "nsenter": "util-linux", "unshare": "util-linux"}
_START_TIMEOUT = 10.0
# The anchor: the host name, the private folder, then one line ("ready PID") and sleep.
_ANCHOR = (
    'hostname "$0" && mount -t tmpfs -o mode=0755,size=64m swarmqueue-lab "$1"'
    ' && echo "ready $$" && exec sleep 86400 </dev/null >/dev/null 2>&1'
)


class LabError(RuntimeError):
    """A step of building or using the lab failed (with the command and its output)."""


def _run(argv: Sequence[str], timeout: float = 20.0) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise LabError(f"{' '.join(argv)}: exit {done.returncode}: {done.stderr.strip()}")
    return done


def unavailable_reason() -> str | None:
    """Why namespaces cannot be made here (the test skips with it), or None when they can."""
    if os.geteuid() != 0:
        return f"making network namespaces needs root (this runs as uid {os.geteuid()})"
    for tool, package in _TOOLS.items():
        if shutil.which(tool) is None:
            return f"no `{tool}` command here (Debian package {package})"
    probe = f"sqprobe-{uuid.uuid4().hex[:8]}"
    try:
        _run(["ip", "netns", "add", probe])
    except LabError as exc:
        return f"network namespaces cannot be made here: {exc}"
    try:
        _run(["ip", "netns", "exec", probe, "unshare", "--uts", "--mount", "true"])
    except LabError as exc:
        return f"UTS and mount namespaces cannot be made here: {exc}"
    finally:
        subprocess.run(["ip", "netns", "del", probe], capture_output=True, check=False)
    return None


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in (b"Z", b"X")


def _name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return "?"


@dataclass
class Host:
    """One host of the lab: its network namespace, host name, address and anchor process."""

    letter: str
    name: str  # the UTS host name
    netns: str
    address: str
    port: str  # its link's end on the bridge
    anchor: int = 0  # pid of the process holding its UTS and mount namespaces

    def argv(self, *cmd: str) -> list[str]:
        """``cmd`` run inside this host (its network, host name and private folder)."""
        return ["nsenter", f"--target={self.anchor}", "--net", "--uts", "--mount", "--", *cmd]


@dataclass
class Lab:
    """A bridge and hosts on it, each with its own network, host name and private folder.

    ``folder`` is a short temporary folder (tmux socket paths are capped at 107 bytes);
    ``private`` inside it is each host's own.
    """

    folder: Path
    suffix: str = field(default_factory=lambda: uuid.uuid4().hex[:6])
    hosts: dict[str, Host] = field(default_factory=dict)
    _namespaces: list[str] = field(default_factory=list)
    _children: list[subprocess.Popen[Any]] = field(default_factory=list)

    @property
    def private(self) -> Path:
        return self.folder / "private"

    @property
    def bridge_ns(self) -> str:
        return f"sqbr-{self.suffix}"

    def build(self, letters: Sequence[str]) -> None:
        """The bridge's namespace, then one host per letter (addresses .1, .2, ...)."""
        self.private.mkdir(parents=True, exist_ok=True)
        self._add_namespace(self.bridge_ns)
        _run(["ip", "-n", self.bridge_ns, "link", "add", BRIDGE, "type", "bridge"])
        _run(["ip", "-n", self.bridge_ns, "link", "set", BRIDGE, "up"])
        for number, letter in enumerate(letters, start=1):
            self._add_host(letter, f"{SUBNET}.{number}")

    def _add_namespace(self, name: str) -> None:
        _run(["ip", "netns", "add", name])
        self._namespaces.append(name)

    def _add_host(self, letter: str, address: str) -> None:
        host = Host(
            letter=letter,
            name=f"host{letter}-{self.suffix}",
            netns=f"sq{letter}-{self.suffix}",
            address=address,
            port=f"to-{letter}",
        )
        self._add_namespace(host.netns)
        ns, br = host.netns, self.bridge_ns
        _run(["ip", "-n", ns, "link", "add", "eth0", "type", "veth",
              "peer", "name", host.port, "netns", br])  # fmt: skip
        _run(["ip", "-n", br, "link", "set", host.port, "master", BRIDGE, "up"])
        _run(["ip", "-n", ns, "addr", "add", f"{address}/24", "dev", "eth0"])
        _run(["ip", "-n", ns, "link", "set", "eth0", "up"])
        _run(["ip", "-n", ns, "link", "set", "lo", "up"])
        anchor = subprocess.Popen(
            ["ip", "netns", "exec", ns, "unshare", "--uts", "--mount", "--propagation",
             "private", "--", "sh", "-c", _ANCHOR, host.name, str(self.private)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        self._children.append(anchor)
        line = _read_line(anchor.stdout, _START_TIMEOUT)
        if not line.startswith("ready "):
            anchor.kill()
            _, err = anchor.communicate(timeout=5)
            raise LabError(f"host {host.name} did not start: {line!r} {err.decode()[-500:]}")
        host.anchor = int(line.split()[1])
        assert anchor.stdout is not None
        anchor.stdout.close()
        self.hosts[letter] = host

    # -- running things on hosts ------------------------------------------------------------

    def run(
        self,
        host: Host,
        cmd: Sequence[str],
        env: Mapping[str, str],
        timeout: float = 60.0,
        input: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``cmd`` on ``host`` and wait; its exit status is the caller's to judge."""
        return subprocess.run(
            host.argv(*cmd),
            env=dict(env),
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def start(
        self, host: Host, cmd: Sequence[str], env: Mapping[str, str], log: Path
    ) -> subprocess.Popen[bytes]:
        """Start ``cmd`` on ``host`` in the background, stdout and stderr to ``log``
        (``nsenter`` execs it, so the pid is the program's)."""
        with log.open("ab") as out:
            proc = subprocess.Popen(
                host.argv(*cmd), env=dict(env), stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
        self._children.append(proc)
        return proc

    def spawn(
        self, host: Host, cmd: Sequence[str], env: Mapping[str, str]
    ) -> subprocess.Popen[str]:
        """Start ``cmd`` on ``host`` in the background with its stdout and stderr piped."""
        proc = subprocess.Popen(
            host.argv(*cmd), env=dict(env), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        self._children.append(proc)
        return proc

    # -- the network ------------------------------------------------------------------------

    def set_link(self, host: Host, up: bool) -> None:
        """Plug or unplug ``host``'s cable at the bridge: while down, its packets go nowhere
        (its own interface keeps its address and route, as when a switch port dies)."""
        _run(["ip", "-n", self.bridge_ns, "link", "set", host.port, "up" if up else "down"])

    # -- cleaning up ------------------------------------------------------------------------

    def processes(self) -> dict[int, str]:
        """pid -> "name on host" of every process in the lab's namespaces but the anchors."""
        anchors = {h.anchor for h in self.hosts.values()}
        where = {h.netns: h.name for h in self.hosts.values()}
        found = {}
        for ns in self._namespaces:
            listed = subprocess.run(
                ["ip", "netns", "pids", ns], capture_output=True, text=True, check=False
            ).stdout.split()
            for pid in map(int, listed):
                if pid not in anchors and _alive(pid):
                    found[pid] = f"{_name(pid)} (pid {pid}) on {where.get(ns, ns)}"
        return found

    def leftovers(self, grace: float = 3.0) -> list[str]:
        """What still runs in the lab (the anchors aside), after ``grace`` seconds at most."""
        deadline = time.monotonic() + grace
        while (found := self.processes()) and time.monotonic() < deadline:
            time.sleep(0.1)
        return sorted(found.values())

    def close(self) -> None:
        """SIGKILL every process in the lab's namespaces, then delete the namespaces."""
        for ns in self._namespaces:
            listed = subprocess.run(
                ["ip", "netns", "pids", ns], capture_output=True, text=True, check=False
            ).stdout.split()
            for pid in map(int, listed):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        for host in self.hosts.values():  # the anchors (in the namespace via ip netns exec)
            with contextlib.suppress(ProcessLookupError):
                os.kill(host.anchor, signal.SIGKILL)
        for child in self._children:
            with contextlib.suppress(ProcessLookupError):
                child.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=5)
        for ns in reversed(self._namespaces):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)
        self._namespaces.clear()

    def namespaces_left(self) -> list[str]:
        """The lab's namespaces the machine still has (none after :meth:`close`)."""
        listed = subprocess.run(
            ["ip", "netns", "list"], capture_output=True, text=True, check=False
        ).stdout
        names = {line.split()[0] for line in listed.splitlines() if line.strip()}
        return sorted(n for n in names if n.endswith(f"-{self.suffix}"))


def _read_line(stream: IO[bytes] | None, timeout: float) -> str:
    """One line from a child's stdout, or what came before ``timeout`` ran out."""
    assert stream is not None
    deadline = time.monotonic() + timeout
    data = b""
    while not data.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([stream], [], [], left)[0]:
            break
        chunk = os.read(stream.fileno(), 256)
        if not chunk:
            break
        data += chunk
    return data.decode(errors="replace").strip()
