"""Panes, a slowed-down tmux and ``swarmqueue worker`` processes for the delivery chaos.

A real ``swarmqueue worker`` types into the panes of a private tmux server whose panes run
``tests/pane_reader.py``, which logs every byte it receives. The worker finds ``tmux`` on its
``PATH``, where the test puts a ``tmux`` of its own first (:data:`SHIM`): the real one, paused
before and after each invocation, writing a line to a log for each step::

    begin <pid> list|paste|other     the worker started a tmux invocation
    ran <pid> <kind> <exit status>   the real tmux finished (a paste is in the pane now)

That widens the moments the suite strikes at (each only milliseconds wide otherwise) into
``DELAY`` seconds, and tells the test when it is in one:

    before   ``begin list``: the worker took the job and is listing panes; nothing typed yet
    during   ``begin paste`` + up to ``DELAY / 2``: the paste is on its way, and the kill
             ends it with the worker (its process group), before the real tmux typed anything
    after    ``ran paste``: the panes have the message, the worker has not recorded it yet

Each kill is checked afterwards: the worker's last step must be the moment's (a late kill would
test another moment). The product has no hook to stop a worker at a chosen point; this makes
one from outside, without touching it.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import redis
from rq import Worker

from distributor.messaging.jobs import delivery_queue
from tests.chaos.harness import kill_group, wait_until
from tests.messaging_support import READER, TmuxLab

CLI = Path(sys.executable).with_name("swarmqueue")
DELAY = 0.3  # seconds the shim waits before and after each real tmux invocation
SHIM = """#!/bin/sh
# tmux for the chaos suite (tests/chaos/panes.py): the real one, paused before and after.
case " $* " in
  *" load-buffer "*) kind=paste ;;  # first: a paste's chain ends with a list-panes of its own
  *" list-panes "*) kind=list ;;
  *) kind=other ;;
esac
echo "begin $$ $kind" >> "$CHAOS_TMUX_LOG"
sleep "$CHAOS_TMUX_DELAY"
"$CHAOS_REAL_TMUX" "$@"
status=$?
echo "ran $$ $kind $status" >> "$CHAOS_TMUX_LOG"
sleep "$CHAOS_TMUX_DELAY"
exit $status
"""
MOMENTS = ("before", "during", "after")


@dataclass(frozen=True)
class Step:
    """One line of the shim's log."""

    event: str  # begin | ran
    kind: str  # list | paste | other


# The last step a worker took when it is struck at each moment (nothing after: it is dead).
STRUCK_AT = {
    "before": Step("begin", "list"),
    "during": Step("begin", "paste"),
    "after": Step("ran", "paste"),
}


class Shim:
    """A folder holding the slowed-down ``tmux`` and the log of its steps."""

    def __init__(self, folder: Path, delay: float = DELAY) -> None:
        real = shutil.which("tmux")
        assert real is not None, "tmux is not installed"
        folder.mkdir(parents=True, exist_ok=True)
        script = folder / "tmux"
        script.write_text(SHIM)
        script.chmod(0o755)
        self.folder = folder
        self.log = folder / "steps.log"
        self.log.touch()
        self.delay = delay
        self.env = {
            "PATH": f"{folder}{os.pathsep}{os.environ.get('PATH', '')}",
            "CHAOS_TMUX_LOG": str(self.log),
            "CHAOS_TMUX_DELAY": str(delay),
            "CHAOS_REAL_TMUX": real,
        }

    def steps(self) -> list[Step]:
        found = []
        for line in self.log.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 3:
                found.append(Step(parts[0], parts[2]))
        return found

    def wait_for(self, since: int, event: str, kind: str, nth: int = 1) -> None:
        """Until the ``nth`` step ``event kind`` after the first ``since`` steps."""

        def seen() -> bool:
            later = self.steps()[since:]
            return sum(1 for s in later if (s.event, s.kind) == (event, kind)) >= nth

        wait_until(seen, 30, f"tmux step {nth} x '{event} {kind}'", every=0.002)

    def strike_at(self, moment: str, since: int, pastes: int, rng: random.Random) -> None:
        """Return at ``moment`` of the next delivery after the first ``since`` steps."""
        if moment == "before":
            self.wait_for(since, "begin", "list")
        elif moment == "during":
            self.wait_for(since, "begin", "paste", rng.randint(1, pastes))
            time.sleep(rng.uniform(0, self.delay / 2))  # well before the real tmux runs
        elif moment == "after":
            self.wait_for(since, "ran", "paste", rng.randint(1, pastes))
        else:
            raise ValueError(f"unknown moment {moment!r}")

    def check_struck(self, moment: str, since: int) -> None:
        """After the kill: the worker's last step is the one of ``moment`` (a harness check:
        a kill that came too late would test another moment)."""
        later = self.steps()[since:]
        last = later[-1] if later else None
        assert last == STRUCK_AT[moment], (
            f"chaos harness: the kill missed the moment {moment!r}; steps since: {later}"
        )


class Lab(TmuxLab):
    """:class:`TmuxLab` plus panes whose reader runs under another program name."""

    def spawn_as(self, program: str) -> str:
        """One reader pane whose foreground program tmux shows as ``program`` (a symlink to
        the Python interpreter), to get a pane the worker must refuse."""
        link = self.tmp / program
        link.symlink_to(os.path.realpath(sys.executable))
        log = self.tmp / f"pane-{program}.log"
        log.touch()
        command = f"exec {link} {READER} {log}"
        pane = self.tmux("new-window", "-d", "-P", "-F", "#{pane_id}", command)
        self.logs[pane] = log
        self._wait_ready(pane)
        return pane


class Workers:
    """``swarmqueue worker`` processes of one host, one at a time, each in a session of its own
    (a kill takes its scheduler and tmux children with it)."""

    def __init__(self, folder: Path, env: dict[str, str]) -> None:
        self.folder = folder
        self.env = env
        self.started = 0
        self.proc: subprocess.Popen[bytes] | None = None
        folder.mkdir(parents=True, exist_ok=True)

    def start(self) -> None:
        assert self.proc is None, "a worker runs already"
        self.started += 1
        with (self.folder / f"worker-{self.started}.err").open("wb") as err:
            self.proc = subprocess.Popen(
                [str(CLI), "worker"],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
                start_new_session=True,
            )

    def kill(self) -> None:
        """SIGKILL the worker and everything it started."""
        assert self.proc is not None
        kill_group(self.proc)
        self.proc = None

    def stop(self) -> None:
        """SIGTERM (RQ's warm shutdown), then SIGKILL whatever is left of its group."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=30)
        kill_group(self.proc)
        self.proc = None

    def idle(self, client: redis.Redis, host: str) -> bool:
        """Whether the running worker is registered and waiting for a job (RQ's ``idle``)."""
        assert self.proc is not None
        queue = delivery_queue(host, client)
        return any(
            w.pid == self.proc.pid and w.get_state() == "idle" for w in Worker.all(queue=queue)
        )

    def log_tail(self) -> str:
        """The end of the last worker's stderr (for a harness failure's message)."""
        return (self.folder / f"worker-{self.started}.err").read_text()[-2000:]
