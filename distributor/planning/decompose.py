"""Feature decomposition: a feature description becomes a small DAG of tasks from a template.

Templates exist for authentication, APIs, databases and user interfaces, with a generic
fallback. Research results may steer choices: the authentication template picks the password
hash (Argon2id or bcrypt) and the JWT algorithm (RS256 or HS256) from their best practices.
Task ids carry a short random plan id, so two features (even with the same words) coexist.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from distributor.errors import ValidationError
from distributor.tasks.models import MAX_DESCRIPTION, Task

MAX_FEATURE_DESCRIPTION = 2_000


@dataclass(frozen=True)
class Step:
    """One task of a template: what to do, where, how long, and which steps come first."""

    key: str
    title: str
    description: str
    files: tuple[str, ...]
    minutes: int
    after: tuple[str, ...] = ()


@dataclass(frozen=True)
class Choices:
    """Technical choices drawn from research results (or the defaults)."""

    password_hash: str = "argon2"
    jwt_algorithm: str = "RS256"


def _practices(research: dict[str, Any] | None) -> str:
    """All research text in lower case: best practices, recommendations and notes."""
    if not research:
        return ""
    parts: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, str):
            parts.append(value)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list | tuple):
            for item in value:
                walk(item)

    walk(research)
    return " ".join(parts).lower()


def choose(research: dict[str, Any] | None) -> Choices:
    """Pick the password hash and JWT algorithm that the research recommends."""
    text = _practices(research)
    password_hash = "bcrypt" if "bcrypt" in text and "argon2" not in text else "argon2"
    hs_words = ("hs256", "symmetric", "shared secret")
    rs_words = ("rs256", "asymmetric", "public key")
    wants_hs = any(w in text for w in hs_words) and not any(w in text for w in rs_words)
    return Choices(password_hash=password_hash, jwt_algorithm="HS256" if wants_hs else "RS256")


def _auth(feature: str, c: Choices) -> list[Step]:
    hash_name = "Argon2id" if c.password_hash == "argon2" else "bcrypt"
    key_note = (
        "an RSA key pair (private key signs, public key verifies; rotate with a key id)"
        if c.jwt_algorithm == "RS256"
        else "a 256-bit shared secret from the environment (never in code)"
    )
    return [
        Step(
            "design",
            "Design the authentication model",
            f"For '{feature}': user model, token lifetimes (short access, longer refresh), "
            f"{c.jwt_algorithm} signing with {key_note}, and {hash_name} for passwords.",
            ("docs/auth-design.md",),
            30,
        ),
        Step(
            "passwords",
            f"User model and {hash_name} password hashing",
            f"Store users with {hash_name} hashes; verify in constant time; rehash on login "
            "when parameters change.",
            ("app/models/user.py", "app/security/passwords.py"),
            45,
            ("design",),
        ),
        Step(
            "tokens",
            f"Issue and verify {c.jwt_algorithm} JWTs",
            "Create access and refresh tokens with exp, iat, sub and jti; verify signature, "
            "expiry and audience; refuse 'none' and unexpected algorithms.",
            ("app/security/jwt.py",),
            60,
            ("passwords",),
        ),
        Step(
            "endpoints",
            "Login, refresh and logout endpoints",
            "POST /auth/login, /auth/refresh and /auth/logout with a dependency that resolves "
            "the current user from the bearer token; rate-limit login attempts.",
            ("app/api/auth.py", "app/api/deps.py"),
            60,
            ("passwords",),
        ),
        Step(
            "tests",
            "Tests and documentation for authentication",
            "Unit tests for hashing and tokens, API tests for every endpoint (expired, "
            "tampered and wrong-algorithm tokens), and a section in the README.",
            ("tests/test_auth.py", "README.md"),
            45,
            ("tokens", "endpoints"),
        ),
    ]


def _api(feature: str, _: Choices) -> list[Step]:
    return [
        Step(
            "contract",
            "Define the API contract",
            f"For '{feature}': resources, request and response schemas, errors, pagination.",
            ("docs/api.md", "app/schemas.py"),
            30,
        ),
        Step(
            "handlers",
            "Implement the endpoints",
            "Route handlers with input validation and typed responses.",
            ("app/api/routes.py",),
            60,
            ("contract",),
        ),
        Step(
            "errors",
            "Consistent error handling",
            "Map domain errors to status codes with one error body shape.",
            ("app/api/errors.py",),
            30,
            ("contract",),
        ),
        Step(
            "tests",
            "API tests and docs",
            "Tests for each endpoint, success and failure; examples in the docs.",
            ("tests/test_api.py",),
            45,
            ("handlers", "errors"),
        ),
    ]


def _database(feature: str, _: Choices) -> list[Step]:
    return [
        Step(
            "schema",
            "Design the schema",
            f"For '{feature}': tables, keys, indexes and constraints.",
            ("docs/schema.md",),
            30,
        ),
        Step(
            "migration",
            "Write the migration",
            "A reversible migration creating the schema.",
            ("migrations/",),
            30,
            ("schema",),
        ),
        Step(
            "repository",
            "Data access layer",
            "Queries behind a repository interface, in transactions.",
            ("app/db/repository.py",),
            60,
            ("migration",),
        ),
        Step(
            "tests",
            "Database tests",
            "Tests on a real database for each query and the migration both ways.",
            ("tests/test_db.py",),
            45,
            ("repository",),
        ),
    ]


def _ui(feature: str, _: Choices) -> list[Step]:
    return [
        Step(
            "wireframe",
            "Sketch the screens",
            f"For '{feature}': screens, states (loading, empty, error) and navigation.",
            ("docs/ui.md",),
            30,
        ),
        Step(
            "components",
            "Build the components",
            "Accessible components with keyboard support.",
            ("web/src/components/",),
            90,
            ("wireframe",),
        ),
        Step(
            "state",
            "Wire data and state",
            "Fetch data, handle errors and loading states.",
            ("web/src/state/",),
            60,
            ("wireframe",),
        ),
        Step(
            "tests",
            "UI tests",
            "Component tests and one end-to-end flow.",
            ("web/tests/",),
            45,
            ("components", "state"),
        ),
    ]


def _generic(feature: str, _: Choices) -> list[Step]:
    return [
        Step(
            "plan",
            "Plan the change",
            f"For '{feature}': affected modules, risks and the test strategy.",
            ("docs/plan.md",),
            20,
        ),
        Step(
            "implement",
            "Implement the change",
            "The smallest complete change that does the job.",
            (),
            90,
            ("plan",),
        ),
        Step(
            "tests",
            "Test the change",
            "Tests that fail before and pass after.",
            ("tests/",),
            45,
            ("implement",),
        ),
        Step(
            "review",
            "Review and document",
            "Self-review, documentation and a changelog entry.",
            ("README.md",),
            20,
            ("tests",),
        ),
    ]


Template = Callable[[str, Choices], list[Step]]

# (kind, words that select it, template); the first whose word appears wins.
TEMPLATES: tuple[tuple[str, tuple[str, ...], Template], ...] = (
    (
        "auth",
        (
            "auth",
            "authentication",
            "authenticate",
            "authorization",
            "login",
            "logout",
            "jwt",
            "oauth",
            "oauth2",
            "password",
            "passwords",
            "sign in",
            "session",
            "sessions",
        ),
        _auth,
    ),
    (
        "db",
        (
            "database",
            "db",
            "schema",
            "migration",
            "migrations",
            "sql",
            "table",
            "tables",
            "postgres",
            "postgresql",
            "mysql",
            "orm",
        ),
        _database,
    ),
    (
        "ui",
        (
            "ui",
            "frontend",
            "page",
            "pages",
            "screen",
            "screens",
            "component",
            "components",
            "react",
            "vue",
            "form",
            "forms",
            "dashboard",
        ),
        _ui,
    ),
    ("api", ("api", "apis", "endpoint", "endpoints", "rest", "graphql", "route", "webhook"), _api),
)


def _words(description: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+", description.lower()))


def template_for(description: str) -> tuple[str, Template]:
    """The template kind and builder that fit a feature description."""
    words = _words(description)
    lowered = description.lower()
    for kind, keys, template in TEMPLATES:
        if any((k in lowered) if " " in k else (k in words) for k in keys):
            return kind, template
    return "feature", _generic


def _ids(kind: str, steps: Iterable[Step], plan_id: str) -> dict[str, str]:
    return {step.key: f"{kind}-{plan_id}-{n}" for n, step in enumerate(steps, start=1)}


def decompose(
    description: str, research_results: dict[str, Any] | None = None, plan_id: str | None = None
) -> list[Task]:
    """The tasks of a feature, dependencies included; ``ValidationError`` for a bad description."""
    if not isinstance(description, str) or not description.strip():
        raise ValidationError("feature description must be a non-empty string")
    if len(description) > MAX_FEATURE_DESCRIPTION:
        raise ValidationError(f"feature description is longer than {MAX_FEATURE_DESCRIPTION}")
    feature = " ".join("".join(ch if ch.isprintable() else " " for ch in description).split())
    kind, template = template_for(feature)
    steps = template(feature, choose(research_results))
    ids = _ids(kind, steps, plan_id or secrets.token_hex(2))
    return [
        Task(
            id=ids[s.key],
            title=s.title,
            description=s.description[:MAX_DESCRIPTION],
            files=list(s.files),
            dependencies=[ids[a] for a in s.after],
            estimated_minutes=s.minutes,
        )
        for s in steps
    ]
