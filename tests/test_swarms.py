"""Whole swarms: listing with progress, and deleting one with its keys and delivery jobs."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import redis
from click.testing import CliRunner, Result

from distributor.admin.swarms import delete_swarm, find_swarms, summaries
from distributor.cli import main
from distributor.cli.app import CliContext
from distributor.messaging.job_ids import delivery_job_id
from distributor.tasks.queue import TaskQueue
from distributor.testing import advance_clock
from tests.conftest import chain_plan, snapshot
from tests.messaging_support import Messaging


def run(obj: CliContext, *args: str) -> Result:
    return CliRunner().invoke(main, list(args), obj=obj, catch_exceptions=False)


@pytest.fixture
def ms(redis_client: redis.Redis, sync_queue: TaskQueue) -> Iterator[Messaging]:
    """Messaging on the same swarm as ``sync_queue``, with one registered agent."""
    m = Messaging(redis_client, sync_queue.swarm, agent_stale_seconds=60)
    m.registry.register("alice", "%1")
    yield m
    m.close()


def test_summary_counts_progress_agents_and_activity(sync_queue: TaskQueue, ms: Messaging) -> None:
    sync_queue.submit(chain_plan(3))
    claim = sync_queue.claim_next("alice")
    assert claim is not None
    sync_queue.complete(claim.task.id, "alice", claim.token)

    assert sync_queue.swarm in find_swarms(sync_queue.redis)
    (s,) = [s for s in summaries(sync_queue.redis) if s.name == sync_queue.swarm]
    assert (s.name, s.total, s.agents) == (sync_queue.swarm, 3, 1)
    assert (s.counts["completed"], s.counts["available"], s.counts["blocked"]) == (1, 1, 1)
    assert s.completion_pct == 33.3
    assert s.events >= 3 and s.last_activity is not None


def test_delete_removes_every_key_and_delivery_job_and_nothing_else(
    redis_client: redis.Redis, sync_queue: TaskQueue, ms: Messaging
) -> None:
    other = TaskQueue(redis_client, sync_queue.swarm + "-other", settings=sync_queue.settings)
    try:
        other.submit(chain_plan(2))
        before_other = snapshot(redis_client, other.keys.prefix)
        sync_queue.submit(chain_plan(4))
        message_id = ms.messenger.broadcast("hello")
        assert ms.queued_job_ids() == [delivery_job_id(message_id, ms.host)]

        result = delete_swarm(redis_client, sync_queue.swarm)

        assert result.jobs == 1 and result.keys > 4
        assert snapshot(redis_client, sync_queue.keys.prefix) == {}
        assert ms.queued_job_ids() == []
        assert not redis_client.exists(f"rq:job:{delivery_job_id(message_id, ms.host)}")
        assert snapshot(redis_client, other.keys.prefix) == before_other
        assert sync_queue.swarm not in find_swarms(redis_client)
    finally:
        delete_swarm(redis_client, other.swarm)


def test_cli_swarms_and_swarm_delete(cli_obj: CliContext, sync_queue: TaskQueue) -> None:
    sync_queue.submit(chain_plan(2))
    listed = run(cli_obj, "swarms", "--json")
    assert listed.exit_code == 0, listed.output
    mine = [s for s in json.loads(listed.stdout) if s["name"] == sync_queue.swarm]
    assert mine and mine[0]["total"] == 2 and mine[0]["counts"]["available"] == 1
    assert sync_queue.swarm in run(cli_obj, "swarms").stdout

    unconfirmed = run(cli_obj, "swarm", "delete", sync_queue.swarm)
    assert unconfirmed.exit_code == 2 and "--yes" in unconfirmed.stderr
    assert len(unconfirmed.stderr.strip().splitlines()) == 1
    assert sync_queue.progress()["total"] == 2  # nothing deleted without --yes

    deleted = run(cli_obj, "swarm", "delete", sync_queue.swarm, "--yes", "--json")
    assert deleted.exit_code == 0, deleted.output
    assert json.loads(deleted.stdout)["keys"] > 2
    assert snapshot(sync_queue.redis, sync_queue.keys.prefix) == {}

    again = run(cli_obj, "swarm", "delete", sync_queue.swarm, "--yes")
    assert again.exit_code == 1 and "no swarm named" in again.stderr
    bad = run(cli_obj, "swarm", "delete", "no/such", "--yes")
    assert bad.exit_code == 2


def test_prune_deletes_only_finished_swarms_quiet_long_enough(
    cli_obj: CliContext, sync_queue: TaskQueue
) -> None:
    sync_queue.submit(chain_plan(1))
    other = TaskQueue(sync_queue.redis, sync_queue.swarm + "-open", settings=sync_queue.settings)
    try:
        other.submit(chain_plan(2))
        claim = sync_queue.claim_next("alice")
        assert claim is not None
        sync_queue.complete(claim.task.id, "alice", claim.token)
        assert run(cli_obj, "swarm", "prune").exit_code == 2  # no retention configured
        quiet = run(cli_obj, "swarm", "prune", "--older-than", "3600", "--json")
        assert quiet.exit_code == 0 and json.loads(quiet.stdout) == []

        advance_clock(sync_queue, 3601)  # the swarm's own clock: Redis TIME plus offset
        pruned = run(cli_obj, "swarm", "prune", "--older-than", "3600", "--json")
        assert pruned.exit_code == 0, pruned.output
        assert [d["swarm"] for d in json.loads(pruned.stdout)] == [sync_queue.swarm]
        assert snapshot(sync_queue.redis, sync_queue.keys.prefix) == {}
        assert other.progress()["total"] == 2  # not finished: kept
    finally:
        delete_swarm(sync_queue.redis, other.swarm)
