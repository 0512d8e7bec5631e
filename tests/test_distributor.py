"""WorkDistributor: plans, claims and completions through one object, announced by themselves."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
import redis
from structlog.testing import capture_logs

from distributor import StaleClaim, TaskQueue, ValidationError
from distributor.messaging.agents import AgentRegistry
from distributor.messaging.messages import Messenger
from distributor.planning.distributor import WorkDistributor
from tests.messaging_support import delete_rq_keys, messaging_settings, unique_host


@pytest.fixture
def host(queue: TaskQueue) -> Iterator[str]:
    name = unique_host()
    yield name
    delete_rq_keys(queue.redis, name)


def make(queue: TaskQueue, host: str, **overrides: object) -> WorkDistributor:
    settings = messaging_settings(queue.swarm, host, **overrides)
    registry = AgentRegistry(queue.redis, queue.swarm, settings=settings)
    for n in range(1, 3):
        registry.register(f"agent-{n}", f"%{n}", host=host)
    return WorkDistributor(num_agents=2, queue=queue, settings=settings)


def contents(queue: TaskQueue, distributor: WorkDistributor) -> list[str]:
    messenger = Messenger(queue.redis, queue.swarm, settings=distributor.settings)
    return [messenger.get(m).content for m in distributor.announcer.sent]


def test_feature_to_completion_with_announcements(queue: TaskQueue, host: str) -> None:
    wd = make(queue, host)
    tasks = wd.plan_feature("Add JWT authentication to FastAPI app")
    first, second = tasks[0].id, tasks[1].id
    assert wd.claim_task(second, "agent-1") is False
    assert wd.claim(second, "agent-1").reason == "blocked"
    assert wd.claim_task(first, "agent-1") is True
    assert wd.claim_task(first, "agent-2") is False
    assert wd.get_agent_workload() == {"agent-1": [first]}
    done = wd.complete_task(first)  # the claim made here is remembered
    assert done.unblocked == [second]
    summary = wd.get_progress_summary()
    assert (summary["completed"], summary["total"], summary["num_agents"]) == (1, 5, 2)
    said = contents(queue, wd)
    assert said[0].startswith("New plan: 5 task(s); available now: " + first)
    assert said[1] == f"agent-1 claimed {first}: {tasks[0].title}"
    assert said[2].startswith(f"agent-1 completed {first}") and said[2].endswith(second)


def test_announcement_failure_is_logged_and_never_undoes(queue: TaskQueue, host: str) -> None:
    wd = make(queue, host, announce_rate_limit_per_minute=1)
    tasks = wd.plan_feature("Add a REST API for invoices")  # uses the only message
    with capture_logs() as logs:
        assert wd.claim_task(tasks[0].id, "agent-2") is True
    assert queue.get(tasks[0].id).agent_id == "agent-2"
    failures = [e for e in logs if e["event"] == "announcement_failed"]
    assert failures and failures[0]["reason"] == "RateLimitExceeded"
    with pytest.raises(StaleClaim):
        wd.complete_task(tasks[1].id)  # never claimed here


def test_announcements_can_be_switched_off(queue: TaskQueue, host: str) -> None:
    wd = make(queue, host, announce_plans=False, announce_claims=False)
    tasks = wd.plan_feature("Speed up the build")
    wd.claim_task(tasks[0].id, "agent-1")
    wd.complete_task(tasks[0].id)
    assert len(wd.announcer.sent) == 1  # only the completion


def test_broadcast_tasks_returns_the_pending_summary(queue: TaskQueue, host: str) -> None:
    wd = make(queue, host)
    tasks = wd.decompose_feature("Build a dashboard page")
    wd.submit_tasks(tasks)
    summary = asyncio.run(wd.broadcast_tasks(tasks))
    assert summary.announced == [tasks[0].id]
    assert summary.message_id and (summary.recipients, summary.pending) == (2, 2)


def test_agent_count_validated(redis_client: redis.Redis) -> None:
    for bad in (0, 101):
        with pytest.raises(ValidationError):
            WorkDistributor(num_agents=bad, queue=TaskQueue(redis_client, "unused"))
