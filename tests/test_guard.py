"""The commit guard in a real git repository: a commit touching a file another agent holds is
refused naming holder and expiry, the agent's own file passes, ``--no-verify`` passes, an
unreachable Redis warns and allows, and a foreign hook is never clobbered."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from distributor import TaskQueue
from distributor.cli import main
from distributor.cli.app import CliContext
from distributor.reservations import guard


def git(
    repo: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", *args], cwd=repo, env=env, capture_output=True, text=True, timeout=60, check=False
    )


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.email", "t@example.invalid")
    git(root, "config", "user.name", "T")
    (root / "src").mkdir()
    for name in ("held.py", "mine.py", "free.py"):
        (root / "src" / name).write_text("x = 1\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "initial", "--no-verify")
    monkeypatch.chdir(root)
    return root


def _edit_and_commit(
    repo: Path, name: str, env: dict[str, str], *flags: str
) -> subprocess.CompletedProcess[str]:
    path = repo / "src" / name
    path.write_text(path.read_text() + "y = 2\n")
    git(repo, "add", str(path))
    return git(repo, "commit", "-m", f"edit {name}", *flags, env=env)


@pytest.mark.parametrize("backend", ["redis"], indirect=True)  # the hook is another process
def test_the_hook_refuses_another_agents_file(
    repo: Path, cli_obj: CliContext, sync_queue: TaskQueue, real_redis_url: str
) -> None:
    installed = CliRunner().invoke(main, ["guard", "install"], obj=cli_obj)
    assert installed.exit_code == 0, installed.output
    sync_queue.reserve(["src/held.py"], "agent-b", ttl=600)
    sync_queue.reserve(["src/mine.py"], "agent-a", ttl=600)
    env = {
        **os.environ,
        "SWARMQUEUE_REDIS_URL": real_redis_url,
        "SWARMQUEUE_AGENT": "agent-a",
        "SWARMQUEUE_SWARM": sync_queue.swarm,
    }
    refused = _edit_and_commit(repo, "held.py", env)
    assert refused.returncode != 0
    until = sync_queue.reservations()[0].expires_at.strftime("%H:%M:%SZ")
    assert "src/held.py: src/held.py held by agent-b (exclusive, until " + until in refused.stderr
    assert "commit refused" in refused.stderr and "--no-verify" in refused.stderr
    git(repo, "reset", "-q", "--hard")

    assert _edit_and_commit(repo, "mine.py", env).returncode == 0  # its own reservation
    assert _edit_and_commit(repo, "free.py", env).returncode == 0
    assert _edit_and_commit(repo, "held.py", env, "--no-verify").returncode == 0

    down = {**env, "SWARMQUEUE_REDIS_URL": "redis://127.0.0.1:1/0"}  # nothing listens there
    allowed = _edit_and_commit(repo, "held.py", down)
    assert allowed.returncode == 0, allowed.stderr
    assert "cannot read reservations" in allowed.stderr and "commit allowed" in allowed.stderr


def test_install_never_clobbers_a_foreign_hook(repo: Path, cli_obj: CliContext) -> None:
    hook = guard.hook_path(repo)
    hook.parent.mkdir(parents=True, exist_ok=True)
    hook.write_text("#!/bin/sh\necho mine\n")
    refused = CliRunner().invoke(main, ["guard", "install"], obj=cli_obj)
    assert refused.exit_code == 1
    assert (
        "is not swarmqueue's guard" in refused.output and "guard check || exit 1" in refused.output
    )
    assert CliRunner().invoke(main, ["guard", "uninstall"], obj=cli_obj).exit_code == 1
    assert hook.read_text() == "#!/bin/sh\necho mine\n"
    hook.unlink()
    assert CliRunner().invoke(main, ["guard", "install"], obj=cli_obj).exit_code == 0
    assert CliRunner().invoke(main, ["guard", "install"], obj=cli_obj).exit_code == 0  # again
    assert guard.MARKER in hook.read_text()
    removed = CliRunner().invoke(main, ["guard", "uninstall"], obj=cli_obj)
    assert removed.exit_code == 0 and not hook.exists()
    again = CliRunner().invoke(main, ["guard", "uninstall"], obj=cli_obj)
    assert again.exit_code == 0 and "no guard installed" in again.output


def test_check_in_process_on_either_backend(
    repo: Path, cli_obj: CliContext, sync_queue: TaskQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    sync_queue.reserve(["src/free.py"], "agent-c", ttl=600, shared=True)
    sync_queue.reserve(["src/m*"], "agent-b", ttl=600)
    for name in ("free.py", "mine.py"):
        (repo / "src" / name).write_text("z = 3\n")
    git(repo, "add", "-A")
    monkeypatch.setenv("SWARMQUEUE_AGENT", "agent-b")  # the holder commits its own files
    assert CliRunner().invoke(main, ["guard", "check"], obj=cli_obj).exit_code == 0
    monkeypatch.setenv("SWARMQUEUE_AGENT", "agent-a")
    refused = CliRunner().invoke(main, ["guard", "check", "--json"], obj=cli_obj)
    assert refused.exit_code == 1
    assert "src/mine.py: src/m* held by agent-b" in refused.output
    assert "agent-c" not in refused.output  # a shared reservation does not refuse commits


def test_outside_a_repository_exit_2(
    tmp_path: Path, cli_obj: CliContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    result = CliRunner().invoke(main, ["guard", "install"], obj=cli_obj)
    assert result.exit_code == 2 and "not a git repository" in result.output
