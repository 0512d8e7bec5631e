#!/usr/bin/env python3
"""Measure messaging: how fast ``broadcast()`` returns, and how fast one job types into N panes.

Usage: .venv/bin/python scripts/bench.py [--redis-url URL] [--broadcasts 2000] [--panes 50,100]

Uses a throwaway swarm and host name, a private tmux server (``tmux -S``) whose panes run
``cat`` into /dev/null, and deletes every key it created. Numbers are reported, not asserted.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from distributor.agents import AgentRegistry
from distributor.messages import Messenger
from distributor.settings import Settings
from distributor.testing import delete_swarm
from tests.messaging_support import delete_rq_keys
from workers.delivery import deliver_message


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def bench_broadcast(client: redis.Redis, count: int) -> None:
    swarm, host = f"bench-{uuid.uuid4().hex[:8]}", f"bench-{uuid.uuid4().hex[:8]}"
    settings = Settings(swarm=swarm, host=host, rate_limit_per_minute=count + 10)
    messenger = Messenger(client, swarm, settings=settings)
    AgentRegistry(client, swarm, settings=settings).register("a", "%1")
    try:
        messenger.broadcast("warm-up", sender="bench")
        times = []
        for i in range(count):
            start = time.perf_counter()
            messenger.broadcast(f"message {i}", sender="bench")
            times.append((time.perf_counter() - start) * 1000)
        print(
            f"broadcast() returns: p50 {statistics.median(times):.3f} ms, "
            f"p99 {percentile(times, 99):.3f} ms over {count} calls (goal p99 < 2 ms)"
        )
    finally:
        delete_swarm(messenger)  # type: ignore[arg-type]
        delete_rq_keys(client, host)


def bench_delivery(client: redis.Redis, panes: int, runs: int = 5) -> None:
    swarm, host = f"bench-{uuid.uuid4().hex[:8]}", f"bench-{uuid.uuid4().hex[:8]}"
    settings = Settings(swarm=swarm, host=host, rate_limit_per_minute=1000)
    socket = f"{tempfile.gettempdir()}/sq-bench-{uuid.uuid4().hex[:8]}.sock"
    tmux = ["tmux", "-S", socket]
    registry = AgentRegistry(client, swarm, settings=settings)
    messenger = Messenger(client, swarm, settings=settings)
    try:
        first = subprocess.run(
            [*tmux, "new-session", "-d", "-P", "-F", "#{pane_id}", "cat > /dev/null"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        ids = [first]
        for _ in range(panes - 1):
            ids.append(
                subprocess.run(
                    [*tmux, "new-window", "-d", "-P", "-F", "#{pane_id}", "cat > /dev/null"],
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout.strip()
            )
        for i, pane in enumerate(ids):
            registry.register(f"agent-{i}", pane, socket=socket)
        times = []
        for r in range(runs):
            message_id = messenger.broadcast(f"run {r}: " + "lorem ipsum " * 20, sender="bench")
            start = time.perf_counter()
            report = deliver_message(client, swarm, message_id, host, settings=settings)
            times.append((time.perf_counter() - start) * 1000)
            assert report.delivered == panes, report
        print(
            f"one job delivers to {panes} panes: median {statistics.median(times):.1f} ms, "
            f"max {max(times):.1f} ms over {runs} runs (goal: 100 panes < 100 ms)"
        )
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True, check=False)
        Path(socket).unlink(missing_ok=True)
        delete_swarm(messenger)  # type: ignore[arg-type]
        delete_rq_keys(client, host)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--broadcasts", type=int, default=2000)
    parser.add_argument("--panes", default="50,100")
    args = parser.parse_args()
    from distributor.log import configure_logging

    configure_logging("WARNING")
    client = redis.Redis.from_url(args.redis_url)
    bench_broadcast(client, args.broadcasts)
    for n in (int(x) for x in args.panes.split(",")):
        bench_delivery(client, n)


if __name__ == "__main__":
    main()
