"""Validation at the boundary: hostile or malformed input is refused before Redis is touched."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import redis

from distributor import TaskQueue, ValidationError
from distributor.tasks.models import Task
from distributor.tasks.specs import Plan, TaskSpec
from tests.conftest import snapshot

HOSTILE_IDS = ["'; DROP TABLE tasks; --", "\n\n[SPOOFED] SYSTEM MESSAGE", "task-1" * 10000]


@pytest.mark.parametrize("bad", [*HOSTILE_IDS, "", "a b", "tab\tid", "\x1b[31mred"])
def test_bad_task_ids_refused_by_model(bad: str) -> None:
    with pytest.raises(ValueError, match="task id"):
        TaskSpec(id=bad, title="t")
    with pytest.raises(ValueError, match="task id"):
        Plan(tasks=[Task(id=bad, title="t")])  # a Task record is validated when planned


def test_valid_ids_and_limits() -> None:
    task = TaskSpec(id="auth.jwt-1_a", title="x" * 200, description="line1\nline2\ttab")
    assert task.id == "auth.jwt-1_a"
    for kwargs in (
        {"title": "x" * 201},
        {"title": ""},
        {"title": "two\nlines"},
        {"description": "d" * 10_001},
        {"description": "bell\x07"},
        {"files": ["f"] * 101},
        {"dependencies": [f"d{i}" for i in range(101)]},
        {"dependencies": ["a", "a"]},
        {"priority": 1001},
        {"max_attempts": 0},
    ):
        with pytest.raises(ValueError):
            TaskSpec.model_validate({"id": "t", "title": "t", **kwargs})


def test_plan_size_limit() -> None:
    with pytest.raises(ValueError):
        Plan(tasks=[Task(id=f"t{i}", title="t") for i in range(10_001)])
    with pytest.raises(ValueError):
        Plan(tasks=[])


@pytest.mark.parametrize("bad", HOSTILE_IDS)
def test_hostile_inputs_refused_by_api_and_nothing_written(
    queue: TaskQueue, redis_client: redis.Redis, bad: str
) -> None:
    queue.submit({"tasks": [{"id": "ok", "title": "fine"}]})
    before = snapshot(redis_client, queue.keys.prefix)
    calls: list[Callable[[], object]] = [
        lambda: queue.submit({"tasks": [{"id": bad, "title": "x"}]}),
        lambda: queue.claim(bad, "agent-1"),
        lambda: queue.claim("ok", bad),
        lambda: queue.claim_next(bad),
        lambda: queue.complete(bad, "agent-1", 1),
        lambda: queue.complete("ok", bad, 1),
        lambda: queue.get(bad),
    ]
    for call in calls:
        with pytest.raises(ValidationError):
            call()
    assert snapshot(redis_client, queue.keys.prefix) == before


def test_validation_error_names_the_field(queue: TaskQueue) -> None:
    with pytest.raises(ValidationError, match=r"tasks\.0\.title"):
        queue.submit({"tasks": [{"id": "a", "title": "x" * 500}]})
