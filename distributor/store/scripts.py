"""The Lua scripts: read once from ``distributor/store/lua`` with includes inlined.

Each operation is one ``<name>.lua`` file; a line ``--@include common`` is replaced by
``lua/include/common.lua`` (shared helpers), the way BullMQ assembles its commands; includes
may include others (``common`` inlines ``reservations``). Clients call
``register_script`` on the sources, and redis-py loads them again by itself after a NOSCRIPT.

Scripts that build keys from the swarm's prefix (every script including ``common``, and those
in ``BUILDS_KEYS``) start with Dragonfly's flag line :data:`UNDECLARED_KEYS_FLAG`, a comment to
Redis and Valkey (why: :mod:`distributor.store.keys`).
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

SCRIPT_NAMES = (
    "submit_plan",
    "claim",
    "claim_next",
    "start",
    "heartbeat",
    "complete",
    "fail",
    "release",
    "retry",
    "cancel",
    "reap",
    "counts",
    "add_task",
    "reserve",
    "unreserve",
    "outline",  # plan show's summary of a large graph (read-only)
    "layers",  # the same from the layers stored at submit (read-only)
)
# Agent registry and messaging (distributor.messaging.agents and .messages); these use their
# own keys, so they do not include ``common``.
MESSAGING_SCRIPT_NAMES = (
    "agent_register",
    "agent_heartbeat",
    "agent_remove",
    "agent_prune",
    "msg_send",
    "msg_outcome",
    "msg_begin",
    "msg_typing",
    "msg_finish",
    "msg_lease",
    "msg_redispatch",
    "msg_ack",
    "msg_remind",
)
_INCLUDE_RE = re.compile(r"^--@include (\w+)$", re.MULTILINE)
UNDECLARED_KEYS_FLAG = "--!df flags=allow-undeclared-keys"
# Messaging scripts that build agent:, inbox: or outbox: keys from the prefix in ARGV[1].
BUILDS_KEYS = ("agent_prune", "msg_send", "msg_remind")


def _read(relative: str) -> str:
    return (resources.files("distributor.store") / "lua" / relative).read_text(encoding="utf-8")


@cache
def source(name: str) -> str:
    """The full source of script ``name``, includes inlined."""
    if name not in SCRIPT_NAMES and name not in MESSAGING_SCRIPT_NAMES:
        raise KeyError(f"no Lua script named {name!r}")
    text = _read(f"{name}.lua")
    builds_keys = name in BUILDS_KEYS or "--@include common" in text
    text = inline_includes(text)
    return f"{UNDECLARED_KEYS_FLAG}\n{text}" if builds_keys else text


def inline_includes(text: str, depth: int = 0) -> str:
    """``text`` with each ``--@include name`` line replaced by that include, recursively."""
    if depth > 3:
        raise ValueError("Lua includes nest too deeply")
    return _INCLUDE_RE.sub(
        lambda m: inline_includes(_read(f"include/{m.group(1)}.lua"), depth + 1), text
    )
