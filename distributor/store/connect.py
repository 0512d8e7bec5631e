"""Redis URLs and the clients they make, in one place: one Redis, Sentinel or Redis Cluster.

Every process of swarmqueue (the CLI, ``swarmqueue worker``, the demo, the benchmark, the
Python API) turns a URL into a client here, so validation, retries, timeouts and TLS are the
same whatever kind of deployment the URL names:

=====================================================================  ========================
``redis://[[user]:password@]host[:port][/db][?option=value...]``       one Redis
``rediss://...``                                                       the same over TLS
``unix://[[user]:password@]/path/to/socket[?db=N...]``                 one Redis, local socket
``redis+sentinel://[[user]:password@]host[:26379][,host...]/service[/db]``  the master Sentinel
                                                                       names ``service``
``redis+cluster://[[user]:password@]host[:6379][,host...]``            Redis Cluster (startup
                                                                       nodes; db 0 only)
=====================================================================  ========================

``rediss+sentinel://`` and ``rediss+cluster://`` use TLS to the data nodes (Sentinel's own port
stays plain unless ``sentinel_ssl=true``). ``user:password@`` is for the data nodes; Sentinel's
own credentials are the options ``sentinel_username`` and ``sentinel_password``. One Redis and
a Sentinel's master use :class:`TlsConnection` (the handshake bounded by the connect timeout and
reported as :class:`TlsHandshakeFailed`); redis-py's cluster client always makes its nodes'
connections with its own ``SSLConnection``, so on ``rediss+cluster://`` a handshake failure is
an ordinary connection error (the same options and certificates apply).

:func:`check_redis_url` validates a URL once, before redis-py sees it (one line, shown
redacted); :func:`redact_url` is how a URL appears in any message or log. :data:`SyncRedis` and
:data:`AsyncRedis` are the client types the rest of swarmqueue accepts: a cluster client is
legal wherever a Redis client is.

Retries come in two layers. redis-py's own (``settings.redis_retries``, default 1) re-sends a
command at once after a dropped connection. Longer outages (a restart, a failover) are ridden
out by the executor (:class:`~distributor.store.calls.RetryBudget`). A Sentinel client asks the
sentinels for the master on every new connection and follows the newest answer
(:mod:`distributor.store.sentinel`), so after a failover the executor's next attempt reaches the
promoted replica, never an old master that came back empty. Refused credentials
(:class:`AuthenticationFailed`) and a failed TLS handshake (:class:`TlsHandshakeFailed`, bounded
by the connect timeout) are raised at once. The socket timeout is explicit (redis-py 8 made it
5 s by default, earlier versions had none); blocking reads stay well under it (see
:func:`distributor.store.client.block_limit`).
"""

from __future__ import annotations

import asyncio
import math
import re
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias, TypeVar
from urllib.parse import parse_qsl, unquote, urlsplit

import redis
import redis.asyncio as aioredis
import redis.asyncio.sentinel as aiosentinel
import redis.cluster
import redis.sentinel
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
from distributor.store.sentinel import AsyncEpochSentinel, EpochSentinel

SyncRedis: TypeAlias = redis.Redis | redis.cluster.RedisCluster
"""A blocking client of one Redis (plain or a Sentinel master) or of a Redis Cluster."""
AsyncRedis: TypeAlias = aioredis.Redis | aioredis.RedisCluster
"""The asyncio twin of :data:`SyncRedis`."""

T = TypeVar("T")
Kind = Literal["redis", "sentinel", "cluster"]

_BACKOFF_CAP, _BACKOFF_BASE = 1.0, 0.05
_RETRY_ON = [redis.ConnectionError, redis.TimeoutError]
CONNECT_TIMEOUT, SOCKET_TIMEOUT, HEALTH_CHECK_INTERVAL = 5.0, 10.0, 30

# -- URLs ------------------------------------------------------------------------------------

