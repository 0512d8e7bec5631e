"""``/metrics``: every swarm's figures in Prometheus' text format (the official client).

Gauges are read from Redis at each scrape: tasks by status (the ``counts`` script, the same
figures as ``swarmqueue status``), active agents (seen within ``AGENT_STALE_SECONDS``), the
oldest ready task's age, recipients' delivery outcomes by status and reason (of the messages
in the agents' inboxes, see :func:`distributor.dashboard.views.messages`) and each sender's
rate-limit refusals (``refused``, counted by ``lua/msg_send.lua``).

Counters of claims, completions, failures and expiries are fed from the event stream: each
scrape reads the events after the last one it counted (the first reads the whole stream, so
the counters start at the swarm's totals; events trimmed by ``EVENT_STREAM_CAP`` before a
first scrape are not counted). The same pass remembers when each task last became ready,
which gives the oldest ready task's age.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from distributor.admin.swarms import find_swarms
from distributor.dashboard.views import Reader, messages
from distributor.store import codec
from distributor.store.calls import Batch, Command, text
from distributor.store.keys import SwarmKeys
from distributor.tasks import events as event_log
from distributor.tasks import queries
from distributor.tasks.models import Event

COUNTED = {
    "claimed": "claims",
    "completed": "completions",
    "failed": "failures",
    "expired": "expiries",
}
READY_AGAIN = ("released", "retried")


@dataclass
class Tally:
    """What one swarm's events said so far: counts by type and when each task became ready."""

    position: str = "0"
    counts: Counter[str] = field(default_factory=Counter)
    ready_since: dict[str, int] = field(default_factory=dict)

    def add(self, events: list[Event]) -> None:
        for e in events:
            self.counts[e.type] += 1
            ts = int(e.at.timestamp() * 1000)
            if e.type == "submitted" and e.data.get("status") == "available":
                self.ready_since[e.task_id] = ts
            elif e.type == "completed":
                for task_id in e.unblocked:
                    self.ready_since[task_id] = ts
            elif e.type == "failed" and e.data.get("retry_at"):
                self.ready_since[e.task_id] = int(e.data["retry_at"])
            elif e.type in READY_AGAIN or (e.type == "expired" and not e.data.get("final")):
                self.ready_since[e.task_id] = ts
        if events:
            self.position = events[-1].id


class SwarmCollector(Collector):
    """Collects every swarm's metrics from Redis when scraped (one scrape at a time)."""

    def __init__(self, reader: Reader) -> None:
        self.reader = reader
        self.tallies: dict[str, Tally] = {}
        self._lock = threading.Lock()

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            yield from self._collect()

    def _collect(self) -> Iterator[Metric]:
        tasks = GaugeMetricFamily(
            "swarmqueue_tasks", "Tasks by status (as swarmqueue status counts them).",
            labels=["swarm", "status"],
        )  # fmt: skip
        counters = {
            name: CounterMetricFamily(
                f"swarmqueue_{name}", f"Task {name} recorded in the event stream.", labels=["swarm"]
            )
            for name in COUNTED.values()
        }
        oldest = GaugeMetricFamily(
            "swarmqueue_oldest_ready_task_age_seconds",
            "How long the longest-waiting claimable task has been ready (0: none ready).",
            labels=["swarm"],
        )
        deliveries = GaugeMetricFamily(
            "swarmqueue_deliveries",
            "Recipients of the swarm's kept messages by delivery status and failure reason.",
            labels=["swarm", "status", "reason"],
        )
        refusals = CounterMetricFamily(
            "swarmqueue_rate_limit_refusals",
            "Messages refused by the per-sender rate limit.",
            labels=["swarm", "sender"],
        )
        agents = GaugeMetricFamily(
            "swarmqueue_active_agents",
            "Agents seen within AGENT_STALE_SECONDS.",
            labels=["swarm"],
        )
        for swarm in find_swarms(self.reader.client, self.reader.namespace):
            keys = SwarmKeys(swarm, self.reader.namespace)
            counts, _ = self.reader.executor.run(queries.status_counts(keys))
            for status, n in sorted(counts.items()):
                tasks.add_metric([swarm, status], n)
            tally = self._tally(keys)
            for event_type, name in COUNTED.items():
                counters[name].add_metric([swarm], tally.counts[event_type])
            age, active, refused = self._ages(keys, tally)
            oldest.add_metric([swarm], age)
            agents.add_metric([swarm], active)
            for sender, n in sorted(refused.items()):
                refusals.add_metric([swarm, sender], n)
            outcomes: Counter[tuple[str, str]] = Counter(
                (d.status.value, d.reason or "")
                for m in messages(self.reader, keys)
                for d in m.deliveries
            )
            for (status, reason), n in sorted(outcomes.items()):
                deliveries.add_metric([swarm, status, reason], n)
        yield tasks
        yield from counters.values()
        yield oldest
        yield deliveries
        yield refusals
        yield agents

    def _tally(self, keys: SwarmKeys) -> Tally:
        tally = self.tallies.setdefault(keys.swarm, Tally())
        while True:
            batch = self.reader.executor.run(
                event_log.read(keys, tally.position, event_log.PAGE)
            )
            tally.add(batch)
            if len(batch) < event_log.PAGE:
                return tally

    def _ages(self, keys: SwarmKeys, tally: Tally) -> tuple[float, int, dict[str, int]]:
        """The oldest ready task's age, active agents, and refusals by sender."""
        run = self.reader.executor.execute
        time_reply, clock, ready, refused = run(
            Batch(
                (
                    Command(("TIME",)),
                    Command(("GET", keys.clock)),
                    Command(("ZRANGE", keys.ready, 0, -1)),
                    Command(("HGETALL", keys.refused)),
                )
            )
        )
        now = codec.redis_now_ms(time_reply, clock)
        stale_ms = round(self.reader.settings.agent_stale_seconds * 1000)
        active, due = run(
            Batch(
                (
                    Command(("ZCOUNT", keys.agents, now - stale_ms, "+inf")),
                    Command(("ZRANGEBYSCORE", keys.delayed, "-inf", now)),
                )
            )
        )
        ids = [text(i) for i in [*ready, *due]]
        unknown = [i for i in ids if i not in tally.ready_since]
        since = [tally.ready_since[i] for i in ids if i in tally.ready_since]
        if unknown:  # became ready before the events kept: since its submission at least
            reads = tuple(Command(("HGET", keys.task(i), "created_at")) for i in unknown)
            created = run(Batch(reads))
            since += [int(text(c)) for c in created if c]
        age = max(0.0, (now - min(since)) / 1000) if since else 0.0
        return age, int(active), {text(k): int(text(v)) for k, v in (refused or {}).items()}


def registry_for(reader: Reader) -> CollectorRegistry:
    """A registry holding only the swarms' collector (no process metrics: they describe the
    dashboard, not the swarms)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SwarmCollector(reader))
    return registry


def render(registry: CollectorRegistry) -> bytes:
    """The text exposition format of everything in ``registry``."""
    return generate_latest(registry)
