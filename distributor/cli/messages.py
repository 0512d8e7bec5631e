"""Messaging commands: ``broadcast``, ``send``, ``ack``, ``deliveries``, ``inbox``, ``worker``,
``redispatch`` and ``ratelimit``.

Who is sending (``--sender``) or acknowledging (``--agent``), when not given: inside a tmux pane,
the agent registered for ``$TMUX_PANE`` on this host (an error names the pane if there is none);
outside tmux, senders are ``swarmqueue``.
"""

from __future__ import annotations

import os
import sys

import click

from distributor.cli.app import EXIT_INVALID, CliContext, CliError
from distributor.cli.output import emit, json_option, when
from distributor.errors import ValidationError
from distributor.messaging.messages import (
    DEFAULT_SENDER,
    Delivery,
    Message,
    MessageType,
    Messenger,
    PendingDelivery,
    Redispatched,
    message_tag,
    parse_message_type,
)
from distributor.messaging.names import tmux_location


def _message_type(ctx: click.Context, param: click.Parameter, value: str) -> MessageType:
    try:
        return parse_message_type(value)
    except ValidationError as exc:
        raise click.BadParameter(str(exc)) from None


type_option = click.option(
    "--type",
    "msg_type",
    default=MessageType.INFO.value,
    show_default=True,
    callback=_message_type,
    help="Message type, shown as [TYPE]: " + ", ".join(t.value for t in MessageType)
    + " (any case; '-' for '_', e.g. REVIEW-REQUEST).",
)
sender_option = click.option(
    "--sender",
    envvar="SWARMQUEUE_AGENT",
    help="Who sends it [env SWARMQUEUE_AGENT; default: inside tmux the agent registered for"
    f" $TMUX_PANE, else {DEFAULT_SENDER}].",
)
agent_option = click.option(
    "--agent",
    "agent_id",
    envvar="SWARMQUEUE_AGENT",
    help="Your agent id [env SWARMQUEUE_AGENT; default: the agent registered for $TMUX_PANE].",
)
ack_option = click.option(
    "--ack", "requires_ack", is_flag=True,
    help="Ask each recipient to acknowledge it (swarmqueue ack); re-delivered until then.",
)  # fmt: skip
reply_option = click.option("--reply-to", help="The message this one answers (joins its thread).")


def messenger(obj: CliContext) -> Messenger:
    """The messenger of the context's swarm, on the context's Redis connection; delivery jobs
    go to the delivery broker (the same connection unless it is another Redis)."""
    from distributor.messaging.broker import broker_client

    store = obj.queue.redis
    broker = broker_client(obj.settings, store)
    return Messenger(store, obj.settings.swarm, settings=obj.settings, broker=broker)


def pane_agent(obj: CliContext) -> str | None:
    """The agent registered for the tmux pane this command runs in (``$TMUX_PANE`` and the
    server of ``$TMUX``, on this host); None outside tmux; ``PaneNotRegistered`` if none is."""
    pane, socket = tmux_location(os.environ.get("TMUX"), os.environ.get("TMUX_PANE"))
    if pane is None:
        return None
    from distributor.messaging.agents import AgentRegistry  # pydantic: only inside a pane

    registry = AgentRegistry(obj.queue.redis, obj.settings.swarm, settings=obj.settings)
    return registry.at_pane(pane, socket).id


def sender_of(obj: CliContext, given: str | None) -> str:
    """``--sender``, else the pane's agent, else ``swarmqueue`` (outside tmux)."""
    return given or pane_agent(obj) or DEFAULT_SENDER


def agent_of(obj: CliContext, given: str | None) -> str:
    """``--agent``, else the pane's agent; outside tmux, ``--agent`` is needed."""
    found = given or pane_agent(obj)
    if found is None:
        raise CliError("give --agent (or run inside the agent's registered tmux pane)",
                       EXIT_INVALID)  # fmt: skip
    return found


def _text(value: str) -> str:
    return sys.stdin.read() if value == "-" else value


def _sent(as_json: bool, message_id: str) -> None:
    emit(as_json, {"message_id": message_id}, message_id)


@click.command("broadcast")
@click.argument("text")
@type_option
@click.option(
    "--to", "to", help="Comma-separated agent ids [default: every active agent but the sender]."
)
@click.option("--include-self", is_flag=True, help="Send it to the sender's own pane too.")
@ack_option
@reply_option
@sender_option
@json_option
@click.pass_obj
def broadcast(
    obj: CliContext,
    text: str,
    msg_type: MessageType,
    to: str | None,
    include_self: bool,
    requires_ack: bool,
    reply_to: str | None,
    sender: str | None,
    as_json: bool,
) -> None:
    """Send TEXT ('-' reads stdin) to agents' panes; prints the message id at once."""
    recipients = [a.strip() for a in to.split(",") if a.strip()] if to is not None else None
    message_id = messenger(obj).broadcast(
        _text(text), msg_type, sender_of(obj, sender), recipients,
        reply_to=reply_to, requires_ack=requires_ack, include_self=include_self,
    )  # fmt: skip
    _sent(as_json, message_id)


@click.command("send")
@click.argument("agent_id")
@click.argument("text")
@type_option
@ack_option
@reply_option
@sender_option
@json_option
@click.pass_obj
def send(
    obj: CliContext,
    agent_id: str,
    text: str,
    msg_type: MessageType,
    requires_ack: bool,
    reply_to: str | None,
    sender: str | None,
    as_json: bool,
) -> None:
    """Send TEXT ('-' reads stdin) to AGENT_ID (even if stale); prints the message id."""
    message_id = messenger(obj).send(
        agent_id, _text(text), msg_type, sender_of(obj, sender),
        reply_to=reply_to, requires_ack=requires_ack,
    )  # fmt: skip
    _sent(as_json, message_id)


