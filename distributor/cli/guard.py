"""``swarmqueue guard install|uninstall|check``: the git pre-commit hook over reservations.

``check`` is what the hook runs: it refuses (exit 1) a commit touching paths that an agent
other than ``$SWARMQUEUE_AGENT`` holds exclusively, naming holder and expiry. When Redis cannot
be reached it warns and allows the commit (exit 0): a queue outage must not stop all work.
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

import click
import redis

from distributor.cli.app import EXIT_REFUSED, CliContext, CliError
from distributor.cli.output import emit, json_option
from distributor.errors import RedisUnavailable, held_by
from distributor.messaging.sanitize import strip_controls
from distributor.reservations import guard


def check_command() -> str:
    """How the hook calls ``swarmqueue guard check``: this installation's own executable."""
    beside = Path(sys.executable).with_name("swarmqueue")
    if beside.exists():
        return f"{shlex.quote(str(beside))} guard check"
    code = "from distributor.cli import main; main()"
    return f"{shlex.quote(sys.executable)} -c {shlex.quote(code)} guard check"


@click.group("guard")
def guard_group() -> None:
    """A git pre-commit hook refusing commits that touch files other agents reserved."""


@guard_group.command("install")
@json_option
@click.pass_obj
def install(obj: CliContext, as_json: bool) -> None:
    """Install the hook in the current git repository (exit 1 if another hook is there)."""
    path = guard.install(Path.cwd(), check_command(), obj.settings.swarm)
    emit(as_json, {"installed": str(path)}, f"guard installed: {path}")


@guard_group.command("uninstall")
@json_option
@click.pass_obj
def uninstall(obj: CliContext, as_json: bool) -> None:
    """Remove the hook (only swarmqueue's own; another hook is left alone, exit 1)."""
    path = guard.uninstall(Path.cwd())
    line = f"guard removed: {path}" if path else "no guard installed"
    emit(as_json, {"removed": str(path) if path else None}, line)


@guard_group.command("check")
@json_option
@click.pass_obj
def check(obj: CliContext, as_json: bool) -> None:
    """Refuse the staged commit if it touches files another agent holds exclusively."""
    paths = guard.staged_paths(Path.cwd())
    agent = os.environ.get(guard.AGENT_ENV) or None
    if agent is None:
        click.echo(
            f"swarmqueue guard: {guard.AGENT_ENV} is not set: every agent's reservation counts",
            err=True,
        )
    try:
        held = obj.queue.reservations() if paths else []
    except (RedisUnavailable, redis.RedisError) as exc:
        click.echo(
            f"swarmqueue guard: warning: cannot read reservations ({exc.__class__.__name__});"
            " commit allowed",
            err=True,
        )
        emit(as_json, {"allowed": True, "checked": False}, [])
        return
    refused = guard.refusals(paths, held, agent)
    if not refused:
        emit(as_json, {"allowed": True, "checked": True}, [])
        return
    if as_json:
        emit(True, {"allowed": False, "refused": {p: hs for p, hs in refused}}, [])
    for path, holders in refused[:20]:
        line = f"swarmqueue guard: {path}: {held_by(list(holders))}"
        click.echo(strip_controls(line), err=True)
    more = f" (and {len(refused) - 20} more paths)" if len(refused) > 20 else ""
    raise CliError(
        f"commit refused: {len(refused)} staged path(s) reserved by other agents{more};"
        " bypass with git commit --no-verify",
        EXIT_REFUSED,
    )


COMMANDS = [guard_group]
