"""Who holds what: live reservations filed by path, as the Lua index files them.

One :class:`Holdings` answers "which reservations of other agents conflict with this pattern?"
for many patterns (``plan show``, ``status``, the commit guard) without comparing each with
every reservation: a pattern can only overlap reservations filed at its own node, at a
directory above it, or under it (``lua/include/reservations.lua`` explains why).
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING

from distributor.reservations.patterns import Pattern, ancestors, overlap, parse

if TYPE_CHECKING:  # only read here; the CLI imports this module before (or without) the models
    from distributor.reservations.models import Reservation


class Holdings:
    """An index of live reservations by path."""

    def __init__(self, reservations: list[Reservation]) -> None:
        self.reservations = reservations
        self._at: dict[str, list[tuple[Reservation, Pattern]]] = defaultdict(list)
        self._sub: dict[str, list[tuple[Reservation, Pattern]]] = defaultdict(list)
        for r in reservations:
            p = r.parsed
            self._at[p.node].append((r, p))
            for a in ancestors(p.node):
                self._sub[a].append((r, p))

    def conflicts(
        self,
        pattern: str | Pattern,
        agent_id: str | None,
        shared: bool = False,
        task_id: str | None = None,
    ) -> list[Reservation]:
        """Reservations of agents other than ``agent_id`` (``None``: of every agent) that keep
        ``pattern`` from being taken (``shared``: only their exclusive ones); those of
        ``task_id`` itself do not count."""
        p = pattern if isinstance(pattern, Pattern) else parse(pattern)
        found: dict[str, Reservation] = {}
        for node_list in (
            self._at.get(p.node, []),
            self._sub.get(p.node, []),
            *(self._at.get(a, []) for a in ancestors(p.node)),
        ):
            for r, rp in node_list:
                if r.agent_id == agent_id or (task_id and r.task_id == task_id):
                    continue
                if shared and r.shared:
                    continue
                if r.id not in found and overlap(p, rp):
                    found[r.id] = r
        return list(found.values())


def file_states(
    holdings: Holdings,
    files: list[str],
    shared_files: list[str],
    agent_id: str | None = None,
    task_id: str | None = None,
) -> list[tuple[str, bool, list[Reservation]]]:
    """Each of a task's files: (pattern, shared, the reservations that keep it) for
    ``agent_id`` (``None``: for any agent but the holders); an empty list means free."""
    return [
        (f, shared, holdings.conflicts(f, agent_id, shared, task_id))
        for f, shared in [*((f, False) for f in files), *((f, True) for f in shared_files)]
    ]
