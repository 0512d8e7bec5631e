"""Agent registry commands: ``agents register / list / discover / heartbeat / remove / prune``."""

from __future__ import annotations

import os

import click

from distributor.cli.app import EXIT_INVALID, CliContext, CliError
from distributor.cli.output import emit, json_option, when
from distributor.errors import TmuxError
from distributor.messaging.agents import Agent, AgentRegistry
from distributor.messaging.names import PANE_RE, check_socket, tmux_location
from workers.tmux import Tmux, discover


def registry(obj: CliContext) -> AgentRegistry:
    """The registry of the context's swarm, on the context's Redis connection."""
    return AgentRegistry(obj.queue.redis, obj.settings.swarm, settings=obj.settings)


def _row(agent: Agent) -> str:
    state = "stale" if agent.stale else "active"
    caps = ",".join(agent.capabilities) or "-"
    return (
        f"{agent.id}\t{agent.host}\t{agent.pane}\t{agent.socket or '-'}\t"
        f"{when(agent.last_seen)}\t{state}\t{caps}"
    )


@click.group("agents")
def agents_group() -> None:
    """Register agents (tmux panes) and see who is present."""


@agents_group.command("register")
@click.option("--agent", "agent_id", required=True, help="The agent's id.")
@click.option(
    "--pane",
    help="tmux pane: its id such as %3, or session:window.pane (resolved to its %N id on this"
    " host's tmux server, the one of --socket if given) [default: $TMUX_PANE].",
)
@click.option("--socket", help="tmux server socket path [default: from $TMUX, else default].")
@click.option("--host", help="Host the pane lives on [default: this host].")
@click.option("--capability", "capabilities", multiple=True, help="A capability (repeatable).")
@json_option
@click.pass_obj
def register(
    obj: CliContext,
    agent_id: str,
    pane: str | None,
    socket: str | None,
    host: str | None,
    capabilities: tuple[str, ...],
    as_json: bool,
) -> None:
    """Register an agent at a tmux pane (run inside the pane to take it from $TMUX_PANE).

    A target such as work:1.0 is stored as the pane's stable %N id, which keeps naming the
    pane when windows are renumbered or panes move. Warns on stderr when the pane is not on
    this host's tmux server now (registered anyway).
    """
    env_pane, env_socket = tmux_location(os.environ.get("TMUX"), os.environ.get("TMUX_PANE"))
    pane = pane or env_pane
    if pane is None:
        raise CliError("no --pane given and $TMUX_PANE is unset (not inside tmux)", EXIT_INVALID)
    socket = socket or env_socket
    if not PANE_RE.fullmatch(pane):
        pane = _resolve_target(obj, pane, socket, host)
    agent = registry(obj).register(
        agent_id, pane, socket=socket, host=host, capabilities=list(capabilities)
    )
    where = f"{agent.host} {agent.pane}" + (f" ({agent.socket})" if agent.socket else "")
    emit(as_json, agent, f"registered {agent.id} at {where}")
    if agent.host == obj.settings.host:  # another host's panes are only visible over there
        _warn_if_no_pane(agent, obj.settings.tmux_timeout_seconds)


def _resolve_target(obj: CliContext, target: str, socket: str | None, host: str | None) -> str:
    """The ``%N`` id of the pane a tmux target names, asked of this host's tmux server."""
    if host is not None and host != obj.settings.host:
        raise CliError(
            f"--pane {target[:40]!r} names a pane by session:window.pane, which only this host's"
            f" tmux can resolve; give host {host}'s %N pane id (its $TMUX_PANE)",
            EXIT_INVALID,
        )
    try:
        checked = check_socket(socket)
    except ValueError as exc:
        raise CliError(str(exc), EXIT_INVALID) from None
    return Tmux(checked, timeout=obj.settings.tmux_timeout_seconds).pane_id(target)


def _warn_if_no_pane(agent: Agent, timeout: float) -> None:
    """One line on stderr when the agent's pane is not on this host's tmux server now.

    The agent stays registered: the pane may come later, and until it does, deliveries to it
    are recorded as failed (``pane_not_found``) rather than lost.
    """
    try:
        panes = {p.pane for p in discover(agent.socket, timeout=timeout)}
    except TmuxError as exc:  # no server there (or no tmux), a timeout, a refusal
        problem = f"pane {agent.pane} could not be found on this host now ({exc})"
    else:
        if agent.pane in panes:
            return
        server = agent.socket or "the default tmux server"
        problem = f"pane {agent.pane} does not exist on {server} of this host now"
    click.echo(f"swarmqueue: warning: {problem}; registered anyway", err=True)


@agents_group.command("list")
@json_option
@click.pass_obj
def list_agents(obj: CliContext, as_json: bool) -> None:
    """List agents, most recently seen first; stale ones are skipped by broadcasts."""
    agents = registry(obj).list()
    header = "ID\tHOST\tPANE\tSOCKET\tLAST SEEN\tSTATE\tCAPABILITIES"
    emit(as_json, agents, [header, *(_row(a) for a in agents)])


@agents_group.command("heartbeat")
@click.option("--agent", "agent_id", required=True, help="The agent's id.")
@json_option
@click.pass_obj
def heartbeat(obj: CliContext, agent_id: str, as_json: bool) -> None:
    """Mark an agent present now."""
    seen = registry(obj).heartbeat(agent_id)
    emit(as_json, {"id": agent_id, "last_seen": seen}, f"{agent_id} seen at {when(seen)}")


@agents_group.command("remove")
@click.argument("agent_id")
@json_option
@click.pass_obj
def remove(obj: CliContext, agent_id: str, as_json: bool) -> None:
    """Forget AGENT_ID (exit 1 if it was not registered)."""
    registry(obj).remove(agent_id)
    emit(as_json, {"removed": agent_id}, f"removed {agent_id}")


@agents_group.command("prune")
@json_option
@click.pass_obj
def prune(obj: CliContext, as_json: bool) -> None:
    """Forget agents unseen for SWARMQUEUE_AGENT_PRUNE_SECONDS, with their inboxes."""
    pruned = registry(obj).prune()
    emit(as_json, {"pruned": pruned}, f"pruned {len(pruned)} agent(s): {', '.join(pruned) or '-'}")


@agents_group.command("discover")
@click.option("--socket", help="tmux server socket path [default: the default server].")
@json_option
@click.pass_obj
def discover_cmd(obj: CliContext, socket: str | None, as_json: bool) -> None:
    """List this host's tmux panes, to register them with `agents register --pane`."""
    panes = discover(socket, timeout=obj.settings.tmux_timeout_seconds)
    lines = ["PANE\tSESSION\tWINDOW\tCOMMAND"]
    lines += [f"{p.pane}\t{p.session}\t{p.window}:{p.window_name}\t{p.command}" for p in panes]
    emit(as_json, panes, lines)


COMMANDS = [agents_group]
