"""Invoke tmux: list panes, and type one text into many panes with as few invocations as possible.

The text never reaches tmux's command line: it is written to a named paste buffer from stdin
(``load-buffer -b B -``) and pasted with ``paste-buffer -p`` (bracketed when the program in the
pane asked for it), so nothing in it can be read as a tmux key name, option or command. One
``send-keys Enter`` per pane submits it.

Each pane is typed into only if its foreground program is still the one the caller checked
(see ``workers/programs.py``): ``if-shell -F`` compares ``#{pane_current_command}`` inside the
same invocation, right before the paste, so an agent that exits in between leaves its shell
untouched::

    list-panes     %3 runs claude            -> may be typed into
    (agent exits; %3 now shows bash)
    if-shell -F    %3 runs bash, not claude  -> nothing typed, "changed %3"

The panes of one tmux server are served by one invocation whose commands are chained with ``;``
(or a few: tmux refuses a command line over 16 KiB, about 60 panes). tmux stops a chain at the
first failing command, so after each pane's Enter the chain prints ``sent <pane>`` (or
``changed <pane>``): on an error, panes that printed either were handled, and only the rest are
tried again one invocation per pane, which attributes each failure.

With a ``stamp`` (the delivery attempt's id), right after a pane's Enter the same chain
prepends the stamp to the pane's user option ``@swarmqueue-typed`` (its last 64 stamps, shown by
:meth:`Tmux.panes`) instead of printing ``sent``, and ends with one ``list-panes`` of the stamps,
which says which panes it typed into. The tmux server runs a received chain in one go, so a
pane carries the stamp exactly when the paste and Enter reached it; a job that finds an earlier
attempt recorded ``typing`` reads the stamps to learn whether it typed
(``workers/delivery.py``). Agent programs redraw their screen, so the screen is only a second
witness (:meth:`Tmux.history`). Pane options need tmux 3.0; :func:`stamps_supported` tells.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache

from pydantic import BaseModel, ConfigDict

from distributor.errors import (
    PaneNotFound,
    PaneProgramChanged,
    TmuxError,
    TmuxServerNotFound,
    TmuxTimeout,
    ValidationError,
)
from distributor.log import get_logger
from distributor.messaging.names import check_socket

log = get_logger(__name__)

PANE_ID_RE = re.compile(r"%[0-9]{1,9}")
PROGRAM_RE = re.compile(r"[A-Za-z0-9._+/-]{1,128}")  # safe inside a tmux format and command
_SENT_PREFIX = "swarmqueue-sent "
_CHANGED_PREFIX = "swarmqueue-changed "
_STAMPED_PREFIX = "swarmqueue-stamped "
_SERVER_GONE = ("no server running", "error connecting to", "server exited")
_PANE_GONE = ("can't find pane", "can't find window", "can't find session")
_FIELD_SEP = "\x1f"
MAX_CHAIN_BYTES = 15_000  # tmux refuses a command line over 16 KiB ("command too long")
STAMP_OPTION = "@swarmqueue-typed"
STAMP_RE = re.compile(r"[A-Za-z0-9]{1,32}")
STAMPS_KEPT = 64
_STAMP_CHARS = STAMPS_KEPT * 9  # 8-character attempt ids and a space


@dataclass(frozen=True, slots=True)
class PaneRow:
    """One pane as ``list-panes -a`` reports it."""

    pane: str
    session: str
    window: str
    window_name: str
    command: str
    stamps: tuple[str, ...] = ()  # attempts that typed into it, newest first (see paste())


class Tmux:
    """A tmux server: the default one, or the one at ``socket`` (``tmux -S``)."""

    def __init__(
        self, socket: str | None = None, *, timeout: float = 5.0, binary: str = "tmux"
    ) -> None:
        self.socket = socket or None
        self.timeout = timeout
        self.binary = binary

    @property
    def where(self) -> str:
        return self.socket or "the default tmux server"

    def run(self, args: Sequence[str], stdin: bytes | None = None) -> str:
        """Run one tmux invocation; its stdout, or a typed :class:`TmuxError`.

        ``TmuxTimeout`` and ``TmuxError`` carry what was printed before the failure in
        ``partial_output`` (see :meth:`paste`).
        """
        cmd = [self.binary, *(["-S", self.socket] if self.socket else []), *args]
        try:
            done = subprocess.run(  # fixed argv, no shell
                cmd, input=stdin or b"", capture_output=True, timeout=self.timeout, check=False
            )
        except FileNotFoundError:
            raise TmuxServerNotFound(f"tmux binary {self.binary!r} not found") from None
        except subprocess.TimeoutExpired as exc:
            timeout = TmuxTimeout(f"tmux did not answer within {self.timeout:g}s at {self.where}")
            timeout.partial_output = _decode(exc.stdout)
            raise timeout from None
        out = _decode(done.stdout)
        if done.returncode != 0:
            err = _classify(_decode(done.stderr).strip(), self.where)
            err.partial_output = out
            raise err
        return out

    def panes(self) -> list[PaneRow]:
        """Every pane of the server (one ``list-panes -a``)."""
        fmt = _FIELD_SEP.join(
            [
                "#{pane_id}",
                "#{session_name}",
                "#{window_index}",
                "#{window_name}",
                "#{pane_current_command}",
                f"#{{{STAMP_OPTION}}}",
            ]
        )
        rows = []
        for line in self.run(["list-panes", "-a", "-F", fmt]).splitlines():
            parts = line.split(_FIELD_SEP)
            if len(parts) == 6 and PANE_ID_RE.fullmatch(parts[0]):
                pane, session, window, name, command, stamps = parts
                rows.append(PaneRow(pane, session, window, name, command, tuple(stamps.split())))
        return rows

    def pane_id(self, target: str) -> str:
        """The stable ``%N`` id of the pane a tmux target names (``session:window.pane``, a
        session or window, or ``%N``): one ``display-message`` on this server. Raises
        ``ValidationError`` for a malformed target, ``PaneNotFound`` when nothing matches."""
        if not (0 < len(target) <= 200 and target.isprintable()) or target.startswith("-"):
            raise ValidationError(
                f"invalid tmux target {target[:40]!r}: expected session:window.pane or %N"
            )
        out = self.run(["display-message", "-p", "-t", target, "#{pane_id}"]).strip()
        if not PANE_ID_RE.fullmatch(out):
            raise PaneNotFound(f"no pane matches {target!r} on {self.where}", target)
        return out

    def history(self, pane: str, lines: int) -> str:
        """The pane's screen and its last ``lines`` lines of history, wrapped lines joined."""
        if not PANE_ID_RE.fullmatch(pane):
            raise ValueError(f"not a tmux pane id: {pane!r}")
        return self.run(["capture-pane", "-p", "-J", "-S", f"-{lines}", "-t", pane])

    def stamps_supported(self) -> bool:
        """Whether this tmux keeps pane options (3.0 and later), which the stamps need."""
        return stamps_supported(self.binary)

    def paste(
        self,
        text: str,
        targets: Mapping[str, str],
        *,
        keep_newlines: bool = False,
        stamp: str | None = None,
    ) -> dict[str, TmuxError | None]:
        """Type ``text`` plus Enter into each pane; ``None`` per pane typed into, else its error.

        ``targets`` maps live pane ids to the foreground program seen there
        (``#{pane_current_command}``); a pane whose program has changed since is not typed
        into and gets ``PaneProgramChanged``, one that closed in between ``PaneNotFound``.
        ``stamp`` (letters and digits) is added to each pane typed into, in the same chain.
        """
        for pane, program in targets.items():
            if not PANE_ID_RE.fullmatch(pane):
                raise ValueError(f"not a tmux pane id: {pane!r}")
            if not PROGRAM_RE.fullmatch(program):
                raise ValueError(f"not a program name to compare: {program!r}")
        if stamp is not None and not STAMP_RE.fullmatch(stamp):
            raise ValueError(f"not a stamp: {stamp!r}")
        data = text.encode("utf-8")
        result: dict[str, TmuxError | None] = {}
        for chunk in _chunks(targets, keep_newlines, stamp):
            result.update(self._paste(data, chunk, keep_newlines, stamp))
        return result

    def _paste(
        self, data: bytes, targets: Mapping[str, str], keep_newlines: bool, stamp: str | None
    ) -> dict[str, TmuxError | None]:
        """One chain for ``targets``; on an error, the panes it did not reach one by one."""
        buffer = _buffer_name()
        try:
            out = self.run(self._chain(buffer, targets, keep_newlines, stamp), stdin=data)
            return self._results(out, targets, stamp)
        except TmuxError as exc:
            out = exc.partial_output
            chain_error = exc
        with contextlib.suppress(TmuxError):  # the chain stopped before its delete-buffer
            self.run(["delete-buffer", "-b", buffer])
        result = self._results(out, targets, stamp, complete=False)
        log.info(
            "tmux chain failed; trying panes one by one",
            where=self.where,
            error=str(chain_error),
            handled=len(result),
            remaining=len(targets) - len(result),
        )
        if isinstance(chain_error, TmuxServerNotFound):
            return {p: result.get(p, chain_error) for p in targets}
        if stamp is not None:  # a chain cut short (a timeout) may have typed more than it said
            with contextlib.suppress(TmuxError):
                for row in self.panes():
                    if row.pane in targets and row.pane not in result and stamp in row.stamps:
                        result[row.pane] = None
        for pane, program in targets.items():
            if pane in result:
                continue
            one = {pane: program}
            try:
                chain = self._chain(_buffer_name(), one, keep_newlines, stamp)
                out = self.run(chain, stdin=data)
                result[pane] = self._results(out, one, stamp)[pane]
            except TmuxError as exc:
                result[pane] = exc
        return result

    @staticmethod
    def _results(
        out: str, targets: Mapping[str, str], stamp: str | None = None, *, complete: bool = True
    ) -> dict[str, TmuxError | None]:
        """Outcomes the chain printed: ``None`` per pane typed into (its ``sent`` line, or with a
        ``stamp`` the stamp in the final listing), ``PaneProgramChanged`` per pane left alone;
        with ``complete``, a pane that printed nothing is an error too."""
        result: dict[str, TmuxError | None] = {}
        for line in out.splitlines():
            if line.startswith(_SENT_PREFIX):
                result["%" + line.removeprefix(_SENT_PREFIX)] = None
            elif line.startswith(_STAMPED_PREFIX) and stamp is not None:
                pane, _, stamps = line.removeprefix(_STAMPED_PREFIX).partition(" ")
                if stamp in stamps.split():
                    result[pane] = None
            elif line.startswith(_CHANGED_PREFIX):
                pane = "%" + line.removeprefix(_CHANGED_PREFIX)
                seen = targets.get(pane, "")
                result[pane] = PaneProgramChanged(
                    f"the foreground program of pane {pane} is no longer {seen!r}; nothing typed",
                    pane,
                )
        result = {p: r for p, r in result.items() if p in targets}
        if complete:
            for pane in targets:
                result.setdefault(pane, TmuxError(f"tmux reported nothing for pane {pane}", pane))
        return result

    @staticmethod
    def _chain(
        buffer: str, targets: Mapping[str, str], keep_newlines: bool, stamp: str | None = None
    ) -> list[str]:
        args = ["load-buffer", "-b", buffer, "-"]
        for pane, program in targets.items():
            args += _typing(buffer, pane, program, keep_newlines, stamp)
        args += [";", "delete-buffer", "-b", buffer]
        if stamp:  # one listing tells which panes the chain typed into (not a line per pane)
            fmt = f"{_STAMPED_PREFIX}#{{pane_id}} #{{{STAMP_OPTION}}}"
            args += [";", "list-panes", "-a", "-F", fmt]
        return args


