"""Leases, heartbeats, failure, retry and operator actions (time moved with advance_clock)."""

from __future__ import annotations

from typing import Any

import pytest

from distributor import InvalidTransition, StaleClaim, TaskQueue, TaskStatus
from distributor.store.calls import text
from distributor.testing import advance_clock
from tests.conftest import chain_plan


def event_types(queue: TaskQueue) -> list[str]:
    entries: Any = queue.redis.xrange(queue.keys.events)
    return [text(fields[b"type"]) for _, fields in entries]


def test_lease_defaults_per_task_plan_and_call(queue: TaskQueue) -> None:
    queue.submit(
        {
            "lease_seconds": 60,
            "tasks": [
                {"id": "plan", "title": "P"},
                {"id": "own", "title": "O", "lease_seconds": 5},
            ],
        }
    )
    own = queue.claim("own", "a1").claim
    plan = queue.claim("plan", "a1", lease=2.5).claim
    assert own is not None and plan is not None
    assert own.task.claimed_at and own.task.lease_expires_at
    assert (own.task.lease_expires_at - own.task.claimed_at).total_seconds() == 5
    assert plan.task.claimed_at and plan.task.lease_expires_at
    assert (plan.task.lease_expires_at - plan.task.claimed_at).total_seconds() == 2.5
    queue.submit({"tasks": [{"id": "default", "title": "D"}]})
    default = queue.claim("default", "a1").claim
    assert default is not None and default.task.lease_seconds == queue.settings.lease_seconds


def test_expired_lease_is_recovered_and_old_holder_fenced(queue: TaskQueue) -> None:
    queue.submit(chain_plan(2))
    old = queue.claim_next("a1", lease=10)
    assert old is not None
    advance_clock(queue, 5)
    queue.heartbeat("t0", "a1", old.token)  # renewed: now expires 10 s from here
    advance_clock(queue, 9)
    assert queue.claim_next("a2") is None  # still held
    advance_clock(queue, 2)
    new = queue.claim_next("a2")
    assert new is not None and new.task.id == "t0" and new.token == old.token + 1
    assert new.task.attempts == 2
    for call in (
        lambda: queue.complete("t0", "a1", old.token),
        lambda: queue.heartbeat("t0", "a1", old.token),
        lambda: queue.fail("t0", "a1", old.token, "late"),
        lambda: queue.start("t0", "a1", old.token),
    ):
        with pytest.raises(StaleClaim):
            call()
    assert queue.complete("t0", "a2", new.token).unblocked == ["t1"]
    types = event_types(queue)
    assert types.count("expired") == 1 and "heartbeat-lost" in types


def test_claim_of_expired_task_recovers_it(queue: TaskQueue) -> None:
    queue.submit(chain_plan(1))
    first = queue.claim("t0", "a1", lease=1)
    assert first.claimed
    advance_clock(queue, 2)
    second = queue.claim("t0", "a2")
    assert second.claimed and second.claim is not None and second.claim.token == 2


def test_start_moves_to_in_progress_and_renews(queue: TaskQueue) -> None:
    queue.submit(chain_plan(1))
    claim = queue.claim_next("a1", lease=10)
    assert claim is not None
    advance_clock(queue, 8)
    task = queue.start("t0", "a1", claim.token)
    assert task.status == TaskStatus.IN_PROGRESS and task.started_at is not None
    advance_clock(queue, 8)
    assert queue.claim_next("a2") is None
    assert queue.progress()["in_progress"] == 1
    assert queue.complete("t0", "a1", claim.token).task.status == TaskStatus.COMPLETED


