"""The seed scenario end to end: the JWT feature decomposed by ``WorkDistributor``, and four
agent processes pulling and finishing its five tasks through the ``swarmqueue`` CLI.

Runs on a real Redis and on a fakeredis TCP server (other processes cannot share the
in-process fakeredis, so the server listens on a port in a thread of this process). The agents
are the demo's scripted agent (``python -m distributor.demo.agent``), which calls
``swarmqueue next --wait``, ``done``; no worker runs here, so announcements stay recorded with
every recipient ``pending`` (delivery into panes is what tests/test_demo.py shows).
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from distributor.demo.redis_source import embedded_fakeredis
from distributor.messaging.agents import AgentRegistry
from distributor.messaging.messages import MessageType, Messenger
from distributor.planning.distributor import WorkDistributor
from distributor.tasks.models import Event, Task
from distributor.tasks.queue import TaskQueue
from distributor.testing import delete_swarm
from tests.messaging_support import delete_rq_keys, messaging_settings, unique_host

pytestmark = pytest.mark.slow

FEATURE = "Add JWT authentication to FastAPI app"
AGENTS = [f"agent-{n}" for n in range(1, 5)]


@pytest.fixture(params=["redis", "fakeredis"])
def redis_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A Redis other processes can reach: the real one, or fakeredis over TCP."""
    if request.param == "redis":
        yield str(request.getfixturevalue("real_redis_url"))
        return
    with embedded_fakeredis() as source:
        yield source.url


def start_agent(agent_id: str, env: dict[str, str]) -> subprocess.Popen[str]:
    args = [sys.executable, "-m", "distributor.demo.agent", "--agent", agent_id]
    args += ["--work-scale", "0.05", "--wait", "5", "--exit-when-done"]
    return subprocess.Popen(
        args, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip


def positions(events: list[Event], kind: str) -> dict[str, list[int]]:
    """Positions in the event log of each task's events of one kind."""
    found: dict[str, list[int]] = {}
    for n, event in enumerate(events):
        if event.type == kind:
            found.setdefault(event.task_id, []).append(n)
    return found


def test_four_agent_processes_finish_the_jwt_feature_in_dependency_order(
    redis_url: str, tmp_path: Path
) -> None:
    swarm, host = f"test-seed-{uuid.uuid4().hex[:10]}", unique_host()
    settings = messaging_settings(swarm, host, redis_url=redis_url)
    queue = TaskQueue.from_url(settings=settings)
    procs: list[subprocess.Popen[str]] = []
    try:
        registry = AgentRegistry(queue.redis, swarm, settings=settings)
        for n, agent in enumerate(AGENTS, start=1):
            registry.register(agent, f"%{n}", host=host)
        env = {
            **os.environ,
            "SWARMQUEUE_REDIS_URL": redis_url,
            "SWARMQUEUE_SWARM": swarm,
            "SWARMQUEUE_HOST": host,
            "SWARMQUEUE_LOG_LEVEL": "WARNING",
            "SWARMQUEUE_STATE_DIR": str(tmp_path / "state"),
        }
        procs = [start_agent(agent, env) for agent in AGENTS]  # they wait for work

        distributor = WorkDistributor(num_agents=4, queue=queue, settings=settings)
        tasks = distributor.plan_feature(FEATURE)
        for proc in procs:
            out, err = proc.communicate(timeout=90)
            assert proc.returncode == 0, f"agent failed: {err}\n{out}"

        t1, t2, t3, t4, t5 = (t.id for t in tasks)
        assert [t.dependencies for t in tasks] == [[], [t1], [t2], [t2], [t3, t4]]
        events = queue.events()
        claimed, completed = positions(events, "claimed"), positions(events, "completed")
        assert sorted(completed) == sorted([t1, t2, t3, t4, t5])
        # Each claim of a task comes after its dependencies' completions in the one event log.
        assert min(claimed[t2]) > completed[t1][0]
        assert min(claimed[t3]) > completed[t2][0] and min(claimed[t4]) > completed[t2][0]
        assert min(claimed[t5]) > max(completed[t3][0], completed[t4][0])
        final = {t.id: t for t in queue.tasks()}
        for task in final.values():  # and by the tasks' own timestamps
            assert task.agent_id in AGENTS and task.claimed_at and task.completed_at
            for dep in task.dependencies:
                ended = final[dep].completed_at
                assert ended is not None and task.claimed_at >= ended

        progress = queue.progress()
        assert (progress["completed"], progress["total"], progress["completion_pct"]) == (
            5,
            5,
            100.0,
        )
        check_announcements(queue, distributor, tasks, events)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        delete_swarm(queue)
        delete_rq_keys(queue.redis, host)
        queue.redis.close()


def check_announcements(
    queue: TaskQueue, distributor: WorkDistributor, tasks: list[Task], events: list[Event]
) -> None:
    """The plan, every claim and every completion were announced to all four agents."""
    messenger = Messenger(queue.redis, queue.swarm, settings=distributor.settings)
    inbox = messenger.inbox(AGENTS[0], 100)
    for agent in AGENTS[1:]:  # a broadcast reaches every inbox
        assert [e.message_id for e in messenger.inbox(agent, 100)] == [e.message_id for e in inbox]
    said = [(e.type, e.content) for e in inbox]
    titles = {t.id: t.title for t in tasks}
    expected = {
        (
            MessageType.TASK_AVAILABLE,
            f"New plan: 5 task(s); available now: {tasks[0].id} ({tasks[0].title}). "
            "Claim with: swarmqueue next --agent <you>",
        )
    }
    for e in events:
        if e.type == "claimed":
            text = f"{e.agent_id} claimed {e.task_id}: {titles[e.task_id]}"
            expected.add((MessageType.CLAIMED, text))
        elif e.type == "completed":
            unblocked = ", ".join(e.unblocked) or "nothing new"
            text = f"{e.agent_id} completed {e.task_id}: {titles[e.task_id]}; now available: "
            expected.add((MessageType.COMPLETED, text + unblocked))
    assert set(said) == expected
    assert len(said) == 1 + 5 + 5  # one plan, five claims, five completions
    assert distributor.announcer.sent == [inbox[0].message_id]  # the plan, by the distributor
    for entry in inbox:
        message = messenger.get(entry.message_id)
        assert message.sender == distributor.settings.announce_sender
        assert sorted(d.agent_id for d in message.deliveries) == AGENTS
