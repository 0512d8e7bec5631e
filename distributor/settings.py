"""Every setting of swarmqueue in one place (declared with :mod:`distributor.settings_base`).

Values come, highest first, from keyword arguments, environment variables prefixed
``SWARMQUEUE_`` (``SWARMQUEUE_REDIS_URL``, ``SWARMQUEUE_LEASE_SECONDS``, ...) and an optional
``swarmqueue.toml`` in the working directory (or the file named by ``SWARMQUEUE_CONFIG``).

A config file that cannot be read or parsed, a key in it that is no setting (likely a typo), or a
``SWARMQUEUE_CONFIG`` naming a missing file raise :class:`~distributor.errors.ConfigError`.
Unknown ``SWARMQUEUE_*`` environment variables are ignored: the prefix is shared with variables
that are no settings (``SWARMQUEUE_CONFIG``, ``SWARMQUEUE_STATE_DIR``, the test scripts' own).
A value of the wrong type or out of range raises :class:`~distributor.errors.InvalidSetting`.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from distributor.errors import ConfigError
from distributor.settings_base import SettingsBase, setting

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

# Foreground programs (tmux ``#{pane_current_command}``) that may receive typed messages: agent
# CLIs, the runtimes they run under (node, python) and ``cat``; Claude Code's native build and
# opencode show their version (``2.1.112``). Shells never match (see ``SWARMQUEUE_SHELL_PANES``).
DEFAULT_DELIVER_TO = (
    "claude", "codex", "gemini", "aider", "goose", "opencode", "amp", "cursor-agent", "copilot",
    "qwen", "crush", "node", "python", "python3", "python3.*", "[0-9]*.[0-9]*.[0-9]*", "cat",
)  # fmt: skip
_PROGRAM_PATTERN = re.compile(r"[A-Za-z0-9._+*?\[\]-]{1,64}")


def _default_host() -> str:
    """This machine's short host name, reduced to the characters a host id allows."""
    name = socket.gethostname().split(".")[0] or "localhost"
    return re.sub(r"[^A-Za-z0-9_-]", "-", name)[:64]


def _outlives_the_budget(value: int, earlier: Mapping[str, Any]) -> int:
    """A reply must be kept at least as long as retries may come to ask for it."""
    budget = earlier["retry_budget_seconds"]
    if value < budget:
        raise ValueError(f"must be at least retry_budget_seconds ({budget:g})")
    return value


def _program_patterns(value: list[str], earlier: Mapping[str, Any]) -> list[str]:
    """Each entry of ``deliver_to`` a program name or glob pattern."""
    for pattern in value:
        if not _PROGRAM_PATTERN.fullmatch(pattern):
            raise ValueError(
                f"{pattern[:70]!r} is not a program name or glob pattern"
                " (letters, digits, . _ + - * ? [ ])"
            )
    return value


def _log_level(value: str, earlier: Mapping[str, Any]) -> str:
    if value.upper() not in LOG_LEVELS:
        raise ValueError(f"{value[:20]!r} is no log level: use one of {', '.join(LOG_LEVELS)}")
    return value.upper()


