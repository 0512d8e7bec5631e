"""``scripts/bench.py --quick --only cluster`` runs on its own loopback cluster and counts its
work right (``-m cluster``; its speed is never checked, only what it counted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "scripts" / "bench.py"
pytestmark = [pytest.mark.cluster, pytest.mark.timeout(300)]


def test_cluster_section_measures_lifecycle_wakeups_and_failover() -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--only", "cluster", "--json"],
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout)["figures"]["cluster"]
    assert figures["one_node"]["per_second"] > 0 and len(figures["one_node"]["nodes"]) == 1
    masters = figures["cluster"]["nodes"]
    assert figures["cluster"]["per_second"] > 0 and len(masters) == 3
    assert all(node["ops_per_second"] > 0 for node in masters)  # every master got swarms
    publish, sharded = figures["publish"]["PUBLISH"], figures["publish"]["SPUBLISH"]
    assert publish["other_nodes_bus_messages_per_message"] > 2  # to every node (4) outside
    assert sharded["other_nodes_bus_messages_per_message"] < 0.5  # the shard only
    for run in figures["failover"]:
        assert run["pause_seconds"] > 0
        assert run["completed_twice"] == 0  # request ids: a retried completion counts once
