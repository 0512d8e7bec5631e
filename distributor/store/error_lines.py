"""Errors as users see them: one line and a documented exit code, for every front end.

The CLI prints the line after ``swarmqueue:`` and exits with the code; the MCP server returns the
same line as a tool error. Keeping the mapping here, below both, means an agent reads the same
words whichever way it reached the queue.

====  =====================================================================
0     success
1     refused by the swarm's state (nothing ready, already claimed, stale token, ...)
2     invalid input (bad id, bad file, bad option)
3     Redis unreachable (down, wrong host or port, TLS handshake failed)
4     Redis answered with an error
5     Redis refused the credentials (authentication failed)
====  =====================================================================
"""

from __future__ import annotations

import redis

from distributor.errors import (
    AuthenticationFailed,
    PlanError,
    RedisUnavailable,
    RefusedError,
    SwarmQueueError,
    TlsHandshakeFailed,
    ValidationError,
)
from distributor.store.client import redact_url
from distributor.store.exit_codes import (
    EXIT_AUTH_FAILED,
    EXIT_INVALID,
    EXIT_REDIS_ERROR,
    EXIT_REFUSED,
    EXIT_UNREACHABLE,
)

AUTH_ERRORS = (
    AuthenticationFailed,
    redis.AuthenticationError,
    redis.AuthenticationWrongNumberOfArgsError,
)
CLI_RERUN = "run the same command again once Redis answers (or pass --request-id {rid})"


def exit_code_for(exc: BaseException) -> int | None:
    """The exit code of a library error, or None for errors that are bugs."""
    if isinstance(exc, AUTH_ERRORS):
        return EXIT_AUTH_FAILED
    if isinstance(exc, ValidationError) or (isinstance(exc, PlanError) and exc.in_itself):
        return EXIT_INVALID
    if isinstance(exc, RedisUnavailable | redis.ConnectionError | redis.TimeoutError):
        return EXIT_UNREACHABLE
    if isinstance(exc, RefusedError):
        return EXIT_REFUSED
    if isinstance(exc, redis.RedisError):
        return EXIT_REDIS_ERROR
    if isinstance(exc, SwarmQueueError):
        return EXIT_REFUSED
    return None


def error_line(
    exc: SwarmQueueError | redis.RedisError, redis_url: str | None, rerun: str = CLI_RERUN
) -> tuple[int, str]:
    """The exit code and one line for ``exc``; the Redis URL in it is shown redacted.

    ``rerun`` tells how to get the outcome of a request Redis may have applied before it became
    unreachable (``{rid}`` is its request id): the CLI re-runs the command, an MCP client calls
    the tool again.
    """
    shown = redact_url(redis_url) if redis_url else "?"
    if isinstance(exc, AUTH_ERRORS):
        detail = str(exc).removeprefix("Redis refused the credentials: ").rstrip(".")
        message = f"authentication failed at Redis {shown} ({detail}): check the user and password"
        code = EXIT_AUTH_FAILED
    else:
        found = exit_code_for(exc)
        assert found is not None
        code, message = found, str(exc)
        if isinstance(exc, TlsHandshakeFailed):
            message = f"cannot reach Redis at {shown}: {exc}"
        elif code == EXIT_UNREACHABLE:
            message = f"cannot reach Redis at {shown} ({exc.__class__.__name__}); is it running?"
            rid = getattr(exc, "request_id", None)
            if rid:  # the request may have been applied: its outcome waits under this id
                message += f" request id {rid}: {rerun.format(rid=rid)} to get its outcome"
    if redis_url:
        message = message.replace(redis_url, shown)
    return code, " ".join(message.split())
