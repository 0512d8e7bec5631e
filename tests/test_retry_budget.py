"""Requests ride out a Redis restart: one request id across the client's retries, one outcome.

The first tests drive the executor's retry loop with a stand-in for Redis; the rest run a
private redis-server with ``--appendfsync always`` behind :class:`~tests.lossy_proxy.LossyProxy`,
which lets a ``complete(claim_next=True)`` (or a ``submit``) reach Redis, loses its reply and
kills the server: the client cannot know whether its request was applied. The server comes back
(with its AOF) while the client retries, or only after the client gave up; either way the
request is applied once and its one outcome reaches the caller.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from distributor import AsyncTaskQueue, RedisUnavailable, Settings, TaskQueue
from distributor.errors import AuthenticationFailed
from distributor.store.calls import (
    Command,
    RetryBudget,
    ScriptCall,
    perform_async,
    perform_sync,
    retriable,
)
from distributor.tasks.models import Completion
from tests.lossy_proxy import LossyProxy
from tests.private_redis import one_line_error, run_cli, start_cli
from tests.redis_server import AofRedis

PLAN = {"tasks": [{"id": "t0", "title": "first"}, {"id": "t1", "title": "second"}]}
DOWN_FOR = 1.5  # seconds the server stays down when it comes back within the budget


# -- the retry loop, against a stand-in for Redis ----------------------------------------------


class Flaky:
    """Fails ``failures`` times with a connection error, then answers; counts the calls."""

    def __init__(self, failures: int, error: Exception | None = None) -> None:
        self.failures = failures
        self.error = error or redis.ConnectionError("connection refused (simulated)")
        self.calls = 0

    def __call__(self, call: Any) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return "reply"

    async def aio(self, call: Any) -> str:
        return self(call)


WITH_ID = ScriptCall("complete", [], [], request_id="rid-1")
WITHOUT_ID = ScriptCall("cancel", [], [])


def test_what_is_sent_again() -> None:
    assert retriable(WITH_ID)
    assert retriable(Command(("HGETALL", "k")))  # reads
    assert retriable(ScriptCall("heartbeat", [], [], repeatable=True))
    assert not retriable(WITHOUT_ID)  # applied twice if its reply was lost


def test_a_request_is_sent_again_until_redis_answers() -> None:
    flaky = Flaky(failures=4)
    assert perform_sync(WITH_ID, flaky, RetryBudget(5)) == "reply"
    assert flaky.calls == 5


def test_a_script_without_request_id_is_not_sent_again() -> None:
    flaky = Flaky(failures=1)
    with pytest.raises(RedisUnavailable) as info:
        perform_sync(WITHOUT_ID, flaky, RetryBudget(5))
    assert flaky.calls == 1 and info.value.request_id is None


def test_after_the_budget_the_error_names_the_request_id() -> None:
    flaky = Flaky(failures=10**6)
    started = time.monotonic()
    with pytest.raises(RedisUnavailable) as info:
        perform_sync(WITH_ID, flaky, RetryBudget(0.5))
    took = time.monotonic() - started
    assert info.value.request_id == "rid-1"
    assert "request id rid-1" in str(info.value) and f"({flaky.calls} attempts)" in str(info.value)
    assert 0.5 <= took < 2 and 3 <= flaky.calls < 20  # backoff, not a busy loop


def test_refused_credentials_are_not_retried() -> None:
    flaky = Flaky(failures=10**6, error=redis.AuthenticationError("WRONGPASS"))
    with pytest.raises(AuthenticationFailed):
        perform_sync(WITH_ID, flaky, RetryBudget(5))
    assert flaky.calls == 1


def test_pauses_back_off_and_end_with_the_budget() -> None:
    now = [0.0]
    pauses = []
    for pause in RetryBudget(30, first=0.05, cap=2).pauses(lambda: now[0]):
        pauses.append(pause)
        now[0] += pause
    assert 0.025 <= pauses[0] <= 0.05 and max(pauses) <= 2
    assert sum(pauses) == pytest.approx(30)
    steps = itertools.pairwise(pauses[:-1])  # the last pause is what was left
    assert all(b >= a / 2 for a, b in steps)
    assert 15 < len(pauses) < 40


def test_the_asyncio_retry_never_blocks_the_event_loop() -> None:
    async def body() -> tuple[int, int]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        flaky = Flaky(failures=6)
        task = asyncio.create_task(ticker())
        await perform_async(WITH_ID, flaky.aio, RetryBudget(10))
        task.cancel()
        return ticks, flaky.calls

    ticks, calls = asyncio.run(body())
    assert calls == 7
    assert ticks >= 20  # the loop ran all along the ~1.5 s of pauses


# -- a real server that loses a reply and restarts ---------------------------------------------


@pytest.fixture
def server(tmp_path: Path) -> Iterator[AofRedis]:
    s = AofRedis(tmp_path / "redis")
    s.start()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture
def proxy(server: AofRedis) -> Iterator[LossyProxy]:
    p = LossyProxy(server.port)
    yield p
    p.close()


def crash_then(server: AofRedis, restart_after: float | None) -> Callable[[], None]:
    """Crash the server now; restart it ``restart_after`` seconds later (None: the test does)."""

    def crash() -> None:
        server.kill()
        if restart_after is not None:
            timer = threading.Timer(restart_after, server.start)
            timer.start()

    return crash


def settings(budget: float) -> Settings:
    return Settings(swarm="restart", retry_budget_seconds=budget, single_connection=True)


def claimed(queue: TaskQueue) -> tuple[Any, str]:
    claim = queue.claim("t0", "a").claim
    assert claim is not None
    return claim, queue.keys.prefix


def applied_once(queue: TaskQueue, done: Completion) -> None:
    """t0 completed once and t1 claimed once, by ``a`` with token 1, as ``done`` says."""
    assert done.task.id == "t0" and done.task.status.value == "completed"
    assert done.next is not None and (done.next.task.id, done.next.token) == ("t1", 1)
    assert done.next.task.title == "second"  # re-read from the task on a replay
    types = [(e.type, e.task_id) for e in queue.events()]
    assert types.count(("completed", "t0")) == 1 and types.count(("claimed", "t1")) == 1
    assert queue.workload() == {"a": ["t1"]}
    progress = queue.progress()
    assert (progress["completed"], progress["claimed"]) == (1, 1)


def test_complete_and_claim_next_rides_out_a_restart(
    server: AofRedis, proxy: LossyProxy
) -> None:
    queue = TaskQueue.from_url(proxy.url, settings=settings(budget=20))
    queue.submit(PLAN)
    claim, _ = claimed(queue)
    proxy.lose_next_reply(crash_then(server, DOWN_FOR))
    started = time.monotonic()
    done = queue.complete("t0", "a", claim.token, claim_next=True)
    assert proxy.lost == 1 and time.monotonic() - started >= DOWN_FOR
    applied_once(queue, done)
    queue.redis.close()


def test_async_complete_and_claim_next_rides_out_a_restart(
    server: AofRedis, proxy: LossyProxy
) -> None:
    async def body() -> Completion:
        async with AsyncTaskQueue.from_url(proxy.url, settings=settings(budget=20)) as aq:
            await aq.submit(PLAN)
            claim = (await aq.claim("t0", "a")).claim
            assert claim is not None
            proxy.lose_next_reply(crash_then(server, DOWN_FOR))
            return await aq.complete("t0", "a", claim.token, claim_next=True)

    done = asyncio.run(body())
    assert proxy.lost == 1
    check = TaskQueue.from_url(server.url, settings=settings(budget=0))
    applied_once(check, done)
    check.redis.close()


def test_an_outage_longer_than_the_budget_raises_with_the_request_id(
    server: AofRedis, proxy: LossyProxy
) -> None:
    queue = TaskQueue.from_url(proxy.url, settings=settings(budget=1))
    queue.submit(PLAN)
    claim, prefix = claimed(queue)
    proxy.lose_next_reply(crash_then(server, None))
    with pytest.raises(RedisUnavailable) as info:
        queue.complete("t0", "a", claim.token, claim_next=True)
    rid = info.value.request_id
    assert rid and f"request id {rid}" in str(info.value)
    server.start()  # back, with the completion and its stored reply from the AOF
    assert queue.redis.exists(f"{prefix}req:{rid}")
    again = queue.complete("t0", "a", claim.token, claim_next=True, request_id=rid)
    applied_once(queue, again)
    queue.redis.close()


def test_async_outage_longer_than_the_budget_raises_with_the_request_id(
    server: AofRedis, proxy: LossyProxy
) -> None:
    async def body() -> Completion:
        async with AsyncTaskQueue.from_url(proxy.url, settings=settings(budget=1)) as aq:
            await aq.submit(PLAN)
            claim = (await aq.claim("t0", "a")).claim
            assert claim is not None
            proxy.lose_next_reply(crash_then(server, None))
            with pytest.raises(RedisUnavailable) as info:
                await aq.complete("t0", "a", claim.token, claim_next=True)
            assert info.value.request_id
            await asyncio.to_thread(server.start)
            return await aq.complete(
                "t0", "a", claim.token, claim_next=True, request_id=info.value.request_id
            )

    done = asyncio.run(body())
    check = TaskQueue.from_url(server.url, settings=settings(budget=0))
    applied_once(check, done)
    check.redis.close()


def test_submit_lost_and_retried_after_the_budget_adds_the_plan_once(
    server: AofRedis, proxy: LossyProxy
) -> None:
    queue = TaskQueue.from_url(proxy.url, settings=settings(budget=1))
    queue.ping()
    proxy.lose_next_reply(crash_then(server, None))
    with pytest.raises(RedisUnavailable) as info:
        queue.submit(PLAN)
    server.start()
    assert queue.submit(PLAN, request_id=info.value.request_id) == ["t0", "t1"]  # no DuplicateTask
    assert queue.progress()["total"] == 2
    assert [e.type for e in queue.events()] == ["submitted", "submitted"]
    queue.redis.close()


def test_submit_rides_out_a_restart(server: AofRedis, proxy: LossyProxy) -> None:
    queue = TaskQueue.from_url(proxy.url, settings=settings(budget=20))
    queue.ping()
    proxy.lose_next_reply(crash_then(server, DOWN_FOR))
    assert queue.submit(PLAN) == ["t0", "t1"]
    assert queue.progress()["total"] == 2 and proxy.lost == 1
    queue.redis.close()


def test_claim_next_waiting_rides_out_a_restart(server: AofRedis) -> None:
    """A waiter's channel breaks when Redis restarts: it listens again and still gets the task
    that became ready after the restart."""
    queue = TaskQueue.from_url(server.url, settings=settings(budget=20))
    other = TaskQueue.from_url(server.url, settings=settings(budget=20))
    queue.ping()
    got: list[Any] = []
    waiter = threading.Thread(target=lambda: got.append(queue.claim_next("a", wait=30)))
    waiter.start()
    time.sleep(0.5)
    server.kill()
    time.sleep(DOWN_FOR)
    server.start()
    other.submit(PLAN)  # rides out the moment the server needs to accept connections
    waiter.join(timeout=30)
    assert got and got[0] is not None and got[0].task.id == "t0"
    queue.redis.close()
    other.redis.close()


# -- the CLI: exit 3, then the same command again ----------------------------------------------


def test_cli_done_next_re_run_after_exit_3_replays_the_claim(
    server: AofRedis, proxy: LossyProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``done --next`` reached Redis, the reply was lost and Redis stayed down past the budget
    (exit 3). Run again once Redis is back, the same command prints the task it claimed."""
    monkeypatch.setenv("SWARMQUEUE_RETRY_BUDGET_SECONDS", "1")
    cli = ["--redis-url", proxy.url, "--swarm", "restart"]
    queue = TaskQueue.from_url(server.url, settings=settings(budget=0))
    queue.submit(PLAN)
    taken, _ = run_cli(*cli, "claim", "t0", "--agent", "a")
    assert taken.returncode == 0, taken.stderr

    proxy.lose_next_reply(crash_then(server, None))
    lost, _ = run_cli(*cli, "done", "t0", "--agent", "a", "--next", "--json")
    assert lost.returncode == 3 and lost.stdout == ""
    line = one_line_error(lost.stderr)
    rid = line.split("request id ")[1].split(":")[0]
    assert f"pass --request-id {rid}" in line and proxy.lost == 1

    server.start()
    again, _ = run_cli(*cli, "done", "t0", "--agent", "a", "--next", "--json")
    assert again.returncode == 0, again.stderr
    out = json.loads(again.stdout)
    assert out["completed"]["task"]["id"] == "t0"
    assert (out["next"]["id"], out["next"]["token"], out["next"]["agent_id"]) == ("t1", 1, "a")
    types = [(e.type, e.task_id) for e in queue.events()]
    assert types.count(("completed", "t0")) == 1 and types.count(("claimed", "t1")) == 1
    assert queue.redis.exists(f"{queue.keys.prefix}req:{rid}")  # the reply replayed was its own
    finished, _ = run_cli(*cli, "done", "t1", "--agent", "a")  # the token of t1 was kept
    assert finished.returncode == 0, finished.stderr
    queue.redis.close()


