"""CLI edges: no claim without a place for its token, exit codes by one rule, config errors.

Each refusal is checked for its exit code, exactly one ``swarmqueue: ...`` line on stderr, no
traceback, and (where nothing may be written) an unchanged swarm in Redis. A few cases run the
installed ``swarmqueue`` as a real process against the real Redis, as an agent would.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from click.testing import CliRunner, Result

from distributor.cli import main, tokens
from distributor.cli.app import CliContext, exit_code_for
from distributor.errors import (
    ConfigError,
    DependencyCycle,
    DuplicateInPlan,
    DuplicateTask,
    StaleClaim,
    UnknownDependency,
    ValidationError,
)
from distributor.settings import Settings
from distributor.tasks.queue import TaskQueue
from distributor.testing import delete_swarm
from tests.conftest import chain_plan, snapshot
from tests.test_cli import run

SWARMQUEUE = Path(sys.executable).with_name("swarmqueue")  # the venv's installed command


def one_line(result: Result, code: int) -> str:
    """The single stderr line of a refused command (asserting code, one line, no traceback)."""
    assert result.exit_code == code, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("swarmqueue: ")
    assert "Traceback" not in result.output
    return lines[0]


@pytest.fixture
def one_task(sync_queue: TaskQueue) -> TaskQueue:
    sync_queue.submit({"tasks": [{"id": "a", "title": "A"}, {"id": "b", "title": "B"}]})
    return sync_queue


# -- item 3: no claim without a place to keep its token ------------------------------------------


def _regular_file(tmp_path: Path) -> str:
    path = tmp_path / "a-file"
    path.write_text("not a directory")
    return str(path)


UNUSABLE_STATE_DIRS: dict[str, Callable[[Path], str]] = {
    "a regular file": _regular_file,
    "under a regular file": lambda tmp: _regular_file(tmp) + "/state",
    "under /proc (unwritable even for root)": lambda tmp: "/proc/swarmqueue-test/state",
    "a relative path": lambda tmp: "relative/state",
    "a name too long": lambda tmp: "/tmp/" + "x" * 5000,
}


@pytest.mark.parametrize("kind", list(UNUSABLE_STATE_DIRS))
@pytest.mark.parametrize(
    "args",
    [
        ["next", "--agent", "alice"],
        ["next", "--agent", "alice", "--wait", "0.1"],
        ["claim", "a", "--agent", "alice"],
    ],
)
def test_unusable_state_dir_refuses_the_claim_and_writes_nothing(
    cli_obj: CliContext,
    one_task: TaskQueue,
    redis_client: redis.Redis,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
    args: list[str],
) -> None:
    monkeypatch.setenv("SWARMQUEUE_STATE_DIR", UNUSABLE_STATE_DIRS[kind](tmp_path))
    before = snapshot(redis_client, one_task.keys.prefix)
    line = one_line(run(cli_obj, *args), 2)
    assert "SWARMQUEUE_STATE_DIR" in line
    assert snapshot(redis_client, one_task.keys.prefix) == before


def test_done_next_with_unusable_state_dir_completes_nothing(
    cli_obj: CliContext,
    one_task: TaskQueue,
    redis_client: redis.Redis,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    claim = one_task.claim("a", "alice").claim
    assert claim is not None
    monkeypatch.setenv("SWARMQUEUE_STATE_DIR", _regular_file(tmp_path))
    before = snapshot(redis_client, one_task.keys.prefix)
    result = run(cli_obj, "done", "a", "--agent", "alice", "--token", "1", "--next")
    assert "SWARMQUEUE_STATE_DIR" in one_line(result, 2)
    assert snapshot(redis_client, one_task.keys.prefix) == before


_replace = os.replace


def _fail_replace(src: Any, dst: Any) -> None:
    """Writing a token file fails (the disk filled up); other state files are written."""
    if Path(dst).parent.parent.name == "tokens":
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    _replace(src, dst)


def test_token_write_failing_after_the_claim_releases_it(
    cli_obj: CliContext, one_task: TaskQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The probe passed, then the disk filled up: the claim is handed back, not held 15 min."""
    monkeypatch.setattr(os, "replace", _fail_replace)
    result = run(cli_obj, "next", "--agent", "alice", "--json")
    line = one_line(result, 2)
    assert "No space left on device" in line and "released again" in line
    assert result.stdout == ""
    task = one_task.get("a")
    assert (task.status.value, task.agent_id, task.attempts) == ("available", None, 0)
    assert [e.type for e in one_task.events()][-2:] == ["claimed", "released"]
    assert not list((Path(os.environ["SWARMQUEUE_STATE_DIR"]) / "tokens").rglob("*.json"))


