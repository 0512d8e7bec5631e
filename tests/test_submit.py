"""Submitting plans: all or nothing, dependencies resolved, refusals leave Redis unchanged."""

from __future__ import annotations

import pytest
import redis

from distributor import DependencyCycle, DuplicateTask, TaskQueue, TaskStatus, UnknownDependency
from tests.conftest import chain_plan, snapshot


def test_submit_sets_initial_status_and_counts(queue: TaskQueue) -> None:
    ids = queue.submit(
        {
            "tasks": [
                {"id": "c", "title": "C", "dependencies": ["a", "b"]},
                {"id": "a", "title": "A", "files": ["a.py"], "estimated_minutes": 5},
                {"id": "b", "title": "B", "dependencies": ["a"], "priority": 3},
            ]
        }
    )
    assert ids == ["c", "a", "b"]  # submission order, whatever the dependencies
    assert queue.get("a").status == TaskStatus.AVAILABLE
    assert queue.get("a").files == ["a.py"]
    assert queue.get("a").estimated_minutes == 5
    c = queue.get("c")
    assert c.status == TaskStatus.BLOCKED
    assert c.unmet_dependencies == ["a", "b"]
    progress = queue.progress()
    assert progress["total"] == 3
    assert (progress["available"], progress["blocked"]) == (1, 2)
    assert [t.id for t in queue.tasks(TaskStatus.BLOCKED)] == ["c", "b"]


def test_later_plan_may_depend_on_earlier_tasks(queue: TaskQueue) -> None:
    queue.submit({"tasks": [{"id": "base", "title": "Base"}]})
    claim = queue.claim_next("a1")
    assert claim is not None
    queue.complete("base", "a1", claim.token)
    queue.submit({"tasks": [{"id": "next", "title": "N", "dependencies": ["base"]}]})
    assert queue.get("next").status == TaskStatus.AVAILABLE
    queue.submit({"tasks": [{"id": "after", "title": "A", "dependencies": ["next"]}]})
    assert queue.get("after").status == TaskStatus.BLOCKED


@pytest.mark.parametrize(
    ("plan", "error", "match"),
    [
        (
            {
                "tasks": [
                    {"id": "a", "title": "A", "dependencies": ["b"]},
                    {"id": "b", "title": "B", "dependencies": ["a"]},
                ]
            },
            DependencyCycle,
            "a -> b -> a|b -> a -> b",
        ),
        (
            {"tasks": [{"id": "a", "title": "A", "dependencies": ["a"]}]},
            DependencyCycle,
            "a -> a",
        ),
        (
            {"tasks": [{"id": "a", "title": "A", "dependencies": ["ghost"]}]},
            UnknownDependency,
            "ghost",
        ),
        (
            {"tasks": [{"id": "a", "title": "A"}, {"id": "a", "title": "again"}]},
            DuplicateTask,
            "a",
        ),
        (
            {"tasks": [{"id": "existing", "title": "again"}, {"id": "new", "title": "N"}]},
            DuplicateTask,
            "existing",
        ),
    ],
)
def test_refused_plans_change_nothing(
    queue: TaskQueue,
    redis_client: redis.Redis,
    plan: dict[str, object],
    error: type[Exception],
    match: str,
) -> None:
    queue.submit({"tasks": [{"id": "existing", "title": "E"}]})
    before = snapshot(redis_client, queue.keys.prefix)
    with pytest.raises(error, match=match):
        queue.submit(plan)
    assert snapshot(redis_client, queue.keys.prefix) == before


def test_large_chain_submits_in_order(queue: TaskQueue) -> None:
    ids = queue.submit(chain_plan(500))
    assert ids[0] == "t0" and ids[-1] == "t499"
    assert queue.progress()["blocked"] == 499


def test_later_plans_add_dependents_to_unfinished_tasks(queue: TaskQueue) -> None:
    queue.submit(
        {
            "tasks": [
                {"id": "base", "title": "B"},
                {"id": "one", "title": "1", "dependencies": ["base"]},
            ]
        }
    )
    queue.submit({"tasks": [{"id": "two", "title": "2", "dependencies": ["base"]}]})
    queue.submit({"tasks": [{"id": "three", "title": "3", "dependencies": ["base", "two"]}]})
    assert queue.get("three").unmet_dependencies == ["base", "two"]
    claim = queue.claim_next("a1")
    assert claim is not None and claim.task.id == "base"
    assert queue.complete("base", "a1", claim.token).unblocked == ["one", "two"]
    assert queue.get("three").unmet_dependencies == ["two"]


def test_get_many_returns_named_tasks_in_order(queue: TaskQueue) -> None:
    queue.submit(chain_plan(4))
    found = queue.get_many(["t3", "ghost", "t0"])
    assert [t.id for t in found] == ["t3", "t0"]
    assert found[0].unmet_dependencies == ["t2"]  # its dependency is outside the list
    assert found[1].status == TaskStatus.AVAILABLE


def test_every_field_given_is_stored_as_given(queue: TaskQueue) -> None:
    """The plan goes to Redis without its empty fields; what was given is stored intact."""
    queue.submit([{"id": "old", "title": "Old"}])
    queue.submit(
        {
            "lease_seconds": 90,
            "tasks": [
                {
                    "id": "b", "title": "B \u00e9 \"q\"", "dependencies": ["a", "old"],
                    "description": "line1\n\tline2", "files": ["src/x.py"],
                    "shared_files": ["docs/*.md"], "estimated_minutes": 5, "priority": 7,
                    "max_attempts": 2, "lease_seconds": 30,
                },
                {"id": "a", "title": "A", "estimated_minutes": 0},
            ],
        }
    )  # fmt: skip
    raw = queue.redis.hgetall(queue.keys.task("b"))
    stored = {
        (k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
        for k, v in raw.items()
    }
    for name in ("created_at", "rank"):
        assert stored.pop(name)
    assert stored == {
        "id": "b", "title": "B \u00e9 \"q\"", "description": "line1\n\tline2",
        "dependencies": '["a", "old"]', "files": '["src/x.py"]', "shared_files": '["docs/*.md"]',
        "rkeys": '[["p", "src/x.py", 0, "src/x.py"], ["g", "docs/", 1, "docs/*.md"]]',
        "estimated_minutes": "5", "priority": "7", "max_attempts": "2", "lease_ms": "30000",
        "status": "blocked", "attempts": "0", "token": "0", "unmet": "2", "layer": "1",
    }  # fmt: skip
    a = queue.get("a")
    assert (a.estimated_minutes, a.lease_seconds, a.max_attempts) == (0, 90, 3)
    assert queue.redis.hget(queue.keys.task("a"), "dependents") in ("b", b"b")
    assert queue.redis.hget(queue.keys.task("old"), "dependents") in ("b", b"b")