def test_cli_started_while_redis_is_out_of_reach_rides_the_outage_out(
    server: AofRedis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A command started while Redis cannot be reached (restarting, or the cable to its host
    cut) keeps trying within the budget, as one already under way does, and does its work once
    Redis answers. It exited 3 at once while the CLI's client connected in its constructor,
    outside the budget (found by tests/test_hosts.py)."""
    monkeypatch.setenv("SWARMQUEUE_RETRY_BUDGET_SECONDS", "20")
    cli = ["--redis-url", server.url, "--swarm", "restart"]
    queue = TaskQueue.from_url(server.url, settings=settings(budget=0))
    queue.submit(PLAN)
    queue.redis.close()
    taken, _ = run_cli(*cli, "claim", "t0", "--agent", "a")
    assert taken.returncode == 0, taken.stderr

    server.stop()
    done = start_cli(*cli, "done", "t0", "--agent", "a", "--json")
    time.sleep(3.0)  # the command has started and found nothing listening
    server.start()
    out, err = done.communicate(timeout=60)
    assert done.returncode == 0, err
    assert json.loads(out)["task"]["status"] == "completed"
    queue = TaskQueue.from_url(server.url, settings=settings(budget=0))
    assert [(e.type, e.task_id) for e in queue.events()].count(("completed", "t0")) == 1
    queue.redis.close()


def test_broadcast_rides_out_a_restart_and_names_its_message_past_the_budget(
    server: AofRedis, proxy: LossyProxy
) -> None:
    from distributor.messaging.agents import AgentRegistry
    from distributor.messaging.messages import Messenger

    AgentRegistry.from_url(server.url, settings=settings(budget=0)).register("bob", "%1")
    messenger = Messenger.from_url(proxy.url, settings=settings(budget=20))
    proxy.lose_next_reply(crash_then(server, DOWN_FOR))
    first = messenger.broadcast("rides out a restart", sender="lead")
    assert proxy.lost == 1
    assert [e.message_id for e in messenger.inbox("bob")] == [first]

    short = Messenger.from_url(proxy.url, settings=settings(budget=1))
    proxy.lose_next_reply(crash_then(server, None))
    with pytest.raises(RedisUnavailable) as info:
        short.broadcast("past the budget", sender="lead")
    message_id = info.value.request_id
    assert message_id
    server.start()  # the message was recorded before the reply was lost
    again = short.broadcast("past the budget", sender="lead", message_id=message_id)
    assert again == message_id
    assert [e.message_id for e in messenger.inbox("bob")] == [first, message_id]
    for client in (messenger, short):
        client.redis.close()
