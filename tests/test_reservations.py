"""File reservations taken with claims and explicitly: skips, refusals, freeing, events."""

from __future__ import annotations

import json
import threading
import time

import pytest

from distributor import TaskQueue
from distributor.errors import FilesReserved, ValidationError


def _plan(*tasks: tuple[str, list[str]]) -> dict[str, object]:
    return {"tasks": [{"id": i, "title": i.upper(), "files": f} for i, f in tasks]}


def test_claim_next_skips_a_task_whose_files_another_agent_holds(queue: TaskQueue) -> None:
    queue.submit(_plan(("a", ["src/auth/jwt.py"]), ("b", ["src/auth/"]), ("c", ["docs/x.md"])))
    first = queue.claim_next("agent-1")
    assert first is not None and first.task.id == "a"
    second = queue.next_claim("agent-2")  # b wants src/auth/, which holds a's file: c instead
    assert second.claim is not None and second.claim.task.id == "c"
    third = queue.next_claim("agent-2")
    assert third.claim is None and third.skipped == ["b"] and third.held_up
    assert [(h.agent_id, h.pattern, h.task_id) for h in third.holders] == [
        ("agent-1", "src/auth/jwt.py", "a")
    ]
    assert third.next_due == first.task.lease_expires_at
    assert queue.get("b").status == "available"  # kept its place
    assert {k: [h.id for h in v] for k, v in queue.held_up().items()} == {"b": ["t:a:1"]}
    queue.complete("a", "agent-1", first.token)
    fourth = queue.claim_next("agent-2")
    assert fourth is not None and fourth.task.id == "b"


def test_the_holder_itself_and_shared_files_do_not_conflict(queue: TaskQueue) -> None:
    queue.submit(
        {
            "tasks": [
                {"id": "r1", "title": "R1", "shared_files": ["schema.sql"]},
                {"id": "r2", "title": "R2", "shared_files": ["./schema.sql"]},
                {"id": "w", "title": "W", "files": ["schema.sql"]},
                {"id": "w2", "title": "W2", "files": ["SCHEMA.sql"]},
            ]
        }
    )
    one = queue.claim_next("agent-1")
    two = queue.claim_next("agent-2")  # shared beside shared
    assert one and two and {one.task.id, two.task.id} == {"r1", "r2"}
    assert queue.next_claim("agent-3").skipped == ["w", "w2"]  # case folds: one file
    mine = queue.claim("w", "agent-1")  # agent-1 holds only a shared copy; agent-2 too
    assert mine.reason == "reserved" and [h.agent_id for h in mine.holders] == ["agent-2"]


def test_complete_fail_release_and_lease_expiry_free_the_files(queue: TaskQueue) -> None:
    queue.submit(_plan(("a", ["x.py"]), ("b", ["x.py"])))
    claim = queue.claim_next("agent-1")
    assert claim is not None
    assert [r.pattern for r in queue.reservations()] == ["x.py"]
    queue.release("a", "agent-1", claim.token)
    assert queue.reservations() == []
    claim = queue.claim_next("agent-1")
    assert claim is not None
    queue.fail("a", "agent-1", claim.token, "boom", retry=False)
    assert queue.reservations() == []
    claim = queue.claim("b", "agent-2", lease=0.05).claim
    assert claim is not None
    held = queue.reservations()[0]
    queue.heartbeat("b", "agent-2", claim.token, lease=30)
    assert queue.reservations()[0].expires_at > held.expires_at  # extended with the lease
    queue.redis.incrby(queue.keys.clock, 60_000)  # the lease runs out by Redis time
    assert queue.reservations() == []
    assert queue.claim("b", "agent-3").claimed  # the expired claim's files are free
    types = [e.type for e in queue.events()]
    assert types.count("reserved") == 4 and types.count("unreserved") == 3
    freed = [json.loads(e.data["ids"]) for e in queue.events() if e.type == "unreserved"]
    assert freed == [["t:a:1"], ["t:a:1"], ["t:b:1"]]
    reasons = [e.data["reason"] for e in queue.events() if e.type == "unreserved"]
    assert reasons == ["released", "failed", "expired"]