def test_claim_that_cannot_be_released_either_is_reported_with_its_token(
    cli_obj: CliContext, one_task: TaskQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unreachable(*args: Any, **kwargs: Any) -> None:
        raise redis.ConnectionError("gone")

    monkeypatch.setattr(os, "replace", _fail_replace)
    monkeypatch.setattr(one_task, "release", unreachable)
    line = one_line(run(cli_obj, "claim", "a", "--agent", "alice"), 2)
    assert "still claimed (token 1)" in line and "--token 1" in line
    assert one_task.get("a").agent_id == "alice"  # held, but never silently


def test_done_next_shows_the_completion_and_releases_the_next_claim(
    cli_obj: CliContext, one_task: TaskQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run(cli_obj, "claim", "a", "--agent", "alice").exit_code == 0
    monkeypatch.setattr(os, "replace", _fail_replace)
    result = run(cli_obj, "done", "a", "--agent", "alice", "--token", "1", "--next", "--json")
    assert "released again" in one_line(result, 2)
    shown = json.loads(result.stdout)
    assert shown["completed"]["task"]["id"] == "a" and shown["next"] is None
    assert one_task.get("a").status.value == "completed"
    b = one_task.get("b")
    assert (b.status.value, b.attempts) == ("available", 0)


def test_forget_failing_after_done_only_warns(
    cli_obj: CliContext, one_task: TaskQueue, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With --token the state dir is not needed; dropping the old token may fail harmlessly."""
    assert run(cli_obj, "claim", "a", "--agent", "alice").exit_code == 0
    monkeypatch.setattr(os, "replace", _fail_replace)
    result = run(cli_obj, "done", "a", "--agent", "alice")
    assert result.exit_code == 0, result.output
    assert "completed a" in result.stdout and "token_not_forgotten" in result.stderr
    assert one_task.get("a").status.value == "completed"


def test_token_files_stay_inside_the_state_dir(
    cli_obj: CliContext,
    one_task: TaskQueue,
    redis_client: redis.Redis,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    state = Path(os.environ["SWARMQUEUE_STATE_DIR"])
    before = snapshot(redis_client, one_task.keys.prefix)
    for agent in ("../../escaped", "a/b", "..", "x.json"):
        line = one_line(run(cli_obj, "next", "--agent", agent), 2)
        assert line.startswith("swarmqueue: invalid agent id")
        assert one_line(run(cli_obj, "done", "a", "--agent", agent), 2) == line
    # a swarm directory that resolves elsewhere (a symlink) is refused before any claim
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (state / "tokens").mkdir(parents=True)
    (state / "tokens" / one_task.swarm).symlink_to(elsewhere)
    assert "outside" in one_line(run(cli_obj, "next", "--agent", "alice"), 2)
    assert snapshot(redis_client, one_task.keys.prefix) == before
    assert not list(elsewhere.iterdir())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["elsewhere", "state"]


def test_default_state_dir_follows_xdg_and_needs_a_home(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SWARMQUEUE_STATE_DIR")
    monkeypatch.setenv("XDG_STATE_HOME", "/var/lib/agents")
    assert tokens.state_dir() == Path("/var/lib/agents/swarmqueue")
    monkeypatch.setenv("XDG_STATE_HOME", "relative")  # the XDG spec: ignored
    monkeypatch.setenv("HOME", "/home/agent")
    assert tokens.state_dir() == Path("/home/agent/.local/state/swarmqueue")

    def homeless() -> Path:
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.setattr(Path, "home", staticmethod(homeless))
    with pytest.raises(ConfigError, match="set SWARMQUEUE_STATE_DIR"):
        tokens.state_dir()


def test_unreadable_token_store_is_a_config_error_and_junk_is_ignored(
    cli_obj: CliContext, one_task: TaskQueue, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run(cli_obj, "claim", "a", "--agent", "alice").exit_code == 0
    path = Path(os.environ["SWARMQUEUE_STATE_DIR"]) / "tokens" / one_task.swarm / "alice.json"
    assert json.loads(path.read_text()) == {"a": 1}
    path.write_text('{"a": "one", "b": true, "c": -3}')  # nothing usable in it
    assert "pass --token" in one_line(run(cli_obj, "done", "a", "--agent", "alice"), 1)
    monkeypatch.setenv("SWARMQUEUE_STATE_DIR", _regular_file(tmp_path))
    assert "Not a directory" in one_line(run(cli_obj, "done", "a", "--agent", "alice"), 2)


# -- item 7: exit codes by one rule ---------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["done", "a", "--agent", "alice"],
        ["fail", "a", "--agent", "alice", "--reason", "x"],
        ["start", "a", "--agent", "alice"],
        ["heartbeat", "a", "--agent", "alice"],
        ["release", "a", "--agent", "alice"],
    ],
)
def test_no_token_remembered_is_a_refusal(
    cli_obj: CliContext, one_task: TaskQueue, redis_client: redis.Redis, args: list[str]
) -> None:
    before = snapshot(redis_client, one_task.keys.prefix)
    line = one_line(run(cli_obj, *args), 1)
    assert line == "swarmqueue: no token remembered for agent 'alice' and task 'a'; pass --token"
    assert snapshot(redis_client, one_task.keys.prefix) == before


def test_not_holding_the_task_is_a_refusal(
    cli_obj: CliContext, one_task: TaskQueue, redis_client: redis.Redis
) -> None:
    assert run(cli_obj, "claim", "a", "--agent", "alice").exit_code == 0
    before = snapshot(redis_client, one_task.keys.prefix)
    for args in (["done", "a", "--agent", "bob", "--token", "1"], ["release", "b", "--agent", "x"]):
        one_line(run(cli_obj, *args), 1)
    assert snapshot(redis_client, one_task.keys.prefix) == before
    line = one_line(run(cli_obj, "heartbeat", "a", "--agent", "bob", "--token", "1"), 1)
    assert line == "swarmqueue: claim on task 'a' is stale: held by another agent"
    assert one_task.get("a").agent_id == "alice"  # only a 'heartbeat-lost' event is recorded


PLAN_ERRORS: dict[str, tuple[list[dict[str, Any]], int, str]] = {
    # wrong in itself, whatever the swarm holds: exit 2
    "cycle": ([{"id": "x", "title": "X", "dependencies": ["y"]},
               {"id": "y", "title": "Y", "dependencies": ["x"]}], 2, "dependency cycle: "),
    "self-dependency": ([{"id": "x", "title": "X", "dependencies": ["x"]}], 2,
                        "dependency cycle: x -> x (depends on itself)"),
    "id twice in the plan": ([{"id": "x", "title": "X"}, {"id": "x", "title": "again"}], 2,
                             "task id(s) listed twice in the plan: x"),
    "bad field": ([{"id": "x", "title": "X", "priority": 10**6}], 2, "tasks.0.priority"),
    # fine in itself, but the swarm's state refuses it: exit 1
    "id already in the swarm": ([{"id": "a", "title": "again"}], 1,
                                "task id(s) already in the swarm: a"),
    "unknown dependency": ([{"id": "x", "title": "X", "dependencies": ["ghost"]}], 1,
                           "task 'x' depends on unknown task 'ghost'"),
}  # fmt: skip


@pytest.mark.parametrize("kind", list(PLAN_ERRORS))
def test_plan_errors_exit_by_one_rule(
    cli_obj: CliContext,
    one_task: TaskQueue,
    redis_client: redis.Redis,
    tmp_path: Path,
    kind: str,
) -> None:
    tasks, code, message = PLAN_ERRORS[kind]
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"tasks": tasks}))
    before = snapshot(redis_client, one_task.keys.prefix)
    assert message in one_line(run(cli_obj, "plan", "submit", str(plan)), code)
    assert snapshot(redis_client, one_task.keys.prefix) == before


def test_exit_code_rule_for_plan_errors() -> None:
    assert exit_code_for(DependencyCycle(["a", "a"])) == 2
    assert exit_code_for(DuplicateInPlan(["a"])) == 2
    assert exit_code_for(ConfigError("x")) == 2
    assert exit_code_for(DuplicateTask(["a"])) == 1
    assert exit_code_for(UnknownDependency("a", "b")) == 1
    assert exit_code_for(StaleClaim("a")) == 1
    assert isinstance(DuplicateInPlan(["a"]), DuplicateTask)  # library callers still catch it


def test_long_cycles_and_duplicate_lists_name_at_most_20_ids(
    cli_obj: CliContext, sync_queue: TaskQueue, tmp_path: Path
) -> None:
    ring = chain_plan(500, prefix="r")
    ring["tasks"][0]["dependencies"] = ["r499"]
    plan = tmp_path / "ring.json"
    plan.write_text(json.dumps(ring))
    line = one_line(run(cli_obj, "plan", "submit", str(plan)), 2)
    assert line.endswith("-> ... and 481 more") and line.count(" -> ") == 20
    chain = tmp_path / "chain.json"
    chain.write_text(json.dumps(chain_plan(50, prefix="c")))
    assert run(cli_obj, "plan", "submit", str(chain)).exit_code == 0
    line = one_line(run(cli_obj, "plan", "submit", str(chain)), 1)
    assert line.endswith("c19, ... and 30 more") and line.count(", ") == 20


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["next"], "missing option '--agent' (see 'main next --help')"),
        (["--bogus", "status"], "no such option '--bogus' (see 'main --help')"),
        (["nosuch"], "no such command 'nosuch' (see 'main --help')"),
        (["tasks", "--status", "nope"], "invalid value for '--status'"),
        (["claim", "--agent", "a"], "missing argument 'TASK_ID'"),
        (["done", "a", "--agent", "x", "--token", "abc"], "'abc' is not a valid integer"),
        (["next", "--agent", "a", "extra"], "unexpected extra argument (extra)"),
        (["plan", "submit"], "missing argument 'FILE' (see 'main plan submit --help')"),
        (["plan", "nosuch"], "no such command 'nosuch' (see 'main plan --help')"),
        (["next", "--agent"], "option '--agent' requires an argument"),
    ],
)
def test_usage_errors_print_one_line(
    cli_obj: CliContext,
    one_task: TaskQueue,
    redis_client: redis.Redis,
    args: list[str],
    message: str,
) -> None:
    before = snapshot(redis_client, one_task.keys.prefix)
    assert message in one_line(run(cli_obj, *args), 2)
    assert snapshot(redis_client, one_task.keys.prefix) == before


def test_error_lines_are_flat_and_inert(
    cli_obj: CliContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    named = str(tmp_path / "\x1b[31mred\nsecond line.yaml")  # a file name echoed back
    line = one_line(run(cli_obj, "plan", "submit", named), 2)
    assert "\x1b" not in line and "red ⏎ second line.yaml" in line
    monkeypatch.setattr("distributor.cli.plans.MAX_PLAN_FILE_BYTES", 10)
    result = CliRunner().invoke(main, ["plan", "submit", "-"], obj=cli_obj, input="x" * 11)
    assert one_line(result, 2) == "swarmqueue: stdin: larger than 10 bytes"


def test_help_still_prints_help() -> None:
    for args in (["--help"], ["next", "--help"], ["plan"]):
        result = run(None, *args)
        assert "Usage:" in result.output and "Options:" in result.output
        assert "Traceback" not in result.output


# -- item 8: config errors ------------------------------------------------------------------------


CONFIG_FILES: dict[str, tuple[str | bytes, str]] = {
    "syntax error": ("lease_seconds = \n", "is not valid TOML: Invalid value (at line 1"),
    "unknown key": (
        "lease_secnds = 60\n",
        "unknown setting 'lease_secnds' (did you mean 'lease_seconds'?)",
    ),
    "unknown table": ("[redis]\nurl = 'redis://x'\n", "unknown setting 'redis'"),
    "bad value": ("lease_seconds = -1\n", "invalid setting lease_seconds: "),
    "bad log level": ("log_level = 'LOUD'\n", "invalid setting log_level: 'LOUD' is no log"),
    "not UTF-8": (b"swarm = '\xff'\n", "cannot read config file"),
}


@pytest.mark.parametrize("where", ["./swarmqueue.toml", "$SWARMQUEUE_CONFIG"])
@pytest.mark.parametrize("kind", list(CONFIG_FILES))
def test_bad_config_file_exits_2_and_claims_nothing(
    cli_obj: CliContext,
    one_task: TaskQueue,
    redis_client: redis.Redis,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
    where: str,
) -> None:
    content, message = CONFIG_FILES[kind]
    monkeypatch.chdir(tmp_path)
    path = tmp_path / ("swarmqueue.toml" if where.startswith(".") else "elsewhere.toml")
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    if where.startswith("$"):
        monkeypatch.setenv("SWARMQUEUE_CONFIG", str(path))
    before = snapshot(redis_client, one_task.keys.prefix)
    assert message in one_line(run(cli_obj, "next", "--agent", "alice"), 2)
    assert snapshot(redis_client, one_task.keys.prefix) == before


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        ([], {"SWARMQUEUE_CONFIG": "/nonexistent/swarmqueue.toml"}, "which does not exist"),
        (["--log-level", "LOUD"], {}, "invalid setting log_level: 'LOUD' is no log level"),
        ([], {"SWARMQUEUE_LOG_LEVEL": "loud"}, "invalid setting log_level: 'loud'"),
        (["--swarm", "."], {}, "invalid swarm name '.'"),
        (["--swarm", ".."], {}, "invalid swarm name '..'"),
        (["--redis-url", "localhost:6379"], {}, "invalid Redis URL 'localhost:6379': no scheme"),
        (["--redis-url", "redis://h:port/0"], {}, "the port must be a number from 1 to 65535"),
        ([], {"SWARMQUEUE_LEASE_SECONDS": "soon"}, "invalid setting lease_seconds"),
    ],
)
def test_bad_settings_exit_2_with_one_line(
    cli_obj: CliContext,
    one_task: TaskQueue,
    redis_client: redis.Redis,
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    env: dict[str, str],
    message: str,
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    before = snapshot(redis_client, one_task.keys.prefix)
    assert message in one_line(run(cli_obj, *args, "next", "--agent", "alice"), 2)
    assert snapshot(redis_client, one_task.keys.prefix) == before


def test_good_config_file_applies_and_unknown_env_vars_are_tolerated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "swarmqueue.toml").write_text("lease_seconds = 60\nlog_level = 'debug'\n")
    monkeypatch.setenv("SWARMQUEUE_NOT_A_SETTING", "1")  # the prefix is shared: ignored
    settings = Settings()
    assert (settings.lease_seconds, settings.log_level) == (60.0, "DEBUG")
    monkeypatch.setenv("SWARMQUEUE_LEASE_SECONDS", "30")  # the environment wins over the file
    assert Settings().lease_seconds == 30.0


def test_library_callers_get_a_typed_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SWARMQUEUE_CONFIG", str(tmp_path / "missing.toml"))
    with pytest.raises(ConfigError, match="does not exist"):
        Settings()
    with pytest.raises(ValidationError):  # ConfigError is a ValidationError (exit 2)
        Settings()


# -- the same, as an agent meets it: the installed command, a real process, the real Redis -------


@pytest.fixture
def real_swarm(real_redis_url: str) -> Iterator[TaskQueue]:
    client = redis.Redis.from_url(real_redis_url)
    queue = TaskQueue(client, f"test-{uuid.uuid4().hex[:12]}")
    queue.submit({"tasks": [{"id": "a", "title": "A"}]})
    yield queue
    delete_swarm(queue)
    client.close()


def swarmqueue(
    queue: TaskQueue, url: str, cwd: Path, *args: str, **env: str
) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SWARMQUEUE_")}
    environ |= {"SWARMQUEUE_REDIS_URL": url, "SWARMQUEUE_SWARM": queue.swarm}
    environ |= {"SWARMQUEUE_STATE_DIR": str(cwd / "state"), **env}
    return subprocess.run(
        [str(SWARMQUEUE), *args],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_real_process_refusals_are_one_line_and_change_nothing(
    real_swarm: TaskQueue, real_redis_url: str, tmp_path: Path
) -> None:
    cycle = tmp_path / "cycle.yaml"
    cycle.write_text("tasks:\n  - {id: x, title: X, dependencies: [x]}\n")
    cases: list[tuple[list[str], dict[str, str], int, str]] = [
        # item 3: the state dir is a regular file
        (["next", "--agent", "alice"], {"SWARMQUEUE_STATE_DIR": _regular_file(tmp_path)}, 2,
         "Not a directory"),
        # item 7: usage error, plan wrong in itself, no token remembered
        (["next"], {}, 2, "missing option '--agent' (see 'swarmqueue next --help')"),
        (["plan", "submit", str(cycle)], {}, 2, "depends on itself"),
        (["done", "a", "--agent", "alice"], {}, 1, "no token remembered"),
        # item 8: config file syntax error, unknown key, missing config, bad log level
        (["next", "--agent", "alice"], {"SWARMQUEUE_CONFIG": str(tmp_path / "bad.toml")}, 2,
         "is not valid TOML"),
        (["next", "--agent", "alice"], {"SWARMQUEUE_CONFIG": str(tmp_path / "typo.toml")}, 2,
         "unknown setting 'swarn' (did you mean 'swarm'?)"),
        (["next", "--agent", "alice"], {"SWARMQUEUE_CONFIG": str(tmp_path / "none.toml")}, 2,
         "which does not exist"),
        (["--log-level", "LOUD", "next", "--agent", "alice"], {}, 2, "no log level"),
    ]  # fmt: skip
    (tmp_path / "bad.toml").write_text("swarm = [\n")
    (tmp_path / "typo.toml").write_text("swarn = 'x'\n")
    client = real_swarm.redis
    before = snapshot(client, real_swarm.keys.prefix)
    for args, env, code, message in cases:
        done = swarmqueue(real_swarm, real_redis_url, tmp_path, *args, **env)
        assert (done.returncode, done.stdout) == (code, ""), (args, done.stderr)
        assert done.stderr.count("\n") == 1 and done.stderr.startswith("swarmqueue: ")
        assert message in done.stderr and "Traceback" not in done.stderr
    assert snapshot(client, real_swarm.keys.prefix) == before
    claimed = swarmqueue(real_swarm, real_redis_url, tmp_path, "next", "--agent", "alice")
    assert claimed.returncode == 0 and claimed.stdout.startswith("a\t(token 1")
