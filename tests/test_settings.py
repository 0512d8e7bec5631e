"""The settings loader (distributor/settings_base.py): defaults, the environment's strings,
bounds refused with one typed error that never quotes the value, precedence, copies."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from distributor.cli import main
from distributor.errors import ConfigError, InvalidSetting
from distributor.settings import DEFAULT_DELIVER_TO, Settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No SWARMQUEUE_* variable of the caller's and no swarmqueue.toml in the way."""
    for name in list(os.environ):
        if name.upper().startswith("SWARMQUEUE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def test_defaults_are_the_documented_ones() -> None:
    s = Settings()
    assert (s.redis_url, s.swarm, s.lease_seconds) == ("redis://127.0.0.1:6379/0", "default", 900.0)
    assert (s.reap_batch, s.request_ttl_seconds, s.cli_request_ttl_seconds) == (100, 60, 900)
    assert (s.finished_ttl, s.delivery_redis_url, s.single_connection) == (None, None, False)
    assert (s.shell_panes, s.log_format, s.log_level) == ("skip", "auto", "INFO")
    assert s.deliver_to == list(DEFAULT_DELIVER_TO)
    assert s.delivery_retry_intervals == [2, 10, 30]
    assert s.host and s.model_fields_set == frozenset()
    assert isinstance(s.lease_seconds, float) and isinstance(s.reap_batch, int)
    assert Settings().deliver_to is not s.deliver_to  # a fresh list each time


def test_environment_strings_become_typed_values(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {
        "SWARMQUEUE_LEASE_SECONDS": " 60 ",
        "SWARMQUEUE_REAP_BATCH": "7",
        "SWARMQUEUE_EVENT_STREAM_CAP": "1e3",
        "SWARMQUEUE_SINGLE_CONNECTION": "Yes",
        "SWARMQUEUE_ANNOUNCE_PLANS": "off",
        "SWARMQUEUE_FINISHED_TTL": "3600",
        "SWARMQUEUE_DELIVERY_REDIS_URL": "",  # empty: unset
        "SWARMQUEUE_DELIVER_TO": "claude, node ,",
        "SWARMQUEUE_DELIVERY_RETRY_INTERVALS": "[1, 5]",
        "SWARMQUEUE_SHELL_PANES": "comment",
        "swarmqueue_swarm": "lower-case-name",  # names are matched in any case
        "SWARMQUEUE_LOG_LEVEL": "debug",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    s = Settings()
    assert (s.lease_seconds, s.reap_batch, s.event_stream_cap) == (60.0, 7, 1000)
    assert (s.single_connection, s.announce_plans, s.finished_ttl) == (True, False, 3600.0)
    assert s.delivery_redis_url is None
    assert (s.deliver_to, s.delivery_retry_intervals) == (["claude", "node"], [1, 5])
    assert (s.shell_panes, s.swarm, s.log_level) == ("comment", "lower-case-name", "DEBUG")
    assert "reap_batch" in s.model_fields_set and "inbox_cap" not in s.model_fields_set
    monkeypatch.setenv("SWARMQUEUE_DELIVERY_RETRY_INTERVALS", "3,4")
    assert Settings().delivery_retry_intervals == [3, 4]


def test_keywords_beat_the_environment_which_beats_the_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "swarmqueue.toml").write_text(
        "reap_batch = 3\nswarm = 'from-file'\ninbox_cap = 20\n"
    )
    monkeypatch.setenv("SWARMQUEUE_REAP_BATCH", "4")
    monkeypatch.setenv("SWARMQUEUE_SWARM", "from-env")
    s = Settings(swarm="from-keyword")
    assert (s.swarm, s.reap_batch, s.inbox_cap) == ("from-keyword", 4, 20)
    assert {"swarm", "reap_batch", "inbox_cap"} <= s.model_fields_set


BAD = [
    ("SWARMQUEUE_LEASE_SECONDS", "0", "lease_seconds: Input should be greater than 0"),
    ("SWARMQUEUE_REAP_BATCH", "10001", "reap_batch: Input should be less than or equal to 10000"),
    ("SWARMQUEUE_INBOX_CAP", "9", "inbox_cap: Input should be greater than or equal to 10"),
    ("SWARMQUEUE_REAP_BATCH", "2.5", "reap_batch: Input should be a valid integer, got a number"),
    ("SWARMQUEUE_MIN_REPLICAS", "hunter2", "min_replicas: Input should be a valid integer"),
    ("SWARMQUEUE_TMUX_TIMEOUT_SECONDS", "hunter2", "tmux_timeout_seconds: Input should be a valid"),
    ("SWARMQUEUE_SINGLE_CONNECTION", "hunter2", "single_connection: Input should be a valid bool"),
    ("SWARMQUEUE_SHELL_PANES", "hunter2", "shell_panes: Input should be 'skip' or 'comment'"),
    ("SWARMQUEUE_DELIVERY_RETRY_INTERVALS", "[1, 'x'", "delivery_retry_intervals: Input should"),
    ("SWARMQUEUE_DELIVERY_RETRY_INTERVALS", "1,hunter2", "delivery_retry_intervals.1: Input"),
    ("SWARMQUEUE_REQUEST_TTL_SECONDS", "10", "request_ttl_seconds: must be at least retry_budget"),
]


@pytest.mark.parametrize(("name", "value", "message"), BAD)
def test_bad_values_are_one_typed_error_without_the_value(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(InvalidSetting) as refused:
        Settings()
    assert str(refused.value).startswith(f"invalid setting {message}")
    assert "hunter2" not in str(refused.value) and "\n" not in str(refused.value)
    assert isinstance(refused.value, ConfigError | ValueError)


def test_keywords_and_file_values_are_checked_alike(tmp_path: Path) -> None:
    with pytest.raises(InvalidSetting, match="reap_batch: Input should be greater than or equal"):
        Settings(reap_batch=0)
    with pytest.raises(InvalidSetting, match="lease_seconds: Input should be a valid number"):
        Settings(lease_seconds=True)
    with pytest.raises(InvalidSetting, match="swarm: Input should be a valid string"):
        Settings(swarm=5)  # type: ignore[arg-type]
    with pytest.raises(InvalidSetting, match="'bad name' is not a program name"):
        Settings(deliver_to=["claude", "bad name"])
    (tmp_path / "swarmqueue.toml").write_text("message_max_chars = 99\n")
    with pytest.raises(InvalidSetting, match="message_max_chars: Input should be greater"):
        Settings()
    with pytest.raises(TypeError, match="lease_secnds"):
        Settings(lease_secnds=1)  # type: ignore[call-arg]


def test_bad_value_in_the_cli_is_one_line_exit_2_without_the_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SWARMQUEUE_MIN_REPLICAS_TIMEOUT_MS", "s3cret-token")
    result = CliRunner().invoke(main, ["status"], catch_exceptions=False)
    assert result.exit_code == 2
    assert result.stderr == (
        "swarmqueue: invalid setting min_replicas_timeout_ms: Input should be a valid integer\n"
    )


def test_settings_are_frozen_and_copies_are_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    s = Settings(swarm="a")
    with pytest.raises(AttributeError, match="frozen"):
        s.swarm = "b"  # type: ignore[misc]
    monkeypatch.setenv("SWARMQUEUE_REAP_BATCH", "9")  # a copy does not read the environment
    copy = s.model_copy(update={"lease_seconds": "30", "swarm": "b"})
    assert (copy.swarm, copy.lease_seconds, copy.reap_batch, s.swarm) == ("b", 30.0, 100, "a")
    assert copy.model_fields_set == {"swarm", "lease_seconds"}
    assert copy == Settings(swarm="b", lease_seconds=30, reap_batch=100) and copy != s
    with pytest.raises(InvalidSetting, match="lease_seconds"):
        s.model_copy(update={"lease_seconds": -1})
    with pytest.raises(TypeError, match="nope"):
        s.model_copy(update={"nope": 1})


def test_repr_shows_no_password() -> None:
    s = Settings(redis_url="rediss://agent:hunter2@10.0.0.5:6380/0", swarm="x")
    assert repr(s) == "Settings(redis_url='rediss://***@10.0.0.5:6380/0', swarm='x')"


def test_reading_the_settings_imports_no_pydantic() -> None:
    code = (
        "import sys\n"
        "from distributor.settings import Settings\n"
        "Settings()\n"
        "heavy = ('pydantic', 'pydantic_settings', 'tomllib')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]"
