"""The demo's tmux session: a private tmux server (``tmux -L swarmqueue-demo-<id>``) with one
pane per agent, each running a command directly (no shell), and ways to look at or end it.

A private server never touches the user's own tmux sessions, and killing it ends every pane
(and the processes in them, which get SIGHUP) at once. The user's tmux configuration is not
read (``-f /dev/null``), so the layout is the same everywhere.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from distributor.errors import DemoError
from distributor.log import get_logger

log = get_logger(__name__)

SESSION = "demo"
_TIMEOUT = 10.0


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without tmux's own variables, plus ``extra``.

    ``$TMUX`` would make tmux refuse to attach from inside another tmux ("nested"), and would
    make the agents' ``agents register`` pick up the wrong server.
    """
    env = {k: v for k, v in os.environ.items() if k not in ("TMUX", "TMUX_PANE")}
    env.update(extra or {})
    return env


class DemoSession:
    """A tmux server of its own, labelled ``label``, holding the session ``demo``."""

    def __init__(self, label: str, *, binary: str | None = None) -> None:
        found = binary or shutil.which("tmux")
        if found is None:
            raise DemoError("tmux not found; install tmux (./scripts/demo.sh does it as root)")
        self.binary = found
        self.label = label
        self.started = False
        self._socket: str | None = None

    def tmux(self, *args: str) -> str:
        """Run one tmux command on this server; its stdout, or ``DemoError`` with tmux's words."""
        cmd = [self.binary, "-L", self.label, "-f", os.devnull, *args]
        try:
            done = subprocess.run(  # fixed argv, no shell
                cmd, capture_output=True, text=True, timeout=_TIMEOUT, check=False, env=child_env()
            )
        except subprocess.TimeoutExpired:
            raise DemoError(f"tmux did not answer within {_TIMEOUT:g}s: {args[0]}") from None
        if done.returncode != 0:
            raise DemoError(f"tmux {args[0]} failed: {done.stderr.strip() or done.returncode}")
        return done.stdout.strip()

    @staticmethod
    def _env_args(env: Mapping[str, str]) -> list[str]:
        args: list[str] = []
        for key, value in env.items():
            args += ["-e", f"{key}={value}"]
        return args

    def open(
        self, commands: Sequence[Sequence[str]], env: Mapping[str, str], titles: Sequence[str]
    ) -> list[str]:
        """Start the session with one tiled pane per command; returns the pane ids in order."""
        if not commands:
            raise DemoError("the demo needs at least one agent pane")
        fmt = ["-P", "-F", "#{pane_id}"]
        first = self.tmux(
            "new-session", "-d", "-s", SESSION, "-x", "200", "-y", "50",
            *self._env_args(env), *fmt, *commands[0],
        )  # fmt: skip
        self.started = True
        panes = [first]
        for command in commands[1:]:
            panes.append(
                self.tmux("split-window", "-d", "-t", first, *self._env_args(env), *fmt, *command)
            )
            self.tmux("select-layout", "-t", f"{SESSION}:0", "tiled")
        _ = self.socket_path  # remembered, to remove the socket file at the end
        self.tmux("set-option", "-t", SESSION, "pane-border-status", "top")
        self.tmux("set-option", "-t", SESSION, "pane-border-format", " #{pane_title} ")
        for pane, title in zip(panes, titles, strict=True):
            self.tmux("select-pane", "-t", pane, "-T", title)
        return panes

    def add_status_pane(self, command: Sequence[str], env: Mapping[str, str]) -> str:
        """A full-width pane at the bottom (for a person watching: the progress bar)."""
        pane = self.tmux(
            "split-window", "-d", "-f", "-v", "-l", "4", "-t", f"{SESSION}:0",
            *self._env_args(env), "-P", "-F", "#{pane_id}", *command,
        )  # fmt: skip
        self.tmux("select-pane", "-t", pane, "-T", "progress")
        return pane

    @property
    def socket_path(self) -> str:
        """The server's socket path, as agents are registered with it."""
        if self._socket is None:
            self._socket = self.tmux("display-message", "-p", "#{socket_path}")
        return self._socket

    def capture(self, pane: str) -> str:
        """What the pane shows now."""
        return self.tmux("capture-pane", "-p", "-t", pane)

    def pane_ids(self) -> list[str]:
        return self.tmux("list-panes", "-s", "-t", SESSION, "-F", "#{pane_id}").split()

    def alive(self) -> bool:
        """Whether the server still has the session."""
        cmd = [self.binary, "-L", self.label, "has-session", "-t", SESSION]
        done = subprocess.run(cmd, capture_output=True, timeout=_TIMEOUT, check=False)
        return done.returncode == 0

    def attach(self) -> subprocess.Popen[bytes]:
        """Attach this terminal to the session (returns at once; the client runs until detached)."""
        cmd = [self.binary, "-L", self.label, "attach-session", "-t", SESSION]
        return subprocess.Popen(cmd, env=child_env())

    def detach_clients(self) -> None:
        """Detach every client attached to the session (the person watching gets the shell back)."""
        cmd = [self.binary, "-L", self.label, "detach-client", "-s", SESSION]
        subprocess.run(cmd, capture_output=True, timeout=_TIMEOUT, check=False)

    def kill(self) -> None:
        """End the server and every process in its panes; nothing to do if it is gone already."""
        cmd = [self.binary, "-L", self.label, "kill-server"]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=_TIMEOUT, check=False)
        if done.returncode != 0 and self.started:
            log.debug("tmux kill-server", detail=done.stderr.strip())
        self.started = False
        if self._socket:  # tmux does not always remove it
            Path(self._socket).unlink(missing_ok=True)
