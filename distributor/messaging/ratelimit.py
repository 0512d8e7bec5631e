"""Per-sender rate limit of messages, shared by every process and host through Redis.

A sender may send ``rate_limit_per_minute`` messages (default 10) in any sliding window of
``rate_limit_window_seconds`` (default :data:`WINDOW_SECONDS`, a minute); an operator empties a
sender's window with ``swarmqueue ratelimit reset SENDER`` (:meth:`Messenger.reset_rate_limit`).
The check and the count happen inside ``lua/msg_send.lua`` (see
``lua/include/ratelimit.lua``) in the same atomic step that records the message, by Redis time,
so two processes cannot both take the last slot and a refused message leaves no trace but a
count of refusals per sender (``refused``, for the dashboard's metrics)::

    t=0s    alice sends messages 1..10        all accepted (rate:alice holds 10 times)
    t=20s   alice sends message 11            RateLimitExceeded(retry_after=40.0)
    t=60s   message 1 leaves the window       the next message is accepted
"""

from __future__ import annotations

from distributor.messaging.names import validated_agent_id
from distributor.records import Record
from distributor.store.calls import Batch, Command, Op, text
from distributor.store.codec import redis_now_ms
from distributor.store.keys import SwarmKeys

WINDOW_SECONDS = 60


class RateUsage(Record):
    """How much of its window a sender has used, and how long until it may send again."""

    sender: str
    used: int
    limit: int
    retry_after: float
    window_seconds: float = WINDOW_SECONDS


def usage(
    keys: SwarmKeys, sender: str, limit: int, window_ms: int = WINDOW_SECONDS * 1000
) -> Op[RateUsage]:
    """Read a sender's usage without counting a message."""
    validated_agent_id(sender)
    time_reply, clock = yield Batch((Command(("TIME",)), Command(("GET", keys.clock))))
    now = redis_now_ms(time_reply, clock)
    recent = yield Command(
        ("ZRANGEBYSCORE", keys.rate(sender), now - window_ms + 1, "+inf", "WITHSCORES")
    )
    scores = _scores(recent)
    wait = 0.0 if len(scores) < limit else max(0.0, (scores[0] + window_ms - now) / 1000)
    return RateUsage(
        sender=sender, used=len(scores), limit=limit, retry_after=wait,
        window_seconds=window_ms / 1000,
    )  # fmt: skip


def _scores(reply: list[object]) -> list[float]:
    """Scores of a WITHSCORES reply: flat ``[m, s, ...]`` (RESP2) or ``[[m, s], ...]`` (RESP3)."""
    if reply and isinstance(reply[0], list | tuple):
        return [float(text(pair[1])) for pair in reply]  # type: ignore[index]
    return [float(text(v)) for v in reply[1::2]]
