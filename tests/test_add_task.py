"""Work discovered at runtime: ``add_task`` links a task into a live swarm in one atomic step.

Each test runs on fakeredis and a real Redis, through the sync and the asyncio client.
"""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest

from distributor import TaskQueue, TaskStatus
from distributor.errors import (
    CannotBlockTask,
    DependencyCycle,
    DuplicateTask,
    RequestIdReused,
    UnknownDependency,
    UnknownLinkedTask,
    ValidationError,
    WouldCreateCycle,
)
from distributor.store.calls import text
from distributor.testing import advance_clock
from tests.conftest import chain_plan, snapshot


def counters_agree(queue: TaskQueue) -> None:
    """The per-status counters and the ready/delayed indexes match the task hashes."""
    tasks = {t.id: t for t in queue.tasks()}
    stored = {i: text(queue.redis.hget(queue.keys.task(i), "status")) for i in tasks}
    progress = queue.progress()
    actual = Counter(stored.values())
    assert {s.value: progress[s.value] for s in TaskStatus} == {
        s.value: actual.get(s.value, 0) for s in TaskStatus
    }
    ready = {text(m) for m in queue.redis.zrange(queue.keys.ready, 0, -1)}
    assert ready == {i for i, s in stored.items() if s == "available"}
    delayed = {text(m) for m in queue.redis.zrange(queue.keys.delayed, 0, -1)}
    assert delayed == {i for i, s in stored.items() if s == "waiting"}


def finish(queue: TaskQueue, agent: str) -> str:
    """Claim the best ready task for ``agent`` and complete it; its id."""
    claim = queue.claim_next(agent)
    assert claim is not None, "a task should be ready"
    queue.complete(claim.task.id, agent, claim.token)
    return claim.task.id


def test_depends_on_and_soft_links_are_stored_and_logged(queue: TaskQueue) -> None:
    queue.submit(chain_plan(2))  # t0 <- t1
    finish(queue, "alice")  # t0 completed: counts as met
    added = queue.add_task(
        "Fix the flaky login test",
        description="found while doing t1",
        files=["tests/test_login.py"],
        priority=5,
        depends_on=["t0", "t1"],
        discovered_from="t1",
        related=["t0"],
        agent_id="alice",
    )
    assert added.id.startswith("task-")
    assert (added.status, added.dependencies, added.unmet_dependencies) == (
        TaskStatus.BLOCKED,
        ["t0", "t1"],
        ["t1"],
    )
    assert (added.discovered_from, added.related, added.priority) == ("t1", ["t0"], 5)
    assert queue.get(added.id) == added
    event = [e for e in queue.events() if e.type == "task_added"][-1]
    assert (event.task_id, event.agent_id) == (added.id, "alice")
    assert event.data == {
        "status": "blocked",
        "dependencies": "t0,t1",
        "discovered_from": "t1",
        "related": "t0",
    }
    counters_agree(queue)


def test_soft_links_never_block(queue: TaskQueue) -> None:
    queue.submit(chain_plan(2))
    added = queue.add_task("Look into caching", discovered_from="t1", related=["t0", "t1"])
    assert added.status == TaskStatus.AVAILABLE and added.unmet_dependencies == []
    one = queue.add_task("One of each", depends_on="t0", related="t1", files="a.py")
    assert (one.dependencies, one.related, one.files) == (["t0"], ["t1"], ["a.py"])
    assert queue.claim(added.id, "bob").claimed


def test_blocks_makes_an_available_task_wait_and_completion_frees_it(queue: TaskQueue) -> None:
    queue.submit({"tasks": [{"id": "api", "title": "API"}, {"id": "docs", "title": "Docs"}]})
    added = queue.add_task("Schema migration", task_id="migrate", blocks="api")
    assert added.status == TaskStatus.AVAILABLE
    api = queue.get("api")
    assert (api.status, api.dependencies, api.unmet_dependencies) == (
        TaskStatus.BLOCKED,
        ["migrate"],
        ["migrate"],
    )
    event = [e for e in queue.events() if e.type == "task_added"][-1]
    assert (event.data["blocks"], event.data["blocks_status"]) == ("api", "blocked")
    counters_agree(queue)
    assert not queue.claim("api", "alice").claimed
    order = [finish(queue, "alice") for _ in range(3)]
    assert order.index("migrate") < order.index("api")  # the new task ran first
    assert queue.progress()["completion_pct"] == 100.0
    counters_agree(queue)


