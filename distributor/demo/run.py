"""Run the demo: a whole swarm at work, started, watched, summarized and cleaned up.

In order: choose Redis (:mod:`~distributor.demo.redis_source`), start a delivery worker for a
demo host, open a private tmux session with one scripted agent per pane
(:mod:`~distributor.demo.agent`), register each pane as an agent, submit the feature through
:class:`~distributor.planning.distributor.WorkDistributor` (which announces the plan), show progress
from the event log until every task is finished, wait for the announcements to be delivered,
and read the summary back from Redis (:mod:`~distributor.demo.summary`).

Everything started here is stopped in every case (normal end, timeout, error, Ctrl-C, SIGTERM,
SIGHUP), newest first: the tmux server (and the agents in it), the worker, the demo's keys when
the Redis is shared, then a private Redis.
"""

from __future__ import annotations

import contextlib
import json
import shlex
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TextIO

from distributor.cli.events import finished, progress_line
from distributor.demo.agent import READY_MARK, cli_command
from distributor.demo.cleanup import delete_demo_keys
from distributor.demo.redis_source import RedisMode, RedisSource, open_redis
from distributor.demo.session import DemoSession, child_env
from distributor.demo.summary import (
    DemoSummary,
    announcement_ids,
    build_summary,
    held_files,
    messages_of,
    pending_deliveries,
)
from distributor.errors import DemoError
from distributor.log import get_logger
from distributor.messaging.agents import Agent, AgentRegistry
from distributor.messaging.messages import Messenger
from distributor.planning.distributor import WorkDistributor
from distributor.settings import Settings
from distributor.tasks.models import Event
from distributor.tasks.queue import TaskQueue

log = get_logger(__name__)

DEFAULT_FEATURE = "Add JWT authentication to FastAPI app"
FAIL_SUFFIX = "-3"  # the first attempt of the plan's third task fails, and is retried
# agent-1 reviews this file of the default feature's third task first (a file reservation):
# the agent that would take that task passes it over for the fourth, then agent-1 frees it
HELD_FILE = "app/security/jwt.py"
HOLDER = "agent-1"
_READY_TIMEOUT = 20.0
_SETTLE_TIMEOUT = 20.0
_WORKER_STOP_TIMEOUT = 5.0


@dataclass(frozen=True)
class DemoOptions:
    """What ``swarmqueue demo`` was asked to do."""

    agents: int = 4
    redis_mode: RedisMode = "auto"
    configured_url: str | None = None
    timeout: float = 120.0
    attach: bool = False
    linger: float = 5.0
    work_scale: float = 1.0
    feature: str = DEFAULT_FEATURE
    dashboard_port: int | None = None  # serve the dashboard on 127.0.0.1 at this port


@dataclass
class DemoResult:
    summary: DemoSummary
    timed_out: bool


