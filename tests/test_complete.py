"""Completion: only the holder may complete; dependents become available exactly when ready."""

from __future__ import annotations

import pytest

from distributor import StaleClaim, TaskNotFound, TaskQueue, TaskStatus


def diamond(queue: TaskQueue) -> None:
    queue.submit(
        {
            "tasks": [
                {"id": "root", "title": "R"},
                {"id": "left", "title": "L", "dependencies": ["root"]},
                {"id": "right", "title": "Ri", "dependencies": ["root"]},
                {"id": "join", "title": "J", "dependencies": ["left", "right"]},
            ]
        }
    )


def test_completion_unblocks_only_ready_dependents(queue: TaskQueue) -> None:
    diamond(queue)
    root = queue.claim_next("a1")
    assert root is not None
    done = queue.complete("root", "a1", root.token)
    assert done.unblocked == ["left", "right"]
    assert done.task.status == TaskStatus.COMPLETED
    assert done.task.completed_at is not None
    left = queue.claim("left", "a1").claim
    right = queue.claim("right", "a2").claim
    assert left is not None and right is not None
    assert queue.complete("left", "a1", left.token).unblocked == []
    assert queue.get("join").unmet_dependencies == ["right"]
    assert queue.complete("right", "a2", right.token).unblocked == ["join"]
    progress = queue.progress()
    assert (progress["completed"], progress["available"], progress["completion_pct"]) == (
        3,
        1,
        75.0,
    )


def test_stale_or_foreign_token_refused(queue: TaskQueue) -> None:
    diamond(queue)
    claim = queue.claim_next("a1")
    assert claim is not None
    with pytest.raises(StaleClaim, match="token"):
        queue.complete("root", "a1", claim.token + 1)
    with pytest.raises(StaleClaim, match="another agent"):
        queue.complete("root", "intruder", claim.token)
    with pytest.raises(TaskNotFound):
        queue.complete("ghost", "a1", 1)
    queue.complete("root", "a1", claim.token)
    with pytest.raises(StaleClaim, match="completed"):
        queue.complete("root", "a1", claim.token)
    assert queue.progress()["completed"] == 1


def test_complete_and_claim_next_in_one_step(queue: TaskQueue) -> None:
    diamond(queue)
    root = queue.claim_next("a1")
    assert root is not None
    done = queue.complete("root", "a1", root.token, claim_next=True, lease=30)
    assert done.unblocked == ["left", "right"]
    assert done.next is not None and done.next.task.id == "left"  # older of the two
    assert done.next.task.agent_id == "a1" and done.next.token == 1
    lease_span = done.next.task.lease_expires_at - done.next.task.claimed_at  # type: ignore[operator]
    assert lease_span.total_seconds() == 30
    right = queue.claim_next("a2")
    assert right is not None
    last = queue.complete("left", "a1", done.next.token, claim_next=True)
    assert last.unblocked == [] and last.next is None  # "join" still waits for "right"
    with pytest.raises(StaleClaim):
        queue.complete("right", "a1", right.token, claim_next=True)
    assert queue.workload() == {"a2": ["right"]}  # the refused call claimed nothing


def test_replayed_complete_returns_the_same_next_claim(queue: TaskQueue) -> None:
    diamond(queue)
    root = queue.claim_next("a1")
    assert root is not None
    first = queue.complete("root", "a1", root.token, claim_next=True, request_id="done-1")
    again = queue.complete("root", "a1", root.token, claim_next=True, request_id="done-1")
    assert first.next is not None and again.next is not None
    assert (again.next.task.id, again.next.token) == (first.next.task.id, first.next.token)
    assert queue.progress()["claimed"] == 1
