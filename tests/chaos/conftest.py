"""Fixtures of the chaos suite: each scenario's numbers, printed at the end of the session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.chaos.harness import ScenarioStats, chaos_seed

_LINES: list[str] = []


@pytest.fixture
def chaos_stats(request: pytest.FixtureRequest) -> Iterator[ScenarioStats]:
    """The scenario's numbers (kills, drops, tasks, messages, violations), filled in by the
    test and printed in the session's ``chaos`` summary, also when the test failed."""
    stats = ScenarioStats(request.node.name, seed=chaos_seed())
    yield stats
    _LINES.append(stats.line())


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _LINES:
        terminalreporter.section("chaos")
        for line in _LINES:
            terminalreporter.write_line(line)
