"""What every client of a swarm holds (settings, key names, a Redis client) and how it connects.

``TaskQueue``, ``AsyncTaskQueue``, ``AgentRegistry``, ``Messenger`` and ``AsyncMessenger`` all
derive from :class:`SwarmClient`; each only adds its operations and executor in ``_setup``.

Connecting, in one place:

- :func:`check_redis_url` validates a URL once, before redis-py sees it, and :func:`redact_url`
  is how a URL is shown in any message or log (never with its user or password).
- Retries come in two layers. redis-py's own (``settings.redis_retries``, default 1) re-sends
  a command at once after a dropped connection. Longer outages (a restart, a failover) are
  ridden out by the executor (:class:`~distributor.store.calls.RetryBudget`,
  ``settings.retry_budget_seconds``): it re-sends the same call, with the same request id,
  backing off from 0.05 s to 2 s, so a state change is answered once (see
  :mod:`distributor.tasks.ops`). Keeping redis-py's layer to one retry keeps the total near the
  budget: each of the executor's attempts costs at most two connect or socket timeouts.
  What retrying cannot fix is raised at once: refused credentials (:class:`AuthenticationFailed`)
  and a failed TLS handshake (:class:`TlsHandshakeFailed`, bounded by the connect timeout).
- The socket timeout is set explicitly (redis-py 8 made it 5 s by default, earlier versions had
  none), and every blocking read (``XREAD BLOCK``, pub/sub waits) blocks for at most
  :func:`block_limit` (5 s, and well under the socket timeout), then reads again: a reply always
  comes back before the socket gives up, however long the caller waits.
"""

from __future__ import annotations

import asyncio
import math
import re
import ssl
from collections.abc import Awaitable, Callable
from typing import Any, Generic, Self, TypeVar
from urllib.parse import parse_qsl, urlsplit

import redis
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialBackoff
from redis.connection import parse_url
from redis.retry import Retry

from distributor.errors import (
    AuthenticationFailed,
    InvalidRedisUrl,
    SwarmQueueError,
    TlsHandshakeFailed,
)
from distributor.settings import Settings
from distributor.store.calls import RetryBudget
from distributor.store.executor import AsyncExecutor, SyncExecutor
from distributor.store.keys import NAMESPACE, SwarmKeys

R = TypeVar("R", redis.Redis, aioredis.Redis)
T = TypeVar("T")

_BACKOFF_CAP, _BACKOFF_BASE = 1.0, 0.05
_RETRY_ON = [redis.ConnectionError, redis.TimeoutError]
MAX_BLOCK_SECONDS = 5.0  # the longest single blocking read (XREAD BLOCK, pub/sub wait)
_CONNECT_TIMEOUT, _SOCKET_TIMEOUT, _HEALTH_CHECK_INTERVAL = 5.0, 10.0, 30
# Redis answers a BLOCK that ran out on its next event-loop tick (up to 1/hz = 100 ms late at
# the default hz 10), then the reply travels: a read needs this much slack before the timeout.
_BLOCK_MARGIN, _MIN_BLOCK = 0.25, 0.01

# -- URLs ------------------------------------------------------------------------------------

SCHEMES = ("redis", "rediss", "unix")
_SHOWN_CHARS = 120
# Everything between the scheme and the last "@" is user information (over-redacting a stray
# "@" elsewhere is the safe mistake); options whose name contains "pass" carry secrets too.
_USERINFO_RE = re.compile(r"^(?P<scheme>[^:/?#@]*://)?.*@", re.DOTALL)
_SECRET_OPTION_RE = re.compile(r"(?P<key>[?&;][^=&#]*pass[^=&#]*=)[^&#]*", re.IGNORECASE)


def redact_url(url: str) -> str:
    """``url`` as it may be shown or logged: ``user:password@`` and ``password=`` become ``***``."""
    shown = _USERINFO_RE.sub(r"\g<scheme>***@", url, count=1)
    return _SECRET_OPTION_RE.sub(r"\g<key>***", shown)


def _shown(url: str) -> str:
    safe = redact_url(url)
    if len(safe) > _SHOWN_CHARS:
        safe = safe[:_SHOWN_CHARS] + "..."
    return repr(safe)


def _seconds(value: str) -> None:
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not (seconds > 0 and math.isfinite(seconds)):
        raise ValueError(f"must be a positive number of seconds, not {value!r}")


def _whole(minimum: int) -> Callable[[str], None]:
    def check(value: str) -> None:
        if not value.isdigit() or int(value) < minimum:
            raise ValueError(f"must be a whole number >= {minimum}, not {value!r}")

    return check


def _flag(value: str) -> None:
    if value.lower() not in ("true", "false", "yes", "no", "1", "0"):
        raise ValueError(f"must be true or false, not {value!r}")


def _one_of(*choices: str) -> Callable[[str], None]:
    def check(value: str) -> None:
        if value not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}, not {value!r}")

    return check


