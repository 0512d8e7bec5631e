"""``swarmqueue worker``: an RQ worker for this host's deliveries, with the keeper thread.

Only a process on a host can reach that host's tmux servers, so each host runs one worker on
``swarmqueue-deliver-<host>``, and only that queue: with one queue RQ pops with ``BLMOVE`` into
the queue's intermediate list, so a job is never popped without a trace. It is a
``SimpleWorker`` (jobs run in the worker process, no fork per job): a delivery is a few short
tmux invocations, and forking would cost more than the job. It starts no other process either
(no RQ scheduler: retries are dispatched by the sweep), so killing the worker leaves no process
behind but a tmux invocation finishing.

The keeper thread (``workers/sweep.py``) renews the leases of the running delivery, sweeps this
host's outboxes (replacing lost or abandoned jobs, dispatching retries) and prunes agents.

When Redis goes away under a running worker, the worker and its keeper each log one structured
line per retry (``redis unreachable, retrying``) and one when Redis answers again (``redis
reachable again``), and carry on. Plain RQ 3.0 instead repeats the line from two threads.
"""

# mypy: disallow-untyped-calls=False
# (RQ's worker methods called below carry no annotations)
from __future__ import annotations

import logging
import os
import sys
import time
import uuid
from typing import Any

import redis
from rq import SimpleWorker

from distributor.errors import RedisUnavailable, ValidationError
from distributor.log import get_logger
from distributor.messaging.jobs import JOB_SERIALIZER, DeliveryJob, delivery_queue
from distributor.messaging.names import check_host
from distributor.settings import Settings
from distributor.store.calls import CONNECTION_ERRORS
from workers.outage import RETRY_MAX_SECONDS, RedisOutage
from workers.sweep import Keeper, Sweeper

log = get_logger(__name__)

# What RQ 3.0's worker loop logs before each retry (rq/worker/base.py); replaced by RedisOutage.
RQ_RETRY_MESSAGE = "Worker %s: could not connect to Redis instance: %s retrying in %d seconds..."
# What RQ logs when a job raised: the traceback inside the message (the job record keeps it).
RQ_JOB_ERROR_MESSAGE = "Worker %s: job %s: exception raised while executing (%s)\n%s"
# What RQ logs when an error ends its work loop (it then returns as if it had finished).
RQ_QUIT_MESSAGES = (
    "Worker %s: Redis connection timeout, quitting...",
    "Worker %s: found an unhandled exception, quitting...",
)
# RQ's worker registration lives this long after its last heartbeat (+60 s), and an idle worker
# blocks on its queue this long minus 15 s; deliveries rely on leases, not on this.
WORKER_TTL_SECONDS = 30


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


class _WorkerLog(logging.LoggerAdapter[logging.Logger]):
    """RQ's worker logger, with its retry line replaced by :class:`RedisOutage`'s, a failed job
    logged in one line without its traceback, and the error that ended the work loop
    remembered (RQ logs it, then returns as if it had finished)."""

    def __init__(self, logger: logging.Logger, outage: RedisOutage) -> None:
        super().__init__(logger, {})
        self.outage = outage
        self.quit_error: BaseException | None = None

    @property
    def level(self) -> int:
        return int(self.logger.level)

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        if msg == RQ_RETRY_MESSAGE and len(args) == 3:
            self.outage.retry(args[1], args[2])
            return
        if msg == RQ_JOB_ERROR_MESSAGE and len(args) == 4:
            lines = [line for line in str(args[3]).splitlines() if line.strip()]
            error = lines[-1].strip() if lines else "?"
            log.error("job failed", job_id=args[1], function=args[2], error=error)
            return
        if msg in RQ_QUIT_MESSAGES:
            self.quit_error = sys.exc_info()[1]
        super().log(level, msg, *args, **kwargs)


