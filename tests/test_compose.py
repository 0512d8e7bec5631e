"""docker-compose.yml is valid YAML with a persistent, health-checked Redis and one worker."""

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
    workers = [name for name, s in services.items() if "worker" in s.get("command", [])]
    assert workers == ["worker"]
    worker = services["worker"]
    assert worker["command"] == ["swarmqueue", "worker"]
    assert worker["depends_on"]["redis"]["condition"] == "service_healthy"
    assert worker["environment"]["SWARMQUEUE_REDIS_URL"] == "redis://redis:6379/0"
    assert any("/tmp/tmux-" in v for v in worker["volumes"])
    assert (ROOT / worker["build"] / "Dockerfile").exists()
