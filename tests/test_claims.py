"""Claims: one named task or the best ready one; refusals say why; no task is claimed twice."""

from __future__ import annotations

import threading

from distributor import ClaimResult, TaskQueue, TaskStatus
from tests.conftest import chain_plan


def test_claim_reasons(queue: TaskQueue) -> None:
    queue.submit(chain_plan(3))
    assert queue.claim("nope", "a1").reason == "not_found"
    assert queue.claim("t1", "a1").reason == "blocked"
    first = queue.claim("t0", "a1")
    assert first.claimed and first.claim is not None
    assert first.claim.token == 1
    assert first.claim.task.agent_id == "a1"
    assert first.claim.task.status == TaskStatus.CLAIMED
    second = queue.claim("t0", "a2")
    assert (second.claimed, second.reason) == (False, "already_claimed")
    assert second.task is not None and second.task.agent_id == "a1"
    queue.complete("t0", "a1", first.claim.token)
    assert queue.claim("t0", "a2").reason == "not_available"


def test_claim_next_prefers_priority_then_age(queue: TaskQueue) -> None:
    queue.submit(
        {
            "tasks": [
                {"id": "old", "title": "O"},
                {"id": "urgent", "title": "U", "priority": 5},
                {"id": "young", "title": "Y"},
            ]
        }
    )
    order = []
    while (claim := queue.claim_next("a1")) is not None:
        order.append(claim.task.id)
    assert order == ["urgent", "old", "young"]
    assert queue.progress()["claimed"] == 3
    assert queue.workload() == {"a1": ["old", "urgent", "young"]}


def test_claim_next_on_empty_swarm_is_none(queue: TaskQueue) -> None:
    assert queue.claim_next("a1") is None


def test_two_agents_claim_same_task_at_once(queue: TaskQueue) -> None:
    for round_ in range(20):
        task_id = f"race{round_}"
        queue.submit({"tasks": [{"id": task_id, "title": "R"}]})
        barrier = threading.Barrier(2)
        results: dict[str, ClaimResult] = {}

        def contender(
            agent: str,
            task_id: str = task_id,
            barrier: threading.Barrier = barrier,
            results: dict[str, ClaimResult] = results,
        ) -> None:
            barrier.wait()
            results[agent] = queue.claim(task_id, agent)

        threads = [threading.Thread(target=contender, args=(a,)) for a in ("a1", "a2")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        winners = [r for r in results.values() if r.claimed]
        losers = [r for r in results.values() if not r.claimed]
        assert len(winners) == 1
        assert [r.reason for r in losers] == ["already_claimed"]