class DeliveryWorker(SimpleWorker):
    """RQ's SimpleWorker, logging Redis outages as :class:`RedisOutage` lines and stopping
    cleanly while Redis is away."""

    max_connection_wait_time = RETRY_MAX_SECONDS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.outage = RedisOutage("worker")
        self._rq_log = _WorkerLog(logging.getLogger("rq.worker"), self.outage)
        self.log = self._rq_log  # type: ignore[assignment]  # RQ only calls its log methods

    @property
    def quit_error(self) -> BaseException | None:
        """The error that ended the work loop early, if one did."""
        return self._rq_log.quit_error

    def heartbeat(self, timeout: int | None = None, pipeline: Any = None) -> None:
        super().heartbeat(timeout, pipeline)
        if pipeline is None:  # it reached Redis: the first call of every retry round
            self.outage.over()

    def _pubsub_exception_handler(self, exc: Exception, pubsub: Any, pubsub_thread: Any) -> None:
        """Wait and retry quietly; the work loop already logs the outage once per retry."""
        if isinstance(exc, redis.ConnectionError):
            time.sleep(2.0)
            return
        super()._pubsub_exception_handler(exc, pubsub, pubsub_thread)

    def teardown(self) -> None:
        """Unregister; when Redis is away, say so instead of failing."""
        try:
            super().teardown()
        except CONNECTION_ERRORS as exc:
            log.warning("worker stopped without unregistering, redis unreachable", error=str(exc))


def build_worker(connection: redis.Redis, host: str, *, name: str | None = None) -> DeliveryWorker:
    """A worker listening on ``host``'s delivery queue, and nothing else."""
    try:
        check_host(host)
    except ValueError as exc:
        raise ValidationError(str(exc)) from None
    queue = delivery_queue(host, connection)
    worker_name = name or f"swarmqueue-{host}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    return DeliveryWorker(
        [queue],
        connection=connection,
        name=worker_name,
        worker_ttl=WORKER_TTL_SECONDS,
        job_class=DeliveryJob,  # runs the delivery and nothing else
        serializer=JOB_SERIALIZER,  # JSON: nothing in the broker is unpickled
    )


def run_worker(settings: Settings, host: str | None = None, *, burst: bool = False) -> bool:
    """Work until stopped (or, with ``burst``, until the queue is empty); True if any job ran.

    The keeper thread runs beside the work loop; with ``burst``, one sweep runs first instead
    (jobs it replaces are then run). ``RedisUnavailable`` when Redis cannot be reached at the
    start, or when losing it ended the work loop (a Redis timeout, or a failed call outside
    RQ's retry loop, such as mid-job); ``DeliveryBrokerRequired`` when the store is a cluster
    and ``settings.delivery_redis_url`` is unset.
    """
    from distributor.messaging.broker import broker_client
    from distributor.store.client import redis_from_url

    host = host or settings.host
    route_rq_logs(settings.log_level)
    # RQ works on the delivery broker (the store itself unless it is a cluster or another
    # broker is set); the keeper's sweep reads the outboxes in the store
    store = redis_from_url(settings.redis_url, settings.redis_retries)
    connection = broker_client(settings)
    sweeper = Sweeper(store, host, settings, broker=broker_client(settings, store))
    keeper = None
    try:
        worker = build_worker(connection, host)  # RQ asks Redis about the client here already
        log.info("worker starting", host=host, queues=worker.queue_names(), burst=burst)
        if burst:
            sweeper.sweep()
        else:
            keeper = Keeper(sweeper)
            keeper.start()
        worked = bool(worker.work(burst=burst, logging_level=settings.log_level.upper()))
    except CONNECTION_ERRORS as exc:
        raise RedisUnavailable(f"Redis unreachable: {exc}") from exc
    finally:
        if keeper is not None:
            keeper.stop()
        sweeper.client.close()
    if isinstance(worker.quit_error, CONNECTION_ERRORS):
        raise RedisUnavailable(f"the worker lost Redis: {worker.quit_error}")
    return worked
