"""The delivery job: type one message into the panes of one host, exactly once, and record every
outcome.

RQ runs :func:`deliver` on the host's queue (see :mod:`distributor.messaging.dispatch`), on the
delivery broker (:mod:`distributor.messaging.broker`); the job works on the swarm's store, which
is RQ's own connection when the broker is the store, else a client of the worker's
``SWARMQUEUE_REDIS_URL`` (a Redis Cluster, or another Redis), kept for the process. The job
first takes the delivery's lease (``lua/msg_begin.lua``): one job at a time types a given message on
a host, whichever of its jobs (the first, or a replacement the sweep enqueued) runs first; the
worker's keeper thread renews the lease while the job runs (``workers/sweep.py``), so a killed
worker's lease runs out by Redis time and its delivery moves on. For each tmux server (socket) of
the host, one ``list-panes -a`` tells which panes exist, which program runs in each one's foreground
and which delivery attempts typed into each (the stamps, :mod:`workers.tmux`). Missing panes are
recorded ``failed / pane_not_found`` at once, panes whose program must not get keystrokes ``failed /
shell_prompt`` or ``not_an_agent`` (:mod:`workers.programs`); the rest get the message, or a shell
the inert comment line, with one tmux invocation per batch of panes.

No pane gets a message twice. Right before each batch is typed its recipients are recorded
``typing`` with the attempt's id (``lua/msg_typing.lua``, which also checks the lease), and right
after, ``delivered`` (or why not). A job that finds ``typing`` knows an attempt stopped in
between (its worker was killed) and looks at the pane before typing::

    attempt a1  records %1 %2 typing, types them (stamp a1 on each), is killed before recording
    attempt b7  finds %1 %2 typing a1: %1 carries stamp a1 -> delivered, verified
                %2 carries no stamp a1 (the chain never reached it) and the pane's history
                shows no #tag -> typed now, recorded delivered, retyped

The policy, in order: the attempt's stamp on the pane, or the message's ``#tag``
(:func:`~distributor.messaging.messages.message_tag`) in the pane's last ``HISTORY_LINES`` lines,
means it arrived (``verified``). Neither means it did not: tmux runs a chain it received in one go,
so the stamp is on every pane the paste and Enter reached; the message is typed again, through the
same checks as any typing (``retyped``). A tmux without pane options (before 3.0) keeps no stamps,
and agent programs redraw their screen, so there a missing ``#tag`` proves nothing: the recipient is
recorded ``failed / unknown`` (final; the inbox keeps the message) rather than risk a duplicate. A
closed pane is ``failed / pane_not_found``, the detail saying the message may have arrived. A tmux
timeout while typing may also have typed: the recipient stays ``typing`` and the retry checks the
same way.

Refusals (a shell or another program in front) are final, as they would be again. A pane whose
program changed between the listing and the typing gets nothing and ``foreground_changed``,
which is transient: the retry lists the panes again and decides anew. Missing tmux, a missing
server and dead panes are recorded reasons, never a crash. Transient failures are retried by the
workers' sweep after ``SWARMQUEUE_DELIVERY_RETRY_INTERVALS`` (the job tells the outbox when,
``lua/msg_finish.lua``); the last attempt records them final.

A message sent with ``requires_ack`` is typed again, by a later job like this one, when the
sweep's :meth:`~distributor.messaging.messages.Messenger.remind` finds a recipient's
acknowledgement overdue: the recipient is ``pending`` again and goes through the same checks.
The line is the same each time (same ``#tag``), so an interrupted re-delivery whose stamp is
missing is taken as arrived when the tag is in the pane's history from an earlier delivery:
a reminder may be missed, never typed twice, and the next one (or the give-up) still comes.

``SWARMQUEUE_TEST_DELIVERY_PAUSE`` (tests only; unset, it does nothing) makes the job stop and wait
to be killed at one point: ``start`` (taken from the queue, before the lease), ``typing`` (a batch
recorded ``typing``, nothing typed) or ``typed`` (a batch typed, its outcome not recorded).
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import redis
from pydantic import BaseModel
from rq import get_current_job

from distributor.errors import (
    MessageNotFound,
    PaneNotFound,
    PaneProgramChanged,
    TmuxError,
    TmuxServerNotFound,
)
from distributor.log import get_logger
from distributor.messaging.broker import separate_broker
from distributor.messaging.messages import (
    Delivery,
    DeliveryStatus,
    Message,
    MessageOps,
    message_tag,
)
from distributor.messaging.sanitize import shell_comment
from distributor.settings import Settings
from distributor.store.connect import SyncRedis, redis_from_url, url_kind
from distributor.store.executor import SyncExecutor
from distributor.store.keys import SwarmKeys
from workers.programs import Refusal, Typing, decide
from workers.tmux import Tmux

log = get_logger(__name__)

PERMANENT_REASONS = frozenset({"pane_not_found", "server_not_found"})  # of tmux errors
# tmux errors after which the pane was certainly not typed into; others may have typed
NOT_TYPED = (PaneProgramChanged, PaneNotFound, TmuxServerNotFound)
HISTORY_LINES = 2000  # of a pane's history searched for an interrupted attempt's #tag
MIN_RETRY_SECONDS = 1.0  # lets RQ finish the job before the sweep may replace it
PAUSE_ENV = "SWARMQUEUE_TEST_DELIVERY_PAUSE"
PAUSE_POINTS = ("start", "typing", "typed")


class DeliveryReport(BaseModel):
    """What one run of the job did on its host."""

    message_id: str
    host: str
    delivered: int = 0
    failed: int = 0
    retrying: int = 0
    skipped: int = 0
    verified: int = 0
    retyped: int = 0
    busy: str | None = None  # another job held the lease: its holder (this run did nothing)
    lease_lost: bool = False  # the lease ran out mid-run: the rest is left to its new holder
    retry_in_seconds: float | None = None


class LeaseBoard:
    """The delivery leases the jobs of this process hold, for the keeper thread to renew."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[tuple[str, str, str], str] = {}

    def hold(self, swarm: str, message_id: str, host: str, holder: str) -> None:
        with self._lock:
            self._held[(swarm, message_id, host)] = holder

    def drop(self, swarm: str, message_id: str, host: str) -> None:
        with self._lock:
            self._held.pop((swarm, message_id, host), None)

    def held(self) -> list[tuple[str, str, str, str]]:
        """``(swarm, message id, host, holder)`` of every lease held now."""
        with self._lock:
            return [(*key, holder) for key, holder in self._held.items()]


