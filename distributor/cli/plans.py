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
from distributor.tasks.models import Task
from distributor.tasks.queries import Layer
from distributor.tasks.specs import Plan
from distributor.tasks.status import TaskStatus

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


def _announce_submitted(obj: CliContext, ids: list[str], plan: Any = None) -> None:
    """Announce the plan's available tasks. A task with a dependency inside the plan cannot
    be available yet, so only the others are read (a few of a big plan, not all of it)."""
    candidates = ids
    if isinstance(plan, dict):
        deps = {str(t["id"]): t.get("dependencies") or [] for t in plan["tasks"]}
        candidates = [i for i in ids if not any(d in deps for d in deps.get(i, []))]
    found = obj.queue.get_many(candidates)
    obj.announcer.plan_submitted([t for t in found if t.status == TaskStatus.AVAILABLE], len(ids))


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
    _announce_submitted(obj, ids, plan)
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


SUMMARY_OVER = 200  # tasks: a larger graph is summarised by layer unless --full
FIRST_OF_LAYER = 5  # tasks shown in full per layer of a summary


@plan_group.command("show")
@click.option("--full", is_flag=True, help="Show every task, however large the graph.")
@click.option("--summary", is_flag=True, help="Summarise by layer, however small the graph.")
@json_option
@click.pass_obj
def show(obj: CliContext, full: bool, summary: bool, as_json: bool) -> None:
    """Show the swarm's tasks in dependency layers, with status and agent.

    A graph of more than 200 tasks is summarised: counts per status for the swarm and for
    each layer, and each layer's first 5 tasks (--full shows every task; --summary
    summarises any graph). --json of the full view: a list of layers, each a list of tasks
    with their file_states; of the summary: {"total", "counts", "waiting_on_reservations",
    "layers": [{"layer", "total", "counts", "tasks", "more"}]} (counts: every status).
    """
    if full and summary:
        raise CliError("--full and --summary exclude each other", EXIT_INVALID)
    layers = None if full else obj.queue.layers(FIRST_OF_LAYER)
    if layers is None and not full:  # a task stored without its layer: layer the graph here
        layers = outline_summary(obj.queue.outline())
    if layers is None or (not summary and sum(la.total for la in layers) <= SUMMARY_OVER):
        _show_full(obj, as_json)
        return
    _show_summary(obj, layers, as_json)


def _task_lines(t: Task, holdings: Holdings) -> tuple[list[str], dict[str, object]]:
    """A task's lines in ``plan show`` (with its files) and its JSON."""
    who = f" by {t.agent_id}" if t.agent_id else ""
    after = f" after {', '.join(t.dependencies)}" if t.dependencies else ""
    lines = [f"  [{shown_status(t)}{who}] {t.id}: {t.title}{after}{soft_links(t)}"]
    states = file_states(holdings, t)
    lines += [f"      {line}" for line in file_lines(t, states)]
    return lines, {**t.model_dump(mode="json"), "file_states": states_json(states)}


def _show_full(obj: CliContext, as_json: bool) -> None:
    tasks = obj.queue.tasks()
    holdings = Holdings(obj.queue.reservations())
    lines: list[str] = []
    shown: list[list[dict[str, object]]] = []
    for depth, layer in enumerate(dependency_layers(tasks)):
        lines.append(f"layer {depth}:")
        shown.append([])
        for t in layer:
            task_lines, data = _task_lines(t, holdings)
            lines += task_lines
            shown[-1].append(data)
    emit(as_json, shown, lines)


def _counted(counts: dict[str, int]) -> dict[str, int]:
    """``counts`` with every status, in the order of :class:`TaskStatus`."""
    return {s.value: counts.get(s.value, 0) for s in TaskStatus}


def _show_summary(obj: CliContext, layers: list[Layer], as_json: bool) -> None:
    """Counts per status and layer, and each layer's first tasks in full."""
    first = [task_id for layer in layers for task_id in layer.first]
    loaded = {t.id: t for t in obj.queue.get_many(first)}
    live = obj.queue.reservations()
    holdings = Holdings(live)
    held = len(obj.queue.held_up(live))
    totals: dict[str, int] = {}
    for layer in layers:
        for name, n in layer.counts.items():
            totals[name] = totals.get(name, 0) + n
    counts = _counted(totals)
    total = sum(counts.values())
    lines = [
        f"{total} tasks in {len(layers)} layer(s) (summary; --full shows every task)",
        "  " + ", ".join(f"{s} {n}" for s, n in counts.items()),
    ]
    if held:
        lines.append(f"  {held} available task(s) wait only on reserved files")
    data_layers: list[dict[str, object]] = []
    for layer in layers:
        layer_counts = _counted(layer.counts)
        nonzero = ", ".join(f"{s} {n}" for s, n in layer_counts.items() if n)
        lines.append(f"layer {layer.depth}: {layer.total} task(s) ({nonzero})")
        shown = []
        for task_id in layer.first:
            if task_id in loaded:
                task_lines, data = _task_lines(loaded[task_id], holdings)
                lines += task_lines
                shown.append(data)
        more = layer.total - len(shown)
        if more:
            lines.append(f"  ... {more} more")
        data_layers.append(
            {"layer": layer.depth, "total": layer.total, "counts": layer_counts, "tasks": shown,
             "more": more}
        )  # fmt: skip
    data = {"total": total, "counts": counts, "waiting_on_reservations": held,
            "layers": data_layers}  # fmt: skip
    emit(as_json, data, lines)


def outline_summary(shape: list[tuple[str, str, list[str]]]) -> list[Layer]:
    """What :meth:`TaskQueue.layers` says, from the whole graph (a swarm with tasks stored
    without their layer, by an older version)."""
    status_of = {task_id: status for task_id, status, _ in shape}
    summary = []
    for depth, ids in enumerate(outline_layers(shape)):
        layer = Layer(depth, first=ids[:FIRST_OF_LAYER])
        for task_id in ids:
            status = status_of[task_id]
            layer.counts[status] = layer.counts.get(status, 0) + 1
        summary.append(layer)
    return summary


def outline_layers(shape: list[tuple[str, str, list[str]]]) -> list[list[str]]:
    """Task ids grouped by depth, as :func:`dependency_layers` groups tasks (submission order
    within a layer; dependencies outside the listing do not count)."""
    deps = {task_id: d for task_id, _, d in shape}
    depth: dict[str, int] = {}
    late: list[str] = []
    for task_id, needs in deps.items():  # one pass: dependencies usually come first
        deepest = -1
        for d in needs:
            if d in deps:
                known = depth.get(d)
                if known is None:
                    late.append(task_id)
                    break
                deepest = max(deepest, known)
        else:
            depth[task_id] = deepest + 1
    for root in late:
        stack = [root]
        while stack:  # depth-first without recursion: chains may be long
            node = stack[-1]
            if node in depth:
                stack.pop()
                continue
            pending = [d for d in deps[node] if d in deps and d not in depth]
            if pending:
                stack += pending
                continue
            stack.pop()
            depth[node] = 1 + max((depth[d] for d in deps[node] if d in deps), default=-1)
    layers: list[list[str]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for task_id in deps:
        layers[depth[task_id]].append(task_id)
    return layers


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
