"""Stateful property test of file reservations: Redis and a brute-force model agree.

Hypothesis drives submit / claim / claim_next / heartbeat / complete / fail / release / time
passing (leases expire) / reserve / unreserve over patterns that overlap in every way the rules
know (a file, its directory, globs, case, ``**``). The model compares every live reservation
with every other through :func:`~distributor.reservations.patterns.overlap` (no index), and
checks after every step that no conflicting pair is held, that a task is skipped only when its
files conflict, and that a claim's reservations end with it. Durations are in units of 100 s,
so the real seconds a run takes never decide an expiry.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass

import pytest
import redis
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from distributor import TaskQueue
from distributor.errors import FilesReserved
from distributor.reservations.patterns import overlap, parse
from distributor.settings import Settings
from distributor.testing import advance_clock, delete_swarm

UNIT = 100.0
LEASE = 10 * UNIT
AGENTS = st.sampled_from(["a1", "a2", "a3"])
PATTERNS = st.sampled_from(
    ["src/a.py", "src/b.py", "SRC/A.py", "src/", "src/*.py", "src/s*", "src/sub/c.py",
     "docs/x.md", "docs/", "./docs/y.md", "**"]
)  # fmt: skip
FILES = st.lists(PATTERNS, max_size=3)

# a live reservation as compared: (agent, pattern, shared, task or None)
Held = tuple[str, str, bool, str | None]


@dataclass
class ModelTask:
    id: str
    seq: int
    files: list[str]
    shared_files: list[str]
    status: str = "available"
    agent: str | None = None
    token: int = 0
    until: float = 0.0


class ReservationMachine(RuleBasedStateMachine):
    client: redis.Redis

    def __init__(self) -> None:
        super().__init__()
        self.queue = TaskQueue(
            self.client,
            f"rm-{uuid.uuid4().hex[:10]}",
            settings=Settings(lease_seconds=LEASE, reap_batch=100, reservation_scan=64),
        )
        self.tasks: dict[str, ModelTask] = {}
        self.explicit: dict[tuple[str, str], tuple[bool, float]] = {}  # (agent, text) -> ...
        self.now = 0.0

    def teardown(self) -> None:
        delete_swarm(self.queue)

    # -- the model ---------------------------------------------------------------------------

    def _expire_leases(self) -> None:
        for t in self.tasks.values():
            if t.status == "claimed" and t.until <= self.now:
                t.status, t.agent = "available", None

    def live(self) -> set[Held]:
        held: set[Held] = set()
        for t in self.tasks.values():
            if t.status == "claimed" and t.until > self.now:
                assert t.agent is not None
                held |= {(t.agent, parse(f).text, False, t.id) for f in t.files}
                held |= {(t.agent, parse(f).text, True, t.id) for f in t.shared_files}
        for (agent, text), (shared, until) in self.explicit.items():
            if until > self.now:
                held.add((agent, text, shared, None))
        return held

    def conflicts(self, agent: str, wanted: list[tuple[str, bool]]) -> set[Held]:
        return {
            h
            for h in self.live()
            for text, shared in wanted
            if h[0] != agent and not (shared and h[2]) and overlap(parse(text), parse(h[1]))
        }

    def _wanted(self, t: ModelTask) -> list[tuple[str, bool]]:
        return [(f, False) for f in t.files] + [(f, True) for f in t.shared_files]

    def _grant(self, t: ModelTask, agent: str, token: int) -> None:
        t.status, t.agent, t.token, t.until = "claimed", agent, token, self.now + LEASE

    def _held(self, data: st.DataObject) -> ModelTask:
        claimed = sorted(i for i, t in self.tasks.items() if t.status == "claimed")
        return self.tasks[data.draw(st.sampled_from(claimed))]

    def _has_claims(self) -> bool:
        return any(t.status == "claimed" and t.until > self.now for t in self.tasks.values())

    # -- rules -------------------------------------------------------------------------------

    @precondition(lambda self: len(self.tasks) < 10)
    @rule(files=FILES, shared=st.lists(PATTERNS, max_size=2))
    def submit(self, files: list[str], shared: list[str]) -> None:
        task_id = f"k{len(self.tasks)}"
        task = {"id": task_id, "title": "T", "files": files, "shared_files": shared}
        self.queue.submit([{**task, "max_attempts": 100}])  # expiries never fail it
        self.tasks[task_id] = ModelTask(task_id, len(self.tasks), files, shared)

    @precondition(lambda self: bool(self.tasks))
    @rule(data=st.data(), agent=AGENTS)
    def claim(self, data: st.DataObject, agent: str) -> None:
        t = self.tasks[data.draw(st.sampled_from(sorted(self.tasks)))]
        self._expire_leases()
        result = self.queue.claim(t.id, agent)
        if t.status != "available":
            assert not result.claimed and result.reason in ("already_claimed", "not_available")
            return
        expected = self.conflicts(agent, self._wanted(t))
        if expected:
            assert result.reason == "reserved"
            assert {
                (h.agent_id, h.pattern, h.shared, h.task_id) for h in result.holders
            } == expected
            return
        assert result.claim is not None, result.reason
        self._grant(t, agent, result.claim.token)

    @rule(agent=AGENTS)
    def claim_next(self, agent: str) -> None:
        self._expire_leases()
        ready = sorted(
            (t for t in self.tasks.values() if t.status == "available"), key=lambda t: t.seq
        )
        skipped, holders, chosen = [], set(), None
        for t in ready:
            found = self.conflicts(agent, self._wanted(t))
            if not found:
                chosen = t
                break
            skipped.append(t.id)
            holders |= found
        outcome = self.queue.next_claim(agent)
        if chosen is None:
            assert outcome.claim is None and outcome.skipped == skipped
            assert {
                (h.agent_id, h.pattern, h.shared, h.task_id) for h in outcome.holders
            } == holders
            return
        assert outcome.claim is not None and outcome.claim.task.id == chosen.id, skipped
        self._grant(chosen, agent, outcome.claim.token)

    @precondition(_has_claims)
    @rule(data=st.data())
    def complete(self, data: st.DataObject) -> None:
        t = self._held(data)
        assert t.agent is not None
        if t.until <= self.now:
            return
        self.queue.complete(t.id, t.agent, t.token)
        t.status, t.agent = "completed", None

    @precondition(_has_claims)
    @rule(data=st.data(), give_back=st.booleans())
    def fail_or_release(self, data: st.DataObject, give_back: bool) -> None:
        t = self._held(data)
        assert t.agent is not None
        if t.until <= self.now:
            return
        if give_back:
            self.queue.release(t.id, t.agent, t.token)
            t.status, t.agent = "available", None
        else:
            self.queue.fail(t.id, t.agent, t.token, "no", retry=False)
            t.status, t.agent = "failed", None

    @precondition(_has_claims)
    @rule(data=st.data())
    def heartbeat(self, data: st.DataObject) -> None:
        t = self._held(data)
        assert t.agent is not None
        if t.until <= self.now:
            return
        self.queue.heartbeat(t.id, t.agent, t.token)
        t.until = self.now + LEASE

    @rule(units=st.sampled_from([3, 11]))
    def time_passes(self, units: int) -> None:
        advance_clock(self.queue, units * UNIT)
        self.now += units * UNIT

    @rule(agent=AGENTS, patterns=st.lists(PATTERNS, min_size=1, max_size=2), shared=st.booleans(),
          units=st.sampled_from([5, 20]))  # fmt: skip
    def reserve(self, agent: str, patterns: list[str], shared: bool, units: int) -> None:
        expected = self.conflicts(agent, [(p, shared) for p in patterns])
        try:
            taken = self.queue.reserve(patterns, agent, ttl=units * UNIT, shared=shared)
        except FilesReserved as exc:
            assert expected, "refused without a conflict"
            got = {(h.agent_id, h.pattern, h.shared, h.task_id) for h in exc.holders}  # type: ignore[attr-defined]
            assert got == expected
            return
        assert not expected, f"reserved over {expected}"
        assert [r.pattern for r in taken] == [parse(p).text for p in patterns]
        for p in patterns:
            self.explicit[(agent, parse(p).text)] = (shared, self.now + units * UNIT)

    @rule(agent=AGENTS)
    def unreserve(self, agent: str) -> None:
        freed = set(self.queue.unreserve(agent))
        live = {
            text
            for (a, text), (_, until) in self.explicit.items()
            if a == agent and until > self.now
        }
        assert live <= freed
        self.explicit = {k: v for k, v in self.explicit.items() if k[0] != agent}

    # -- invariants --------------------------------------------------------------------------

    @invariant()
    def redis_holds_what_the_model_holds(self) -> None:
        got = self.queue.reservations()
        assert {(r.agent_id, r.pattern, r.shared, r.task_id) for r in got} == self.live()

    @invariant()
    def no_conflicting_pair_is_held(self) -> None:
        held = self.queue.reservations()
        for i, a in enumerate(held):
            for b in held[i + 1 :]:
                if a.agent_id != b.agent_id and not (a.shared and b.shared):
                    assert not overlap(a.parsed, b.parsed), (a, b)


def test_reservations_match_model(redis_client: redis.Redis) -> None:
    ReservationMachine.client = redis_client
    machine = ReservationMachine.TestCase
    examples = int(os.environ.get("SWARMQUEUE_TEST_EXAMPLES", "10"))  # deeper runs: set it
    machine.settings = settings(max_examples=examples, stateful_step_count=25, deadline=None)
    machine("runTest").runTest()


pytestmark = pytest.mark.slow