def _typing(
    buffer: str, pane: str, program: str, keep_newlines: bool, stamp: str | None = None
) -> list[str]:
    """The chain's part for one pane: paste, Enter (and the stamp) if ``program`` is still in
    front."""
    paste = f"paste-buffer -p {'-r ' if keep_newlines else ''}-b {buffer}"
    number = pane[1:]  # markers hold no "%": display-message runs them through strftime
    if stamp:  # the stamp says it was typed (see _chain's listing), no line of its own
        done = (
            f"set-option -p -F -t {pane} {STAMP_OPTION} "
            f"'{stamp} #{{={_STAMP_CHARS}:{STAMP_OPTION}}}'"
        )
    else:
        done = f"display-message -p '{_SENT_PREFIX}{number}'"
    typed = f"{paste} -t {pane} ; send-keys -t {pane} Enter ; {done}"
    # has-session fails for a pane that is gone: PaneNotFound, not a changed program
    left = f"has-session -t {pane} ; display-message -p '{_CHANGED_PREFIX}{number}'"
    same = f"#{{==:#{{pane_current_command}},{program}}}"
    return [";", "if-shell", "-F", "-t", pane, same, typed, left]


def _chunks(
    targets: Mapping[str, str], keep_newlines: bool, stamp: str | None = None
) -> Iterator[dict[str, str]]:
    """``targets`` in groups whose chain stays within ``MAX_CHAIN_BYTES``."""
    chunk: dict[str, str] = {}
    size = 0
    for pane, program in targets.items():
        part = _typing(_buffer_name(), pane, program, keep_newlines, stamp)
        cost = sum(len(a) + 1 for a in part)
        if chunk and size + cost > MAX_CHAIN_BYTES:
            yield chunk
            chunk, size = {}, 0
        chunk[pane] = program
        size += cost
    if chunk:
        yield chunk


