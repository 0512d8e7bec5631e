"""Agents' addresses checked without pydantic: pane ids, host names, capabilities, sockets.

Shared by the registry's validated input (:mod:`distributor.messaging.agents`) and the paths
that only check a name (sending, acknowledging, the worker), which must not pay for pydantic.
"""

from __future__ import annotations

import re

from distributor.tasks.ids import check_agent_id, validated

PANE_RE = re.compile(r"%[0-9]{1,9}")
HOST_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
CAPABILITY_RE = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
MAX_SOCKET = 500


def check_pane(value: str) -> str:
    """A tmux pane id such as ``%3`` (as in ``$TMUX_PANE``)."""
    if not PANE_RE.fullmatch(value):
        raise ValueError(f"invalid pane {value[:20]!r}: must be a tmux pane id such as %3")
    return value


def check_host(value: str) -> str:
    """A host name: 1-64 letters, digits, '.', '_' or '-'."""
    if not HOST_RE.fullmatch(value):
        raise ValueError(f"invalid host {value[:40]!r}: must be 1-64 letters, digits, '.-_'")
    return value


def check_capability(value: str) -> str:
    if not CAPABILITY_RE.fullmatch(value):
        raise ValueError(f"invalid capability {value[:40]!r}: 1-64 letters, digits, '.:_-'")
    return value


def check_socket(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    if not value.startswith("/") or len(value) > MAX_SOCKET or not value.isprintable():
        raise ValueError("invalid socket: must be an absolute path of printable characters")
    return value


def validated_agent_id(agent_id: str) -> str:
    """``agent_id`` if valid, else ``ValidationError``."""
    return validated(check_agent_id, agent_id)


def tmux_location(tmux_env: str | None, tmux_pane_env: str | None) -> tuple[str | None, str | None]:
    """(pane, socket) of the pane this process runs in, from ``$TMUX_PANE`` and ``$TMUX``.

    ``$TMUX`` is ``<socket path>,<server pid>,<session index>``.
    """
    socket = tmux_env.split(",", 1)[0] if tmux_env else None
    return (tmux_pane_env or None), (socket or None)
