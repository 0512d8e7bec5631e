"""claude-swarm's ``WorkDistributor``, on swarmqueue: code written against it runs unchanged.

The predecessor (``claudeswarm.workflows.work_distributor``) kept tasks in one process's memory;
this class keeps its method names, argument names and return shapes (``bool``, ``dict``, its
mutable ``Task`` dataclass) and runs each call on the swarm in Redis through the modern
:class:`distributor.planning.distributor.WorkDistributor` (``.modern``), so the tasks are shared
by every process and host of the swarm and every transition is atomic. ::

    from distributor.compat import WorkDistributor   # was: claudeswarm.workflows.work_distributor

    distributor = WorkDistributor(num_agents=4)      # the Redis and swarm of SWARMQUEUE_* settings
    tasks = await distributor.decompose_feature("Add JWT authentication to FastAPI app")
    await distributor.broadcast_tasks(tasks)         # announces the available ones
    distributor.claim_task(tasks[0].id, "agent-1")   # True; tasks[0].status == "claimed"
    distributor.complete_task(tasks[0].id)           # True; its dependents become available
    status = distributor.get_progress_summary()      # total, completed, in_progress, ...

What differs on purpose is listed in the README ("Migrating from claude-swarm"): decomposition
registers the tasks (so ``claim_task`` works at once) with ids unique per plan and today's
defaults (Argon2id, RS256); a task waiting for a dependency is ``blocked``, not ``available``;
``complete_task`` completes only a claim made through this object; progress counts the whole
swarm; failures are typed and logged, not printed. The typed results are one call away:
``.modern.claim()`` says why a claim was refused, ``.queue.get(id)`` is the full task,
``.queue.progress()`` every count, ``.last_broadcast`` what ``broadcast_tasks`` recorded.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from distributor.errors import StaleClaim, TaskNotFound, ValidationError
from distributor.log import get_logger
from distributor.messaging.messages import MessageType, Messenger
from distributor.planning.announce import ANNOUNCE_ERRORS, MAX_LISTED
from distributor.planning.distributor import BroadcastSummary
from distributor.planning.distributor import WorkDistributor as ModernDistributor
from distributor.settings import Settings
from distributor.tasks import models
from distributor.tasks.ids import TASK_ID_RE
from distributor.tasks.queue import TaskQueue
from distributor.tasks.specs import Plan
from distributor.tasks.status import TaskStatus

log = get_logger(__name__)


@dataclass
class Task:
    """A task as the predecessor returned it: a mutable dataclass, ``status`` a plain string
    (``blocked``, ``available``, ``waiting``, ``claimed``, ``in_progress``, ``completed`` or
    ``failed``). The distributor updates the objects it handed out in place; the swarm's full
    record is ``distributor.queue.get(task.id)``."""

    id: str
    title: str
    description: str
    files: list[str]
    dependencies: list[str] = field(default_factory=list)
    agent_id: str | None = None
    status: str = "available"
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    claimed_at: datetime | None = None
    completed_at: datetime | None = None
    estimated_minutes: int = 30

    def refresh(self, typed: models.Task) -> Task:
        """Take the swarm's state of this task (from its typed record); returns self."""
        self.title, self.description = typed.title, typed.description
        self.files, self.dependencies = list(typed.files), list(typed.dependencies)
        self.agent_id, self.status = typed.agent_id, typed.status.value
        self.created_at = typed.created_at or self.created_at
        self.claimed_at, self.completed_at = typed.claimed_at, typed.completed_at
        if typed.estimated_minutes is not None:
            self.estimated_minutes = typed.estimated_minutes
        return self

    @classmethod
    def of(cls, typed: models.Task) -> Task:
        """A new predecessor-shaped copy of a typed task."""
        return cls(typed.id, typed.title, typed.description, []).refresh(typed)


def _listing(items: Iterable[Any]) -> str:
    """``id (title) after deps; ...`` for an announcement, at most ``MAX_LISTED`` of them."""
    listed = list(items)
    parts = []
    for t in listed[:MAX_LISTED]:
        deps = list(getattr(t, "dependencies", None) or [])
        parts.append(f"{t.id} ({t.title})" + (f" after {', '.join(deps)}" if deps else ""))
    more = f" and {len(listed) - MAX_LISTED} more" if len(listed) > MAX_LISTED else ""
    return "; ".join(parts) + more


