"""Reservation patterns: normalisation, hostile paths, and one overlap table that the Python
rules and the Lua ones (``include/reservations.lua``, run on fakeredis and a real Redis) obey."""

from __future__ import annotations

import json

import pytest
import redis

from distributor.reservations.patterns import Pattern, overlap, parse
from distributor.store.scripts import inline_includes

# (pattern a, pattern b, overlap?) -- symmetric: each row is checked both ways
TABLE = [
    # file vs file
    ("src/auth/jwt.py", "src/auth/jwt.py", True),
    ("src/auth/jwt.py", "src/auth/jwt.pyc", False),
    ("src/auth/jwt.py", "src/auth/keys.py", False),
    ("a.py", "./a.py", True),
    ("src/./a.py", "src/a.py", True),
    # case: one file on case-insensitive checkouts
    ("src/Auth.py", "src/auth.py", True),
    ("SRC/", "src/x.py", True),
    # directory vs file inside, trailing slash, **
    ("src/auth/", "src/auth/jwt.py", True),
    ("src/auth", "src/auth/jwt.py", True),  # a bare name may be a directory
    ("src/auth/**", "src/auth/deep/er/x.py", True),
    ("src/auth/", "src/authz.py", False),
    ("src/auth/", "src/auth", True),
    ("src/auth/", "src/", True),
    ("src/auth/", "lib/auth/", False),
    ("**", "anything/at/all.py", True),
    # globs by literal prefix
    ("src/*.py", "src/a.py", True),
    ("src/*.py", "src/README.md", True),  # conservative: only the prefix counts
    ("src/*.py", "lib/a.py", False),
    ("src/a*.py", "src/b*.py", False),
    ("src/a*", "src/ab*", True),
    ("src/a*", "src/a", True),
    ("src/a*", "src/abc/x.py", True),
    ("src/a*", "src/b/x.py", False),
    ("src/a*", "src/", True),
    ("src/a*", "src", True),
    ("src/sub/*.py", "src/", True),
    ("src/sub/*.py", "src/sub", True),
    ("src/sub/*.py", "src/subway.py", False),
    ("*.py", "deep/x.md", True),
    ("docs/[ab].md", "docs/c.md", True),
    ("docs/?.md", "doc.md", False),
    ("a/**/b.py", "a/x/y", True),
    ("a/**/b.py", "b/b.py", False),
]


@pytest.mark.parametrize(("a", "b", "expected"), TABLE)
def test_python_overlap_table(a: str, b: str, expected: bool) -> None:
    assert overlap(parse(a), parse(b)) is expected
    assert overlap(parse(b), parse(a)) is expected


def test_lua_overlap_matches_the_table(redis_client: redis.Redis) -> None:
    pairs = [(parse(a), parse(b)) for a, b, _ in TABLE]
    script = redis_client.register_script(
        inline_includes(
            "--@include common\n"
            "local out = {}\n"
            "for i, p in ipairs(cjson.decode(ARGV[6])) do\n"
            "  out[i] = overlap(p[1], p[2], p[3], p[4]) and 1 or 0\n"
            "end\n"
            "return out\n"
        )
    )
    rows = [[a.kind, a.key, b.kind, b.key] for a, b in pairs]
    rows += [[b.kind, b.key, a.kind, a.key] for a, b in pairs]
    keys = [f"{{overlap}}:k{i}" for i in range(9)]  # one slot (a cluster requires it)
    got = script(keys=keys, args=["p:", 100, "", "", 0, json.dumps(rows)])
    expected = [int(e) for _, _, e in TABLE] * 2
    assert got == expected


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("src/a.py", Pattern("src/a.py", "p", "src/a.py")),
        ("./src/./a.py", Pattern("src/a.py", "p", "src/a.py")),
        ("src/auth/", Pattern("src/auth/", "p", "src/auth")),
        ("src/auth/**", Pattern("src/auth/", "p", "src/auth")),
        ("Src/A*.py", Pattern("Src/A*.py", "g", "src/a")),
        ("**", Pattern("**", "g", "")),
        ("a/**/b.py", Pattern("a/**/b.py", "g", "a/")),
    ],
)
def test_normal_forms(raw: str, normal: Pattern) -> None:
    assert parse(raw) == normal
    assert parse(normal.text) == normal  # the stored form parses to itself


@pytest.mark.parametrize(
    "hostile",
    [
        "../x",
        "src/../../etc/passwd",
        "/etc/passwd",
        "a//b",
        "a/\x00b",
        "a/\x1b[31mb",
        "tab\there",
        "a\\b",
        "",
        "   ",
        ".",
        "./",
        "/".join(["s"] * 10_000),
        "x" * 501,
        "/".join(["s"] * 33),
    ],
)
def test_hostile_paths_are_refused(hostile: str) -> None:
    with pytest.raises(ValueError):
        parse(hostile)
