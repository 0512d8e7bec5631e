"""Helpers for the messaging tests: settings, RQ cleanup, a private tmux server of fake agents."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import redis

from distributor.messaging.job_ids import delivery_queue_name
from distributor.messaging.jobs import delivery_queue
from distributor.settings import Settings
from distributor.store.connect import SyncRedis
from distributor.store.keys import host_swarms_key
from tests.processes import tmux_socket

if TYPE_CHECKING:
    from workers.sweep import SweepReport

READER = Path(__file__).with_name("pane_reader.py")


def unique_host() -> str:
    """A host name no other test uses, so RQ queue names (and their keys) are the test's own."""
    return f"test-host-{uuid.uuid4().hex[:10]}"


def messaging_settings(swarm: str, host: str, **overrides: object) -> Settings:
    """Settings of a test: its swarm and host, RQ retries without waiting."""
    values: dict[str, object] = {
        "swarm": swarm,
        "host": host,
        "delivery_retry_intervals": [0, 0],
        **overrides,
    }
    return Settings(**values)  # type: ignore[arg-type]


def delete_rq_keys(client: SyncRedis, host: str) -> int:
    """Delete the RQ keys of ``host``'s delivery queue, its jobs and test workers, and the
    host's set of swarms."""
    deleted = 0
    for key in list(client.scan_iter(match=f"rq:*{host}*", count=1000)):
        deleted += int(client.delete(key))
    client.srem("rq:queues", f"rq:queue:{delivery_queue_name(host)}")
    for member in client.smembers("rq:workers"):
        if host in (member.decode() if isinstance(member, bytes) else str(member)):
            client.srem("rq:workers", member)
    return deleted + int(client.delete(host_swarms_key(host)))


def run_worker(client: redis.Redis, host: str) -> bool:
    """Run a burst ``SimpleWorker`` on ``host``'s delivery queue until it is empty."""
    from workers.worker import build_worker

    worker = build_worker(client, host, name=f"w-{host}-{uuid.uuid4().hex[:6]}")
    return bool(worker.work(burst=True))


def sweep(
    client: SyncRedis, host: str, settings: Settings, broker: redis.Redis | None = None
) -> SweepReport:
    """One sweep of ``host``'s outboxes, as its worker's keeper thread would run it."""
    from workers.sweep import Sweeper

    return Sweeper(client, host, settings, broker).sweep()


def wait_for(check: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    """Poll until ``check()`` (readiness, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


class TmuxLab:
    """A private tmux server whose panes run ``pane_reader.py``, logging what they receive."""

    def __init__(self, tmp: Path) -> None:
        self.socket = tmux_socket("sq-lab")  # in the test's $TMUX_TMPDIR: checked for leaks
        self.tmp = tmp
        self.logs: dict[str, Path] = {}

    def tmux(self, *args: str) -> str:
        done = subprocess.run(
            ["tmux", "-S", self.socket, *args], capture_output=True, text=True, check=True
        )
        return done.stdout.strip()

    def spawn(self, count: int) -> list[str]:
        """Start ``count`` reader panes (each in its own window) and wait until they are ready."""
        panes = []
        for _ in range(count):
            log = self.tmp / f"pane-{uuid.uuid4().hex[:8]}.log"
            log.touch()
            cmd = f"{sys.executable} {READER} {log}"
            if not self.logs:
                args = ["new-session", "-d", "-x", "200", "-y", "50", "-P", "-F", "#{pane_id}"]
            else:
                args = ["new-window", "-d", "-P", "-F", "#{pane_id}"]
            pane = self.tmux(*args, cmd)
            self.logs[pane] = log
            panes.append(pane)
        for pane in panes:
            self._wait_ready(pane)
        return panes

    def _wait_ready(self, pane: str) -> None:
        wait_for(lambda: "READY" in self.tmux("capture-pane", "-p", "-t", pane), what=pane)

    def received(self, pane: str) -> bytes:
        return self.logs[pane].read_bytes()

    def wait_received(self, pane: str, size: int) -> bytes:
        """The pane's log once it holds at least ``size`` bytes (plus a moment for extras)."""
        wait_for(lambda: len(self.received(pane)) >= size, what=f"bytes in {pane}")
        time.sleep(0.1)
        return self.received(pane)

    def kill_pane(self, pane: str) -> None:
        self.tmux("kill-pane", "-t", pane)

    def close(self) -> None:
        subprocess.run(["tmux", "-S", self.socket, "kill-server"], capture_output=True, check=False)
        Path(self.socket).unlink(missing_ok=True)


def pasted(line: str) -> bytes:
    """What a reader in bracketed-paste mode receives for one delivered line."""
    return b"\x1b[200~" + line.encode() + b"\x1b[201~\r"


class Messaging:
    """One test's swarm on one client: host, settings, registry and messenger."""

    def __init__(self, client: SyncRedis, swarm: str, **overrides: object) -> None:
        from distributor.messaging.agents import AgentRegistry
        from distributor.messaging.messages import Messenger

        # RQ's broker: the store itself, or on a cluster (RQ is not cluster-safe) the plain test
        # Redis beside it, as SWARMQUEUE_DELIVERY_REDIS_URL would be in production
        self.rq: redis.Redis = (
            client
            if isinstance(client, redis.Redis)
            else redis.Redis.from_url(os.environ["SWARMQUEUE_TEST_REDIS_URL"])
        )
        if self.rq is not client:
            overrides.setdefault("delivery_redis_url", os.environ["SWARMQUEUE_TEST_REDIS_URL"])
        self.client = client
        self.swarm = swarm
        self.host = unique_host()
        self.settings = messaging_settings(swarm, self.host, **overrides)
        self.registry = AgentRegistry(client, swarm, settings=self.settings)
        self.messenger = Messenger(client, swarm, settings=self.settings, broker=self.rq)
        self.keys = self.messenger.keys

    def advance_clock(self, seconds: float) -> None:
        """Make the swarm's scripts see a later time (rate windows, presence)."""
        self.client.incrby(self.keys.clock, round(seconds * 1000))

    def outbox(self) -> list[tuple[str, str, int]]:
        """``(message id, host, score ms)`` of this host's outbox."""
        pairs: list[tuple[bytes, float]] = self.client.zrange(  # type: ignore[assignment]
            self.keys.outbox(self.host), 0, -1, withscores=True
        )
        return [(m.decode(), self.host, int(score)) for m, score in pairs]

    def queued_job_ids(self, host: str | None = None) -> list[str]:
        return list(delivery_queue(host or self.host, self.rq).job_ids)

    def close(self) -> None:
        from distributor.testing import delete_swarm

        delete_swarm(self.messenger)  # type: ignore[arg-type]
        delete_rq_keys(self.rq, self.host)
        if self.rq is not self.client:
            self.rq.close()
