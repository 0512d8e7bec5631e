"""``WorkDistributor``: the one object users of the original distributor know, on the Redis queue.

It breaks a feature into tasks, submits them, hands them out, tracks progress and announces
each step to the agents' panes. Every transition is the queue's atomic Lua script, so several
distributors and agents on many hosts can share one swarm; announcements are broadcasts that
never block and never undo a transition when they fail.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import BaseModel, ConfigDict

from distributor.errors import StaleClaim, ValidationError
from distributor.log import get_logger
from distributor.messaging.messages import AsyncMessenger, MessageType, Messenger
from distributor.planning.announce import ANNOUNCE_ERRORS, Announcer, plan_text
from distributor.planning.decompose import decompose
from distributor.settings import Settings
from distributor.tasks.models import Claim, ClaimResult, Completion, Task
from distributor.tasks.queue import TaskQueue
from distributor.tasks.specs import Plan
from distributor.tasks.status import TaskStatus

log = get_logger(__name__)

MAX_AGENTS = 100


class BroadcastSummary(BaseModel):
    """What ``broadcast_tasks`` did: the message (deliveries follow) or why nothing was sent."""

    model_config = ConfigDict(frozen=True)

    announced: list[str]
    message_id: str | None = None
    recipients: int = 0
    pending: int = 0
    error: str | None = None


class WorkDistributor:
    """Decompose features, hand out tasks and report progress for a swarm of agents.

    ``queue`` defaults to one built from settings; ``messenger`` (sync :class:`Messenger` or
    :class:`AsyncMessenger`) defaults to one on the queue's Redis; pass ``announce=False`` to
    make no announcements at all.
    """

    def __init__(
        self,
        num_agents: int = 4,
        queue: TaskQueue | None = None,
        messenger: Messenger | AsyncMessenger | None = None,
        *,
        settings: Settings | None = None,
        announce: bool = True,
    ) -> None:
        if not isinstance(num_agents, int) or not 1 <= num_agents <= MAX_AGENTS:
            raise ValidationError(f"num_agents must be between 1 and {MAX_AGENTS}")
        self.num_agents = num_agents
        self.queue = queue or TaskQueue.from_url(settings=settings)
        self.settings = settings or self.queue.settings
        if messenger is None and announce:
            self.announcer = Announcer.on(self.queue.redis, self.queue.swarm, self.settings)
            messenger = self.announcer.messenger
        else:
            sync_messenger = messenger if isinstance(messenger, Messenger) and announce else None
            self.announcer = Announcer(sync_messenger, self.settings)
        self.messenger = messenger
        self._claims: dict[str, Claim] = {}

    # -- planning ---------------------------------------------------------------------------

    def decompose_feature(
        self, description: str, research_results: dict[str, Any] | None = None
    ) -> list[Task]:
        """Break a feature into a small DAG of tasks (no I/O; nothing is submitted)."""
        return decompose(description, research_results)

    def submit_tasks(self, tasks: list[Task] | Plan) -> list[str]:
        """Submit tasks (all or nothing) and announce the ones available at once."""
        plan = tasks if isinstance(tasks, Plan) else Plan(tasks=list(tasks))
        ids = self.queue.submit(plan)
        # not blocked when read back = available when submitted: an agent waiting for work may
        # already have claimed (even finished) one, and it still belongs in the announcement
        available = [t for t in self.queue.get_many(ids) if t.status != TaskStatus.BLOCKED]
        self.announcer.plan_submitted(available, len(ids))
        return ids

    def plan_feature(
        self, description: str, research_results: dict[str, Any] | None = None
    ) -> list[Task]:
        """Decompose a feature and submit its tasks; returns them with their state."""
        ids = self.submit_tasks(self.decompose_feature(description, research_results))
        return self.queue.get_many(ids)

    async def broadcast_tasks(self, tasks: list[Task]) -> BroadcastSummary:
        """Announce which of ``tasks`` are available now, without blocking the event loop.

        Returns at once with the recorded message (each recipient ``pending`` until a worker
        delivers it; see ``Messenger.get``), or the specific reason nothing was sent.
        """
        current = await asyncio.to_thread(self.queue.get_many, [t.id for t in tasks])
        available = [t for t in current if t.status == TaskStatus.AVAILABLE]
        ids = [t.id for t in available]
        if not available:
            return BroadcastSummary(announced=[], error="no available tasks")
        content = plan_text(available, len(tasks))
        sender = self.settings.announce_sender
        try:
            if isinstance(self.messenger, AsyncMessenger):
                message_id = await self.messenger.broadcast(
                    content, MessageType.TASK_AVAILABLE, sender=sender
                )
                message = await self.messenger.get(message_id)
            elif isinstance(self.messenger, Messenger):
                message_id = await asyncio.to_thread(
                    self.messenger.broadcast, content, MessageType.TASK_AVAILABLE, sender
                )
                message = await asyncio.to_thread(self.messenger.get, message_id)
            else:
                return BroadcastSummary(announced=ids, error="announcements are off")
        except ANNOUNCE_ERRORS as exc:
            log.warning("broadcast_tasks_failed", reason=type(exc).__name__, detail=str(exc))
            return BroadcastSummary(announced=ids, error=f"{type(exc).__name__}: {exc}")
        counts = message.counts()
        return BroadcastSummary(
            announced=ids,
            message_id=message_id,
            recipients=len(message.deliveries),
            pending=counts["pending"],
        )

    # -- handing out work -------------------------------------------------------------------

    def claim(self, task_id: str, agent_id: str, *, lease: float | None = None) -> ClaimResult:
        """Claim a task for an agent; the full result (reason, token) of :meth:`claim_task`."""
        result = self.queue.claim(task_id, agent_id, lease=lease)
        if result.claim is not None:
            self._claims[task_id] = result.claim
            self.announcer.claimed(result.claim.task)
        return result

    def claim_task(self, task_id: str, agent_id: str) -> bool:
        """Assign a task to an agent.

        Returns True when claimed. False when the task does not exist, is already claimed by
        an agent, has an unfinished dependency, or is completed, failed or waiting out a retry
        backoff; :meth:`claim` returns the same outcome with its ``reason``. Invalid ids raise
        ``ValidationError``. The claim is announced; a failed announcement is only logged.
        """
        return self.claim(task_id, agent_id).claimed

    def claim_next(self, agent_id: str, *, wait: float | None = None) -> Claim | None:
        """Claim the best ready task for an agent (waiting up to ``wait`` seconds)."""
        claim = self.queue.claim_next(agent_id, wait=wait)
        if claim is not None:
            self._claims[claim.task.id] = claim
            self.announcer.claimed(claim.task)
        return claim

    def complete_task(
        self, task_id: str, agent_id: str | None = None, token: int | None = None
    ) -> Completion:
        """Mark a task completed and announce what it unblocked.

        Without ``agent_id``/``token``, the claim this distributor made is used. Raises
        ``StaleClaim`` if that claim is no longer the task's current one.
        """
        held = self._claims.get(task_id)
        if agent_id is None or token is None:
            if held is None:
                raise StaleClaim(task_id, "no claim made here; pass agent_id and token")
            agent_id = agent_id or held.task.agent_id
            token = token if token is not None else held.token
        assert agent_id is not None
        completion = self.queue.complete(task_id, agent_id, token)
        self._claims.pop(task_id, None)
        self.announcer.completed(completion)
        return completion

    # -- reporting --------------------------------------------------------------------------

    def get_progress_summary(self) -> dict[str, Any]:
        """Counts per status, completion percentage, failures that block others, agents."""
        return {**self.queue.progress(), "num_agents": self.num_agents}

    def get_agent_workload(self) -> dict[str, list[str]]:
        """Each agent's claimed and in-progress task ids."""
        return self.queue.workload()