@click.command("ack")
@click.argument("message_ids", nargs=-1, required=True)
@agent_option
@json_option
@click.pass_obj
def ack(obj: CliContext, message_ids: tuple[str, ...], agent_id: str | None, as_json: bool) -> None:
    """Acknowledge MESSAGE_IDS sent to you (it stops their re-delivery), in order. Acknowledging
    again changes nothing; a message not sent to you, or unknown, is refused (exit 1; the ones
    before it stay acknowledged)."""
    agent = agent_of(obj, agent_id)
    m = messenger(obj)
    done = [m.acknowledge(message_id, agent) for message_id in message_ids]
    lines = [
        f"{a.message_id}\t{'already acknowledged' if a.already else 'acknowledged'} by "
        f"{a.agent_id} at {when(a.acked_at)}{' (after it was given up)' if a.late else ''}"
        for a in done
    ]
    emit(as_json, done if len(done) > 1 else done[0], lines)


def _outcome(d: Delivery) -> str:
    if d.status.value == "acknowledged":
        return f"acknowledged at {when(d.acked_at)}" + (" (late)" if d.late else "")
    if d.status.value == "unacknowledged":
        return f"unacknowledged (given up {when(d.unacked_at)}, {d.reminders} re-deliveries)"
    awaiting = ""
    if d.requires_ack and d.remind_at is not None:
        nxt = f"re-delivery {d.reminders + 1}" if d.reminders < d.ack_redeliveries else "give-up"
        awaiting = f"; awaiting ack ({nxt} at {when(d.remind_at)})"
    return _delivery_outcome(d) + awaiting


def _delivery_outcome(d: Delivery) -> str:
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
    about = " (acknowledgement requested)" if message.requires_ack else ""
    if message.reply_to:
        about += f" in reply to {message.reply_to}"
    lines = [
        f"message {message.id} from {message.sender} [{message.type.value}] at {when(message.at)}"
        + about,
        "  " + ", ".join(f"{k} {v}" for k, v in counts.items()),
        "AGENT\tHOST\tPANE\tATTEMPTS\tOUTCOME",
        *(
            f"{d.agent_id}\t{d.host}\t{d.pane}\t{d.attempts}\t{_outcome(d)}"
            for d in message.deliveries
        ),
    ]
    emit(as_json, {**message.model_dump(mode="json"), "counts": counts}, lines)


def _thread_line(m: Message) -> str:
    to = ", ".join(d.agent_id for d in m.deliveries) or "-"
    return f"{m.line()}  [to {to}]"


@click.command("inbox")
@agent_option
@click.option("--count", default=20, show_default=True, help="How many recent messages.")
@click.option(
    "--thread", "thread_of", metavar="MSG",
    help="Show the thread of message MSG instead: its root, then the replies in order.",
)  # fmt: skip
@click.option(
    "--unread", is_flag=True,
    help="Only messages after your read mark (the first COUNT), then move the mark past them.",
)  # fmt: skip
@json_option
@click.pass_obj
def inbox(
    obj: CliContext,
    agent_id: str | None,
    count: int,
    thread_of: str | None,
    unread: bool,
    as_json: bool,
) -> None:
    """Read your latest messages (kept even if your pane was closed), oldest first."""
    if unread:
        agent = agent_of(obj, agent_id)
        found = messenger(obj).unread(agent, count)
        if found.entries and found.entries[-1].entry_id is not None:
            messenger(obj).mark_read(agent, found.entries[-1].entry_id)
        more = found.total - len(found.entries)
        tail = [f"({more} more unread: run it again)"] if more else []
        lines = [e.line() for e in found.entries] or ["no unread messages"]
        emit(as_json, found, [*lines, *tail])
        return
    if thread_of is not None:
        thread = messenger(obj).thread(thread_of)
        root = thread[0].thread or thread[0].id if thread else thread_of
        header = f"thread {message_tag(root)} ({len(thread)} message(s))"
        emit(as_json, thread, [header, *map(_thread_line, thread)])
        return
    entries = messenger(obj).inbox(agent_of(obj, agent_id), count)
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


@click.group("ratelimit")
def ratelimit_group() -> None:
    """See or reset a sender's message rate limit (rate_limit_per_minute per
    rate_limit_window_seconds)."""


@ratelimit_group.command("show")
@click.argument("sender")
@json_option
@click.pass_obj
def ratelimit_show(obj: CliContext, sender: str, as_json: bool) -> None:
    """How much of its window SENDER has used, and when it may send again."""
    u = messenger(obj).rate_usage(sender)
    line = (
        f"{u.sender}: {u.used} of {u.limit} messages in the last {u.window_seconds:g}s; "
        + (f"may send again in {u.retry_after:.1f}s" if u.retry_after else "may send now")
    )
    emit(as_json, u, line)


@ratelimit_group.command("reset")
@click.argument("sender")
@json_option
@click.pass_obj
def ratelimit_reset(obj: CliContext, sender: str, as_json: bool) -> None:
    """Empty SENDER's rate-limit window so it may send again at once."""
    cleared = messenger(obj).reset_rate_limit(sender)
    emit(
        as_json,
        {"sender": sender, "cleared": cleared},
        f"rate limit of {sender} reset ({cleared} message(s) cleared from its window)",
    )


COMMANDS = [broadcast, send, ack, deliveries, inbox, worker, redispatch, ratelimit_group]