@cache
def stamps_supported(binary: str = "tmux") -> bool:
    """Whether ``binary -V`` is tmux 3.0 or later (pane options); False if it does not run.
    A version without numbers (a build from git, ``tmux master``) counts as recent."""
    try:
        done = subprocess.run(  # fixed argv, no shell
            [binary, "-V"], capture_output=True, timeout=5, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    version = re.search(r"(\d+)\.(\d+)", _decode(done.stdout))
    if done.returncode != 0:
        return False
    return version is None or int(version.group(1)) >= 3


def _buffer_name() -> str:
    return f"swarmqueue-{uuid.uuid4().hex[:16]}"


def _decode(raw: bytes | str | None) -> str:
    if raw is None:
        return ""
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw


def _classify(stderr: str, where: str) -> TmuxError:
    line = stderr.splitlines()[0] if stderr else "tmux failed without a message"
    lowered = line.lower()
    if any(s in lowered for s in _SERVER_GONE):
        return TmuxServerNotFound(f"no tmux server at {where}: {line}")
    if any(s in lowered for s in _PANE_GONE):
        return PaneNotFound(line)
    return TmuxError(line)


class PaneInfo(BaseModel):
    """A tmux pane of this host, as ``discover()`` reports it."""

    model_config = ConfigDict(frozen=True)

    pane: str
    session: str
    window: str
    window_name: str
    command: str
    socket: str | None = None


def discover(socket: str | None = None, *, timeout: float = 5.0) -> list[PaneInfo]:
    """This host's panes on one tmux server (the default one unless ``socket``).

    Raises ``TmuxServerNotFound`` when no server runs there or tmux is not installed.
    """
    try:
        checked = check_socket(socket)
    except ValueError as exc:
        raise ValidationError(str(exc)) from None
    return [
        PaneInfo(
            pane=row.pane,
            session=row.session,
            window=row.window,
            window_name=row.window_name,
            command=row.command,
            socket=checked,
        )
        for row in Tmux(checked, timeout=timeout).panes()
    ]
