"""The sweep every ``swarmqueue worker`` runs, and the keeper thread that runs it.

Nothing else watches over deliveries: no scheduler process, no maintenance queue. Each worker's
keeper thread, with its own Redis connection, every few seconds:

* renews the leases its jobs hold (``lua/msg_lease.lua``), so a running delivery keeps its lease
  and a killed worker's lease runs out ``SWARMQUEUE_DELIVERY_LEASE_SECONDS`` later, by Redis time;
* sweeps (every ``SWARMQUEUE_DELIVERY_SWEEP_SECONDS``): for each swarm with agents on this host
  (``swarmqueue:host:<host>:swarms``; workers have no ``SCAN``), the outbox entries of this host
  whose time has come go through :meth:`Messenger.redispatch`: a job that waits in the queue is
  left alone, one a live worker runs (its lease) too, and one that is gone or abandoned is
  replaced. That also dispatches the retries of transient failures, and the messages whose
  enqueue failed after they were recorded;
* before that, per swarm, :meth:`Messenger.remind`: recipients of a message sent with
  ``requires_ack`` whose acknowledgement is overdue (``SWARMQUEUE_ACK_FIRST_DELAY_SECONDS``,
  doubling) become ``pending`` again with the message due in their host's outbox, so this
  sweep (or the other host's) dispatches the re-delivery; after ``SWARMQUEUE_ACK_REDELIVERIES``
  they are given up as ``unacknowledged``. By Redis time (the swarm's clock), once per swarm
  and sweep, whichever host's worker runs it first;
* once a minute (Redis time), forgets agents unseen for ``SWARMQUEUE_AGENT_PRUNE_SECONDS``
  (:meth:`AgentRegistry.prune`) in those swarms, and drops from the host's set the swarms that
  have no agents and nothing in this host's outbox.

Several workers on one host sweep the same outboxes; the replacement is one script that checks
nobody replaced or leased the delivery meanwhile, so each dead job is replaced once.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import redis

from distributor.errors import RedisUnavailable
from distributor.log import get_logger
from distributor.messaging.agents import AgentRegistry
from distributor.messaging.messages import MessageOps, Messenger, Redispatched, Reminded
from distributor.settings import Settings
from distributor.store.calls import CONNECTION_ERRORS, text
from distributor.store.codec import redis_now_ms
from distributor.store.connect import SyncRedis
from distributor.store.executor import SyncExecutor
from distributor.store.keys import SwarmKeys, check_swarm, host_swarms_key
from workers.delivery import LEASES
from workers.outage import RedisOutage

log = get_logger(__name__)

PRUNE_SECONDS = 60.0
SWEEP_LIMIT = 1000  # outbox entries looked at per swarm and sweep


@dataclass
class SweepReport:
    """What one sweep did: per swarm, what it found for each due delivery."""

    swarms: int = 0
    actions: dict[str, list[Redispatched]] = field(default_factory=dict)
    reminded: dict[str, Reminded] = field(default_factory=dict)
    pruned: dict[str, list[str]] = field(default_factory=dict)
    forgotten: list[str] = field(default_factory=list)

    def replaced(self) -> list[Redispatched]:
        return [r for found in self.actions.values() for r in found if r.action == "replaced"]


class Sweeper:
    """The sweep of one host's outboxes (see the module docstring), on its own client."""

    def __init__(
        self,
        client: SyncRedis,
        host: str,
        settings: Settings,
        broker: redis.Redis | None = None,
    ) -> None:
        self.client = client
        self.broker = broker  # the delivery broker (default: the store, when it is one Redis)
        self.host = host
        self.settings = settings
        self._messengers: dict[str, Messenger] = {}
        self._last_prune_ms: int | None = None
        self.renew_every = settings.delivery_lease_seconds / 3
        self._next_renew = time.monotonic()

    def _messenger(self, swarm: str) -> Messenger:
        if swarm not in self._messengers:
            self._messengers[swarm] = Messenger(
                self.client, swarm, settings=self.settings, broker=self.broker
            )
        return self._messengers[swarm]

    def swarms(self) -> list[str]:
        """The swarms with agents (or deliveries) on this host, valid names only."""
        out = []
        for raw in self.client.smembers(host_swarms_key(self.host)):
            name = text(raw)
            try:
                out.append(check_swarm(name))
            except ValueError:
                log.warning("not a swarm name in the host's set; dropped", name=name[:80])
                self.client.srem(host_swarms_key(self.host), raw)
        return sorted(out)

    def sweep(self) -> SweepReport:
        """Look at every due outbox entry of this host; prune once a minute (Redis time)."""
        report = SweepReport()
        swarms = self.swarms()
        report.swarms = len(swarms)
        for swarm in swarms:
            self.maybe_renew()  # a long sweep must not let this worker's own lease run out
            reminded = self._messenger(swarm).remind(limit=SWEEP_LIMIT)
            if reminded.reminded or reminded.unacknowledged:
                report.reminded[swarm] = reminded
                log.info("acknowledgements overdue", swarm=swarm,
                         redelivered=len(reminded.reminded),
                         unacknowledged=len(reminded.unacknowledged))  # fmt: skip
            found = self._messenger(swarm).redispatch(
                host=self.host, due_only=True, limit=SWEEP_LIMIT
            )
            if found:
                report.actions[swarm] = found
        now_ms = self.now_ms()
        if self._last_prune_ms is None or now_ms - self._last_prune_ms >= PRUNE_SECONDS * 1000:
            self._last_prune_ms = now_ms
            for swarm in swarms:
                pruned = AgentRegistry(self.client, swarm, settings=self.settings).prune()
                if pruned:
                    report.pruned[swarm] = pruned
                    log.info("agents pruned", swarm=swarm, agents=pruned)
                if self._forget(swarm):
                    report.forgotten.append(swarm)
        return report

    def _forget(self, swarm: str) -> bool:
        """Drop ``swarm`` from the host's set if it has no agents and nothing in this host's
        outbox. An agent registering meanwhile adds it back after its script, and this checks
        again after removing it, so the set never misses a swarm with an agent here."""
        keys = SwarmKeys(swarm)
        if self._in_use(keys):
            return False
        self.client.srem(keys.host_swarms(self.host), swarm)
        if self._in_use(keys):
            self.client.sadd(keys.host_swarms(self.host), swarm)
            return False
        return True

    def _in_use(self, keys: SwarmKeys) -> bool:
        pipe = self.client.pipeline(transaction=False)
        pipe.exists(keys.agents)
        pipe.zcard(keys.outbox(self.host))
        agents, queued = pipe.execute()
        return bool(agents or queued)

    def maybe_renew(self) -> None:
        """:meth:`renew` if a third of the lease time passed since the last renewal."""
        if time.monotonic() >= self._next_renew:
            self.renew()
            self._next_renew = time.monotonic() + self.renew_every

    def renew(self) -> int:
        """Renew the leases this process's jobs hold; how many were lost."""
        lost = 0
        for swarm, message_id, host, holder in LEASES.held():
            ops = MessageOps(SwarmKeys(swarm), self.settings)
            if not SyncExecutor(self.client).run(ops.renew(message_id, host, holder)):
                lost += 1
                log.warning("delivery lease lost", swarm=swarm, message_id=message_id,
                            host=host, holder=holder)  # fmt: skip
        return lost

    def now_ms(self) -> int:
        """Redis time in ms (no swarm clock: the sweep's own cadence)."""
        return redis_now_ms(self.client.time(), None)


