"""Hand recorded messages to the delivery workers: one RQ job per message and host.

Each host runs ``swarmqueue worker`` on its own queue ``swarmqueue-deliver-<host>``, because only
a process on that host can reach its tmux servers. The worker listens to that one queue only, so
RQ pops with ``BLMOVE`` into ``<queue>:intermediate``: a popped job is never in no list at all.

A message's first job on a host has an id derived from the message id and the host, enqueued
with ``unique=True``: enqueueing it again (a retried broadcast) is refused by RQ and changes
nothing. A job found gone or abandoned is replaced by a new one, ``<first id>-<n>``, named in the
message's hash by ``lua/msg_redispatch.lua`` (see :meth:`Messenger.redispatch`); old ids are
never reused, so whatever RQ still holds of a dead job (its intermediate list entry, a
started-registry entry) can never be mistaken for the new one. Several jobs for one delivery are
harmless: each takes the delivery's lease first, and only types into recipients not yet final.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import redis
from redis.exceptions import RedisClusterException

from distributor.errors import DeliveryBrokerRequired, RedisUnavailable, SwarmQueueError
from distributor.log import get_logger
from distributor.messaging.job_ids import DELIVER_JOB, delivery_job_id
from distributor.settings import Settings
from distributor.store.calls import CONNECTION_ERRORS

# RQ is imported when a job is enqueued or inspected: a task command announcing to a swarm
# with no agent on any host (nothing to deliver) does not load it (docs/benchmarks.md).
if TYPE_CHECKING:
    from rq import Queue

log = get_logger(__name__)


def enqueue_errors() -> tuple[type[Exception], ...]:
    """What enqueueing a delivery job may fail with (the broker down or refusing commands, no
    broker for a cluster store, RQ refusing the job): the caller logs and counts it, never
    raising it past a committed transition. A function, so ``except enqueue_errors()`` loads
    RQ only when something was raised."""
    from rq.exceptions import InvalidJobOperation, NoSuchJobError

    return (
        redis.RedisError,
        RedisClusterException,
        InvalidJobOperation,
        NoSuchJobError,
        SwarmQueueError,
    )


RESULT_TTL_SECONDS = 3600


class Dispatcher:
    """Enqueues delivery jobs with RQ on the delivery broker (a blocking client of one Redis,
    see :mod:`distributor.messaging.broker`; async callers use a thread). Without a broker
    (``None``: the store is a cluster and none was configured) every call raises
    :class:`DeliveryBrokerRequired`."""

    def __init__(self, redis_client: redis.Redis | None, settings: Settings) -> None:
        self._redis = redis_client
        self.settings = settings
        self._queues: dict[str, Queue] = {}

    @property
    def redis(self) -> redis.Redis:
        """The broker's client."""
        if self._redis is None:
            raise DeliveryBrokerRequired(
                "no delivery broker: the store is a Redis Cluster and"
                " SWARMQUEUE_DELIVERY_REDIS_URL is unset"
            )
        return self._redis

    def _queue(self, host: str) -> Queue:
        if host not in self._queues:
            from distributor.messaging.jobs import delivery_queue

            self._queues[host] = delivery_queue(host, self.redis)
        return self._queues[host]

    def dispatch(self, swarm: str, message_id: str, hosts: list[str]) -> list[str]:
        """Enqueue the first delivery job of ``message_id`` on each host; returns the job ids.

        A job that already exists is left alone (it is the same delivery).
        """
        job_ids = []
        for host in hosts:
            job_id = delivery_job_id(message_id, host)
            self.enqueue(swarm, message_id, host, job_id)
            job_ids.append(job_id)
        return job_ids

    def enqueue(self, swarm: str, message_id: str, host: str, job_id: str) -> None:
        """Enqueue one delivery job as ``job_id`` (nothing if that job exists already);
        ``RedisUnavailable`` when Redis cannot be reached."""
        from rq.exceptions import DuplicateJobError

        try:
            self._queue(host).enqueue_call(
                DELIVER_JOB,
                args=(swarm, message_id, host),
                job_id=job_id,
                timeout=self.settings.delivery_job_timeout_seconds,
                result_ttl=RESULT_TTL_SECONDS,
                failure_ttl=self.settings.message_ttl_seconds,
                unique=True,
                description=f"deliver message {message_id} of swarm {swarm} on {host}",
            )
        except DuplicateJobError:
            log.debug("delivery job exists already", job_id=job_id)
        except CONNECTION_ERRORS as exc:
            raise RedisUnavailable(f"Redis unreachable: {exc}") from exc

    def inspect(self, host: str, job_id: str) -> tuple[Literal["queued", "dead"], str]:
        """Whether job ``job_id`` of ``host``'s queue will still run (``queued``: it waits in the
        queue) or not (``dead``), and what was seen: its RQ status, ``missing``, or ``popped``
        (queued but no longer in the queue: a worker took it with ``BLMOVE`` and never started
        it). A started job is ``dead`` here: the caller only asks when no job holds the
        delivery's lease, so the worker that started it is gone (or its lease ran out)."""
        from rq.exceptions import NoSuchJobError
        from rq.job import JobStatus

        from distributor.messaging.jobs import fetch_job

        queue = self._queue(host)
        try:
            job = fetch_job(job_id, self.redis)
            status = job.get_status(refresh=False)
            if status == JobStatus.QUEUED:
                if self.redis.lpos(queue.key, job_id) is not None:
                    return "queued", "queued"
                return "dead", "popped"
        except NoSuchJobError:
            return "dead", "missing"
        except CONNECTION_ERRORS as exc:
            raise RedisUnavailable(f"Redis unreachable: {exc}") from exc
        return "dead", str(status.value if isinstance(status, JobStatus) else status)
