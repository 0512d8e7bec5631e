"""Hand recorded messages to the delivery workers: one RQ job per message and host.

Each host runs ``swarmqueue worker`` on its own queue ``swarmqueue-deliver-<host>``, because only
a process on that host can reach its tmux servers. The job id is derived from the message id and
the host, and jobs are enqueued with ``unique=True``: enqueueing the same delivery again (a
retried broadcast, :meth:`Messenger.redispatch`) is refused by RQ and changes nothing.
"""

from __future__ import annotations

import hashlib
import re

import redis
from rq import Queue, Retry
from rq.exceptions import DuplicateJobError

from distributor.calls import CONNECTION_ERRORS
from distributor.errors import RedisUnavailable
from distributor.log import get_logger
from distributor.settings import Settings

log = get_logger(__name__)

DELIVERY_QUEUE_PREFIX = "swarmqueue-deliver-"
MAINTENANCE_QUEUE = "swarmqueue-maintenance"
DELIVER_JOB = "workers.delivery.deliver"
RESULT_TTL_SECONDS = 3600


def delivery_queue_name(host: str) -> str:
    """The RQ queue served by the worker of ``host``."""
    return DELIVERY_QUEUE_PREFIX + host


def delivery_job_id(message_id: str, host: str) -> str:
    """The job id of one message's delivery on one host (RQ allows only ``[A-Za-z0-9_-]``)."""
    slug = re.sub(r"[^A-Za-z0-9_-]", "_", host)
    digest = hashlib.sha1(host.encode(), usedforsecurity=False).hexdigest()[:8]
    return f"swarmqueue-deliver-{message_id}-{slug}-{digest}"


class Dispatcher:
    """Enqueues delivery jobs with RQ (a blocking client; async callers use a thread)."""

    def __init__(self, redis_client: redis.Redis, settings: Settings) -> None:
        self.redis = redis_client
        self.settings = settings
        self._queues: dict[str, Queue] = {}

    def _queue(self, host: str) -> Queue:
        if host not in self._queues:
            self._queues[host] = Queue(delivery_queue_name(host), connection=self.redis)
        return self._queues[host]

    def dispatch(self, swarm: str, message_id: str, hosts: list[str]) -> list[str]:
        """Enqueue the delivery of ``message_id`` on each host; returns the job ids.

        A job that already exists is left alone (it is the same delivery).
        """
        intervals = list(self.settings.delivery_retry_intervals)
        retry = Retry(max=len(intervals), interval=intervals) if intervals else None
        job_ids = []
        for host in hosts:
            job_id = delivery_job_id(message_id, host)
            try:
                self._queue(host).enqueue_call(
                    DELIVER_JOB,
                    args=(swarm, message_id, host),
                    job_id=job_id,
                    timeout=self.settings.delivery_job_timeout_seconds,
                    result_ttl=RESULT_TTL_SECONDS,
                    failure_ttl=self.settings.message_ttl_seconds,
                    retry=retry,
                    unique=True,
                    description=f"deliver message {message_id} of swarm {swarm} on {host}",
                )
            except DuplicateJobError:
                log.debug("delivery job exists already", job_id=job_id)
            except CONNECTION_ERRORS as exc:
                raise RedisUnavailable(f"Redis unreachable: {exc}") from exc
            job_ids.append(job_id)
        return job_ids
