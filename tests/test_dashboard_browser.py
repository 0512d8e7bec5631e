"""The dashboard in a real browser: Debian's headless Chromium, driven by Selenium through
Debian's chromedriver (the same build as the browser, so no driver download).

Opens a swarm's page, completes a task from another process (the ``swarmqueue`` CLI) and
sees the progress and the DAG change without a reload; the page logs no console error.
Screenshots of the swarm and messages pages are saved under ``test-artifacts/dashboard/``
(gitignored).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from distributor.dashboard.app import create_app
from distributor.settings import Settings
from distributor.store.client import async_redis_from_url
from distributor.tasks.queue import TaskQueue
from tests.dashboard_support import served
from tests.messaging_support import Messaging, run_worker

pytestmark = pytest.mark.browser

SWARMQUEUE = Path(sys.executable).with_name("swarmqueue")  # the venv's installed command
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "dashboard"
CHROME_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1400,1000",
)
PLAN = {
    "tasks": [
        {"id": "design", "title": "Design the authentication model"},
        {"id": "hash", "title": "Argon2id password hashing", "dependencies": ["design"]},
        {"id": "jwt", "title": "Issue and verify RS256 JWTs", "dependencies": ["hash"]},
        {"id": "endpoints", "title": "Login, refresh, logout", "dependencies": ["hash"]},
        {"id": "rate", "title": "Rate-limit the login route", "dependencies": ["endpoints"]},
        {"id": "tests", "title": "Tests and documentation", "dependencies": ["jwt", "rate"]},
    ]
}


@pytest.fixture
def driver() -> Iterator[Any]:
    if not CHROMIUM.exists() or not CHROMEDRIVER.exists():
        pytest.skip(
            "Debian's chromium and chromium-driver are not installed (scripts/test.sh installs "
            "them when run as root)"
        )
    from selenium import webdriver
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in CHROME_ARGS:
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    try:
        browser = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    except WebDriverException as exc:
        pytest.skip(f"headless Chromium did not start here: {exc.msg}")
    try:
        yield browser
    finally:
        browser.quit()


def _cli(url: str, swarm: str, *args: str) -> None:
    """Run the ``swarmqueue`` CLI in its own process (another agent)."""
    subprocess.run(
        [SWARMQUEUE, "--redis-url", url, "--swarm", swarm, *args],
        check=True,
        capture_output=True,
        env={**os.environ, "SWARMQUEUE_LOG_LEVEL": "WARNING"},
        timeout=30,
    )


def test_swarm_page_updates_live_in_chromium(
    driver: Any, real_redis_url: str, swarm: str
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    client = redis.Redis.from_url(real_redis_url)
    ms = Messaging(client, swarm)
    queue = TaskQueue(client, swarm, settings=Settings(retry_backoff_seconds=600))
    try:
        queue.submit(PLAN)
        ms.registry.register("alice", "%1")
        ms.registry.register("bob", "%2")
        for task_id in ("design", "hash"):
            claim = queue.claim(task_id, "alice").claim
            assert claim is not None
            queue.complete(task_id, "alice", claim.token)
        ms.messenger.broadcast("hashing is merged; <b>JWT</b> next", sender="alice")
        run_worker(client, ms.host)
        _cli(real_redis_url, swarm, "claim", "endpoints", "--agent", "bob")
        app = create_app(
            client, lambda: async_redis_from_url(real_redis_url, 1), ms.settings
        )
        with served(app) as base:
            driver.get(f"{base}/swarm/{swarm}")
            wait = WebDriverWait(driver, 10)
            wait.until(lambda d: "off" not in d.find_element(By.ID, "live").get_attribute("class"))
            assert driver.find_element(By.ID, "pct").text == "33.3"
            node = '#dag .node[data-task="endpoints"]'
            assert "st-claimed" in driver.find_element(By.CSS_SELECTOR, node).get_attribute("class")
            loaded = driver.execute_script("return performance.timeOrigin")

            _cli(real_redis_url, swarm, "done", "endpoints", "--agent", "bob")
            done_at = time.monotonic()
            WebDriverWait(driver, 2).until(
                lambda d: d.find_element(By.ID, "pct").text == "50.0"
                and "st-completed" in d.find_element(By.CSS_SELECTOR, node).get_attribute("class")
            )
            seen_after = time.monotonic() - done_at
            rate = '#dag .node[data-task="rate"]'
            shown = driver.find_element(By.CSS_SELECTOR, rate).get_attribute("class")
            assert "st-available" in shown  # unblocked by the completion
            assert driver.find_element(By.ID, "count-completed").text == "3"
            assert driver.execute_script("return performance.timeOrigin") == loaded  # no reload
            tail = driver.find_element(By.CSS_SELECTOR, "#tail tbody").text
            assert "completed" in tail and "endpoints" in tail
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            driver.save_screenshot(str(ARTIFACTS / "swarm.png"))

            driver.get(f"{base}/swarm/{swarm}/messages")
            contents = [e.text for e in driver.find_elements(By.CSS_SELECTOR, "pre.text")]
            assert "hashing is merged; <b>JWT</b> next" in contents  # as text, not markup
            driver.save_screenshot(str(ARTIFACTS / "messages.png"))
            errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
            assert errors == [], errors
            print(f"update seen {seen_after * 1000:.0f} ms after the CLI's done returned")
    finally:
        ms.close()
