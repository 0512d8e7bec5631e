"""Event commands: ``events`` prints the swarm's log (and follows it); ``watch`` shows progress.

Both read the event stream with ``XREAD BLOCK``, so they react at once and cost nothing while
the swarm is quiet. They run until interrupted or until their own ``--timeout``, however quiet
the swarm: each blocking read is shorter than the client's socket timeout (see
:mod:`distributor.tasks.events`). A Redis that goes away ends them with exit 3.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import click

from distributor.cli.app import EXIT_REFUSED, CliContext, CliError
from distributor.cli.output import emit, json_option
from distributor.tasks.models import Event
from distributor.tasks.status import TaskStatus

BAR_WIDTH = 30
_WATCH_BLOCK_SECONDS = 5.0  # at least this often watch re-reads the progress


def event_line(event: Event) -> str:
    """One event as one line: id, UTC time (ms), type, task, agent, then its details."""
    at = event.at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{event.at.microsecond // 1000:03d}Z"
    parts = [event.id, at, event.type, event.task_id]
    if event.agent_id:
        parts.append(f"by {event.agent_id}")
    parts.extend(f"{key}={value}" for key, value in sorted(event.data.items()))
    return "  ".join(parts)


@click.command("events")
@click.option("--since", default="0", show_default=True, help="Only events after this id (0: all).")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new events as they happen.")
@click.option(
    "--timeout", type=float, help="With --follow: stop after this many seconds without an event."
)
@json_option
@click.pass_obj
def events_cmd(
    obj: CliContext, since: str, follow: bool, timeout: float | None, as_json: bool
) -> None:
    """Print the swarm's event log, oldest first (JSON lines with --json).

    Each line starts with the event's id: pass the last one as --since to continue where you
    left off. --follow runs until interrupted (Ctrl-C) or --timeout.
    """
    stream = obj.queue.follow(since, timeout=timeout) if follow else obj.queue.events(since)
    try:
        for event in stream:
            emit(as_json, event, event_line(event))
    except KeyboardInterrupt:
        return


def progress_line(progress: dict[str, Any]) -> str:
    """``[#####-----] 5/10 completed (50.0%) | available 2, claimed 1, ...``"""
    total, completed = progress["total"], progress["completed"]
    filled = round(BAR_WIDTH * completed / total) if total else 0
    bar = "#" * filled + "-" * (BAR_WIDTH - filled)
    counts = ", ".join(
        f"{s.value} {progress[s.value]}" for s in TaskStatus if s != TaskStatus.COMPLETED
    )
    return f"[{bar}] {completed}/{total} completed ({progress['completion_pct']}%) | {counts}"


def finished(progress: dict[str, Any]) -> bool:
    """Every task is completed or failed (and there is at least one)."""
    total = progress["total"]
    return bool(total) and progress["completed"] + progress["failed"] == total


@click.command("watch")
@click.option("--timeout", type=float, help="Give up after this many seconds (exit 1).")
@json_option
@click.pass_obj
def watch(obj: CliContext, timeout: float | None, as_json: bool) -> None:
    """Show the swarm's progress live until every task is completed or failed.

    Redraws one line on a terminal, prints one line per change otherwise (one JSON object per
    change with --json). Exit 0 when all tasks completed, 1 when some failed or on --timeout.
    """
    queue = obj.queue
    redraw = not as_json and sys.stdout.isatty()
    deadline = None if timeout is None else time.monotonic() + timeout
    cursor = queue.last_event_id()  # first the cursor, then the state: no change falls between
    shown = ""
    while True:
        progress = queue.progress()
        line = progress_line(progress)
        if line != shown:
            if redraw:
                click.echo(f"\r{line}\x1b[K", nl=False)
            else:
                emit(as_json, progress, line)
            shown = line
        if finished(progress):
            break
        remaining = None if deadline is None else deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
            if redraw:
                click.echo()
            raise CliError(f"swarm not finished after {timeout}s", EXIT_REFUSED)
        block = _WATCH_BLOCK_SECONDS if remaining is None else min(_WATCH_BLOCK_SECONDS, remaining)
        batch = queue.events(since=cursor, count=1000, wait=max(block, 0.001))
        if batch:
            cursor = batch[-1].id
    if redraw:
        click.echo()
    if progress["failed"]:
        raise CliError(
            f"finished with {progress['failed']} of {progress['total']} task(s) failed",
            EXIT_REFUSED,
        )


COMMANDS = [events_cmd, watch]