def _text(value: str) -> None:
    if not value or any(c.isspace() for c in value):
        raise ValueError("must be non-empty and without spaces")


def _anything(value: str) -> None:
    """Any value (user names and passwords)."""


_OPTIONS: dict[str, Callable[[str], None]] = {
    "db": _whole(0),
    "socket_timeout": _seconds,
    "socket_connect_timeout": _seconds,
    "socket_keepalive": _flag,
    "health_check_interval": _whole(0),
    "max_connections": _whole(1),
    "client_name": _text,
    "username": _anything,
    "password": _anything,
    "ssl_cert_reqs": _one_of("none", "optional", "required"),
    "ssl_check_hostname": _flag,
    "ssl_ca_certs": _text,
    "ssl_ca_path": _text,
    "ssl_certfile": _text,
    "ssl_keyfile": _text,
}


def check_redis_url(url: str) -> str:
    """``url`` when redis-py can connect with it, else :class:`InvalidRedisUrl` (one line).

    Accepted: ``redis://[[user]:password@]host[:port][/db][?option=value&...]``, the same with
    ``rediss://`` (TLS), and ``unix://[[user]:password@]/path/to/socket[?db=N&...]``; options
    are those of ``_OPTIONS`` (``ssl_*`` only with ``rediss://``). The URL is only checked,
    never changed; messages show it redacted.
    """

    def refuse(why: str) -> InvalidRedisUrl:
        return InvalidRedisUrl(f"invalid Redis URL {_shown(url)}: {why}")

    if not url.strip():
        raise refuse("it is empty; use redis://host:port/db")
    if any(c.isspace() or not c.isprintable() for c in url):
        raise refuse("it contains spaces or control characters")
    scheme, separator, _ = url.partition("://")
    if not separator:
        raise refuse("no scheme; use redis://host:port/db, rediss://... (TLS) or unix:///path")
    if scheme.endswith("+cluster"):
        raise refuse("Redis Cluster URLs are not supported yet; give one node as redis://host:port")
    if scheme not in SCHEMES:
        raise refuse(f"unsupported scheme {scheme!r}; use redis://, rediss:// (TLS) or unix://")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise refuse("the port must be a number from 1 to 65535") from None
    if scheme == "unix":
        if not parts.path.strip("/"):
            raise refuse("a unix:// URL needs the socket's path, as in unix:///run/redis.sock")
    else:
        if port == 0:
            raise refuse("the port must be a number from 1 to 65535")
        if parts.path.strip("/") and not parts.path.strip("/").isdigit():
            raise refuse("the database must be a number, as in redis://host:6379/0")
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        check = _OPTIONS.get(name)
        if check is None:
            raise refuse(f"unknown option {name[:40]!r}; known: {', '.join(_OPTIONS)}")
        if name.startswith("ssl_") and scheme != "rediss":
            raise refuse(f"option {name} needs rediss:// (TLS)")
        try:
            check(value)
        except ValueError as exc:
            raise refuse(f"option {name} {exc}") from None
    try:
        parse_url(url)  # type: ignore[no-untyped-call]  # what redis-py itself refuses, should a case above have slipped through
    except ValueError as exc:
        raise refuse(str(exc)) from None
    return url


# -- connections -----------------------------------------------------------------------------


def _tls_failure(host: str, port: int, timeout: float | None, exc: OSError) -> TlsHandshakeFailed:
    if isinstance(exc, ssl.SSLCertVerificationError):
        reason, hint = exc.verify_message or str(exc), "trust its CA with ?ssl_ca_certs=FILE"
    else:
        reason = f"no answer within {timeout:g}s" if isinstance(exc, TimeoutError) else str(exc)
        hint = "is that port serving TLS? use redis:// for a plain port"
    return TlsHandshakeFailed(f"TLS handshake with {host}:{port} failed ({reason}); {hint}")


class TlsConnection(redis.SSLConnection):
    """A TLS connection whose handshake counts against the connect timeout and is not retried.

    redis-py runs the handshake under the (longer) socket timeout and retries it: a ``rediss://``
    URL pointing at a plain port then hung for retries x socket timeout.
    """

    def _wrap_socket_with_ssl(self, sock: Any) -> Any:
        sock.settimeout(self.socket_connect_timeout)
        try:
            wrapped = super()._wrap_socket_with_ssl(sock)  # type: ignore[no-untyped-call]
        except OSError as exc:  # ssl.SSLError, TimeoutError and resets are all OSErrors
            sock.close()
            raise _tls_failure(self.host, self.port, self.socket_connect_timeout, exc) from exc
        wrapped.settimeout(self.socket_timeout)
        return wrapped


