"""What each page shows, read from Redis with the project's read operations (no new scripts).

Every function takes a :class:`Reader` (a blocking client and its executor) and returns plain
data for a template. Listings that have no index in Redis read a bounded window and say so:
a task's history comes from the newest :data:`HISTORY_WINDOW` events, the
messages page from the newest :data:`INBOX_WINDOW` entries of each agent's inbox.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import redis
import redis.cluster

from distributor.admin.swarms import SwarmSummary, find_swarms, summary
from distributor.dashboard import charts, graph
from distributor.dashboard.hosts import HostView, hosts_of
from distributor.errors import MessageNotFound
from distributor.messaging.agents import Agent, AgentOps
from distributor.messaging.broker import broker_client
from distributor.messaging.messages import DeliveryStatus, Message, MessageOps
from distributor.reservations import queries as reservation_queries
from distributor.settings import Settings
from distributor.store import codec
from distributor.store.calls import Batch, Command, Op, text
from distributor.store.connect import SyncRedis
from distributor.store.executor import SyncExecutor
from distributor.store.keys import NAMESPACE, SwarmKeys, check_swarm
from distributor.store.scripts import SCRIPT_NAMES
from distributor.tasks import events as event_log
from distributor.tasks import queries
from distributor.tasks.models import Event, Task, ms_to_datetime
from distributor.tasks.status import TaskStatus

HISTORY_WINDOW = 20_000
TAIL = 200
SWARM_TAIL = 20
INBOX_WINDOW = 200
MESSAGES_SHOWN = 300


class SwarmMissing(LookupError):
    """The swarm name is invalid or nothing of it is in Redis (the page answers 404)."""


@dataclass
class Reader:
    """A blocking client with the executor that runs the read operations on it."""

    client: SyncRedis
    settings: Settings
    namespace: str = NAMESPACE
    executor: SyncExecutor = field(init=False)
    _broker: redis.Redis | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.executor = SyncExecutor(self.client, SCRIPT_NAMES)

    @property
    def broker(self) -> redis.Redis:
        """The delivery broker, where the RQ workers and queues are (the store itself unless
        ``SWARMQUEUE_DELIVERY_REDIS_URL`` names another Redis)."""
        if self._broker is None:
            self._broker = broker_client(self.settings, self.client)
        return self._broker

    def keys(self, swarm: str) -> SwarmKeys:
        try:
            check_swarm(swarm)
        except ValueError:
            raise SwarmMissing(swarm) from None
        return SwarmKeys(swarm, self.namespace)

    def swarm(self, swarm: str) -> SwarmKeys:
        """The keys of an existing swarm, else :class:`SwarmMissing`."""
        keys = self.keys(swarm)
        exists = self.client.exists(keys.counts, keys.agents, keys.events)
        if not exists:
            raise SwarmMissing(swarm)
        return keys


@dataclass
class SwarmRow:
    """One swarm on the swarms page: its summary and its age (since its oldest kept event)."""

    summary: SwarmSummary
    age_seconds: float | None


def swarms(reader: Reader) -> list[SwarmRow]:
    """Every swarm with its progress (``admin.swarms.summary``) and age."""
    rows = []
    for name in find_swarms(reader.client, reader.namespace):
        keys = SwarmKeys(name, reader.namespace)
        head = reader.executor.run(summary(keys))
        rows.append(SwarmRow(head, reader.executor.run(_age(keys))))
    return rows


def _age(keys: SwarmKeys) -> Op[float | None]:
    """Seconds since the swarm's oldest event still kept (Redis time), None without events."""
    first, time_reply, clock = yield Batch(
        (
            Command(("XRANGE", keys.events, "-", "+", "COUNT", 1)),
            Command(("TIME",)),
            Command(("GET", keys.clock)),
        )
    )
    if not first:
        return None
    born = event_log.event_from_entry(*first[0]).at
    return max(0.0, codec.redis_now_ms(time_reply, clock) / 1000 - born.timestamp())


@dataclass
class SwarmView:
    """The swarm page."""

    summary: SwarmSummary
    drawing: graph.Drawing
    chart: charts.Chart
    waiting: list[Task]
    failed: list[Task]
    blocked_by: dict[str, list[str]]
    statuses: dict[str, str]
    last_event: str
    tail: list[Event]


_ROW_FIELDS = ("title", "status", "dependencies", "retry_at", "completed_at")


