"""The agent registry: who is in the swarm, where its tmux pane is, and whether it is present.

An agent's address is its host, its tmux pane id (``%3``) and the socket of the tmux server
that owns the pane (empty for the default server): pane ids are only unique per server.
Presence is the time Redis last heard from the agent (register or heartbeat); an agent unseen
for ``agent_stale_seconds`` is shown as stale (away) and skipped by broadcasts unless named, and
one unseen for ``agent_prune_seconds`` is forgotten, with its inbox, by
:meth:`AgentRegistry.prune`.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError

from distributor.errors import AgentNotFoundError, PaneNotRegistered
from distributor.messaging.names import (
    check_capability,
    check_host,
    check_pane,
    check_socket,
    validated_agent_id,
)
from distributor.settings import Settings
from distributor.store.calls import Batch, Command, Op, ScriptCall, text
from distributor.store.client import SyncClient
from distributor.store.codec import decode_map, redis_now_ms, script_reply
from distributor.store.executor import SyncExecutor
from distributor.store.keys import SwarmKeys
from distributor.tasks.ids import validated
from distributor.tasks.models import ms_to_datetime
from distributor.tasks.specs import AgentId
from distributor.validation import validation_error

MAX_CAPABILITIES = 32


PaneId = Annotated[str, AfterValidator(check_pane)]
HostId = Annotated[str, AfterValidator(check_host)]
Capability = Annotated[str, AfterValidator(check_capability)]
SocketPath = Annotated[str | None, AfterValidator(check_socket)]


class AgentAddress(BaseModel):
    """What registering an agent takes; validated before anything is written."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: AgentId
    host: HostId
    pane: PaneId
    socket: SocketPath = None
    capabilities: Annotated[list[Capability], Field(max_length=MAX_CAPABILITIES)] = []


class Agent(AgentAddress):
    """A registered agent with its presence."""

    registered_at: datetime
    last_seen: datetime
    stale: bool = False


def agent_at_pane(
    agents: list[Agent], pane: str, socket: str | None, host: str
) -> Agent:
    """The agent registered for tmux pane ``pane`` (of the server at ``socket``) on ``host``:
    how a command run inside an agent's pane knows who it is (``$TMUX_PANE``, ``$TMUX``).

    An agent registered without a socket (the default server) matches any; one registered
    with the same socket is preferred. ``PaneNotRegistered`` when none, or several, match.
    """
    found = [a for a in agents if a.host == host and a.pane == pane]
    found = [a for a in found if a.socket in (None, socket) or socket is None]
    exact = [a for a in found if socket is not None and a.socket == socket]
    if len(exact) == 1:
        return exact[0]
    if len(found) == 1:
        return found[0]
    raise PaneNotRegistered(pane, host, sorted(a.id for a in (exact or found)))


def _agent_from_hash(raw: Any, now: datetime | None, stale_after: float) -> Agent:
    h = decode_map(raw)
    last_seen = ms_to_datetime(h["last_seen"])
    assert last_seen is not None
    stale = now is not None and now - last_seen > timedelta(seconds=stale_after)
    return Agent(
        id=h["id"],
        host=h["host"],
        pane=h["pane"],
        socket=h.get("socket") or None,
        capabilities=json.loads(h.get("capabilities") or "[]"),
        registered_at=ms_to_datetime(h["registered_at"]) or last_seen,
        last_seen=last_seen,
        stale=stale,
    )


def redis_now(reply: Any, clock: Any) -> datetime:
    """Redis ``TIME`` (plus the swarm's test clock offset) as an aware datetime."""
    return datetime.fromtimestamp(redis_now_ms(reply, clock) / 1000, tz=UTC)


