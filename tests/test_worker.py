"""``swarmqueue worker`` when Redis goes away under it: one structured line per retry, from the
worker and from its keeper thread, no traceback, and work goes on when Redis is back.

Each test runs the real command in a subprocess against a private redis-server that it stops
and starts again on the same port.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from rq import Queue
from rq.job import Job

from distributor.messaging.job_ids import DELIVER_JOB
from distributor.messaging.jobs import JOB_SERIALIZER, delivery_queue
from distributor.store.keys import SwarmKeys
from tests.messaging_support import unique_host, wait_for
from tests.redis_server import RedisServer

pytestmark = pytest.mark.slow

CLI = Path(sys.executable).with_name("swarmqueue")
RETRY = "redis unreachable, retrying"
BACK = "redis reachable again"


def worker_env(server: RedisServer, host: str | None = None) -> dict[str, str]:
    """A worker's environment: the server, a host of the test's own, JSON logs."""
    return {
        **os.environ,
        "SWARMQUEUE_REDIS_URL": server.url,
        "SWARMQUEUE_HOST": host or unique_host(),
        "SWARMQUEUE_LOG_FORMAT": "json",
        "SWARMQUEUE_DELIVERY_SWEEP_SECONDS": "0.5",
    }


def burst_worker(server: RedisServer, host: str) -> subprocess.CompletedProcess[str]:
    """``swarmqueue worker --burst`` for ``host``: it runs what is queued, then exits."""
    return subprocess.run(
        [str(CLI), "worker", "--burst"],
        env=worker_env(server, host),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


class WorkerRun:
    """``swarmqueue worker`` in a subprocess, its stderr (JSON log lines) in a file."""

    def __init__(self, server: RedisServer, folder: Path) -> None:
        self.stderr = folder / "worker.stderr"
        self.host = unique_host()
        env = worker_env(server, self.host)
        with self.stderr.open("w") as err:
            self.proc = subprocess.Popen(
                [str(CLI), "worker"], env=env, stdout=subprocess.DEVNULL, stderr=err
            )

    def text(self) -> str:
        return self.stderr.read_text()

    def events(self) -> list[dict[str, Any]]:
        """Every stderr line, parsed: each must be one JSON object."""
        return [json.loads(line) for line in self.text().splitlines() if line.strip()]

    def count(self, event: str, process: str) -> int:
        return sum(1 for e in self.events() if e["event"] == event and e.get("process") == process)

    def stop(self) -> int:
        """SIGTERM (a warm shutdown) and the exit code."""
        self.proc.terminate()
        return self.proc.wait(timeout=60)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    srv = RedisServer(tmp_path / "redis").start()
    yield srv
    srv.stop()


@pytest.fixture
def worker(server: RedisServer, tmp_path: Path) -> Iterator[WorkerRun]:
    run = WorkerRun(server, tmp_path)
    yield run
    run.kill()


def worker_started(run: WorkerRun) -> bool:
    return any("Listening on" in e["event"] for e in run.events())


def check_retry_lines(run: WorkerRun, process: str) -> None:
    """Numbered retries with the wait and the error, each in one line."""
    lines = [e for e in run.events() if e["event"] == RETRY and e["process"] == process]
    assert lines, f"no retry line from the {process}"
    for line in lines:
        assert line["level"] == "warning" and line["logger_name"] == "workers.worker"
        assert "Connection refused" in line["error"] and line["retry_in_seconds"] >= 1


def test_worker_rides_out_a_redis_outage(server: RedisServer, worker: WorkerRun) -> None:
    wait_for(lambda: worker_started(worker), timeout=30, what="the worker to start")
    server.stop()
    wait_for(
        lambda: worker.count(RETRY, "worker") >= 3 and worker.count(RETRY, "keeper") >= 3,
        timeout=60,
        what="three retries of the worker and of its keeper",
    )
    server.start()  # same port, no data: like a restarted Redis without persistence
    wait_for(
        lambda: worker.count(BACK, "worker") == 1 and worker.count(BACK, "keeper") == 1,
        timeout=60,
        what="the worker and its keeper to reach Redis again",
    )
    client = redis.Redis.from_url(server.url)
    try:
        # the worker serves its queue: a delivery of a message that is not there is a no-op
        job = delivery_queue(worker.host, client).enqueue(
            DELIVER_JOB, "outage", "0123456789abcdef", worker.host
        )
        wait_for(lambda: job.get_status(refresh=True) == "finished", timeout=60, what="the job")
        # the keeper sweeps: an outbox entry of a message that is gone is dropped
        keys = SwarmKeys("outage")
        client.sadd(keys.host_swarms(worker.host), "outage")
        client.zadd(keys.outbox(worker.host), {"fedcba9876543210": 0})
        wait_for(lambda: client.zcard(keys.outbox(worker.host)) == 0, timeout=30, what="a sweep")
    finally:
        client.close()
    assert worker.stop() == 0

    assert "Traceback" not in worker.text()
    check_retry_lines(worker, "worker")
    check_retry_lines(worker, "keeper")
    for process in ("worker", "keeper"):
        numbers = [
            e["retry"] for e in worker.events() if e["event"] == RETRY and e["process"] == process
        ]
        assert numbers == list(range(1, len(numbers) + 1))  # one line per retry, none twice


def test_worker_stopped_while_redis_is_away_exits_cleanly(
    server: RedisServer, worker: WorkerRun
) -> None:
    wait_for(lambda: worker_started(worker), timeout=30, what="the worker to start")
    server.stop()
    wait_for(lambda: worker.count(RETRY, "worker") >= 1, timeout=60, what="a retry")
    assert worker.stop() == 0
    assert "Traceback" not in worker.text()
    said = [e["event"] for e in worker.events()]
    assert "worker stopped without unregistering, redis unreachable" in said


def test_worker_without_redis_says_so_in_one_line(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis")  # never started: nothing listens on its port
    env = worker_env(server)
    done = subprocess.run(
        [str(CLI), "worker"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 3
    errors = [line for line in done.stderr.splitlines() if line.startswith("swarmqueue:")]
    assert len(errors) == 1 and "cannot reach Redis" in errors[0], done.stderr
    assert "Traceback" not in done.stderr


def test_failed_job_is_logged_in_one_line(server: RedisServer) -> None:
    client = redis.Redis.from_url(server.url)
    host = unique_host()
    try:
        job: Job = delivery_queue(host, client).enqueue(
            DELIVER_JOB, "not a swarm name!", "0123456789abcdef", host
        )
        done = burst_worker(server, host)
        assert done.returncode == 0, done.stderr
        assert job.get_status(refresh=True) == "failed"
        result = job.latest_result()
        assert result is not None and "Traceback" in str(result.exc_string)  # kept in the job
    finally:
        client.close()
    assert "Traceback" not in done.stderr
    failed = [json.loads(line) for line in done.stderr.splitlines() if '"job failed"' in line]
    assert len(failed) == 1
    assert failed[0]["job_id"] == job.id
    assert failed[0]["function"] == DELIVER_JOB
    assert "invalid swarm name" in failed[0]["error"]


class _RunsOnUnpickle:
    """Pickles to a call of ``os.system``: unpickling it runs the command."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return os.system, (self.command,)


