"""The task graph under chaos: Redis SIGKILLed, replies lost, agents SIGKILLed.

Each scenario submits a random DAG of a few hundred tasks to a private redis-server, starts
agent processes (``tests/chaos/agent.py``: most on the Python API, one on the ``swarmqueue``
CLI) that claim, work a moment and complete until every task is done, strikes at points spread
over the run (each time the swarm passes a completion count), waits for the agents to finish,
and checks :func:`tests.chaos.invariants.task_graph_violations`: no task lost, none completed
twice, none stuck, dependency order held.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

from distributor import TaskQueue
from tests.chaos.harness import (
    AgentFleet,
    ScenarioStats,
    chaos_rounds,
    milestones,
    persist,
    progress_of,
    random_plan,
    scenario_timeout,
)
from tests.chaos.invariants import TaskGraphViolation, read_acks, task_graph_violations
from tests.chaos.proxy import DroppingProxy
from tests.redis_server import AofRedis, RedisServer

pytestmark = pytest.mark.chaos

AGENT_DEADLINE = 150.0  # seconds an agent may take for a round before it gives up
DROP_FRACTIONS = (0.1, 0.02, 0.2)  # reply loss of successive proxy rounds


class Round:
    """One round: a plan, its agents, and the check at the end."""

    def __init__(
        self,
        folder: Path,
        url: str,
        check_url: str,
        name: str,
        rng: random.Random,
        stats: ScenarioStats,
        *,
        tasks: int,
        lease: float,
        work: tuple[float, float],
    ) -> None:
        self.name = name
        self.rng = rng
        self.stats = stats
        self.total = tasks
        self.queue = TaskQueue.from_url(url, name)  # what agents see (maybe via the proxy)
        self.check = TaskQueue.from_url(check_url, name)  # straight to the server
        plan, self.deps = random_plan(rng, tasks)
        persist(lambda: self.queue.submit(plan, request_id=f"{name}-plan"))
        self.fleet = AgentFleet(
            folder, url, name, lease=lease, work=work, deadline=AGENT_DEADLINE, rng=rng
        )
        stats.rounds += 1
        stats.tasks += tasks

    def __enter__(self) -> Round:
        return self

    def __exit__(self, *exc: object) -> None:
        self.fleet.close()  # also when the test failed midway: no agent is left running

    def start(self, api: int, cli: int) -> None:
        for _ in range(api):
            self.fleet.start("api")
        for _ in range(cli):
            self.fleet.start("cli")

    def reached(self, completed: int) -> bool:
        """Whether the swarm has ``completed`` tasks done (or the agents all stopped)."""
        done = int(progress_of(self.check)["completed"]) >= completed
        return done or not self.fleet.running()

    def wait_for(self, completed: int) -> None:
        while not self.reached(completed):
            time.sleep(0.05)

    def finish(self) -> None:
        """Wait for the agents, stop the rest, and check every invariant."""
        ended = self.fleet.wait(AGENT_DEADLINE + 30)
        self.fleet.close()
        self.stats.agents += len(self.fleet.procs)
        for counts in self.fleet.counts():
            self.stats.agent_retries += counts["retries"]
            self.stats.stale_completions += counts["stale"]
        violations = self.fleet.crashes()
        if not ended:
            violations.append(f"agents still running after {AGENT_DEADLINE + 30:g}s (stopped)")
        acks = read_acks(self.fleet.folder)
        events = persist(self.check.events)
        self.stats.leases_expired += sum(1 for e in events if e.type == "expired")
        violations += persist(
            lambda: task_graph_violations(self.check, self.deps, acks, self.fleet.killed)
        )
        self.stats.violations += len(violations)
        if violations:
            raise TaskGraphViolation(f"{self.name} (seed {self.stats.seed})", violations)


@pytest.mark.timeout(scenario_timeout(150))
def test_redis_sigkilled_with_aof_loses_nothing(tmp_path: Path, chaos_stats: ScenarioStats) -> None:
    """SIGKILL redis-server (AOF, fsync always) six times mid-run, restart it on the same port
    and folder: agents ride out each outage, retrying with the same request ids."""
    rng = random.Random(chaos_stats.seed)
    server = AofRedis(tmp_path / "redis").start()
    try:
        for n in range(chaos_rounds()):
            with Round(
                tmp_path / f"round-{n}", server.url, server.url, f"chaos-aof-{n}", rng,
                chaos_stats, tasks=300, lease=120.0, work=(0.02, 0.08),
            ) as run:  # fmt: skip
                run.start(api=4, cli=1)
                for mark in milestones(run.total, 6, rng):
                    run.wait_for(mark)
                    if not run.fleet.running():
                        break
                    server.kill()
                    chaos_stats.redis_kills += 1
                    time.sleep(rng.uniform(0.1, 1.0))
                    server.start()
                run.finish()
    finally:
        server.stop()
        chaos_stats.aof_repairs = server.repairs
    assert chaos_stats.redis_kills >= 6 * chaos_rounds(), "the server was not killed mid-run"


@pytest.mark.timeout(scenario_timeout(150))
def test_dropped_replies_are_answered_once(tmp_path: Path, chaos_stats: ScenarioStats) -> None:
    """A proxy between agents and Redis drops a share of the replies (closing the connection
    after the command ran): every retried request is answered from its stored outcome."""
    rng = random.Random(chaos_stats.seed)
    server = RedisServer(tmp_path / "redis").start()
    try:
        for n in range(chaos_rounds()):
            fraction = DROP_FRACTIONS[n % len(DROP_FRACTIONS)]
            proxy = DroppingProxy(server.port, fraction, rng.randrange(2**31)).start()
            try:
                with Round(
                    tmp_path / f"round-{n}", proxy.url, server.url, f"chaos-drop-{n}", rng,
                    chaos_stats, tasks=300, lease=120.0, work=(0.0, 0.03),
                ) as run:  # fmt: skip
                    run.start(api=4, cli=1)
                    run.finish()
            finally:
                proxy.close()
                chaos_stats.replies_passed += proxy.stats.replies
                chaos_stats.replies_dropped += proxy.stats.dropped
    finally:
        server.stop()
    assert chaos_stats.replies_dropped > 0, "the proxy dropped no reply"


@pytest.mark.timeout(scenario_timeout(150))
def test_sigkilled_agents_with_short_leases(tmp_path: Path, chaos_stats: ScenarioStats) -> None:
    """SIGKILL agents that hold a claim (2 s leases), start replacements: expired claims are
    reaped by the next ``claim_next`` and finished by someone else, once."""
    rng = random.Random(chaos_stats.seed)
    server = RedisServer(tmp_path / "redis").start()
    try:
        for n in range(chaos_rounds()):
            with Round(
                tmp_path / f"round-{n}", server.url, server.url, f"chaos-agents-{n}", rng,
                chaos_stats, tasks=200, lease=2.0, work=(0.05, 0.3),
            ) as run:  # fmt: skip
                run.start(api=5, cli=1)
                for mark in milestones(run.total, 10, rng):
                    run.wait_for(mark)
                    running = run.fleet.running()
                    if not running:
                        break
                    holding = set(persist(run.check.workload)) & set(running)
                    victim = rng.choice(sorted(holding or running))
                    run.fleet.kill(victim)
                    chaos_stats.agent_kills += 1
                    run.fleet.start(victim.split("-", 1)[0])  # a replacement of the same kind
                run.finish()
    finally:
        server.stop()
    assert chaos_stats.agent_kills >= 10 * chaos_rounds(), "no agent was killed mid-run"