def test_blocks_a_blocked_task_one_more_dependency(queue: TaskQueue) -> None:
    queue.submit(chain_plan(2))  # t1 waits for t0
    queue.add_task("Extra step", task_id="extra", blocks="t1")
    assert queue.get("t1").unmet_dependencies == ["extra", "t0"]
    assert finish(queue, "a") in {"t0", "extra"}
    assert queue.get("t1").status == TaskStatus.BLOCKED  # one left
    finish(queue, "a")
    assert queue.get("t1").status == TaskStatus.AVAILABLE
    counters_agree(queue)


def test_blocks_a_waiting_task(queue: TaskQueue) -> None:
    queue.submit({"tasks": [{"id": "x", "title": "X"}]})
    claim = queue.claim_next("a")
    assert claim is not None
    queue.fail("x", "a", claim.token, "needs a fixture first")
    assert queue.get("x").status == TaskStatus.WAITING
    queue.add_task("Write the fixture", task_id="fixture", blocks="x", discovered_from="x")
    x = queue.get("x")
    assert (x.status, x.retry_at, x.attempts) == (TaskStatus.BLOCKED, None, 1)
    counters_agree(queue)
    advance_clock(queue, 3600)  # its old retry time passes: it still waits for the fixture
    assert queue.claim_next("a") is not None  # the fixture
    assert queue.claim_next("b") is None


def test_blocks_a_failed_task_takes_effect_on_retry(queue: TaskQueue) -> None:
    queue.submit({"tasks": [{"id": "x", "title": "X", "max_attempts": 1}]})
    claim = queue.claim_next("a")
    assert claim is not None
    queue.fail("x", "a", claim.token, "missing piece")
    queue.add_task("The missing piece", task_id="piece", blocks="x")
    assert queue.get("x").status == TaskStatus.FAILED
    assert queue.retry("x").status == TaskStatus.BLOCKED
    finish(queue, "a")
    assert queue.get("x").status == TaskStatus.AVAILABLE
    counters_agree(queue)


def test_blocks_a_claimed_task_is_refused_and_writes_nothing(queue: TaskQueue) -> None:
    queue.submit({"tasks": [{"id": "x", "title": "X"}]})
    claim = queue.claim_next("alice")
    assert claim is not None
    before = snapshot(queue.redis, queue.keys.prefix)
    with pytest.raises(CannotBlockTask) as refused:
        queue.add_task("Too late", blocks="x")
    assert (refused.value.status, refused.value.agent_id) == ("claimed", "alice")
    assert "claimed by alice" in str(refused.value)
    assert snapshot(queue.redis, queue.keys.prefix) == before
    queue.start("x", "alice", claim.token)
    with pytest.raises(CannotBlockTask, match="in_progress"):
        queue.add_task("Too late", blocks="x")
    queue.complete("x", "alice", claim.token)
    after_done = snapshot(queue.redis, queue.keys.prefix)
    with pytest.raises(CannotBlockTask, match="completed"):
        queue.add_task("Too late", blocks="x")
    assert snapshot(queue.redis, queue.keys.prefix) == after_done


def test_blocks_a_claim_whose_lease_ran_out(queue: TaskQueue) -> None:
    queue.submit({"tasks": [{"id": "x", "title": "X", "lease_seconds": 1}]})
    assert queue.claim_next("alice") is not None
    advance_clock(queue, 5)
    queue.add_task("Now first", task_id="first", blocks="x")
    x = queue.get("x")
    assert (x.status, x.agent_id) == (TaskStatus.BLOCKED, None)
    assert [e.type for e in queue.events()][-2:] == ["expired", "task_added"]
    counters_agree(queue)


