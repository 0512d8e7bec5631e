"""Reservation patterns: repository-relative paths, directories and globs, and when two overlap.

A pattern is one of

* a **path** (``src/auth/jwt.py``): that path, and, should it be a directory, everything under
  it (a file has nothing under it, so this costs no precision and never misses a directory
  named without its slash);
* a **directory** (``src/auth/`` or ``src/auth/**``): the same set as the path ``src/auth``;
* a **glob** (any ``*``, ``?`` or ``[``): compared by its literal prefix, the text before the
  first wildcard. ``src/a*.py`` may match any path starting with ``src/a``.

Two patterns **overlap** when some path could match both (conservative: a glob counts as every
path that starts with its prefix):

=================  ===============================================================
path P, path Q      P == Q, or one is a directory above the other
path P, glob g      P starts with g's prefix, or g's prefix lies under ``P/``
glob g, glob h      one prefix starts with the other
=================  ===============================================================

Comparison folds ASCII letters to lower case, since two names differing only in case are one
file on macOS and Windows checkouts (non-ASCII letters are compared as written). Lua applies
the very same rules to the ``(kind, key)`` pairs computed here (``include/reservations.lua``);
``tests/test_patterns.py`` checks both against one table.

Normalisation: ``./`` and ``/./`` segments are dropped; ``..`` segments, absolute paths, empty
segments (``a//b``), backslashes, control characters (NUL included), more than
:data:`MAX_SEGMENTS` segments and more than :data:`MAX_PATTERN` characters are refused.
"""

from __future__ import annotations

import re
from typing import Literal, NamedTuple

MAX_PATTERN = 500
MAX_SEGMENTS = 32
WILDCARDS = "*?["
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_FOLD = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")

Kind = Literal["p", "g"]  # path (directories included) or glob


class Pattern(NamedTuple):
    """A normalised pattern: ``text`` as shown and stored, ``kind`` and the folded ``key``
    (a path without its trailing slash; a glob's literal prefix) that overlap compares."""

    text: str
    kind: Kind
    key: str

    @property
    def node(self) -> str:
        """Where an index files it: a path under itself, a glob under the directory of its
        prefix (``''``: the repository's root)."""
        return self.key if self.kind == "p" else self.key.rpartition("/")[0]


def fold(value: str) -> str:
    """ASCII lower case (what Lua's ``string.lower`` does too, byte by byte)."""
    return value.translate(_FOLD)


def parse(raw: str) -> Pattern:
    """Normalise ``raw``, or raise ``ValueError`` saying why it is refused."""
    if not isinstance(raw, str):
        raise ValueError("a path must be text")
    shown = raw if len(raw) <= 40 else raw[:40] + "..."
    if len(raw) > MAX_PATTERN:
        raise ValueError(f"path {shown!r} is longer than {MAX_PATTERN} characters")
    if _CONTROL_RE.search(raw):
        raise ValueError(f"path {shown!r} contains control characters")
    if "\\" in raw:
        raise ValueError(f"path {shown!r} contains a backslash (use '/')")
    if not raw.strip():
        raise ValueError("a path must not be empty")
    if raw.startswith("/"):
        raise ValueError(f"path {shown!r} is absolute: give it relative to the repository")
    directory = raw.endswith("/")
    parts = raw.removesuffix("/").split("/")
    if len(parts) > MAX_SEGMENTS:
        raise ValueError(f"path {shown!r} has more than {MAX_SEGMENTS} segments")
    if "" in parts:
        raise ValueError(f"path {shown!r} has an empty segment ('//')")
    if ".." in parts:
        raise ValueError(f"path {shown!r} leaves the repository ('..')")
    parts = [p for p in parts if p != "."]
    if not parts:
        raise ValueError(f"path {shown!r} names no file or directory")
    if parts[-1] == "**" and not any(c in WILDCARDS for c in "/".join(parts[:-1])):
        if len(parts) == 1:  # '**': the whole repository
            return Pattern("**", "g", "")
        parts, directory = parts[:-1], True
    joined = "/".join(parts)
    cut = min((i for i in (joined.find(c) for c in WILDCARDS) if i >= 0), default=-1)
    if cut >= 0:
        return Pattern(joined + ("/" if directory else ""), "g", fold(joined[:cut]))
    return Pattern(joined + ("/" if directory else ""), "p", fold(joined))


def normalise(raw: str) -> str:
    """``raw`` in its normal form (the pydantic validator of task files and reservations)."""
    return parse(raw).text


def _under(path: str, parent: str) -> bool:
    return path.startswith(parent + "/")


def keys_overlap(kind_a: Kind, key_a: str, kind_b: Kind, key_b: str) -> bool:
    """Whether some path could match both patterns (the table in the module's docstring)."""
    if kind_a == "p" and kind_b == "p":
        return key_a == key_b or _under(key_a, key_b) or _under(key_b, key_a)
    if kind_a == "g" and kind_b == "g":
        return key_a.startswith(key_b) or key_b.startswith(key_a)
    path, glob = (key_a, key_b) if kind_a == "p" else (key_b, key_a)
    return path.startswith(glob) or glob.startswith(path + "/")


def overlap(a: Pattern, b: Pattern) -> bool:
    """Whether patterns ``a`` and ``b`` overlap."""
    return keys_overlap(a.kind, a.key, b.kind, b.key)


def ancestors(node: str) -> list[str]:
    """The directories above an index node, the root ``''`` first (none for the root)."""
    if not node:
        return []
    parts = node.split("/")
    return ["", *("/".join(parts[:i]) for i in range(1, len(parts)))]