def test_the_worker_runs_deliveries_only(server: RedisServer, tmp_path: Path) -> None:
    """Whoever can write the broker cannot run code on the worker's host: a job naming another
    function is refused without running it, and a pickled job (RQ's default format) is never
    unpickled; both fail, the worker goes on and runs a real delivery after them."""
    client = redis.Redis.from_url(server.url)
    host = unique_host()
    by_name, by_pickle = tmp_path / "by-name", tmp_path / "by-pickle"
    try:
        queue = delivery_queue(host, client)
        named = queue.enqueue("os.system", f"touch {by_name}")
        pickled = Queue(queue.name, connection=client).enqueue(  # RQ's default: pickle
            DELIVER_JOB, _RunsOnUnpickle(f"touch {by_pickle}"), "0123456789abcdef", host
        )
        delivery = queue.enqueue(DELIVER_JOB, "refused", "0123456789abcdef", host)
        done = burst_worker(server, host)
        assert done.returncode == 0, done.stderr
        assert not by_name.exists() and not by_pickle.exists()
        assert named.get_status(refresh=True) == "failed"
        assert Job.fetch(pickled.id, connection=client, serializer=JOB_SERIALIZER).get_status(
            refresh=True
        ) == "failed"
        assert delivery.get_status(refresh=True) == "finished"  # a message that is not there
    finally:
        client.close()
    assert "Traceback" not in done.stderr
    refused = [json.loads(line) for line in done.stderr.splitlines() if "foreign job" in line]
    assert [r["function"] for r in refused] == ["os.system"], done.stderr
