"""Remove what the demo wrote to a shared Redis: its swarm's keys and its host's RQ keys.

The demo's swarm and host names are unique to one run, so matching on them touches nothing
else. A private redis-server or fakeredis server is simply stopped instead.
"""

from __future__ import annotations

from distributor.messaging.job_ids import delivery_queue_name
from distributor.store.connect import SyncRedis
from distributor.store.keys import host_swarms_key
from distributor.tasks.queue import TaskQueue
from distributor.testing import delete_swarm


def delete_rq_keys(client: SyncRedis, host: str) -> int:
    """Delete the RQ keys of ``host``'s delivery queue, its jobs and its worker registrations,
    and the host's set of swarms."""
    deleted = 0
    for key in list(client.scan_iter(match=f"rq:*{host}*", count=1000)):
        deleted += int(client.delete(key))
    client.srem("rq:queues", f"rq:queue:{delivery_queue_name(host)}")
    for member in client.smembers("rq:workers"):
        if host in (member.decode() if isinstance(member, bytes) else str(member)):
            client.srem("rq:workers", member)
    return deleted + int(client.delete(host_swarms_key(host)))


def delete_demo_keys(queue: TaskQueue, host: str) -> int:
    """Every key of the demo's swarm and of its host's RQ queue; returns how many."""
    return delete_swarm(queue) + delete_rq_keys(queue.redis, host)
