"""Memory: Redis bytes per submitted swarmqueue task vs per enqueued RQ job, same graph.

``INFO memory`` ``used_memory`` is read before and after adding the layered graph (every task
but the first layer has one dependency); the difference over the count is the cost of one.
"""

from __future__ import annotations

import redis
from bench_lifecycle import new_swarm, submit_dag
from bench_rq import delete_queue, enqueue_dag, new_queue
from bench_server import used_memory

from distributor.queue import TaskQueue
from distributor.settings import Settings
from distributor.testing import delete_swarm


def swarmqueue_bytes_per_task(url: str, count: int, width: int) -> float:
    swarm = new_swarm()
    queue = TaskQueue.from_url(url, swarm, settings=Settings(swarm=swarm))
    queue.ping()
    try:
        before = used_memory(queue.redis)
        submit_dag(queue, count, width)
        after = used_memory(queue.redis)
        if queue.progress()["total"] != count:
            raise RuntimeError("memory: not every task was submitted")
        return (after - before) / count
    finally:
        delete_swarm(queue)
        queue.redis.close()


def rq_bytes_per_job(url: str, count: int, width: int) -> float:
    client = redis.Redis.from_url(url)
    queue = new_queue(client)
    try:
        client.ping()
        before = used_memory(client)
        enqueue_dag(queue, count, width)
        after = used_memory(client)
        return (after - before) / count
    finally:
        delete_queue(queue)
        client.close()
