"""A request id is bound to its request: the same request again gets the stored reply; the id
with another operation or other arguments is refused (``RequestIdReused``), changing nothing.

The lost-reply retries themselves (redis-py re-sending the same call) are in
``tests/test_idempotency.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from distributor import RequestIdReused, TaskQueue, ValidationError
from distributor.cli import main
from distributor.cli.app import CliContext
from distributor.store.calls import text
from tests.conftest import snapshot

PLAN_1 = {"tasks": [{"id": "t0", "title": "T0"}, {"id": "t1", "title": "T1"}]}
PLAN_2 = {"tasks": [{"id": "u0", "title": "U0"}]}


def refused_unchanged(queue: TaskQueue, call: Callable[[], Any]) -> RequestIdReused:
    """Run ``call``, which must raise ``RequestIdReused`` and leave every key as it was."""
    before = snapshot(queue.redis, queue.keys.prefix)
    with pytest.raises(RequestIdReused) as info:
        call()
    assert snapshot(queue.redis, queue.keys.prefix) == before
    return info.value


def test_submit_replays_the_same_plan_and_refuses_another(queue: TaskQueue) -> None:
    assert queue.submit(PLAN_1, request_id="plan-a") == ["t0", "t1"]
    assert queue.submit(PLAN_1, request_id="plan-a") == ["t0", "t1"]  # replayed, no duplicate
    error = refused_unchanged(queue, lambda: queue.submit(PLAN_2, request_id="plan-a"))
    assert isinstance(error, ValidationError)
    assert str(error) == (
        "request id 'plan-a' was already used for a different request; "
        "this submit was not done (use a new request id)"
    )
    assert queue.progress()["total"] == 2
    assert queue.submit(PLAN_2, request_id="plan-b") == ["u0"]


def test_claim_by_another_agent_with_the_same_id_is_refused(queue: TaskQueue) -> None:
    queue.submit(PLAN_1)
    first = queue.claim("t0", "a", request_id="c-1")
    assert first.claim is not None
    again = queue.claim("t0", "a", request_id="c-1")
    assert again.claim is not None and again.claim.token == first.claim.token
    refused_unchanged(queue, lambda: queue.claim("t0", "b", request_id="c-1"))
    refused_unchanged(queue, lambda: queue.claim("t1", "a", request_id="c-1"))
    refused_unchanged(queue, lambda: queue.claim("t0", "a", lease=5, request_id="c-1"))
    assert queue.workload() == {"a": ["t0"]}


def test_claim_next_by_another_agent_with_the_same_id_is_refused(queue: TaskQueue) -> None:
    queue.submit(PLAN_1)
    first = queue.claim_next("a", request_id="n-1")
    assert first is not None
    again = queue.claim_next("a", request_id="n-1")
    assert again is not None and (again.task.id, again.token) == (first.task.id, first.token)
    refused_unchanged(queue, lambda: queue.claim_next("b", request_id="n-1"))
    assert queue.workload() == {"a": [first.task.id]}


def test_holder_operations_are_bound_to_their_arguments(queue: TaskQueue) -> None:
    queue.submit(PLAN_1)
    c0, c1 = queue.claim("t0", "a").claim, queue.claim("t1", "a").claim
    assert c0 is not None and c1 is not None

    started = queue.start("t0", "a", c0.token, request_id="s-1")
    assert queue.start("t0", "a", c0.token, request_id="s-1") == started
    refused_unchanged(queue, lambda: queue.start("t1", "a", c1.token, request_id="s-1"))

    outcome = queue.fail("t1", "a", c1.token, "broken", request_id="f-1")
    assert queue.fail("t1", "a", c1.token, "broken", request_id="f-1") == outcome
    refused_unchanged(queue, lambda: queue.fail("t1", "a", c1.token, "other", request_id="f-1"))
    refused_unchanged(
        queue, lambda: queue.fail("t1", "a", c1.token, "broken", retry=False, request_id="f-1")
    )

    done = queue.complete("t0", "a", c0.token, request_id="d-1")
    assert queue.complete("t0", "a", c0.token, request_id="d-1") == done
    refused_unchanged(
        queue, lambda: queue.complete("t0", "a", c0.token, claim_next=True, request_id="d-1")
    )

    queue.submit({"tasks": [{"id": "r", "title": "R"}]})
    held = queue.claim("r", "a").claim
    assert held is not None
    error = refused_unchanged(queue, lambda: queue.release("r", "a", held.token, request_id="d-1"))
    assert error.operation == "release"  # an id used by complete cannot name a release
    released = queue.release("r", "a", held.token, request_id="rel-1")
    assert queue.release("r", "a", held.token, request_id="rel-1") == released


def test_an_id_whose_request_was_refused_is_not_bound(queue: TaskQueue) -> None:
    """Only replies that changed state are stored, so a refused request leaves its id free."""
    queue.submit(
        {"tasks": [{"id": "a", "title": "A"}, {"id": "b", "title": "B", "dependencies": ["a"]}]}
    )
    assert queue.claim("b", "x", request_id="r-1").reason == "blocked"
    assert queue.claim("a", "x", request_id="r-1").claimed


def test_stored_reply_is_the_digest_then_the_reply(queue: TaskQueue) -> None:
    """Compact: 16 hex characters of digest, then the reply's JSON as the script returned it."""
    queue.submit(PLAN_1)
    queue.claim("t0", "a", request_id="k-1")
    stored = text(queue.redis.get(queue.keys.prefix + "req:k-1"))
    assert all(c in "0123456789abcdef" for c in stored[:16]) and stored[16] == "{"
    assert queue.redis.ttl(queue.keys.prefix + "req:k-1") > 0


