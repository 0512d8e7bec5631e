"""swarmqueue on a loopback Redis Cluster (3 masters + 3 replicas) against one redis-server.

- Lifecycle: the same 6 swarms (each a layered DAG) worked by one agent process per swarm,
  on one private redis-server and on the cluster, where the swarms are chosen so each master
  serves two. Per node: commands processed per second and CPU seconds used during the run.
- Wake-ups: one script publishing to the swarm's channel with ``PUBLISH`` (every node of the
  cluster receives it over the cluster bus) or ``SPUBLISH`` (only the shard's master and
  replica): the publisher's round trip, the subscriber's delay, and CPU on the other nodes.
- Failover pause: one agent working a swarm, its master killed with SIGKILL; the seconds from
  the kill to the first successful transition the agent sent after it.

The cluster is ``tests/redis_cluster.py``'s ``LoopbackCluster`` (the test fixture), so the
repository root must be importable (this module adds it).
"""

from __future__ import annotations

import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import redis

from benchmarks import lifecycle as bench_lifecycle
from benchmarks.procs import Done, GroupRun, run_group
from distributor.settings import Settings
from distributor.tasks.models import Claim
from distributor.tasks.queue import TaskQueue
from distributor.testing import delete_swarm

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.redis_cluster import (  # the repository root is on sys.path now
    LoopbackCluster,
    cluster_client,
    loopback_cluster,
)

SWARMS = 6
Client = Callable[[], redis.Redis]


@contextmanager
def cluster(node_timeout_ms: int = 2000) -> Iterator[LoopbackCluster]:
    with loopback_cluster(node_timeout_ms=node_timeout_ms) as started:
        yield started


def spread_swarms(started: LoopbackCluster, count: int = SWARMS) -> list[str]:
    """``count`` fresh swarm names whose slots are served by the masters in turn."""
    masters = started.masters()
    names: list[str] = []
    while len(names) < count:
        name = uuid.uuid4().hex[:8]
        prefix = f"swarmqueue:{{{name}}}:"
        if started.owner(prefix) is masters[len(names) % len(masters)]:
            names.append(name)
    return names


def _agent(make: Client, swarms: list[str], per_swarm: int, timeout: float) -> Any:
    def work(index: int, ready: Callable[[], None]) -> Done:
        swarm = swarms[index % len(swarms)]
        queue = TaskQueue(make(), swarm, settings=Settings(swarm=swarm))
        queue.ping()
        agent, ids = f"agent-{index}", []
        last = time.monotonic()
        ready()
        deadline = time.monotonic() + timeout
        claim: Claim | None = None
        while time.monotonic() < deadline:
            if claim is None:
                claim = queue.claim_next(agent, wait=bench_lifecycle.WAIT_SECONDS)
                if claim is None:
                    if queue.progress()["completed"] >= per_swarm:
                        break
                    continue
            done = queue.complete(claim.task_id, agent, claim.token, claim_next=True)
            ids.append(f"{swarm}/{claim.task_id}")
            last = time.monotonic()
            claim = done.next
        queue.redis.close()
        return Done(len(ids), ids, last)

    return work


def _node_stats(nodes: list[redis.Redis]) -> list[tuple[int, float]]:
    """Commands processed and CPU seconds (user + sys) of each node so far."""
    stats = []
    for node in nodes:
        info = node.info()
        cpu = float(info["used_cpu_user"]) + float(info["used_cpu_sys"])
        stats.append((int(info["total_commands_processed"]), cpu))
    return stats


def lifecycle_on(
    make: Client, nodes: list[redis.Redis], swarms: list[str], per_swarm: int, width: int,
    timeout: float,
) -> tuple[GroupRun, list[dict[str, float]]]:  # fmt: skip
    """Submit a DAG to each swarm, run one agent per swarm; the run and each node's load."""
    queues = [TaskQueue(make(), swarm, settings=Settings(swarm=swarm)) for swarm in swarms]
    for queue in queues:
        bench_lifecycle.submit_dag(queue, per_swarm, width)
    try:
        before = _node_stats(nodes)
        run = run_group(_agent(make, swarms, per_swarm, timeout), len(swarms), timeout)
        after = _node_stats(nodes)
        if run.count != per_swarm * len(swarms) or len(set(run.ids)) != run.count:
            raise RuntimeError(f"cluster lifecycle miscounted: {run.count} completions")
    finally:
        for queue in queues:
            delete_swarm(queue)
            queue.redis.close()
    load = [
        {"ops_per_second": (a[0] - b[0]) / run.seconds, "cpu_seconds": a[1] - b[1]}
        for b, a in zip(before, after, strict=True)
    ]
    return run, load


def node_clients(started: LoopbackCluster, masters_only: bool = True) -> list[redis.Redis]:
    nodes = started.masters() if masters_only else started.nodes
    return [node.client(decode_responses=True) for node in nodes]


def cluster_maker(started: LoopbackCluster) -> Client:
    return lambda: cast(redis.Redis, cluster_client(started.url))


# -- wake-ups: PUBLISH against SPUBLISH --------------------------------------------------------

