"""Recovery figures: the time from a delivery worker's SIGKILL to its message's outcomes being
final, when a new worker takes over (goal: under 30 s).

A broadcast to ``panes`` panes of a private tmux server (``cat > /dev/null`` in each) is taken by
``swarmqueue worker`` A, which the product's test hook (``SWARMQUEUE_TEST_DELIVERY_PAUSE``, see
``workers/delivery.py``) stops at one point: ``start`` (taken from the queue, before its lease),
``typing`` (recorded ``typing``, nothing typed) or ``typed`` (typed, not recorded). A is
SIGKILLed; worker B starts either at once (``at once``: B waits for A's lease to run out) or
``later`` (after the lease time; what B's own start costs). Timed: kill -> every outcome final
(``delivered``: verified, typed again, or typed for the first time), and B's start -> final.
Workers run with the default lease and sweep settings (``--quick``: a 2 s lease, 0.5 s sweeps).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import redis

from benchmarks.broadcast import PrivateTmux
from distributor.demo.agent import cli_command
from distributor.messaging.agents import AgentRegistry
from distributor.messaging.jobs import delivery_queue
from distributor.messaging.messages import DeliveryStatus, Messenger
from distributor.settings import Settings
from distributor.store.keys import host_swarms_key
from distributor.testing import delete_swarm
from workers.delivery import PAUSE_ENV

QUICK_ENV = {"SWARMQUEUE_DELIVERY_LEASE_SECONDS": "2", "SWARMQUEUE_DELIVERY_SWEEP_SECONDS": "0.5"}
TIMEOUT = 120.0


@dataclass(frozen=True)
class Recovery:
    """One killed delivery: where the worker died, when B started, and the times measured."""

    point: str
    start: str  # "at once" or "later"
    panes: int
    kill_to_final_s: float
    start_to_final_s: float
    delivered: int


class _Worker:
    """``swarmqueue worker`` in its own process group, JSON logs in ``log``."""

    def __init__(self, url: str, host: str, log: Path, env: dict[str, str]) -> None:
        self.log = log
        full = {k: v for k, v in os.environ.items() if k != PAUSE_ENV}
        full |= {"SWARMQUEUE_REDIS_URL": url, "SWARMQUEUE_HOST": host}
        full |= {"SWARMQUEUE_LOG_FORMAT": "json", **env}
        with log.open("w") as err:
            self.proc = subprocess.Popen(
                [*cli_command(), "worker"],
                env=full,
                stdout=subprocess.DEVNULL,
                stderr=err,
                start_new_session=True,
            )

    def paused(self) -> bool:
        for line in self.log.read_text().splitlines():
            with contextlib.suppress(ValueError):
                if json.loads(line).get("event") == "delivery paused by a test hook":
                    return True
        if self.proc.poll() is not None:
            raise RuntimeError(f"worker exited: {self.log.read_text()[-2000:]}")
        return False

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()


def _wait(check: object, what: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise TimeoutError(f"recovery bench: timed out waiting for {what}")
        time.sleep(0.02)


def measure_recovery(url: str, panes: int, points: list[str], quick: bool) -> list[Recovery]:
    """Kill a worker at each of ``points``, with B started at once and later; the figures."""
    env = dict(QUICK_ENV) if quick else {}
    lease = float(env.get("SWARMQUEUE_DELIVERY_LEASE_SECONDS", Settings().delivery_lease_seconds))
    client = redis.Redis.from_url(url)
    tmux = PrivateTmux()
    host = f"bench-rec-{uuid.uuid4().hex[:8]}"
    swarm = f"bench-rec-{uuid.uuid4().hex[:8]}"
    settings = Settings(swarm=swarm, host=host, rate_limit_per_minute=1000, redis_url=url)
    messenger = Messenger(client, swarm, settings=settings)
    workers: list[_Worker] = []
    out = []
    try:
        tmux.spawn(panes)
        registry = AgentRegistry(client, swarm, settings=settings)
        for i, pane in enumerate(tmux.panes):
            registry.register(f"agent-{i}", pane, socket=tmux.socket)
        with tempfile.TemporaryDirectory(prefix="sq-bench-rec-") as tmp:
            for point in points:
                for start in ("at once", "later"):
                    a = _Worker(url, host, Path(tmp) / f"a-{len(workers)}.log", {
                        **env, PAUSE_ENV: point})  # fmt: skip
                    workers.append(a)
                    message_id = messenger.broadcast(f"killed at {point}", sender="bench")
                    _wait(a.paused, f"the worker to pause at {point}")
                    a.kill()
                    killed = time.monotonic()
                    if start == "later":
                        time.sleep(lease + 1)
                    b = _Worker(url, host, Path(tmp) / f"b-{len(workers)}.log", env)
                    workers.append(b)
                    started = time.monotonic()

                    def final(message_id: str = message_id) -> bool:
                        ds = messenger.get(message_id).deliveries
                        return all(d.status is DeliveryStatus.DELIVERED for d in ds)

                    _wait(final, f"the outcomes after a kill at {point}")
                    done = time.monotonic()
                    b.kill()  # SIGKILL too: its lease-free idle state leaves nothing behind
                    out.append(Recovery(point, start, panes, done - killed, done - started, panes))
    finally:
        for w in workers:
            w.kill()
        tmux.kill()
        delete_swarm(messenger)  # type: ignore[arg-type]
        delivery_queue(host, client).delete(delete_jobs=True)
        client.delete(host_swarms_key(host))
        client.close()
    return out