# -- the command line ---------------------------------------------------------------------------


def run(obj: CliContext, *args: str) -> Result:
    return CliRunner().invoke(main, list(args), obj=obj, catch_exceptions=False)


def test_cli_plan_submit_reuse_exits_2_with_redis_unchanged(
    cli_obj: CliContext, sync_queue: TaskQueue, tmp_path: Path
) -> None:
    p1, p2 = tmp_path / "p1.yaml", tmp_path / "p2.yaml"
    p1.write_text("tasks:\n  - {id: t0, title: T0}\n")
    p2.write_text("tasks:\n  - {id: u0, title: U0}\n")
    assert run(cli_obj, "plan", "submit", str(p1), "--request-id", "abc").exit_code == 0
    before = snapshot(sync_queue.redis, sync_queue.keys.prefix)

    reused = run(cli_obj, "plan", "submit", str(p2), "--request-id", "abc")

    assert reused.exit_code == 2
    assert reused.stdout == ""
    assert reused.stderr == (
        "swarmqueue: request id 'abc' was already used for a different request; "
        "this submit was not done (use a new request id)\n"
    )
    assert snapshot(sync_queue.redis, sync_queue.keys.prefix) == before
    again = run(cli_obj, "plan", "submit", str(p1), "--request-id", "abc")
    assert (again.exit_code, again.stdout) == (0, "submitted 1 task(s): t0\n")


def test_cli_claim_reuse_by_another_agent_exits_2(
    cli_obj: CliContext, sync_queue: TaskQueue
) -> None:
    sync_queue.submit(PLAN_1)
    assert run(cli_obj, "claim", "t0", "--agent", "a", "--request-id", "x1").exit_code == 0
    before = snapshot(sync_queue.redis, sync_queue.keys.prefix)
    for args in (("claim", "t0"), ("claim", "t1"), ("next",)):
        reused = run(cli_obj, *args, "--agent", "b", "--request-id", "x1")
        assert reused.exit_code == 2
        assert len(reused.stderr.splitlines()) == 1 and "request id 'x1'" in reused.stderr
    assert snapshot(sync_queue.redis, sync_queue.keys.prefix) == before
