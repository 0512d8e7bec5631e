"""``swarmqueue prime``: what an agent needs at the start of a session, in a few hundred tokens.

Prints the agent's loop, the tasks it holds with their lease left, its unread messages and the
swarm's progress; suits a session-start hook (its output joins the agent's context).
"""

from __future__ import annotations

import click

from distributor.cli.app import EXIT_INVALID, CliContext, CliError
from distributor.cli.output import emit, json_option
from distributor.mcp.priming import CLI_LOOP, DATA_NOTE, INBOX_SHOWN, brief, cli_prefix, render
from distributor.store.keys import SwarmKeys


@click.command("prime")
@click.option(
    "--agent", "agent_id", envvar="SWARMQUEUE_AGENT", required=True, help="Your agent id."
)
@click.option("--swarm", help="Swarm [default: the global --swarm].")
@click.option(
    "--messages", default=INBOX_SHOWN, show_default=True, type=click.IntRange(1, 100),
    help="How many of your unread messages to show.",
)  # fmt: skip
@json_option
@click.pass_obj
def prime(
    obj: CliContext, agent_id: str, swarm: str | None, messages: int, as_json: bool
) -> None:
    """Brief AGENT for a new session: its loop, its claims and lease left, its unread messages
    and the swarm's progress (use it as a session-start hook)."""
    queue = obj.queue
    try:
        keys = queue.keys if swarm is None else SwarmKeys(swarm, queue.keys.namespace)
    except ValueError as exc:
        raise CliError(str(exc), EXIT_INVALID) from None
    found = queue._executor.run(brief(keys, obj.settings, agent_id, messages))
    sq = cli_prefix(found.swarm)
    loop = [{"command": c.format(sq=sq, agent=agent_id), "does": w} for c, w in CLI_LOOP]
    data = {**found.model_dump(mode="json"), "loop": loop, "note": DATA_NOTE}
    emit(as_json, data, render(found))


COMMANDS = [prime]
