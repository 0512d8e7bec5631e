"""The delivery job: type one message into the panes of one host and record every outcome.

RQ runs :func:`deliver` on the host's queue (see :mod:`distributor.dispatch`). For each tmux
server (socket) of the host, one ``list-panes -a`` tells which panes exist and which program
runs in each one's foreground. Missing panes are recorded ``failed / pane_not_found`` at once,
panes whose program must not get keystrokes ``failed / shell_prompt`` or ``not_an_agent``
(:mod:`workers.programs`); the rest get the message, or a shell the inert comment line, with
one tmux invocation per batch of panes, and the batch's outcomes are recorded right after
(``delivered`` with ``as: paste`` or ``as: comment``).

A retry (RQ ``Retry`` after a transient failure, or after the worker was interrupted) reads the
recorded outcomes first and only types into recipients that are neither ``delivered`` nor failed
for good, so no pane gets a message twice::

    attempt 1  panes %1 %2 typed, recorded delivered; worker killed before %3 %4
    attempt 2  %1 %2 are skipped; %3 %4 are typed and recorded

Refusals (a shell or another program in front) are final, as they would be again. A pane whose
program changed between the listing and the typing gets nothing and ``foreground_changed``,
which is transient: the retry lists the panes again and decides anew. Missing tmux, a missing
server and dead panes are recorded reasons, never a crash.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import redis
from pydantic import BaseModel
from rq import get_current_job

from distributor.errors import MessageDeliveryError, MessageNotFound, TmuxError
from distributor.executor import SyncExecutor
from distributor.keys import SwarmKeys
from distributor.log import get_logger
from distributor.messages import Delivery, DeliveryStatus, MessageOps, format_line
from distributor.sanitize import shell_comment
from distributor.settings import Settings
from workers.programs import Refusal, Typing, decide
from workers.tmux import Tmux

log = get_logger(__name__)

PERMANENT_REASONS = frozenset({"pane_not_found", "server_not_found"})  # of tmux errors


class DeliveryReport(BaseModel):
    """What one run of the job did on its host."""

    message_id: str
    host: str
    delivered: int = 0
    failed: int = 0
    retrying: int = 0
    skipped: int = 0


def deliver(swarm: str, message_id: str, host: str) -> dict[str, Any]:
    """RQ entry point; raises ``MessageDeliveryError`` so RQ retries transient failures."""
    job = get_current_job()
    if job is None:
        raise RuntimeError("deliver() runs inside an RQ job; call deliver_message() directly")
    report = deliver_message(
        job.connection, swarm, message_id, host, settings=Settings(), final=not job.retries_left
    )
    return report.model_dump()


def deliver_message(
    client: redis.Redis,
    swarm: str,
    message_id: str,
    host: str,
    *,
    settings: Settings,
    final: bool = True,
) -> DeliveryReport:
    """Deliver ``message_id`` to its recipients on ``host``; ``final`` when no retry follows."""
    ops = MessageOps(SwarmKeys(swarm), settings)
    executor = SyncExecutor(client)
    executor.run(ops.started(message_id, host))
    report = DeliveryReport(message_id=message_id, host=host)
    try:
        message = executor.run(ops.get(message_id))
    except MessageNotFound:
        log.warning("message expired before delivery", message_id=message_id, host=host)
        return report

    todo: list[Delivery] = []
    for d in message.deliveries:
        if d.host != host:
            continue
        if d.status is DeliveryStatus.DELIVERED or (d.status is DeliveryStatus.FAILED and d.final):
            report.skipped += 1
        else:
            todo.append(d)
    line = format_line(message.sender, message.type, message.at, message.content)
    texts = {Typing.PASTE: line, Typing.COMMENT: shell_comment(line)}

    def record(outcomes: dict[str, dict[str, Any]]) -> None:
        executor.run(ops.record(message_id, outcomes))
        for o in outcomes.values():
            if o["status"] == "delivered":
                report.delivered += 1
            elif o["final"]:
                report.failed += 1
            else:
                report.retrying += 1

    by_socket: dict[str | None, list[Delivery]] = {}
    for d in todo:
        by_socket.setdefault(d.socket, []).append(d)
    for socket, group in by_socket.items():
        tmux = Tmux(socket, timeout=settings.tmux_timeout_seconds)
        try:
            programs = {row.pane: row.command for row in tmux.panes()}
        except TmuxError as exc:
            record({d.agent_id: _failure(exc, final) for d in group})
            continue
        refused: dict[str, dict[str, Any]] = {}
        typing: dict[Typing, list[Delivery]] = {how: [] for how in Typing}
        for d in group:
            if d.pane not in programs:
                detail = f"pane {d.pane} does not exist on {tmux.where}"
                refused[d.agent_id] = _refused(Refusal("pane_not_found", detail))
                continue
            how = decide(programs[d.pane], settings)
            if isinstance(how, Refusal):
                refused[d.agent_id] = _refused(how)
            else:
                typing[how].append(d)
        record(refused)
        for how, present in typing.items():
            keep_newlines = how is Typing.PASTE and settings.message_keep_newlines
            for batch in _batches(present, settings.delivery_batch_panes):
                targets = {d.pane: programs[d.pane] for d in batch}  # agents may share a pane
                results = tmux.paste(texts[how], targets, keep_newlines=keep_newlines)
                record(
                    {
                        d.agent_id: {"status": "delivered", "as": how.value}
                        if results[d.pane] is None
                        else _failure(results[d.pane], final)
                        for d in batch
                    }
                )

    log.info("delivery done", swarm=swarm, **report.model_dump())
    if report.retrying:
        raise MessageDeliveryError(
            f"message {message_id} on {host}: {report.retrying} recipient(s) failed "
            "transiently; RQ will retry them"
        )
    return report


def _refused(refusal: Refusal) -> dict[str, Any]:
    """A final failure: retrying would find the same pane, or the same program in it."""
    return {"status": "failed", "reason": refusal.reason, "detail": refusal.detail, "final": True}


def _failure(exc: TmuxError | None, final: bool) -> dict[str, Any]:
    assert exc is not None
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
