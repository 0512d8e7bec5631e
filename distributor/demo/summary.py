"""The demo's summary: who did which task when, whether the order respected the dependencies,
and what happened to every announcement in every pane.

Everything is read back from Redis (tasks, the event log, messages with their per-recipient
outcomes), so the summary shows what the swarm recorded, not what the demo believes happened.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from distributor.messaging.agents import Agent
from distributor.messaging.messages import DeliveryStatus, Message, Messenger
from distributor.messaging.sanitize import strip_controls
from distributor.tasks.models import Event, Task
from distributor.tasks.queue import TaskQueue
from distributor.tasks.status import TaskStatus

INBOX_COUNT = 10_000


class TaskRow(BaseModel):
    """One task: its final agent, attempts, and when its last claim started and it ended."""

    id: str
    title: str
    status: str
    agent: str | None
    attempts: int
    dependencies: list[str]
    start: datetime | None
    end: datetime | None


class OrderCheck(BaseModel):
    """Whether every claim came after the completion of each of the task's dependencies."""

    ok: bool
    violations: list[str]


class MessageRow(BaseModel):
    """One announcement and each recipient agent's outcome."""

    id: str
    type: str
    sender: str
    content: str
    at: datetime
    outcomes: dict[str, str]


class PaneRow(BaseModel):
    """Delivery outcomes of all announcements in one agent's pane."""

    agent: str
    pane: str
    delivered: int
    failed: int
    pending: int
    failures: list[str]


class SkipRow(BaseModel):
    """A claim that passed over a ready task because another agent held its files."""

    task: str
    agent: str
    at: datetime
    held: str


class DemoSummary(BaseModel):
    """What the demo shows at the end (and prints with ``--json``)."""

    swarm: str
    redis: str
    tmux_socket: str
    feature: str
    finished: bool
    elapsed_seconds: float
    progress: dict[str, Any]
    tasks: list[TaskRow]
    order: OrderCheck
    messages: list[MessageRow]
    panes: list[PaneRow]
    skips: list[SkipRow] = []


def check_order(tasks: list[Task], events: list[Event]) -> OrderCheck:
    """Every ``claimed`` event of a task comes after its dependencies' ``completed`` events, and
    every task started (last claim) no earlier than its dependencies ended (task timestamps)."""
    by_id = {t.id: t for t in tasks}
    completed_at: dict[str, int] = {}
    violations: list[str] = []
    for position, event in enumerate(events):
        if event.type == "completed":
            completed_at.setdefault(event.task_id, position)
        elif event.type == "claimed":
            for dep in by_id[event.task_id].dependencies if event.task_id in by_id else []:
                if dep not in completed_at:
                    violations.append(f"{event.task_id} was claimed before {dep} completed")
    for task in tasks:
        for dep in task.dependencies:
            ended = by_id[dep].completed_at if dep in by_id else None
            if task.claimed_at is not None and (ended is None or task.claimed_at < ended):
                violations.append(f"{task.id} started before {dep} ended")
    return OrderCheck(ok=not violations, violations=list(dict.fromkeys(violations)))


def held_files(event: Event) -> str:
    """A ``reserve-refused`` event's holders: ``app/x.py held by agent-1``."""
    try:
        holders = json.loads(event.data.get("holders") or "[]")
    except ValueError:
        return "?"
    shown = [f"{h.get('d')} held by {h.get('a')}" for h in holders if isinstance(h, dict)]
    return strip_controls(", ".join(shown)) or "?"


def skip_rows(events: list[Event]) -> list[SkipRow]:
    """Each task a claim passed over for held files, once per (task, agent)."""
    rows: dict[tuple[str, str], SkipRow] = {}
    for e in events:
        if e.type == "reserve-refused" and e.task_id:
            for task in json.loads(e.data.get("skipped") or "[]"):
                key = (str(task), e.agent_id or "-")
                rows.setdefault(
                    key, SkipRow(task=key[0], agent=key[1], at=e.at, held=held_files(e))
                )
    return list(rows.values())


def task_rows(tasks: list[Task]) -> list[TaskRow]:
    return [
        TaskRow(
            id=t.id,
            title=t.title,
            status=t.status.value,
            agent=t.agent_id,
            attempts=t.attempts,
            dependencies=t.dependencies,
            start=t.claimed_at,
            end=t.completed_at if t.status is TaskStatus.COMPLETED else t.failed_at,
        )
        for t in tasks
    ]


def announcement_ids(messenger: Messenger, agents: list[Agent], sent: list[str]) -> list[str]:
    """Ids of every announcement: those the demo sent, and every message in an agent's inbox
    (the CLI's ``next`` and ``done`` announce too, from the agents' processes)."""
    ids = list(sent)
    for agent in agents:
        ids += [entry.message_id for entry in messenger.inbox(agent.id, INBOX_COUNT)]
    return list(dict.fromkeys(ids))


def messages_of(messenger: Messenger, ids: list[str]) -> list[Message]:
    return sorted((messenger.get(i) for i in ids), key=lambda m: (m.at, m.id))


