"""``swarmqueue add``: work discovered at runtime, added to the live swarm in one atomic step."""

from __future__ import annotations

import click

from distributor.cli.app import CliContext
from distributor.cli.output import emit, json_option
from distributor.cli.tasks import pending, request_option, shown_status
from distributor.tasks.models import Task


def _ids(values: tuple[str, ...]) -> list[str]:
    """Ids given as repeated options and/or comma-separated (task ids have no commas)."""
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def added_lines(task: Task, blocks: str | None) -> list[str]:
    lines = [f"added {task.id} ({shown_status(task)}): {task.title}"]
    if task.dependencies:
        unmet = f" (unmet: {', '.join(task.unmet_dependencies)})" if task.unmet_dependencies else ""
        lines.append(f"  depends on: {', '.join(task.dependencies)}{unmet}")
    if blocks:
        lines.append(f"  blocks: {blocks} (it now waits for {task.id})")
    if task.discovered_from:
        lines.append(f"  discovered from: {task.discovered_from}")
    if task.related:
        lines.append(f"  related: {', '.join(task.related)}")
    return lines


@click.command("add")
@click.option("--title", required=True, help="What to do (one line, at most 200 characters).")
@click.option("--id", "task_id", help="The new task's id (default: task-<n>, made by Redis).")
@click.option("--description", default="", help="Details (at most 10,000 characters).")
@click.option("--files", "--file", "files", multiple=True, help="A file it touches (repeat).")
@click.option("--priority", type=int, default=0, show_default=True, help="-1000 to 1000.")
@click.option("--estimated-minutes", type=int, help="How long it should take.")
@click.option("--max-attempts", type=int, default=3, show_default=True)
@click.option("--lease", "lease_seconds", type=float, help="Its claims' lease in seconds.")
@click.option(
    "--depends-on",
    multiple=True,
    help="A task it waits for (repeat or comma-separate; completed ones count as met).",
)
@click.option(
    "--blocks",
    help="A task not yet claimed that must wait for this one (it becomes blocked).",
)
@click.option("--discovered-from", help="The task whose work turned this one up (soft link).")
@click.option("--related", multiple=True, help="A related task (soft link; repeat).")
@click.option("--agent", "agent_id", help="Who adds it (recorded in the event).")
@request_option
@json_option
@click.pass_obj
def add(
    obj: CliContext,
    title: str,
    task_id: str | None,
    description: str,
    files: tuple[str, ...],
    priority: int,
    estimated_minutes: int | None,
    max_attempts: int,
    lease_seconds: float | None,
    depends_on: tuple[str, ...],
    blocks: str | None,
    discovered_from: str | None,
    related: tuple[str, ...],
    agent_id: str | None,
    request_id: str | None,
    as_json: bool,
) -> None:
    """Add a task to the live swarm, atomically; prints its id and where it stands.

    Refused with nothing written: an unknown task named (exit 1), a --blocks task already
    claimed, in progress or completed (exit 1), a cycle through the swarm (exit 1), a bad
    field or a task that depends on or blocks itself (exit 2).
    """
    deps, links = _ids(depends_on), _ids(related)
    request: tuple[object, ...] = (title, task_id, description, files, priority)
    request += (estimated_minutes, max_attempts, lease_seconds, deps, blocks)
    request += (discovered_from, links, agent_id)
    with pending(obj, None, request_id, "add", *request) as rid:  # a re-run after exit 3 replays
        task = obj.queue.add_task(
            title,
            task_id=task_id,
            description=description,
            files=files,
            priority=priority,
            estimated_minutes=estimated_minutes,
            max_attempts=max_attempts,
            lease_seconds=lease_seconds,
            depends_on=deps,
            blocks=blocks,
            discovered_from=discovered_from,
            related=links,
            agent_id=agent_id,
            request_id=rid,
        )
    emit(as_json, task, added_lines(task, blocks))


COMMANDS = [add]
