"""The chaos suite's moving parts: a redis-server to SIGKILL, agent processes, plans, numbers.

Everything here runs the product as users run it: real ``redis-server`` processes, agents as
separate processes (``tests/chaos/agent.py``) on the Python API or the ``swarmqueue`` CLI.
Every process started here is stopped by PID or process group in ``close()``, also when the
test fails.

``SWARMQUEUE_CHAOS_ROUNDS`` (default 1) repeats each scenario's chaos that many times, for a
longer soak; ``SWARMQUEUE_CHAOS_SEED`` makes a run repeat its random choices.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from distributor import TaskQueue
from distributor.errors import RedisUnavailable

T = TypeVar("T")

AGENT = Path(__file__).with_name("agent.py")
ROOT = Path(__file__).resolve().parents[2]


def chaos_rounds() -> int:
    """How many rounds each scenario runs (``SWARMQUEUE_CHAOS_ROUNDS``, default 1)."""
    raw = os.environ.get("SWARMQUEUE_CHAOS_ROUNDS", "1")
    try:
        rounds = int(raw)
    except ValueError:
        raise ValueError(f"SWARMQUEUE_CHAOS_ROUNDS must be a whole number, not {raw!r}") from None
    if rounds < 1:
        raise ValueError("SWARMQUEUE_CHAOS_ROUNDS must be at least 1")
    return rounds


def chaos_seed() -> int:
    """The run's random seed (``SWARMQUEUE_CHAOS_SEED``, else a fresh one, shown on failure)."""
    raw = os.environ.get("SWARMQUEUE_CHAOS_SEED")
    return int(raw) if raw else random.SystemRandom().randrange(2**31)


def scenario_timeout(per_round: float) -> float:
    """The pytest timeout of a scenario: its rounds, plus a minute to set up and check."""
    return per_round * chaos_rounds() + 60


@dataclass
class ScenarioStats:
    """The numbers of one scenario's run, printed at the end of the session."""

    name: str
    seed: int
    rounds: int = 0
    tasks: int = 0
    agents: int = 0
    redis_kills: int = 0
    aof_repairs: int = 0  # torn AOFs cut back by redis-check-aof before a restart
    agent_kills: int = 0
    worker_kills: int = 0
    replies_passed: int = 0
    replies_dropped: int = 0
    agent_retries: int = 0  # calls sent again by agents after Redis was unreachable
    stale_completions: int = 0
    leases_expired: int = 0  # claims of killed agents returned to the swarm
    messages: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    violations: int = 0
    seconds: float = 0.0
    started: float = field(default_factory=time.monotonic, repr=False)

    def line(self) -> str:
        """One line: the name, then every number that is not zero."""
        self.seconds = round(time.monotonic() - self.started, 1)
        shown = {
            k: v
            for k, v in vars(self).items()
            if k == "violations" or (k not in ("name", "started") and v not in (0, {}, 0.0))
        }
        return f"{self.name}: " + " ".join(f"{k}={v}" for k, v in shown.items())


def persist(call: Callable[[], T], timeout: float = 60.0) -> T:
    """``call()`` again while Redis is unreachable (the harness's own reads and writes)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return call()
        except RedisUnavailable:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def wait_until(check: Callable[[], bool], timeout: float, what: str, every: float = 0.05) -> None:
    """Poll ``check()``; a harness failure (not an invariant) when it never holds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"chaos harness: timed out after {timeout:g}s waiting for {what}")
        time.sleep(every)


