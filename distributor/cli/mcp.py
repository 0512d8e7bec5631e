"""``swarmqueue mcp``: serve one agent's loop as MCP tools (stdio, or HTTP with a token)."""

from __future__ import annotations

import click

from distributor.cli.app import EXIT_INVALID, CliContext, CliError
from distributor.store.keys import check_swarm
from distributor.tasks.ids import check_agent_id


@click.command("mcp")
@click.option("--agent", "agent_id", required=True, help="The agent this server speaks for.")
@click.option("--swarm", help="Swarm to serve [default: the global --swarm].")
@click.option("--http", is_flag=True, help="Serve streamable HTTP instead of stdio.")
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="With --http: address to bind."
)
@click.option("--port", default=8765, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--token",
    envvar="SWARMQUEUE_MCP_TOKEN",
    help="With --http: the bearer token clients must send [env SWARMQUEUE_MCP_TOKEN; prefer"
    " the variable: arguments show in ps].",
)
@click.pass_obj
def mcp(
    obj: CliContext,
    agent_id: str,
    swarm: str | None,
    http: bool,
    host: str,
    port: int,
    token: str | None,
) -> None:
    """Serve AGENT's loop (next task, start, heartbeat, complete, fail, release, status, tasks,
    messages) as Model Context Protocol tools: stdio by default, for an agent CLI to launch;
    with --http, streamable HTTP at http://HOST:PORT/mcp for agents on other hosts, which then
    need the bearer token. Needs the mcp extra: pip install 'swarmqueue[mcp]'."""
    try:
        check_agent_id(agent_id)
        if swarm is not None:
            check_swarm(swarm)
    except ValueError as exc:
        raise CliError(str(exc), EXIT_INVALID) from None
    try:
        from distributor.mcp.auth import check_token
        from distributor.mcp.server import run
    except ImportError as exc:
        raise CliError(
            f"the MCP server needs the mcp extra ({exc.name} is missing):"
            " pip install 'swarmqueue[mcp]'",
            EXIT_INVALID,
        ) from None
    if http:
        try:
            token = check_token(token)
        except ValueError as exc:
            raise CliError(str(exc), EXIT_INVALID) from None
    settings = obj.settings if swarm is None else obj.settings.model_copy(update={"swarm": swarm})
    run(settings, agent_id, http=http, host=host, port=port, token=token)


COMMANDS = [mcp]
