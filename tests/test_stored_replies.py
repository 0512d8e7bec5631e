"""Stored replies keep only what a replay needs, live as long as retries need them, and a
replay answers with the request's one outcome.

A stored reply names its tasks by id with the fields the request set (status, agent, token,
times); a replay reads the rest of each task again. So a replay equals the original while the
task is unchanged, and still carries the request's own token and agent after it moved on.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis
from click.testing import CliRunner, Result

from distributor import RedisUnavailable, Settings, TaskQueue
from distributor.cli import main
from distributor.cli.app import CliContext
from distributor.errors import InvalidSetting
from distributor.store.calls import text
from distributor.testing import advance_clock, delete_swarm

SECRET_TITLE = "a title that a stored reply has no need for"
DESCRIPTION = "a long description " * 50
PLAN = {
    "tasks": [
        {"id": "t0", "title": SECRET_TITLE, "description": DESCRIPTION, "files": ["a.py"]},
        {"id": "t1", "title": SECRET_TITLE, "description": DESCRIPTION, "dependencies": ["t0"]},
        {"id": "t2", "title": SECRET_TITLE, "description": DESCRIPTION},
    ]
}


def stored(queue: TaskQueue, request_id: str) -> str:
    """The stored reply of ``request_id``: the 16-character digest, then compact JSON."""
    raw = queue.redis.get(f"{queue.keys.prefix}req:{request_id}")
    assert raw is not None
    value = text(raw)
    assert all(c in "0123456789abcdef" for c in value[:16])
    assert SECRET_TITLE not in value and "description" not in value and "a.py" not in value
    return value[16:]


def twice(call: Callable[[str], Any], request_id: str) -> Any:
    """``call(request_id)`` and its replay, which must be equal; the original is returned."""
    first = call(request_id)
    assert call(request_id) == first
    return first


def test_every_stored_reply_is_compact_and_replays_the_same_outcome(queue: TaskQueue) -> None:
    assert twice(lambda r: queue.submit(PLAN, request_id=r), "s") == ["t0", "t1", "t2"]
    assert json.loads(stored(queue, "s")) in ({}, [])  # empty: the ids are the plan's own

    claim = twice(lambda r: queue.claim_next("a", request_id=r), "n")
    assert claim is not None and claim.task.title == SECRET_TITLE  # read again on the replay
    assert json.loads(stored(queue, "n"))["t"][:4] == [claim.task.id, "claimed", "a", "1"]

    started = twice(lambda r: queue.start(claim.task.id, "a", claim.token, request_id=r), "st")
    assert started.status.value == "in_progress" and started.started_at is not None

    done = twice(
        lambda r: queue.complete(claim.task.id, "a", claim.token, claim_next=True, request_id=r),
        "d",
    )
    assert done.next is not None and done.task.description == DESCRIPTION
    compact = stored(queue, "d")
    assert len(compact) < 150, compact  # ~1.1 KB when it held both whole tasks
    assert json.loads(compact)["t"] == [claim.task.id]  # completed is final: read again

    nxt = done.next
    failed = twice(lambda r: queue.fail(nxt.task.id, "a", nxt.token, "flaky", request_id=r), "f")
    assert failed.will_retry and failed.retry_at is not None

    held = queue.claim_next("a")
    assert held is not None
    released = twice(lambda r: queue.release(held.task.id, "a", held.token, request_id=r), "r")
    assert released.status.value == "available"

    result = twice(lambda r: queue.claim(held.task.id, "b", request_id=r), "c")
    assert result.claim is not None and result.claim.token == held.token + 1


def test_a_final_failure_replays_as_final(queue: TaskQueue) -> None:
    queue.submit({"tasks": [{"id": "x", "title": "X", "max_attempts": 1}]})
    claim = queue.claim_next("a")
    assert claim is not None
    outcome = twice(lambda r: queue.fail("x", "a", claim.token, "no", request_id=r), "f")
    assert not outcome.will_retry and outcome.task.status.value == "failed"


def test_a_replay_after_the_task_moved_on_keeps_the_requests_own_claim(
    queue: TaskQueue,
) -> None:
    """The lease ran out and ``b`` holds the task now: replaying ``a``'s claim still says
    ``a``, token 1 (so a caller never files ``a``'s stale token under ``b``)."""
    queue.submit(PLAN)
    first = queue.claim("t0", "a", lease=60, request_id="late")
    assert first.claim is not None
    advance_clock(queue, 61)
    taken = queue.claim("t0", "b")
    assert taken.claim is not None and taken.claim.token == 2
    again = queue.claim("t0", "a", lease=60, request_id="late")
    assert again.claim is not None
    assert (again.claim.token, again.claim.task.agent_id) == (1, "a")
    assert again.claim.task.lease_expires_at == first.claim.task.lease_expires_at
    assert queue.workload() == {"b": ["t0"]}  # the replay changed nothing


def test_a_replay_of_a_deleted_task_is_not_found(queue: TaskQueue) -> None:
    queue.submit(PLAN)
    assert queue.claim("t2", "a", request_id="gone").claimed
    queue.redis.delete(queue.keys.task("t2"))
    replay = queue.claim("t2", "a", request_id="gone")
    assert (replay.claimed, replay.reason) == (False, "not_found")


def test_replies_are_kept_as_long_as_the_retries_need(queue: TaskQueue) -> None:
    queue.submit(PLAN, request_id="ttl")
    ttl = queue.redis.ttl(f"{queue.keys.prefix}req:ttl")
    assert queue.settings.retry_budget_seconds <= ttl <= queue.settings.request_ttl_seconds == 60


def test_a_reply_must_outlive_the_retry_budget() -> None:
    with pytest.raises(InvalidSetting, match="request_ttl_seconds"):
        Settings(retry_budget_seconds=120)
    with pytest.raises(InvalidSetting, match="cli_request_ttl_seconds"):
        Settings(retry_budget_seconds=100, request_ttl_seconds=100, cli_request_ttl_seconds=50)
    assert Settings(retry_budget_seconds=0).request_ttl_seconds == 60


def test_cli_settings_refuse_a_ttl_below_the_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWARMQUEUE_REQUEST_TTL_SECONDS", "10")
    result = CliRunner().invoke(main, ["status"], catch_exceptions=False)
    assert result.exit_code == 2
    assert result.stderr == (
        "swarmqueue: invalid setting request_ttl_seconds: must be at least"
        " retry_budget_seconds (30)\n"
    )


def test_cli_replies_are_kept_for_a_re_run(real_redis_url: str, tmp_path: Path) -> None:
    settings = Settings(redis_url=real_redis_url, swarm=f"cli-ttl-{tmp_path.name[-12:]}")
    obj = CliContext(settings)
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"tasks": [{"id": "t0", "title": "T"}]}))
    try:
        result = run(obj, "plan", "submit", str(plan), "--request-id", "cli-ttl")
        assert result.exit_code == 0, result.stderr
        ttl = obj.queue.redis.ttl(f"{obj.queue.keys.prefix}req:cli-ttl")
        assert settings.request_ttl_seconds < ttl <= settings.cli_request_ttl_seconds == 900
    finally:
        delete_swarm(obj.queue)
        obj.queue.redis.close()


