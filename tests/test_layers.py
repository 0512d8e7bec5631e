"""The package's layers hold: no import cycle, and no layer imports one above it.

Every ``import`` in ``distributor/`` and ``workers/`` counts, also the ones inside functions and
under ``TYPE_CHECKING``: a lazy import is still a dependency, and a cycle through annotations is
still a cycle a reader has to untangle.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Lowest first; a module may import its own layer and the layers below it.
LAYERS = (
    "distributor.errors",
    "distributor.log",
    "distributor.records",  # the reply records' base (no pydantic)
    "distributor.validation",  # pydantic's errors as ours
    "distributor.settings_base",  # the typed settings machinery, below the settings
    "distributor.settings",
    "distributor.store",
    "distributor.tasks.ids",  # the id rules (no pydantic), shared with the reservations
    "distributor.reservations",
    "distributor.tasks",
    "distributor.messaging",
    "distributor.planning",
    "distributor.compat",  # the predecessor's API (claude-swarm), on planning
    "distributor.admin",
    "workers",
    "distributor.testing",
    "distributor.dashboard",
    "distributor.mcp",
    "distributor.cli",
    "distributor.demo",
    "distributor",  # the package's own __init__: the public API, lazily imported
)


def modules() -> dict[str, Path]:
    found = {}
    for package in ("distributor", "workers"):
        for path in (ROOT / package).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def import_graph() -> dict[str, set[str]]:
    """Each module and the project modules it imports (anywhere in its file)."""
    mods = modules()

    def resolve(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for name, path in mods.items():
        targets: set[str | None] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets.update(resolve(alias.name) for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets.update(resolve(f"{node.module}.{alias.name}") for alias in node.names)
        graph[name] = {t for t in targets if t and t != name}
    return graph


def layer(module: str) -> int:
    """Index in ``LAYERS`` of the longest layer name that ``module`` is or lies under."""
    matches = [
        (len(name), i)
        for i, name in enumerate(LAYERS)
        if module == name or module.startswith(name + ".")
    ]
    assert matches, f"{module} is in no layer: add it to LAYERS"
    return max(matches)[1]


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles() -> None:
    assert cycles(import_graph()) == []


def test_no_layer_imports_a_higher_one() -> None:
    upward = [
        f"{source} ({LAYERS[layer(source)]}) imports {target} ({LAYERS[layer(target)]})"
        for source, targets in sorted(import_graph().items())
        for target in sorted(targets)
        if layer(target) > layer(source)
    ]
    assert upward == []


def test_the_checks_see_a_cycle_and_an_upward_import() -> None:
    """The two checks above are not vacuous."""
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [["a", "b", "c"]]
    assert layer("distributor.store.keys") < layer("distributor.tasks.queue")
    assert layer("distributor.cli.app") > layer("workers.worker") > layer("distributor.messaging")
    graph = import_graph()
    assert "distributor.store.calls" in graph["distributor.tasks.queue"]
    assert "workers.tmux" in graph["distributor.cli.agents"]  # a lazy or top import, counted
