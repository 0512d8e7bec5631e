"""Broadcast figures: how fast ``broadcast()`` returns, and how fast one delivery job types a
message into 50 or 100 tmux panes.

Panes live on a private tmux server (``tmux -L <unique>``) and run ``cat > /dev/null``; the
server is killed afterwards. The delivery job body (``workers.delivery.deliver_message``) is
called directly, as the RQ worker would, and must report every pane ``delivered``.
"""

from __future__ import annotations

import statistics
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import redis

from distributor.messaging.agents import AgentRegistry
from distributor.messaging.jobs import delivery_queue
from distributor.messaging.messages import Messenger
from distributor.settings import Settings
from distributor.testing import delete_swarm
from workers.delivery import deliver_message

# exec: the pane's foreground program is cat, which may receive messages, not the shell running it
PANE_COMMAND = "exec cat > /dev/null"


@dataclass(frozen=True)
class Latency:
    """Milliseconds: median and 99th percentile (or max, for few samples) over ``samples``."""

    samples: int
    p50_ms: float
    p99_ms: float


def latency(seconds: list[float]) -> Latency:
    ordered = sorted(seconds)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return Latency(len(ordered), statistics.median(ordered) * 1000, p99 * 1000)


class _Swarm:
    """A throwaway swarm and host with a registry and a messenger allowing ``rate`` messages."""

    def __init__(self, client: redis.Redis, rate: int) -> None:
        self.client = client
        self.swarm = f"bench-msg-{uuid.uuid4().hex[:8]}"
        self.host = f"bench-{uuid.uuid4().hex[:8]}"
        self.settings = Settings(swarm=self.swarm, host=self.host, rate_limit_per_minute=rate)
        self.registry = AgentRegistry(client, self.swarm, settings=self.settings)
        self.messenger = Messenger(client, self.swarm, settings=self.settings)

    def close(self) -> None:
        delete_swarm(self.messenger)  # type: ignore[arg-type]
        delivery_queue(self.host, self.client).delete(delete_jobs=True)


def broadcast_latency(client: redis.Redis, samples: int) -> Latency:
    """Time ``broadcast()`` to one registered agent, ``samples`` times (after one warm-up)."""
    swarm = _Swarm(client, rate=samples + 10)
    try:
        swarm.registry.register("agent-0", "%1")
        swarm.messenger.broadcast("warm-up", sender="bench")
        times = []
        for i in range(samples):
            start = time.perf_counter()
            swarm.messenger.broadcast(f"announcement {i}", sender="bench")
            times.append(time.perf_counter() - start)
        return latency(times)
    finally:
        swarm.close()


class PrivateTmux:
    """A private tmux server (``tmux -L``) with panes running ``cat > /dev/null``."""

    def __init__(self) -> None:
        self.name = f"sq-bench-{uuid.uuid4().hex[:10]}"
        self.panes: list[str] = []
        self.socket = ""

    def tmux(self, *args: str) -> str:
        done = subprocess.run(
            ["tmux", "-L", self.name, *args], capture_output=True, text=True, check=True
        )
        return done.stdout.strip()

    def spawn(self, count: int) -> None:
        for _ in range(count):
            if self.panes:
                args = ["new-window", "-d", "-P", "-F", "#{pane_id}"]
            else:
                args = ["new-session", "-d", "-x", "200", "-y", "50", "-P", "-F", "#{pane_id}"]
            self.panes.append(self.tmux(*args, PANE_COMMAND))
        self.socket = self.tmux("display-message", "-p", "#{socket_path}")
        deadline = time.monotonic() + 10
        while set(self.tmux("list-panes", "-a", "-F", "#{pane_current_command}").split()) - {"cat"}:
            if time.monotonic() > deadline:
                raise RuntimeError("tmux panes did not start cat")
            time.sleep(0.02)

    def kill(self) -> None:
        subprocess.run(["tmux", "-L", self.name, "kill-server"], capture_output=True, check=False)
        if self.socket:  # tmux 3.3 leaves the socket file of a killed server behind
            Path(self.socket).unlink(missing_ok=True)


@dataclass(frozen=True)
class PaneDelivery:
    """One job's time to type a message into ``panes`` panes, and the fewest it delivered."""

    panes: int
    latency: Latency
    delivered: int


def pane_delivery(client: redis.Redis, sizes: list[int], runs: int) -> list[PaneDelivery]:
    """Per number of panes: the time of one delivery job to that many panes, over ``runs``."""
    swarm = _Swarm(client, rate=len(sizes) * runs + 10)
    tmux = PrivateTmux()
    try:
        tmux.spawn(max(sizes))
        agents = [f"agent-{i}" for i in range(len(tmux.panes))]
        for agent, pane in zip(agents, tmux.panes, strict=True):
            swarm.registry.register(agent, pane, socket=tmux.socket)
        out = []
        for size in sizes:
            times = []
            delivered = size
            for run in range(runs):
                message_id = swarm.messenger.broadcast(
                    f"run {run}: the schema task is done", sender="bench", recipients=agents[:size]
                )
                start = time.perf_counter()
                report = deliver_message(
                    client, swarm.swarm, message_id, swarm.host, settings=swarm.settings
                )
                times.append(time.perf_counter() - start)
                delivered = min(delivered, report.delivered)
            out.append(PaneDelivery(size, latency(times), delivered))
        return out
    finally:
        tmux.kill()
        swarm.close()
