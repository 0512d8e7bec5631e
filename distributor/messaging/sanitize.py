"""Make message text inert before it is typed into another agent's terminal.

A message reaches a pane as keystrokes, so its text must not carry anything a terminal or the
program in the pane would act on:

* terminal escape sequences (CSI ``ESC [``, OSC ``ESC ]``, DCS/SOS/PM/APC, two-byte ``ESC x``,
  and their 8-bit C1 forms such as ``0x9b``) are removed whole; an unterminated string sequence
  loses its introducer, which leaves only harmless visible text;
* the remaining C0 and C1 control characters and DEL are removed (a tab becomes a space), as are
  the invisible bidi and zero-width characters that could make a line read differently;
* line breaks become a visible ``⏎`` mark unless ``keep_newlines``: a program without bracketed
  paste would submit every line, so a fake ``[SYSTEM]`` line could otherwise be injected;
* the result is capped, ending with a visible mark that gives the original length.

A pane whose foreground is a shell gets at most :func:`shell_comment` of the text (see
``workers/programs.py``): one line of printable ASCII that stays inert however the shell is set.
"""

from __future__ import annotations

import re

NEWLINE_MARK = " ⏎ "

_STRING_SEQUENCE = (
    r"\x1b\][^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)"  # OSC ... BEL or ST
    r"|\x1b[PX^_][^\x1b\x9c]*(?:\x1b\\|\x9c)"  # DCS, SOS, PM, APC ... ST
    r"|[\x90\x98\x9d\x9e\x9f][^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)"  # their 8-bit forms
)
_ESCAPE_SEQUENCE = re.compile(
    _STRING_SEQUENCE
    + r"|(?:\x1b\[|\x9b)[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]?"  # CSI (7- and 8-bit)
    + r"|\x1b[\x20-\x2f]*[\x30-\x7e]?"  # ESC x, ESC ( B, and a lone ESC
)
_LINE_BREAK = re.compile(r"\r\n|[\r\n\u2028\u2029\x85\x0b\x0c]")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")
_KEEP_NL_CONTROL = re.compile(
    r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]"
)
_BREAKS_AROUND = re.compile(r"[ ]*\n[\s]*")


def strip_controls(text: str, *, keep_newlines: bool = False) -> str:
    """``text`` without escape sequences and control characters; one line unless asked."""
    text = _ESCAPE_SEQUENCE.sub("", text)
    text = _LINE_BREAK.sub("\n", text).replace("\t", " ")
    if keep_newlines:
        return _KEEP_NL_CONTROL.sub("", text).strip()
    text = _BREAKS_AROUND.sub(NEWLINE_MARK, text.strip())
    return _CONTROL.sub("", text)


def truncation_mark(original_length: int) -> str:
    """The visible end of a capped text."""
    return f" …[truncated, {original_length} chars]"


def cap(text: str, limit: int) -> str:
    """``text`` if it fits in ``limit`` characters, else its start plus a truncation mark."""
    if len(text) <= limit:
        return text
    mark = truncation_mark(len(text))
    return text[: max(0, limit - len(mark))].rstrip() + mark


def clean_content(text: str, limit: int, *, keep_newlines: bool = False) -> str:
    """Message content as stored and delivered: inert, then capped."""
    return cap(strip_controls(text, keep_newlines=keep_newlines), limit)


SHELL_COMMENT_MAX_BYTES = 1000
SHELL_NEWLINE_MARK = " \\n "
_INERT_COMMENT = re.compile(r"# '(?:[ -&(-~]|'\\'')*'")  # printable ASCII; ' only as '\''


def shell_comment(text: str, max_bytes: int = SHELL_COMMENT_MAX_BYTES) -> str:
    """``text`` as one line for a POSIX shell prompt: ``# '...'``, the text single-quoted.

    Where ``#`` starts a comment (sh, dash, bash, ksh) the shell ignores the line. Where it
    does not (zsh without ``interactivecomments``, bash with ``interactive_comments`` off, a vi
    mode prompt whose ``#`` comments out and submits the line typed so far), the rest is still one
    quoted word, never a second command: ``;``, ``$(...)``, backticks, ``&&`` and ``!`` stay text.
    The line holds only printable ASCII (others become ``?``, line breaks `` \\n ``), so no key
    binding or terminal setting can read part of it as a key, and it stays below
    ``max_bytes``, within the line buffer of a terminal in canonical mode (1,024 bytes on macOS),
    so the closing quote is never cut. The result is checked again before it is returned.
    """
    flat = strip_controls(text).replace(NEWLINE_MARK, SHELL_NEWLINE_MARK)
    printable = "".join(c if " " <= c <= "~" else "?" for c in flat)
    line = f"# '{_quoted(printable, max_bytes - 4)}'"
    if len(line) > max_bytes or not _INERT_COMMENT.fullmatch(line):
        raise ValueError("shell comment line failed its inertness check")  # a bug, never typed
    return line


def _quoted(text: str, budget: int) -> str:
    """``text`` with each ``'`` as ``'\\''``, cut to ``budget`` characters with a visible mark."""
    pieces = ["'\\''" if c == "'" else c for c in text]
    if sum(map(len, pieces)) <= budget:
        return "".join(pieces)
    mark = f" ...[truncated, {len(text)} chars]"
    kept, used = [], 0
    for piece in pieces:
        if used + len(piece) > budget - len(mark):
            break
        kept.append(piece)
        used += len(piece)
    return "".join(kept).rstrip() + mark
