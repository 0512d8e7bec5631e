"""Redis calls as plain data, so each operation is written once for the sync and asyncio clients.

An operation is a generator that yields :class:`ScriptCall`, :class:`Command` or :class:`Batch`
values and receives each reply; a driver (:func:`run_sync` or :func:`run_async`, used by the
executors of :mod:`distributor.store.executor`) performs the calls. The logic never knows whether it
was awaited.

Riding out an outage (a Redis restart, a Sentinel failover): a driver given a :class:`RetryBudget`
sends a call again after a connection error, with backoff, until the budget is used up, then
raises :class:`~distributor.errors.RedisUnavailable` carrying the call's request id. Only calls
that are safe to send twice are re-sent: reads (every :class:`Command` and :class:`Batch` must be
a read or a write that may repeat, such as ``ZREM``), a :class:`ScriptCall` with a request id
(the script stores its reply under it, so the second run replays the first) and one marked
``repeatable`` (a heartbeat). Any other script gets redis-py's own retry only: sending it again
after its reply was lost would apply it twice.

On a Redis Cluster the driver also rides out what a cluster says while a slot moves or a master
fails over: ``TRYAGAIN``, ``ASK``/``MOVED`` redis-py could not settle, ``CLUSTERDOWN`` and
redis-py's "TTL exhausted" after many of those. Each is a refusal given before the command ran,
so every call, scripts without a request id included, is sent again within the same budget
(:data:`CLUSTER_REFUSALS`). Losing every node redis-py knows ("Redis Cluster cannot be
connected") counts as a connection error: the call may have run before the connection died.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Generator, Iterator
from typing import Any, NamedTuple, TypeVar

import redis
from redis.exceptions import (
    AskError,
    ClusterDownError,
    ClusterError,
    RedisClusterException,
    SlotNotCoveredError,
    TryAgainError,
)

from distributor.errors import AuthenticationFailed, RedisUnavailable, TlsHandshakeFailed
from distributor.log import get_logger

log = get_logger(__name__)

T = TypeVar("T")
Arg = str | int | float | bytes


class ScriptCall(NamedTuple):
    """Run the registered Lua script ``name``.

    ``request_id``: the id the script stores its reply under (``''``: none); sending the call
    again replays that reply, so a driver may re-send it, and reports it when it gives up.
    ``repeatable``: running the script twice does no harm (a heartbeat), so it may be re-sent.
    """

    name: str
    keys: list[str]
    args: list[Arg]
    request_id: str = ""
    repeatable: bool = False


class Command(NamedTuple):
    """One plain Redis command, e.g. ``Command(("HGETALL", key))``."""

    args: tuple[Arg, ...]


class Batch(NamedTuple):
    """Several commands in one round trip (a non-transactional pipeline)."""

    commands: tuple[Command, ...]


Call = ScriptCall | Command | Batch
Op = Generator[Call, Any, T]

CONNECTION_ERRORS = (redis.ConnectionError, redis.TimeoutError)
# A cluster's refusals before a command runs (a slot migrating or moved, no master for a slot
# yet); a bare ClusterError is redis-py's "TTL exhausted" after too many of them in a row.
CLUSTER_REFUSALS = (TryAgainError, AskError, ClusterDownError, SlotNotCoveredError)
# What a driver looks at after a failed call; the rest are the caller's (see _transient).
_CAUGHT = (*CONNECTION_ERRORS, *CLUSTER_REFUSALS, ClusterError, RedisClusterException)
_UNREACHABLE_CLUSTER = "Redis Cluster cannot be connected"


def refused(exc: Exception) -> bool:
    """Whether ``exc`` is a cluster's refusal given before the command ran (safe to resend)."""
    return isinstance(exc, CLUSTER_REFUSALS) or type(exc) is ClusterError


def _transient(exc: Exception) -> bool:
    """Whether waiting may help: a connection error, a refusal, or no cluster node reachable
    (other RedisClusterExceptions, such as a cross-slot request, are the caller's mistakes)."""
    if isinstance(exc, CONNECTION_ERRORS) or refused(exc):
        return True
    return type(exc) is RedisClusterException and str(exc).startswith(_UNREACHABLE_CLUSTER)


def unavailable(
    exc: Exception, context: str = "Redis unreachable", request_id: str | None = None
) -> RedisUnavailable:
    """The error for one of ``CONNECTION_ERRORS`` or a cluster's refusals: refused credentials
    and a failed TLS handshake (which some redis-py versions wrap in a ConnectionError) are
    their own kinds."""
    if isinstance(exc, redis.AuthenticationError):
        return AuthenticationFailed(f"Redis refused the credentials: {exc}")
    if isinstance(exc.__cause__, TlsHandshakeFailed):
        return exc.__cause__
    return RedisUnavailable(f"{context}: {exc}", request_id=request_id)


