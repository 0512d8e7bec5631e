"""The benchmark's task graph: layers of ``width`` tasks, each depending on one of the layer before.

Task ``i`` (layer ``i // width``, column ``i % width``) depends on task ``i - width``, the task of
the same column one layer up, so every task has at most one dependency and one dependent: the
graph is ``width`` chains, which BullMQ's flows (trees) can express as well.
"""

from __future__ import annotations

from typing import Any

PLAN_LIMIT = 10_000  # tasks per submitted plan (distributor.tasks.models.MAX_PLAN_TASKS)


def task_id(i: int) -> str:
    return f"t{i}"


def parent(i: int, width: int) -> int | None:
    """The index of task ``i``'s dependency, or ``None`` in the first layer."""
    return i - width if i >= width else None


def column_files(column: int, files: int) -> list[str]:
    """The files a column's tasks reserve (3 path levels); the next task of the column takes
    them once the one before completed, and no two columns share one."""
    return [f"c{column}/m{k}/f{k}.py" for k in range(files)]


def plans(count: int, width: int, offset: int = 0, files: int = 0) -> list[list[dict[str, Any]]]:
    """The graph as swarmqueue plans of at most :data:`PLAN_LIMIT` tasks, in submission order
    (each task reserving ``files`` files of its column when claimed)."""
    tasks = []
    for i in range(count):
        dep = parent(i, width)
        deps = [] if dep is None else [task_id(offset + dep)]
        task: dict[str, Any] = {"id": task_id(offset + i), "title": "noop", "dependencies": deps}
        if files:
            task["files"] = column_files(i % width, files)
        tasks.append(task)
    return [tasks[s : s + PLAN_LIMIT] for s in range(0, count, PLAN_LIMIT)]


def chains(count: int, width: int) -> list[list[int]]:
    """Each column's task indexes, first layer first."""
    return [list(range(col, count, width)) for col in range(min(width, count))]