def _rows(
    keys: SwarmKeys, sort_patterns: bool = True
) -> Op[tuple[list[graph.Item], list[datetime]]]:
    """Every task as the drawing needs it (its status as of now, see ``queries.as_of``), and
    the completion times.

    One ``SORT <all> BY nosort GET # GET <task:*>->field ...`` returns these few fields of
    every task in submission order, in one command: a 10,000-task page costs Redis ~0.1 s
    and the client almost nothing, where one ``HMGET`` per task spent most of a second packing
    and parsing commands. (The pattern carries the swarm's hash tag, which Redis Cluster
    requires of SORT's patterns.) Redis Cluster 7.0 refuses SORT's GET option altogether:
    there (``sort_patterns=False``) one ``HMGET`` per task goes in the same batch.
    """
    clock_reads = (Command(("TIME",)), Command(("GET", keys.clock)))
    width = 1 + len(_ROW_FIELDS)
    if sort_patterns:
        pattern = keys.task("*")
        gets: list[str] = ["GET", "#"]
        for name in _ROW_FIELDS:
            gets += ["GET", f"{pattern}->{name}"]
        reply, time_reply, clock = yield Batch(
            (Command(("SORT", keys.all, "BY", "nosort", *gets)), *clock_reads)
        )
        rows = [reply[at : at + width] for at in range(0, len(reply), width)]
    else:
        ids = [text(i) for i in (yield Command(("ZRANGE", keys.all, 0, -1)))]
        reads = [Command(("HMGET", keys.task(i), *_ROW_FIELDS)) for i in ids]
        *fields, time_reply, clock = yield Batch((*reads, *clock_reads))
        rows = [[i, *f] for i, f in zip(ids, fields, strict=True)]
    now = codec.redis_now_ms(time_reply, clock)
    rows = [r for r in rows if r[2] is not None]  # a task deleted meanwhile has no status
    # every task's dependency list (a JSON array) parsed in one go
    deps = json.loads("[" + ",".join(text(r[3]) if r[3] else "[]" for r in rows) + "]")
    items: list[graph.Item] = []
    done: list[datetime] = []
    for (task_id, title, status, _, retry_at, completed_at), dependencies in zip(
        rows, deps, strict=True
    ):
        state = text(status)
        if state == "waiting" and retry_at is not None and int(retry_at) <= now:
            state = "available"
        items.append(graph.Item(_str(task_id), _str(title), state, dependencies))
        if completed_at:
            done.append(datetime.fromtimestamp(int(completed_at) / 1000, tz=UTC))
    return items, done