def pending_deliveries(messages: list[Message]) -> int:
    """Recipients still waiting for a delivery, or for a retry of a transient failure."""
    return sum(
        1
        for m in messages
        for d in m.deliveries
        if d.status in (DeliveryStatus.PENDING, DeliveryStatus.TYPING)
        or (d.status is DeliveryStatus.FAILED and not d.final)
    )


def pane_rows(messages: list[Message], agents: list[Agent]) -> list[PaneRow]:
    rows = []
    for agent in sorted(agents, key=lambda a: a.id):
        counts = dict.fromkeys(DeliveryStatus, 0)
        failures = []
        for m in messages:
            for d in m.deliveries:
                if d.agent_id == agent.id:
                    counts[d.status] += 1
                    if d.status is DeliveryStatus.FAILED:
                        failures.append(f"{m.id}: {d.reason} {d.detail or ''}".strip())
        rows.append(
            PaneRow(
                agent=agent.id,
                pane=agent.pane,
                delivered=counts[DeliveryStatus.DELIVERED],
                failed=counts[DeliveryStatus.FAILED],
                pending=counts[DeliveryStatus.PENDING] + counts[DeliveryStatus.TYPING],
                failures=failures,
            )
        )
    return rows


def build_summary(
    queue: TaskQueue,
    messenger: Messenger,
    agents: list[Agent],
    sent: list[str],
    *,
    redis: str,
    tmux_socket: str,
    feature: str,
    elapsed: float,
) -> DemoSummary:
    """Read the swarm's final state from Redis."""
    tasks = queue.tasks()
    progress = queue.progress()
    messages = messages_of(messenger, announcement_ids(messenger, agents, sent))
    events = queue.events()
    total = progress["total"]
    return DemoSummary(
        swarm=queue.swarm,
        redis=redis,
        tmux_socket=tmux_socket,
        feature=feature,
        finished=bool(total) and progress["completed"] == total,
        elapsed_seconds=round(elapsed, 2),
        progress=progress,
        tasks=task_rows(tasks),
        order=check_order(tasks, events),
        messages=[
            MessageRow(
                id=m.id,
                type=m.type.value,
                sender=m.sender,
                content=m.content,
                at=m.at,
                outcomes={d.agent_id: _outcome(d.status.value, d.reason) for d in m.deliveries},
            )
            for m in messages
        ],
        panes=pane_rows(messages, agents),
        skips=skip_rows(events),
    )


def _outcome(status: str, reason: str | None) -> str:
    return f"{status} ({reason})" if reason else status


def _clock(value: datetime | None) -> str:
    return value.strftime("%H:%M:%S.") + f"{value.microsecond // 1000:03d}" if value else "-"


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def summary_lines(s: DemoSummary) -> list[str]:
    """The summary as text for people."""
    p = s.progress
    lines = [
        f"swarm {s.swarm} on {s.redis}",
        f"feature: {s.feature}",
        f"{p['completed']}/{p['total']} tasks completed ({p['completion_pct']}%) "
        f"in {s.elapsed_seconds:.1f}s",
        "",
        f"{'TASK':<16}{'AGENT':<10}{'TRIES':<7}{'START':<14}{'END':<14}{'AFTER':<12}TITLE",
    ]
    for t in s.tasks:
        after = ",".join(d.rsplit("-", 1)[-1] for d in t.dependencies) or "-"
        lines.append(
            f"{t.id:<16}{t.agent or '-':<10}{t.attempts:<7}{_clock(t.start):<14}"
            f"{_clock(t.end):<14}{after:<12}{t.title}"
        )
    if s.order.ok:
        lines.append(
            "dependency order: OK (each task was claimed after its dependencies completed)"
        )
    else:
        lines.append("dependency order: VIOLATION")
        lines += [f"  {v}" for v in s.order.violations]
    for skip in s.skips:
        lines.append(
            f"file reservation: {skip.agent}'s claim passed over {skip.task} at"
            f" {_clock(skip.at)}: {skip.held}"
        )
    delivered = sum(r.delivered for r in s.panes)
    failed = sum(r.failed for r in s.panes)
    pending = sum(r.pending for r in s.panes)
    lines += [
        "",
        f"announcements: {len(s.messages)} messages to {len(s.panes)} panes: "
        f"delivered {delivered}, failed {failed}, pending {pending}",
        f"{'AGENT':<10}{'PANE':<7}{'DELIVERED':<11}{'FAILED':<8}PENDING",
    ]
    for r in s.panes:
        lines.append(f"{r.agent:<10}{r.pane:<7}{r.delivered:<11}{r.failed:<8}{r.pending}")
        lines += [f"  failed {f}" for f in r.failures]
    lines.append("")
    for m in s.messages:
        states = sorted(set(m.outcomes.values()))
        outcome = (
            states[0]
            if len(states) == 1
            else "; ".join(f"{a} {o}" for a, o in sorted(m.outcomes.items()))
        )
        lines.append(f"{_clock(m.at)}  {m.type:<15}{outcome:<11}{_cut(m.content, 72)}")
    return lines
