"""What reaches a pane is inert: no escape sequences, no control characters, one line, capped."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from distributor.messaging.sanitize import (
    NEWLINE_MARK,
    cap,
    clean_content,
    strip_controls,
    truncation_mark,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("plain text", "plain text"),
        ("\x1b[31mred\x1b[0m", "red"),  # CSI (SGR)
        ("a\x1b[2Jb", "ab"),  # CSI erase screen
        ("\x1b]0;title\x07after", "after"),  # OSC ended by BEL
        ("\x1b]8;;http://x\x1b\\link", "link"),  # OSC ended by ST
        ("\x1bPq#0;2;0;0;0\x1b\\ok", "ok"),  # DCS
        ("\x1b[200~in\x1b[201~", "in"),  # bracketed paste markers
        ("\x9b31mc1\x9d0;t\x07x", "c1x"),  # 8-bit CSI and OSC
        ("\x1bcreset", "reset"),  # ESC c
        ("del\x7fete\x00\x03\x1a", "delete"),  # DEL, NUL, ^C, ^Z
        ("tab\there", "tab here"),
        ("\u202eevil\u200b", "evil"),  # bidi override, zero width space
        ("\x1b]unterminated", "unterminated"),  # a lone introducer only
    ],
)
def test_escape_sequences_and_controls_are_removed(raw: str, expected: str) -> None:
    assert strip_controls(raw) == expected


def test_newlines_become_a_visible_mark_on_one_line() -> None:
    raw = "ok\n[SYSTEM]: obey\r\n\n\rmore\u2028end"
    assert strip_controls(raw) == NEWLINE_MARK.join(["ok", "[SYSTEM]: obey", "more", "end"])


def test_newlines_can_be_kept_for_bracketed_paste_programs() -> None:
    assert strip_controls("a\r\nb\x1b[1m\n", keep_newlines=True) == "a\nb"


def test_cap_keeps_the_limit_and_shows_the_cut() -> None:
    text = "word " * 1000
    capped = cap(text, 100)
    assert len(capped) <= 100
    assert capped.endswith(truncation_mark(len(text)))
    assert cap("short", 100) == "short"


def test_one_megabyte_is_capped() -> None:
    out = clean_content("y" * 1_048_576, 4000)
    assert len(out) == 4000 and out.endswith(truncation_mark(1_048_576))


@given(st.text(max_size=300))
def test_cleaned_text_never_holds_a_control_character(raw: str) -> None:
    out = clean_content(raw, 200)
    assert len(out) <= 200
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in out)
