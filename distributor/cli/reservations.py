"""File reservation commands: ``reserve``, ``unreserve`` and ``reservations``.

A task's files are reserved by its claim; these are for work outside a task (a human editing
a file, an agent's side fix). A refusal names the holders and exits 1, writing nothing.
"""

from __future__ import annotations

import click

from distributor.cli.app import CliContext
from distributor.cli.output import emit, json_option, when
from distributor.cli.tasks import agent_option, pending, request_option
from distributor.reservations.models import Reservation


def reservation_line(r: Reservation) -> str:
    """One reservation for people: pattern, holder, mode, expiry, task or reason."""
    origin = f"task {r.task_id}" if r.task_id else (r.reason or "-")
    return f"{r.pattern}\t{r.agent_id}\t{r.mode}\t{when(r.expires_at)}\t{origin}"


@click.command("reserve")
@click.argument("paths", nargs=-1, required=True)
@agent_option
@click.option("--ttl", type=float, help="Seconds the reservation lasts (default 3600).")
@click.option("--shared", is_flag=True, help="Reserve for reading: others may share, not take.")
@click.option("--reason", default="", help="Why (shown to other agents; one line).")
@request_option
@json_option
@click.pass_obj
def reserve(
    obj: CliContext,
    paths: tuple[str, ...],
    agent_id: str,
    ttl: float | None,
    shared: bool,
    reason: str,
    request_id: str | None,
    as_json: bool,
) -> None:
    """Reserve PATHS (files, dir/ or globs) for your agent; exit 1 naming the holders when
    another agent holds any of them (then nothing is reserved)."""
    request = ("reserve", *paths, ttl, shared, reason)
    with pending(obj, agent_id, request_id, *request) as rid:
        taken = obj.queue.reserve(
            list(paths), agent_id, ttl=ttl, shared=shared, reason=reason, request_id=rid
        )
    until = when(taken[0].expires_at) if taken else "-"
    mode = "shared" if shared else "exclusive"
    shown = ", ".join(r.pattern for r in taken)
    emit(as_json, taken, f"reserved {shown} for {agent_id} ({mode}) until {until}")


@click.command("unreserve")
@click.argument("paths", nargs=-1)
@agent_option
@request_option
@json_option
@click.pass_obj
def unreserve(
    obj: CliContext, paths: tuple[str, ...], agent_id: str, request_id: str | None, as_json: bool
) -> None:
    """Free your explicit reservations of PATHS (none given: all of them)."""
    with pending(obj, agent_id, request_id, "unreserve", *paths) as rid:
        freed = obj.queue.unreserve(agent_id, list(paths) or None, request_id=rid)
    emit(as_json, {"freed": freed}, f"freed {len(freed)}: {', '.join(freed) or 'nothing held'}")


@click.command("reservations")
@click.option("--agent", "agent_id", help="Only this agent's.")
@json_option
@click.pass_obj
def reservations(obj: CliContext, agent_id: str | None, as_json: bool) -> None:
    """Who holds which paths, until when (live reservations, soonest to expire first)."""
    found = [r for r in obj.queue.reservations() if agent_id in (None, r.agent_id)]
    lines = ["PATTERN\tAGENT\tMODE\tUNTIL\tTASK/REASON", *(reservation_line(r) for r in found)]
    emit(as_json, found, lines)


COMMANDS = [reserve, unreserve, reservations]
