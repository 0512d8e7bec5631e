"""The helpers offered to users for their own tests: a fakeredis queue and a movable clock."""

from __future__ import annotations

from distributor.testing import advance_clock, delete_swarm, fake_queue


def test_fake_queue_runs_a_lease_expiry_without_sleeping() -> None:
    queue = fake_queue("mine")
    queue.submit({"tasks": [{"id": "a", "title": "A"}]})
    first = queue.claim_next("alice", lease=60)
    assert first is not None
    advance_clock(queue, 61)
    second = queue.claim_next("bob")
    assert second is not None and second.task.id == "a" and second.token == first.token + 1
    assert delete_swarm(queue) > 0
    assert queue.redis.keys("*") == []
