"""Perform :mod:`distributor.store.calls` values on a sync or asyncio Redis client.

Every client (task queue, agent registry, messenger) writes its operations once as generators
(:mod:`distributor.tasks.ops`, :mod:`distributor.messaging.messages`...); :class:`SyncExecutor` and
:class:`AsyncExecutor` only differ in ``await``. Each registers the Lua scripts it needs once
(redis-py reloads them after NOSCRIPT). Every script call names its swarm's ``slot-guard``
key last, so no script runs while the swarm's cluster slot migrates (see
:mod:`distributor.store.keys`).

``retry_budget`` is how long a call that is safe to send again (a read, a script call with a
request id) keeps being re-sent after connection errors (see
:class:`~distributor.store.calls.RetryBudget`); a
:class:`~distributor.store.client.SwarmClient` sets it from ``settings.retry_budget_seconds``.
"""

from __future__ import annotations

from typing import Any, TypeVar

import redis
import redis.asyncio as aioredis

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
from distributor.store.keys import slot_guard
from distributor.store.scripts import MESSAGING_SCRIPT_NAMES, source

T = TypeVar("T")


def script_keys(call: ScriptCall) -> list[str]:
    """The call's ``KEYS`` and, last, its swarm's slot guard."""
    guard = slot_guard(call.keys[0]) if call.keys else None
    return [*call.keys, guard] if guard else call.keys


class SyncExecutor:
    """Runs operations on a blocking redis-py client."""

    def __init__(
        self,
        client: redis.Redis,
        names: tuple[str, ...] = MESSAGING_SCRIPT_NAMES,
        retry_budget: RetryBudget = NO_RETRY,
    ):
        self.client = client
        self.retry_budget = retry_budget
        self._scripts = {name: client.register_script(source(name)) for name in names}

    def execute(self, call: Call) -> Any:
        if isinstance(call, ScriptCall):
            return self._scripts[call.name](keys=script_keys(call), args=call.args)
        if isinstance(call, Command):
            return self.client.execute_command(*call.args)  # type: ignore[no-untyped-call]
        pipe = self.client.pipeline(transaction=False)
        for command in call.commands:
            pipe.execute_command(*command.args)  # type: ignore[no-untyped-call]
        return pipe.execute()

    def run(self, op: Op[T]) -> T:
        return run_sync(op, self.execute, self.retry_budget)


class AsyncExecutor:
    """Runs operations on a ``redis.asyncio`` client without blocking the event loop."""

    def __init__(
        self,
        client: aioredis.Redis,
        names: tuple[str, ...] = MESSAGING_SCRIPT_NAMES,
        retry_budget: RetryBudget = NO_RETRY,
    ) -> None:
        self.client = client
        self.retry_budget = retry_budget
        self._scripts = {name: client.register_script(source(name)) for name in names}

    async def execute(self, call: Call) -> Any:
        if isinstance(call, ScriptCall):
            return await self._scripts[call.name](keys=script_keys(call), args=call.args)
        if isinstance(call, Command):
            return await self.client.execute_command(*call.args)  # type: ignore[no-untyped-call]
        async with self.client.pipeline(transaction=False) as pipe:
            for command in call.commands:
                pipe.execute_command(*command.args)
            return await pipe.execute()

    async def run(self, op: Op[T]) -> T:
        return await run_async(op, self.execute, self.retry_budget)
