"""A ``swarmqueue worker`` killed (SIGKILL) in the middle of a delivery: the message reaches
every pane exactly once, every outcome becomes final and true, no job is lost, and the killed
worker leaves no process behind.

Real workers (subprocesses of the CLI), real tmux panes running ``tests/pane_reader.py`` (each
logs every byte it receives), a private redis-server. The first worker is stopped at a known
point by the product's test hook ``SWARMQUEUE_TEST_DELIVERY_PAUSE`` (see
``workers/delivery.py``) and killed there; a second worker, started after, recovers. Leases of
2 s and sweeps every 0.5 s keep this quick; the time from the kill to final outcomes is printed
(``-s``), never asserted (``scripts/benchmarks/recovery.py`` measures it with the defaults).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from distributor.errors import RedisUnavailable
from distributor.messaging.agents import AgentRegistry
from distributor.messaging.dispatch import Dispatcher
from distributor.messaging.messages import DeliveryStatus, Message, Messenger, format_line
from distributor.settings import Settings
from tests.messaging_support import TmuxLab, messaging_settings, pasted, unique_host, wait_for
from tests.processes import descendants
from tests.redis_server import RedisServer
from workers.delivery import PAUSE_ENV

pytestmark = pytest.mark.slow

CLI = Path(sys.executable).with_name("swarmqueue")
RECOVERY_BOUND = 60.0  # a hang guard, not a speed goal
FAST = {
    "SWARMQUEUE_DELIVERY_LEASE_SECONDS": "2",
    "SWARMQUEUE_DELIVERY_SWEEP_SECONDS": "0.5",
    "SWARMQUEUE_DELIVERY_BATCH_PANES": "2",
}


class Worker:
    """``swarmqueue worker`` in its own session (process group), JSON logs in a file."""

    def __init__(self, server: RedisServer, host: str, folder: Path, **env: str) -> None:
        self.log = folder / f"worker-{time.monotonic_ns()}.log"
        full_env = {
            **{k: v for k, v in os.environ.items() if k != PAUSE_ENV},
            **FAST,
            "SWARMQUEUE_REDIS_URL": server.url,
            "SWARMQUEUE_HOST": host,
            "SWARMQUEUE_LOG_FORMAT": "json",
            **env,
        }
        with self.log.open("w") as err:
            self.proc = subprocess.Popen(
                [str(CLI), "worker"],
                env=full_env,
                stdout=subprocess.DEVNULL,
                stderr=err,
                start_new_session=True,
            )

    def events(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log.read_text().splitlines():
            with contextlib.suppress(ValueError):
                out.append(json.loads(line))
        return out

    def paused(self) -> bool:
        return any(e["event"] == "delivery paused by a test hook" for e in self.events())

    def sigkill(self) -> float:
        """SIGKILL the worker (only it: what an OOM kill or a crash does); the time of it."""
        os.kill(self.proc.pid, signal.SIGKILL)
        killed = time.monotonic()
        self.proc.wait()
        return killed

    def group_empty(self) -> bool:
        """No process is left in the worker's process group (it leads its own session)."""
        try:
            os.killpg(self.proc.pid, 0)
        except ProcessLookupError:
            return True
        return False

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)


class Scene:
    """A private Redis, a tmux server of reader panes, a swarm registered there, its workers."""

    def __init__(self, server: RedisServer, lab: TmuxLab, tmp: Path, swarm: str) -> None:
        self.server = server
        self.lab = lab
        self.tmp = tmp
        self.host = unique_host()
        self.client = redis.Redis.from_url(server.url)
        self.settings: Settings = messaging_settings(
            swarm, self.host, redis_url=server.url, rate_limit_per_minute=1000
        )
        self.registry = AgentRegistry(self.client, swarm, settings=self.settings)
        self.messenger = Messenger(self.client, swarm, settings=self.settings)
        self.workers: list[Worker] = []

    def panes(self, count: int) -> list[str]:
        panes = self.lab.spawn(count)
        for i, pane in enumerate(panes):
            self.registry.register(f"agent-{i}", pane, socket=self.lab.socket)
        return panes

    def worker(self, **env: str) -> Worker:
        w = Worker(self.server, self.host, self.tmp, **env)
        self.workers.append(w)
        return w

    def line(self, message: Message) -> str:
        return format_line(message.sender, message.type, message.at, message.content, message.id)

    def final(self, message_id: str) -> bool:
        message = self.messenger.get(message_id)
        return (
            all(
                d.status is DeliveryStatus.DELIVERED
                or (d.status is DeliveryStatus.FAILED and d.final)
                for d in message.deliveries
            )
            and not self.messenger.pending()
        )

    def close(self) -> None:
        for w in self.workers:
            w.stop()
        self.client.close()