class Keeper(threading.Thread):
    """The worker's thread that renews leases, sweeps and prunes; waits out Redis outages."""

    TICK = 0.2

    def __init__(self, sweeper: Sweeper) -> None:
        super().__init__(name="swarmqueue-keeper", daemon=True)
        self.sweeper = sweeper
        self.outage = RedisOutage("keeper")
        self._stop_event = threading.Event()

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the thread to stop and wait for it (at most ``timeout`` seconds)."""
        self._stop_event.set()
        if self.is_alive():
            self.join(timeout)

    def run(self) -> None:
        settings = self.sweeper.settings
        next_sweep = time.monotonic()
        while not self._stop_event.is_set():
            now = time.monotonic()
            try:
                self.sweeper.maybe_renew()
                if now >= next_sweep:
                    self.sweeper.sweep()
                    next_sweep = now + settings.delivery_sweep_seconds
            except (*CONNECTION_ERRORS, RedisUnavailable) as exc:
                wait = self.outage.next_wait()
                self.outage.retry(exc, wait)
                self._stop_event.wait(wait)
                next_sweep = time.monotonic()
                continue
            except redis.ResponseError as exc:  # e.g. an ACL without a command: say it, go on
                log.error("keeper: redis refused a command", error=str(exc))
                next_sweep = now + settings.delivery_sweep_seconds
            self.outage.over()
            self._stop_event.wait(self.TICK)
