"""Which node is a Sentinel service's master: the newest answer of all sentinels, not the first.

redis-py asks the sentinels in turn and connects to the first healthy master one names. Right
after a failover a sentinel that has not yet heard of it still names the old master; if that
server has come back (empty, when it runs without persistence) it answers like a healthy
master, and a client that asked that sentinel writes to an empty node: tasks an agent holds are
"not found" and what it writes there is dropped when the node becomes a replica. Each failover
raises the service's configuration epoch, so :func:`newest_master` asks every sentinel and
follows the highest epoch: one sentinel that knows of the failover is enough. It costs one
``SENTINEL MASTERS`` per sentinel per new connection, not per command.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import redis
import redis.asyncio.sentinel as aiosentinel
import redis.sentinel

Address = tuple[str, int]
"""A master's host and port."""

_UNREACHABLE = (redis.ConnectionError, redis.TimeoutError)


def newest_master(
    answers: Iterable[Mapping[str, Any] | None],
    healthy: Callable[[Mapping[str, Any]], bool],
) -> Mapping[str, Any] | None:
    """The master state with the highest ``config-epoch`` among the healthy ``answers``."""
    states = [state for state in answers if state and healthy(state)]
    if not states:
        return None
    return max(states, key=lambda state: int(state.get("config-epoch", 0)))


def _service_state(masters: object, service: str) -> Mapping[str, Any] | None:
    """The service's entry in a ``SENTINEL MASTERS`` reply (redis-py parses it to a dict)."""
    return masters.get(service) if isinstance(masters, dict) else None


def _master_address(
    manager: redis.sentinel.Sentinel | aiosentinel.Sentinel,
    service: str,
    answers: list[Mapping[str, Any] | None],
    errors: list[str],
) -> Address:
    """The address of the newest healthy master in ``answers``, else MasterNotFoundError."""

    def healthy(state: Mapping[str, Any]) -> bool:
        return bool(manager.check_master_state(dict(state), service))

    state = newest_master(answers, healthy)
    if state is None:
        detail = f" : {', '.join(errors)}" if errors else ""
        raise redis.sentinel.MasterNotFoundError(f"No master found for {service!r}{detail}")
    forced = manager._force_master_ip  # redis-py's force_master_ip option
    return (forced if forced is not None else state["ip"]), int(state["port"])


class EpochSentinel(redis.sentinel.Sentinel):
    """redis-py's :class:`~redis.sentinel.Sentinel`, discovering the master by epoch."""

    def discover_master(self, service_name: str) -> Address:
        answers: list[Mapping[str, Any] | None] = []
        errors: list[str] = []
        for sentinel in self.sentinels:
            try:
                answers.append(_service_state(sentinel.sentinel_masters(), service_name))
            except _UNREACHABLE as exc:
                errors.append(f"{sentinel} - {exc!r}")
        return _master_address(self, service_name, answers, errors)


class AsyncEpochSentinel(aiosentinel.Sentinel):
    """The asyncio twin of :class:`EpochSentinel`."""

    async def discover_master(self, service_name: str) -> Address:
        answers: list[Mapping[str, Any] | None] = []
        errors: list[str] = []
        for sentinel in self.sentinels:
            try:
                answers.append(_service_state(await sentinel.sentinel_masters(), service_name))
            except _UNREACHABLE as exc:
                errors.append(f"{sentinel} - {exc!r}")
        return _master_address(self, service_name, answers, errors)