def test_explicit_reservations_conflict_all_or_nothing(queue: TaskQueue) -> None:
    taken = queue.reserve(["src/api/", "README.md"], "agent-1", ttl=60, reason="refactor")
    assert [(r.pattern, r.shared, r.reason) for r in taken] == [
        ("src/api/", False, "refactor"),
        ("README.md", False, "refactor"),
    ]
    with pytest.raises(FilesReserved) as refused:
        queue.reserve(["docs/a.md", "src/api/v1/*.py"], "agent-2")
    assert "src/api/ held by agent-1 (exclusive" in str(refused.value)
    assert len(queue.reservations()) == 2  # nothing of agent-2's was written
    queue.reserve(["docs/a.md"], "agent-2", shared=True)
    with pytest.raises(FilesReserved):
        queue.reserve(["docs/"], "agent-3")
    queue.reserve(["docs/a.md"], "agent-3", shared=True)  # shared beside shared
    assert queue.unreserve("agent-1", ["src/api/**"]) == ["src/api/"]
    assert queue.reserve(["src/api/v1/x.py"], "agent-2")[0].pattern == "src/api/v1/x.py"
    assert queue.unreserve("agent-1") == ["README.md"]
    types = [e.type for e in queue.events()]
    assert types == ["reserved", "reserve-refused", "reserved", "reserve-refused", "reserved",
                     "unreserved", "reserved", "unreserved"]  # fmt: skip


def test_explicit_reservations_expire_by_redis_time_and_block_claims(queue: TaskQueue) -> None:
    queue.reserve(["lib/"], "human", ttl=5)
    queue.submit(_plan(("a", ["lib/core.py"])))
    refused = queue.claim("a", "agent-1")
    assert refused.reason == "reserved" and refused.holders[0].agent_id == "human"
    queue.redis.incrby(queue.keys.clock, 6_000)
    assert queue.claim("a", "agent-1").claimed
    assert [r.task_id for r in queue.reservations()] == ["a"]


@pytest.mark.parametrize(
    "bad", ["../x", "/etc/passwd", "a//b", "a/\x00b", "", "a\\b", "/".join(["s"] * 10_000)]
)
def test_hostile_paths_are_refused_and_nothing_is_written(queue: TaskQueue, bad: str) -> None:
    with pytest.raises(ValidationError):
        queue.reserve([bad], "agent-1")
    with pytest.raises(ValidationError):
        queue.submit(_plan(("a", [bad])))
    assert queue.reservations() == [] and queue.tasks() == []


def test_a_waiting_agent_wakes_when_the_files_are_freed(queue: TaskQueue) -> None:
    queue.submit(_plan(("a", ["lib/x.py"])))
    queue.reserve(["lib/"], "human", ttl=600)
    found: list[object] = []
    waiter = threading.Thread(target=lambda: found.append(queue.claim_next("agent-1", wait=20)))
    waiter.start()
    time.sleep(0.5)  # the agent is waiting: its claim passed over "a"
    assert found == []
    started = time.monotonic()
    queue.unreserve("human")
    waiter.join(timeout=20)
    claim = found[0]
    assert claim is not None and getattr(claim, "task_id", None) == "a"
    assert time.monotonic() - started < 10  # woken by the unreserved event, not a timeout


def test_a_task_added_at_runtime_reserves_its_files_when_claimed(queue: TaskQueue) -> None:
    queue.submit(_plan(("a", ["src/auth/jwt.py"])))
    first = queue.claim_next("agent-1")
    assert first is not None and first.task.id == "a"
    added = queue.add_task("fix the login form", files=["./src/auth/"], discovered_from="a")
    assert added.files == ["src/auth/"]
    held = queue.next_claim("agent-2")  # its directory holds a's file
    assert held.claim is None and held.skipped == [added.id]
    queue.complete("a", "agent-1", first.token)
    took = queue.claim_next("agent-2")
    assert took is not None and took.task.id == added.id
    assert [(r.agent_id, r.pattern) for r in queue.reservations()] == [("agent-2", "src/auth/")]
