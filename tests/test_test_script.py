"""The test tooling cleans up after itself.

``scripts/test.sh`` with ``SWARMQUEUE_TEST_PRIVATE_REDIS=1`` starts a private redis-server; it is
run here for real (``SWARMQUEUE_TEST_PYTEST_ONLY=1`` skips the install and lint steps, and the
pytest run is one probe test outside ``tests/``, so the suite does not recurse into itself). When
the script ends, normally or on Ctrl-C, the server's process, port and folder are gone.

The suite's leak check (``tests/processes.py``) fails a test that leaves a redis-server or a tmux
server running, and a session whose module fixtures do, and stops what was left.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from tests.processes import LeakCheck, alive, port_open

pytestmark = [pytest.mark.slow, pytest.mark.long]  # ~25 s of test.sh and pytest runs: -m long (CI)

ROOT = Path(__file__).resolve().parents[1]
TEST_SH = ROOT / "scripts" / "test.sh"

PROBE = """
import json, os, pathlib, time
import redis

def test_probe():
    url = os.environ["SWARMQUEUE_TEST_REDIS_URL"]
    client = redis.Redis.from_url(url)
    info = {
        "url": url,
        "port": client.connection_pool.connection_kwargs["port"],
        "pid": client.info("server")["process_id"],
        "dir": client.config_get("dir")["dir"],
    }
    client.close()
    pathlib.Path(os.environ["PROBE_OUT"]).write_text(json.dumps(info))
    time.sleep(float(os.environ["PROBE_SLEEP"]))
"""


def start_script(tmp_path: Path, sleep: float) -> tuple[subprocess.Popen[str], Path]:
    """``scripts/test.sh`` on the probe, in a process group of its own (to Ctrl-C it)."""
    probe = tmp_path / "probe" / "test_probe.py"
    probe.parent.mkdir()
    probe.write_text(PROBE)
    out = tmp_path / "probe.json"
    env = {k: v for k, v in os.environ.items() if k != "SWARMQUEUE_TEST_REDIS_URL"}
    env |= {
        "SWARMQUEUE_TEST_PRIVATE_REDIS": "1",
        "SWARMQUEUE_TEST_PYTEST_ONLY": "1",
        "PROBE_OUT": str(out),
        "PROBE_SLEEP": str(sleep),
    }
    proc = subprocess.Popen(
        [str(TEST_SH), "-q", "-p", "no:cacheprovider", str(probe)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    return proc, out


def wait_for_file(path: Path, proc: subprocess.Popen[str], timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, f"test.sh ended early: {proc.communicate()[0][-2000:]}"
        assert time.monotonic() < deadline, "the probe test did not run"
        time.sleep(0.05)
    info: dict[str, Any] = json.loads(path.read_text())
    return info


def assert_server_gone(info: dict[str, Any]) -> None:
    assert not alive(info["pid"]), f"redis-server {info['pid']} still runs"
    assert not port_open(info["port"]), f"port {info['port']} still open"
    assert not Path(info["dir"]).exists(), f"{info['dir']} still exists"


def test_test_sh_stops_its_private_redis(tmp_path: Path, leak_check: LeakCheck) -> None:
    proc, out = start_script(tmp_path, sleep=0)
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, output[-3000:]
    info = json.loads(out.read_text())
    leak_check.track_redis_port(info["port"], info["pid"])
    assert info["url"] == f"redis://127.0.0.1:{info['port']}/0"
    assert Path(info["dir"]).name.startswith("swarmqueue-test-redis.")
    assert f"private redis-server {info['url']}, pid {info['pid']}" in output
    assert_server_gone(info)


def test_test_sh_stops_its_private_redis_on_ctrl_c(tmp_path: Path, leak_check: LeakCheck) -> None:
    proc, out = start_script(tmp_path, sleep=60)
    info = wait_for_file(out, proc)
    leak_check.track_redis_port(info["port"], info["pid"])
    assert alive(info["pid"]) and port_open(info["port"])
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode != 0, output[-3000:]
    assert_server_gone(info)


LEAKY_TESTS = """
import json, os, pathlib, subprocess
import pytest

def record(name, pid):
    out = pathlib.Path(os.environ["LEAKS_OUT"])
    found = json.loads(out.read_text()) if out.exists() else {}
    out.write_text(json.dumps({**found, name: pid}))

def tmux_server(label):
    subprocess.run(["tmux", "-L", label, "-f", os.devnull, "new-session", "-d", "sleep 300"],
                   check=True)
    pid = subprocess.run(["tmux", "-L", label, "display-message", "-p", "#{pid}"],
                         capture_output=True, text=True, check=True).stdout
    return int(pid)

@pytest.fixture(scope="module")
def module_tmux():
    record("module_tmux", tmux_server("leaky-module"))

def test_leaves_tmux():
    record("test_tmux", tmux_server("leaky-test"))

def test_leaves_redis(tmp_path):
    args = ["--port", "0", "--unixsocket", str(tmp_path / "r.sock"), "--save", ""]
    proc = subprocess.Popen(["redis-server", *args, "--dir", str(tmp_path)],
                            stdout=subprocess.DEVNULL)
    record("test_redis", proc.pid)

def test_clean(module_tmux):
    pass
"""


def test_leak_check_fails_tests_and_sessions_that_leave_servers(tmp_path: Path) -> None:
    suite = tmp_path / "leaky"
    suite.mkdir()
    (suite / "conftest.py").write_text(
        "from tests.conftest import leak_check, pytest_sessionfinish, pytest_sessionstart\n"
    )
    (suite / "test_leaky.py").write_text(textwrap.dedent(LEAKY_TESTS))
    out = tmp_path / "leaks.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LEAKS_OUT": str(out)}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rA", str(suite)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    report = done.stdout + done.stderr
    assert done.returncode == 1, report[-3000:]
    assert "3 passed, 2 errors" in report, report[-3000:]
    pids = json.loads(out.read_text())
    assert set(pids) == {"test_tmux", "test_redis", "module_tmux"}
    assert "ERROR leaky/test_leaky.py::test_leaves_tmux - Failed: the test left running" in report
    assert "a tmux server on " in report and "/leaky-test" in report
    assert "ERROR leaky/test_leaky.py::test_leaves_redis - Failed: the test left running" in report
    assert f"redis-server (pid {pids['test_redis']})" in report
    assert "left running at the end of the session (stopped now):" in report
    assert "/leaky-module" in report
    for name, pid in pids.items():
        assert not alive(pid), f"{name} (pid {pid}) was not stopped"
