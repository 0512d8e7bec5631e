"""What must hold after any amount of chaos: the invariants every chaos scenario checks.

The task graph (after the agents stopped):

- no task lost: every submitted task exists and is ``completed``;
- none completed twice: one ``completed`` event per task in the event log, and at most one
  acknowledgement per task in the agents' own records (``tests/chaos/agent.py`` appends one
  after each ``complete()`` that returned); an agent that was never killed acknowledged every
  task the log says it completed, with the task's token (so no reply was lost for good);
- none stuck: nothing ``available``, ``blocked``, ``waiting``, ``claimed`` or ``in_progress``,
  and the ready, delayed and claimed indexes are empty;
- dependency order held: in the event log, each task was claimed and completed only after
  every one of its dependencies was completed.

Messages (after a bounded wait):

- typed at most once into each pane, and only whole (the paste's end and the Enter follow);
- every recipient's final outcome is true to what its pane received: ``delivered`` exactly when
  the pane got the message, ``failed`` only when it did not, nothing ``pending``;
- none lost: a recipient whose pane takes typed text ends ``delivered``.

Each check returns a list of violations, one sentence each; :class:`TaskGraphViolation` and
:class:`DeliveryViolation` carry them (the delivery tests expect the latter by type, so a
broken harness never passes for a known defect).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from distributor import TaskQueue
from distributor.messaging.messages import DeliveryStatus, Message
from distributor.tasks.models import Event, Task
from distributor.tasks.status import TaskStatus

SHOWN = 12  # violations listed in a failure message (the count says how many more)
PASTE_END = b"\x1b[201~\r"  # what follows a pasted line: bracketed paste's end, then Enter


class InvariantViolation(AssertionError):
    """A chaos scenario broke an invariant; ``violations`` says which, one line each."""

    def __init__(self, scenario: str, violations: list[str]) -> None:
        self.violations = violations
        shown = "\n  ".join(violations[:SHOWN])
        more = f"\n  ... and {len(violations) - SHOWN} more" if len(violations) > SHOWN else ""
        super().__init__(f"{scenario}: {len(violations)} violation(s):\n  {shown}{more}")


class TaskGraphViolation(InvariantViolation):
    """A task lost, completed twice, stuck, or completed before a dependency."""


class DeliveryViolation(InvariantViolation):
    """A message typed twice, an outcome untrue to the pane, pending, or lost."""


@dataclass(frozen=True)
class Ack:
    """An agent's record of one completion it was told about."""

    agent: str
    task_id: str
    token: int


def read_acks(folder: Path) -> list[Ack]:
    """Every ``<agent>.acks`` file of ``folder`` (lines ``<task id> <token>``)."""
    acks = []
    for path in sorted(folder.glob("*.acks")):
        for line in path.read_text().splitlines():
            task_id, token = line.split()
            acks.append(Ack(path.stem, task_id, int(token)))
    return acks


def stream_position(event_id: str) -> tuple[int, int]:
    """A stream id as a sortable pair (``1700000000000-3`` -> ``(1700000000000, 3)``)."""
    ms, _, seq = event_id.partition("-")
    return int(ms), int(seq or 0)


def task_graph_violations(
    queue: TaskQueue,
    dependencies: Mapping[str, Iterable[str]],
    acks: Iterable[Ack],
    killed: Iterable[str] = (),
) -> list[str]:
    """Every task-graph invariant on ``queue``'s swarm, once its agents stopped.

    ``dependencies`` maps each submitted task to its dependencies; ``killed`` names agents
    that were killed (they may have completed a task without living to record it).
    """
    deps = {task_id: list(d) for task_id, d in dependencies.items()}
    violations: list[str] = []
    tasks = {task.id: task for task in queue.tasks()}
    events = queue.events()
    completed: dict[str, list[Event]] = defaultdict(list)
    claimed: dict[str, list[Event]] = defaultdict(list)
    for event in events:
        if event.type == "completed":
            completed[event.task_id].append(event)
        elif event.type == "claimed":
            claimed[event.task_id].append(event)

    for task_id in deps:
        task = tasks.get(task_id)
        if task is None:
            violations.append(f"task {task_id} lost: not in the swarm")
        elif task.status is not TaskStatus.COMPLETED:
            violations.append(
                f"task {task_id} not completed: {task.status.value}"
                f" (agent {task.agent_id}, attempts {task.attempts})"
            )
    for task_id in sorted(set(tasks) - set(deps)):
        violations.append(f"task {task_id} in the swarm but never submitted")

    violations += _completions(deps, tasks, completed, list(acks), set(killed))
    violations += _stuck(queue, len(deps))
    violations += _order(deps, completed, claimed)
    return violations


