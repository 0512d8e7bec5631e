"""The id rules of the task graph: task, agent and request ids, checked without pydantic.

One definition for every boundary: the models (the tasks' and the reservations') validate their
id fields with these checks, and the CLI checks ids with them before an id becomes a path part
or a Redis argument, without paying for pydantic at start-up (docs/benchmarks.md, CLI start-up).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Callable
from typing import TypeVar

from distributor.errors import ValidationError

T = TypeVar("T")

TASK_ID_RE = re.compile(r"[A-Za-z0-9._-]{1,100}")
AGENT_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
REQUEST_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")
MAX_REQUEST_ID = 64


def _check_id(value: str, pattern: re.Pattern[str], what: str, rule: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"invalid {what}: must be text, not {type(value).__name__}")
    if not pattern.fullmatch(value):
        shown = value if len(value) <= 40 else value[:40] + "..."
        raise ValueError(f"invalid {what} {shown!r}: must be {rule}")
    return value


def check_task_id(value: str) -> str:
    """Return ``value`` if it is a valid task id, else raise ``ValueError``."""
    return _check_id(value, TASK_ID_RE, "task id", "1-100 letters, digits, '.', '_' or '-'")


def check_agent_id(value: str) -> str:
    """Return ``value`` if it is a valid agent id, else raise ``ValueError``."""
    return _check_id(value, AGENT_ID_RE, "agent id", "1-64 letters, digits, '_' or '-'")


def validated(check: Callable[[T], T], value: T, where: str = "") -> T:
    """Run a field check, turning its ``ValueError`` into our :class:`ValidationError`
    (prefixed with ``where``, the field's name, when given)."""
    try:
        return check(value)
    except ValueError as exc:
        raise ValidationError(f"{where}: {exc}" if where else str(exc)) from None


def new_request_id() -> str:
    """A fresh request id: 96 random bits in 16 URL-safe characters (a short key per stored
    reply; two live ids colliding is as likely as guessing a 96-bit secret)."""
    return secrets.token_urlsafe(12)


def check_request_id(request_id: str | None) -> str:
    """A caller's request id (or a fresh one): 1-64 letters, digits, '_' or '-'."""
    if request_id is None:
        return new_request_id()
    if not 1 <= len(request_id) <= MAX_REQUEST_ID or not set(request_id) <= REQUEST_ID_CHARS:
        raise ValidationError("invalid request id: must be 1-64 letters, digits, '_' or '-'")
    return request_id


def derived_request_id(request_id: str, purpose: str) -> str:
    """A second request id that follows from ``request_id`` (e.g. the claim a ``done --next
    --wait`` makes after its completion), so a re-run with the first id repeats both."""
    return hashlib.blake2b(f"{request_id}/{purpose}".encode(), digest_size=16).hexdigest()
