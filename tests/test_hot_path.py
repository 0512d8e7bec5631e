"""The agent's hot path answers from what its scripts wrote, not from a second read: the tasks a
completion, a claim or a heartbeat returns are the tasks as stored, one wake-up goes out per
script call, and the models built without validation equal validated ones."""

from __future__ import annotations

import time
from collections import Counter

from distributor import TaskQueue, TaskStatus
from distributor.records import built
from distributor.store.calls import text
from distributor.tasks.hashes import task_from_hash
from distributor.tasks.models import Claim, Task
from distributor.tasks.waiting import next_message


def plan(files: bool = False) -> dict[str, object]:
    def task(i: int, deps: list[str]) -> dict[str, object]:
        extra = {"files": [f"src/m{i}.py"], "shared_files": ["docs/"]} if files else {}
        return {"id": f"t{i}", "title": f"T{i}", "dependencies": deps, **extra}

    return {"tasks": [task(0, []), task(1, []), task(2, ["t0"]), task(3, ["t2"])]}


def test_a_completion_returns_both_tasks_as_stored(sync_queue: TaskQueue) -> None:
    sync_queue.submit(plan(files=True))
    first = sync_queue.claim_next("a1")
    assert first is not None and first.task_id == "t0"
    sync_queue.start("t0", "a1", first.token)

    done = sync_queue.complete("t0", "a1", first.token, claim_next=True)

    assert done.unblocked == ["t2"]
    assert done.task == sync_queue.get("t0")
    assert done.task.status == TaskStatus.COMPLETED and done.task.lease_expires_at is None
    assert done.next is not None and done.next.task_id == "t1"
    assert done.next.task == sync_queue.get("t1")
    assert done.next.token == done.next.task.token == 1
    assert done.next.task.attempts == 1 and done.next.task.agent_id == "a1"
    # the claim took the next task's files, the completion freed the first one's
    held = {(r.task_id, r.pattern) for r in sync_queue.reservations()}
    assert held == {("t1", "src/m1.py"), ("t1", "docs/")}
    assert_counts_exact(sync_queue)


def assert_counts_exact(queue: TaskQueue) -> None:
    """The per-status counters (written once per script call) equal the tasks' statuses."""
    progress = queue.progress()
    stored = Counter(t.status.value for t in queue.tasks())
    assert {s.value: progress[s.value] for s in TaskStatus} == {
        s.value: stored[s] for s in TaskStatus
    }


def test_counters_stay_exact_through_an_agent_loop(sync_queue: TaskQueue) -> None:
    sync_queue.submit(plan())
    current = sync_queue.claim_next("a1")
    assert current is not None and current.task_id == "t0"
    other = sync_queue.claim("t1", "a2", lease=0.05).claim
    assert other is not None
    time.sleep(0.1)  # t1's lease runs out: the completion's claim recovers it first
    done_ids = []
    while current is not None:
        done = sync_queue.complete(current.task_id, "a1", current.token, claim_next=True)
        assert_counts_exact(sync_queue)
        done_ids.append(current.task_id)
        current = done.next
    assert done_ids == ["t0", "t1", "t2", "t3"]
    assert sync_queue.get("t1").attempts == 2  # a2's attempt expired, a1's completed it


def test_a_reclaimed_task_is_returned_as_stored(sync_queue: TaskQueue) -> None:
    sync_queue.submit(plan())
    claim = sync_queue.claim("t1", "a1").claim
    assert claim is not None
    sync_queue.start("t1", "a1", claim.token)
    sync_queue.release("t1", "a1", claim.token)

    again = sync_queue.claim("t1", "a2", lease=30).claim

    assert again is not None and again.token == 2
    assert again.task == sync_queue.get("t1")
    assert again.task.started_at is None and again.task.agent_id == "a2"


def test_a_heartbeat_returns_the_task_as_stored(sync_queue: TaskQueue) -> None:
    sync_queue.submit(plan(files=True))
    claim = sync_queue.claim_next("a1", lease=30)
    assert claim is not None

    beat = sync_queue.heartbeat(claim.task_id, "a1", claim.token, lease=60)

    assert beat == sync_queue.get(claim.task_id)
    assert beat.lease_expires_at is not None and claim.task.lease_expires_at is not None
    assert beat.lease_expires_at > claim.task.lease_expires_at
    until = {r.expires_at for r in sync_queue.reservations()}
    assert until == {beat.lease_expires_at}  # the task's reservations last as long


def test_one_wake_up_per_script_call(sync_queue: TaskQueue) -> None:
    sync_queue.submit(plan())
    claim = sync_queue.claim_next("a1")
    assert claim is not None
    pubsub = sync_queue.redis.pubsub()  # type: ignore[no-untyped-call]
    pubsub.ssubscribe(sync_queue.keys.channel)
    confirmed = next_message(pubsub, timeout=5)
    assert confirmed is not None and confirmed["type"] == "ssubscribe"
    last = sync_queue.last_event_id()

    sync_queue.complete(claim.task_id, "a1", claim.token, claim_next=True)

    events = sync_queue.events(since=last)
    assert [(e.type, e.task_id) for e in events] == [("completed", "t0"), ("claimed", "t1")]
    woken = next_message(pubsub, timeout=5)
    assert woken is not None
    assert text(woken["data"]) == f"{events[0].id} completed t0"
    assert next_message(pubsub, timeout=0.2) is None  # the claim's event woke nobody twice
    pubsub.close()


def test_models_built_from_a_hash_equal_validated_ones() -> None:
    now = str(int(time.time() * 1000))
    raw = {
        b"id": b"t9", b"title": b"Nine", b"description": b"d\nx", b"files": b'["a.py"]',
        b"shared_files": b"[]", b"dependencies": b'["t1","t2"]', b"priority": b"-3",
        b"estimated_minutes": b"5", b"max_attempts": b"4", b"lease_ms": b"1500",
        b"discovered_from": b"t1", b"related": b'["t2"]', b"status": b"claimed",
        b"agent_id": b"a1", b"attempts": b"2", b"token": b"7", b"created_at": now.encode(),
        b"claimed_at": now.encode(), b"lease_expires_at": now.encode(), b"rank": b"9",
    }  # fmt: skip
    task = task_from_hash(raw, ["t2", "t1"])
    constructed = Task(**task.model_dump())
    assert task == constructed
    assert task.model_dump(mode="json") == constructed.model_dump(mode="json")
    assert vars(task) == vars(constructed)  # the same fields, in declaration order
    assert list(vars(task)) == list(Task._fields)
    assert task.unmet_dependencies == ["t1", "t2"] and task.lease_seconds == 1.5
    claim = built(Claim, {"task": task, "token": task.token})
    assert claim == Claim(task=task, token=7)
    assert claim.model_dump() == Claim(task=task, token=7).model_dump()
