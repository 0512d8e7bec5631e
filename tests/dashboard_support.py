"""Helpers for the dashboard tests: a swarm with something in every state, and a served app."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import uvicorn

from distributor.dashboard.server import DashboardServer
from distributor.errors import RateLimitExceeded
from distributor.tasks.queue import TaskQueue
from tests.messaging_support import Messaging, run_worker

HOSTILE = "<script>alert(\"x\")</script> & 'quoted' \"double\""


@dataclass
class Scene:
    """What :func:`populate` made: the ids to look for on the pages."""

    done: str
    waiting: str
    failed: str
    hostile: str
    message_id: str


def populate(queue: TaskQueue, ms: Messaging) -> Scene:
    """A plan of 6 tasks: one completed, one in a retry backoff, one failed for good, one held,
    and one with a hostile title; two agents and a message whose deliveries failed (no panes)."""
    queue.submit(
        {
            "tasks": [
                {"id": "a", "title": "Design"},
                {"id": "b", "title": "Flaky step", "max_attempts": 3},
                {"id": "c", "title": "Doomed step"},
                {"id": "d", "title": HOSTILE, "dependencies": ["a"]},
                {"id": "e", "title": "Held", "dependencies": ["a"]},
                {"id": "f", "title": "Last", "dependencies": ["d", "e", "c"]},
            ]
        }
    )
    ms.registry.register("alice", "%1")
    ms.registry.register("bob", "%2")
    claim = queue.claim("a", "alice").claim
    assert claim is not None
    queue.complete("a", "alice", claim.token)
    claim = queue.claim("b", "bob").claim
    assert claim is not None
    queue.fail("b", "bob", claim.token, HOSTILE)
    claim = queue.claim("c", "alice").claim
    assert claim is not None
    queue.fail("c", "alice", claim.token, "disk <full>", retry=False)
    assert queue.claim("e", "bob").claim is not None
    message_id = ms.messenger.broadcast(HOSTILE, sender="alice", include_self=True)
    run_worker(ms.rq, ms.host)  # no tmux pane %1/%2 here: the outcomes are failures
    return Scene("a", "b", "c", "d", message_id)


def exhaust_rate_limit(ms: Messaging, sender: str, limit: int) -> tuple[int, list[str]]:
    """Send until ``sender`` is refused once: how many were refused (1), and the sent ids."""
    sent = []
    for i in range(limit + 1):
        try:
            sent.append(ms.messenger.broadcast(f"note {i}", sender=sender))
        except RateLimitExceeded:
            return 1, sent
    raise AssertionError("the rate limit never refused")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def served(app: Any) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free loopback port in a thread; yields its base URL."""
    port = free_port()
    server = DashboardServer(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                       timeout_graceful_shutdown=1)
    )  # fmt: skip
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise AssertionError("the dashboard did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
