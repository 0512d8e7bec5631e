"""The commit guard: a git pre-commit hook that refuses commits touching files that another
agent holds exclusively.

``install`` writes ``pre-commit`` in the repository's hooks directory (``git rev-parse
--git-path hooks``, so worktrees and ``core.hooksPath`` are honoured); the hook runs
``swarmqueue guard check``. An existing hook that is not the guard is never overwritten or
removed: ``install`` refuses (:class:`ForeignHook`), saying how to call the check from it, and
``uninstall`` leaves it alone. ``git commit --no-verify`` skips every pre-commit hook, the guard
included.
"""

from __future__ import annotations

import os
import shlex
import stat
import subprocess
from pathlib import Path

from distributor.errors import RefusedError, ValidationError
from distributor.reservations.index import Holdings
from distributor.reservations.models import Reservation
from distributor.reservations.patterns import parse

MARKER = "# swarmqueue guard: refuses commits touching files another agent reserved"
AGENT_ENV = "SWARMQUEUE_AGENT"


class NotARepository(ValidationError):
    """The current directory is not inside a git work tree (or git is missing)."""


class ForeignHook(RefusedError):
    """A pre-commit hook that swarmqueue did not write is in the way."""

    def __init__(self, path: Path, command: str) -> None:
        super().__init__(str(path), command)
        self.path = path
        self.command = command

    def __str__(self) -> str:
        return (
            f"{self.path} exists and is not swarmqueue's guard; left as it is. To guard "
            f"commits, add this line to it: {self.command} || exit 1"
        )


def _git(args: list[str], cwd: Path) -> bytes:
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, check=False, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise NotARepository(f"cannot run git: {exc}") from None
    if done.returncode != 0:
        detail = done.stderr.decode(errors="replace").strip().splitlines()
        raise NotARepository(f"not a git repository ({detail[0] if detail else 'git failed'})")
    return done.stdout


def hook_path(cwd: Path) -> Path:
    """Where git looks for this repository's pre-commit hook."""
    hooks = _git(["rev-parse", "--git-path", "hooks"], cwd).decode().strip()
    return (cwd / hooks / "pre-commit").resolve()


def hook_text(check_command: str, swarm: str) -> str:
    """The hook: the swarm it guards unless the committer's environment names another."""
    return (
        "#!/bin/sh\n"
        f"{MARKER}\n"
        "# Installed by `swarmqueue guard install`; `swarmqueue guard uninstall` removes it.\n"
        "# The committing agent is $SWARMQUEUE_AGENT; bypass with: git commit --no-verify\n"
        f'SWARMQUEUE_SWARM="${{SWARMQUEUE_SWARM:-{swarm}}}"\n'
        "# Ask Redis once: a commit does not wait through an outage (it warns and goes ahead).\n"
        "SWARMQUEUE_RETRY_BUDGET_SECONDS=0 SWARMQUEUE_REDIS_RETRIES=0\n"
        "export SWARMQUEUE_SWARM SWARMQUEUE_RETRY_BUDGET_SECONDS SWARMQUEUE_REDIS_RETRIES\n"
        f"exec {check_command}\n"
    )


def install(cwd: Path, check_command: str, swarm: str) -> Path:
    """Write the guard (again); :class:`ForeignHook` when another hook is there."""
    path = hook_path(cwd)
    if path.exists() and MARKER not in path.read_text(errors="replace"):
        raise ForeignHook(path, check_command)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(hook_text(check_command, shlex.quote(swarm)))
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def uninstall(cwd: Path) -> Path | None:
    """Remove the guard; returns its path, or ``None`` when none was installed.
    :class:`ForeignHook` when the hook there is not the guard (it is left alone)."""
    path = hook_path(cwd)
    if not path.exists():
        return None
    if MARKER not in path.read_text(errors="replace"):
        raise ForeignHook(path, "swarmqueue guard check")
    path.unlink()
    return path


def staged_paths(cwd: Path) -> list[str]:
    """Paths the commit being made touches (added, changed, deleted; both sides of a rename)."""
    raw = _git(["diff", "--cached", "--name-only", "--no-renames", "-z"], cwd)
    return [p for p in raw.decode(errors="surrogateescape").split("\0") if p]


def refusals(
    paths: list[str], reservations: list[Reservation], agent_id: str | None
) -> list[tuple[str, list[Reservation]]]:
    """Each path held exclusively by an agent other than ``agent_id``, with its holders.

    A path that is no valid pattern (a control character in a file name, say) is compared by
    its parent directories, which always are."""
    holdings = Holdings(reservations)
    found = []
    for path in paths:
        try:
            pattern = parse(path)
        except ValueError:
            parent = os.path.dirname(path)
            if not parent:
                continue
            try:
                pattern = parse(parent + "/")
            except ValueError:
                continue
        holders = holdings.conflicts(pattern, agent_id, shared=True)  # exclusive ones only
        if holders:
            found.append((path, holders))
    return found
