"""Delivery under chaos: the ``swarmqueue worker`` SIGKILLed before, during and after a paste.

Four agents sit in reader panes (``tests/pane_reader.py`` logs every byte a pane receives) and
a fifth in a pane whose program must not be typed into. Each round broadcasts a message with the
real CLI, SIGKILLs the worker's process group at the chosen moment of a delivery (see
:mod:`tests.chaos.panes`) and starts a new worker. A last message is sent without a kill. Then,
after at most ``OUTCOME_BOUND`` seconds for outcomes to settle, every message must have been
typed at most once into each pane, and every recipient's outcome (``Messenger.get``) must be
true to its pane: delivered exactly when received, failed only when not, nothing pending, and
nothing lost where the pane takes messages.

Recovery (issue 11): a killed worker's delivery keeps its outbox entry and its lease runs out
by Redis time; the next worker's sweep gives it a new job, which checks each pane still marked
``typing`` for the attempt's stamp before typing, so no pane gets a message twice.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from distributor.messaging.agents import AgentRegistry
from distributor.messaging.messages import DeliveryStatus, Message, Messenger
from distributor.settings import Settings
from tests.chaos.harness import (
    ScenarioStats,
    chaos_rounds,
    scenario_timeout,
    wait_until,
)
from tests.chaos.invariants import (
    DeliveryViolation,
    Recipient,
    delivery_violations,
    outcome_counts,
)
from tests.chaos.panes import CLI, MOMENTS, Lab, Shim, Workers
from tests.messaging_support import unique_host
from tests.redis_server import RedisServer

pytestmark = pytest.mark.chaos

READERS = 4
BATCH_PANES = 2  # panes per tmux invocation: a kill can fall between two batches of a message
KILLS_PER_ROUND = 3
OUTCOME_BOUND = 30.0  # seconds after the last message for every outcome to be final
REFUSING_PROGRAM = "chaos-pager"  # not in SWARMQUEUE_DELIVER_TO: its agent's outcome is failed


class DeliveryRun:
    """The panes, agents, server and workers of one scenario."""

    def __init__(self, tmp: Path, server: RedisServer, stats: ScenarioStats) -> None:
        self.stats = stats
        self.swarm = f"chaos-deliver-{uuid.uuid4().hex[:8]}"
        self.host = unique_host()
        self.client = redis.Redis.from_url(server.url)
        settings = Settings(host=self.host, swarm=self.swarm)
        self.messenger = Messenger(self.client, self.swarm, settings=settings)
        (tmp / "panes").mkdir()
        self.lab = Lab(tmp / "panes")
        self.shim = Shim(tmp / "shim")
        common = {
            **os.environ,
            "SWARMQUEUE_REDIS_URL": server.url,
            "SWARMQUEUE_SWARM": self.swarm,
            "SWARMQUEUE_HOST": self.host,
            "SWARMQUEUE_LOG_FORMAT": "json",
        }
        self.cli_env = {**common, "SWARMQUEUE_RATE_LIMIT_PER_MINUTE": "10000"}
        self.workers = Workers(
            tmp / "workers",
            {**common, **self.shim.env, "SWARMQUEUE_DELIVERY_BATCH_PANES": str(BATCH_PANES)},
        )
        self.sent: dict[str, str] = {}
        self.recipients: list[Recipient] = []

    def setup(self) -> None:
        registry = AgentRegistry(self.client, self.swarm, settings=self.messenger.settings)
        panes = [(p, True) for p in self.lab.spawn(READERS)]
        panes.append((self.lab.spawn_as(REFUSING_PROGRAM), False))
        for n, (pane, accepts) in enumerate(panes, 1):
            agent = f"agent-{n}"
            registry.register(agent, pane, socket=self.lab.socket, host=self.host)
            self.recipients.append(Recipient(agent, pane, accepts))

    def broadcast(self, label: str) -> Callable[[], str]:
        """Start ``swarmqueue broadcast`` of a content no other message has; the returned
        function waits for it and gives the message id. (The worker may be typing the message
        before the command has exited: the test strikes meanwhile.)"""
        content = f"chaos-{label}-{uuid.uuid4().hex[:10]}"
        proc = subprocess.Popen(
            [str(CLI), "broadcast", content, "--sender", "chaos", "--json"],
            env=self.cli_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

        def sent() -> str:
            out, err = proc.communicate(timeout=60)
            assert proc.returncode == 0, f"chaos harness: broadcast failed: {err}"
            message_id = str(json.loads(out)["message_id"])
            self.sent[message_id] = content
            self.stats.messages += 1
            return message_id

        return sent

    def wait_idle(self) -> None:
        """Until the worker waits for a job (so the next job it takes is the next message's,
        unless it recovers an older one first)."""
        wait_until(
            lambda: self.workers.idle(self.client, self.host), 60, "an idle worker", every=0.05
        )

    def outcomes(self) -> dict[str, Message]:
        return {m: self.messenger.get(m) for m in self.sent}

    def settled(self) -> bool:
        return all(
            d.status in (DeliveryStatus.DELIVERED, DeliveryStatus.FAILED)
            for message in self.outcomes().values()
            for d in message.deliveries
        )

    def close(self) -> None:
        self.workers.stop()
        self.lab.close()
        self.client.close()


@pytest.mark.parametrize("moment", MOMENTS)
@pytest.mark.timeout(scenario_timeout(60))
def test_worker_sigkilled_mid_delivery(
    moment: str, tmp_path: Path, chaos_stats: ScenarioStats
) -> None:
    rng = random.Random(chaos_stats.seed)
    with contextlib.ExitStack() as stack:
        server = RedisServer(tmp_path / "redis").start()
        stack.callback(server.stop)
        run = DeliveryRun(tmp_path, server, chaos_stats)
        stack.callback(run.close)
        run.setup()
        run.workers.start()
        for n in range(KILLS_PER_ROUND * chaos_rounds()):
            run.wait_idle()
            since = len(run.shim.steps())
            sent = run.broadcast(f"{moment}-{n}")
            try:
                run.shim.strike_at(moment, since, pastes=READERS // BATCH_PANES, rng=rng)
            except AssertionError as exc:
                raise AssertionError(f"{exc}; worker log: {run.workers.log_tail()}") from None
            run.workers.kill()
            chaos_stats.worker_kills += 1
            run.shim.check_struck(moment, since)
            sent()
            run.workers.start()
        run.broadcast(f"{moment}-control")()  # no kill: the new worker delivers it
        chaos_stats.rounds = chaos_rounds()
        deadline = time.monotonic() + OUTCOME_BOUND
        while not run.settled() and time.monotonic() < deadline:
            time.sleep(0.2)
        run.workers.stop()
        outcomes = run.outcomes()
        received = {r.pane: run.lab.received(r.pane) for r in run.recipients}
        chaos_stats.outcomes = dict(outcome_counts(outcomes.values()))
        violations = delivery_violations(run.sent, outcomes, run.recipients, received)
        chaos_stats.violations = len(violations)
        if violations:
            raise DeliveryViolation(
                f"worker killed {moment} a paste (seed {chaos_stats.seed})", violations
            )
    assert chaos_stats.worker_kills == KILLS_PER_ROUND * chaos_rounds()
