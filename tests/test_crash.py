"""An agent killed with SIGKILL loses its claim when the lease runs out; its token is refused."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import redis

from distributor import StaleClaim, TaskQueue
from distributor.testing import delete_swarm

HOLDER = """
import sys, time, redis
from distributor import TaskQueue
queue = TaskQueue(redis.Redis.from_url(sys.argv[1]), sys.argv[2])
claim = queue.claim_next("doomed", lease=1.0)
print(claim.task.id, claim.token, flush=True)
while True:
    time.sleep(0.2)  # an agent at work, holding its claim
"""


@pytest.mark.slow
def test_sigkilled_agent_task_is_taken_over(real_redis_url: str, swarm: str) -> None:
    queue = TaskQueue(redis.Redis.from_url(real_redis_url), swarm)
    queue.submit({"tasks": [{"id": "only", "title": "Only task"}]})
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, real_redis_url, swarm],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        task_id, token = proc.stdout.readline().split()
        assert queue.get("only").agent_id == "doomed"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        assert queue.claim_next("rescuer") is None  # the lease still runs
        deadline = time.monotonic() + 10
        claim = None
        while claim is None and time.monotonic() < deadline:
            time.sleep(0.1)
            claim = queue.claim_next("rescuer")
        assert claim is not None and claim.task.id == task_id
        assert claim.token == int(token) + 1
        assert queue.complete(task_id, "rescuer", claim.token).task.agent_id == "rescuer"
        with pytest.raises(StaleClaim):
            queue.complete(task_id, "doomed", int(token))
        with pytest.raises(StaleClaim):
            queue.heartbeat(task_id, "doomed", int(token))
    finally:
        if proc.poll() is None:
            proc.kill()
        delete_swarm(queue)
