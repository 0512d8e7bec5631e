"""Perform :mod:`distributor.store.calls` values on a sync or asyncio Redis client.

Every client (task queue, agent registry, messenger) writes its operations once as generators
(:mod:`distributor.tasks.ops`, :mod:`distributor.messaging.messages`...); :class:`SyncExecutor` and
:class:`AsyncExecutor` only differ in ``await``. Each registers the Lua scripts it needs once
(redis-py reloads them after NOSCRIPT).

``retry_budget`` is how long a call that is safe to send again (a read, a script call with a
request id) keeps being re-sent after connection errors (see
:class:`~distributor.store.calls.RetryBudget`); a
:class:`~distributor.store.client.SwarmClient` sets it from ``settings.retry_budget_seconds``.
"""

from __future__ import annotations

from typing import Any, TypeVar

from distributor.store.calls import (
    NO_RETRY,
    Call,
    Command,
    Op,
    RetryBudget,
    ScriptCall,
    run_async,
    run_sync,
)
from distributor.store.connect import AsyncRedis, SyncRedis
from distributor.store.durability import Durability
from distributor.store.scripts import MESSAGING_SCRIPT_NAMES, source

T = TypeVar("T")


class SyncExecutor:
    """Runs operations on a blocking redis-py client."""

    def __init__(
        self,
        client: SyncRedis,
        names: tuple[str, ...] = MESSAGING_SCRIPT_NAMES,
        retry_budget: RetryBudget = NO_RETRY,
    ):
        self.client = client
        self.retry_budget = retry_budget
        self.durability: Durability | None = None  # set by SwarmClient for min_replicas > 0
        self._scripts = {name: client.register_script(source(name)) for name in names}

    def execute(self, call: Call) -> Any:
        if isinstance(call, ScriptCall):
            if self.durability is not None and self.durability.applies(call):
                script = self._scripts[call.name]
                return self.durability.run_sync(self.client, script, call, call.keys)
            return self._scripts[call.name](keys=call.keys, args=call.args)
        if isinstance(call, Command):
            return self.client.execute_command(*call.args)  # type: ignore[no-untyped-call]
        pipe = self.client.pipeline(transaction=False)
        for command in call.commands:
            pipe.execute_command(*command.args)  # type: ignore[no-untyped-call, unused-ignore]
        return pipe.execute()

    def run(self, op: Op[T]) -> T:
        return run_sync(op, self.execute, self.retry_budget)


class AsyncExecutor:
    """Runs operations on a ``redis.asyncio`` client without blocking the event loop."""

    def __init__(
        self,
        client: AsyncRedis,
        names: tuple[str, ...] = MESSAGING_SCRIPT_NAMES,
        retry_budget: RetryBudget = NO_RETRY,
    ) -> None:
        self.client = client
        self.retry_budget = retry_budget
        self.durability: Durability | None = None  # set by SwarmClient for min_replicas > 0
        self._scripts = {name: client.register_script(source(name)) for name in names}

    async def execute(self, call: Call) -> Any:
        if isinstance(call, ScriptCall):
            if self.durability is not None and self.durability.applies(call):
                script = self._scripts[call.name]
                return await self.durability.run_async(self.client, script, call, call.keys)
            return await self._scripts[call.name](keys=call.keys, args=call.args)
        if isinstance(call, Command):
            return await self.client.execute_command(*call.args)  # type: ignore[no-untyped-call, unused-ignore]
        async with self.client.pipeline(transaction=False) as pipe:
            for command in call.commands:
                pipe.execute_command(*command.args)
            return await pipe.execute()

    async def run(self, op: Op[T]) -> T:
        return await run_async(op, self.execute, self.retry_budget)
