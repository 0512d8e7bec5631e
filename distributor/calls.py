"""Redis calls as plain data, so each operation is written once for the sync and asyncio clients.

An operation is a generator that yields :class:`ScriptCall`, :class:`Command` or :class:`Batch`
values and receives each reply; a driver (:func:`run_sync` or :func:`run_async`, used by the
executors of :mod:`distributor.executor`) performs the calls. The logic never knows whether it
was awaited.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass
from typing import Any, TypeVar

import redis

from distributor.errors import AuthenticationFailed, RedisUnavailable, TlsHandshakeFailed

T = TypeVar("T")
Arg = str | int | float | bytes


@dataclass(frozen=True, slots=True)
class ScriptCall:
    """Run the registered Lua script ``name``."""

    name: str
    keys: list[str]
    args: list[Arg]


@dataclass(frozen=True, slots=True)
class Command:
    """One plain Redis command, e.g. ``Command(("HGETALL", key))``."""

    args: tuple[Arg, ...]


@dataclass(frozen=True, slots=True)
class Batch:
    """Several commands in one round trip (a non-transactional pipeline)."""

    commands: tuple[Command, ...]


Call = ScriptCall | Command | Batch
Op = Generator[Call, Any, T]

CONNECTION_ERRORS = (redis.ConnectionError, redis.TimeoutError)


def unavailable(exc: Exception, context: str = "Redis unreachable") -> RedisUnavailable:
    """The error for one of ``CONNECTION_ERRORS``: refused credentials and a failed TLS
    handshake (which some redis-py versions wrap in a ConnectionError) are their own kinds."""
    if isinstance(exc, redis.AuthenticationError):
        return AuthenticationFailed(f"Redis refused the credentials: {exc}")
    if isinstance(exc.__cause__, TlsHandshakeFailed):
        return exc.__cause__
    return RedisUnavailable(f"{context}: {exc}")


def run_sync(op: Op[T], execute: Callable[[Call], Any]) -> T:
    """Drive ``op`` to its result, performing each call with ``execute``."""
    try:
        call = next(op)
        while True:
            try:
                reply = execute(call)
            except CONNECTION_ERRORS as exc:
                raise unavailable(exc) from exc
            call = op.send(reply)
    except StopIteration as stop:
        result: T = stop.value
        return result


async def run_async(op: Op[T], execute: Callable[[Call], Awaitable[Any]]) -> T:
    """Drive ``op`` to its result, awaiting each call with ``execute`` (see :func:`run_sync`)."""
    try:
        call = next(op)
        while True:
            try:
                reply = await execute(call)
            except CONNECTION_ERRORS as exc:
                raise unavailable(exc) from exc
            call = op.send(reply)
    except StopIteration as stop:
        result: T = stop.value
        return result


def text(value: Any) -> str:
    """A Redis reply item as ``str`` (clients may or may not decode responses)."""
    if isinstance(value, bytes):
        return value.decode("utf-8")
    return str(value)
