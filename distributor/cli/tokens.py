"""The CLI's state on this host: fencing tokens per agent, so ``done`` can omit ``--token``, and
the request ids of commands that ended unanswered, so re-running one replays its outcome.

Stored in ``$SWARMQUEUE_STATE_DIR`` (an absolute path; default ``$XDG_STATE_HOME/swarmqueue`` or
``~/.local/state/swarmqueue``) as ``tokens/<swarm>/<agent>.json`` and
``requests/<swarm>/agent-<agent>.json`` (``plans.json`` for ``plan submit``); one file per
agent, written atomically, so agents sharing a host never race on one file.

Pending requests: a state-changing command (``next``, ``claim``, ``done``, ``fail``, ``start``,
``release``, ``plan submit``) keeps its request id here, keyed by the command and the arguments
that define it, before it is sent, and drops it once Redis answered (done or refused). When
Redis stayed unreachable (exit 3) the id stays, so running the very same command again sends
the same id and gets the stored reply of a request that did reach Redis (its claim, its token)
instead of doing it twice. Only ids are kept (the key is a digest of the command), at most
:data:`PENDING_KEPT` per file.

A token that cannot be kept is worse than no claim: the agent could not finish the task and it
would stay held until its lease ran out. So ``next``/``claim`` call :func:`check_writable` before
claiming, and every failure here is a :class:`~distributor.errors.ConfigError` (exit 2, one line).
Swarm and agent ids are checked before they become path parts, and the resolved path must stay
inside the state directory.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from distributor.errors import ConfigError, ValidationError
from distributor.store.keys import check_swarm
from distributor.tasks.ids import check_agent_id, check_request_id, new_request_id, validated

PENDING_KEPT = 32  # pending request ids kept per file; the oldest goes first


def state_dir() -> Path:
    """The directory tokens live in; ``ConfigError`` when ``SWARMQUEUE_STATE_DIR`` is unusable."""
    explicit = os.environ.get("SWARMQUEUE_STATE_DIR")
    if explicit:
        path = Path(explicit).expanduser()
        if "\0" in explicit or not path.is_absolute():
            raise ConfigError(f"SWARMQUEUE_STATE_DIR must be an absolute path, not {explicit!r}")
        return path
    xdg = os.environ.get("XDG_STATE_HOME", "")  # the XDG spec: a relative value counts as unset
    if os.path.isabs(xdg):
        return Path(xdg) / "swarmqueue"
    try:
        return Path.home() / ".local" / "state" / "swarmqueue"
    except RuntimeError:  # no $HOME and no password entry
        raise ConfigError("no home directory for claim tokens: set SWARMQUEUE_STATE_DIR") from None


def _unusable(where: Path, exc: OSError) -> ConfigError:
    reason = exc.strerror or exc.__class__.__name__
    return ConfigError(f"cannot use {where} for the CLI's state (SWARMQUEUE_STATE_DIR): {reason}")


def _dir(swarm: str) -> Path:
    """``<state dir>/tokens/<swarm>``, refusing a swarm name that would leave it."""
    root = state_dir()
    validated(check_swarm, swarm)
    path = root / "tokens" / swarm
    if not path.resolve().is_relative_to((root / "tokens").resolve()):
        raise ValidationError(f"swarm {swarm!r} would keep its tokens outside {root}")
    return path


def _path(swarm: str, agent_id: str) -> Path:
    directory = _dir(swarm)
    validated(check_agent_id, agent_id)
    path = directory / f"{agent_id}.json"
    if path.resolve().parent != directory.resolve():
        raise ValidationError(f"agent {agent_id!r} would keep its tokens outside {directory}")
    return path


def _read_object(path: Path) -> dict[str, Any]:
    """The JSON object stored at ``path``; {} when there is none or it is not usable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise _unusable(path, exc) from None
    except ValueError:  # not JSON or not UTF-8: nothing usable is remembered in it
        return {}
    return data if isinstance(data, dict) else {}


