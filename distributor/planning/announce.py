"""Announcements of the swarm's progress to every agent's pane.

A new plan announces its available tasks, a claim who took what, a completion what finished and
what it unblocked; each can be switched off in :class:`~distributor.settings.Settings`. An
announcement is a broadcast (recorded, then delivered by the hosts' workers), so it never waits
for tmux. A failed announcement is logged with its specific reason and never undoes or fails
the transition it reports: the task graph in Redis stays the truth, the announcement is news.
"""

from __future__ import annotations

from collections.abc import Iterable

import redis
from redis.exceptions import RedisClusterException

from distributor.errors import AgentNotFoundError, DeliveryBrokerRequired, SwarmQueueError
from distributor.log import get_logger
from distributor.messaging.broker import broker_client, separate_broker
from distributor.messaging.messages import MessageType, Messenger
from distributor.settings import Settings
from distributor.store import counters
from distributor.store.connect import SyncRedis
from distributor.tasks.models import Completion, Task

log = get_logger(__name__)

MAX_LISTED = 20

# What an announcement may fail with: swarmqueue's own errors (rate limit, no agent, Redis
# unreachable after the retry budget, invalid content), any Redis error reply and a cluster
# client's own errors (RedisClusterException is no RedisError). Anything else is a bug.
ANNOUNCE_ERRORS = (SwarmQueueError, redis.RedisError, RedisClusterException)


def announcer_settings(settings: Settings) -> Settings:
    """Settings whose rate limit is the announcing sender's own (one message per transition)."""
    return settings.model_copy(
        update={"rate_limit_per_minute": settings.announce_rate_limit_per_minute}
    )


def describe_tasks(tasks: Iterable[Task]) -> str:
    """``id (title), ...``, at most :data:`MAX_LISTED` of them."""
    listed = list(tasks)
    shown = ", ".join(f"{t.id} ({t.title})" for t in listed[:MAX_LISTED])
    more = f" and {len(listed) - MAX_LISTED} more" if len(listed) > MAX_LISTED else ""
    return shown + more


def plan_text(available: list[Task], total: int) -> str:
    return (
        f"New plan: {total} task(s); available now: {describe_tasks(available)}. "
        "Claim with: swarmqueue next --agent <you>"
    )


def claim_text(task: Task) -> str:
    return f"{task.agent_id} claimed {task.id}: {task.title}"


def completion_text(completion: Completion) -> str:
    task = completion.task
    unblocked = ", ".join(completion.unblocked) or "nothing new"
    return f"{task.agent_id} completed {task.id}: {task.title}; now available: {unblocked}"


class Announcer:
    """Broadcasts progress as the work distributor (blocking client; see ``aannounce`` users).

    A failed announcement is logged with its reason and counted: ``failures`` here (per
    reason), and ``announce_failed`` in the swarm's counters (:mod:`distributor.store.counters`)
    except for "no agent registered yet", which is normal.
    """

    def __init__(self, messenger: Messenger | None, settings: Settings) -> None:
        self.messenger = messenger
        self.settings = settings
        self.sent: list[str] = []
        self.failures: dict[str, int] = {}

    @classmethod
    def on(
        cls,
        redis_client: SyncRedis,
        swarm: str,
        settings: Settings,
        broker: redis.Redis | None = None,
    ) -> Announcer:
        """An announcer for ``swarm`` on an existing store client; deliveries go through
        ``broker`` (default: the store when it is one Redis and no other broker is set, else
        one built from ``settings.delivery_redis_url``)."""
        if broker is None and (
            separate_broker(settings) or not isinstance(redis_client, redis.Redis)
        ):
            try:
                broker = broker_client(settings, redis_client)
            except DeliveryBrokerRequired as exc:  # every announcement's enqueue is counted
                log.warning("announcements without a delivery broker", reason=str(exc))
        messenger = Messenger(
            redis_client, swarm, settings=announcer_settings(settings), broker=broker
        )
        return cls(messenger, settings)

    def _send(self, kind: str, content: str, msg_type: MessageType) -> str | None:
        if self.messenger is None:
            log.debug("announcement_skipped", kind=kind, reason="no messenger")
            return None
        try:
            message_id = self.messenger.broadcast(
                content, msg_type, sender=self.settings.announce_sender
            )
        except ANNOUNCE_ERRORS as exc:
            # No agent to tell is normal before agents register; the rest deserve attention.
            reason = type(exc).__name__
            if isinstance(exc, AgentNotFoundError):
                log.debug("announcement_failed", kind=kind, reason=reason, detail=str(exc))
                return None
            log.warning("announcement_failed", kind=kind, reason=reason, detail=str(exc))
            self.failures[reason] = self.failures.get(reason, 0) + 1
            m = self.messenger
            counters.count(m.redis, m.keys, "announce_failed", f"{kind}: {reason}: {exc}")
            return None
        self.sent.append(message_id)
        log.info("announced", kind=kind, message_id=message_id)
        return message_id

    def plan_submitted(self, available: list[Task], total: int) -> str | None:
        if not self.settings.announce_plans or not available:
            return None
        return self._send("plan", plan_text(available, total), MessageType.TASK_AVAILABLE)

    def claimed(self, task: Task) -> str | None:
        if not self.settings.announce_claims:
            return None
        return self._send("claim", claim_text(task), MessageType.CLAIMED)

    def completed(self, completion: Completion) -> str | None:
        if not self.settings.announce_completions:
            return None
        return self._send("completion", completion_text(completion), MessageType.COMPLETED)