SCHEMES = (
    "redis", "rediss", "unix",
    "redis+sentinel", "rediss+sentinel", "redis+cluster", "rediss+cluster",
)  # fmt: skip
_DEFAULT_PORT = {"sentinel": 26379, "cluster": 6379}
_SHOWN_CHARS = 120
# Everything between the scheme and the last "@" is user information (over-redacting a stray
# "@" elsewhere is the safe mistake); options whose name contains "pass" carry secrets too
# (password, sentinel_password, ssl_password).
_USERINFO_RE = re.compile(r"^(?P<scheme>[^:/?#@]*://)?.*@", re.DOTALL)
_SECRET_OPTION_RE = re.compile(r"(?P<key>[?&;][^=&#]*pass[^=&#]*=)[^&#]*", re.IGNORECASE)
_NODE_RE = re.compile(r"^(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(?::(?P<port>[^:]*))?$")
_SERVICE_RE = re.compile(r"^[A-Za-z0-9._-]{1,128}$")


def redact_url(url: str) -> str:
    """``url`` as it may be shown or logged: ``user:password@`` and ``*pass*=`` become ``***``."""
    shown = _USERINFO_RE.sub(r"\g<scheme>***@", url, count=1)
    return _SECRET_OPTION_RE.sub(r"\g<key>***", shown)


def _shown(url: str) -> str:
    safe = redact_url(url)
    if len(safe) > _SHOWN_CHARS:
        safe = safe[:_SHOWN_CHARS] + "..."
    return repr(safe)


def _seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not (seconds > 0 and math.isfinite(seconds)):
        raise ValueError(f"must be a positive number of seconds, not {value!r}")
    return seconds


def _whole(minimum: int) -> Callable[[str], int]:
    def check(value: str) -> int:
        if not value.isdigit() or int(value) < minimum:
            raise ValueError(f"must be a whole number >= {minimum}, not {value!r}")
        return int(value)

    return check


def _flag(value: str) -> bool:
    if value.lower() not in ("true", "false", "yes", "no", "1", "0"):
        raise ValueError(f"must be true or false, not {value!r}")
    return value.lower() in ("true", "yes", "1")


def _one_of(*choices: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        if value not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}, not {value!r}")
        return value

    return check


def _text(value: str) -> str:
    if not value or any(c.isspace() for c in value):
        raise ValueError("must be non-empty and without spaces")
    return value


def _anything(value: str) -> str:
    """Any value (user names and passwords)."""
    return value