# -- the CLI keeps a request id until Redis answers --------------------------------------------


def run(obj: CliContext, *args: str) -> Result:
    return CliRunner().invoke(main, list(args), obj=obj, catch_exceptions=False)


def pending_ids(swarm: str, agent: str | None = "a") -> list[str]:
    """The request ids the CLI keeps for ``agent`` (``None``: plan submits) on this host."""
    name = "plans.json" if agent is None else f"agent-{agent}.json"
    path = Path(os.environ["SWARMQUEUE_STATE_DIR"]) / "requests" / swarm / name
    return list(json.loads(path.read_text()).values()) if path.exists() else []


def test_an_unanswered_command_keeps_its_request_id_and_a_re_run_replays(
    cli_obj: CliContext, sync_queue: TaskQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Redis took ``done --next`` and its reply was lost (exit 3): the same command again
    sends the same id and prints the claim it made, instead of 'task is completed'."""
    sync_queue.submit(PLAN)
    assert run(cli_obj, "claim", "t0", "--agent", "a").exit_code == 0
    assert pending_ids(sync_queue.swarm) == []  # answered: not kept
    real_complete = sync_queue.complete
    sent: list[str | None] = []

    def complete_then_lose_the_reply(*args: Any, **kwargs: Any) -> Any:
        sent.append(kwargs["request_id"])
        real_complete(*args, **kwargs)
        raise RedisUnavailable("Redis unreachable (simulated)", request_id=kwargs["request_id"])

    monkeypatch.setattr(sync_queue, "complete", complete_then_lose_the_reply)
    lost = run(cli_obj, "done", "t0", "--agent", "a", "--next", "--json")
    assert lost.exit_code == 3 and lost.stdout == ""
    rid = sent[0]
    assert rid is not None and pending_ids(sync_queue.swarm) == [rid]
    assert lost.stderr.count("\n") == 1 and f"request id {rid}: run the same command" in lost.stderr

    monkeypatch.setattr(sync_queue, "complete", real_complete)
    again = run(cli_obj, "done", "t0", "--agent", "a", "--next", "--json")
    assert again.exit_code == 0, again.stderr
    out = json.loads(again.stdout)
    completed, taken = out["completed"], out["next"]
    assert (completed["task"]["id"], completed["unblocked"]) == ("t0", ["t1"])
    assert (taken["id"], taken["token"], taken["title"]) == ("t1", 1, SECRET_TITLE)
    assert pending_ids(sync_queue.swarm) == []
    kinds = [(e.type, e.task_id) for e in sync_queue.events()]
    assert kinds.count(("completed", "t0")) == 1 and kinds.count(("claimed", "t1")) == 1
    assert run(cli_obj, "done", "t1", "--agent", "a").exit_code == 0  # its token was kept


def test_a_refused_command_drops_its_request_id(
    cli_obj: CliContext, sync_queue: TaskQueue
) -> None:
    sync_queue.submit(PLAN)
    refused = run(cli_obj, "fail", "t0", "--agent", "a", "--token", "1", "--reason", "x")
    assert refused.exit_code == 1  # not held: a definite answer
    assert run(cli_obj, "next", "--agent", "a").exit_code == 0
    nothing = run(cli_obj, "claim", "t1", "--agent", "a")
    assert nothing.exit_code == 1  # blocked
    assert pending_ids(sync_queue.swarm) == []


def test_an_unanswered_plan_submit_replays(
    cli_obj: CliContext, sync_queue: TaskQueue, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps(PLAN))
    real_submit = sync_queue.submit

    def submit_then_lose_the_reply(*args: Any, **kwargs: Any) -> Any:
        real_submit(*args, **kwargs)
        raise redis.ConnectionError("reply lost (simulated)")

    monkeypatch.setattr(sync_queue, "submit", submit_then_lose_the_reply)
    lost = run(cli_obj, "plan", "submit", str(plan))
    assert lost.exit_code == 3 and len(pending_ids(sync_queue.swarm, None)) == 1
    monkeypatch.setattr(sync_queue, "submit", real_submit)
    again = run(cli_obj, "plan", "submit", str(plan))
    assert (again.exit_code, again.stdout) == (0, "submitted 3 task(s): t0, t1, t2\n")
    assert pending_ids(sync_queue.swarm, None) == []
    assert sync_queue.progress()["total"] == 3


def test_a_reply_stored_whole_by_an_older_version_still_replays(queue: TaskQueue) -> None:
    """Replies of the previous format (whole task tables, kept 600 s) outlive an upgrade."""
    queue.submit(PLAN)
    claim = queue.claim_next("a", request_id="old")
    assert claim is not None
    key = f"{queue.keys.prefix}req:old"
    digest = text(queue.redis.get(key))[:16]
    fields = queue.redis.hgetall(queue.keys.task(claim.task.id))
    whole = {"task": {text(k): text(v) for k, v in fields.items()}}
    queue.redis.set(key, digest + json.dumps(whole), ex=600)
    again = queue.claim_next("a", request_id="old")
    assert again == claim