@pytest.fixture
def scene(tmp_path: Path, swarm: str) -> Iterator[Scene]:
    server = RedisServer(tmp_path / "redis").start()
    lab = TmuxLab(tmp_path)
    s = Scene(server, lab, tmp_path, swarm)
    try:
        yield s
    finally:
        s.close()
        lab.close()
        server.stop()


def kill_and_recover(scene: Scene, point: str, panes: list[str]) -> tuple[Message, float]:
    """Broadcast; let worker A stop at ``point`` and SIGKILL it; start worker B; the message
    once every outcome is final, and the seconds from the kill to then."""
    first = scene.worker(**{PAUSE_ENV: point})
    message_id = scene.messenger.broadcast("deploy is frozen", "ALERT", "lead")
    wait_for(first.paused, timeout=30, what=f"worker A to pause at {point}")
    assert descendants(first.proc.pid) == set()  # it forked nothing: no scheduler process
    killed = first.sigkill()
    wait_for(first.group_empty, timeout=5, what="no process left of the killed worker")

    scene.worker()
    wait_for(lambda: scene.final(message_id), timeout=RECOVERY_BOUND, what="final outcomes")
    seconds = time.monotonic() - killed
    print(f"\nrecovery after a SIGKILL at {point!r}: {seconds:.1f} s")
    message = scene.messenger.get(message_id)
    line = scene.line(message)
    for pane in panes:  # exactly once: the reader logged one paste and one Enter
        assert scene.lab.wait_received(pane, len(pasted(line))) == pasted(line)
    assert scene.client.llen(f"rq:queue:swarmqueue-deliver-{scene.host}") == 0  # nothing left
    return message, seconds


def test_killed_after_taking_the_job_before_its_lease(scene: Scene) -> None:
    panes = scene.panes(5)
    message, _ = kill_and_recover(scene, "start", panes)
    for d in message.deliveries:
        assert (d.status, d.attempts, d.verified, d.retyped) == ("delivered", 1, False, False)


def test_killed_after_recording_typing_before_the_paste(scene: Scene) -> None:
    panes = scene.panes(5)
    message, _ = kill_and_recover(scene, "typing", panes)
    retyped = sorted(d.pane for d in message.deliveries if d.retyped)
    assert retyped == sorted(panes)[:2]  # batch 1: recorded typing, shown untyped, typed once
    assert all(d.status == "delivered" and not d.verified for d in message.deliveries)


def test_killed_after_the_paste_before_recording(scene: Scene) -> None:
    panes = scene.panes(5)
    message, _ = kill_and_recover(scene, "typed", panes)
    verified = sorted(d.pane for d in message.deliveries if d.verified)
    assert verified == sorted(panes)[:2]  # batch 1: typed, found stamped, not typed again
    assert all(d.status == "delivered" and not d.retyped for d in message.deliveries)
    assert all(d.attempts == 1 for d in message.deliveries)


def test_a_failed_enqueue_is_delivered_by_the_sweep(
    scene: Scene, monkeypatch: pytest.MonkeyPatch
) -> None:
    panes = scene.panes(2)
    scene.worker()

    def unreachable(*args: object, **kwargs: object) -> None:
        raise RedisUnavailable("Redis unreachable: connection reset (test)")

    real_enqueue = Dispatcher.enqueue
    monkeypatch.setattr(Dispatcher, "enqueue", unreachable)
    message_id = scene.messenger.broadcast("recorded; its enqueue failed", sender="lead")
    monkeypatch.setattr(Dispatcher, "enqueue", real_enqueue)  # (undo() would drop the env too)
    wait_for(lambda: scene.final(message_id), timeout=RECOVERY_BOUND, what="the sweep")
    line = scene.line(scene.messenger.get(message_id))
    for pane in panes:
        assert scene.lab.wait_received(pane, len(pasted(line))) == pasted(line)


def test_two_workers_on_one_host_type_each_message_once(scene: Scene) -> None:
    panes = scene.panes(3)
    scene.worker()
    scene.worker()
    ids = [scene.messenger.broadcast(f"message {i}", sender="lead") for i in range(8)]
    wait_for(lambda: all(map(scene.final, ids)), timeout=RECOVERY_BOUND, what="all final")
    lines = [pasted(scene.line(scene.messenger.get(m))) for m in ids]
    for pane in panes:
        got = scene.lab.wait_received(pane, sum(map(len, lines)))
        assert len(got) == sum(map(len, lines))
        assert all(got.count(line) == 1 for line in lines)
