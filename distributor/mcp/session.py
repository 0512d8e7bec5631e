"""One agent's side of the MCP server: its connections, the claims it holds, and its requests.

The server speaks for a single agent (``--agent``), so it can keep what the CLI keeps in files:

* **claim tokens**: a claim's fencing token is kept here when a tool claims the task and dropped
  when the task is completed, failed or released, so tools take a task id only. A claim this
  agent made before the server started (another session, the CLI) is adopted from the task on
  first use; a claim the agent no longer holds is refused by the queue (``StaleClaim``).
* **request ids**: a state-changing call gets a request id keyed by the tool and its arguments,
  kept until Redis answers. When Redis stays unreachable the tool error names it, and calling the
  same tool again with the same arguments sends the same id, so a claim or completion that did
  reach Redis is answered once (its stored reply), never done twice.

Every method returns plain JSON-ready data; text that other agents wrote (titles, descriptions,
errors, messages) is made inert first. Announcements (claimed, completed) go to the other agents'
panes as the CLI's do, in the background: the reply never waits for them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import redis

from distributor.errors import AgentNotFoundError, RedisUnavailable, StaleClaim, SwarmQueueError
from distributor.log import get_logger
from distributor.mcp.priming import DATA_NOTE, Brief, brief
from distributor.messaging.broker import broker_client
from distributor.messaging.messages import AsyncMessenger, InboxEntry, MessageType
from distributor.messaging.sanitize import strip_controls
from distributor.planning.announce import (
    ANNOUNCE_ERRORS,
    announcer_settings,
    claim_text,
    completion_text,
)
from distributor.reservations.models import Reservation
from distributor.settings import Settings
from distributor.store.client import redis_from_url
from distributor.tasks.aio import AsyncTaskQueue
from distributor.tasks.ids import derived_request_id, new_request_id
from distributor.tasks.models import Claim, Completion, Task
from distributor.tasks.status import ACTIVE_STATUSES
from distributor.tasks.waiting import check_wait

log = get_logger(__name__)

PENDING_KEPT = 32  # unanswered request ids kept; the oldest goes first
PROGRESS_EVERY = 1.0  # seconds between progress notifications while next_task waits
MAX_WAIT = 3600.0
HELD_SHOWN = 5  # held-up tasks named when every ready task's files are held
QUIET_SECONDS = 10.0  # no announcements this long after one found no agent to tell

Progress = Callable[[float, float, str], Awaitable[None]]


def shown_task(task: Task, *, full: bool = True) -> dict[str, Any]:
    """A task as a reply shows it: inert text, no fencing token (the server holds it)."""
    data = task.model_dump(mode="json", exclude={"token"})
    data["title"] = strip_controls(task.title)
    data["description"] = strip_controls(task.description, keep_newlines=True)
    data["files"] = [strip_controls(f) for f in task.files]
    if task.last_error is not None:
        data["last_error"] = strip_controls(task.last_error)
    if not full:
        keep = ("id", "title", "status", "agent_id", "attempts", "priority", "dependencies")
        data = {k: data[k] for k in keep}
    return data


def shown_message(entry: InboxEntry) -> dict[str, Any]:
    """An inbox entry as a reply shows it (its content is data from another agent)."""
    return {
        "message_id": entry.message_id,
        "from": strip_controls(entry.sender),
        "type": entry.type.value,
        "at": entry.at.isoformat(),
        "content": strip_controls(entry.content, keep_newlines=True),
        "reply_to": entry.reply_to,
        "requires_ack": entry.requires_ack,
    }


def shown_reservation(r: Reservation) -> dict[str, Any]:
    """A reservation as a reply shows it (inert text)."""
    return {
        "agent": strip_controls(r.agent_id),
        "pattern": strip_controls(r.pattern),
        "mode": r.mode,
        "task": r.task_id,
        "expires_at": r.expires_at.isoformat(),
        "reason": strip_controls(r.reason),
    }


class AgentSession:
    """The state and operations of the agent this server speaks for (asyncio clients)."""

    def __init__(self, settings: Settings, agent_id: str, queue: AsyncTaskQueue | None = None):
        self.settings = settings
        self.agent = agent_id
        self.queue = queue or AsyncTaskQueue.from_url(settings=settings)
        self.tokens: dict[str, int] = {}
        self._pending: dict[str, str] = {}
        self._messenger: AsyncMessenger | None = None
        self._announcer: AsyncMessenger | None = None
        self._background: set[asyncio.Task[None]] = set()
        self._quiet_until = 0.0

    @property
    def swarm(self) -> str:
        return self.queue.swarm

    async def aclose(self) -> None:
        """Let announcements in flight finish, then close the connections."""
        if self._background:
            await asyncio.wait(self._background, timeout=5)
        for messenger in (self._messenger, self._announcer):
            if messenger is not None:
                for client in (messenger.rq_redis, messenger.counter_client):
                    if client is not None:
                        client.close()
        await self.queue.aclose()

    # -- bookkeeping ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def pending(self, *request: object) -> Iterator[str]:
        """The request id for ``request`` (a tool and its defining arguments): the one an
        unanswered earlier call of the same request left, else a new one. Dropped once Redis
        answered (done or refused); kept, and named in the error, when it was unreachable."""
        key = json.dumps(request, default=str)
        request_id = self._pending.get(key)
        if request_id is None:
            request_id = self._pending[key] = new_request_id()
            for old in list(self._pending)[: max(0, len(self._pending) - PENDING_KEPT)]:
                del self._pending[old]
        try:
            yield request_id
        except RedisUnavailable as exc:
            exc.request_id = request_id
            raise
        except (SwarmQueueError, redis.ResponseError):
            self._pending.pop(key, None)
            raise
        self._pending.pop(key, None)

    async def token(self, task_id: str, given: int | None = None) -> int:
        """The fencing token for ``task_id``: given, held, or adopted from a claim this agent
        made before this server started; ``StaleClaim`` when the agent holds no claim on it."""
        if given is not None:
            return given
        held = self.tokens.get(task_id)
        if held is not None:
            return held
        task = await self.queue.get(task_id)
        if task.agent_id != self.agent or task.status not in ACTIVE_STATUSES or task.token < 1:
            raise StaleClaim(task_id, f"agent {self.agent!r} does not hold it")
        self.tokens[task_id] = task.token
        log.info("claim_adopted", task_id=task_id, agent_id=self.agent)
        return task.token

    def _took(self, claim: Claim, announce: bool = True) -> dict[str, Any]:
        self.tokens[claim.task.id] = claim.token
        if announce and self.settings.announce_claims:
            self._announce("claim", claim_text(claim.task), MessageType.CLAIMED)
        return {**shown_task(claim.task), "token": claim.token}

    def _announce(self, kind: str, content: str, msg_type: MessageType) -> None:
        """Broadcast a transition to the other agents without holding up the reply.

        After a broadcast found no agent to tell, announcements pause for
        :data:`QUIET_SECONDS` (an agent working alone pays nothing for them).
        """
        loop = asyncio.get_running_loop()
        if loop.time() < self._quiet_until:
            return
        if self._announcer is None:
            self._announcer = self._new_messenger(announcer_settings(self.settings))
        sender = self.settings.announce_sender
        task = asyncio.ensure_future(self._send_announcement(kind, content, msg_type, sender))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _send_announcement(
        self, kind: str, content: str, msg_type: MessageType, sender: str
    ) -> None:
        assert self._announcer is not None
        try:
            await self._announcer.broadcast(content, msg_type, sender=sender)
        except ANNOUNCE_ERRORS as exc:  # the transition stands; news that failed is only logged
            if isinstance(exc, AgentNotFoundError):
                self._quiet_until = asyncio.get_running_loop().time() + QUIET_SECONDS
            log.debug("announcement_failed", kind=kind, reason=type(exc).__name__)

    def _new_messenger(self, settings: Settings) -> AsyncMessenger:
        store = redis_from_url(settings.redis_url, settings.redis_retries)  # failure counters
        rq = broker_client(settings, store)  # RQ's enqueue: the delivery broker
        return AsyncMessenger(
            self.queue.redis, rq, self.swarm, settings=settings, counter_client=store
        )

    @property
    def messenger(self) -> AsyncMessenger:
        if self._messenger is None:
            self._messenger = self._new_messenger(self.settings)
        return self._messenger

    async def _waited(
        self, claiming: Awaitable[Claim | None], wait: float, progress: Progress | None
    ) -> Claim | None:
        """Await a waiting claim, reporting progress every :data:`PROGRESS_EVERY` seconds."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        task = asyncio.ensure_future(claiming)
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=PROGRESS_EVERY)
                if done:
                    return task.result()
                if progress is not None:
                    waited = min(wait, loop.time() - started)
                    await progress(waited, wait, f"no task ready yet; waited {waited:.0f}s")
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _claim_next(
        self, request_id: str, wait: float, lease: float | None, progress: Progress | None
    ) -> Claim | None:
        claim = await self.queue.claim_next(self.agent, lease=lease, request_id=request_id)
        if claim is not None or not wait:
            return claim
        if progress is not None:
            await progress(0.0, wait, "no task ready yet; waiting for one")
        waiting = self.queue.claim_next(self.agent, lease=lease, request_id=request_id, wait=wait)
        return await self._waited(waiting, wait, progress)

    # -- the agent's loop ------------------------------------------------------------------------

    async def next_task(
        self, wait: float = 0.0, lease: float | None = None, progress: Progress | None = None
    ) -> dict[str, Any]:
        """Claim the best ready task, waiting up to ``wait`` seconds for one."""
        wait = _wait(wait)
        with self.pending("next", lease) as rid:
            claim = await self._claim_next(rid, wait, lease, progress)
        if claim is None:
            why = f"no task became ready within {wait:g}s" if wait else "no task is ready"
            reply: dict[str, Any] = {"task": None, "reason": why}
            held = await self.queue.held_up()
            if held:
                reply["reason"] = "every ready task's files are held by other agents"
                reply["held_by"] = {
                    task_id: [shown_reservation(r) for r in holders]
                    for task_id, holders in list(held.items())[:HELD_SHOWN]
                }
            return {**reply, "progress": await self.progress_counts()}
        return {"task": self._took(claim)}

    async def start(self, task_id: str, token: int | None = None) -> dict[str, Any]:
        held = await self.token(task_id, token)
        with self.pending("start", task_id, held) as rid:
            task = await self.queue.start(task_id, self.agent, held, request_id=rid)
        return {"task": shown_task(task)}

    async def heartbeat(
        self, task_id: str, lease: float | None = None, token: int | None = None
    ) -> dict[str, Any]:
        held = await self.token(task_id, token)
        task = await self.queue.heartbeat(task_id, self.agent, held, lease=lease)
        return {"task_id": task.id, "lease_expires_at": _iso(task)}

    async def complete(
        self,
        task_id: str,
        take_next: bool = True,
        wait: float = 0.0,
        token: int | None = None,
        progress: Progress | None = None,
    ) -> dict[str, Any]:
        """Complete a held task; with ``take_next`` claim the next one in the same step (and
        wait up to ``wait`` seconds for one when none is ready)."""
        wait = _wait(wait)
        held = await self.token(task_id, token)
        with self.pending("complete", task_id, held, take_next) as rid:
            completion = await self.queue.complete(
                task_id, self.agent, held, claim_next=take_next, request_id=rid
            )
            claim = completion.next
            if take_next and claim is None and wait:  # a retry replays both steps
                then = derived_request_id(rid, "next")
                claim = await self._claim_next(then, wait, None, progress)
        self.tokens.pop(task_id, None)  # only now: a retried call still sends its token
        reply: dict[str, Any] = {
            "completed": task_id,
            "now_available": completion.unblocked,
        }
        self._completed(completion, claim)
        if take_next:
            reply["next"] = self._took(claim, announce=False) if claim is not None else None
            if claim is None:
                reply["progress"] = await self.progress_counts()
        return reply

    def _completed(self, completion: Completion, claim: Claim | None) -> None:
        """Announce a completion, and the claim made in the same step, as one message."""
        parts = []
        if self.settings.announce_completions:
            parts.append(completion_text(completion))
        if claim is not None and self.settings.announce_claims:
            parts.append(claim_text(claim.task))
        if parts:
            done = self.settings.announce_completions
            kind = MessageType.COMPLETED if done else MessageType.CLAIMED
            self._announce("completion", "; then ".join(parts), kind)

    async def fail(
        self, task_id: str, reason: str, retry: bool = True, token: int | None = None
    ) -> dict[str, Any]:
        held = await self.token(task_id, token)
        with self.pending("fail", task_id, held, reason, retry) as rid:
            outcome = await self.queue.fail(
                task_id, self.agent, held, reason, retry=retry, request_id=rid
            )
        self.tokens.pop(task_id, None)
        return {
            "task": shown_task(outcome.task, full=False),
            "will_retry": outcome.will_retry,
            "retry_at": outcome.retry_at.isoformat() if outcome.retry_at else None,
        }

    async def release(self, task_id: str, token: int | None = None) -> dict[str, Any]:
        held = await self.token(task_id, token)
        with self.pending("release", task_id, held) as rid:
            task = await self.queue.release(task_id, self.agent, held, request_id=rid)
        self.tokens.pop(task_id, None)
        return {"task": shown_task(task, full=False)}

    async def add_task(
        self,
        title: str,
        description: str = "",
        files: list[str] | None = None,
        priority: int = 0,
        depends_on: list[str] | None = None,
        blocks: str | None = None,
        discovered_from: str | None = None,
        related: list[str] | None = None,
    ) -> dict[str, Any]:
        """Add work found while on a task to the live swarm (one atomic script; a retried call
        adds it once)."""
        request = ("add", title, description, files, priority, depends_on, blocks)
        with self.pending(*request, discovered_from, related) as rid:
            task = await self.queue.add_task(
                title,
                description=description,
                files=files or (),
                priority=priority,
                depends_on=depends_on or (),
                blocks=blocks,
                discovered_from=discovered_from,
                related=related or (),
                agent_id=self.agent,
                request_id=rid,
            )
        return {"task": shown_task(task)}

    # -- file reservations ---------------------------------------------------------------------

    async def reserve(
        self, paths: list[str], ttl: float | None = None, shared: bool = False, reason: str = ""
    ) -> dict[str, Any]:
        """Reserve files for work outside a task (all or none)."""
        with self.pending("reserve", paths, ttl, shared, reason) as rid:
            taken = await self.queue.reserve(
                paths, self.agent, ttl=ttl, shared=shared, reason=reason, request_id=rid
            )
        return {"reserved": [shown_reservation(r) for r in taken]}

    async def unreserve(self, paths: list[str] | None = None) -> dict[str, Any]:
        """Free this agent's explicit reservations of ``paths`` (all of them when None)."""
        with self.pending("unreserve", paths) as rid:
            freed = await self.queue.unreserve(self.agent, paths, request_id=rid)
        return {"freed": freed}

    async def reservations(self) -> dict[str, Any]:
        """Every live reservation: who holds which paths until when."""
        live = await self.queue.reservations()
        return {"reservations": [shown_reservation(r) for r in live]}

    # -- reads ---------------------------------------------------------------------------------

    async def progress_counts(self) -> dict[str, Any]:
        p = await self.queue.progress()
        return {k: v for k, v in p.items() if k != "blocked_by_failed"}

    async def status(self) -> dict[str, Any]:
        """The swarm's progress and who holds what."""
        p = await self.queue.progress()
        return {"swarm": self.swarm, **p, "workload": await self.queue.workload()}

    async def tasks(self, status: str | None = None) -> dict[str, Any]:
        found = await self.queue.tasks(status)
        return {"tasks": [shown_task(t, full=False) for t in found]}

    async def task(self, task_id: str) -> dict[str, Any]:
        return {"task": shown_task(await self.queue.get(task_id))}

    async def brief(self) -> Brief:
        return await self.queue._executor.run(brief(self.queue.keys, self.settings, self.agent))

    # -- messages ------------------------------------------------------------------------------

    async def send(
        self,
        to: str,
        text: str,
        msg_type: str = "INFO",
        reply_to: str | None = None,
        requires_ack: bool = False,
    ) -> dict[str, Any]:
        message_id = await self.messenger.send(
            to, text, msg_type, sender=self.agent, reply_to=reply_to, requires_ack=requires_ack
        )
        return {"message_id": message_id}

    async def broadcast(
        self,
        text: str,
        msg_type: str = "INFO",
        to: list[str] | None = None,
        reply_to: str | None = None,
        requires_ack: bool = False,
    ) -> dict[str, Any]:
        message_id = await self.messenger.broadcast(
            text, msg_type, self.agent, to, reply_to=reply_to, requires_ack=requires_ack
        )
        return {"message_id": message_id}

    async def acknowledge(self, message_id: str) -> dict[str, Any]:
        """Acknowledge a message this agent received (stops its re-deliveries)."""
        ack = await self.messenger.acknowledge(message_id, self.agent)
        return {
            "message_id": ack.message_id,
            "acknowledged_at": ack.acked_at.isoformat(),
            "already": ack.already,
            "late": ack.late,
        }

    async def thread(self, message_id: str) -> dict[str, Any]:
        """The thread ``message_id`` belongs to: root first, then replies in send order."""
        messages = await self.messenger.thread(message_id)
        return {
            "note": DATA_NOTE,
            "messages": [
                {
                    "message_id": m.id,
                    "from": strip_controls(m.sender),
                    "type": m.type.value,
                    "reply_to": m.reply_to,
                    "content": strip_controls(m.content, keep_newlines=True),
                }
                for m in messages
            ],
        }

    async def inbox(self, count: int = 20, only_new: bool = True) -> dict[str, Any]:
        """This agent's messages, oldest first: ``only_new``: those after its read mark (shared
        with ``swarmqueue inbox --unread`` and ``prime``), which then moves past them; else the
        latest ``count``."""
        if not only_new:
            entries = await self.messenger.inbox(self.agent, count)
            return {"note": DATA_NOTE, "messages": [shown_message(e) for e in entries]}
        found = await self.messenger.unread(self.agent, count)
        if found.entries and found.entries[-1].entry_id is not None:
            await self.messenger.mark_read(self.agent, found.entries[-1].entry_id)
        return {
            "note": DATA_NOTE,
            "messages": [shown_message(e) for e in found.entries],
            "more_unread": found.total - len(found.entries),
        }


def _wait(wait: float) -> float:
    return min(check_wait(wait), MAX_WAIT)


def _iso(task: Task) -> str | None:
    return task.lease_expires_at.isoformat() if task.lease_expires_at else None
