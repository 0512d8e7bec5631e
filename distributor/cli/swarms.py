"""Operator commands over whole swarms: ``swarms`` lists them, ``swarm delete`` removes one."""

from __future__ import annotations

import click

from distributor.admin.swarms import delete_swarm, find_swarms, prune_finished, summaries
from distributor.cli.app import EXIT_INVALID, EXIT_REFUSED, CliContext, CliError
from distributor.cli.output import emit, json_option, when
from distributor.store.keys import check_swarm


@click.command("swarms")
@json_option
@click.pass_obj
def swarms(obj: CliContext, as_json: bool) -> None:
    """List every swarm in this Redis with its progress, agents and last activity."""
    found = summaries(obj.queue.redis)
    emit(
        as_json,
        found,
        [
            "SWARM\tDONE\tTASKS\tAGENTS\tEVENTS\tLAST ACTIVITY",
            *(
                f"{s.name}\t{s.completion_pct}%\t{s.total}\t{s.agents}\t{s.events}\t"
                f"{when(s.last_activity)}"
                for s in found
            ),
        ],
    )


@click.group("swarm")
def swarm_group() -> None:
    """Manage one whole swarm."""


@swarm_group.command("delete")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Really delete: every task, event, agent and message.")
@json_option
@click.pass_obj
def delete(obj: CliContext, name: str, yes: bool, as_json: bool) -> None:
    """Delete swarm NAME: all its keys and its pending delivery jobs (stop its agents first)."""
    try:
        check_swarm(name)
    except ValueError as exc:
        raise CliError(str(exc), EXIT_INVALID) from None
    client = obj.queue.redis
    if name not in find_swarms(client):
        raise CliError(f"no swarm named {name!r} in this Redis", EXIT_REFUSED)
    if not yes:
        raise CliError(f"deleting swarm {name!r} cannot be undone: pass --yes", EXIT_INVALID)
    from distributor.messaging.broker import broker_client  # where its delivery jobs are

    result = delete_swarm(client, name, broker=broker_client(obj.settings, client))
    emit(
        as_json,
        result,
        f"deleted swarm {name}: {result.keys} key(s), {result.jobs} delivery job(s)",
    )


@swarm_group.command("prune")
@click.option(
    "--older-than",
    type=click.FloatRange(min=0),
    help="Seconds a finished swarm must be quiet [default: SWARMQUEUE_FINISHED_TTL].",
)
@json_option
@click.pass_obj
def prune(obj: CliContext, older_than: float | None, as_json: bool) -> None:
    """Delete every swarm that reached 100% and saw no event for a while (see retention)."""
    if older_than is None:
        older_than = obj.settings.finished_ttl
    if older_than is None:
        raise CliError("pass --older-than SECONDS or set SWARMQUEUE_FINISHED_TTL", EXIT_INVALID)
    pruned = prune_finished(obj.queue.redis, older_than)
    emit(
        as_json,
        pruned,
        [f"deleted finished swarm {d.swarm}: {d.keys} key(s)" for d in pruned]
        or "no finished swarm to delete",
    )


COMMANDS = [swarms, swarm_group]
