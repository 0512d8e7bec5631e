"""Stateful property test: Redis and a plain in-memory model agree after every step.

Hypothesis drives submit / claim / claim_next / heartbeat / start / complete / fail / release /
reap / retry / cancel / time passing. Durations are in units of 100 s (lease 10 units, backoff
10 units, clock steps of 3 or 25 units), so the few real seconds a run takes never decide a
lease or a backoff.
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from distributor import Claim, StaleClaim, TaskQueue, TaskStatus
from distributor.settings import Settings
from distributor.store.calls import text
from distributor.testing import advance_clock, delete_swarm

UNIT = 100.0  # seconds
LEASE = 10 * UNIT
ACTIVE = {"claimed", "in_progress"}
AGENTS = st.sampled_from(["a1", "a2", "a3"])


@dataclass
class ModelTask:
    id: str
    deps: list[str]
    priority: int
    seq: int
    max_attempts: int
    status: str = "blocked"
    unmet: set[str] = field(default_factory=set)
    agent: str | None = None
    token: int = 0
    attempts: int = 0
    lease_until: float = 0.0
    due: float | None = None  # retry backoff end, while waiting

    @property
    def rank(self) -> tuple[int, int]:
        return (-self.priority, self.seq)


class QueueMachine(RuleBasedStateMachine):
    client: redis.Redis

    def __init__(self) -> None:
        super().__init__()
        self.settings = Settings(
            retry_backoff_seconds=10 * UNIT, retry_backoff_max_seconds=80 * UNIT, reap_batch=100
        )
        self.queue = TaskQueue(self.client, f"sm-{uuid.uuid4().hex[:10]}", settings=self.settings)
        self.tasks: dict[str, ModelTask] = {}
        self.now = 0.0
        self.seq = 0
        self.held: list[tuple[str, str, int]] = []  # every (task, agent, token) ever granted

    def teardown(self) -> None:
        delete_swarm(self.queue)

    # -- model transitions ---------------------------------------------------------------

    def _dependents(self, task_id: str) -> list[ModelTask]:
        return [t for t in self.tasks.values() if task_id in t.deps]

    def _expire(self, t: ModelTask) -> None:
        t.agent = None
        t.status = "failed" if t.attempts >= t.max_attempts else "available"
        t.due = None

    def _reap(self) -> None:
        for t in self.tasks.values():
            if t.status in ACTIVE and t.lease_until <= self.now:
                self._expire(t)

    def _retries_due(self) -> None:
        """Waiting tasks whose retry time has come are available: every read says so at once
        (the scripts record it on the next claim or reap)."""
        for t in self.tasks.values():
            if t.status == "waiting" and t.due is not None and t.due <= self.now:
                t.status, t.due = "available", None

    def _grant(self, t: ModelTask, agent: str) -> None:
        t.status, t.agent, t.due = "claimed", agent, None
        t.token += 1
        t.attempts += 1
        t.lease_until = self.now + LEASE

    def _holds(self, task_id: str, agent: str, token: int) -> bool:
        t = self.tasks[task_id]
        return t.status in ACTIVE and t.agent == agent and t.token == token

    # -- rules -----------------------------------------------------------------------------

    @rule(data=st.data(), size=st.integers(1, 3))
    def submit(self, data: st.DataObject, size: int) -> None:
        existing = sorted(self.tasks)
        plan: list[dict[str, Any]] = []
        for _ in range(size):
            task_id = f"t{len(self.tasks) + len(plan)}"
            pool = existing + [p["id"] for p in plan]
            deps = (
                data.draw(st.lists(st.sampled_from(pool), max_size=2, unique=True)) if pool else []
            )
            plan.append(
                {
                    "id": task_id,
                    "title": task_id,
                    "dependencies": deps,
                    "priority": data.draw(st.integers(0, 2)),
                    "max_attempts": data.draw(st.integers(1, 3)),
                    "lease_seconds": LEASE,
                }
            )
        assert self.queue.submit({"tasks": plan}) == [p["id"] for p in plan]
        for p in plan:
            self.seq += 1
            t = ModelTask(p["id"], p["dependencies"], p["priority"], self.seq, p["max_attempts"])
            t.unmet = {d for d in t.deps if self.tasks[d].status != "completed"}
            t.status = "blocked" if t.unmet else "available"
            self.tasks[t.id] = t

    @precondition(lambda self: self.tasks)
    @rule(data=st.data(), agent=AGENTS)
    def claim(self, data: st.DataObject, agent: str) -> None:
        t = self.tasks[data.draw(st.sampled_from(sorted(self.tasks)))]
        if t.status in ACTIVE and t.lease_until <= self.now:
            self._expire(t)
        if t.status in ACTIVE:
            expected = "already_claimed"
        elif t.status in ("blocked", "waiting"):
            expected = t.status
        elif t.status != "available":
            expected = "not_available"
        else:
            expected = "ok"
        result = self.queue.claim(t.id, agent)
        if expected == "ok":
            assert result.claimed and result.claim is not None
            self._grant(t, agent)
            assert result.claim.token == t.token
            self.held.append((t.id, agent, t.token))
        else:
            assert (result.claimed, result.reason) == (False, expected)

    def _expect_claim(self, claim: Claim | None, agent: str) -> None:
        """Check a claim of the best ready task against the model, and record it there."""
        self._reap()
        ready = [t for t in self.tasks.values() if t.status == "available"]
        if not ready:
            assert claim is None
            return
        best = min(ready, key=lambda t: t.rank)
        assert claim is not None and claim.task.id == best.id
        self._grant(best, agent)
        assert claim.token == best.token
        self.held.append((best.id, agent, best.token))

    @rule(agent=AGENTS)
    def claim_next(self, agent: str) -> None:
        self._expect_claim(self.queue.claim_next(agent), agent)

    def _holder_rule(self, data: st.DataObject, operation: str) -> None:
        task_id, agent, token = data.draw(st.sampled_from(self.held))
        ok = self._holds(task_id, agent, token)
        t = self.tasks[task_id]
        q = self.queue
        try:
            if operation == "heartbeat":
                q.heartbeat(task_id, agent, token)
            elif operation == "start":
                q.start(task_id, agent, token)
            elif operation in ("complete", "complete+next"):
                done = q.complete(task_id, agent, token, claim_next=operation == "complete+next")
            elif operation == "release":
                q.release(task_id, agent, token)
            else:
                outcome = q.fail(task_id, agent, token, "boom", retry=operation == "fail")
        except StaleClaim:
            assert not ok
            return
        assert ok, f"{operation} by a stale holder was accepted"
        if operation in ("heartbeat", "start"):
            t.lease_until = self.now + LEASE
            if operation == "start":
                t.status = "in_progress"
            return
        if not operation.startswith("complete"):
            t.agent = None  # a completed task keeps its agent, for the record
        if operation.startswith("complete"):
            t.status = "completed"
            unblocked = []
            for d in self._dependents(task_id):
                d.unmet.discard(task_id)
                if not d.unmet and d.status == "blocked":
                    d.status = "available"
                    unblocked.append(d.id)
            assert done.unblocked == sorted(unblocked)
            if operation == "complete+next":
                self._expect_claim(done.next, agent)
            else:
                assert done.next is None
        elif operation == "release":
            t.status, t.attempts = "available", t.attempts - 1
        elif operation == "fail" and t.attempts < t.max_attempts:
            t.status = "waiting"
            t.due = self.now + min(80 * UNIT, 10 * UNIT * 2 ** (t.attempts - 1))
            assert outcome.will_retry
        else:
            t.status = "failed"
            assert not outcome.will_retry

    @precondition(lambda self: self.held)
    @rule(
        data=st.data(),
        operation=st.sampled_from(["heartbeat", "start", "complete", "complete+next", "release"]),
    )
    def holder_op(self, data: st.DataObject, operation: str) -> None:
        self._holder_rule(data, operation)

    @precondition(lambda self: self.held)
    @rule(data=st.data(), retry=st.booleans())
    def fail(self, data: st.DataObject, retry: bool) -> None:
        self._holder_rule(data, "fail" if retry else "fail-final")

    @rule()
    def reap(self) -> None:
        self.queue.reap()
        self._reap()

    @rule(units=st.sampled_from([3, 3, 3, 25]))
    def time_passes(self, units: int) -> None:
        advance_clock(self.queue, units * UNIT)
        self.now += units * UNIT
        self._retries_due()

    @precondition(lambda self: any(t.status == "failed" for t in self.tasks.values()))
    @rule(data=st.data())
    def operator_retry(self, data: st.DataObject) -> None:
        failed = sorted(i for i, t in self.tasks.items() if t.status == "failed")
        t = self.tasks[data.draw(st.sampled_from(failed))]
        assert self.queue.retry(t.id).status.value == ("blocked" if t.unmet else "available")
        t.status = "blocked" if t.unmet else "available"
        t.attempts, t.due = 0, None

    @precondition(lambda self: self.tasks)
    @rule(data=st.data())
    def operator_cancel(self, data: st.DataObject) -> None:
        open_ids = sorted(
            i for i, t in self.tasks.items() if t.status not in ("completed", "failed")
        )
        if not open_ids:
            return
        t = self.tasks[data.draw(st.sampled_from(open_ids))]
        assert self.queue.cancel(t.id).status == TaskStatus.FAILED
        t.status, t.agent, t.due = "failed", None, None

    # -- invariants --------------------------------------------------------------------------

    @invariant()
    def redis_agrees_with_model(self) -> None:
        real = {t.id: t for t in self.queue.tasks()}
        assert set(real) == set(self.tasks)
        for task_id, m in self.tasks.items():
            r = real[task_id]
            assert (r.status.value, r.agent_id, r.token, r.attempts) == (
                m.status,
                m.agent,
                m.token,
                m.attempts,
            ), task_id
            assert set(r.unmet_dependencies) == m.unmet

    @invariant()
    def counters_are_exact(self) -> None:
        progress = self.queue.progress()
        for status in TaskStatus:
            count = sum(1 for t in self.tasks.values() if t.status == status.value)
            assert progress[status.value] == count, status
        assert progress["total"] == len(self.tasks)
        # the stored counters match the stored statuses (before reads apply Redis time)
        r = self.queue.redis
        stored = Counter(text(r.hget(self.queue.keys.task(i), "status")) for i in self.tasks)
        raw = {text(k): int(v) for k, v in r.hgetall(self.queue.keys.counts).items()}
        assert {k: v for k, v in raw.items() if v} == dict(stored)

    @invariant()
    def nothing_runs_before_its_dependencies(self) -> None:
        for t in self.tasks.values():
            if t.status in ("available", "waiting", "claimed", "in_progress", "completed"):
                assert all(self.tasks[d].status == "completed" for d in t.deps), t.id

    @invariant()
    def one_holder_per_task(self) -> None:
        workload = self.queue.workload()
        held = [task for tasks in workload.values() for task in tasks]
        assert len(held) == len(set(held))
        assert sorted(held) == sorted(i for i, t in self.tasks.items() if t.status in ACTIVE)


def test_queue_matches_model(redis_client: redis.Redis) -> None:
    QueueMachine.client = redis_client
    machine = QueueMachine.TestCase
    machine.settings = settings(max_examples=30, stateful_step_count=30, deadline=None)
    machine("runTest").runTest()


pytestmark = pytest.mark.slow
