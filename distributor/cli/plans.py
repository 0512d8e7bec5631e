"""``swarmqueue plan ...``: submit a plan of tasks from a JSON or YAML file."""

from __future__ import annotations

import graphlib
import json
import sys
from pathlib import Path
from typing import Any

import click
import yaml

from distributor.cli.app import EXIT_INVALID, CliContext, CliError
from distributor.cli.output import emit, json_option
from distributor.cli.tasks import file_lines, file_states, pending, shown_status, states_json
from distributor.planning.decompose import decompose
from distributor.reservations.index import Holdings
from distributor.tasks.models import Plan, Task, TaskStatus

MAX_PLAN_FILE_BYTES = 64 * 1024 * 1024


@click.group("plan")
def plan_group() -> None:
    """Submit and inspect plans (sets of tasks with dependencies)."""


def parse_file(path: str) -> Any:
    """The parsed content of a JSON or YAML file ('-' reads stdin)."""
    try:
        if path == "-":
            raw = sys.stdin.read(MAX_PLAN_FILE_BYTES + 1)
            if len(raw) > MAX_PLAN_FILE_BYTES:
                raise CliError(f"stdin: larger than {MAX_PLAN_FILE_BYTES} bytes", EXIT_INVALID)
        else:
            file = Path(path)
            if file.stat().st_size > MAX_PLAN_FILE_BYTES:
                raise CliError(f"{path}: larger than {MAX_PLAN_FILE_BYTES} bytes", EXIT_INVALID)
            raw = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"cannot read {path}: {exc}", EXIT_INVALID) from None
    try:
        data = json.loads(raw) if raw.lstrip().startswith(("{", "[")) else yaml.safe_load(raw)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise CliError(
            f"{path}: not valid JSON or YAML ({exc})".replace("\n", " "), EXIT_INVALID
        ) from None
    return data


def read_plan_file(path: str) -> Any:
    """A plan file: JSON or YAML with a top-level ``tasks`` list."""
    data = parse_file(path)
    if not isinstance(data, dict) or not isinstance(data.get("tasks"), list):
        raise CliError(f"{path}: expected a top-level 'tasks' list", EXIT_INVALID)
    return data


def _announce_submitted(obj: CliContext, ids: list[str]) -> None:
    available = [t for t in obj.queue.get_many(ids) if t.status == TaskStatus.AVAILABLE]
    obj.announcer.plan_submitted(available, len(ids))


@plan_group.command("submit")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@click.option(
    "--request-id",
    help="Idempotency key: the same plan resubmitted with it changes nothing; another plan "
    "with it is refused (exit 2). Default: one kept here until Redis answers, so re-running "
    "the same submit after exit 3 replays its outcome.",
)
@json_option
@click.pass_obj
def submit(obj: CliContext, file: str, request_id: str | None, as_json: bool) -> None:
    """Submit FILE (JSON or YAML with a top-level `tasks` list), all or nothing."""
    plan = read_plan_file(file)
    with pending(obj, None, request_id, "submit", plan) as rid:  # a re-run after exit 3 replays
        ids = obj.queue.submit(plan, request_id=rid)
    _announce_submitted(obj, ids)
    shown = ", ".join(ids[:20]) + (" ..." if len(ids) > 20 else "")
    emit(as_json, {"submitted": ids}, f"submitted {len(ids)} task(s): {shown}")


@plan_group.command("feature")
@click.argument("description")
@click.option(
    "--research",
    type=click.Path(dir_okay=False),
    help="JSON or YAML research results; their best practices steer the choices.",
)
@click.option("--dry-run", is_flag=True, help="Print the tasks without submitting them.")
@json_option
@click.pass_obj
def feature(
    obj: CliContext, description: str, research: str | None, dry_run: bool, as_json: bool
) -> None:
    """Break a feature DESCRIPTION into tasks with dependencies and submit them."""
    research_results = read_research_file(research) if research else None
    tasks = decompose(description, research_results)
    if not dry_run:
        obj.queue.submit(Plan(tasks=tasks))
        _announce_submitted(obj, [t.id for t in tasks])
    lines = [f"{'planned' if dry_run else 'submitted'} {len(tasks)} task(s):"]
    for t in tasks:
        after = f" (after {', '.join(t.dependencies)})" if t.dependencies else ""
        lines.append(f"  {t.id}\t{t.title}{after}")
    emit(as_json, tasks, lines)


@plan_group.command("show")
@json_option
@click.pass_obj
def show(obj: CliContext, as_json: bool) -> None:
    """Show the swarm's tasks in dependency layers, with status and agent."""
    tasks = obj.queue.tasks()
    layers = dependency_layers(tasks)
    holdings = Holdings(obj.queue.reservations())
    lines: list[str] = []
    shown: list[list[dict[str, object]]] = []
    for depth, layer in enumerate(layers):
        lines.append(f"layer {depth}:")
        shown.append([])
        for t in layer:
            who = f" by {t.agent_id}" if t.agent_id else ""
            after = f" after {', '.join(t.dependencies)}" if t.dependencies else ""
            links = soft_links(t)
            lines.append(f"  [{shown_status(t)}{who}] {t.id}: {t.title}{after}{links}")
            states = file_states(holdings, t)
            lines += [f"      {line}" for line in file_lines(t, states)]
            shown[-1].append({**t.model_dump(mode="json"), "file_states": states_json(states)})
    emit(as_json, shown, lines)


def soft_links(task: Task) -> str:
    """A task's soft links for a line of ``plan show`` ('' when it has none)."""
    parts = [f"discovered from {task.discovered_from}"] if task.discovered_from else []
    parts += [f"related {', '.join(task.related)}"] if task.related else []
    return f" ({'; '.join(parts)})" if parts else ""


def dependency_layers(tasks: list[Task]) -> list[list[Task]]:
    """Tasks grouped by depth: layer 0 has no dependency inside the list, layer n needs n-1."""
    by_id = {t.id: t for t in tasks}
    order = graphlib.TopologicalSorter(
        {t.id: [d for d in t.dependencies if d in by_id] for t in tasks}
    )
    depth: dict[str, int] = {}
    for task_id in order.static_order():  # the graph in Redis is acyclic
        deps = by_id[task_id].dependencies
        depth[task_id] = 1 + max((depth[d] for d in deps if d in by_id), default=-1)
    layers: list[list[Task]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for t in tasks:
        layers[depth[t.id]].append(t)
    return layers


def read_research_file(path: str) -> dict[str, Any]:
    """Research results from a JSON or YAML file (any mapping)."""
    data = parse_file(path)
    if not isinstance(data, dict):
        raise CliError(f"{path}: expected a mapping of research results", EXIT_INVALID)
    return data


COMMANDS = [plan_group]
