#!/usr/bin/env python3
"""Take docs/dashboard-swarm.png: the swarm page of a small swarm in mid-flight, in headless
Chromium (Debian's chromium and chromium-driver), on the Redis at ``--redis-url``.

Usage: .venv/bin/python scripts/dashboard_screenshot.py [--redis-url URL] [--out FILE]

Builds a 12-task feature with three agents (some tasks done, some held, one in a retry
backoff), serves the dashboard on a free loopback port, screenshots the page, and deletes
the swarm.
"""

from __future__ import annotations

import argparse
import threading
import time
import uuid
from pathlib import Path

import redis
import uvicorn
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from benchmarks.server import free_port
from distributor.dashboard.app import create_app
from distributor.dashboard.server import DashboardServer
from distributor.messaging.agents import AgentRegistry
from distributor.messaging.messages import Messenger
from distributor.settings import Settings
from distributor.store.client import async_redis_from_url
from distributor.tasks.queue import TaskQueue
from distributor.testing import delete_swarm

TASKS = [
    ("design", "Design the authentication model", []),
    ("schema", "User table and migrations", ["design"]),
    ("hash", "Argon2id password hashing", ["design"]),
    ("jwt", "Issue and verify RS256 JWTs", ["hash"]),
    ("keys", "Key rotation for signing keys", ["jwt"]),
    ("login", "Login endpoint", ["schema", "jwt"]),
    ("refresh", "Refresh-token endpoint", ["jwt"]),
    ("logout", "Logout and token revocation", ["login"]),
    ("limit", "Rate-limit the login route", ["login"]),
    ("e2e", "End-to-end tests", ["logout", "refresh", "limit"]),
    ("docs", "API documentation", ["logout", "refresh"]),
    ("review", "Security review", ["e2e", "keys"]),
]


def build(client: redis.Redis, swarm: str) -> TaskQueue:
    settings = Settings(swarm=swarm, retry_backoff_seconds=300, announce_claims=False)
    queue = TaskQueue(client, swarm, settings=settings)
    queue.submit({"tasks": [{"id": i, "title": t, "dependencies": d} for i, t, d in TASKS]})
    registry = AgentRegistry(client, swarm, settings=settings)
    for n in (1, 2, 3):
        registry.register(f"agent-{n}", f"%{n}", host="build-1")
    for task_id, agent in (("design", "agent-1"), ("schema", "agent-2"), ("hash", "agent-3"),
                           ("jwt", "agent-1")):  # fmt: skip
        claim = queue.claim(task_id, agent).claim
        assert claim is not None
        time.sleep(0.3)
        queue.complete(task_id, agent, claim.token)
    claim = queue.claim("refresh", "agent-2").claim
    assert claim is not None
    queue.fail("refresh", "agent-2", claim.token, "tests failed: clock skew in token expiry")
    claim = queue.claim("login", "agent-3").claim
    assert claim is not None
    queue.start("login", "agent-3", claim.token)
    assert queue.claim("keys", "agent-1").claim is not None
    Messenger(client, swarm, settings=settings).broadcast(
        "JWT signing is merged; login can start", sender="agent-1"
    )
    return queue


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    default_out = Path(__file__).parent.parent / "docs" / "dashboard-swarm.png"
    parser.add_argument("--out", default=str(default_out))
    args = parser.parse_args()
    client = redis.Redis.from_url(args.redis_url)
    swarm = f"auth-{uuid.uuid4().hex[:4]}"
    queue = build(client, swarm)
    port = free_port()
    app = create_app(client, lambda: async_redis_from_url(args.redis_url, 1), Settings())
    server = DashboardServer(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                            timeout_graceful_shutdown=1))  # fmt: skip
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run",
                "--window-size=1280,900", "--hide-scrollbars"):  # fmt: skip
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        while not server.started:
            time.sleep(0.05)
        driver.get(f"http://127.0.0.1:{port}/swarm/{swarm}")
        time.sleep(1.0)
        driver.save_screenshot(args.out)
        print(f"wrote {args.out}")
    finally:
        driver.quit()
        server.should_exit = True
        thread.join(timeout=10)
        delete_swarm(queue)


if __name__ == "__main__":
    main()