class Settings(SettingsBase):
    """Connection, queue behaviour, delivery and logging settings."""

    env_prefix = "SWARMQUEUE_"

    @classmethod
    def file_values(cls) -> dict[str, Any]:
        return read_config_file(cls)

    redis_url: str = setting(default="redis://127.0.0.1:6379/0", description="Redis to connect to")
    swarm: str = setting(
        default="default", description="swarm name; each swarm is an independent graph"
    )
    lease_seconds: float = setting(
        default=900.0, gt=0, description="default claim lease (15 minutes)"
    )
    retry_backoff_seconds: float = setting(
        default=5.0, ge=0, description="first retry delay after fail()"
    )
    retry_backoff_max_seconds: float = setting(
        default=600.0, ge=0, description="cap of the retry delay"
    )
    reap_batch: int = setting(
        default=100, ge=1, le=10_000, description="expired leases recovered per call"
    )
    event_stream_cap: int = setting(
        default=100_000, ge=100, description="approximate event log length"
    )
    finished_ttl: float | None = setting(
        default=None,
        gt=0,
        description="delete a swarm this long after it reached 100% and went quiet (None: keep)",
    )
    retry_budget_seconds: float = setting(
        default=30.0,
        ge=0,
        description="how long a request (keeping its request id) or a read is sent again through"
        " a Redis outage (restart, failover), with backoff, before RedisUnavailable; 0: only"
        " redis-py's own retries",
    )
    request_ttl_seconds: int = setting(
        default=60,
        ge=1,
        check=_outlives_the_budget,
        description="how long a state change's reply is kept for its retry to replay (at least"
        " the retry budget)",
    )
    cli_request_ttl_seconds: int = setting(
        default=900,
        ge=1,
        check=_outlives_the_budget,
        description="the same for CLI commands, which an agent re-runs minutes after exit 3"
        " (the default lease: a claim replayed later would have expired anyway)",
    )
    redis_retries: int = setting(
        default=1,
        ge=0,
        description="redis-py's own immediate retries of one command (a reconnect); longer"
        " outages are the retry budget's",
    )
    single_connection: bool = setting(
        default=False,
        description="one connection per client instead of a pool: faster for a single-threaded"
        " agent process (the CLI uses it); keep the pool when threads share a client",
    )
    # Messaging: agents, broadcasts and tmux delivery (distributor.messaging.messages, workers/).
    host: str = setting(
        default_factory=_default_host, description="this host's name in the registry"
    )
    rate_limit_per_minute: int = setting(
        default=10, ge=1, description="messages per sender per rate_limit_window_seconds (a minute)"
    )
    agent_stale_seconds: float = setting(
        default=600.0, gt=0, description="agents unseen this long are stale; broadcasts skip them"
    )
    agent_prune_seconds: float = setting(
        default=7 * 24 * 3600.0,
        gt=0,
        description="agents unseen this long are forgotten (with inbox)",
    )
    message_max_chars: int = setting(
        default=4000, ge=100, description="content cap (a mark shows the cut)"
    )
    message_keep_newlines: bool = setting(
        default=False,
        description="keep newlines in the paste (only if all agents use bracketed paste)",
    )
    shell_panes: Literal["skip", "comment"] = setting(
        default="skip",
        description="a pane whose foreground is a shell: not typed into (skip), or sent the"
        " message as one inert comment line (comment); see workers/programs.py",
    )
    deliver_to: list[str] = setting(
        check=_program_patterns,
        default_factory=lambda: list(DEFAULT_DELIVER_TO),
        description="foreground programs that may receive typed messages: names or glob"
        " patterns, comma-separated in the environment",
    )
    message_ttl_seconds: int = setting(
        default=7 * 24 * 3600, ge=60, description="how long outcomes are kept"
    )
    inbox_cap: int = setting(
        default=1000, ge=10, description="approximate messages kept per agent inbox"
    )
    tmux_timeout_seconds: float = setting(
        default=5.0, gt=0, description="limit of one tmux invocation"
    )
    delivery_batch_panes: int = setting(
        default=100, ge=1, description="panes served by one tmux invocation"
    )
    delivery_job_timeout_seconds: int = setting(
        default=120, ge=1, description="RQ timeout of a delivery job"
    )
    delivery_retry_intervals: list[int] = setting(
        default=[2, 10, 30],
        description="seconds before each retry of transient delivery failures (dispatched by"
        " the workers' sweep)",
    )
    delivery_lease_seconds: float = setting(
        default=10.0,
        ge=1,
        le=600,
        description="a delivery job's lease, renewed while it runs; a killed worker's"
        " deliveries move on this long after it died",
    )
    delivery_sweep_seconds: float = setting(
        default=2.0, gt=0, le=60, description="how often each worker sweeps its host's outboxes"
    )
    # Acknowledged messages and the rate-limit window (distributor.messaging.messages, issue 14).
    ack_redeliveries: int = setting(
        default=3,
        ge=0,
        le=20,
        description="how many times a message sent with requires_ack is typed again to a"
        " recipient that has not acknowledged it, before its outcome becomes unacknowledged",
    )
    ack_first_delay_seconds: float = setting(
        default=60.0,
        gt=0,
        le=86_400,
        description="wait after a delivery before the first re-delivery of an unacknowledged"
        " message; each later wait doubles (the last one before giving up too)",
    )
    rate_limit_window_seconds: float = setting(
        default=60.0, gt=0, le=86_400, description="the sliding window of rate_limit_per_minute"
    )
    # Beyond one Redis: the delivery broker and replication (distributor.messaging.broker,
    # distributor.store.durability).
    delivery_redis_url: str | None = setting(
        default=None,
        description="Redis of the delivery queues (RQ): redis://, rediss://, unix:// or"
        " redis+sentinel://; default: redis_url, which must then not be a cluster",
    )
    min_replicas: int = setting(
        default=0,
        ge=0,
        description="replicas that must acknowledge each state change (WAIT) before it is"
        " reported durable; 0: do not wait",
    )
    min_replicas_timeout_ms: int = setting(
        default=1000, ge=1, description="how long one state change waits for those replicas (ms)"
    )
    # Announcements made by the work distributor (distributor.planning.announce).
    announce_plans: bool = setting(
        default=True, description="announce the available tasks of a new plan"
    )
    announce_claims: bool = setting(default=True, description="announce who claimed which task")
    announce_completions: bool = setting(
        default=True, description="announce completions and unblocked"
    )
    announce_sender: str = setting(
        default="work-distributor", description="sender name of announcements"
    )
    announce_rate_limit_per_minute: int = setting(
        default=600, ge=1, description="rate limit of the announcing sender (one per transition)"
    )
    # File reservations (distributor.reservations; lua/include/reservations.lua).
    reservation_ttl_seconds: float = setting(
        default=3600.0,
        gt=0,
        le=7 * 24 * 3600,
        description="default lifetime of an explicit reservation",
    )
    reservation_scan: int = setting(
        default=64,
        ge=1,
        le=10_000,
        description="ready tasks one claim_next looks at when files are reserved; beyond them it"
        " answers as if every ready task were held",
    )
    log_format: Literal["auto", "json", "console"] = setting(
        default="auto", description="stderr log format"
    )
    log_level: str = setting(
        default="INFO", check=_log_level, description="one of " + ", ".join(LOG_LEVELS)
    )


def read_config_file(settings_cls: type[SettingsBase] = Settings) -> dict[str, Any]:
    """The settings in ``$SWARMQUEUE_CONFIG`` or ``./swarmqueue.toml`` ({} when neither exists).

    Raises ``ConfigError`` for a file that cannot be read or parsed, a key that is no setting
    (naming the closest one), and a ``SWARMQUEUE_CONFIG`` that names a missing file.
    """
    named = os.environ.get("SWARMQUEUE_CONFIG")
    path = Path(named).expanduser() if named else Path("swarmqueue.toml")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if named:
            raise ConfigError(f"SWARMQUEUE_CONFIG names {named!r}, which does not exist") from None
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    import tomllib  # only when there is a file: most commands run without one

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    known = list(settings_cls.model_fields)
    for key in data:
        if key not in known:
            import difflib  # only to name the setting a typo meant

            close = difflib.get_close_matches(key.lower().replace("-", "_"), known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"config file {path}: unknown setting {key[:40]!r}{hint}")
    return data
