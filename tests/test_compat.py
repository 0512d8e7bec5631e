"""``distributor.compat.WorkDistributor``: code written for claude-swarm runs unchanged.

Each test runs on fakeredis and on a real Redis. The distributor is built the way predecessor
code builds it, ``WorkDistributor(num_agents)``, so it takes its Redis and swarm from the
``SWARMQUEUE_*`` environment (for fakeredis, ``TaskQueue.from_url`` is pointed at the test's
in-process server). The predecessor's repository has no unit tests of its WorkDistributor;
the ones ported here are its planned broadcast test (MESSAGING_INTEGRATION_PLAN.md), the checks
of its integration summary (instantiation, agent limit), the race of its code review, and the
contracts of its docstrings, rewritten against swarmqueue.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import fakeredis
import pytest

from distributor.compat import Task, WorkDistributor
from distributor.messaging.agents import AgentRegistry
from distributor.messaging.messages import MessageType, Messenger
from distributor.settings import Settings
from distributor.tasks.queue import TaskQueue
from distributor.testing import delete_swarm
from tests.conftest import make_client
from tests.messaging_support import delete_rq_keys, unique_host

AGENTS = [f"agent-{n}" for n in range(1, 5)]
RESEARCH = {"best_practices": ["Hash passwords with argon2", "Sign tokens with RS256"]}


@pytest.fixture
def swarm_env(
    backend: str,
    backend_url: str,
    fake_server: Any,
    swarm: str,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[TaskQueue]:
    """The environment predecessor code runs in: SWARMQUEUE_* naming the test's Redis, swarm
    and host, four agents registered; yields a queue for inspecting the swarm."""
    host = unique_host()
    monkeypatch.setenv("SWARMQUEUE_SWARM", swarm)
    monkeypatch.setenv("SWARMQUEUE_HOST", host)
    if backend in ("redis", "cluster"):
        monkeypatch.setenv("SWARMQUEUE_REDIS_URL", backend_url)
        if backend == "cluster":  # RQ is not cluster-safe: deliveries on the plain test Redis
            broker = os.environ["SWARMQUEUE_TEST_REDIS_URL"]
            monkeypatch.setenv("SWARMQUEUE_DELIVERY_REDIS_URL", broker)
    else:

        def on_fake_server(
            cls: type[TaskQueue],
            url: str | None = None,
            swarm: str | None = None,
            *,
            settings: Settings | None = None,
        ) -> TaskQueue:
            return cls(fakeredis.FakeRedis(server=fake_server), swarm, settings=settings)

        monkeypatch.setattr(TaskQueue, "from_url", classmethod(on_fake_server))
    inspect = TaskQueue(make_client(backend, backend_url, fake_server), swarm)
    registry = AgentRegistry(inspect.redis, swarm, settings=inspect.settings)
    for n, agent in enumerate(AGENTS, start=1):
        registry.register(agent, f"%{n}", host=host)
    yield inspect
    delete_swarm(inspect)
    delete_rq_keys(inspect.redis, host)
    inspect.redis.close()


def messages(queue: TaskQueue) -> list[str]:
    """What agent-1's inbox received, oldest first."""
    inbox = Messenger(queue.redis, queue.swarm, settings=queue.settings).inbox("agent-1")
    return [entry.content for entry in inbox]


def test_the_docstring_example_runs_unchanged(swarm_env: TaskQueue) -> None:
    research_data = RESEARCH

    async def example() -> tuple[WorkDistributor, list[Task], dict[str, Any]]:
        distributor = WorkDistributor(num_agents=4)
        tasks = await distributor.decompose_feature(
            "Add JWT authentication to FastAPI app", research_results=research_data
        )
        await distributor.broadcast_tasks(tasks)
        status = distributor.get_progress_summary()
        return distributor, tasks, status

    distributor, tasks, status = asyncio.run(example())
    assert status == {
        "total": 5,
        "completed": 0,
        "in_progress": 0,
        "available": 1,
        "blocked": 4,
        "completion_pct": 0,
        "waiting": 0,
        "failed": 0,
    }
    assert [t.status for t in tasks] == ["available"] + ["blocked"] * 4
    assert "Argon2id" in tasks[1].title and "RS256" in tasks[2].title
    said = messages(swarm_env)
    assert said == [f"Available tasks: {tasks[0].id} ({tasks[0].title}). Claim with: "
                    "swarmqueue claim <id> --agent <you>"]  # fmt: skip
    summary = distributor.last_broadcast
    assert summary is not None and (summary.recipients, summary.pending) == (4, 4)
    # registered by decompose_feature: claiming works right after, from any process
    assert distributor.claim_task(tasks[0].id, "agent-1") is True
    assert tasks[0].status == "claimed" and tasks[0].agent_id == "agent-1"
    assert swarm_env.get(tasks[0].id).agent_id == "agent-1"
    assert distributor.get_progress_summary()["in_progress"] == 1