@contextlib.contextmanager
def signals_interrupt() -> Iterator[None]:
    """Turn SIGTERM and SIGHUP into KeyboardInterrupt (like Ctrl-C), so cleanup always runs."""

    def interrupt(signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    previous = {s: signal.signal(s, interrupt) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def stop_process(proc: subprocess.Popen[bytes], timeout: float = _WORKER_STOP_TIMEOUT) -> None:
    """SIGTERM (RQ's warm shutdown), then SIGKILL if it does not end in time."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def short_event(event: Event) -> str:
    """``13:22:01 claimed auth-1a2b-1 by agent-3``"""
    by = f" by {event.agent_id}" if event.agent_id else ""
    extra = ""
    if event.unblocked:
        extra = f" -> available: {', '.join(event.unblocked)}"
    elif event.type == "failed":
        retry = "for good" if event.data.get("final") else "will be retried"
        extra = f" ({event.data.get('reason', '?')}; {retry})"
    elif event.type == "reserve-refused":
        extra = f" passed over: {held_files(event)}"
    return f"{event.at:%H:%M:%S} {event.type:<16} {event.task_id}{by}{extra}"


class Display:
    """Progress for a person: event lines above a bar redrawn in place on a terminal (one line
    per change otherwise); silent while a tmux client owns the terminal."""

    def __init__(self, out: TextIO, *, muted: Callable[[], bool] = lambda: False) -> None:
        self.out = out
        self.redraw = out.isatty()
        self.muted = muted
        self.bar = ""

    def _write(self, text: str) -> None:
        self.out.write(text)
        self.out.flush()

    def line(self, text: str) -> None:
        if self.muted():
            return
        self._write(f"\r\x1b[K{text}\n{self.bar}" if self.redraw and self.bar else f"{text}\n")

    def progress(self, bar: str) -> None:
        if bar == self.bar:
            return
        self.bar = bar
        if self.muted():
            return
        self._write(f"\r\x1b[K{bar}" if self.redraw else f"{bar}\n")

    def end(self) -> None:
        if self.redraw and self.bar and not self.muted():
            self._write("\n")
        self.bar = ""


class DemoRun:
    """One run of the demo on a fresh swarm; :meth:`run` returns its result."""

    def __init__(self, options: DemoOptions, settings: Settings, display: Display) -> None:
        self.options = options
        self.base_settings = settings
        self.display = display
        self.unique = uuid.uuid4().hex[:8]
        self.swarm = f"demo-{self.unique}"
        self.host = f"demo-{self.unique}"
        self.session = DemoSession(f"swarmqueue-demo-{self.unique}")
        self.client: subprocess.Popen[bytes] | None = None
        self.started = time.monotonic()

    def say(self, text: str) -> None:
        self.display.line(text)

    # -- starting ----------------------------------------------------------------------------

    def _env(self, source: RedisSource, tmp: Path) -> dict[str, str]:
        return {
            "SWARMQUEUE_REDIS_URL": source.url,
            "SWARMQUEUE_SWARM": self.swarm,
            "SWARMQUEUE_HOST": self.host,
            "SWARMQUEUE_RETRY_BACKOFF_SECONDS": "1",
            "SWARMQUEUE_RETRY_BACKOFF_MAX_SECONDS": "2",
            "SWARMQUEUE_LEASE_SECONDS": "60",
            "SWARMQUEUE_STATE_DIR": str(tmp / "state"),
            "SWARMQUEUE_LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
        }

    def _start_worker(self, env: dict[str, str], tmp: Path) -> subprocess.Popen[bytes]:
        log_path = tmp / "worker.log"
        worker_env = child_env({**env, "SWARMQUEUE_LOG_LEVEL": "INFO"})
        with open(log_path, "wb") as log_file:
            proc = subprocess.Popen(
                [*cli_command(), "worker", "--host", self.host],
                env=worker_env,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches the demo, which stops it in order
            )
        self.say(f"delivery worker started for host {self.host} (pid {proc.pid})")
        return proc

    def _agent_command(self, agent_id: str, reports: Path) -> list[str]:
        hold = agent_id == HOLDER and self.options.feature == DEFAULT_FEATURE
        return [
            sys.executable, "-m", "distributor.demo.agent", "--agent", agent_id,
            "--work-scale", f"{self.options.work_scale:g}",
            "--fail-first-attempt-of", FAIL_SUFFIX, "--report-dir", str(reports),
            *(["--hold", HELD_FILE] if hold else []),
        ]  # fmt: skip

    def _open_panes(self, env: dict[str, str], reports: Path) -> list[str]:
        ids = [f"agent-{n}" for n in range(1, self.options.agents + 1)]
        commands = [self._agent_command(a, reports) for a in ids]
        panes = self.session.open(commands, env, ids)
        deadline = time.monotonic() + _READY_TIMEOUT
        for pane in panes:
            while READY_MARK not in self.session.capture(pane):
                if time.monotonic() > deadline:
                    shown = self.session.capture(pane).strip()[-300:]
                    raise DemoError(f"agent in pane {pane} did not start: {shown or 'no output'}")
                time.sleep(0.05)
        return panes

    def _register(self, queue: TaskQueue, settings: Settings, panes: list[str]) -> list[Agent]:
        registry = AgentRegistry(queue.redis, self.swarm, settings=settings)
        socket = self.session.socket_path
        agents = [
            registry.register(f"agent-{n}", pane, socket=socket, host=self.host)
            for n, pane in enumerate(panes, start=1)
        ]
        self.say(f"tmux session on socket {socket}: {len(panes)} agents in panes")
        for agent in agents:
            self.say(f"  {agent.id} in pane {agent.pane}")
        return agents

    def _attach(self, env: dict[str, str]) -> None:
        script = (
            f"{shlex.join([*cli_command(), 'watch'])}; echo; echo 'every task is finished: "
            "this session closes in a few seconds and the summary follows'; sleep 3600"
        )
        self.session.add_status_pane(["sh", "-c", script], env)
        self.client = self.session.attach()

    def attached(self) -> bool:
        return self.client is not None and self.client.poll() is None

    # -- watching ----------------------------------------------------------------------------

    def _watch(self, queue: TaskQueue, deadline: float) -> bool:
        """Show events and the progress bar until every task is finished; False on timeout."""
        cursor = "0"
        while True:
            batch = queue.events(since=cursor, count=1000)
            for event in batch:
                self.say(short_event(event))
            if batch:
                cursor = batch[-1].id
            progress = queue.progress()
            self.display.progress(progress_line(progress))
            if finished(progress):
                self.display.end()
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.display.end()
                return False
            queue.events(since=cursor, count=1, wait=min(1.0, remaining))

    def _settle(
        self, messenger: Messenger, agents: list[Agent], sent: list[str], reports: Path
    ) -> None:
        """Wait until every agent finished its last command (so its announcements are recorded)
        and no delivery is pending any more."""
        deadline = time.monotonic() + _SETTLE_TIMEOUT
        while len(list(reports.glob("*.json"))) < len(agents) and time.monotonic() < deadline:
            time.sleep(0.1)
        while time.monotonic() < deadline:
            ids = announcement_ids(messenger, agents, sent)
            if pending_deliveries(messages_of(messenger, ids)) == 0:
                return
            time.sleep(0.2)
        self.say("some announcements are still pending delivery")

    def _linger(self) -> None:
        """With --attach: leave the finished session on screen a moment, then detach."""
        end = time.monotonic() + self.options.linger
        while self.attached() and time.monotonic() < end:
            time.sleep(0.1)
        if self.attached():
            self.session.detach_clients()
        if self.client is not None:
            try:
                self.client.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.client.kill()
                self.client.wait()

    def _serve_dashboard(self, stack: contextlib.ExitStack, settings: Settings, port: int) -> None:
        """Serve the web dashboard (loopback only) until the demo ends, and say where."""
        from distributor.dashboard.server import Background

        board = Background(settings, port=port)
        board.start()
        stack.callback(board.stop)
        self.say(f"dashboard: {board.url}swarm/{self.swarm} (open it to watch the swarm live)")

    def _show_worker_log(self, path: Path, lines: int = 20) -> None:
        """The end of the worker's log on stderr (the file goes with the temporary directory)."""
        tail = path.read_text(errors="replace").splitlines()[-lines:] if path.exists() else []
        sys.stderr.write("".join(f"worker log: {line}\n" for line in tail))

    # -- the whole run -----------------------------------------------------------------------

    def run(self) -> DemoResult:
        options = self.options
        with contextlib.ExitStack() as stack:
            stack.enter_context(signals_interrupt())
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="swarmqueue-demo-")))
            reports = tmp / "reports"
            reports.mkdir()
            source = stack.enter_context(open_redis(options.redis_mode, options.configured_url))
            self.say(f"Redis: {source.describe()}; swarm {self.swarm}")
            settings = self.base_settings.model_copy(
                update={
                    "redis_url": source.url,
                    "swarm": self.swarm,
                    "host": self.host,
                    "retry_backoff_seconds": 1.0,
                    "retry_backoff_max_seconds": 2.0,
                    "lease_seconds": 60.0,
                }
            )
            queue = TaskQueue.from_url(settings=settings)
            stack.callback(queue.redis.close)
            if source.shared:
                stack.callback(delete_demo_keys, queue, self.host)
            env = self._env(source, tmp)
            worker = self._start_worker(env, tmp)
            stack.callback(stop_process, worker)
            stack.callback(self.session.kill)
            panes = self._open_panes(env, reports)
            agents = self._register(queue, settings, panes)
            if options.dashboard_port is not None:  # the swarm exists now: its page answers
                self._serve_dashboard(stack, settings, options.dashboard_port)
            if options.attach:
                self._attach(env)
                self.display.muted = self.attached
            distributor = WorkDistributor(num_agents=len(agents), queue=queue, settings=settings)
            tasks = distributor.plan_feature(options.feature)
            self.say(f"submitted {options.feature!r}: {len(tasks)} tasks")
            for task in tasks:
                after = f" (after {', '.join(task.dependencies)})" if task.dependencies else ""
                self.say(f"  {task.id}  {task.title}{after}")
            done = self._watch(queue, self.started + options.timeout)
            messenger = Messenger(queue.redis, self.swarm, settings=settings)
            sent = distributor.announcer.sent
            if done:
                self._settle(messenger, agents, sent, reports)
            if options.attach:
                self._linger()
            summary = build_summary(
                queue,
                messenger,
                agents,
                sent,
                redis=source.describe(),
                tmux_socket=self.session.socket_path,
                feature=options.feature,
                elapsed=time.monotonic() - self.started,
            )
            if not done or any(r.pending for r in summary.panes):
                self._show_worker_log(tmp / "worker.log")
            return DemoResult(summary=summary, timed_out=not done)
        raise AssertionError("unreachable")  # pragma: no cover


def run_demo(options: DemoOptions, settings: Settings, progress_out: TextIO) -> DemoResult:
    """Run the demo once; progress goes to ``progress_out``."""
    return DemoRun(options, settings, Display(progress_out)).run()


def summary_json(summary: DemoSummary) -> str:
    return json.dumps(summary.model_dump(mode="json"), sort_keys=True)
