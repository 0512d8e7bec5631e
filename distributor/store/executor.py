"""Perform :mod:`distributor.store.calls` values on a sync or asyncio Redis client.

Every client (task queue, agent registry, messenger) writes its operations once as generators
(:mod:`distributor.tasks.ops`, :mod:`distributor.messaging.messages`...); :class:`SyncExecutor` and
:class:`AsyncExecutor` only differ in ``await``. Each registers the Lua scripts it needs once
(redis-py reloads them after NOSCRIPT). Every script call names its swarm's ``slot-guard``
key last, so no script runs while the swarm's cluster slot migrates (see
:mod:`distributor.store.keys`). On a cluster, a batch's key-less commands (``TIME``) go to the
master of the batch's swarm.

``retry_budget`` is how long a call that is safe to send again (a read, a script call with a
request id) keeps being re-sent after connection errors (see
:class:`~distributor.store.calls.RetryBudget`); a
:class:`~distributor.store.client.SwarmClient` sets it from ``settings.retry_budget_seconds``.
"""

from __future__ import annotations

from typing import Any, TypeVar

import redis
import redis.asyncio as aioredis
import redis.asyncio.cluster
import redis.cluster

from distributor.store.calls import (
    NO_RETRY,
    Batch,
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
from distributor.store.keys import slot_guard
from distributor.store.scripts import MESSAGING_SCRIPT_NAMES, source

T = TypeVar("T")


_KEYLESS = frozenset({"TIME", "PING"})


def _keyless(command: Command) -> bool:
    return str(command.args[0]).upper() in _KEYLESS


def _batch_key(batch: Batch) -> str | None:
    """The key of the batch's first command that has one (its swarm's slot)."""
    for command in batch.commands:
        if not _keyless(command) and len(command.args) > 1:
            return str(command.args[1])
    return None


def script_keys(call: ScriptCall) -> list[str]:
    """The call's ``KEYS`` and, last, its swarm's slot guard."""
    guard = slot_guard(call.keys[0]) if call.keys else None
    return [*call.keys, guard] if guard else call.keys


def _near(client: Any, batch: Batch) -> dict[str, Any]:
    """On a cluster, where a batch's key-less commands go: the master of the batch's swarm, so
    ``TIME`` comes from the clock its scripts read (any node would answer otherwise)."""
    key = _batch_key(batch)
    if key is None or not isinstance(client, redis.cluster.RedisCluster):
        return {}
    return {"target_nodes": client.get_node_from_key(key)}  # type: ignore[no-untyped-call]


async def _near_async(client: Any, batch: Batch) -> dict[str, Any]:
    """The asyncio twin of :func:`_near`."""
    key = _batch_key(batch)
    if key is None or not isinstance(client, aioredis.cluster.RedisCluster):
        return {}
    await client.initialize()  # a no-op once the slots are known
    return {"target_nodes": client.get_node_from_key(key)}


class Scripts(dict[str, Any]):
    """The scripts an executor may run (``names``), each read, inlined and registered on its
    first call: a CLI command runs one of seventeen, and pays for that one."""

    def __init__(self, client: SyncRedis | AsyncRedis, names: tuple[str, ...]) -> None:
        super().__init__()
        self._client = client
        self._names = frozenset(names)

    def __missing__(self, name: str) -> Any:
        if name not in self._names:
            raise KeyError(f"script {name!r} is not one this client runs")
        script = self[name] = self._client.register_script(source(name))
        return script


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
        self._scripts = Scripts(client, names)

    def execute(self, call: Call) -> Any:
        if isinstance(call, ScriptCall):
            keys = script_keys(call)
            if self.durability is not None and self.durability.applies(call):
                script = self._scripts[call.name]
                return self.durability.run_sync(self.client, script, call, keys)
            return self._scripts[call.name](keys=keys, args=call.args)
        if isinstance(call, Command):
            return self.client.execute_command(*call.args)  # type: ignore[no-untyped-call]
        pipe = self.client.pipeline(transaction=False)
        near = _near(self.client, call)
        for command in call.commands:
            options = near if _keyless(command) else {}
            pipe.execute_command(*command.args, **options)  # type: ignore[no-untyped-call, unused-ignore]
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
        self._scripts = Scripts(client, names)

    async def execute(self, call: Call) -> Any:
        if isinstance(call, ScriptCall):
            keys = script_keys(call)
            if self.durability is not None and self.durability.applies(call):
                script = self._scripts[call.name]
                return await self.durability.run_async(self.client, script, call, keys)
            return await self._scripts[call.name](keys=keys, args=call.args)
        if isinstance(call, Command):
            return await self.client.execute_command(*call.args)  # type: ignore[no-untyped-call, unused-ignore]
        near = await _near_async(self.client, call)
        async with self.client.pipeline(transaction=False) as pipe:
            for command in call.commands:
                pipe.execute_command(*command.args, **(near if _keyless(command) else {}))
            return await pipe.execute()

    async def run(self, op: Op[T]) -> T:
        return await run_async(op, self.execute, self.retry_budget)
