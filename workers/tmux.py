"""Invoke tmux: list panes, and type one text into many panes with as few invocations as possible.

The text never reaches tmux's command line: it is written to a named paste buffer from stdin
(``load-buffer -b B -``) and pasted with ``paste-buffer -p`` (bracketed when the program in the
pane asked for it), so nothing in it can be read as a tmux key name, option or command. One
``send-keys Enter`` per pane submits it.

All panes of one tmux server are served by one invocation whose commands are chained with ``;``.
tmux stops a chain at the first failing command, so after each pane's Enter the chain prints
``sent <pane>``: on an error, panes that printed it were typed into, and only the rest are tried
again one invocation per pane, which attributes each failure to its pane.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from distributor.errors import PaneNotFound, TmuxError, TmuxServerNotFound, TmuxTimeout
from distributor.log import get_logger

log = get_logger(__name__)

PANE_ID_RE = re.compile(r"%[0-9]{1,9}")
_SENT_PREFIX = "swarmqueue-sent "
_SERVER_GONE = ("no server running", "error connecting to", "server exited")
_PANE_GONE = ("can't find pane", "can't find window", "can't find session")
_FIELD_SEP = "\x1f"


@dataclass(frozen=True, slots=True)
class PaneRow:
    """One pane as ``list-panes -a`` reports it."""

    pane: str
    session: str
    window: str
    window_name: str
    command: str


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
            ]
        )
        rows = []
        for line in self.run(["list-panes", "-a", "-F", fmt]).splitlines():
            parts = line.split(_FIELD_SEP)
            if len(parts) == 5 and PANE_ID_RE.fullmatch(parts[0]):
                rows.append(PaneRow(*parts))
        return rows

    def pane_ids(self) -> set[str]:
        """Ids of the server's live panes."""
        out = self.run(["list-panes", "-a", "-F", "#{pane_id}"])
        return {line for line in out.splitlines() if PANE_ID_RE.fullmatch(line)}

    def paste(
        self, text: str, panes: Sequence[str], *, keep_newlines: bool = False
    ) -> dict[str, TmuxError | None]:
        """Type ``text`` plus Enter into each pane; ``None`` per pane typed into, else its error.

        ``panes`` must be live pane ids (check with :meth:`pane_ids` first); a pane that closes
        in between is still reported, with ``PaneNotFound``.
        """
        for pane in panes:
            if not PANE_ID_RE.fullmatch(pane):
                raise ValueError(f"not a tmux pane id: {pane!r}")
        if not panes:
            return {}
        data = text.encode("utf-8")
        buffer = _buffer_name()
        try:
            self.run(self._chain(buffer, panes, keep_newlines), stdin=data)
            return dict.fromkeys(panes)
        except TmuxError as exc:
            out = exc.partial_output
            chain_error = exc
        with contextlib.suppress(TmuxError):  # the chain stopped before its delete-buffer
            self.run(["delete-buffer", "-b", buffer])
        sent = {line.removeprefix(_SENT_PREFIX) for line in out.splitlines()}
        result: dict[str, TmuxError | None] = {p: None for p in panes if p in sent}
        log.info(
            "tmux chain failed; trying panes one by one",
            where=self.where,
            error=str(chain_error),
            typed=len(result),
            remaining=len(panes) - len(result),
        )
        if isinstance(chain_error, TmuxServerNotFound):
            return {p: result.get(p, chain_error) for p in panes}
        for pane in panes:
            if pane in result:
                continue
            try:
                self.run(self._chain(_buffer_name(), [pane], keep_newlines), stdin=data)
                result[pane] = None
            except TmuxError as exc:
                result[pane] = exc
        return result

    @staticmethod
    def _chain(buffer: str, panes: Sequence[str], keep_newlines: bool) -> list[str]:
        paste = ["paste-buffer", "-p", *(["-r"] if keep_newlines else []), "-b", buffer]
        args = ["load-buffer", "-b", buffer, "-"]
        for pane in panes:
            args += [";", *paste, "-t", pane]
            args += [";", "send-keys", "-t", pane, "Enter"]
            args += [";", "display-message", "-p", "-t", pane, _SENT_PREFIX + pane]
        args += [";", "delete-buffer", "-b", buffer]
        return args


def _buffer_name() -> str:
    return f"swarmqueue-{uuid.uuid4().hex}"


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
