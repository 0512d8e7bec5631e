"""Perform :mod:`distributor.calls` values on a sync or asyncio Redis client.

The agent registry and the messenger write their operations once as generators (like
:mod:`distributor.ops`); :class:`SyncExecutor` and :class:`AsyncExecutor` only differ in
``await``. Each registers the Lua scripts it needs once (redis-py reloads them after NOSCRIPT).
"""

from __future__ import annotations

from typing import Any, TypeVar

import redis
import redis.asyncio as aioredis

from distributor.calls import CONNECTION_ERRORS, Call, Command, Op, ScriptCall, run_sync
from distributor.errors import RedisUnavailable
from distributor.scripts import MESSAGING_SCRIPT_NAMES, source

T = TypeVar("T")


class SyncExecutor:
    """Runs operations on a blocking redis-py client."""

    def __init__(self, client: redis.Redis, names: tuple[str, ...] = MESSAGING_SCRIPT_NAMES):
        self.client = client
        self._scripts = {name: client.register_script(source(name)) for name in names}

    def execute(self, call: Call) -> Any:
        if isinstance(call, ScriptCall):
            return self._scripts[call.name](keys=call.keys, args=call.args)
        if isinstance(call, Command):
            return self.client.execute_command(*call.args)  # type: ignore[no-untyped-call]
        pipe = self.client.pipeline(transaction=False)
        for command in call.commands:
            pipe.execute_command(*command.args)  # type: ignore[no-untyped-call]
        return pipe.execute()

    def run(self, op: Op[T]) -> T:
        return run_sync(op, self.execute)


class AsyncExecutor:
    """Runs operations on a ``redis.asyncio`` client without blocking the event loop."""

    def __init__(
        self, client: aioredis.Redis, names: tuple[str, ...] = MESSAGING_SCRIPT_NAMES
    ) -> None:
        self.client = client
        self._scripts = {name: client.register_script(source(name)) for name in names}

    async def execute(self, call: Call) -> Any:
        if isinstance(call, ScriptCall):
            return await self._scripts[call.name](keys=call.keys, args=call.args)
        if isinstance(call, Command):
            return await self.client.execute_command(*call.args)  # type: ignore[no-untyped-call]
        pipe = self.client.pipeline(transaction=False)
        for command in call.commands:
            pipe.execute_command(*command.args)
        return await pipe.execute()

    async def run(self, op: Op[T]) -> T:
        try:
            call = next(op)
            while True:
                try:
                    reply = await self.execute(call)
                except CONNECTION_ERRORS as exc:
                    raise RedisUnavailable(f"Redis unreachable: {exc}") from exc
                call = op.send(reply)
        except StopIteration as stop:
            result: T = stop.value
            return result