def _str(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def swarm_view(reader: Reader, swarm: str) -> SwarmView:
    """Progress, the DAG, the completions chart, retries due and failures of one swarm.

    File reservations show as ``badges`` on the drawing: the files a claimed task holds, and
    for a ready task the agents whose files it waits for.
    """
    keys = reader.swarm(swarm)
    run = reader.executor.run
    head = run(summary(keys))
    items, completions = run(_rows(keys, not isinstance(reader.client, redis.cluster.RedisCluster)))
    tail = run(_recent_events(keys, SWARM_TAIL))
    picked = [i.id for i in items if i.status in ("waiting", "failed")]
    details = run(queries.many(keys, picked)) if picked else []
    failed = [t for t in details if t.status is TaskStatus.FAILED]
    return SwarmView(
        summary=head,
        drawing=graph.draw(items, badges=run(_reservation_badges(keys))),
        chart=charts.completions_chart(completions),
        waiting=sorted(
            (t for t in details if t.status is TaskStatus.WAITING),
            key=lambda t: (t.retry_at or datetime.max.astimezone(), t.id),
        ),
        failed=failed,
        blocked_by=run(queries.blocked_by_failures(keys, [t.id for t in failed])),
        statuses={i.id: i.status for i in items},
        last_event=tail[-1].id if tail else "0-0",
        tail=list(reversed(tail)),
    )


def _reservation_badges(keys: SwarmKeys) -> Op[dict[str, list[str]]]:
    """Task id -> labels: ``"3 files reserved"`` on a claimed task holding them, ``"files held
    by bob"`` on a ready task that waits only for another agent's files."""
    live = yield from reservation_queries.live(keys)
    badges: dict[str, list[str]] = {}
    if not live:
        return badges
    held: dict[str, int] = {}
    for r in live:
        if r.task_id is not None:
            held[r.task_id] = held.get(r.task_id, 0) + 1
    for task_id, n in held.items():
        badges[task_id] = [f"{n} file{'s' if n > 1 else ''} reserved"]
    for task_id, holders in (yield from queries.held_up(keys, live)).items():
        agents = sorted({r.agent_id for r in holders})
        badges.setdefault(task_id, []).append("files held by " + ", ".join(agents))
    return badges


def _recent_events(keys: SwarmKeys, count: int) -> Op[list[Event]]:
    """The newest ``count`` events, oldest first."""
    reply = yield Command(("XREVRANGE", keys.events, "+", "-", "COUNT", count))
    return [event_log.event_from_entry(i, f) for i, f in reversed(reply or [])]


@dataclass
class TaskView:
    """The task page."""

    task: Task
    history: list[Event]
    lease_left: float | None
    now: datetime


def task_view(reader: Reader, swarm: str, task_id: str) -> TaskView:
    """A task's fields, its history in the newest events, its holder and lease left."""
    keys = reader.swarm(swarm)
    task = reader.executor.run(queries.get(keys, task_id))
    recent = reader.executor.run(_recent_events(keys, HISTORY_WINDOW))
    now = reader.executor.run(_now(keys))
    history = [e for e in recent if e.task_id == task_id or task_id in e.unblocked]
    left = None
    if task.lease_expires_at is not None and task.status.value in ("claimed", "in_progress"):
        left = (task.lease_expires_at - now).total_seconds()
    return TaskView(task, history, left, now)


def _now(keys: SwarmKeys) -> Op[datetime]:
    time_reply, clock = yield Batch((Command(("TIME",)), Command(("GET", keys.clock))))
    now = ms_to_datetime(codec.redis_now_ms(time_reply, clock))
    assert now is not None
    return now


def events_view(reader: Reader, swarm: str) -> list[Event]:
    """The newest :data:`TAIL` events, newest first."""
    keys = reader.swarm(swarm)
    return list(reversed(reader.executor.run(_recent_events(keys, TAIL))))


def messages(reader: Reader, keys: SwarmKeys) -> list[Message]:
    """The swarm's messages found in its agents' inboxes (newest :data:`INBOX_WINDOW` each),
    newest first, at most :data:`MESSAGES_SHOWN`."""
    ops = MessageOps(keys, reader.settings)
    agent_ids = [text(a) for a in reader.client.zrange(keys.agents, 0, -1)]
    ids: dict[str, int] = {}
    if agent_ids:
        inboxes = reader.executor.execute(
            Batch(
                tuple(
                    Command(("XREVRANGE", keys.inbox(a), "+", "-", "COUNT", INBOX_WINDOW))
                    for a in agent_ids
                )
            )
        )
        for entries in inboxes:
            for _, fields in entries or []:
                data = codec.decode_map(fields)
                ids[data["id"]] = int(data.get("at") or 0)
    newest = sorted(ids, key=lambda m: (-ids[m], m))[:MESSAGES_SHOWN]
    found = []
    for message_id in newest:
        try:
            found.append(reader.executor.run(ops.get(message_id)))
        except MessageNotFound:
            continue  # expired with its outcomes; the inbox keeps the text only
    return found


def undelivered(message: Message) -> bool:
    """Some recipient has not got it (pending, typing, or failed)."""
    return any(d.status is not DeliveryStatus.DELIVERED for d in message.deliveries)


def messages_view(reader: Reader, swarm: str, only_undelivered: bool) -> list[Message]:
    keys = reader.swarm(swarm)
    found = messages(reader, keys)
    return [m for m in found if undelivered(m)] if only_undelivered else found


@dataclass
class AgentRow:
    """One agent on the agents page."""

    agent: Agent
    tasks: list[str]
    sent: int
    received: int


def agents_view(reader: Reader, swarm: str) -> list[AgentRow]:
    """Each agent's address, presence, current tasks and messages sent / received."""
    keys = reader.swarm(swarm)
    run = reader.executor.run
    agents = run(AgentOps(keys, reader.settings).list())
    workload = run(queries.workload(keys))
    sent: dict[str, int] = {}
    for m in messages(reader, keys):
        sent[m.sender] = sent.get(m.sender, 0) + 1
    received = (
        reader.executor.execute(Batch(tuple(Command(("XLEN", keys.inbox(a.id))) for a in agents)))
        if agents
        else []
    )
    return [
        AgentRow(a, workload.get(a.id, []), sent.get(a.id, 0), int(n))
        for a, n in zip(agents, received, strict=True)
    ]


def workers_view(reader: Reader, swarm: str) -> list[HostView]:
    """Each host of the swarm (its agents' and its messages'): worker, queue, last job."""
    keys = reader.swarm(swarm)
    agents = reader.executor.run(AgentOps(keys, reader.settings).list())
    hosts = {text(h) for h in reader.client.smembers(keys.hosts)} | {a.host for a in agents}
    return hosts_of(reader.broker, sorted(hosts))


def as_json_statuses(view: SwarmView) -> dict[str, Any]:
    """Per task its layer and status, for the page's script (it updates the drawing live)."""
    layer = view.drawing.layers_of
    return {t: [layer.get(t, 0), s] for t, s in view.statuses.items()}