# option -> its check, which returns the value as the client wants it
_OPTIONS: dict[str, Callable[[str], Any]] = {
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
# options of redis+sentinel:// URLs only: how to reach and authenticate to the sentinels
_SENTINEL_OPTIONS: dict[str, Callable[[str], Any]] = {
    "sentinel_username": _anything,
    "sentinel_password": _anything,
    "sentinel_ssl": _flag,
}


@dataclass(frozen=True)
class RedisTarget:
    """What a validated URL names: the kind of deployment, its nodes and connection options.

    ``nodes`` are the sentinels (``sentinel``) or the cluster's startup nodes (``cluster``);
    ``options`` are the URL's query options, converted, with the user and password folded in.
    """

    url: str
    kind: Kind
    tls: bool
    nodes: tuple[tuple[str, int], ...] = ()
    service: str = ""
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def sentinel_options(self) -> dict[str, Any]:
        return {k: v for k, v in self.options.items() if k in _SENTINEL_OPTIONS}

    @property
    def node_options(self) -> dict[str, Any]:
        return {k: v for k, v in self.options.items() if k not in _SENTINEL_OPTIONS}


def parse_redis_url(url: str) -> RedisTarget:
    """``url`` as a :class:`RedisTarget`, or :class:`InvalidRedisUrl` (one line, redacted)."""

    def refuse(why: str) -> InvalidRedisUrl:
        return InvalidRedisUrl(f"invalid Redis URL {_shown(url)}: {why}")

    if not url.strip():
        raise refuse("it is empty; use redis://host:port/db")
    if any(c.isspace() or not c.isprintable() for c in url):
        raise refuse("it contains spaces or control characters")
    scheme, separator, rest = url.partition("://")
    if not separator:
        raise refuse("no scheme; use redis://host:port/db, rediss://... (TLS) or unix:///path")
    if scheme not in SCHEMES:
        raise refuse(
            f"unsupported scheme {scheme!r}; use redis://, rediss:// (TLS), unix://,"
            " redis+sentinel:// or redis+cluster://"
        )
    base, _, kind_name = scheme.partition("+")
    kind: Kind = "redis" if not kind_name else "sentinel" if kind_name == "sentinel" else "cluster"
    rest, _, query = rest.partition("?")
    options: dict[str, Any] = {}
    allowed = {**_OPTIONS, **(_SENTINEL_OPTIONS if kind == "sentinel" else {})}
    for name, value in parse_qsl(query, keep_blank_values=True):
        check = allowed.get(name)
        if check is None:
            raise refuse(f"unknown option {name[:40]!r}; known: {', '.join(allowed)}")
        if name.startswith("ssl_") and base != "rediss":
            raise refuse(f"option {name} needs {base}s{scheme[len(base) :]}:// (TLS)")
        try:
            options[name] = check(value)
        except ValueError as exc:
            raise refuse(f"option {name} {exc}") from None
    if kind == "redis":
        _check_one_node_url(url, scheme, refuse)
        return RedisTarget(url, kind, base == "rediss", options=options)
    if "#" in rest:
        raise refuse("a '#' must be percent-encoded (%23)")
    netloc, _, path = rest.partition("/")
    userinfo, at, hosts = netloc.rpartition("@")
    if at:
        user, colon, password = userinfo.partition(":")
        if user:
            options["username"] = unquote(user)
        if colon:
            options["password"] = unquote(password)
    nodes = []
    for item in hosts.split(","):
        match = _NODE_RE.match(item)
        if not match:
            raise refuse(f"{item[:60]!r} is not host[:port]; list nodes as host:port,host:port")
        port_text = match.group("port")
        port = _DEFAULT_PORT[kind] if port_text is None else None
        if port_text is not None and port_text.isdigit() and 0 < int(port_text) < 65536:
            port = int(port_text)
        if port is None:
            raise refuse("the port must be a number from 1 to 65535")
        nodes.append((match.group("host").strip("[]"), port))
    parts = [p for p in path.split("/")] if path else []
    service = ""
    if kind == "sentinel":
        if not parts or not _SERVICE_RE.match(parts[0]):
            raise refuse(
                "name the master's service, as in redis+sentinel://host:26379/mymaster[/db]"
            )
        service, parts = parts[0], parts[1:]
    if len(parts) > 1 or (parts and not parts[0].isdigit()):
        raise refuse("the database must be a number, as in redis://host:6379/0")
    if parts:
        options["db"] = int(parts[0])
    if kind == "cluster" and options.pop("db", 0) != 0:
        raise refuse("Redis Cluster has only database 0")
    return RedisTarget(url, kind, base == "rediss", tuple(nodes), service, options)


def _check_one_node_url(url: str, scheme: str, refuse: Callable[[str], InvalidRedisUrl]) -> None:
    """What a redis://, rediss:// or unix:// URL must satisfy beyond its options."""
    if "," in urlsplit(url).netloc:
        raise refuse("several hosts need redis+sentinel://h1,h2/service or redis+cluster://h1,h2")
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
    try:
        parse_url(url)  # type: ignore[no-untyped-call]  # what redis-py itself refuses, should a case above have slipped through
    except ValueError as exc:
        raise refuse(str(exc)) from None


def check_redis_url(url: str) -> str:
    """``url`` when swarmqueue can connect with it, else :class:`InvalidRedisUrl` (one line).

    The forms are those of the module's table; options are those of ``_OPTIONS`` (``ssl_*``
    only with TLS schemes) and, for Sentinel, ``sentinel_username``, ``sentinel_password`` and
    ``sentinel_ssl``. The URL is only checked, never changed; messages show it redacted.
    """
    parse_redis_url(url)
    return url


def url_kind(url: str) -> Kind:
    """Which kind of deployment a valid ``url`` names."""
    return parse_redis_url(url).kind


# -- TLS and retries -------------------------------------------------------------------------


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


class SentinelTlsConnection(redis.sentinel.SentinelManagedConnection, TlsConnection):
    """:class:`TlsConnection` to whichever node Sentinel names the master."""


class AsyncSentinelTlsConnection(aiosentinel.SentinelManagedConnection, AsyncTlsConnection):
    """:class:`AsyncTlsConnection` to whichever node Sentinel names the master."""


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


def async_connection_retry(retries: int) -> AsyncRetry:
    """The asyncio twin of :func:`connection_retry`."""
    return AsyncConnectionRetry(ExponentialBackoff(cap=_BACKOFF_CAP, base=_BACKOFF_BASE), retries)


def connection_options() -> dict[str, Any]:
    """Keywords shared by every client; options in the URL take precedence."""
    return {
        "retry_on_error": _RETRY_ON,
        "socket_connect_timeout": CONNECT_TIMEOUT,
        "socket_timeout": SOCKET_TIMEOUT,
        "health_check_interval": HEALTH_CHECK_INTERVAL,
    }


def _sentinel_kwargs(target: RedisTarget) -> dict[str, Any]:
    """How to talk to the sentinels themselves: the URL's timeouts, Sentinel's own
    credentials (``sentinel_username``/``sentinel_password``), TLS with ``sentinel_ssl``."""
    options = target.sentinel_options
    kwargs: dict[str, Any] = {
        "socket_connect_timeout": target.options.get("socket_connect_timeout", CONNECT_TIMEOUT),
        "socket_timeout": target.options.get("socket_timeout", SOCKET_TIMEOUT),
    }
    if "sentinel_username" in options:
        kwargs["username"] = options["sentinel_username"]
    if "sentinel_password" in options:
        kwargs["password"] = options["sentinel_password"]
    if options.get("sentinel_ssl"):
        kwargs["ssl"] = True
        kwargs.update({k: v for k, v in target.options.items() if k.startswith("ssl_")})
    return kwargs


# -- clients ---------------------------------------------------------------------------------


def redis_from_url(
    url: str, retries: int, single_connection: bool = False, **defaults: Any
) -> SyncRedis:
    """A blocking client for a validated ``url`` (any kind) that retries transient errors.

    ``single_connection`` keeps one connection for the client's commands (pub/sub and pipelines
    still take their own): no pool bookkeeping per command, for single-threaded processes. A
    Sentinel or cluster client keeps its pools (a failover or a slot move needs new ones).
    ``defaults`` replace the usual timeouts (a quick probe); options in the URL still win.
    """
    target = parse_redis_url(url)
    retry = connection_retry(retries)
    options = {**connection_options(), **defaults, **target.node_options}
    if target.kind == "sentinel":
        sentinel = EpochSentinel(  # type: ignore[no-untyped-call]
            list(target.nodes), sentinel_kwargs=_sentinel_kwargs(target)
        )
        if target.tls:
            options["connection_class"] = SentinelTlsConnection
        client: redis.Redis = sentinel.master_for(  # type: ignore[no-untyped-call]
            target.service, retry=retry, **options
        )
        return client
    if target.kind == "cluster":
        return redis.cluster.RedisCluster(
            startup_nodes=[
                redis.cluster.ClusterNode(h, p)  # type: ignore[no-untyped-call]
                for h, p in target.nodes
            ],
            retry=retry,
            ssl=target.tls,
            **options,
        )
    tls = {"connection_class": TlsConnection} if target.tls else {}
    plain = {**connection_options(), **defaults, **tls}
    return redis.Redis.from_url(
        url, single_connection_client=single_connection, retry=retry, **plain
    )


def async_redis_from_url(url: str, retries: int, single_connection: bool = False) -> AsyncRedis:
    """An asyncio client with the same validation and retries as :func:`redis_from_url`."""
    target = parse_redis_url(url)
    retry = async_connection_retry(retries)
    options = {**connection_options(), **target.node_options}
    if target.kind == "sentinel":
        sentinel = AsyncEpochSentinel(  # type: ignore[no-untyped-call]
            list(target.nodes), sentinel_kwargs=_sentinel_kwargs(target)
        )
        if target.tls:
            options["connection_class"] = AsyncSentinelTlsConnection
        client: aioredis.Redis = sentinel.master_for(target.service, retry=retry, **options)
        return client
    if target.kind == "cluster":
        return aioredis.RedisCluster(
            startup_nodes=[aioredis.cluster.ClusterNode(h, p) for h, p in target.nodes],
            retry=retry,
            ssl=target.tls,
            **options,
        )
    plain = aioredis.Redis.from_url(
        url, single_connection_client=single_connection, retry=retry, **connection_options()
    )
    if target.tls:  # the asyncio pool ignores connection_class next to a URL
        plain.connection_pool.connection_class = AsyncTlsConnection  # connects lazily: in time
    return plain


def is_cluster(client: SyncRedis | AsyncRedis) -> bool:
    """Whether ``client`` talks to a Redis Cluster."""
    return isinstance(client, redis.cluster.RedisCluster | aioredis.RedisCluster)
