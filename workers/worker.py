"""``swarmqueue worker``: an RQ worker for this host's deliveries and the shared maintenance queue.

Only a process on a host can reach that host's tmux servers, so each host runs one worker on
``swarmqueue-deliver-<host>``. It is a ``SimpleWorker`` (jobs run in the worker process, no fork
per job): a delivery is a few short tmux invocations, and forking would cost more than the job.

When Redis goes away under a running worker, the worker and its scheduler process each log one
structured line per retry (``redis unreachable, retrying``) and one when Redis answers again
(``redis reachable again``), and carry on. Plain RQ 3.0 instead repeats the line from two
threads, and its scheduler process dies on the first failed call with two tracebacks on stderr
and is only restarted by the worker's maintenance pass, ten minutes later; meanwhile the
delivery retries RQ schedules are not enqueued.
"""

# mypy: disallow-untyped-calls=False
# (RQ's worker and scheduler methods called below carry no annotations)
from __future__ import annotations

import logging
import os
import sys
import time
import uuid
from typing import Any

import redis
from rq import Queue, SimpleWorker
from rq.scheduler import RQScheduler

from distributor.agents import check_host
from distributor.calls import CONNECTION_ERRORS
from distributor.dispatch import MAINTENANCE_QUEUE, delivery_queue_name
from distributor.errors import RedisUnavailable, ValidationError
from distributor.log import get_logger
from distributor.settings import Settings

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
# Longest wait between two attempts to reach Redis (RQ's is 60 s): deliveries wait for it.
RETRY_MAX_SECONDS = 10.0


class RedisOutage:
    """One process's view of Redis being unreachable: a line per retry, one when it is over."""

    def __init__(self, process: str) -> None:
        self.process = process
        self.retries = 0

    def next_wait(self) -> float:
        """Seconds to wait before the next retry: 1, 2, 4, ... at most ``RETRY_MAX_SECONDS``."""
        return float(min(2**self.retries, RETRY_MAX_SECONDS))

    def retry(self, error: object, wait: float) -> None:
        """Log one failed attempt and the wait before the next."""
        self.retries += 1
        log.warning(
            "redis unreachable, retrying",
            process=self.process,
            retry=self.retries,
            retry_in_seconds=wait,
            error=str(error),
        )

    def over(self) -> None:
        """Redis answered: say so once if it had not before."""
        if self.retries:
            log.info("redis reachable again", process=self.process, retries=self.retries)
            self.retries = 0


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


class OutageTolerantScheduler(RQScheduler):
    """RQ's scheduler (its own process, moving due retries to their queues) that waits out a
    Redis outage instead of ending on the first failed call."""

    def work(self) -> None:
        """RQ's scheduler loop, each round retried while Redis is unreachable."""
        self._install_signal_handlers()
        outage = RedisOutage("scheduler")
        registered = False
        while not self._stop_requested:
            try:
                if not registered:
                    self.register_birth()
                    registered = True
                if self.should_reacquire_locks:
                    self.acquire_locks()
                self.heartbeat()
                self.enqueue_scheduled_jobs()
            except CONNECTION_ERRORS as exc:
                wait = outage.next_wait()
                outage.retry(exc, wait)
                self._sleep(wait)
                continue
            outage.over()
            self._sleep(self.interval)
        try:
            self.stop()
        except CONNECTION_ERRORS as exc:  # its locks expire by themselves within a minute
            log.warning("scheduler stopped, redis unreachable", error=str(exc))

    def _sleep(self, seconds: float) -> None:
        """Sleep, waking early when a stop is requested (SIGTERM from the worker)."""
        deadline = time.monotonic() + seconds
        while not self._stop_requested and time.monotonic() < deadline:
            time.sleep(min(0.1, seconds))


class DeliveryWorker(SimpleWorker):
    """RQ's SimpleWorker, logging Redis outages as :class:`RedisOutage` lines, with a scheduler
    that outlives them, and stopping cleanly while Redis is away."""

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

    def _start_scheduler(
        self,
        burst: bool = False,
        logging_level: str | None = "INFO",
        date_format: str = "%H:%M:%S",
        log_format: str = "%(asctime)s %(message)s",
    ) -> None:
        """RQ's ``_start_scheduler`` with :class:`OutageTolerantScheduler`."""
        self.scheduler = OutageTolerantScheduler(
            self.queues,
            connection=self.connection,
            logging_level=logging_level or "INFO",
            date_format=date_format,
            log_format=log_format,
            serializer=self.serializer,
        )
        self.scheduler.acquire_locks()
        if not self.scheduler.acquired_locks:
            return
        if not burst:
            self.scheduler.start()
            return
        try:
            self.scheduler.register_birth()
            self.scheduler.enqueue_scheduled_jobs()
        finally:
            self.scheduler.release_locks()
            self.scheduler.register_death()

    def teardown(self) -> None:
        """Stop the scheduler and unregister; when Redis is away, say so instead of failing."""
        try:
            super().teardown()
        except CONNECTION_ERRORS as exc:
            log.warning("worker stopped without unregistering, redis unreachable", error=str(exc))


def build_worker(connection: redis.Redis, host: str, *, name: str | None = None) -> DeliveryWorker:
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
    return DeliveryWorker(queues, connection=connection, name=worker_name)


def run_worker(settings: Settings, host: str | None = None, *, burst: bool = False) -> bool:
    """Work until stopped (or, with ``burst``, until the queues are empty); True if any job ran.

    ``RedisUnavailable`` when Redis cannot be reached at the start, or when losing it ended the
    work loop (a Redis timeout, or a failed call outside RQ's retry loop, such as mid-job).
    """
    from distributor.client import redis_from_url

    host = host or settings.host
    route_rq_logs(settings.log_level)
    connection = redis_from_url(settings.redis_url, settings.redis_retries)
    try:
        worker = build_worker(connection, host)  # RQ asks Redis about the client here already
        log.info("worker starting", host=host, queues=worker.queue_names(), burst=burst)
        worked = bool(
            worker.work(burst=burst, with_scheduler=True, logging_level=settings.log_level.upper())
        )
    except CONNECTION_ERRORS as exc:
        raise RedisUnavailable(f"Redis unreachable: {exc}") from exc
    if isinstance(worker.quit_error, CONNECTION_ERRORS):
        raise RedisUnavailable(f"the worker lost Redis: {worker.quit_error}")
    return worked
