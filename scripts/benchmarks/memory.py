"""Memory: Redis bytes per submitted swarmqueue task vs per enqueued RQ job, same graph; and
what a run of completions leaves in Redis, stored replies included.

``INFO memory`` ``used_memory`` is read before and after adding the layered graph (every task
but the first layer has one dependency); the difference over the count is the cost of one.

:func:`completion_memory` completes every task of that graph with one agent's loop
(``complete(..., claim_next=True)``, a request id each, as an agent runs it) and reads
``used_memory`` right after the last completion, while every stored reply is still kept, and
again after deleting the stored replies (what their expiry, ``request_ttl_seconds`` later,
does). The difference over the completions is what one stored reply costs the server, its
key, value, expiry and table entries included; ``MEMORY USAGE`` of sampled replies is the key
and value alone.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

import redis

from benchmarks.lifecycle import new_swarm, submit_dag
from benchmarks.rq import delete_queue, enqueue_dag, new_queue
from benchmarks.server import used_memory
from distributor.settings import Settings
from distributor.tasks.queue import TaskQueue
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


@dataclass(frozen=True)
class CompletionMemory:
    """What ``completions`` completions left in Redis (bytes above the empty server)."""

    completions: int
    after_run: int  # right after the last completion: tasks, index, events, stored replies
    without_replies: int  # once the stored replies are gone
    reply_bytes: float  # per stored reply: (after_run - without_replies) / completions
    reply_memory_usage: float  # MEMORY USAGE of one stored reply (median of a sample)
    reply_value_bytes: float  # the stored value's length (median of the same sample)


def completion_memory(url: str, count: int, width: int) -> CompletionMemory:
    """Submit ``count`` tasks, complete them all with one agent, measure (see the module)."""
    swarm = new_swarm()
    settings = Settings(swarm=swarm, single_connection=True)
    queue = TaskQueue.from_url(url, swarm, settings=settings)
    queue.ping()
    try:
        before = used_memory(queue.redis)
        submit_dag(queue, count, width)
        done = 0
        claim = queue.claim_next("agent")
        while claim is not None:
            claim = queue.complete(claim.task_id, "agent", claim.token, claim_next=True).next
            done += 1
        if done != count:
            raise RuntimeError(f"memory: {done} of {count} tasks completed")
        after = used_memory(queue.redis)
        replies = list(queue.redis.scan_iter(match=f"{queue.keys.prefix}req:*", count=1000))
        sample = replies[:: max(1, len(replies) // 500)]
        usage = statistics.median(queue.redis.memory_usage(k) or 0 for k in sample)
        length = statistics.median(queue.redis.strlen(k) for k in sample)
        for start in range(0, len(replies), 1000):
            queue.redis.unlink(*replies[start : start + 1000])
        without = used_memory(queue.redis)
        return CompletionMemory(
            completions=done,
            after_run=after - before,
            without_replies=without - before,
            reply_bytes=(after - without) / done,
            reply_memory_usage=usage,
            reply_value_bytes=length,
        )
    finally:
        delete_swarm(queue)
        queue.redis.close()