def test_fail_backs_off_then_gives_up_and_blocks_dependents(queue: TaskQueue) -> None:
    queue.submit(
        {
            "tasks": [
                {"id": "flaky", "title": "F", "max_attempts": 3},
                {"id": "after", "title": "A", "dependencies": ["flaky"]},
                {"id": "later", "title": "L", "dependencies": ["after"]},
            ]
        }
    )
    delays = []
    for attempt in (1, 2):
        claim = queue.claim_next("a1")
        assert claim is not None and claim.task.attempts == attempt
        outcome = queue.fail("flaky", "a1", claim.token, "tests broke")
        assert outcome.will_retry and outcome.retry_at is not None
        assert outcome.task.status == TaskStatus.WAITING
        assert outcome.task.retry_at == outcome.retry_at
        assert outcome.task.last_error == "tests broke"
        delays.append(outcome.retry_at)
        assert queue.claim_next("a1") is None  # not claimable during the backoff
        refused = queue.claim("flaky", "a1")
        assert refused.reason == "waiting" and refused.task is not None
        assert refused.task.retry_at == outcome.retry_at
        advance_clock(queue, queue.settings.retry_backoff_seconds * 2**attempt)
    claim = queue.claim_next("a1")
    assert claim is not None and claim.task.attempts == 3
    outcome = queue.fail("flaky", "a1", claim.token, "still broken")
    assert not outcome.will_retry and outcome.task.status == TaskStatus.FAILED
    progress = queue.progress()
    assert progress["failed"] == 1
    assert progress["blocked_by_failed"] == {"flaky": ["after", "later"]}
    # operator: retry resets attempts, cancel stops
    retried = queue.retry("flaky")
    assert retried.status == TaskStatus.AVAILABLE and retried.attempts == 0
    cancelled = queue.cancel("flaky")
    assert cancelled.status == TaskStatus.FAILED and cancelled.last_error == "cancelled by operator"
    with pytest.raises(InvalidTransition):
        queue.cancel("flaky")
    types = event_types(queue)
    assert types.count("failed") == 3 and "retried" in types and "cancelled" in types


def test_backoff_grows_exponentially(queue: TaskQueue) -> None:
    queue.submit({"tasks": [{"id": "x", "title": "X", "max_attempts": 5}]})
    gaps = []
    for _ in range(4):
        claim = queue.claim_next("a1")
        assert claim is not None
        outcome = queue.fail("x", "a1", claim.token, "nope")
        assert outcome.retry_at is not None and outcome.task.failed_at is None
        now_task = queue.get("x")
        assert now_task.retry_at == outcome.retry_at
        gaps.append(outcome.retry_at)
        advance_clock(queue, 100)
    base = queue.settings.retry_backoff_seconds
    cap = queue.settings.retry_backoff_max_seconds
    # each retry_at is measured from its own fail time; the clock moved 100 s between fails
    diffs = [(gaps[i + 1] - gaps[i]).total_seconds() - 100 for i in range(3)]
    expected = [min(cap, base * 2 ** (i + 1)) - min(cap, base * 2**i) for i in range(3)]
    assert [round(d) for d in diffs] == [round(e) for e in expected]


def test_fail_without_retry_and_release(queue: TaskQueue) -> None:
    queue.submit(chain_plan(2))
    claim = queue.claim_next("a1")
    assert claim is not None
    released = queue.release("t0", "a1", claim.token)
    assert released.status == TaskStatus.AVAILABLE and released.attempts == 0
    with pytest.raises(StaleClaim):
        queue.complete("t0", "a1", claim.token)
    claim = queue.claim_next("a2")
    assert claim is not None and claim.token == 2
    outcome = queue.fail("t0", "a2", claim.token, "impossible", retry=False)
    assert not outcome.will_retry and outcome.task.status == TaskStatus.FAILED
    assert queue.progress()["blocked_by_failed"] == {"t0": ["t1"]}
    assert "released" in event_types(queue)


def test_reap_recovers_all_expired(queue: TaskQueue) -> None:
    queue.submit(
        {"tasks": [{"id": f"r{i}", "title": "R", "max_attempts": 1 + i % 2} for i in range(250)]}
    )
    # leases long enough that none ends while the 250 claims are made (slow on a loaded cluster)
    while queue.claim_next("a1", lease=60) is not None:
        pass
    advance_clock(queue, 61)
    assert queue.reap() == 250
    progress = queue.progress()
    assert (progress["available"], progress["failed"], progress["claimed"]) == (125, 125, 0)
    assert queue.reap() == 0


def test_retry_of_cancelled_blocked_task_returns_to_blocked(queue: TaskQueue) -> None:
    queue.submit(chain_plan(2))
    queue.cancel("t1")
    assert queue.retry("t1").status == TaskStatus.BLOCKED
    with pytest.raises(InvalidTransition):
        queue.retry("t1")
