"""Sentinel failover under load: SIGKILL the master while 4 agents work a DAG.

The agents are processes (``tests/chaos/agent.py``) connected with a ``redis+sentinel://`` URL
and ``SWARMQUEUE_MIN_REPLICAS=1``, so every transition they were told about is on the replica
that Sentinel promotes. The master is killed when about a third of the tasks are done; the
killed server comes back empty on its port and the sentinels make it a replica of the new
master. Checked: every task completed once, in dependency order (no task lost, none doubled;
:func:`tests.chaos.invariants.task_graph_violations`), and no agent ever saw Redis unreachable:
the executor's retry budget (``settings.retry_budget_seconds``) covered the failover. The pause
(kill to the first transition on the new master) is printed for docs/benchmarks.md.
"""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from distributor.settings import Settings
from distributor.tasks.queue import TaskQueue
from distributor.testing import delete_swarm
from tests.chaos.harness import AgentFleet, progress_of, random_plan, wait_until
from tests.chaos.invariants import read_acks, task_graph_violations
from tests.redis_sentinel import sentinel_set

TASKS, AGENTS = 120, 4
pytestmark = pytest.mark.cluster


def test_agents_ride_through_a_sentinel_failover(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SWARMQUEUE_MIN_REPLICAS", "1")
    monkeypatch.setenv("SWARMQUEUE_MIN_REPLICAS_TIMEOUT_MS", "500")
    monkeypatch.setenv("SWARMQUEUE_LOG_LEVEL", "ERROR")
    rng = random.Random(13)
    plan, deps = random_plan(rng, TASKS)
    with sentinel_set() as sentinels:
        swarm = "failover"
        queue = TaskQueue.from_url(sentinels.url, swarm, settings=Settings(swarm=swarm))
        queue.submit(plan)
        fleet = AgentFleet(
            tmp_path / "agents",
            sentinels.url,
            swarm,
            lease=60.0,
            work=(0.01, 0.05),
            deadline=150.0,
            rng=rng,
        )
        try:
            for _ in range(AGENTS):
                fleet.start("api")
            wait_until(
                lambda: progress_of(queue)["completed"] >= TASKS // 3, 90, "a third of the tasks"
            )
            old_port = sentinels.master.port
            killed_at, kill_clock = datetime.now(UTC), time.monotonic()
            sentinels.master.kill()
            wait_until(lambda: sentinels.master_port() != old_port, 30, "Sentinel's failover")
            promotion = time.monotonic() - kill_clock
            sentinels.master.start()  # empty; the sentinels make it a replica of the new master
            assert fleet.wait(150), "agents did not finish"
            assert fleet.crashes() == []
            counts = fleet.counts()
            assert len(counts) == AGENTS
            # no agent ever got RedisUnavailable: the retry budget rode the failover out
            assert [c["retries"] for c in counts] == [0] * AGENTS
            assert sum(c["completions"] for c in counts) == TASKS
            violations = task_graph_violations(queue, deps, read_acks(fleet.folder))
            assert violations == []
            after = [e.at for e in queue.events() if e.at > killed_at]
            pause = (min(after) - killed_at).total_seconds()
            print(
                f"\nsentinel failover: pause {pause:.2f}s from SIGKILL to the first transition;"
                f" Sentinel named the new master {promotion:.2f}s after the kill;"
                f" retry budget {Settings().retry_budget_seconds:g}s"
            )
            assert pause < Settings().retry_budget_seconds
        finally:
            fleet.close()
            delete_swarm(queue)