_PUBLISH = "return redis.call(ARGV[1], KEYS[1], ARGV[2])"


def publish_cost(started: LoopbackCluster, count: int) -> dict[str, dict[str, float]]:
    """Per command: publisher round trip (µs), delivery delay (µs), CPU of the other nodes."""
    channel = f"swarmqueue:{{{uuid.uuid4().hex[:8]}}}:events"
    owner = started.owner(channel)
    shard = {owner.port} | {n.port for n in started.nodes if _replica_of(started, n, owner)}
    others = [n.client() for n in started.nodes if n.port not in shard]
    results: dict[str, dict[str, float]] = {}
    client = started.client()
    try:
        for command in ("PUBLISH", "SPUBLISH"):
            pubsub = client.pubsub()  # type: ignore[no-untyped-call]
            if command == "PUBLISH":
                pubsub.subscribe(channel)
            else:
                pubsub.ssubscribe(channel)
            _first_message(pubsub, command)  # the confirmation
            delays: list[float] = []
            trips: list[float] = []
            cpu_before = sum(_cpu(o) for o in others)
            bus_before = sum(_bus_received(o) for o in others)
            for _ in range(count):
                sent = time.perf_counter()
                client.eval(_PUBLISH, 1, channel, command, str(sent))
                trips.append(time.perf_counter() - sent)
                message = _first_message(pubsub, command)
                delays.append(time.perf_counter() - float(message["data"]))
            time.sleep(0.5)  # let the bus deliver the last messages to the other nodes
            cpu_other = sum(_cpu(o) for o in others) - cpu_before
            bus_other = sum(_bus_received(o) for o in others) - bus_before
            pubsub.close()
            results[command] = {
                "round_trip_us": statistics.median(trips) * 1e6,
                "delivery_us": statistics.median(delays) * 1e6,
                "other_nodes_cpu_us_per_message": cpu_other / count * 1e6,
                "other_nodes_bus_messages_per_message": bus_other / count,
                "other_nodes": len(others),
            }
    finally:
        client.close()
        for other in others:
            other.close()
    return results


def _first_message(pubsub: Any, command: str) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if command == "SPUBLISH":
            message = pubsub.get_sharded_message(timeout=1.0)
        else:
            message = pubsub.get_message(timeout=1.0)
        if message is not None:
            return cast(dict[str, Any], message)
    raise TimeoutError(f"no {command} message within 10 s")


def _bus_received(client: redis.Redis) -> int:
    """Publish messages this node got over the cluster bus (classic and sharded)."""
    info = client.cluster("INFO")
    kinds = ("publish", "publishshard")
    return sum(int(info.get(f"cluster_stats_messages_{kind}_received", 0)) for kind in kinds)


def _cpu(client: redis.Redis) -> float:
    info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def _replica_of(started: LoopbackCluster, node: Any, master: Any) -> bool:
    with node.client(decode_responses=True) as client:
        info = client.info("replication")
    return bool(info.get("role") == "slave" and int(info.get("master_port", 0)) == master.port)


# -- failover pause ----------------------------------------------------------------------------


def failover_pause(tasks: int = 400) -> dict[str, float]:
    """Kill the master of a swarm an agent works on; seconds to its next transition."""
    with cluster() as started:
        swarm = spread_swarms(started, 1)[0]
        settings = Settings(swarm=swarm, retry_budget_seconds=60)
        queue = TaskQueue(cluster_maker(started)(), swarm, settings=settings)
        bench_lifecycle.submit_dag(queue, tasks, 1)  # a chain: one task ready at a time
        master = started.owner(queue.keys.prefix)
        done_at: list[tuple[float, float]] = []  # (sent, answered) of each completion
        stop = threading.Event()

        def agent() -> None:
            claim = queue.claim_next("agent-0")
            while claim is not None and not stop.is_set():
                time.sleep(0.005)
                sent = time.monotonic()
                claim = queue.complete(claim.task_id, "agent-0", claim.token, claim_next=True).next
                done_at.append((sent, time.monotonic()))

        worker = threading.Thread(target=agent)
        worker.start()
        time.sleep(1.0)
        started.kill(master)
        killed = time.monotonic()
        deadline = killed + 60
        while not [a for s_, a in done_at if s_ > killed] and time.monotonic() < deadline:
            time.sleep(0.01)
        # the first transition sent after the kill: a reply already on its way does not count
        after = [answered for sent, answered in done_at if sent > killed]
        stop.set()
        worker.join(timeout=70)
        if not after:
            raise RuntimeError("no transition within 60 s of the master's kill")
        completed: dict[str, int] = {}
        for _, fields in cast(list[Any], queue.redis.xrange(queue.keys.events)):
            if fields[b"type"] == b"completed":
                task = fields[b"task"].decode()
                completed[task] = completed.get(task, 0) + 1
        queue.redis.close()
        return {
            "pause_seconds": after[0] - killed,
            "node_timeout_ms": 2000.0,
            "completions_seen_by_agent": float(len(done_at)),
            "completed_in_redis": float(len(completed)),
            "completed_twice": float(sum(1 for n in completed.values() if n > 1)),
        }
