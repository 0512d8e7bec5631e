"""A swarm's DAG laid out in layers for an SVG drawing, small graphs task by task, large ones
collapsed to one box per layer.

A task's layer is the length of its longest chain of dependencies (roots are layer 0), so every
edge points to a later layer. Up to :data:`EXPANDED_MAX` tasks each task is a node and each
dependency an edge; above it each layer is one box with its tasks counted by status and one
edge per pair of connected layers, which keeps a 10,000-task page small and fast to draw.

Decorations come from outside as ``badges`` (task id -> short labels drawn on its node, or
summed per layer box): file reservations of a task are meant to arrive that way (see
:func:`distributor.dashboard.views.swarm_view`), without touching the layout.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from distributor.tasks.status import TaskStatus

EXPANDED_MAX = 300
NODE_W, NODE_H, COL_GAP, ROW_GAP, PAD = 160, 28, 50, 10, 10
BOX_W, BOX_H = 190, 54
STATUS_ORDER = tuple(s.value for s in TaskStatus)


@dataclass(frozen=True, slots=True)
class Item:
    """What the drawing needs of a task (a page of 10,000 reads only these fields)."""

    id: str
    title: str
    status: str
    dependencies: list[str]


@dataclass
class Node:
    """One task drawn as a box at (x, y)."""

    id: str
    title: str
    status: str
    layer: int
    x: int
    y: int
    badges: list[str] = field(default_factory=list)


@dataclass
class Edge:
    """A dependency drawn from the right side of ``src`` to the left side of ``dst``."""

    x1: int
    y1: int
    x2: int
    y2: int
    label: str = ""


@dataclass
class LayerBox:
    """One layer of a collapsed DAG: its tasks counted by status."""

    layer: int
    x: int
    y: int
    counts: dict[str, int]
    badges: int = 0

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass
class Drawing:
    """What the template draws: nodes and edges, or layer boxes, and the canvas size."""

    width: int
    height: int
    collapsed: bool
    layers_of: dict[str, int]
    nodes: list[Node] = field(default_factory=list)
    boxes: list[LayerBox] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)


def layers(tasks: Sequence[Item]) -> dict[str, int]:
    """Each task's layer: 0 without dependencies, else one more than its deepest dependency.

    Iterative (Kahn's order), so a chain of 10,000 tasks needs no recursion; a dependency that
    is not among ``tasks`` counts as done and adds no layer.
    """
    ids = {t.id for t in tasks}
    deps = {t.id: [d for d in t.dependencies if d in ids] for t in tasks}
    dependents: dict[str, list[str]] = {t.id: [] for t in tasks}
    waiting = {t: len(ds) for t, ds in deps.items()}
    for task_id, ds in deps.items():
        for d in ds:
            dependents[d].append(task_id)
    layer = {t: 0 for t, n in waiting.items() if n == 0}
    frontier = list(layer)
    while frontier:
        nxt = []
        for task_id in frontier:
            for child in dependents[task_id]:
                layer[child] = max(layer.get(child, 0), layer[task_id] + 1)
                waiting[child] -= 1
                if waiting[child] == 0:
                    nxt.append(child)
        frontier = nxt
    return layer  # a cycle cannot be submitted; its tasks would simply be left out


def draw(
    tasks: Sequence[Item],
    badges: Mapping[str, list[str]] | None = None,
    expanded_max: int = EXPANDED_MAX,
) -> Drawing:
    """The drawing of ``tasks``: expanded up to ``expanded_max`` tasks, else by layer."""
    badges = badges or {}
    layer_of = layers(tasks)
    if len(tasks) <= expanded_max:
        return _expanded(tasks, layer_of, badges)
    return _collapsed(tasks, layer_of, badges)


def _expanded(
    tasks: Sequence[Item], layer_of: dict[str, int], badges: Mapping[str, list[str]]
) -> Drawing:
    rows: Counter[int] = Counter()
    nodes: dict[str, Node] = {}
    row_of: dict[str, int] = {}
    by_layer: dict[int, list[Item]] = {}
    for t in tasks:
        if t.id in layer_of:
            by_layer.setdefault(layer_of[t.id], []).append(t)
    ordered: list[Item] = []
    for col in sorted(by_layer):  # each task near its dependencies: fewer crossing edges
        ranked = sorted(
            enumerate(by_layer[col]),
            key=lambda p: (_mean(row_of, p[1].dependencies, p[0]), p[0]),
        )
        for row, (_, t) in enumerate(ranked):
            row_of[t.id] = row
            ordered.append(t)
    for t in ordered:
        col = layer_of[t.id]
        x = PAD + col * (NODE_W + COL_GAP)
        y = PAD + rows[col] * (NODE_H + ROW_GAP)
        rows[col] += 1
        nodes[t.id] = Node(t.id, t.title, t.status, col, x, y, list(badges.get(t.id, [])))
    edges = [
        Edge(src.x + NODE_W, src.y + NODE_H // 2, dst.x, dst.y + NODE_H // 2)
        for t in tasks
        if (dst := nodes.get(t.id)) is not None
        for d in t.dependencies
        if (src := nodes.get(d)) is not None
    ]
    columns = max(layer_of.values(), default=-1) + 1
    tallest = max(rows.values(), default=0)
    return Drawing(
        width=max(2 * PAD + columns * (NODE_W + COL_GAP) - COL_GAP, 200),
        height=max(2 * PAD + tallest * (NODE_H + ROW_GAP) - ROW_GAP, 60),
        collapsed=False,
        layers_of=layer_of,
        nodes=list(nodes.values()),
        edges=edges,
    )


def _mean(row_of: dict[str, int], deps: list[str], default: int) -> float:
    """The mean row of the dependencies already placed (``default`` without any)."""
    rows = [row_of[d] for d in deps if d in row_of]
    return sum(rows) / len(rows) if rows else float(default)


def _collapsed(
    tasks: Sequence[Item], layer_of: dict[str, int], badges: Mapping[str, list[str]]
) -> Drawing:
    columns = max(layer_of.values(), default=-1) + 1
    per_row = 6
    boxes = []
    for col in range(columns):
        x = PAD + (col % per_row) * (BOX_W + COL_GAP)
        y = PAD + (col // per_row) * (BOX_H + COL_GAP)
        boxes.append(LayerBox(col, x, y, {s: 0 for s in STATUS_ORDER}))
    for t in tasks:
        if t.id in layer_of:
            box = boxes[layer_of[t.id]]
            box.counts[t.status] += 1
            box.badges += len(badges.get(t.id, []))
    links: Counter[tuple[int, int]] = Counter(
        (layer_of[d], layer_of[t.id])
        for t in tasks
        if t.id in layer_of
        for d in t.dependencies
        if d in layer_of
    )
    edges = []
    for (a, b), n in sorted(links.items()):
        src, dst = boxes[a], boxes[b]
        edges.append(
            Edge(src.x + BOX_W, src.y + BOX_H // 2, dst.x, dst.y + BOX_H // 2, f"{n}")
        )
    rows = (columns + per_row - 1) // per_row
    return Drawing(
        width=max(2 * PAD + min(columns, per_row) * (BOX_W + COL_GAP) - COL_GAP, 200),
        height=max(2 * PAD + rows * (BOX_H + COL_GAP) - COL_GAP, 60),
        collapsed=True,
        layers_of=layer_of,
        boxes=boxes,
        edges=edges,
    )
