"""Sentinel failover under load: SIGKILL the master while 4 agents work a DAG.

The agents are processes (``tests/chaos/agent.py``) connected with a ``redis+sentinel://`` URL
and ``SWARMQUEUE_MIN_REPLICAS=1``, so every transition they were told about is on the replica
that Sentinel promotes. The master is killed when about a third of the tasks are done; the
killed server comes back empty on its port and the sentinels make it a replica of the new
master. Checked: every task completed once, in dependency order (no task lost, none doubled;
:func:`tests.chaos.invariants.task_graph_violations`), and no agent ever saw Redis unreachable:
the executor's retry budget (``settings.retry_budget_seconds``) covered the failover. The pause
(kill to the first transition on the new master) is printed for docs/benchmarks.md.

A sentinel that missed a failover still names the old master; when that server is back and
empty, a client following it would find no tasks. The second test puts such a sentinel first in
the URL and checks the sync and asyncio clients follow the newest configuration instead.
"""

from __future__ import annotations

import asyncio
import random
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from distributor.settings import Settings
from distributor.tasks.aio import AsyncTaskQueue
from distributor.tasks.queue import TaskQueue
from distributor.testing import delete_swarm
from tests.chaos.harness import AgentFleet, progress_of, random_plan, wait_until
from tests.chaos.invariants import read_acks, task_graph_violations
from tests.redis_sentinel import SERVICE, Sentinel, sentinel_set
from tests.redis_server import RedisServer

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


def test_a_sentinel_that_missed_the_failover_is_outvoted(tmp_path: Path) -> None:
    plan, _ = random_plan(random.Random(7), 20)
    with sentinel_set() as sentinels:
        swarm = "outvoted"
        queue = TaskQueue.from_url(sentinels.url, swarm, settings=Settings(swarm=swarm))
        queue.submit(plan)
        old_port = sentinels.master.port
        with sentinels.sentinels[0].client() as client:
            client.execute_command("SENTINEL", "FAILOVER", SERVICE)
        sentinels.wait_until(
            lambda: all(sentinels.master_port(i) != old_port for i in range(3)),
            "the sentinels did not agree on the promoted replica",
        )
        # a sentinel that never heard of the failover: it watches an empty server under the
        # service's name, as one that slept through it watches the old master come back empty
        empty = RedisServer(tmp_path / "empty").start()
        stale = Sentinel(tmp_path / "stale", empty.port).start()
        try:
            sentinels.wait_until(lambda: stale_names(stale, empty.port), "stale sentinel")
            nodes = ",".join(f"127.0.0.1:{s.port}" for s in [stale, *sentinels.sentinels])
            url = f"redis+sentinel://{nodes}/{SERVICE}/0"
            settings = Settings(swarm=swarm)
            follower = TaskQueue.from_url(url, swarm, settings=settings)
            assert follower.progress()["total"] == len(plan["tasks"])

            async def read_async() -> int:
                async with AsyncTaskQueue.from_url(url, swarm, settings=settings) as aqueue:
                    return int((await aqueue.progress())["total"])

            assert asyncio.run(read_async()) == len(plan["tasks"])
        finally:
            stale.stop()
            empty.kill()
            delete_swarm(queue)


def stale_names(stale: Sentinel, port: int) -> bool:
    """Whether ``stale`` names the server at ``port`` as the service's healthy master."""
    with stale.client() as client:
        _, named = client.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", SERVICE)
        state = client.execute_command("SENTINEL", "MASTER", SERVICE)
    return int(named) == port and "s_down" not in str(state)
