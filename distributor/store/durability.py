"""``SWARMQUEUE_MIN_REPLICAS``: each state change waits until that many replicas have it.

Redis replicates asynchronously: a master can acknowledge a claim, die, and a replica without it
is promoted, so the claim is lost though its caller was told it succeeded. With
``min_replicas = n > 0`` every script that changes state is followed, on the same connection, by
``WAIT n timeout`` (``min_replicas_timeout_ms``): the reply returns once ``n`` replicas have the
change, or when the timeout ends with fewer. Nothing is undone then (the master has the change
and Redis cannot take it back): the shortfall is reported as a :class:`Replication` with
``ok`` False, to the client's ``on_replication`` callback (:class:`~distributor.store.client.
SwarmClient` keeps it as ``last_replication`` and ``shortfalls``), logged (``under_replicated``)
and counted in the swarm's counters (sync and asyncio clients alike). The CLI prints one
warning line on stderr and still exits 0 (the transition happened). The price is a round trip
to the replicas on every state change (measured in docs/benchmarks.md); reads are never held.

The script and its ``WAIT`` go in one pipeline so they share a connection (``WAIT`` counts the
writes of its own connection). On a Redis Cluster the pipeline goes to the node that owns the
swarm's slot; an asyncio cluster client does not support it (refused when the client is made).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import redis
import redis.asyncio as aioredis
import redis.cluster
from redis.commands.core import AsyncScript, Script

from distributor.errors import ConfigError
from distributor.log import get_logger
from distributor.store import counters
from distributor.store.calls import ScriptCall
from distributor.store.connect import AsyncRedis, SyncRedis
from distributor.store.keys import SwarmKeys

log = get_logger(__name__)

READ_ONLY_SCRIPTS = frozenset({"counts"})  # scripts that write nothing: never held


class Replication(NamedTuple):
    """How many replicas acknowledged one state change (``script``) within the timeout."""

    script: str
    wanted: int
    acked: int
    error: str = ""  # WAIT itself failed (e.g. refused by an ACL, or a server without it)

    @property
    def ok(self) -> bool:
        return self.acked >= self.wanted

    def __str__(self) -> str:
        why = f" (WAIT failed: {self.error})" if self.error else ""
        return (
            f"{self.script}: {self.acked} of {self.wanted} replica(s) acknowledged it in time"
            f"{why}; it is applied on the master, but a failover now could lose it"
        )


class Durability:
    """Holds each state change until ``wanted`` replicas have it (see the module docstring)."""

    def __init__(
        self,
        wanted: int,
        timeout_ms: int,
        keys: SwarmKeys,
        on_replication: Callable[[Replication], None],
    ) -> None:
        self.wanted = wanted
        self.timeout_ms = timeout_ms
        self.keys = keys  # the swarm whose ``under_replicated`` counter a shortfall adds to
        self.on_replication = on_replication

    def applies(self, call: ScriptCall) -> bool:
        return self.wanted > 0 and call.name not in READ_ONLY_SCRIPTS

    def _done(self, call: ScriptCall, acked: Any) -> Replication:
        """Report what ``WAIT`` answered; a failed ``WAIT`` is a shortfall, never an error
        (the state change is applied by then)."""
        if isinstance(acked, Exception):
            replication = Replication(call.name, self.wanted, 0, f"{type(acked).__name__}: {acked}")
        else:
            replication = Replication(call.name, self.wanted, int(acked))
        if not replication.ok:
            log.warning(
                "under_replicated",
                script=call.name,
                wanted=self.wanted,
                acked=replication.acked,
                timeout_ms=self.timeout_ms,
                error=replication.error or None,
            )
        self.on_replication(replication)
        return replication

    def run_sync(self, client: SyncRedis, script: Script, call: ScriptCall, keys: list[str]) -> Any:
        """``call``'s reply (its script run with ``keys``, as the executor would), after
        ``WAIT`` on the same connection."""
        node: redis.Redis
        if isinstance(client, redis.cluster.RedisCluster):
            owner = client.get_node_from_key(keys[0])  # type: ignore[no-untyped-call]
            node = owner.redis_connection
        else:
            node = client
        for attempt in (1, 2):
            pipe = node.pipeline(transaction=False)
            pipe.evalsha(script.sha, len(keys), *keys, *call.args)
            pipe.execute_command("WAIT", self.wanted, self.timeout_ms)  # type: ignore[no-untyped-call]
            reply, acked = pipe.execute(raise_on_error=False)
            if isinstance(reply, redis.exceptions.NoScriptError) and attempt == 1:
                node.script_load(script.script)
                continue
            if isinstance(reply, Exception):
                raise reply
            replication = self._done(call, acked)
            if not replication.ok:
                counters.count(client, self.keys, "under_replicated", str(replication))
            return reply
        raise AssertionError("unreachable")  # pragma: no cover

    async def run_async(
        self, client: AsyncRedis, script: AsyncScript, call: ScriptCall, keys: list[str]
    ) -> Any:
        """The asyncio twin of :meth:`run_sync` (one Redis or a Sentinel master)."""
        if not isinstance(client, aioredis.Redis):
            raise ConfigError("min_replicas is not supported on an asyncio Redis Cluster client")
        for attempt in (1, 2):
            async with client.pipeline(transaction=False) as pipe:
                pipe.evalsha(script.sha, len(keys), *keys, *call.args)
                pipe.execute_command("WAIT", self.wanted, self.timeout_ms)
                reply, acked = await pipe.execute(raise_on_error=False)
            if isinstance(reply, redis.exceptions.NoScriptError) and attempt == 1:
                await client.script_load(script.script)
                continue
            if isinstance(reply, Exception):
                raise reply
            replication = self._done(call, acked)
            if not replication.ok:
                await counters.acount(client, self.keys, "under_replicated", str(replication))
            return reply
        raise AssertionError("unreachable")  # pragma: no cover
