"""Messaging commands: ``broadcast``, ``send``, ``deliveries``, ``inbox`` and ``worker``."""

from __future__ import annotations

import sys

import click

from distributor.cli.app import CliContext
from distributor.cli.output import emit, json_option, when
from distributor.messages import DEFAULT_SENDER, Delivery, MessageType, Messenger

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
    """The messenger of the context's swarm, on the context's Redis connection."""
    return Messenger(obj.queue.redis, obj.settings.swarm, settings=obj.settings)


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
        return f"delivered at {when(d.delivered_at)} as {d.delivered_as or 'paste'}"
    return "pending"


@click.command("deliveries")
@click.argument("message_id")
@json_option
@click.pass_obj
def deliveries(obj: CliContext, message_id: str, as_json: bool) -> None:
    """Show each recipient's outcome of MESSAGE_ID (delivered, failed and why, pending)."""
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
@click.option("--burst", is_flag=True, help="Quit once the queues are empty.")
@click.pass_obj
def worker(obj: CliContext, host: str | None, burst: bool) -> None:
    """Run the RQ worker that types messages into this host's tmux panes.

    While it runs, a Redis outage is waited out (one log line per retry). Exits 0 when stopped
    (Ctrl-C, SIGTERM), 3 when Redis cannot be reached at the start or losing it ends the work.
    """
    from workers.worker import run_worker

    run_worker(obj.settings, host, burst=burst)


COMMANDS = [broadcast, send, deliveries, inbox, worker]
