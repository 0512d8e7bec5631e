"""The RQ jobs of deliveries: how they are stored, and the one function a worker will run.

RQ stores a job's function name, arguments, metadata and result with pickle by default, and a
worker unpickles them: whoever can write the broker's keys (every agent that broadcasts can) could
then run any code on every host's worker, and calling a job's function by its stored name is the
same hole with any serializer. Delivery jobs are therefore JSON (:data:`JOB_SERIALIZER`: strings
in, a dict out), and :class:`DeliveryJob` runs :data:`DELIVER_JOB` and nothing else: a job naming
any other function fails with :class:`~distributor.errors.ForeignJobRefused` without importing
it, and callbacks stored in a job are never imported or called (deliveries set none). Every
place that reads or writes delivery jobs goes through :func:`delivery_queue` and
:func:`fetch_job`, so nothing in swarmqueue unpickles what is in the broker.
"""

from __future__ import annotations

from typing import Any

import redis
from rq import Queue
from rq.job import Job
from rq.serializers import JSONSerializer

from distributor.errors import ForeignJobRefused
from distributor.log import get_logger
from distributor.messaging.job_ids import DELIVER_JOB, delivery_queue_name

log = get_logger(__name__)

JOB_SERIALIZER = JSONSerializer


class DeliveryJob(Job):
    """An RQ job that runs :data:`DELIVER_JOB` only and never a stored callback."""

    @property
    def func(self) -> Any:
        name, instance = self.func_name, self.instance
        if name != DELIVER_JOB or instance is not None:
            log.warning("foreign job refused", job_id=self.id, function=str(name)[:200])
            raise ForeignJobRefused(self.id, str(name))
        return super().func

    @property
    def success_callback(self) -> None:
        return None

    @property
    def failure_callback(self) -> None:
        return None

    @property
    def stopped_callback(self) -> None:
        return None


def delivery_queue(host: str, connection: redis.Redis) -> Queue:
    """``host``'s delivery queue, reading and writing :class:`DeliveryJob` as JSON."""
    return Queue(
        delivery_queue_name(host),
        connection=connection,
        job_class=DeliveryJob,
        serializer=JOB_SERIALIZER,
    )


def fetch_job(job_id: str, connection: redis.Redis) -> DeliveryJob:
    """The delivery job ``job_id`` (``NoSuchJobError`` when RQ has none)."""
    job = DeliveryJob.fetch(job_id, connection=connection, serializer=JOB_SERIALIZER)
    assert isinstance(job, DeliveryJob)
    return job
