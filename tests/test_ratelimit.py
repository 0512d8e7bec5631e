"""The per-sender rate limit: 10 messages a minute, shared across processes, by Redis time."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from distributor.errors import RateLimitExceeded
from distributor.messaging.ratelimit import usage
from tests.conftest import snapshot
from tests.messaging_support import Messaging

ROOT = Path(__file__).resolve().parent.parent

SENDER_SCRIPT = """
import json, sys
from distributor.errors import RateLimitExceeded
from distributor.messaging.messages import Messenger
from distributor.settings import Settings

url, swarm, host, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
messenger = Messenger.from_url(url, swarm, settings=Settings(swarm=swarm, host=host))
sys.stdin.readline()  # start together
results = []
for i in range(count):
    try:
        messenger.broadcast(f"message {i}", sender="chatty")
        results.append("ok")
    except RateLimitExceeded as exc:
        results.append(exc.retry_after)
print(json.dumps(results))
"""


@pytest.fixture
def ms(redis_client: redis.Redis, swarm: str) -> Iterator[Messaging]:
    m = Messaging(redis_client, swarm)
    m.registry.register("alice", "%1")
    yield m
    m.close()


def test_eleventh_message_in_a_minute_is_refused_with_the_wait(ms: Messaging) -> None:
    for i in range(10):
        ms.messenger.broadcast(f"m{i}", sender="chatty")
        ms.advance_clock(2)
    before = snapshot(ms.client, ms.keys.prefix)
    jobs = ms.queued_job_ids()
    with pytest.raises(RateLimitExceeded) as info:
        ms.messenger.broadcast("one too many", sender="chatty")
    assert info.value.retry_after == pytest.approx(40, abs=0.5)  # m0 leaves the window at 60s
    assert "retry in" in str(info.value)
    after = snapshot(ms.client, ms.keys.prefix)
    refused = after.pop(ms.keys.refused)  # only the refusal is counted (dashboard's /metrics)
    assert refused[1] in ({b"chatty": b"1"}, {"chatty": "1"})
    assert after == before  # nothing recorded
    assert ms.queued_job_ids() == jobs  # nothing enqueued
    ms.messenger.broadcast("other senders are not limited", sender="quiet")

    ms.advance_clock(40.5)
    ms.messenger.broadcast("the window moved on", sender="chatty")


def test_usage_reads_without_counting(ms: Messaging) -> None:
    for _ in range(3):
        ms.messenger.broadcast("m", sender="chatty")
    from distributor.store.executor import SyncExecutor

    seen = SyncExecutor(ms.client).run(usage(ms.keys, "chatty", 10))
    assert (seen.used, seen.retry_after) == (3, 0.0)


@pytest.mark.slow
def test_limit_holds_across_two_processes(real_redis_url: str, swarm: str) -> None:
    ms = Messaging(redis.Redis.from_url(real_redis_url), swarm)
    try:
        ms.registry.register("alice", "%1")
        env = {**os.environ, "PYTHONPATH": str(ROOT), "SWARMQUEUE_LOG_LEVEL": "WARNING"}
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", SENDER_SCRIPT, real_redis_url, swarm, ms.host, "8"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                env=env,
                cwd=ROOT,
            )
            for _ in range(2)
        ]
        outputs = [p.communicate("go\n", timeout=60)[0] for p in procs]
        assert all(p.returncode == 0 for p in procs)
        results = [r for out in outputs for r in json.loads(out)]
        assert results.count("ok") == 10
        waits = [r for r in results if r != "ok"]
        assert len(waits) == 6 and all(0 < w <= 60 for w in waits)
        with pytest.raises(RateLimitExceeded) as info:
            ms.messenger.broadcast("and from a third process", sender="chatty")
        assert 0 < info.value.retry_after <= 60
        assert len(ms.queued_job_ids()) == 10
    finally:
        ms.close()
        ms.client.close()