def _load(path: Path) -> dict[str, int]:
    data = _read_object(path)
    return {str(k): v for k, v in data.items() if type(v) is int and v > 0}


def _save(path: Path, data: dict[str, Any]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tokens-")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(data, fh)
            os.replace(tmp, path)
        except OSError:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise _unusable(path.parent, exc) from None


def check_writable(swarm: str, agent_id: str) -> None:
    """Make sure a token for ``agent_id`` can be kept: create the directory, write a probe.

    Called before claiming, so a broken state directory refuses the claim instead of leaving
    a task held by an agent that cannot prove it holds it.
    """
    path = _path(swarm, agent_id)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=path.parent, prefix=".probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise _unusable(path.parent, exc) from None
    if path.is_dir():
        raise ConfigError(f"cannot use {path} for claim tokens: it is a directory")


def remember(
    swarm: str, agent_id: str, task_id: str, token: int, forget: str | None = None
) -> None:
    """Keep ``token`` for ``task_id`` (and drop the finished ``forget`` in the same write)."""
    path = _path(swarm, agent_id)
    tokens = _load(path)
    if forget is not None:
        tokens.pop(forget, None)
    tokens[task_id] = token
    _save(path, tokens)


def recall(swarm: str, agent_id: str, task_id: str) -> int | None:
    return _load(_path(swarm, agent_id)).get(task_id)


def forget(swarm: str, agent_id: str, task_id: str) -> None:
    path = _path(swarm, agent_id)
    tokens = _load(path)
    if tokens.pop(task_id, None) is not None:
        _save(path, tokens)


# -- pending request ids ---------------------------------------------------------------------


def _requests_path(swarm: str, agent_id: str | None) -> Path:
    """``<state dir>/requests/<swarm>/agent-<agent>.json`` (``plans.json`` without an agent)."""
    root = state_dir() / "requests"
    validated(check_swarm, swarm)
    directory = root / swarm
    if agent_id is None:
        name = "plans.json"
    else:
        validated(check_agent_id, agent_id)
        name = f"agent-{agent_id}.json"
    path = directory / name
    if not directory.resolve().is_relative_to(root.resolve()) or (
        path.resolve().parent != directory.resolve()
    ):
        raise ValidationError(f"swarm {swarm!r} would keep its requests outside {root}")
    return path


def _request_key(request: Sequence[object]) -> str:
    """Which command this is: a digest of its name and the arguments that define it."""
    raw = json.dumps(list(request), sort_keys=True, default=str).encode()
    return hashlib.blake2b(raw, digest_size=12).hexdigest()


def _load_pending(path: Path) -> dict[str, str]:
    data = _read_object(path)
    pending = {}
    for key, value in data.items():
        try:
            pending[str(key)] = check_request_id(value) if isinstance(value, str) else ""
        except ValidationError:
            continue
    return {k: v for k, v in pending.items() if v}


def pending_request(swarm: str, agent_id: str | None, request: Sequence[object]) -> str:
    """The request id to send ``request`` with (a command's name and defining arguments): the
    one an unanswered earlier run of the very same command left, else a new one, kept here
    before the command is sent. ``ConfigError`` when it cannot be kept."""
    path = _requests_path(swarm, agent_id)
    pending = _load_pending(path)
    key = _request_key(request)
    if key in pending:
        return pending[key]
    pending[key] = request_id = new_request_id()
    for old in list(pending)[: max(0, len(pending) - PENDING_KEPT)]:
        del pending[old]
    _save(path, pending)
    return request_id


def settle_request(swarm: str, agent_id: str | None, request: Sequence[object]) -> None:
    """Drop ``request``'s pending id: Redis answered it (done or refused)."""
    path = _requests_path(swarm, agent_id)
    pending = _load_pending(path)
    if pending.pop(_request_key(request), None) is not None:
        _save(path, pending)
