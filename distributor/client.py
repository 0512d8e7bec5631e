"""What every client of a swarm holds (settings, key names, a Redis client) and how it connects.

``TaskQueue``, ``AsyncTaskQueue``, ``AgentRegistry``, ``Messenger`` and ``AsyncMessenger`` all
derive from :class:`SwarmClient`; each only adds its operations and executor in ``_setup``.
Connections made from a URL retry on connection errors and timeouts with exponential backoff,
so a request id re-sent by the retry is answered once (see :mod:`distributor.ops`).
"""

from __future__ import annotations

from typing import Generic, Self, TypeVar

import redis
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from distributor.keys import NAMESPACE, SwarmKeys
from distributor.settings import Settings

R = TypeVar("R", redis.Redis, aioredis.Redis)

_BACKOFF_CAP, _BACKOFF_BASE = 1.0, 0.05
_RETRY_ON = [redis.ConnectionError, redis.TimeoutError]
_CONNECT_TIMEOUT, _HEALTH_CHECK_INTERVAL = 5, 30


def connection_retry(retries: int) -> Retry:
    """The retry policy for connection errors: exponential backoff, capped at one second."""
    return Retry(ExponentialBackoff(cap=_BACKOFF_CAP, base=_BACKOFF_BASE), retries)


def redis_from_url(url: str, retries: int, single_connection: bool = False) -> redis.Redis:
    """A blocking Redis client that retries on connection errors and timeouts.

    ``single_connection`` keeps one connection for the client's commands (pub/sub and pipelines
    still take their own): no pool bookkeeping per command, for single-threaded processes.
    """
    return redis.Redis.from_url(
        url,
        single_connection_client=single_connection,
        retry=connection_retry(retries),
        retry_on_error=_RETRY_ON,
        socket_connect_timeout=_CONNECT_TIMEOUT,
        health_check_interval=_HEALTH_CHECK_INTERVAL,
    )


def async_redis_from_url(url: str, retries: int, single_connection: bool = False) -> aioredis.Redis:
    """An asyncio Redis client with the same retry policy as :func:`redis_from_url`."""
    retry = AsyncRetry(ExponentialBackoff(cap=_BACKOFF_CAP, base=_BACKOFF_BASE), retries)
    return aioredis.Redis.from_url(
        url,
        single_connection_client=single_connection,
        retry=retry,
        retry_on_error=_RETRY_ON,
        socket_connect_timeout=_CONNECT_TIMEOUT,
        health_check_interval=_HEALTH_CHECK_INTERVAL,
    )


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
        self._setup()

    def _setup(self) -> None:
        """Build the client's operations and executor (subclasses)."""

    @property
    def swarm(self) -> str:
        return self.keys.swarm


class SyncClient(SwarmClient[redis.Redis]):
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


class AsyncClient(SwarmClient[aioredis.Redis]):
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