class AgentOps:
    """Registry operations as generators of Redis calls (driven sync or async)."""

    def __init__(self, keys: SwarmKeys, settings: Settings) -> None:
        self.keys = keys
        self.settings = settings

    def register(self, address: AgentAddress) -> Op[Agent]:
        k = self.keys
        reply = yield ScriptCall(
            "agent_register",
            [k.agents, k.agent(address.id), k.clock],
            [
                address.id,
                address.host,
                address.pane,
                address.socket or "",
                json.dumps(address.capabilities),
            ],
        )
        _, body = script_reply(reply)
        # after the script: a worker's sweep that drops a swarm without agents from the host's
        # set re-checks and adds it back, so it cannot miss this agent (workers/sweep.py)
        yield Command(("SADD", k.host_swarms(address.host), k.swarm))
        return _agent_from_hash(body, None, self.settings.agent_stale_seconds)

    def heartbeat(self, agent_id: str) -> Op[datetime]:
        validated_agent_id(agent_id)
        k = self.keys
        call = ScriptCall("agent_heartbeat", [k.agents, k.agent(agent_id), k.clock], [agent_id])
        status, body = script_reply((yield call))
        if status == "not_found":
            raise AgentNotFoundError([agent_id])
        seen = ms_to_datetime(body["last_seen"])
        assert seen is not None
        return seen

    def remove(self, agent_id: str) -> Op[None]:
        validated_agent_id(agent_id)
        k = self.keys
        status, _ = script_reply(
            (yield ScriptCall("agent_remove", [k.agents, k.agent(agent_id)], [agent_id]))
        )
        if status == "not_found":
            raise AgentNotFoundError([agent_id])

    def prune(self, limit: int = 1000) -> Op[list[str]]:
        """Forget agents unseen for ``agent_prune_seconds`` (and their inboxes); their ids."""
        k = self.keys
        window_ms = round(self.settings.agent_prune_seconds * 1000)
        reply = yield ScriptCall(
            "agent_prune", [k.agents, k.clock], [k.prefix, window_ms, limit]
        )
        _, body = script_reply(reply)
        return [str(i) for i in body["pruned"]]

    def list(self) -> Op[list[Agent]]:
        """Every registered agent, most recently seen first, with ``stale`` marked."""
        time_reply, clock, ids = yield Batch(
            (
                Command(("TIME",)),
                Command(("GET", self.keys.clock)),
                Command(("ZREVRANGE", self.keys.agents, 0, -1)),
            )
        )
        now = redis_now(time_reply, clock)
        names = [text(i) for i in ids]
        if not names:
            return []
        raws = yield Batch(tuple(Command(("HGETALL", self.keys.agent(n))) for n in names))
        stale_after = self.settings.agent_stale_seconds
        return [_agent_from_hash(raw, now, stale_after) for raw in raws if raw]

    def get(self, agent_id: str) -> Op[Agent]:
        validated_agent_id(agent_id)
        time_reply, clock, raw = yield Batch(
            (
                Command(("TIME",)),
                Command(("GET", self.keys.clock)),
                Command(("HGETALL", self.keys.agent(agent_id))),
            )
        )
        if not raw:
            raise AgentNotFoundError([agent_id])
        return _agent_from_hash(
            raw, redis_now(time_reply, clock), self.settings.agent_stale_seconds
        )


def parse_address(**fields: Any) -> AgentAddress:
    """Validate registration input; ``ValidationError`` names the first bad field."""
    try:
        return AgentAddress.model_validate(fields)
    except PydanticValidationError as exc:
        raise validation_error(exc) from None


class AgentRegistry(SyncClient):
    """The synchronous agent registry of one swarm."""

    def _setup(self) -> None:
        self.ops = AgentOps(self.keys, self.settings)
        self._executor = SyncExecutor(self.redis)

    def register(
        self,
        agent_id: str,
        pane: str,
        socket: str | None = None,
        host: str | None = None,
        capabilities: list[str] | None = None,
    ) -> Agent:
        """Add ``agent_id`` at ``pane`` (on the tmux server at ``socket``) or move it there."""
        address = parse_address(
            id=agent_id,
            pane=pane,
            socket=socket,
            host=host or self.settings.host,
            capabilities=capabilities or [],
        )
        return self._executor.run(self.ops.register(address))

    def heartbeat(self, agent_id: str) -> datetime:
        """Mark the agent present now (Redis time); ``AgentNotFoundError`` if unregistered."""
        return self._executor.run(self.ops.heartbeat(agent_id))

    def remove(self, agent_id: str) -> None:
        """Forget the agent; ``AgentNotFoundError`` if it was not registered."""
        self._executor.run(self.ops.remove(agent_id))

    def prune(self) -> list[str]:
        """Forget agents unseen for ``agent_prune_seconds``, with their inboxes; their ids."""
        return self._executor.run(self.ops.prune())

    def list(self) -> list[Agent]:
        """Every agent, most recently seen first; ``stale`` marks the absent ones."""
        return self._executor.run(self.ops.list())

    def get(self, agent_id: str) -> Agent:
        """One agent; ``AgentNotFoundError`` if unregistered."""
        return self._executor.run(self.ops.get(agent_id))

    def at_pane(self, pane: str, socket: str | None = None, host: str | None = None) -> Agent:
        """The agent registered for ``pane`` on ``host`` (default: this host); see
        :func:`agent_at_pane`."""
        checked = validated(check_socket, socket)
        return agent_at_pane(self.list(), pane, checked, host or self.settings.host)