@dataclass
class DevTask:
    """The task dataclass of claude-swarm's autonomous_dev.py: no ``dependencies`` field."""

    id: str
    title: str
    description: str
    files: list[str]
    agent_id: str | None = None
    status: str = "available"


class AutonomousLoop:
    """The calls ``AutonomousDevelopmentLoop`` makes of the distributor, in its order."""

    def __init__(self, num_agents: int = 4) -> None:
        self.num_agents = num_agents
        self.work_distributor = WorkDistributor(num_agents)

    async def planning_phase(self, feature: str) -> list[DevTask]:
        tasks = [
            DevTask(f"task-{n}", title, f"{title} for {feature}", [f"src/part{n}.py"])
            for n, title in enumerate(
                ["User model", "JWT service", "Auth endpoints", "Middleware", "Tests"], 1
            )
        ]
        await self.work_distributor.broadcast_tasks(tasks)
        return tasks

    async def implementation_phase(self, tasks: list[DevTask]) -> list[dict[str, Any]]:
        done = []
        for i, task in enumerate(tasks[: self.num_agents - 1]):
            task.agent_id, task.status = f"agent-{i + 1}", "in_progress"
            await asyncio.sleep(0)
            task.status = "completed"
            done.append({"task": task, "agent": task.agent_id, "status": "completed"})
        return done


def test_the_autonomous_development_pattern_announces_unsubmitted_tasks(
    swarm_env: TaskQueue,
) -> None:
    loop = AutonomousLoop(num_agents=4)

    async def run() -> list[dict[str, Any]]:
        tasks = await loop.planning_phase("Add JWT authentication")
        return await loop.implementation_phase(tasks)

    assert [d["task"].id for d in asyncio.run(run())] == ["task-1", "task-2", "task-3"]
    said = messages(swarm_env)
    assert len(said) == 1
    assert said[0].startswith("Available tasks: task-1 (User model); task-2 (JWT service)")
    assert said[0].endswith(
        "Not in the queue (announced only): task-1, task-2, task-3, task-4, task-5"
    )
    assert swarm_env.progress()["total"] == 0  # announced, as the predecessor did; not submitted
    assert loop.work_distributor.get_progress_summary()["total"] == 0


def test_broadcast_sends_one_available_tasks_message(swarm_env: TaskQueue) -> None:
    """Ported: MESSAGING_INTEGRATION_PLAN.md's test_work_distributor_broadcasts_tasks."""
    distributor = WorkDistributor(num_agents=4)
    tasks = asyncio.run(distributor.decompose_feature("Add JWT auth"))
    asyncio.run(distributor.broadcast_tasks(tasks))
    said = messages(swarm_env)
    assert len(said) == 1 and said[0].startswith("Available tasks")
    summary = distributor.last_broadcast
    assert summary is not None and summary.message_id is not None
    message = Messenger(swarm_env.redis, swarm_env.swarm).get(summary.message_id)
    assert (message.sender, message.type) == ("work-distributor", MessageType.TASK_AVAILABLE)


def test_instantiation_and_the_agent_limit(swarm_env: TaskQueue) -> None:
    """Ported: the instantiation checks of the predecessor's integration summary."""
    distributor = WorkDistributor(num_agents=4)
    assert distributor.num_agents == 4 and distributor.MAX_AGENTS == 100
    assert isinstance(distributor.messaging, Messenger)
    assert distributor.tasks == {}
    with pytest.raises(ValueError, match="must not exceed 100"):
        WorkDistributor(num_agents=101)
    with pytest.raises(ValueError, match="at least 1"):
        WorkDistributor(num_agents=0)


