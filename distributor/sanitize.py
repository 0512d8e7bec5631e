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
