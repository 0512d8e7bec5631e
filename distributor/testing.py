"""Helpers for testing code that uses swarmqueue (and for swarmqueue's own tests).

``fake_queue()`` gives a :class:`TaskQueue` on an in-process fakeredis server;
``advance_clock()`` moves a swarm's clock forward, so lease expiry and retry backoff can be
tested without sleeping. Scripts add the swarm's ``clock`` key to Redis ``TIME``; nothing but
tests and simulations should set it.
"""

from __future__ import annotations

import fakeredis

from distributor.admin.swarms import delete_keys, forget_hosts
from distributor.settings import Settings
from distributor.tasks.queue import TaskQueue


def fake_queue(swarm: str = "test", settings: Settings | None = None) -> TaskQueue:
    """A ``TaskQueue`` on a private in-memory fakeredis server (with Lua)."""
    return TaskQueue(fakeredis.FakeRedis(server=fakeredis.FakeServer()), swarm, settings=settings)


def advance_clock(queue: TaskQueue, seconds: float) -> None:
    """Make the swarm's scripts see a time ``seconds`` later than before."""
    queue.redis.incrby(queue.keys.clock, round(seconds * 1000))


def delete_swarm(queue: TaskQueue) -> int:
    """Delete every key of the queue's swarm (and only those, and its name from the hosts'
    sets of swarms); returns how many keys."""
    forget_hosts(queue.redis, queue.keys.swarm, queue.keys.namespace)
    return delete_keys(queue.redis, queue.keys.prefix)