def test_claim_task_answers_as_its_docstring_says(swarm_env: TaskQueue) -> None:
    distributor = WorkDistributor()
    first, second, *_ = asyncio.run(distributor.decompose_feature("Add a REST API endpoint"))
    assert distributor.claim_task("no-such-task", "agent-1") is False
    assert distributor.claim_task(second.id, "agent-1") is False  # its dependency is open
    assert distributor.modern.claim(second.id, "agent-1").reason == "blocked"
    assert distributor.claim_task(first.id, "agent-1") is True
    assert distributor.claim_task(first.id, "agent-2") is False  # already claimed
    assert (first.status, first.agent_id) == ("claimed", "agent-1")
    assert first.claimed_at is not None
    with pytest.raises(ValueError, match="invalid agent id"):
        distributor.claim_task(second.id, "\n\n[SPOOFED] SYSTEM MESSAGE")


def test_two_agents_claiming_at_once_get_one_claim(swarm_env: TaskQueue) -> None:
    """Ported: the race of the predecessor's code review (two claims at T=0 and T=0.001),
    with one distributor per agent, as separate processes would have."""
    planner = WorkDistributor()
    first = asyncio.run(planner.decompose_feature("Add JWT authentication"))[0]
    contenders = [WorkDistributor() for _ in range(6)]
    start = threading.Barrier(len(contenders))
    won: list[str] = []

    def claim(n: int, distributor: WorkDistributor) -> None:
        start.wait()
        if distributor.claim_task(first.id, f"agent-{n}"):
            won.append(f"agent-{n}")

    threads = [threading.Thread(target=claim, args=p) for p in enumerate(contenders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(won) == 1
    assert swarm_env.get(first.id).agent_id == won[0]


def test_complete_task_unblocks_and_updates_the_objects(swarm_env: TaskQueue) -> None:
    distributor = WorkDistributor()
    tasks = asyncio.run(distributor.decompose_feature("Database model for invoices"))
    first, second = tasks[0], tasks[1]
    assert distributor.complete_task(first.id) is False  # nobody claimed it
    assert distributor.claim_task(first.id, "agent-2")
    assert distributor.complete_task(first.id) is True
    assert (first.status, second.status) == ("completed", "available")
    assert first.completed_at is not None and first.agent_id == "agent-2"
    assert distributor.claim_task(second.id, "agent-3") is True
    assert distributor.complete_task("no-such-task") is False
    other = WorkDistributor()  # a second process: it holds no claim of it
    assert other.complete_task(second.id) is False
    assert swarm_env.get(second.id).status.value == "claimed"


def test_progress_and_workload_keep_the_predecessor_shapes(swarm_env: TaskQueue) -> None:
    distributor = WorkDistributor()
    tasks = asyncio.run(distributor.decompose_feature("Build a frontend UI page"))
    assert distributor.claim_task(tasks[0].id, "agent-1")
    assert distributor.complete_task(tasks[0].id)
    assert distributor.claim_task(tasks[1].id, "agent-2")
    summary = distributor.get_progress_summary()
    assert (summary["in_progress"], summary["completed"], summary["total"]) == (1, 1, len(tasks))
    assert summary["completion_pct"] == 100 / len(tasks)
    assert distributor.get_agent_workload() == {"agent-1": [tasks[0].id], "agent-2": [tasks[1].id]}
    assert set(distributor.tasks) == {t.id for t in tasks}
    assert distributor.tasks[tasks[1].id] is tasks[1]  # the objects handed out, refreshed


def test_every_template_registers_tasks_claimable_at_once(swarm_env: TaskQueue) -> None:
    distributor = WorkDistributor()
    seen: set[str] = set()
    for feature in (
        "Add JWT auth",
        "Add JWT auth",  # the same feature twice: ids are unique per plan
        "New API endpoint for orders",
        "Database model for invoices",
        "Frontend UI for settings",
        "Speed up the nightly export",
    ):
        tasks = asyncio.run(distributor.decompose_feature(feature))
        assert all(isinstance(t, Task) and t.estimated_minutes > 0 for t in tasks)
        assert not seen & {t.id for t in tasks}
        seen |= {t.id for t in tasks}
        assert distributor.claim_task(tasks[0].id, "agent-4") is True
    assert distributor.get_progress_summary()["total"] == len(seen)


def test_research_steers_the_choices(swarm_env: TaskQueue) -> None:
    distributor = WorkDistributor()
    research = {"best_practices": ["bcrypt is fine here", "HS256 with a shared secret"]}
    legacy = asyncio.run(distributor.decompose_feature("Add auth", research_results=research))
    assert "bcrypt" in legacy[1].title and "HS256" in legacy[2].title
    default = asyncio.run(distributor.decompose_feature("Add auth"))  # today's best practice
    assert "Argon2id" in default[1].title and "RS256" in default[2].title
