"""The event commands: ``events`` (and ``--follow``), ``watch``, and ``next --wait``."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from click.testing import CliRunner, Result

from distributor.cli import main
from distributor.cli.app import CliContext
from distributor.tasks.queue import TaskQueue
from tests.conftest import chain_plan
from tests.redis_cluster import shard_subscribers


def run(obj: CliContext, *args: str) -> Result:
    return CliRunner().invoke(main, list(args), obj=obj, catch_exceptions=False)


def finish_chain(queue: TaskQueue, n: int, agent: str = "a1") -> None:
    for _ in range(n):
        claim = queue.claim_next(agent)
        assert claim is not None
        queue.complete(claim.task_id, agent, claim.token)


def test_events_prints_one_line_per_event(cli_obj: CliContext, sync_queue: TaskQueue) -> None:
    sync_queue.submit(chain_plan(2))
    finish_chain(sync_queue, 1)
    ids = [e.id for e in sync_queue.events()]

    result = run(cli_obj, "events")

    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert [line.split("  ")[0] for line in lines] == ids
    assert lines[0].split("  ")[2:] == ["submitted", "t0", "status=available"]
    assert lines[1].split("  ")[2:] == ["submitted", "t1", "status=blocked"]
    assert lines[3].split("  ")[2:] == ["completed", "t0", "by a1", "unblocked=t1"]

    later = run(cli_obj, "events", "--since", ids[2])
    assert [line.split("  ")[0] for line in later.stdout.splitlines()] == ids[3:]


def test_events_json_lines(cli_obj: CliContext, sync_queue: TaskQueue) -> None:
    sync_queue.submit(chain_plan(2))
    finish_chain(sync_queue, 1)

    result = run(cli_obj, "events", "--json")

    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(r["type"], r["task_id"], r["agent_id"]) for r in rows] == [
        ("submitted", "t0", None),
        ("submitted", "t1", None),
        ("claimed", "t0", "a1"),
        ("completed", "t0", "a1"),
    ]
    assert rows[3]["data"] == {"unblocked": "t1"}
    assert [r["id"] for r in rows] == [e.id for e in sync_queue.events()]


def test_events_follow_prints_history_then_stops_when_idle(
    cli_obj: CliContext, sync_queue: TaskQueue
) -> None:
    sync_queue.submit(chain_plan(2))

    result = run(cli_obj, "events", "--follow", "--timeout", "0.2")

    assert result.exit_code == 0
    assert len(result.stdout.splitlines()) == 2  # one submitted event per task


def test_events_bad_since_exits_2(cli_obj: CliContext) -> None:
    result = run(cli_obj, "events", "--since", "yesterday")
    assert result.exit_code == 2
    assert "invalid event id" in result.stderr


def test_next_wait_is_woken_by_a_completion(cli_obj: CliContext, sync_queue: TaskQueue) -> None:
    sync_queue.submit(chain_plan(2))
    first = sync_queue.claim_next("a1")
    assert first is not None

    def complete_when_waited_for() -> None:
        deadline = time.monotonic() + 10
        while shard_subscribers(sync_queue.redis, sync_queue.keys.channel) < 1:
            assert time.monotonic() < deadline
            time.sleep(0.005)
        sync_queue.complete("t0", "a1", first.token)

    with ThreadPoolExecutor(1) as pool:
        completer = pool.submit(complete_when_waited_for)
        result = run(cli_obj, "next", "--agent", "a2", "--wait", "30", "--json")
        completer.result()

    assert result.exit_code == 0
    assert json.loads(result.stdout)["id"] == "t1"


def test_next_wait_runs_out_exits_1(cli_obj: CliContext) -> None:
    result = run(cli_obj, "next", "--agent", "a2", "--wait", "0.2")
    assert result.exit_code == 1
    assert result.stderr == "swarmqueue: no task became ready within 0.2s\n"


def test_watch_ends_when_all_tasks_completed(cli_obj: CliContext, sync_queue: TaskQueue) -> None:
    sync_queue.submit(chain_plan(3))
    worker = threading.Thread(target=finish_chain, args=(sync_queue, 3))
    worker.start()

    result = run(cli_obj, "watch", "--timeout", "30")
    worker.join()

    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[-1].startswith("[" + "#" * 30 + "] 3/3 completed (100.0%) | blocked 0,")
    assert len(lines) == len(set(lines))  # one line per change


def test_watch_json_and_failures_exit_1(cli_obj: CliContext, sync_queue: TaskQueue) -> None:
    sync_queue.submit(chain_plan(2))
    sync_queue.cancel("t0")  # t1 stays blocked by it: the swarm is not finished ...
    unfinished = run(cli_obj, "watch", "--timeout", "0.2", "--json")
    assert unfinished.exit_code == 1
    assert "not finished" in unfinished.stderr
    assert json.loads(unfinished.stdout.splitlines()[-1])["failed"] == 1

    sync_queue.cancel("t1")  # ... until every task is completed or failed
    result = run(cli_obj, "watch", "--json")

    assert result.exit_code == 1
    assert result.stderr == "swarmqueue: finished with 2 of 2 task(s) failed\n"
    assert json.loads(result.stdout)["failed"] == 2