LEASES = LeaseBoard()


def deliver(swarm: str, message_id: str, host: str) -> dict[str, Any]:
    """RQ entry point: deliver, record, and leave retries to the sweep (never raises for them)."""
    job = get_current_job()
    if job is None:
        raise RuntimeError("deliver() runs inside an RQ job; call deliver_message() directly")
    keys = SwarmKeys(swarm)  # an invalid name fails the job here, before anything is written
    _pause("start")
    settings = Settings()
    store = store_client(settings, job.connection)
    # the sweep of this host finds the swarm's outbox through this set (as agents register)
    store.sadd(keys.host_swarms(host), keys.swarm)
    report = deliver_message(
        store,
        swarm,
        message_id,
        host,
        settings=settings,
        worker=job.worker_name or "rq",
    )
    return report.model_dump()


_STORES: dict[str, SyncRedis] = {}


def store_client(settings: Settings, broker: redis.Redis) -> SyncRedis:
    """The swarm's store for a job that ``broker`` (its RQ connection) handed out: the broker
    itself when the store is the broker, else a client of ``settings.redis_url`` (the worker's
    store URL; one per process, kept for the next jobs)."""
    if not separate_broker(settings) and url_kind(settings.redis_url) != "cluster":
        return broker
    if settings.redis_url not in _STORES:
        _STORES[settings.redis_url] = redis_from_url(settings.redis_url, settings.redis_retries)
    return _STORES[settings.redis_url]


def deliver_message(
    client: SyncRedis,
    swarm: str,
    message_id: str,
    host: str,
    *,
    settings: Settings,
    final: bool | None = None,
    worker: str = "local",
) -> DeliveryReport:
    """Deliver ``message_id`` to its recipients on ``host``.

    ``final``: True records transient failures final (no retry follows), False never does;
    None (the job) decides by the recipient's attempts (one plus the retry intervals).
    """
    ops = MessageOps(SwarmKeys(swarm), settings)
    executor = SyncExecutor(client)
    attempt = secrets.token_hex(4)
    holder = f"{worker} {attempt}"
    report = DeliveryReport(message_id=message_id, host=host)
    status, other = executor.run(ops.begin(message_id, host, holder))
    if status != "ok":
        report.busy = other or None
        log.info("delivery not run", swarm=swarm, message_id=message_id, host=host, why=status,
                 holder=other or None)  # fmt: skip
        return report
    LEASES.hold(swarm, message_id, host, holder)
    try:
        run = _Run(executor, ops, message_id, host, holder, attempt, settings, final, report)
        run.deliver()
    finally:
        LEASES.drop(swarm, message_id, host)
    if not report.lease_lost:
        report.retry_in_seconds = run.retry_in()
        executor.run(ops.finish(message_id, host, holder, report.retry_in_seconds))
    log.info("delivery done", swarm=swarm, attempt=attempt, **report.model_dump())
    return report


