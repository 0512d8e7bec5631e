"""Messaging commands: ``broadcast``, ``send``, ``deliveries``, ``inbox``, ``worker`` and
``redispatch``."""

from __future__ import annotations

import sys

import click

from distributor.cli.app import CliContext
from distributor.cli.output import emit, json_option, when
from distributor.errors import ValidationError
from distributor.messaging.messages import (
    DEFAULT_SENDER,
    Delivery,
    MessageType,
    Messenger,
    PendingDelivery,
    Redispatched,
)

type_option = click.option(
    "--type",
    "msg_type",
    default=MessageType.INFO.value,
    show_default=True,
    type=click.Choice([t.value for t in MessageType], case_sensitive=False),
    help="Message type, shown as [TYPE].",
)
sender_option = click.option(
    "--sender",
    envvar="SWARMQUEUE_AGENT",
    default=DEFAULT_SENDER,
    show_default=True,
    help="Who sends it [env SWARMQUEUE_AGENT].",
)


def messenger(obj: CliContext) -> Messenger:
    """The messenger of the context's swarm, on the context's Redis connection; delivery jobs
    go to the delivery broker (the same connection unless it is another Redis)."""
    from distributor.messaging.broker import broker_client

    store = obj.queue.redis
    broker = broker_client(obj.settings, store)
    return Messenger(store, obj.settings.swarm, settings=obj.settings, broker=broker)


def _text(value: str) -> str:
    return sys.stdin.read() if value == "-" else value


def _sent(as_json: bool, message_id: str) -> None:
    emit(as_json, {"message_id": message_id}, message_id)


@click.command("broadcast")
@click.argument("text")
@type_option
@click.option("--to", "to", help="Comma-separated agent ids [default: every active agent].")
@sender_option
@json_option
@click.pass_obj
def broadcast(
    obj: CliContext, text: str, msg_type: str, to: str | None, sender: str, as_json: bool
) -> None:
    """Send TEXT ('-' reads stdin) to agents' panes; prints the message id at once."""
    recipients = [a.strip() for a in to.split(",") if a.strip()] if to is not None else None
    _sent(as_json, messenger(obj).broadcast(_text(text), msg_type, sender, recipients))


@click.command("send")
@click.argument("agent_id")
@click.argument("text")
@type_option
@sender_option
@json_option
@click.pass_obj
def send(
    obj: CliContext, agent_id: str, text: str, msg_type: str, sender: str, as_json: bool
) -> None:
    """Send TEXT ('-' reads stdin) to AGENT_ID (even if stale); prints the message id."""
    _sent(as_json, messenger(obj).send(agent_id, _text(text), msg_type, sender))


def _outcome(d: Delivery) -> str:
    if d.status.value == "failed":
        retry = "" if d.final else ", will retry"
        return f"failed ({d.reason}{retry}): {d.detail or '-'}"
    if d.status.value == "delivered":
        how = ", verified after an interrupted attempt" if d.verified else ""
        how += ", typed again after an interrupted attempt that had not" if d.retyped else ""
        return f"delivered at {when(d.delivered_at)} as {d.delivered_as or 'paste'}{how}"
    if d.status.value == "typing":
        why = f"; {d.reason}, will check the pane" if d.reason else ""
        return f"typing (attempt {d.attempt} since {when(d.typing_at)}{why})"
    return "pending"


def _pending_line(p: PendingDelivery) -> str:
    state = f"running ({p.holder})" if p.holder else f"next look {when(p.due)}"
    counts = ", ".join(f"{k} {v}" for k, v in p.counts.items() if v)
    return f"{p.message_id}\t{p.host}\t{p.sender}\t{p.type.value}\t{when(p.at)}\t{counts}\t{state}"


