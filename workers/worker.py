"""``swarmqueue worker``: an RQ worker for this host's deliveries and the shared maintenance queue.

Only a process on a host can reach that host's tmux servers, so each host runs one worker on
``swarmqueue-deliver-<host>``. It is a ``SimpleWorker`` (jobs run in the worker process, no fork
per job): a delivery is a few short tmux invocations, and forking would cost more than the job.
"""

from __future__ import annotations

import logging
import os
import uuid

import redis
from rq import Queue, SimpleWorker

from distributor.agents import check_host
from distributor.dispatch import MAINTENANCE_QUEUE, delivery_queue_name
from distributor.errors import ValidationError
from distributor.log import get_logger
from distributor.settings import Settings

log = get_logger(__name__)


class _ToStructlog(logging.Handler):
    """Send RQ's stdlib log records to structlog, so every log line goes to stderr alike."""

    def emit(self, record: logging.LogRecord) -> None:
        get_logger(record.name).log(record.levelno, record.getMessage())


def route_rq_logs(level: str) -> None:
    """Make RQ log through structlog (RQ would otherwise print to stdout)."""
    rq_logger = logging.getLogger("rq")
    if not any(isinstance(h, _ToStructlog) for h in rq_logger.handlers):
        rq_logger.addHandler(_ToStructlog())
    rq_logger.setLevel(level.upper())
    rq_logger.propagate = False


def build_worker(connection: redis.Redis, host: str, *, name: str | None = None) -> SimpleWorker:
    """A worker listening on ``host``'s delivery queue first, then the maintenance queue."""
    try:
        check_host(host)
    except ValueError as exc:
        raise ValidationError(str(exc)) from None
    queues = [
        Queue(delivery_queue_name(host), connection=connection),
        Queue(MAINTENANCE_QUEUE, connection=connection),
    ]
    worker_name = name or f"swarmqueue-{host}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    return SimpleWorker(queues, connection=connection, name=worker_name)


def run_worker(settings: Settings, host: str | None = None, *, burst: bool = False) -> bool:
    """Work until stopped (or, with ``burst``, until the queues are empty); True if any job ran."""
    from distributor.client import redis_from_url

    host = host or settings.host
    route_rq_logs(settings.log_level)
    connection = redis_from_url(settings.redis_url, settings.redis_retries)
    worker = build_worker(connection, host)
    log.info("worker starting", host=host, queues=worker.queue_names(), burst=burst)
    return bool(
        worker.work(burst=burst, with_scheduler=True, logging_level=settings.log_level.upper())
    )