@dataclass
class _Run:
    """One attempt at one message on one host (the state :func:`deliver_message` carries)."""

    executor: SyncExecutor
    ops: MessageOps
    message_id: str
    host: str
    holder: str
    attempt: str
    settings: Settings
    final: bool | None
    report: DeliveryReport
    attempts: dict[str, int] = field(default_factory=dict)  # recorded before this run
    retrying_attempts: list[int] = field(default_factory=list)

    def deliver(self) -> None:
        try:
            message = self.executor.run(self.ops.get(self.message_id))
        except MessageNotFound:
            log.warning("message expired before delivery", message_id=self.message_id)
            return
        todo: list[Delivery] = []
        for d in message.deliveries:
            if d.host != self.host:
                continue
            if d.done:  # delivered, failed for good, acknowledged or given up
                self.report.skipped += 1
            else:
                todo.append(d)
                self.attempts[d.agent_id] = d.attempts
        by_socket: dict[str | None, list[Delivery]] = {}
        for d in todo:
            by_socket.setdefault(d.socket, []).append(d)
        for socket, group in by_socket.items():
            if not self._serve(message, Tmux(socket, timeout=self.settings.tmux_timeout_seconds),
                               group):  # fmt: skip
                return  # the lease is lost: its new holder does the rest

    def _serve(self, message: Message, tmux: Tmux, group: list[Delivery]) -> bool:
        """The recipients of one tmux server; False when the lease was lost."""
        try:
            rows = {row.pane: row for row in tmux.panes()}
        except TmuxError as exc:
            self.record({d.agent_id: self._unreached(d, exc) for d in group})
            return True
        stamps = tmux.stamps_supported()
        tag = message_tag(message.id)
        histories: dict[str, str | TmuxError] = {}
        settled: dict[str, dict[str, Any]] = {}
        retype: set[str] = set()
        typing: dict[Typing, list[Delivery]] = {how: [] for how in Typing}
        for d in group:
            row = rows.get(d.pane)
            if row is None:
                detail = f"pane {d.pane} does not exist on {tmux.where}"
                if d.status is DeliveryStatus.TYPING:
                    detail += "; an interrupted attempt may have typed the message before"
                settled[d.agent_id] = _refused(Refusal("pane_not_found", detail))
                continue
            if d.status is DeliveryStatus.TYPING:
                found = self._check(tmux, d, row.stamps, tag, histories)
                if isinstance(found, dict):
                    settled[d.agent_id] = found
                    continue
                if not stamps:
                    settled[d.agent_id] = _unknown(d, tag)
                    continue
                retype.add(d.agent_id)
            how = decide(row.command, self.settings)
            if isinstance(how, Refusal):
                settled[d.agent_id] = _refused(how)
            else:
                typing[how].append(d)
        self.record(settled)
        line = message.line()
        texts = {Typing.PASTE: line, Typing.COMMENT: shell_comment(line)}
        for how, present in typing.items():
            keep_newlines = how is Typing.PASTE and self.settings.message_keep_newlines
            for batch in _batches(present, self.settings.delivery_batch_panes):
                ids = [d.agent_id for d in batch]
                if not self.executor.run(
                    self.ops.typing(self.message_id, self.host, self.holder, self.attempt, ids)
                ):
                    self.report.lease_lost = True
                    log.warning("delivery lease lost; typing nothing more",
                                message_id=self.message_id, host=self.host)  # fmt: skip
                    return False
                _pause("typing")
                targets = {d.pane: rows[d.pane].command for d in batch}  # agents may share one
                results = tmux.paste(
                    texts[how],
                    targets,
                    keep_newlines=keep_newlines,
                    stamp=self.attempt if stamps else None,
                )
                _pause("typed")
                self.record(
                    {
                        d.agent_id: self._typed(d, how, results[d.pane], d.agent_id in retype)
                        for d in batch
                    }
                )
        return True

    def _check(
        self,
        tmux: Tmux,
        d: Delivery,
        pane_stamps: tuple[str, ...],
        tag: str,
        histories: dict[str, str | TmuxError],
    ) -> dict[str, Any] | None:
        """An interrupted attempt's outcome if the pane shows it typed (or cannot be read)."""
        if d.attempt and d.attempt in pane_stamps:
            detail = f"attempt {d.attempt} was interrupted; its stamp is on pane {d.pane}"
            return {"status": "delivered", "as": "paste", "verified": True, "detail": detail}
        if d.pane not in histories:
            try:
                histories[d.pane] = tmux.history(d.pane, HISTORY_LINES)
            except TmuxError as exc:
                histories[d.pane] = exc
        history = histories[d.pane]
        if isinstance(history, TmuxError):
            return self._unreached(d, history)
        if tag in history:
            detail = f"attempt {d.attempt} was interrupted; {tag} is in pane {d.pane}'s history"
            return {"status": "delivered", "as": "paste", "verified": True, "detail": detail}
        return None

    def _final(self, d: Delivery) -> bool:
        if self.final is not None:
            return self.final
        return d.attempts + 1 >= 1 + len(self.settings.delivery_retry_intervals)

    def _unreached(self, d: Delivery, exc: TmuxError) -> dict[str, Any]:
        """tmux failed before typing: a failure, or (for an unchecked ``typing``) still
        ``typing`` until the last attempt, then ``unknown``."""
        if d.status is DeliveryStatus.TYPING and exc.kind not in PERMANENT_REASONS:
            if self._final(d):
                return _unknown(d, None, f"the pane could not be checked: {exc.detail[:300]}")
            return {"status": "typing", "reason": exc.kind, "detail": exc.detail[:500]}
        return _failure(exc, self._final(d))

    def _typed(
        self, d: Delivery, how: Typing, error: TmuxError | None, retyped: bool
    ) -> dict[str, Any]:
        """The outcome of typing into ``d``'s pane."""
        if error is None:
            out: dict[str, Any] = {"status": "delivered", "as": how.value}
            if retyped:
                out["retyped"] = True
                out["detail"] = (
                    f"attempt {d.attempt} was interrupted before typing into pane {d.pane} "
                    "(no stamp, no tag): typed now"
                )
            return out
        if isinstance(error, NOT_TYPED):
            return _failure(error, self._final(d))
        # a timeout or another error may have come after the paste: check before typing again
        if self._final(d):
            return _unknown(d, None, f"tmux failed while typing: {error.detail[:300]}")
        return {"status": "typing", "reason": error.kind, "detail": error.detail[:500]}

    def record(self, outcomes: dict[str, dict[str, Any]]) -> None:
        if not outcomes:
            return
        self.executor.run(self.ops.record(self.message_id, outcomes, self.attempt))
        for agent_id, o in outcomes.items():
            if o["status"] == "delivered":
                self.report.delivered += 1
                self.report.verified += bool(o.get("verified"))
                self.report.retyped += bool(o.get("retyped"))
            elif o["status"] == "failed" and o["final"]:
                self.report.failed += 1
            else:
                self.report.retrying += 1
                self.retrying_attempts.append(self.attempts.get(agent_id, 0))

    def retry_in(self) -> float | None:
        """Seconds until the sweep dispatches the transient failures again (the interval after
        the fewest attempts any of them had), None if there are none."""
        if not self.report.retrying:
            return None
        intervals = self.settings.delivery_retry_intervals or [0]
        index = min(min(self.retrying_attempts, default=0), len(intervals) - 1)
        return max(float(intervals[index]), MIN_RETRY_SECONDS)