@click.command("deliveries")
@click.argument("message_id", required=False)
@click.option(
    "--pending", is_flag=True, help="List the messages not yet final on some host instead."
)
@json_option
@click.pass_obj
def deliveries(obj: CliContext, message_id: str | None, pending: bool, as_json: bool) -> None:
    """Show each recipient's outcome of MESSAGE_ID (delivered, failed and why, typing,
    pending), or with --pending every message whose recipients are not all final."""
    if pending == (message_id is not None):
        raise ValidationError("give a MESSAGE_ID or --pending (not both)")
    if message_id is None:
        found = messenger(obj).pending()
        lines = ["MESSAGE\tHOST\tSENDER\tTYPE\tSENT\tRECIPIENTS\tSTATE"]
        emit(as_json, found, [*lines, *map(_pending_line, found)])
        return
    message = messenger(obj).get(message_id)
    counts = message.counts()
    lines = [
        f"message {message.id} from {message.sender} [{message.type.value}] at {when(message.at)}",
        "  " + ", ".join(f"{k} {v}" for k, v in counts.items()),
        "AGENT\tHOST\tPANE\tATTEMPTS\tOUTCOME",
        *(
            f"{d.agent_id}\t{d.host}\t{d.pane}\t{d.attempts}\t{_outcome(d)}"
            for d in message.deliveries
        ),
    ]
    emit(as_json, {**message.model_dump(mode="json"), "counts": counts}, lines)


@click.command("inbox")
@click.option("--agent", "agent_id", required=True, help="Your agent id.")
@click.option("--count", default=20, show_default=True, help="How many recent messages.")
@json_option
@click.pass_obj
def inbox(obj: CliContext, agent_id: str, count: int, as_json: bool) -> None:
    """Read your latest messages (kept even if your pane was closed), oldest first."""
    entries = messenger(obj).inbox(agent_id, count)
    emit(as_json, entries, [e.line() for e in entries])


@click.command("worker")
@click.option("--host", help="Serve this host's deliveries [default: this host].")
@click.option("--burst", is_flag=True, help="Sweep once, then quit once the queue is empty.")
@click.pass_obj
def worker(obj: CliContext, host: str | None, burst: bool) -> None:
    """Run the RQ worker that types messages into this host's tmux panes.

    Every few seconds it also sweeps the host's outboxes (replacing lost or abandoned delivery
    jobs, dispatching retries) and once a minute prunes long-gone agents. While it runs, a Redis
    outage is waited out (one log line per retry). Exits 0 when stopped (Ctrl-C, SIGTERM), 3
    when Redis cannot be reached at the start or losing it ends the work.
    """
    from workers.worker import run_worker

    run_worker(obj.settings, host, burst=burst)


def _redispatched_line(r: Redispatched) -> str:
    detail = {
        "replaced": f"job {r.job_id} enqueued (the old one was {r.seen})",
        "queued": f"job {r.job_id} waits in the queue",
        "running": f"running ({r.holder})",
        "finished": "every recipient is final",
        "gone": "the message expired",
        "moved": f"replaced meanwhile by job {r.job_id}",
        "not_due": "rescheduled meanwhile",
    }[r.action]
    return f"{r.message_id}\t{r.host}\t{r.action}\t{detail}"


@click.command("redispatch")
@click.argument("message_ids", nargs=-1)
@click.option("--host", help="Only the deliveries on this host [default: every host].")
@json_option
@click.pass_obj
def redispatch(
    obj: CliContext, message_ids: tuple[str, ...], host: str | None, as_json: bool
) -> None:
    """Make sure every message not yet delivered has a live delivery job (MESSAGE_IDS, or every
    message in the outboxes): a job that is gone or abandoned is replaced, a queued or running
    one is left alone. Workers do this by themselves every few seconds; this queues the jobs
    of a host whose worker is down (they run when it starts), or shows what the workers do."""
    found = messenger(obj).redispatch(list(message_ids) or None, host=host)
    lines = ["MESSAGE\tHOST\tACTION\tDETAIL", *map(_redispatched_line, found)]
    emit(as_json, found, lines)


COMMANDS = [broadcast, send, deliveries, inbox, worker, redispatch]