class AsyncTlsConnection(aioredis.SSLConnection):
    """The asyncio twin of :class:`TlsConnection`: TCP first, then the handshake, each bounded
    by the connect timeout, so a handshake failure is told apart from an unreachable host."""

    def _connection_arguments(self) -> Any:
        arguments = dict(super()._connection_arguments())
        arguments.pop("ssl", None)  # plain TCP first; _connect starts TLS on it
        return arguments

    async def _connect(self) -> None:
        await super()._connect()  # type: ignore[no-untyped-call]
        writer = self._writer
        assert writer is not None  # set by a successful _connect
        try:
            async with asyncio.timeout(self.socket_connect_timeout):
                await writer.start_tls(self.ssl_context.get(), server_hostname=self.host)
        except OSError as exc:  # TimeoutError, ssl.SSLError and resets are all OSErrors
            await self.disconnect(nowait=True)  # the peer may never answer a close
            raise _tls_failure(self.host, self.port, self.socket_connect_timeout, exc) from exc


def _permanent(error: redis.RedisError) -> SwarmQueueError | None:
    """The swarmqueue error for a failure that retrying cannot fix, else None."""
    if isinstance(error, redis.AuthenticationError | redis.AuthenticationWrongNumberOfArgsError):
        return AuthenticationFailed(f"Redis refused the credentials: {error}")
    if isinstance(error.__cause__, TlsHandshakeFailed):  # redis.asyncio wraps it
        return error.__cause__
    return None


class ConnectionRetry(Retry):
    """Exponential backoff on transient errors; permanent failures (see ``_permanent``) are
    raised at once as swarmqueue errors, which the retry loop does not catch."""

    def call_with_retry(self, do: Callable[[], T], fail: Any, *args: Any, **kwargs: Any) -> T:
        def attempt() -> T:
            try:
                return do()
            except redis.RedisError as exc:
                permanent = _permanent(exc)
                if permanent is None:
                    raise
                raise permanent from exc

        return super().call_with_retry(attempt, fail, *args, **kwargs)


class AsyncConnectionRetry(AsyncRetry):
    """The asyncio twin of :class:`ConnectionRetry`."""

    async def call_with_retry(
        self, do: Callable[[], Awaitable[T]], fail: Any, *args: Any, **kwargs: Any
    ) -> T:
        async def attempt() -> T:
            try:
                return await do()
            except redis.RedisError as exc:
                permanent = _permanent(exc)
                if permanent is None:
                    raise
                raise permanent from exc

        return await super().call_with_retry(attempt, fail, *args, **kwargs)


def connection_retry(retries: int) -> Retry:
    """The retry policy for connection errors: exponential backoff, capped at one second."""
    return ConnectionRetry(ExponentialBackoff(cap=_BACKOFF_CAP, base=_BACKOFF_BASE), retries)


def _connection_options() -> dict[str, Any]:
    """from_url keywords shared by both clients; options in the URL take precedence."""
    return {
        "retry_on_error": _RETRY_ON,
        "socket_connect_timeout": _CONNECT_TIMEOUT,
        "socket_timeout": _SOCKET_TIMEOUT,
        "health_check_interval": _HEALTH_CHECK_INTERVAL,
    }


def _tls(url: str) -> dict[str, Any]:
    """For a ``rediss://`` URL, :class:`TlsConnection` instead of redis-py's."""
    return {"connection_class": TlsConnection} if url.startswith("rediss://") else {}


def redis_from_url(url: str, retries: int, single_connection: bool = False) -> redis.Redis:
    """A blocking Redis client for a validated ``url`` that retries transient errors.

    ``single_connection`` keeps one connection for the client's commands (pub/sub and pipelines
    still take their own): no pool bookkeeping per command, for single-threaded processes.
    """
    check_redis_url(url)
    return redis.Redis.from_url(
        url,
        single_connection_client=single_connection,
        retry=connection_retry(retries),
        **_connection_options(),
        **_tls(url),
    )


def async_redis_from_url(url: str, retries: int, single_connection: bool = False) -> aioredis.Redis:
    """An asyncio Redis client with the same validation and retries as :func:`redis_from_url`."""
    check_redis_url(url)
    retry = AsyncConnectionRetry(ExponentialBackoff(cap=_BACKOFF_CAP, base=_BACKOFF_BASE), retries)
    client = aioredis.Redis.from_url(
        url,
        single_connection_client=single_connection,
        retry=retry,
        **_connection_options(),
    )
    if url.startswith("rediss://"):  # the asyncio pool ignores connection_class next to a URL
        client.connection_pool.connection_class = AsyncTlsConnection  # connects lazily: in time
    return client


def block_limit(client: redis.Redis | aioredis.Redis) -> float:
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
        self._setup()
        executor = getattr(self, "_executor", None)  # every subclass's _setup makes one
        if isinstance(executor, SyncExecutor | AsyncExecutor):
            executor.retry_budget = RetryBudget(self.settings.retry_budget_seconds)

    def _setup(self) -> None:
        """Build the client's operations and executor (subclasses)."""

    @property
    def swarm(self) -> str:
        return self.keys.swarm

    @property
    def max_block(self) -> float:
        """Seconds one blocking read may block on this client (see :func:`block_limit`)."""
        return block_limit(self.redis)


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