def kill_group(proc: subprocess.Popen[Any]) -> None:
    """SIGKILL ``proc``'s whole process group (it was started in a session of its own) and
    reap it: the process and every child it had (a CLI step, a tmux client, a scheduler)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def random_plan(
    rng: random.Random, count: int, prefix: str = "t", max_deps: int = 3, window: int = 30
) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """A plan of ``count`` tasks, each depending on up to ``max_deps`` of the ``window`` tasks
    before it (a DAG wide enough for every agent), and each task's dependencies.

    ``max_attempts`` is the highest allowed: an agent killed mid-task costs its task an attempt
    when the lease runs out, and running out of attempts is not what these scenarios test.
    """
    tasks: list[dict[str, Any]] = []
    deps: dict[str, list[str]] = {}
    for i in range(count):
        task_id = f"{prefix}{i:04d}"
        earlier = [f"{prefix}{j:04d}" for j in range(max(0, i - window), i)]
        chosen = sorted(rng.sample(earlier, min(len(earlier), rng.randint(0, max_deps))))
        deps[task_id] = chosen
        tasks.append(
            {
                "id": task_id,
                "title": f"chaos task {i}",
                "dependencies": chosen,
                "priority": rng.randint(0, 3),
                "max_attempts": 100,
            }
        )
    return {"tasks": tasks}, deps


class AgentFleet:
    """Agent processes of one swarm (``tests/chaos/agent.py``), each in a session of its own.

    Each agent appends its acknowledgements to ``<folder>/<agent>.acks`` (see
    :func:`tests.chaos.invariants.read_acks`); its last stdout line is its counts.
    """

    def __init__(
        self,
        folder: Path,
        url: str,
        swarm: str,
        *,
        lease: float,
        work: tuple[float, float],
        deadline: float,
        rng: random.Random,
    ) -> None:
        self.folder = folder
        self.url = url
        self.swarm = swarm
        self.lease = lease
        self.work = work
        self.deadline = deadline
        self.rng = rng
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.killed: set[str] = set()
        folder.mkdir(parents=True, exist_ok=True)

    def start(self, via: str = "api") -> str:
        """Start one more agent; returns its id."""
        agent = f"{via}-agent-{len(self.procs) + 1}"
        out = (self.folder / f"{agent}.out").open("wb")
        err = (self.folder / f"{agent}.err").open("wb")
        self.procs[agent] = subprocess.Popen(
            [
                sys.executable, str(AGENT), self.url, self.swarm, agent,
                str(self.folder / f"{agent}.acks"), "--via", via, "--lease", str(self.lease),
                "--work-min", str(self.work[0]), "--work-max", str(self.work[1]),
                "--deadline", str(self.deadline), "--seed", str(self.rng.randrange(2**31)),
            ],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            cwd=ROOT,
            start_new_session=True,
        )  # fmt: skip
        out.close()
        err.close()
        return agent

    def running(self) -> list[str]:
        return [a for a, p in self.procs.items() if p.poll() is None]

    def kill(self, agent: str) -> None:
        """SIGKILL the agent (and a CLI step it may be running)."""
        kill_group(self.procs[agent])
        self.killed.add(agent)

    def wait(self, timeout: float) -> bool:
        """Whether every agent ended within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while self.running():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    def counts(self) -> list[dict[str, Any]]:
        """The counts line of every agent that ended by itself."""
        found = []
        for agent in self.procs:
            if agent in self.killed:
                continue
            lines = (self.folder / f"{agent}.out").read_text().splitlines()
            if lines:
                found.append(json.loads(lines[-1]))
        return found

    def crashes(self) -> list[str]:
        """Agents that were not killed but did not end with exit 0, with their stderr's end."""
        found = []
        for agent, proc in self.procs.items():
            if agent in self.killed or proc.returncode in (0, None):
                continue
            tail = (self.folder / f"{agent}.err").read_text()[-1500:].strip()
            found.append(f"agent {agent} exited {proc.returncode}: {tail}")
        return found

    def close(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                kill_group(proc)


def progress_of(queue: TaskQueue) -> dict[str, Any]:
    """The swarm's progress, read again while Redis is unreachable."""
    return persist(queue.progress)


def milestones(total: int, count: int, rng: random.Random) -> list[int]:
    """``count`` completion counts spread over (0, total), each moved a little at random: the
    harness strikes when the swarm passes each one, so every strike lands mid-run."""
    step = total / (count + 1)
    return [max(1, int(step * (i + 1) + rng.uniform(-step / 3, step / 3))) for i in range(count)]
