"""Translation between Redis hashes / script replies and the reply records."""

from __future__ import annotations

import json
from typing import Any

from distributor.store.calls import text


def decode_map(raw: Any) -> dict[str, str]:
    """A hash reply (dict, or cjson object) with every key and value as ``str``."""
    if isinstance(raw, list):  # cjson encodes an empty table as a list
        return {}
    # Script replies arrive as JSON, whose keys and values are str already: keep those as
    # they are (a function call per item costs more than the rest of the conversion).
    return {
        k if type(k) is str else text(k): v if type(v) is str else text(v) for k, v in raw.items()
    }


def redis_now_ms(time_reply: Any, clock: Any) -> int:
    """Redis ``TIME`` in ms plus the swarm's ``clock`` offset: what the scripts call now."""
    seconds, micros = (int(text(v)) for v in time_reply)
    return seconds * 1000 + micros // 1000 + (int(text(clock)) if clock else 0)


def script_reply(reply: Any) -> tuple[str, dict[str, Any]]:
    """Split a script's ``{status, json}`` reply."""
    status, payload = reply
    decoded = json.loads(text(payload))
    return text(status), decoded if isinstance(decoded, dict) else {}
