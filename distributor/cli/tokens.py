"""Fencing tokens remembered per agent on this host, so ``done`` can omit ``--token``.

Stored in ``$SWARMQUEUE_STATE_DIR`` (default ``$XDG_STATE_HOME/swarmqueue`` or
``~/.local/state/swarmqueue``) as ``tokens/<swarm>/<agent>.json``; one file per agent, written
atomically, so agents sharing a host never race on one file.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path


def state_dir() -> Path:
    explicit = os.environ.get("SWARMQUEUE_STATE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "swarmqueue"


def _path(swarm: str, agent_id: str) -> Path:
    return state_dir() / "tokens" / swarm / f"{agent_id}.json"


def _load(path: Path) -> dict[str, int]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
    return {str(k): int(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _save(path: Path, tokens: dict[str, int]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tokens-")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(tokens, fh)
    os.replace(tmp, path)


def remember(swarm: str, agent_id: str, task_id: str, token: int) -> None:
    path = _path(swarm, agent_id)
    tokens = _load(path)
    tokens[task_id] = token
    _save(path, tokens)


def recall(swarm: str, agent_id: str, task_id: str) -> int | None:
    return _load(_path(swarm, agent_id)).get(task_id)


def forget(swarm: str, agent_id: str, task_id: str) -> None:
    path = _path(swarm, agent_id)
    tokens = _load(path)
    if tokens.pop(task_id, None) is not None:
        _save(path, tokens)
