"""``swarmqueue demo`` runs to completion: on the embedded fakeredis fallback and on a real Redis.

Each run is the real thing in a subprocess (tmux panes with scripted agents, a delivery worker,
the JWT feature), with the agents' work time scaled down. Afterwards nothing it started is left:
no tmux server, no worker, and on the shared Redis none of its keys.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx2
import pytest
import redis

from distributor.demo.redis_source import free_port
from distributor.store.keys import SwarmKeys

pytestmark = pytest.mark.slow

CLI = Path(sys.executable).with_name("swarmqueue")  # installed into the venv running pytest


def run_demo(*args: str, env: dict[str, str]) -> tuple[dict[str, Any], str]:
    done = subprocess.run(
        [str(CLI), "demo", "--work-scale", "0.1", "--timeout", "90", "--json", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert done.returncode == 0, f"demo exited {done.returncode}: {done.stderr[-3000:]}"
    return json.loads(done.stdout), done.stderr


def processes_mentioning(word: str) -> list[str]:
    """Command lines of running processes that contain ``word``."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if word in text:
            found.append(text)
    return found


def check_summary(summary: dict[str, Any]) -> None:
    """5 tasks completed in dependency order; every pane got every announcement."""
    tasks = summary["tasks"]
    assert summary["finished"] and summary["order"] == {"ok": True, "violations": []}
    assert len(tasks) == 5 and all(t["status"] == "completed" for t in tasks)
    ends = {t["id"]: datetime.fromisoformat(t["end"]) for t in tasks}
    t1, t2, t3, t4, _ = (t["id"] for t in tasks)
    assert [t["dependencies"] for t in tasks] == [[], [t1], [t2], [t2], [t3, t4]]
    for task in tasks:
        for dep in task["dependencies"]:
            assert datetime.fromisoformat(task["start"]) >= ends[dep]
    assert tasks[2]["attempts"] == 2  # its first attempt failed and was retried
    # agent-1 reviewed app/security/jwt.py first: a claim passed over the JWT task for it
    skips = summary["skips"]
    assert skips and {s["task"] for s in skips} == {t3}
    assert all(s["agent"] != "agent-1" and "app/security/jwt.py held by agent-1" in s["held"]
               for s in skips)  # fmt: skip
    assert datetime.fromisoformat(skips[0]["at"]) < datetime.fromisoformat(tasks[2]["start"])
    messages = summary["messages"]
    types = [m["type"] for m in messages]
    assert types.count("TASK_AVAILABLE") == 1
    assert types.count("CLAIMED") == 6 and types.count("COMPLETED") == 5
    agents = [f"agent-{n}" for n in range(1, 5)]
    for message in messages:
        assert message["outcomes"] == dict.fromkeys(agents, "delivered")
    assert [(p["agent"], p["delivered"], p["failed"], p["pending"]) for p in summary["panes"]] == [
        (agent, len(messages), 0, 0) for agent in agents
    ]


def check_gone(summary: dict[str, Any]) -> None:
    """The tmux server and the worker of the run are gone."""
    socket = summary["tmux_socket"]
    assert not Path(socket).exists()
    alive = subprocess.run(["tmux", "-S", socket, "has-session"], capture_output=True, check=False)
    assert alive.returncode != 0
    assert processes_mentioning(summary["swarm"]) == []  # the worker ran with --host <swarm>


def demo_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("SWARMQUEUE_REDIS_URL", "TMUX")}
    return {**env, **extra}


@pytest.mark.long  # ~18 s; the real-Redis demo test stays in the default run
def test_demo_on_the_embedded_fakeredis_fallback() -> None:
    """Also with --dashboard: the demo prints the swarm page's URL, which answers meanwhile."""
    port = free_port()
    proc = subprocess.Popen(
        [str(CLI), "demo", "--work-scale", "0.1", "--timeout", "90", "--json", "--redis",
         "fakeredis", "--dashboard", "--dashboard-port", str(port)],
        env=demo_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        url = next(
            line.split("dashboard: ", 1)[1].split()[0]
            for line in proc.stderr
            if line.startswith("dashboard: ")
        )
        assert url.startswith(f"http://127.0.0.1:{port}/swarm/demo-")
        page = httpx2.get(url, timeout=10)
        assert page.status_code == 200 and "<h1>Swarm demo-" in page.text
        out, err = proc.communicate(timeout=110)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, f"demo exited {proc.returncode}: {err[-3000:]}"
    summary = json.loads(out)
    assert summary["redis"].startswith("an embedded fakeredis server")
    check_summary(summary)
    check_gone(summary)
    with pytest.raises(httpx2.ConnectError):  # the dashboard stopped with the demo
        httpx2.get(url, timeout=5)


def test_demo_on_a_real_redis_cleans_its_keys(real_redis_url: str) -> None:
    summary, _ = run_demo(env=demo_env(SWARMQUEUE_REDIS_URL=real_redis_url))
    assert summary["redis"] == f"the Redis at {real_redis_url}"
    check_summary(summary)
    check_gone(summary)
    client = redis.Redis.from_url(real_redis_url)
    try:
        prefix = SwarmKeys(summary["swarm"]).prefix
        assert list(client.scan_iter(match=prefix + "*")) == []
        assert list(client.scan_iter(match=f"rq:*{summary['swarm']}*")) == []
    finally:
        client.close()
