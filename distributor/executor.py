"""Perform :mod:`distributor.calls` values on a sync or asyncio Redis client.

Every client (task queue, agent registry, messenger) writes its operations once as generators
(:mod:`distributor.ops`, :mod:`distributor.messages`...); :class:`SyncExecutor` and
:class:`AsyncExecutor` only differ in ``await``. Each registers the Lua scripts it needs once
(redis-py reloads them after NOSCRIPT).
"""

from __future__ import annotations

from typing import Any, TypeVar

import redis
import redis.asyncio as aioredis

from distributor.calls import Call, Command, Op, ScriptCall, run_async, run_sync
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
        async with self.client.pipeline(transaction=False) as pipe:
            for command in call.commands:
                pipe.execute_command(*command.args)
            return await pipe.execute()

    async def run(self, op: Op[T]) -> T:
        return await run_async(op, self.execute)
