"""A scripted agent for the demo: does what a real agent does, through the ``swarmqueue`` CLI.

Run in a tmux pane as ``python -m distributor.demo.agent --agent agent-1``, it loops::

    swarmqueue next --agent A --wait S --json   # claim the next ready task (wakes at once)
    ... "work" for a short random time ...
    swarmqueue done ID --agent A                # or, on the first attempt of one chosen task:
    swarmqueue fail ID --agent A --reason ...   # which the queue retries after its backoff

until every task of the swarm is finished. With ``--hold PATH`` it first reserves PATH like an
agent reviewing a file (``swarmqueue reserve``), and frees it only once another agent's claim
has passed over a task that needs it (a ``reserve-refused`` event naming it as the holder).

Like an agent program, it reads its terminal in raw
mode with bracketed paste on, so announcements typed into the pane by the delivery worker reach
this program (which prints them) and never a shell. Once the work is done it keeps showing
announcements until its pane is closed (``--exit-when-done`` ends it instead, for tests).

Connection and swarm come from the environment (``SWARMQUEUE_REDIS_URL``, ``SWARMQUEUE_SWARM``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import termios
import threading
import time
import tty
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from distributor.cli.events import finished
from distributor.tasks.models import Event
from distributor.tasks.queue import TaskQueue

PASTE_START, PASTE_END = b"\x1b[200~", b"\x1b[201~"
_BRACKETED_PASTE_ON, _BRACKETED_PASTE_OFF = "\x1b[?2004h", "\x1b[?2004l"
_CHECK_EVERY = 0.25  # seconds between progress checks while `next --wait` runs
_MAX_ERRORS = 20
READY_MARK = "ready, waiting for work"

_print_lock = threading.Lock()


def say(text: str, color: str = "") -> None:
    """One line on the pane, with the time; whole lines only (two threads print)."""
    stamp = datetime.now(UTC).strftime("%H:%M:%S")
    reset = "\x1b[0m" if color else ""
    with _print_lock:
        sys.stdout.write(f"{color}{stamp} {text}{reset}\n")
        sys.stdout.flush()


def cli_command() -> list[str]:
    """The ``swarmqueue`` executable installed next to this Python (or found on PATH)."""
    beside = Path(sys.executable).with_name("swarmqueue")
    if beside.exists():
        return [str(beside)]
    found = shutil.which("swarmqueue")
    if found:
        return [found]
    return [sys.executable, "-c", "from distributor.cli import main; main()"]


def _marker_prefix(buffer: bytes) -> bytes:
    """The end of ``buffer`` that may be the first bytes of a paste-start marker."""
    for size in range(min(len(buffer), len(PASTE_START) - 1), 0, -1):
        if PASTE_START.startswith(buffer[-size:]):
            return buffer[-size:]
    return b""


class PasteReader:
    """Reads the pane's keyboard: prints each bracketed paste (an announcement) as one line.

    Anything typed outside a paste is dropped, so nothing ever reaches a shell.
    """

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.saved = termios.tcgetattr(fd)
        self.received = 0

    def start(self) -> None:
        tty.setraw(self.fd)
        attrs = termios.tcgetattr(self.fd)
        attrs[1] |= termios.OPOST | termios.ONLCR  # keep "\n" -> "\r\n" on output
        termios.tcsetattr(self.fd, termios.TCSANOW, attrs)
        sys.stdout.write(_BRACKETED_PASTE_ON)
        sys.stdout.flush()
        threading.Thread(target=self._run, name="paste-reader", daemon=True).start()

    def restore(self) -> None:
        with contextlib.suppress(termios.error, OSError):
            sys.stdout.write(_BRACKETED_PASTE_OFF)
            sys.stdout.flush()
            termios.tcsetattr(self.fd, termios.TCSADRAIN, self.saved)

    def _run(self) -> None:
        buffer = b""
        while True:
            try:
                data = os.read(self.fd, 65536)
            except OSError:
                return
            if not data:
                return
            buffer += data
            buffer = self._consume(buffer)

    def _consume(self, buffer: bytes) -> bytes:
        """Print complete pastes; return what may still be the start of one."""
        while True:
            start = buffer.find(PASTE_START)
            if start < 0:
                if b"\x03" in buffer:
                    say("(keys typed here are ignored; detach with Ctrl-b d)", "\x1b[2m")
                return _marker_prefix(buffer)  # a marker may be split across reads
            end = buffer.find(PASTE_END, start)
            if end < 0:
                return buffer[start:]
            text = buffer[start + len(PASTE_START) : end].decode("utf-8", "replace")
            self.received += 1
            say(f"<< {text}", "\x1b[36m")
            buffer = buffer[end + len(PASTE_END) :]


class Agent:
    """The loop of one scripted agent."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.agent = str(args.agent)
        self.wait = float(args.wait)
        self.work = (float(args.work_min) * args.work_scale, float(args.work_max) * args.work_scale)
        self.fail_suffix = str(args.fail_first_attempt_of or "")
        self.report_dir = Path(args.report_dir) if args.report_dir else None
        self.hold = str(args.hold or "")
        self.hold_seconds = float(args.hold_seconds)
        self.cli = cli_command()
        self.queue = TaskQueue.from_url()
        self.child: subprocess.Popen[str] | None = None
        self.done_tasks: list[str] = []
        self.stopping = False

    def run_cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """One ``swarmqueue`` command, as an agent would type it."""
        return subprocess.run([*self.cli, *args], capture_output=True, text=True, check=False)

    def swarm_finished(self) -> bool:
        return finished(self.queue.progress())

    def next_task(self) -> dict[str, Any] | None:
        """``next --wait``; stopped early when the swarm finishes meanwhile (None then)."""
        cursor = self.queue.last_event_id()
        if self.swarm_finished():
            return None
        args = ["next", "--agent", self.agent, "--wait", f"{self.wait:g}", "--json"]
        self.child = subprocess.Popen(
            [*self.cli, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        try:
            while self.child.poll() is None:
                batch = self.queue.events(since=cursor, count=100, wait=_CHECK_EVERY)
                if batch:
                    cursor = batch[-1].id
                if self.swarm_finished():
                    self.child.terminate()  # nothing can be claimed any more
            out, err = self.child.communicate()
            code = self.child.returncode
        finally:
            self.child = None
        if code == 0:
            task: dict[str, Any] = json.loads(out)
            return task
        if code not in (1, -signal.SIGTERM):
            raise RuntimeError(err.strip() or f"swarmqueue next exited {code}")
        return None

    def work_on(self, task: dict[str, Any]) -> None:
        task_id = str(task["id"])
        seconds = random.uniform(*self.work)
        say(f"claimed {task_id} (attempt {task['attempts']}): {task['title']}", "\x1b[1m")
        say(f"working on it for {seconds:.1f}s ...")
        time.sleep(seconds)
        if self.fail_suffix and task_id.endswith(self.fail_suffix) and task["attempts"] == 1:
            result = self.run_cli(
                "fail", task_id, "--agent", self.agent, "--reason", "simulated: a test flaked"
            )
            say(f"fail -> {(result.stdout or result.stderr).strip()}", "\x1b[33m")
            return
        result = self.run_cli("done", task_id, "--agent", self.agent)
        if result.returncode == 0:
            self.done_tasks.append(task_id)
            say(f"done -> {result.stdout.strip()}", "\x1b[32m")
        else:
            say(f"done refused -> {result.stderr.strip()}", "\x1b[31m")

    def reserve_held(self) -> bool:
        """``--hold``: reserve the path before any work (True when reserved)."""
        result = self.run_cli(
            "reserve", self.hold, "--agent", self.agent, "--ttl", f"{self.hold_seconds:g}",
            "--reason", "reviewing it first",
        )  # fmt: skip
        if result.returncode != 0:
            say(f"reserve refused -> {result.stderr.strip()}", "\x1b[31m")
            return False
        say(f"reserve -> {result.stdout.strip()}; tasks that need it must wait", "\x1b[33m")
        return True

    def _passed_over_for_me(self, event: Event) -> bool:
        if event.type != "reserve-refused":
            return False
        holders = json.loads(event.data.get("holders") or "[]")
        return any(h.get("a") == self.agent for h in holders if isinstance(h, dict))

    def free_held_when_passed_over(self) -> None:
        """Keep the reservation until another agent's claim passes over a task for it (or it
        runs out, or the swarm finishes), then free it: the task is claimed next."""
        cursor = "0"
        deadline = time.monotonic() + self.hold_seconds
        while time.monotonic() < deadline and not self.stopping and not self.swarm_finished():
            for event in self.queue.events(since=cursor, count=100, wait=_CHECK_EVERY):
                cursor = event.id
                if self._passed_over_for_me(event):
                    say(
                        f"{event.agent_id} passed over {event.task_id}: it needs {self.hold},"
                        " which I hold; freeing it",
                        "\x1b[33m",
                    )
                    deadline = 0.0
                    break
        result = self.run_cli("unreserve", self.hold, "--agent", self.agent)
        say(f"unreserve -> {(result.stdout or result.stderr).strip()}", "\x1b[33m")

    def loop(self) -> None:
        errors = 0
        holding = bool(self.hold) and self.reserve_held()
        say(f"{self.agent} {READY_MARK}")
        if holding:
            self.free_held_when_passed_over()
        while not self.stopping:
            try:
                task = self.next_task()
            except RuntimeError as exc:
                errors += 1
                say(f"error: {exc}", "\x1b[31m")
                if errors >= _MAX_ERRORS:
                    raise
                time.sleep(1)
                continue
            if task is not None:
                self.work_on(task)
            elif self.swarm_finished():
                break
        completed = ", ".join(self.done_tasks) or "none"
        say(f"swarm complete; I completed: {completed}", "\x1b[1;32m")
        if self.report_dir is not None:
            report = {"agent": self.agent, "completed": self.done_tasks}
            (self.report_dir / f"{self.agent}.json").write_text(json.dumps(report))

    def stop(self, signum: int, _frame: FrameType | None) -> None:
        """SIGTERM/SIGHUP: stop the running command too, then exit."""
        self.stopping = True
        if self.child is not None and self.child.poll() is None:
            self.child.terminate()
        raise SystemExit(128 + signum)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--agent", required=True, help="this agent's id")
    parser.add_argument("--wait", type=float, default=10.0, help="seconds per `next --wait`")
    parser.add_argument("--work-min", type=float, default=0.3, help="shortest work (seconds)")
    parser.add_argument("--work-max", type=float, default=1.5, help="longest work (seconds)")
    parser.add_argument("--work-scale", type=float, default=1.0, help="multiply work times")
    parser.add_argument(
        "--fail-first-attempt-of", metavar="SUFFIX", help="fail the first attempt of task *SUFFIX"
    )
    parser.add_argument(
        "--report-dir", help="write <agent>.json here (the tasks it completed) when finished"
    )
    parser.add_argument(
        "--exit-when-done", action="store_true", help="exit when the swarm is finished"
    )
    parser.add_argument(
        "--hold", metavar="PATH", help="reserve PATH first; free it once a claim passed it over"
    )
    parser.add_argument(
        "--hold-seconds", type=float, default=60.0, help="hold PATH at most this long"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    agent = Agent(args)
    signal.signal(signal.SIGTERM, agent.stop)
    signal.signal(signal.SIGHUP, agent.stop)
    reader = PasteReader(sys.stdin.fileno()) if sys.stdin.isatty() else None
    if reader is not None:
        reader.start()
    try:
        agent.loop()
        if reader is not None and not args.exit_when_done:
            say("showing announcements until this pane closes")
            while True:
                signal.pause()
    finally:
        if reader is not None:
            reader.restore()
    return 0


if __name__ == "__main__":
    sys.exit(main())