class WorkDistributor:
    """claude-swarm's ``WorkDistributor`` API on a swarmqueue swarm (see the module text).

    ``WorkDistributor(num_agents)`` uses the Redis and swarm of the ``SWARMQUEUE_*`` settings;
    the keyword-only ``queue``, ``settings``, ``messenger`` and ``announce`` are those of the
    modern distributor. ``num_agents`` outside 1..``MAX_AGENTS`` raises ``ValueError``
    (``ValidationError``), with the predecessor's messages.
    """

    MAX_AGENTS = 100

    def __init__(
        self,
        num_agents: int = 4,
        *,
        queue: TaskQueue | None = None,
        settings: Settings | None = None,
        messenger: Messenger | None = None,
        announce: bool = True,
    ) -> None:
        if not isinstance(num_agents, int):
            raise ValidationError("num_agents must be an integer")
        if num_agents > self.MAX_AGENTS:
            raise ValidationError(f"num_agents must not exceed {self.MAX_AGENTS}")
        if num_agents < 1:
            raise ValidationError("num_agents must be at least 1")
        self.modern = ModernDistributor(
            num_agents, queue, messenger, settings=settings, announce=announce
        )
        self.num_agents = num_agents
        self.queue = self.modern.queue
        self.settings = self.modern.settings
        # the predecessor's name for what announces (None when announcements are off)
        self.messaging: Messenger | None = self.modern.announcer.messenger
        self.last_broadcast: BroadcastSummary | None = None
        self._task_lock = threading.Lock()  # guards the objects handed out, not the swarm
        self._handed_out: dict[str, Task] = {}

    # -- the objects handed out, kept up to date ----------------------------------------------

    def _remember(self, typed: models.Task) -> Task:
        """The object handed out for this task (made on first sight), refreshed."""
        with self._task_lock:
            shown = self._handed_out.get(typed.id)
            if shown is None:
                shown = self._handed_out[typed.id] = Task.of(typed)
                return shown
            return shown.refresh(typed)

    @property
    def tasks(self) -> dict[str, Task]:
        """Every task of the swarm by id, as read now (the objects handed out are refreshed)."""
        return {t.id: self._remember(t) for t in self.queue.tasks()}

    # -- the predecessor's methods -------------------------------------------------------------

    async def decompose_feature(
        self, feature_description: str, research_results: dict[str, Any] | None = None
    ) -> list[Task]:
        """Break a feature into tasks and register them in the swarm, all or nothing, so
        ``claim_task`` works right after; returns them as they stand (first ones
        ``available``, the rest ``blocked``). Research results steer the choices (password
        hash, JWT algorithm). Nothing is announced here: ``broadcast_tasks`` does that."""
        return await asyncio.to_thread(self._decompose, feature_description, research_results)

    def _decompose(self, description: str, research: dict[str, Any] | None) -> list[Task]:
        planned = self.modern.decompose_feature(description, research)
        ids = self.queue.submit(Plan(tasks=planned))
        return [self._remember(t) for t in self.queue.get_many(ids)]

    async def broadcast_tasks(self, tasks: list[Any]) -> None:
        """Announce to every agent which of ``tasks`` are available, without blocking the loop.

        ``tasks`` may be any objects with ``id`` and ``title`` (and optionally
        ``dependencies`` and ``status``), registered or not: a registered task counts as
        available by the swarm's state, another one by its own ``status`` (default
        ``available``), and is announced as such (the predecessor announced what it was
        given). What was recorded is kept in ``last_broadcast``; a failed announcement is
        logged with its reason and never raised.
        """
        self.last_broadcast = await asyncio.to_thread(self._broadcast, list(tasks))

    def _broadcast(self, given: list[Any]) -> BroadcastSummary:
        ids_here = [str(t.id) for t in given if TASK_ID_RE.fullmatch(str(t.id))]
        known = {t.id: t for t in self.queue.get_many(ids_here)}  # other ids: never submitted
        available = []
        for item in given:
            typed = known.get(str(item.id))
            if typed is not None:
                shown = self._remember(typed)
                if isinstance(item, Task) and item is not shown:
                    item.refresh(typed)
                status = typed.status.value
            else:
                status = str(getattr(item, "status", TaskStatus.AVAILABLE.value))
            if status == TaskStatus.AVAILABLE.value:
                available.append(item)
        ids = [str(t.id) for t in available]
        if not available:
            log.info("broadcast_tasks_skipped", reason="no available tasks", given=len(given))
            return BroadcastSummary(announced=[], error="no available tasks")
        content = f"Available tasks: {_listing(available)}."
        if any(i in known for i in ids):
            content += " Claim with: swarmqueue claim <id> --agent <you>"
        outside = [i for i in ids if i not in known]
        if outside:
            content += f" Not in the queue (announced only): {', '.join(outside[:MAX_LISTED])}"
        if self.messaging is None:
            return BroadcastSummary(announced=ids, error="announcements are off")
        try:
            message_id = self.messaging.broadcast(
                content, MessageType.TASK_AVAILABLE, sender=self.settings.announce_sender
            )
            message = self.messaging.get(message_id)
        except ANNOUNCE_ERRORS as exc:
            log.warning("broadcast_tasks_failed", reason=type(exc).__name__, detail=str(exc))
            return BroadcastSummary(announced=ids, error=f"{type(exc).__name__}: {exc}")
        log.info("broadcast_tasks", message_id=message_id, tasks=len(ids))
        return BroadcastSummary(
            announced=ids,
            message_id=message_id,
            recipients=len(message.deliveries),
            pending=message.counts()["pending"],
        )

    def claim_task(self, task_id: str, agent_id: str) -> bool:
        """Assign a task to an agent, atomically across every process of the swarm.

        True when claimed (the task object handed out says ``claimed``, and the claim is
        announced). False when the task does not exist, is claimed already, waits for a
        dependency, or is completed, failed or in a retry backoff: ``.modern.claim()`` says
        which. Invalid ids raise ``ValueError`` (``ValidationError``).
        """
        result = self.modern.claim(task_id, agent_id)
        if result.task is not None:
            self._remember(result.task)
        if not result.claimed:
            log.info("claim_refused", task_id=task_id, agent_id=agent_id, reason=result.reason)
        return result.claimed

    def complete_task(self, task_id: str) -> bool:
        """Mark a task completed; its dependents with nothing else unfinished become available
        (and the completion is announced).

        True when completed. False when this object holds no current claim of it: it was
        never claimed here, or the claim was lost (its lease ran out and another agent holds
        it now), or the task does not exist. Only the holder completes a task; for one
        claimed elsewhere use ``.queue.complete(id, agent, token)``.
        """
        try:
            completion = self.modern.complete_task(task_id)
        except (StaleClaim, TaskNotFound) as exc:
            log.info("complete_refused", task_id=task_id, reason=str(exc))
            return False
        self._remember(completion.task)
        if completion.unblocked:
            for typed in self.queue.get_many(completion.unblocked):
                self._remember(typed)
        return True

    def get_progress_summary(self) -> dict[str, Any]:
        """The predecessor's progress keys for the whole swarm: ``total``, ``completed``,
        ``in_progress`` (claimed or in progress), ``available``, ``blocked`` (waiting for a
        dependency), ``completion_pct``; plus ``waiting`` (in a retry backoff) and ``failed``,
        which it had no word for. ``.queue.progress()`` has every count and what failed
        tasks block."""
        p = self.queue.progress()
        total, completed = int(p["total"]), int(p["completed"])
        return {
            "total": total,
            "completed": completed,
            "in_progress": int(p["claimed"]) + int(p["in_progress"]),
            "available": int(p["available"]),
            "blocked": int(p["blocked"]),
            "completion_pct": (completed / total * 100) if total > 0 else 0,
            "waiting": int(p["waiting"]),
            "failed": int(p["failed"]),
        }

    def get_agent_workload(self) -> dict[str, list[str]]:
        """Which tasks each agent took: every task with an agent (claimed, in progress or
        completed by it), in submission order. ``.queue.workload()`` lists only the ones held
        now."""
        workload: dict[str, list[str]] = {}
        for typed in self.queue.tasks():
            if typed.agent_id:
                workload.setdefault(typed.agent_id, []).append(typed.id)
        return workload