def _completions(
    deps: Mapping[str, list[str]],
    tasks: Mapping[str, Task],
    completed: Mapping[str, list[Event]],
    acks: list[Ack],
    killed: set[str],
) -> list[str]:
    """Once per task in the log and in the agents' records, by the agent the log names."""
    violations: list[str] = []
    by_task: dict[str, list[Ack]] = defaultdict(list)
    for ack in acks:
        by_task[ack.task_id].append(ack)
    for task_id in deps:
        events = completed.get(task_id, [])
        if len(events) > 1:
            who = ", ".join(f"{e.agent_id} at {e.id}" for e in events)
            violations.append(f"task {task_id} completed {len(events)} times: {who}")
        got = by_task.get(task_id, [])
        if len(got) > 1:
            who = ", ".join(f"{a.agent} (token {a.token})" for a in got)
            violations.append(f"task {task_id} acknowledged {len(got)} times: {who}")
        if len(events) != 1:
            continue
        holder = events[0].agent_id
        task = tasks.get(task_id)
        token = task.token if task else None
        if not got and holder not in killed:
            violations.append(
                f"task {task_id} completed by {holder}, which was never killed but never"
                " heard of it (a complete() reply lost for good)"
            )
        for ack in got:
            if ack.agent != holder:
                violations.append(
                    f"task {task_id} acknowledged by {ack.agent}, but the log says {holder}"
                    " completed it"
                )
            elif ack.token != token:
                violations.append(
                    f"task {task_id} acknowledged with token {ack.token}; it was completed"
                    f" under token {token}"
                )
    for task_id in sorted(set(by_task) - set(deps)):
        violations.append(f"an agent acknowledged {task_id}, which was never submitted")
    return violations


def _stuck(queue: TaskQueue, total: int) -> list[str]:
    """Nothing left in any state but ``completed``, and the indexes agree."""
    violations = []
    progress = queue.progress()
    for status in TaskStatus:
        count = int(progress.get(status.value, 0))
        if status is not TaskStatus.COMPLETED and count:
            violations.append(f"{count} task(s) left {status.value} (stuck)")
    if int(progress.get("completed", 0)) != total:
        violations.append(f"counts say {progress.get('completed')} completed of {total} submitted")
    keys = queue.keys
    for name, key in (("ready", keys.ready), ("claimed", keys.claimed), ("delayed", keys.delayed)):
        size = int(queue.redis.zcard(key))
        if size:
            violations.append(f"{size} task(s) still in the {name} index (stuck)")
    return violations


def _order(
    deps: Mapping[str, list[str]],
    completed: Mapping[str, list[Event]],
    claimed: Mapping[str, list[Event]],
) -> list[str]:
    """Claims and completions only after every dependency's completion, by log order."""
    violations = []
    for task_id, task_deps in deps.items():
        for dep in task_deps:
            dep_done = completed.get(dep)
            if not dep_done:
                continue  # reported as not completed already
            ready_at = stream_position(dep_done[0].id)
            for event in [*claimed.get(task_id, []), *completed.get(task_id, [])]:
                if stream_position(event.id) < ready_at:
                    violations.append(
                        f"task {task_id} {event.type} at {event.id} before its dependency"
                        f" {dep} was completed at {dep_done[0].id}"
                    )
    return violations


@dataclass(frozen=True)
class Recipient:
    """An agent's pane, and whether its program takes typed messages."""

    agent: str
    pane: str
    accepts: bool


def delivery_violations(
    sent: Mapping[str, str],
    outcomes: Mapping[str, Message],
    recipients: Iterable[Recipient],
    received: Mapping[str, bytes],
) -> list[str]:
    """Every message invariant.

    ``sent`` maps message ids to their (unique) content, ``outcomes`` message ids to what
    ``Messenger.get`` says now, ``received`` each pane to every byte it received.
    """
    violations: list[str] = []
    people = {r.agent: r for r in recipients}
    for message_id, content in sent.items():
        marker = content.encode()
        message = outcomes.get(message_id)
        if message is None:
            violations.append(f"message {message_id} lost: no record of it")
            continue
        missing = sorted(set(people) - {d.agent_id for d in message.deliveries})
        if missing:
            violations.append(f"message {message_id}: no outcome for {', '.join(missing)}")
        for d in message.deliveries:
            who = people.get(d.agent_id)
            if who is None:
                violations.append(f"message {message_id}: outcome for unknown {d.agent_id}")
                continue
            log = received.get(who.pane, b"")
            times = log.count(marker)
            whole = log.count(marker + PASTE_END)
            where = f"message {message_id} to {who.agent} (pane {who.pane})"
            if times > 1:
                violations.append(f"{where}: typed {times} times")
            if whole != times:
                violations.append(f"{where}: typed {times - whole} time(s) without its end/Enter")
            if d.status in (DeliveryStatus.PENDING, DeliveryStatus.TYPING):
                violations.append(
                    f"{where}: still {d.status.value}, not final (the pane got it {times} time(s))"
                )
            elif d.status is DeliveryStatus.DELIVERED and not times:
                violations.append(f"{where}: recorded delivered, but the pane never got it")
            elif d.status is DeliveryStatus.FAILED and times:
                violations.append(
                    f"{where}: recorded failed ({d.reason}), but the pane got it {times} time(s)"
                )
            elif d.status is DeliveryStatus.FAILED and who.accepts:
                violations.append(
                    f"{where}: lost, recorded failed ({d.reason}: {d.detail}) though the pane"
                    " takes messages"
                )
    return violations


def outcome_counts(outcomes: Iterable[Message]) -> Counter[str]:
    """Recipients per final status, over ``outcomes``."""
    counts: Counter[str] = Counter()
    for message in outcomes:
        counts.update(d.status.value for d in message.deliveries)
    return counts
