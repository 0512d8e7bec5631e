"""A task in retry backoff is `waiting` everywhere, with its retry time, until that time comes.

After a failed attempt with attempts left the task is `waiting` (status, `tasks`, `task`,
`plan show`, counters, the event log, `claim`'s refusal) until `retry_at`; from then on every
read says `available` at once, by Redis time, before any claim or reap has recorded it, and it
can be claimed. The stored counters always match the stored statuses.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime

from click.testing import CliRunner, Result

from distributor import TaskQueue, TaskStatus
from distributor.cli import main
from distributor.cli.app import CliContext
from distributor.cli.output import when
from distributor.store.calls import text
from distributor.testing import advance_clock


def stored_status(queue: TaskQueue, task_id: str) -> str:
    return text(queue.redis.hget(queue.keys.task(task_id), "status"))


def assert_counters_exact(queue: TaskQueue) -> None:
    """The counts hash matches a scan of the stored statuses, and `progress` matches `tasks`."""
    r = queue.redis
    ids = [text(i) for i in r.zrange(queue.keys.all, 0, -1)]
    stored = Counter(stored_status(queue, i) for i in ids)
    raw = {text(k): int(v) for k, v in r.hgetall(queue.keys.counts).items()}
    assert {k: v for k, v in raw.items() if v} == dict(stored)
    shown = Counter(t.status.value for t in queue.tasks())
    progress = queue.progress()
    assert {s.value: progress[s.value] for s in TaskStatus} == {
        s.value: shown[s.value] for s in TaskStatus
    }
    assert progress["total"] == len(ids)


def fail_once(queue: TaskQueue, task_id: str = "x") -> datetime:
    """Claim ``task_id`` and fail it with retry; its retry time."""
    claim = queue.claim(task_id, "a1")
    assert claim.claim is not None
    outcome = queue.fail(task_id, "a1", claim.claim.token, "flaky network")
    assert outcome.will_retry and outcome.retry_at is not None
    return outcome.retry_at


PLAN = {
    "tasks": [
        {"id": "x", "title": "X", "max_attempts": 3},
        {"id": "y", "title": "Y", "dependencies": ["x"]},
        {"id": "z", "title": "Z"},
    ]
}


def test_failed_task_waits_then_is_available_and_claimable(queue: TaskQueue) -> None:
    queue.submit(PLAN)
    retry_at = fail_once(queue)

    task = queue.get("x")
    assert (task.status, task.retry_at, task.agent_id) == (TaskStatus.WAITING, retry_at, None)
    assert [t.id for t in queue.tasks("waiting")] == ["x"]
    assert [t.id for t in queue.tasks(TaskStatus.AVAILABLE)] == ["z"]
    progress = queue.progress()
    assert (progress["waiting"], progress["available"], progress["blocked"]) == (1, 1, 1)
    assert progress["blocked_by_failed"] == {}  # waiting is not failed
    refused = queue.claim("x", "a2")
    assert (refused.claimed, refused.reason) == (False, "waiting")
    assert refused.task is not None and refused.task.retry_at == retry_at
    claim = queue.claim_next("a2")  # z is the only ready task
    assert claim is not None and claim.task.id == "z"
    assert queue.claim_next("a3") is None
    assert_counters_exact(queue)

    advance_clock(queue, queue.settings.retry_backoff_seconds)
    # due: every read says available at once, though nothing has recorded it yet
    assert stored_status(queue, "x") == "waiting"
    task = queue.get("x")
    assert (task.status, task.retry_at) == (TaskStatus.AVAILABLE, None)
    assert [t.id for t in queue.tasks("available")] == ["x"]
    assert queue.tasks("waiting") == []
    progress = queue.progress()
    assert (progress["waiting"], progress["available"]) == (0, 1)
    assert_counters_exact(queue)

    again = queue.claim("x", "a2")
    assert again.claim is not None and again.claim.token == 2 and again.claim.task.attempts == 2
    assert again.claim.task.retry_at is None
    assert stored_status(queue, "x") == "claimed"
    assert queue.redis.zcard(queue.keys.delayed) == 0
    assert_counters_exact(queue)


def test_claim_next_and_reap_record_due_retries(queue: TaskQueue) -> None:
    queue.submit({"tasks": [{"id": f"r{i}", "title": "R"} for i in range(3)]})
    for i in range(3):
        fail_once(queue, f"r{i}")
    assert queue.progress()["waiting"] == 3
    advance_clock(queue, queue.settings.retry_backoff_seconds)
    claim = queue.claim_next("a2")  # records every due retry, then claims the best
    assert claim is not None and claim.task.id == "r0"
    assert [stored_status(queue, f"r{i}") for i in range(3)] == [
        "claimed",
        "available",
        "available",
    ]
    assert_counters_exact(queue)

    queue.fail("r0", "a2", claim.token, "again")
    advance_clock(queue, 10 * queue.settings.retry_backoff_seconds)
    assert queue.reap() == 0  # no lease expired; the due retry is recorded all the same
    assert stored_status(queue, "r0") == "available"
    assert queue.progress()["available"] == 3
    assert_counters_exact(queue)


def test_cancel_of_waiting_task_and_final_failure(queue: TaskQueue) -> None:
    queue.submit(PLAN)
    fail_once(queue)
    cancelled = queue.cancel("x")
    assert (cancelled.status, cancelled.retry_at) == (TaskStatus.FAILED, None)
    assert queue.redis.zcard(queue.keys.delayed) == 0
    assert queue.progress()["blocked_by_failed"] == {"x": ["y"]}
    assert_counters_exact(queue)

    retried = queue.retry("x")
    assert retried.status == TaskStatus.AVAILABLE
    for _ in range(2):
        fail_once(queue)
        advance_clock(queue, 100)
    claim = queue.claim("x", "a1")
    assert claim.claim is not None and claim.claim.task.attempts == 3
    final = queue.fail("x", "a1", claim.claim.token, "gave up")
    assert not final.will_retry and final.task.status == TaskStatus.FAILED
    assert_counters_exact(queue)


def test_events_say_waiting_with_retry_at_or_failed(queue: TaskQueue) -> None:
    queue.submit({"tasks": [{"id": "x", "title": "X", "max_attempts": 2}]})
    retry_at = fail_once(queue)
    advance_clock(queue, 100)
    claim = queue.claim("x", "a1")
    assert claim.claim is not None
    queue.fail("x", "a1", claim.claim.token, "again")
    failed = [e for e in queue.events() if e.type == "failed"]
    assert [e.data for e in failed] == [
        {
            "reason": "flaky network",
            "attempts": "1",
            "status": "waiting",
            "retry_at": str(round(retry_at.timestamp() * 1000)),
        },
        {"reason": "again", "attempts": "2", "status": "failed", "final": "1"},
    ]


# -- the command line -------------------------------------------------------------------------


def run(obj: CliContext, *args: str) -> Result:
    return CliRunner().invoke(main, list(args), obj=obj, catch_exceptions=False)


def test_cli_shows_waiting_with_retry_time_everywhere(
    cli_obj: CliContext, sync_queue: TaskQueue
) -> None:
    sync_queue.submit(PLAN)
    retry_at = fail_once(sync_queue)
    until = f"waiting until {when(retry_at)}"

    listing = run(cli_obj, "tasks", "--status", "waiting")
    assert listing.exit_code == 0
    assert [line.split("\t")[:2] for line in listing.stdout.splitlines()[1:]] == [["x", until]]
    rows = json.loads(run(cli_obj, "tasks", "--status", "waiting", "--json").stdout)
    assert [(r["id"], r["status"], datetime.fromisoformat(r["retry_at"])) for r in rows] == [
        ("x", "waiting", retry_at)
    ]
    assert f"status {until}," in run(cli_obj, "task", "x").stdout
    assert json.loads(run(cli_obj, "task", "x", "--json").stdout)["status"] == "waiting"
    status = run(cli_obj, "status")
    assert "available 1, waiting 1, claimed 0" in status.stdout
    assert json.loads(run(cli_obj, "status", "--json").stdout)["waiting"] == 1
    assert f"  [{until}] x: X" in run(cli_obj, "plan", "show").stdout
    layers = json.loads(run(cli_obj, "plan", "show", "--json").stdout)
    assert layers[0][0]["status"] == "waiting"
    assert datetime.fromisoformat(layers[0][0]["retry_at"]) == retry_at
    refused = run(cli_obj, "claim", "x", "--agent", "a2")
    assert refused.exit_code == 1
    assert refused.stderr == f"swarmqueue: task 'x' not claimed: {until}\n"

    advance_clock(sync_queue, sync_queue.settings.retry_backoff_seconds)
    assert run(cli_obj, "tasks", "--status", "waiting").stdout.splitlines()[1:] == []
    assert "[available] x: X" in run(cli_obj, "plan", "show").stdout
    assert "available 2, waiting 0" in run(cli_obj, "status").stdout
    assert run(cli_obj, "claim", "x", "--agent", "a2").exit_code == 0