class RetryBudget(NamedTuple):
    """How long a driver keeps re-sending a call after connection errors, and how it backs off.

    ``seconds`` from the first failure (0: never; redis-py's own retry still applies). The
    pauses start at ``first`` and double up to ``cap``, each shortened by up to half at random
    so that clients cut off together do not all come back in the same millisecond.
    """

    seconds: float = 0.0
    first: float = 0.05
    cap: float = 2.0

    def pauses(self, clock: Callable[[], float] = time.monotonic) -> Iterator[float]:
        """The pauses before each next attempt; ends when the budget is used up."""
        deadline = clock() + self.seconds
        pause = self.first
        while (left := deadline - clock()) > 0:
            yield min(left, pause * random.uniform(0.5, 1.0))
            pause = min(self.cap, pause * 2)


NO_RETRY = RetryBudget()


def retriable(call: Call, exc: Exception | None = None) -> bool:
    """Whether ``call`` may be sent again after ``exc`` (see the module's text): always after a
    cluster's refusal, else when sending it twice is harmless."""
    if exc is not None and refused(exc):
        return True
    if isinstance(call, ScriptCall):
        return bool(call.request_id) or call.repeatable
    return True


def _request_id(call: Call) -> str | None:
    return call.request_id or None if isinstance(call, ScriptCall) else None


def _gave_up(call: Call, exc: Exception, tried: int, since: float) -> RedisUnavailable:
    rid = _request_id(call)
    context = "Redis Cluster kept refusing" if refused(exc) else "Redis unreachable"
    if tried > 1:
        context += f" for {time.monotonic() - since:.1f}s ({tried} attempts)"
    if rid:
        context += f"; request id {rid} (send it again to get the outcome)"
    return unavailable(exc, context, rid)


def _outage(call: Call, budget: RetryBudget, exc: Exception) -> tuple[Iterator[float], float]:
    """The pauses before each next attempt of ``call`` (none when it must not be sent again,
    or when waiting cannot help: refused credentials, a failed TLS handshake) and when the
    outage began."""
    if not retriable(call, exc) or isinstance(
        unavailable(exc), AuthenticationFailed | TlsHandshakeFailed
    ):
        return iter(()), time.monotonic()
    return budget.pauses(), time.monotonic()


def _came_back(call: Call, tried: int, since: float) -> None:
    """Log an outage that was ridden out (the failure itself is the exception's to tell)."""
    log.warning(
        "redis_unreachable_then_back",
        attempts=tried,
        seconds=round(time.monotonic() - since, 2),
        request_id=_request_id(call),
    )


def perform_sync(call: Call, execute: Callable[[Call], Any], budget: RetryBudget) -> Any:
    """``execute(call)``; after a connection error, again within ``budget`` if it is safe."""
    try:
        return execute(call)  # the common case: no bookkeeping
    except _CAUGHT as exc:
        if not _transient(exc):
            raise
        error: Exception = exc  # `exc` is unbound after its except block
        pauses, since = _outage(call, budget, exc)
    tried = 1
    while True:
        pause = next(pauses, None)
        if pause is None:
            raise _gave_up(call, error, tried, since) from error
        time.sleep(pause)
        tried += 1
        try:
            reply = execute(call)
        except _CAUGHT as exc:
            if not _transient(exc):
                raise
            if not retriable(call, exc):  # a connection error after refusals: maybe it ran
                raise _gave_up(call, exc, tried, since) from exc
            error = exc
            continue
        _came_back(call, tried, since)
        return reply


async def perform_async(
    call: Call, execute: Callable[[Call], Awaitable[Any]], budget: RetryBudget
) -> Any:
    """The asyncio twin of :func:`perform_sync`: it pauses with ``asyncio.sleep``."""
    try:
        return await execute(call)  # the common case: no bookkeeping
    except _CAUGHT as exc:
        if not _transient(exc):
            raise
        error: Exception = exc  # `exc` is unbound after its except block
        pauses, since = _outage(call, budget, exc)
    tried = 1
    while True:
        pause = next(pauses, None)
        if pause is None:
            raise _gave_up(call, error, tried, since) from error
        await asyncio.sleep(pause)
        tried += 1
        try:
            reply = await execute(call)
        except _CAUGHT as exc:
            if not _transient(exc):
                raise
            if not retriable(call, exc):  # a connection error after refusals: maybe it ran
                raise _gave_up(call, exc, tried, since) from exc
            error = exc
            continue
        _came_back(call, tried, since)
        return reply


def run_sync(op: Op[T], execute: Callable[[Call], Any], budget: RetryBudget = NO_RETRY) -> T:
    """Drive ``op`` to its result, performing each call with ``execute`` (see
    :func:`perform_sync` for the retries)."""
    try:
        call = next(op)
        while True:
            call = op.send(perform_sync(call, execute, budget))
    except StopIteration as stop:
        result: T = stop.value
        return result


async def run_async(
    op: Op[T], execute: Callable[[Call], Awaitable[Any]], budget: RetryBudget = NO_RETRY
) -> T:
    """Drive ``op`` to its result, awaiting each call with ``execute`` (see :func:`run_sync`)."""
    try:
        call = next(op)
        while True:
            call = op.send(await perform_async(call, execute, budget))
    except StopIteration as stop:
        result: T = stop.value
        return result


def text(value: Any) -> str:
    """A Redis reply item as ``str`` (clients may or may not decode responses)."""
    if isinstance(value, bytes):
        return value.decode("utf-8")
    return str(value)
