"""Completions over time as a small inline SVG: bars per time slot, a line for the running total.

Drawn on the server from the swarm's recent events (numbers only, so nothing an agent wrote
reaches the drawing).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

WIDTH, HEIGHT, SLOTS = 600, 90, 40
MIN_SPAN_SECONDS = 30.0  # a burst of a few seconds is drawn on half a minute, not stretched


@dataclass
class Chart:
    """Bars (x, y, width, height), the running-total polyline, and what the axis says."""

    bars: list[tuple[float, float, float, float]]
    line: str
    start: datetime | None
    end: datetime | None
    total: int
    peak_per_minute: float
    width: int = WIDTH
    height: int = HEIGHT


def completions_chart(times: Sequence[datetime], slots: int = SLOTS) -> Chart:
    """The chart of completion times ``times`` (any order)."""
    if not times:
        return Chart([], "", None, None, 0, 0.0)
    ordered = sorted(times)
    start, end = ordered[0], ordered[-1]
    span = max((end - start).total_seconds(), MIN_SPAN_SECONDS)
    counts = [0] * slots
    for t in ordered:
        counts[min(int((t - start).total_seconds() / span * slots), slots - 1)] += 1
    slot_w = WIDTH / slots
    top = max(counts)
    bars = [
        (i * slot_w + 1, HEIGHT - c / top * (HEIGHT - 10), slot_w - 2, c / top * (HEIGHT - 10))
        for i, c in enumerate(counts)
        if c
    ]
    running, points = 0, []
    for i, c in enumerate(counts):
        running += c
        y = HEIGHT - running / len(ordered) * (HEIGHT - 4)
        points.append(f"{(i + 1) * slot_w:.1f},{y:.1f}")
    per_minute = top / (span / slots) * 60
    return Chart(bars, f"0,{HEIGHT} " + " ".join(points), start, end, len(ordered), per_minute)
