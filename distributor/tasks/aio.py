"""``AsyncTaskQueue``: the asyncio client, on ``redis.asyncio``.

It runs the very same :class:`~distributor.tasks.ops.Operations` and
:mod:`~distributor.tasks.queries` generators and Lua scripts as
:class:`~distributor.tasks.queue.TaskQueue`; only the driver differs
(:class:`~distributor.store.executor.AsyncExecutor` awaits each Redis call). Nothing here blocks the
event loop: waiting for work and following events await pub/sub and ``XREAD BLOCK`` replies.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from distributor.reservations import queries as reservation_queries
from distributor.reservations.models import Reservation
from distributor.store.calls import Command, Op
from distributor.store.client import AsyncClient
from distributor.store.executor import AsyncExecutor
from distributor.store.scripts import SCRIPT_NAMES
from distributor.tasks import events as event_log
from distributor.tasks import queries
from distributor.tasks.discovery import new_task
from distributor.tasks.models import (
    Claim,
    ClaimResult,
    Completion,
    Event,
    FailOutcome,
    NextClaim,
    Task,
)
from distributor.tasks.ops import Operations
from distributor.tasks.status import TaskStatus
from distributor.tasks.waiting import wait_for_claim_async

if TYPE_CHECKING:
    from distributor.tasks.specs import Plan

T = TypeVar("T")


class AsyncTaskQueue(AsyncClient):
    """A swarm's task graph for asyncio code: every method of ``TaskQueue``, awaited.

    ``redis`` may be any ``redis.asyncio`` client (including ``fakeredis.FakeAsyncRedis``).
    Use ``async with AsyncTaskQueue.from_url(...) as queue:`` to close connections on exit.
    """

    def _setup(self) -> None:
        self.ops = Operations(self.keys, self.settings)
        self._executor = AsyncExecutor(self.redis, SCRIPT_NAMES)

    async def aclose(self) -> None:
        """Close the client's connections."""
        await self.redis.aclose()

    async def __aenter__(self) -> AsyncTaskQueue:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def _run(self, op: Op[T]) -> Awaitable[T]:
        return self._executor.run(op)

    # -- the task lifecycle (see TaskQueue for the full contracts) ----------------------------

    async def submit(
        self, plan: Plan | dict[str, Any] | list[Any], request_id: str | None = None
    ) -> list[str]:
        """Add a plan's tasks, all or nothing; returns their ids, dependencies first."""
        return await self._run(self.ops.submit(plan, request_id))

    async def add_task(
        self,
        title: str,
        *,
        task_id: str | None = None,
        description: str = "",
        files: Iterable[str] = (),
        priority: int = 0,
        estimated_minutes: int | None = None,
        max_attempts: int = 3,
        lease_seconds: float | None = None,
        depends_on: Iterable[str] = (),
        blocks: str | None = None,
        discovered_from: str | None = None,
        related: Iterable[str] = (),
        agent_id: str | None = None,
        request_id: str | None = None,
    ) -> Task:
        """Add one task to the live swarm, atomically (see ``TaskQueue.add_task``)."""
        new = new_task(
            title,
            task_id=task_id,
            description=description,
            files=files,
            priority=priority,
            estimated_minutes=estimated_minutes,
            max_attempts=max_attempts,
            lease_seconds=lease_seconds,
            depends_on=depends_on,
            blocks=blocks,
            discovered_from=discovered_from,
            related=related,
            agent_id=agent_id,
        )
        return await self._run(self.ops.add_task(new, request_id))

    async def claim(
        self,
        task_id: str,
        agent_id: str,
        *,
        lease: float | None = None,
        request_id: str | None = None,
    ) -> ClaimResult:
        """Claim one named task; a refusal says why."""
        return await self._run(self.ops.claim(task_id, agent_id, lease, request_id))

    async def claim_next(
        self,
        agent_id: str,
        *,
        lease: float | None = None,
        request_id: str | None = None,
        wait: float | None = None,
    ) -> Claim | None:
        """Claim the best ready task, or ``None``; with ``wait``, await one up to that many
        seconds (woken by the swarm's channel, see :mod:`distributor.tasks.waiting`)."""
        if wait:
            return await wait_for_claim_async(self, agent_id, wait, lease, request_id)
        claim, _ = await self._run(self.ops.claim_next(agent_id, lease, request_id))
        return claim

    async def start(
        self,
        task_id: str,
        agent_id: str,
        token: int,
        *,
        lease: float | None = None,
        request_id: str | None = None,
    ) -> Task:
        """Mark a held task ``in_progress`` and renew its lease."""
        return await self._run(self.ops.start(task_id, agent_id, token, lease, request_id))

    async def heartbeat(
        self, task_id: str, agent_id: str, token: int, *, lease: float | None = None
    ) -> Task:
        """Renew a held task's lease from now; ``StaleClaim`` if the claim was lost."""
        return await self._run(self.ops.heartbeat(task_id, agent_id, token, lease))

    async def complete(
        self,
        task_id: str,
        agent_id: str,
        token: int,
        *,
        claim_next: bool = False,
        lease: float | None = None,
        request_id: str | None = None,
    ) -> Completion:
        """Finish a held task (and with ``claim_next=True`` claim the next one in the same step)."""
        return await self._run(
            self.ops.complete(task_id, agent_id, token, request_id, claim_next, lease)
        )

    async def fail(
        self,
        task_id: str,
        agent_id: str,
        token: int,
        reason: str,
        *,
        retry: bool = True,
        request_id: str | None = None,
    ) -> FailOutcome:
        """Report a held task as failed: while attempts remain it is ``waiting`` until
        ``retry_at`` (a backoff), then available again; else ``failed``."""
        return await self._run(self.ops.fail(task_id, agent_id, token, reason, retry, request_id))

    async def release(
        self, task_id: str, agent_id: str, token: int, *, request_id: str | None = None
    ) -> Task:
        """Hand a held task back unfinished, without counting a failed attempt."""
        return await self._run(self.ops.release(task_id, agent_id, token, request_id))

    async def retry(self, task_id: str) -> Task:
        """Operator: give a failed task a fresh start (attempts reset)."""
        return await self._run(self.ops.retry(task_id))

    async def cancel(self, task_id: str, reason: str = "cancelled by operator") -> Task:
        """Operator: stop an unfinished task; it becomes ``failed`` until retried."""
        return await self._run(self.ops.cancel(task_id, reason))

    async def reap(self) -> int:
        """Recover every expired lease (and due retry); returns how many leases expired."""
        total = 0
        while True:
            expired, promoted = await self._run(self.ops.reap_batch())
            total += expired
            if expired < self.settings.reap_batch and promoted < self.settings.reap_batch:
                return total

    # -- file reservations (see distributor.reservations) ---------------------------------------

    async def next_claim(
        self, agent_id: str, *, lease: float | None = None, request_id: str | None = None
    ) -> NextClaim:
        """``claim_next`` in full: the claim, or the reservations that kept the ready tasks."""
        return await self._run(self.ops.next_claim(agent_id, lease, request_id))

    async def reserve(
        self,
        paths: list[str],
        agent_id: str,
        *,
        ttl: float | None = None,
        shared: bool = False,
        reason: str = "",
        request_id: str | None = None,
    ) -> list[Reservation]:
        """Reserve ``paths`` (files, directories, globs) for ``agent_id`` for ``ttl`` seconds
        (default ``settings.reservation_ttl_seconds``), all or none. Raises ``FilesReserved``
        naming the holders when another agent's live reservation conflicts (nothing is
        written); reserving a path again renews it."""
        return await self._run(self.ops.reserve(paths, agent_id, ttl, shared, reason, request_id))

    async def unreserve(
        self, agent_id: str, paths: list[str] | None = None, *, request_id: str | None = None
    ) -> list[str]:
        """Free ``agent_id``'s explicit reservations of ``paths`` (``None``: all of them);
        returns the patterns freed. A claim's reservations end with the claim."""
        return await self._run(self.ops.unreserve(agent_id, paths, request_id))

    async def reservations(self) -> list[Reservation]:
        """Every live reservation (explicit and taken by claims), soonest to expire first."""
        return await self._run(reservation_queries.live(self.keys))

    async def held_up(
        self, live: list[Reservation] | None = None
    ) -> dict[str, list[Reservation]]:
        """Available tasks whose files other agents hold: task id -> the holders (``live``:
        the live reservations, when already read)."""
        return await self._run(queries.held_up(self.keys, live))

    # -- reads ---------------------------------------------------------------------------------

    async def get(self, task_id: str) -> Task:
        """One task with its state; ``TaskNotFound`` if absent."""
        return await self._run(queries.get(self.keys, task_id))

    async def get_many(self, task_ids: list[str]) -> list[Task]:
        return await self._run(queries.many(self.keys, task_ids))

    async def tasks(self, status: TaskStatus | str | None = None) -> list[Task]:
        """All tasks in submission order, optionally filtered by status."""
        return await self._run(queries.tasks(self.keys, status))

    async def page(
        self, status: TaskStatus | str | None = None, after: str | None = None, limit: int = 50
    ) -> tuple[list[Task], bool]:
        """Up to ``limit`` tasks in submission order after task ``after``, and whether more
        follow (pass the page's last id as the next ``after``; see :func:`queries.page`)."""
        return await self._run(queries.page(self.keys, status, after, limit))

    async def layers(self, first: int = 5) -> list[queries.Layer] | None:
        """Tasks counted per layer and status, each layer's first ``first`` ids; ``None`` when
        a task has no stored layer (an older swarm: use :meth:`outline`)."""
        return await self._run(queries.layers(self.keys, first))

    async def outline(self) -> list[tuple[str, str, list[str]]]:
        """Every task as (id, status, dependencies) in submission order, without whole tasks."""
        return await self._run(queries.outline(self.keys))

    async def progress(self) -> dict[str, Any]:
        """Counts per status, ``completion_pct``, and ``blocked_by_failed``."""
        return await self._run(queries.progress(self.keys))

    async def workload(self) -> dict[str, list[str]]:
        """Each agent's claimed and in-progress task ids."""
        return await self._run(queries.workload(self.keys))

    async def ping(self) -> bool:
        """True when Redis answers."""
        return bool(await self._run(_ping()))

    # -- the event log -------------------------------------------------------------------------

    async def events(
        self, since: str = "0", count: int | None = None, *, wait: float | None = None
    ) -> list[Event]:
        """Events after ``since`` (a stream id, ``0`` or ``$``), oldest first; see ``TaskQueue``."""
        return await self._run(event_log.read(self.keys, since, count, wait, self.max_block))

    async def last_event_id(self) -> str:
        """The newest event's id (``0-0`` when none): a cursor for "from now on"."""
        return await self._run(event_log.last_id(self.keys))

    def follow(self, since: str = "$", *, timeout: float | None = None) -> AsyncIterator[Event]:
        """``async for event in queue.follow(since)``: replay after ``since``, then live.

        Stops after ``timeout`` seconds without an event (``None``: never).
        """
        return event_log.follow_async(self._run, self.keys, since, timeout, self.max_block)

    def __aiter__(self) -> AsyncIterator[Event]:
        """``async for event in queue``: every event from now on."""
        return self.follow()


def _ping() -> Op[Any]:
    return (yield Command(("PING",)))