def test_a_cycle_through_the_swarm_is_refused_and_writes_nothing(queue: TaskQueue) -> None:
    queue.submit(chain_plan(3))  # t0 <- t1 <- t2
    before = snapshot(queue.redis, queue.keys.prefix)
    with pytest.raises(WouldCreateCycle) as cycle:
        queue.add_task("Between", task_id="mid", depends_on=["t2"], blocks="t0")
    assert cycle.value.cycle == ["mid", "t2", "t1", "t0", "mid"]
    assert not cycle.value.in_itself
    with pytest.raises(WouldCreateCycle) as unnamed:
        queue.add_task("Between", depends_on=["t1"], blocks="t0")
    assert unnamed.value.cycle == ["new task", "t1", "t0", "new task"]
    assert snapshot(queue.redis, queue.keys.prefix) == before
    between = queue.add_task("Between", task_id="mid", depends_on=["t0"], blocks="t2")
    assert between.status == TaskStatus.BLOCKED  # no cycle: t0 -> mid -> t2 runs in order
    order = [finish(queue, "a") for _ in range(4)]
    assert order in (["t0", "t1", "mid", "t2"], ["t0", "mid", "t1", "t2"])


def test_cycles_in_the_request_itself_are_invalid(queue: TaskQueue) -> None:
    queue.submit(chain_plan(1))
    before = snapshot(queue.redis, queue.keys.prefix)
    with pytest.raises(DependencyCycle) as itself:
        queue.add_task("Self", task_id="me", depends_on=["me"])
    assert itself.value.in_itself and itself.value.cycle == ["me", "me"]
    with pytest.raises(DependencyCycle):
        queue.add_task("Both ways", depends_on=["t0"], blocks="t0")
    with pytest.raises(ValidationError, match="itself"):
        queue.add_task("Self", task_id="me", related=["me"])
    assert snapshot(queue.redis, queue.keys.prefix) == before


def test_unknown_tasks_are_refused_and_write_nothing(queue: TaskQueue) -> None:
    queue.submit(chain_plan(1))
    before = snapshot(queue.redis, queue.keys.prefix)
    with pytest.raises(UnknownDependency) as dep:
        queue.add_task("X", depends_on=["t0", "nope"])
    assert dep.value.dependency == "nope"
    for link in ("blocks", "discovered_from"):
        with pytest.raises(UnknownLinkedTask) as unknown:
            queue.add_task("X", **{link: "nope"})  # type: ignore[arg-type]
        assert (unknown.value.link, unknown.value.task_id) == (link, "nope")
    with pytest.raises(UnknownLinkedTask, match="related names unknown task 'nope'"):
        queue.add_task("X", related=["t0", "nope"])
    with pytest.raises(DuplicateTask):
        queue.add_task("X", task_id="t0")
    with pytest.raises(ValidationError, match="depends_on"):
        queue.add_task("X", depends_on=["bad id!"])
    with pytest.raises(ValidationError, match="title"):
        queue.add_task("two\nlines")
    assert snapshot(queue.redis, queue.keys.prefix) == before


def test_a_request_id_adds_once(queue: TaskQueue) -> None:
    queue.submit(chain_plan(1))
    first = queue.add_task("Once", depends_on=["t0"], request_id="add-1")
    again = queue.add_task("Once", depends_on=["t0"], request_id="add-1")
    assert again.id == first.id
    assert queue.progress()["total"] == 2
    assert sum(e.type == "task_added" for e in queue.events()) == 1
    with pytest.raises(RequestIdReused):
        queue.add_task("Another", request_id="add-1")


def test_made_ids_skip_taken_ones_and_a_waiting_agent_wakes(queue: TaskQueue) -> None:
    queue.submit({"tasks": [{"id": "task-2", "title": "Named like a made id"}]})
    assert finish(queue, "a") == "task-2"
    added = queue.add_task("Next")  # the counter says 2: taken, so the next free one
    assert added.id == "task-3"
    finish(queue, "a")
    got: list[str] = []
    waiter = threading.Thread(
        target=lambda: got.append(getattr(queue.claim_next("w", wait=20), "task_id", "none"))
    )
    waiter.start()
    time.sleep(0.3)  # let it start waiting (it would claim at once otherwise: same outcome)
    pending = queue.add_task("Discovered while the agent waits", task_id="late")
    waiter.join(25)
    assert got == [pending.id]


def test_a_plan_cannot_carry_soft_links(queue: TaskQueue) -> None:
    before = snapshot(queue.redis, queue.keys.prefix)
    with pytest.raises(ValidationError, match="swarmqueue add"):
        queue.submit({"tasks": [{"id": "a", "title": "A", "discovered_from": "b"}]})
    assert snapshot(queue.redis, queue.keys.prefix) == before
