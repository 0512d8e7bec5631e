"""Acknowledgements: a recipient confirms a message (``lua/msg_ack.lua``), and the messages still
waiting for one are typed again or given up (``lua/msg_remind.lua``, run by each worker's sweep).

A message sent with ``requires_ack`` carries, in each recipient's outcome, ``ack_max`` (the
``ack_redeliveries`` setting when it was sent) and ``ack_delay`` (ms). Once the recipient's
delivery is final, ``lua/msg_outcome.lua`` sets its ``remind_at`` (the delay doubled per
re-delivery so far) and scores the message in the swarm's ``acks`` set::

    t0        delivered to ann, bob, cy            remind_at = t0 + d for each
    t0+5s     ann acknowledges                     ann: acknowledged (final)
    t0+d      sweep: bob, cy pending again (1)     typed again by a delivery job
    t1+2d     sweep: bob, cy pending again (2)     (t1: that delivery)
    t2+4d     sweep: bob, cy unacknowledged        with ack_redeliveries = 2
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from distributor.errors import MessageNotFound, NotARecipient
from distributor.messaging.names import validated_agent_id
from distributor.records import Record, field
from distributor.store.calls import Op, ScriptCall
from distributor.store.codec import script_reply
from distributor.store.keys import SwarmKeys
from distributor.tasks.models import ms_to_datetime


class Acknowledged(Record):
    """What :meth:`Messenger.acknowledge` did: ``already`` when the agent had acknowledged the
    message before (``acked_at`` is that first time); ``late`` when it came after the give-up."""

    message_id: str
    agent_id: str
    acked_at: datetime
    already: bool = False
    late: bool = False


class Reminded(Record):
    """What one :meth:`Messenger.remind` did: recipients set to be typed again (``reminded``:
    message id, agent, re-delivery number) and given up (``unacknowledged``)."""

    reminded: list[tuple[str, str, int]] = field(default_factory=list)
    unacknowledged: list[tuple[str, str]] = field(default_factory=list)
    hosts: list[tuple[str, str]] = field(default_factory=list)


def acknowledge(keys: SwarmKeys, message_id: str, agent_id: str) -> Op[Acknowledged]:
    """Record that ``agent_id`` acknowledged ``message_id`` (a checked id); raises
    ``MessageNotFound`` and ``NotARecipient``, changing nothing then."""
    validated_agent_id(agent_id)
    reply = yield ScriptCall(
        "msg_ack", [keys.message(message_id), keys.deliveries(message_id), keys.clock], [agent_id]
    )
    status, body = script_reply(reply)
    if status == "not_found":
        raise MessageNotFound(message_id)
    if status == "not_recipient":
        raise NotARecipient(message_id, agent_id)
    acked_at = ms_to_datetime(body["acked_at"])
    assert acked_at is not None
    return Acknowledged(
        message_id=message_id,
        agent_id=agent_id,
        acked_at=acked_at,
        already=status == "already",
        late=bool(body.get("late")),
    )


def remind(keys: SwarmKeys, limit: int) -> Op[Reminded]:
    """Re-deliver or give up the overdue acknowledgements of the swarm (at most ``limit``
    messages)."""
    call = ScriptCall("msg_remind", [keys.acks, keys.clock, keys.hosts], [keys.prefix, limit])
    reply = yield call
    _, body = script_reply(reply)
    return Reminded(
        reminded=[(str(m), str(a), int(n)) for m, a, n in _list(body.get("reminded"))],
        unacknowledged=[(str(m), str(a)) for m, a in _list(body.get("unacknowledged"))],
        hosts=[(str(m), str(h)) for m, h in _list(body.get("hosts"))],
    )


def _list(value: Any) -> list[Any]:
    """A JSON list from a script (Lua's cjson encodes an empty table as ``{}``)."""
    return list(value) if isinstance(value, list) else []
