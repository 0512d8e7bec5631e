"""``TaskQueue``: the synchronous client of a swarm's task graph.

Claims are leases guarded by a fencing token. Why both, in a timeline::

    t0  agent A claims task T (token 7, lease 15 min) and stalls (GC pause, lost network)
    t1  the lease runs out; agent B's claim_next recovers T and claims it (token 8)
    t2  A wakes up and calls complete(T, token=7): refused with StaleClaim, because the
        task's current token is 8; only B's complete(T, token=8) counts.

Every state change is one Lua script, so it is atomic across processes and hosts.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

from distributor.reservations import queries as reservation_queries
from distributor.reservations.models import Reservation
from distributor.store.calls import Command, Op
from distributor.store.client import SyncClient
from distributor.store.executor import SyncExecutor
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
from distributor.tasks.waiting import wait_for_claim

if TYPE_CHECKING:
    from distributor.tasks.specs import Plan

T = TypeVar("T")


class TaskQueue(SyncClient):
    """A swarm's task graph in Redis: submit plans, claim, complete, fail, observe.

    ``redis`` may be any redis-py client (including ``fakeredis.FakeRedis``). Requests that
    change state take an optional ``request_id``; one is generated per call when omitted. On
    connection errors the same call, with the same id, is sent again for up to
    ``settings.retry_budget_seconds`` (a Redis restart or failover), so a reply lost on the wire
    is answered once, not applied twice; then ``RedisUnavailable`` is raised, its
    ``request_id`` naming the request: send it again with that id to get its one outcome.
    """

    def _setup(self) -> None:
        self.ops = Operations(self.keys, self.settings)
        self._executor = SyncExecutor(self.redis, SCRIPT_NAMES)

    def _run(self, op: Op[T]) -> T:
        return self._executor.run(op)

    # -- the task lifecycle -------------------------------------------------------------------

    def submit(
        self, plan: Plan | dict[str, Any] | list[Any], request_id: str | None = None
    ) -> list[str]:
        """Add a plan's tasks, all or nothing; returns their ids in submission order.

        Raises ``ValidationError``, ``DuplicateTask``, ``UnknownDependency`` or
        ``DependencyCycle`` (naming the cycle); in each case nothing is written.
        """
        return self._run(self.ops.submit(plan, request_id))

    def add_task(
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
        """Add one task to the live swarm, atomically; returns it as stored.

        ``depends_on``: existing tasks it waits for (completed ones count as met).
        ``blocks``: a task not yet claimed that must now wait for it too (it becomes
        ``blocked``). ``discovered_from`` / ``related``: soft links, shown, never blocking.
        ``task_id`` defaults to ``task-<n>``; ``agent_id`` names who added it in the event.
        Raises ``ValidationError``, ``DependencyCycle`` (in itself) or ``WouldCreateCycle``
        (through the swarm), ``DuplicateTask``, ``UnknownDependency``, ``UnknownLinkedTask``,
        ``CannotBlockTask``; in each case nothing is written. A ``request_id`` sent again
        returns the same task, added once.
        """
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
        return self._run(self.ops.add_task(new, request_id))

    def claim(
        self,
        task_id: str,
        agent_id: str,
        *,
        lease: float | None = None,
        request_id: str | None = None,
    ) -> ClaimResult:
        """Claim one named task; a refusal says why (see :class:`ClaimResult`)."""
        return self._run(self.ops.claim(task_id, agent_id, lease, request_id))

    def claim_next(
        self,
        agent_id: str,
        *,
        lease: float | None = None,
        request_id: str | None = None,
        wait: float | None = None,
    ) -> Claim | None:
        """Claim the best ready task (priority, then age), or ``None`` when nothing is ready.

        Expired leases and finished retry backoffs are recovered first, a bounded number per
        call, so no separate daemon is needed. With ``wait`` (seconds), block until a task can
        be claimed or the time is up, woken by the swarm's channel (see
        ``distributor.tasks.waiting``).
        """
        if wait:
            return wait_for_claim(self, agent_id, wait, lease, request_id)
        claim, _ = self._run(self.ops.claim_next(agent_id, lease, request_id))
        return claim

    def start(
        self,
        task_id: str,
        agent_id: str,
        token: int,
        *,
        lease: float | None = None,
        request_id: str | None = None,
    ) -> Task:
        """Mark a held task ``in_progress`` and renew its lease."""
        return self._run(self.ops.start(task_id, agent_id, token, lease, request_id))

    def heartbeat(
        self, task_id: str, agent_id: str, token: int, *, lease: float | None = None
    ) -> Task:
        """Renew a held task's lease from now; ``StaleClaim`` if the claim was lost."""
        return self._run(self.ops.heartbeat(task_id, agent_id, token, lease))

    def complete(
        self,
        task_id: str,
        agent_id: str,
        token: int,
        *,
        claim_next: bool = False,
        lease: float | None = None,
        request_id: str | None = None,
    ) -> Completion:
        """Finish a held task; returns the dependents it made available.

        With ``claim_next=True`` the same atomic step also claims the best ready task for the
        agent (``Completion.next``, ``None`` when nothing is ready): one round trip per task,
        as an agent's loop wants. Raises ``StaleClaim`` when ``agent_id``/``token`` no longer
        hold the claim (and then nothing is claimed).
        """
        return self._run(self.ops.complete(task_id, agent_id, token, request_id, claim_next, lease))

    def fail(
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
        return self._run(self.ops.fail(task_id, agent_id, token, reason, retry, request_id))

    def release(
        self, task_id: str, agent_id: str, token: int, *, request_id: str | None = None
    ) -> Task:
        """Hand a held task back unfinished, without counting a failed attempt."""
        return self._run(self.ops.release(task_id, agent_id, token, request_id))

    def retry(self, task_id: str) -> Task:
        """Operator: give a failed task a fresh start (attempts reset)."""
        return self._run(self.ops.retry(task_id))

    def cancel(self, task_id: str, reason: str = "cancelled by operator") -> Task:
        """Operator: stop an unfinished task; it becomes ``failed`` until retried."""
        return self._run(self.ops.cancel(task_id, reason))

    def reap(self) -> int:
        """Recover every expired lease (and due retry); returns how many leases expired."""
        total = 0
        while True:
            expired, promoted = self._run(self.ops.reap_batch())
            total += expired
            if expired < self.settings.reap_batch and promoted < self.settings.reap_batch:
                return total

    # -- file reservations (see distributor.reservations) ---------------------------------------

    def next_claim(
        self, agent_id: str, *, lease: float | None = None, request_id: str | None = None
    ) -> NextClaim:
        """``claim_next`` in full: the claim, or the reservations that kept the ready tasks."""
        return self._run(self.ops.next_claim(agent_id, lease, request_id))

    def reserve(
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
        return self._run(self.ops.reserve(paths, agent_id, ttl, shared, reason, request_id))

    def unreserve(
        self, agent_id: str, paths: list[str] | None = None, *, request_id: str | None = None
    ) -> list[str]:
        """Free ``agent_id``'s explicit reservations of ``paths`` (``None``: all of them);
        returns the patterns freed. A claim's reservations end with the claim."""
        return self._run(self.ops.unreserve(agent_id, paths, request_id))

    def reservations(self) -> list[Reservation]:
        """Every live reservation (explicit and taken by claims), soonest to expire first."""
        return self._run(reservation_queries.live(self.keys))

    def held_up(
        self, live: list[Reservation] | None = None
    ) -> dict[str, list[Reservation]]:
        """Available tasks whose files other agents hold: task id -> the holders (``live``:
        the live reservations, when already read)."""
        return self._run(queries.held_up(self.keys, live))

    # -- reads ---------------------------------------------------------------------------------

    def get(self, task_id: str) -> Task:
        """One task with its state; ``TaskNotFound`` if absent."""
        return self._run(queries.get(self.keys, task_id))

    def get_many(self, task_ids: list[str]) -> list[Task]:
        """The named tasks that exist, in the given order (one round trip per 500)."""
        return self._run(queries.many(self.keys, task_ids))

    def tasks(self, status: TaskStatus | str | None = None) -> list[Task]:
        """All tasks in submission order, optionally filtered by status."""
        return self._run(queries.tasks(self.keys, status))

    def page(
        self, status: TaskStatus | str | None = None, after: str | None = None, limit: int = 50
    ) -> tuple[list[Task], bool]:
        """Up to ``limit`` tasks in submission order after task ``after``, and whether more
        follow (pass the page's last id as the next ``after``; see :func:`queries.page`)."""
        return self._run(queries.page(self.keys, status, after, limit))

    def layers(self, first: int = 5) -> list[queries.Layer] | None:
        """Tasks counted per layer and status, each layer's first ``first`` ids; ``None`` when
        a task has no stored layer (an older swarm: use :meth:`outline`)."""
        return self._run(queries.layers(self.keys, first))

    def outline(self) -> list[tuple[str, str, list[str]]]:
        """Every task as (id, status, dependencies) in submission order, without whole tasks."""
        return self._run(queries.outline(self.keys))

    def progress(self) -> dict[str, Any]:
        """Counts per status, ``completion_pct``, and ``blocked_by_failed``."""
        return self._run(queries.progress(self.keys))

    def workload(self) -> dict[str, list[str]]:
        """Each agent's claimed and in-progress task ids."""
        return self._run(queries.workload(self.keys))

    # -- the event log -------------------------------------------------------------------------

    def events(
        self, since: str = "0", count: int | None = None, *, wait: float | None = None
    ) -> list[Event]:
        """Events after ``since`` (a stream id, ``0`` = the start, ``$`` = now), oldest first.

        At most ``count`` (``None``: all); with ``wait`` seconds, block for the first one when
        none is newer yet. The last event's ``id`` is the ``since`` of the next read.
        """
        return self._run(event_log.read(self.keys, since, count, wait, self.max_block))

    def last_event_id(self) -> str:
        """The newest event's id (``0-0`` when none): a cursor for "from now on"."""
        return self._run(event_log.last_id(self.keys))

    def follow(self, since: str = "$", *, timeout: float | None = None) -> Iterator[Event]:
        """Every event after ``since``, replayed from the log, then live (``XREAD BLOCK``).

        Resume after a disconnect with ``follow(since=last_event.id)``: nothing is missed or
        repeated. Stops after ``timeout`` seconds without an event (``None``: never).
        """
        return event_log.follow(self._run, self.keys, since, timeout, self.max_block)

    def ping(self) -> bool:
        """True when Redis answers."""
        return bool(self._run(_ping()))


def _ping() -> Op[Any]:
    return (yield Command(("PING",)))
