"""What the store does besides scripts, on the loopback cluster (``-m cluster``): scripts
loaded again on a master that lost its script cache, swarms found on every master, key-less
commands, and the event stream followed from a master."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest
import redis

from distributor import AsyncTaskQueue, TaskQueue
from distributor.admin.swarms import delete_swarm as admin_delete_swarm
from distributor.admin.swarms import find_swarms, summaries
from distributor.settings import Settings
from distributor.store.calls import Batch, Command, Op
from distributor.testing import delete_swarm
from tests.redis_cluster import LoopbackCluster, async_cluster_client, cluster_client

pytestmark = pytest.mark.cluster
PLAN = {"tasks": [{"id": "a", "title": "A"}, {"id": "b", "title": "B", "dependencies": ["a"]}]}


def one_swarm_per_master(cluster: LoopbackCluster, tag: str) -> list[str]:
    """Swarm names whose slots are served by each master in turn."""
    masters, names, i = cluster.masters(), list[str](), 0
    while len(names) < len(masters):
        name = f"{tag}-{i}"
        if cluster.owner(f"swarmqueue:{{{name}}}:") is masters[len(names)]:
            names.append(name)
        i += 1
    return names


def flush_scripts(cluster: LoopbackCluster) -> None:
    for node in cluster.masters():
        with node.client() as client:
            client.script_flush()


def test_work_goes_on_after_every_master_lost_its_scripts(
    redis_cluster: LoopbackCluster, swarm: str
) -> None:
    queue = TaskQueue(cast(redis.Redis, cluster_client(redis_cluster.url)), swarm)
    try:
        queue.submit(PLAN)
        flush_scripts(redis_cluster)  # as after a restart or a failover to a fresh replica
        claim = queue.claim_next("agent-a")
        assert claim is not None and claim.task_id == "a"
        flush_scripts(redis_cluster)
        done = queue.complete("a", "agent-a", claim.token, claim_next=True)
        assert done.next is not None and done.next.task_id == "b"

        async def from_asyncio() -> str | None:
            client = async_cluster_client(redis_cluster.url)
            async with AsyncTaskQueue(cast(redis.asyncio.Redis, client), swarm) as aq:
                flush_scripts(redis_cluster)
                events = await aq.events()
                assert events and events[-1].type == "claimed"
                finished = await aq.complete("b", "agent-a", done.next.token)  # type: ignore[union-attr]
                return finished.task.id

        assert asyncio.run(from_asyncio()) == "b"
        assert queue.progress()["completed"] == 2
        queue.ping()  # key-less: any node answers
    finally:
        delete_swarm(queue)
        queue.redis.close()


def test_swarms_on_every_master_are_found_summed_and_deleted(
    redis_cluster: LoopbackCluster,
) -> None:
    client = cast(redis.Redis, cluster_client(redis_cluster.url))
    names = one_swarm_per_master(redis_cluster, f"sq-admin-{id(client) % 10_000}")
    queues = [TaskQueue(client, name, settings=Settings(swarm=name)) for name in names]
    try:
        for queue in queues:
            queue.submit(PLAN)
        assert set(names) <= set(find_swarms(client))  # SCAN walked every master
        by_name = {s.name: s for s in summaries(client)}
        assert all(by_name[name].counts["available"] == 1 for name in names)
        for name in names:
            assert admin_delete_swarm(client, name).keys > 0
        assert not set(names) & set(find_swarms(client))
    finally:
        for queue in queues:
            delete_swarm(queue)
        client.close()


def test_time_in_a_batch_comes_from_the_swarm_master(
    redis_cluster: LoopbackCluster, swarm: str
) -> None:
    """Reads compare task times with Redis' TIME: the clock the swarm's scripts read."""
    queue = TaskQueue(cast(redis.Redis, cluster_client(redis_cluster.url)), swarm)
    masters = redis_cluster.masters()
    owner = redis_cluster.owner(queue.keys.prefix)

    def now() -> Op[list[Any]]:
        reply: list[Any] = yield Batch((Command(("TIME",)), Command(("GET", queue.keys.clock))))
        return reply

    def time_calls() -> dict[int, int]:
        calls = {}
        for node in masters:
            with node.client(decode_responses=True) as client:
                stats = client.info("commandstats").get("cmdstat_time", {"calls": 0})
                calls[node.port] = int(stats["calls"])
        return calls

    try:
        before = time_calls()
        for _ in range(5):
            time_reply, _clock = queue._executor.run(now())
            assert time_reply
        after = time_calls()
        assert {port: after[port] - before[port] for port in after} == {
            node.port: 5 if node is owner else 0 for node in masters
        }

        async def from_asyncio() -> None:
            client = async_cluster_client(redis_cluster.url)
            async with AsyncTaskQueue(cast(redis.asyncio.Redis, client), swarm) as aq:
                for _ in range(5):
                    await aq._executor.run(now())

        asyncio.run(from_asyncio())
        assert time_calls()[owner.port] - after[owner.port] == 5
    finally:
        queue.redis.close()