def _pause(point: str) -> None:
    """The test hook (see the module docstring): wait to be killed at ``point``."""
    if os.environ.get(PAUSE_ENV) != point:
        return
    log.warning("delivery paused by a test hook", point=point, env=PAUSE_ENV)
    while True:
        time.sleep(3600)


def _refused(refusal: Refusal) -> dict[str, Any]:
    """A final failure: retrying would find the same pane, or the same program in it."""
    return {"status": "failed", "reason": refusal.reason, "detail": refusal.detail, "final": True}


def _unknown(d: Delivery, tag: str | None, why: str = "") -> dict[str, Any]:
    """Final: an interrupted attempt may or may not have typed, and the pane cannot tell."""
    if not why:
        why = (
            f"this tmux keeps no stamps (before 3.0) and {tag} is not in pane {d.pane}'s last "
            f"{HISTORY_LINES} lines"
        )
    detail = (
        f"attempt {d.attempt} was interrupted while typing; {why}; the message may or may not "
        "have arrived, so it is not typed again (it is in the inbox)"
    )
    return {"status": "failed", "reason": "unknown", "detail": detail, "final": True}


def _failure(exc: TmuxError, final: bool) -> dict[str, Any]:
    return {
        "status": "failed",
        "reason": exc.kind,
        "detail": exc.detail[:500],
        "final": final or exc.kind in PERMANENT_REASONS,
    }


def _batches(items: list[Delivery], size: int) -> Iterator[list[Delivery]]:
    """Consecutive batches of at most ``size`` recipients, never splitting one pane's agents."""
    batch: list[Delivery] = []
    panes: set[str] = set()
    for d in sorted(items, key=lambda d: d.pane):
        if d.pane not in panes and len(panes) >= size:
            yield batch
            batch, panes = [], set()
        batch.append(d)
        panes.add(d.pane)
    if batch:
        yield batch
