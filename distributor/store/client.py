"""What every client of a swarm holds (settings, key names, a Redis client) and how it connects.

``TaskQueue``, ``AsyncTaskQueue``, ``AgentRegistry``, ``Messenger`` and ``AsyncMessenger`` all
derive from :class:`SwarmClient`; each only adds its operations and executor in ``_setup``.
URLs and the clients they make (one Redis, Sentinel, Redis Cluster) are
:mod:`distributor.store.connect`'s; the names are re-exported here.

Every blocking read (``XREAD BLOCK``, pub/sub waits) blocks for at most :func:`block_limit`
(5 s, and well under the socket timeout), then reads again: a reply always comes back before
the socket gives up, however long the caller waits.
"""

from __future__ import annotations

from typing import Generic, Self, TypeVar

import redis.asyncio as aioredis

from distributor.errors import ConfigError
from distributor.settings import Settings
from distributor.store.calls import RetryBudget
from distributor.store.connect import (
    SCHEMES,
    AsyncConnectionRetry,
    AsyncRedis,
    AsyncTlsConnection,
    ConnectionRetry,
    SyncRedis,
    TlsConnection,
    async_redis_from_url,
    check_redis_url,
    connection_retry,
    redact_url,
    redis_from_url,
)
from distributor.store.durability import Durability, Replication
from distributor.store.executor import AsyncExecutor, SyncExecutor
from distributor.store.keys import NAMESPACE, SwarmKeys

__all__ = [
    "SCHEMES",
    "AsyncClient",
    "AsyncConnectionRetry",
    "AsyncRedis",
    "AsyncTlsConnection",
    "ConnectionRetry",
    "SwarmClient",
    "SyncClient",
    "SyncRedis",
    "TlsConnection",
    "async_redis_from_url",
    "block_limit",
    "check_redis_url",
    "connection_retry",
    "redact_url",
    "redis_from_url",
]

R = TypeVar("R", SyncRedis, AsyncRedis)

MAX_BLOCK_SECONDS = 5.0  # the longest single blocking read (XREAD BLOCK, pub/sub wait)
# Redis answers a BLOCK that ran out on its next event-loop tick (up to 1/hz = 100 ms late at
# the default hz 10), then the reply travels: a read needs this much slack before the timeout.
_BLOCK_MARGIN, _MIN_BLOCK = 0.25, 0.01


def block_limit(client: SyncRedis | AsyncRedis) -> float:
    """The longest ``BLOCK`` (seconds) one blocking read on ``client`` may ask for.

    At most half the client's socket timeout and ``_BLOCK_MARGIN`` less than it, so the reply
    arrives before the socket gives up (else the retry re-sends the same read into the same
    timeout), and at most ``MAX_BLOCK_SECONDS``. Longer waits are several reads in a row.
    """
    timeout = client.get_connection_kwargs().get("socket_timeout")
    if not timeout:
        return MAX_BLOCK_SECONDS
    longest = min(MAX_BLOCK_SECONDS, float(timeout) / 2, float(timeout) - _BLOCK_MARGIN)
    return max(_MIN_BLOCK, longest)


class SwarmClient(Generic[R]):
    """Settings, key names and the Redis client of one swarm."""

    def __init__(
        self,
        redis_client: R,
        swarm: str | None = None,
        *,
        settings: Settings | None = None,
        namespace: str = NAMESPACE,
    ) -> None:
        self.settings = settings or Settings()
        self.redis: R = redis_client
        self.keys = SwarmKeys(swarm or self.settings.swarm, namespace)
        self.last_replication: Replication | None = None
        self.shortfalls: list[Replication] = []
        self._setup()
        executor = getattr(self, "_executor", None)  # every subclass's _setup makes one
        if isinstance(executor, SyncExecutor | AsyncExecutor):
            executor.retry_budget = RetryBudget(self.settings.retry_budget_seconds)
            if self.settings.min_replicas > 0:
                if isinstance(redis_client, aioredis.RedisCluster):
                    raise ConfigError(
                        "min_replicas is not supported on an asyncio Redis Cluster client"
                    )
                executor.durability = Durability(
                    self.settings.min_replicas,
                    self.settings.min_replicas_timeout_ms,
                    self.keys,
                    self._replicated,
                )

    def _replicated(self, replication: Replication) -> None:
        """What ``WAIT`` said about the last state change (``min_replicas`` > 0); shortfalls
        are kept in ``shortfalls`` for the caller (and counted by the executor)."""
        self.last_replication = replication
        if not replication.ok:
            self.shortfalls.append(replication)

    def _setup(self) -> None:
        """Build the client's operations and executor (subclasses)."""

    @property
    def swarm(self) -> str:
        return self.keys.swarm

    @property
    def max_block(self) -> float:
        """Seconds one blocking read may block on this client (see :func:`block_limit`)."""
        return block_limit(self.redis)


class SyncClient(SwarmClient[SyncRedis]):
    """A swarm client on a blocking redis-py client."""

    @classmethod
    def from_url(
        cls, url: str | None = None, swarm: str | None = None, *, settings: Settings | None = None
    ) -> Self:
        """Connect to ``url`` (default: the settings' ``redis_url``) with retries configured."""
        settings = settings or Settings()
        client = redis_from_url(
            url or settings.redis_url, settings.redis_retries, settings.single_connection
        )
        return cls(client, swarm, settings=settings)


class AsyncClient(SwarmClient[AsyncRedis]):
    """A swarm client on a ``redis.asyncio`` client."""

    @classmethod
    def from_url(
        cls, url: str | None = None, swarm: str | None = None, *, settings: Settings | None = None
    ) -> Self:
        """Connect to ``url`` (default: the settings' ``redis_url``) with retries configured."""
        settings = settings or Settings()
        client = async_redis_from_url(
            url or settings.redis_url, settings.redis_retries, settings.single_connection
        )
        return cls(client, swarm, settings=settings)
