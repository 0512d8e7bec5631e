"""docker-compose.yml is valid YAML with a persistent, health-checked Redis and one worker, and
a profile ``sentinel`` (1 master, 1 replica, 3 sentinels, a worker on the redis+sentinel:// URL
the README shows) whose sentinel start script runs for real against a private master."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]


def load() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(data, dict)
    return data


def test_redis_is_persistent_and_health_checked() -> None:
    redis = load()["services"]["redis"]
    (script,) = redis["command"]
    assert redis["entrypoint"] == ["sh", "-c"]
    assert "--appendonly yes" in script and "--aof-load-truncated no" in script
    assert script.index("redis-check-aof --fix") < script.index("exec redis-server")
    assert redis["healthcheck"]["test"][-1] == "ping"
    assert any(v.endswith(":/data") for v in redis["volumes"])


def test_one_worker_reaches_redis_and_tmux() -> None:
    services = load()["services"]
    workers = [
        name
        for name, s in services.items()
        if "worker" in s.get("command", []) and "profiles" not in s
    ]
    assert workers == ["worker"]
    worker = services["worker"]
    assert worker["command"] == ["swarmqueue", "worker"]
    assert worker["depends_on"]["redis"]["condition"] == "service_healthy"
    assert worker["environment"]["SWARMQUEUE_REDIS_URL"] == "redis://redis:6379/0"
    assert any("/tmp/tmux-" in v for v in worker["volumes"])
    assert (ROOT / worker["build"] / "Dockerfile").exists()


SENTINEL_URL = "redis+sentinel://127.0.0.1:26379,127.0.0.1:26380,127.0.0.1:26381/swarmqueue/0"


def sentinel_services() -> dict[str, dict[str, Any]]:
    return {n: s for n, s in load()["services"].items() if "sentinel" in s.get("profiles", [])}


def test_sentinel_profile_is_one_master_one_replica_three_sentinels_and_a_worker() -> None:
    from distributor.store.connect import parse_redis_url

    services = sentinel_services()
    assert set(services) == {
        "redis-master", "redis-replica", "sentinel-1", "sentinel-2", "sentinel-3",
        "worker-sentinel",
    }  # fmt: skip
    assert all(s["network_mode"] == "host" for s in services.values())
    master, replica = services["redis-master"]["command"], services["redis-replica"]["command"]
    master_port = master[master.index("--port") + 1]
    assert replica[replica.index("--replicaof") + 1 :] == ["127.0.0.1", master_port]
    ports = [services[f"sentinel-{i}"]["environment"]["SENTINEL_PORT"] for i in (1, 2, 3)]
    for i in (1, 2, 3):
        (script,) = services[f"sentinel-{i}"]["command"]
        assert f"sentinel monitor swarmqueue 127.0.0.1 {master_port} 2" in script
    worker = services["worker-sentinel"]
    assert worker["command"] == ["swarmqueue", "worker"]
    assert worker["environment"]["SWARMQUEUE_REDIS_URL"] == SENTINEL_URL
    target = parse_redis_url(SENTINEL_URL)
    assert target.service == "swarmqueue"
    assert [str(port) for _, port in target.nodes] == ports
    readme = (ROOT / "README.md").read_text()
    assert "docker compose --profile sentinel up -d" in readme and SENTINEL_URL in readme


def test_the_sentinel_start_script_runs(tmp_path: Path) -> None:
    """The sentinel service's shell command, as compose runs it (``$$`` is ``$``), against a
    private master: the sentinel starts, monitors it, and starts again from its rewritten
    config."""
    import subprocess
    import time

    import redis

    from distributor.demo.redis_source import free_port
    from tests.processes import port_open
    from tests.redis_server import RedisServer

    (script,) = sentinel_services()["sentinel-1"]["command"]
    master = RedisServer(tmp_path / "master").start()
    port = free_port()
    shell = script.replace("$$", "$").replace("/data", str(tmp_path))
    shell = shell.replace("127.0.0.1 6380", f"127.0.0.1 {master.port}")
    try:
        for _ in range(2):  # the second start reads the config the sentinel rewrote
            proc = subprocess.Popen(
                ["sh", "-c", shell],
                env={"SENTINEL_PORT": str(port), "PATH": "/usr/bin:/bin"},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                deadline = time.monotonic() + 10
                while not port_open(port):
                    assert proc.poll() is None and time.monotonic() < deadline, "no sentinel"
                    time.sleep(0.05)
                with redis.Redis(port=port, decode_responses=True, socket_timeout=5) as sentinel:
                    addr = sentinel.execute_command(
                        "SENTINEL", "GET-MASTER-ADDR-BY-NAME", "swarmqueue"
                    )
                assert addr == ["127.0.0.1", str(master.port)]
            finally:
                proc.kill()
                proc.wait()
        assert "sentinel monitor swarmqueue" in (tmp_path / "sentinel.conf").read_text()
    finally:
        master.kill()
