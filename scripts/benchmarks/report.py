"""The benchmark's output: tables of figures and ratios, and the goals each marked met or missed."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal


@dataclass
class Table:
    """One section: a title, column headers and rows of already formatted cells."""

    title: str
    headers: list[str]
    rows: list[list[str]] = field(default_factory=list)

    def render(self) -> str:
        widths = [max(len(h), *(len(r[i]) for r in self.rows)) for i, h in enumerate(self.headers)]
        lines = [self.title]
        lines.append(
            "  " + "  ".join(h.ljust(w) for h, w in zip(self.headers, widths, strict=True))
        )
        lines.append("  " + "  ".join("-" * w for w in widths))
        for row in self.rows:
            cells = [
                c.rjust(w) if i else c.ljust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            ]
            lines.append("  " + "  ".join(cells))
        return "\n".join(lines)


@dataclass(frozen=True)
class Goal:
    """A target checked from the output: ``measured`` compared with ``target`` by ``op``."""

    name: str
    measured: float | None  # None: not measured (say why in ``note``)
    op: Literal[">=", "<=", "<"]
    target: float
    unit: str
    note: str = ""

    @property
    def met(self) -> bool | None:
        if self.measured is None:
            return None
        if self.op == ">=":
            return self.measured >= self.target
        if self.op == "<=":
            return self.measured <= self.target
        return self.measured < self.target

    def render(self) -> str:
        status = {True: "MET", False: "MISSED", None: "NOT MEASURED"}[self.met]
        shown = "-" if self.measured is None else f"{self.measured:,.2f}"
        note = f"  ({self.note})" if self.note else ""
        return f"  [{status}] {self.name}: {shown} {self.op} {self.target:g} {self.unit}{note}"


@dataclass
class Report:
    """Everything one run measured."""

    context: dict[str, Any]
    tables: list[Table] = field(default_factory=list)
    goals: list[Goal] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)  # raw numbers and counts, for --json

    def render(self) -> str:
        blocks = ["\n".join(f"{k}: {v}" for k, v in self.context.items())]
        blocks += [t.render() for t in self.tables]
        if self.goals:
            blocks.append("\n".join(["Goals", *(g.render() for g in self.goals)]))
        return "\n\n".join(blocks)

    def to_json(self) -> dict[str, Any]:
        return {
            "context": self.context,
            "figures": self.figures,
            "tables": [asdict(t) for t in self.tables],
            "goals": [{**asdict(g), "met": g.met} for g in self.goals],
        }


def ratio(a: float | None, b: float | None) -> str:
    return "-" if not a or not b else f"{a / b:.2f}x"


def number(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"
