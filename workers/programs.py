"""What may be typed into a pane, decided by the program in its foreground.

A message reaches a pane as keystrokes, and the foreground program decides what keys do. An
agent CLI takes them as a prompt; a shell runs them (``hi; touch pwned`` is two commands); a
pager, an editor or a REPL reads them as commands too (``!cmd`` in ``less``, ``:!cmd`` in vi).
So the delivery job reads each pane's ``#{pane_current_command}`` (argv[0] of the foreground
process group, as tmux shows it: ``-bash`` as ``bash``, ``/usr/bin/python3`` as ``python3``)
and decides per pane:

* a shell (sh, bash, zsh, fish, …): with ``SWARMQUEUE_SHELL_PANES=skip`` (the default) nothing
  is typed, recorded ``failed / shell_prompt``. With ``comment``, a POSIX shell gets
  :func:`~distributor.messaging.sanitize.shell_comment` and Enter, recorded ``delivered``
  ``as: comment``;
  the other shells (csh, tcsh, fish, nu, pwsh, …) do not read ``#`` as a comment at a prompt or
  quote differently, so they get nothing either;
* a program in ``SWARMQUEUE_DELIVER_TO``: the message, pasted, and Enter (``as: paste``);
* anything else: nothing typed, recorded ``failed / not_an_agent``.

Refusals are final (a retry would find the same program); the message stays in the inbox.
Shells keep their rule even if the allowlist names them. ``skip`` is the default because a
comment is only inert if the shell's line editor is in a known state, which the worker cannot
see: Enter also submits whatever a person had half typed at that prompt, and a shell in the
foreground means the agent program is not running to read the message anyway.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from fnmatch import fnmatchcase

from distributor.messaging.sanitize import strip_controls
from distributor.settings import Settings
from workers.tmux import PROGRAM_RE  # names typed into are compared inside a tmux format

# Shells whose quoting is POSIX's: ``shell_comment`` is one inert line in each (tested with
# bash, dash and zsh in tests/test_shell_safety.py).
POSIX_SHELLS = frozenset(
    {"sh", "bash", "dash", "ash", "zsh", "ksh", "ksh93", "mksh", "pdksh", "oksh", "yash", "posh"}
)
# Shells never typed into: csh and tcsh run ``#`` lines at a prompt and expand ``!`` inside
# quotes; the others quote differently; busybox may be any of its applets.
OTHER_SHELLS = frozenset(
    {
        "csh", "tcsh", "fish", "nu", "pwsh", "powershell", "elvish", "xonsh", "ion", "rc",
        "es", "osh", "ysh", "oil", "murex", "busybox",
    }
)  # fmt: skip


class Typing(StrEnum):
    """How a message is typed into a pane; recorded as the delivery's ``as``."""

    PASTE = "paste"
    COMMENT = "comment"


@dataclass(frozen=True, slots=True)
class Refusal:
    """Nothing is typed into the pane; recorded ``failed`` with ``reason`` and ``detail``."""

    reason: str
    detail: str


def program_name(command: str) -> str:
    """The program's name from ``#{pane_current_command}``: no login dash, no directory."""
    return command.lstrip("-").rsplit("/", 1)[-1]


def decide(command: str, settings: Settings) -> Typing | Refusal:
    """How to type into a pane whose foreground program tmux shows as ``command``."""
    name = program_name(command)
    shown = strip_controls(command)[:64]
    typable = PROGRAM_RE.fullmatch(command) is not None
    if name in POSIX_SHELLS or name in OTHER_SHELLS:
        if settings.shell_panes == "comment" and name in POSIX_SHELLS and typable:
            return Typing.COMMENT
        why = (
            "SWARMQUEUE_SHELL_PANES=skip"
            if settings.shell_panes == "skip"
            else "only sh, bash, zsh, ksh and their kin get a comment line"
        )
        return Refusal(
            "shell_prompt", f"the pane's foreground program is the shell {shown!r}; {why}"
        )
    if typable and any(fnmatchcase(name, pattern) for pattern in settings.deliver_to):
        return Typing.PASTE
    return Refusal(
        "not_an_agent",
        f"the pane's foreground program {shown!r} is not in SWARMQUEUE_DELIVER_TO",
    )
