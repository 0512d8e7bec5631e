"""The event log: history reads, the length cap, and followers that replay, go live and resume.

Every test runs on both clients (sync, and asyncio through the facade) and both backends.
"""

from __future__ import annotations

import itertools
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
import redis.asyncio
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ConstantBackoff
from redis.retry import Retry

from distributor import Event, TaskQueue, ValidationError
from distributor.settings import Settings
from distributor.store.calls import text
from distributor.tasks import events as event_log
from distributor.tasks.waiting import next_message
from distributor.testing import delete_swarm
from tests.async_facade import BlockingAsyncQueue
from tests.conftest import chain_plan, make_client

Opener = Callable[[], TaskQueue]


def stream_ids(queue: TaskQueue) -> list[str]:
    entries: Any = queue.redis.xrange(queue.keys.events)
    return [text(entry_id) for entry_id, _ in entries]


def run_chain(queue: TaskQueue, n: int, agent: str = "a1") -> None:
    """Claim and complete a chain of n tasks: 2 events per task."""
    for _ in range(n):
        claim = queue.claim_next(agent)
        assert claim is not None
        queue.complete(claim.task_id, agent, claim.token)


@pytest.fixture
def open_queue(
    client_kind: str,
    backend: str,
    backend_url: str,
    fake_server: Any,
    swarm: str,
    test_settings: Settings,
    async_client_factory: Callable[[], redis.asyncio.Redis],
) -> Iterator[Opener]:
    """Opens more clients of the test's swarm, each with its own connections (closed at the end)."""
    opened: list[TaskQueue | BlockingAsyncQueue] = []

    def open_one() -> TaskQueue:
        sync_client = make_client(backend, backend_url, fake_server)
        if client_kind == "sync":
            queue = TaskQueue(sync_client, swarm, settings=test_settings)
            opened.append(queue)
            return queue
        facade = BlockingAsyncQueue(async_client_factory, sync_client, swarm, test_settings)
        opened.append(facade)
        return facade  # type: ignore[return-value]

    yield open_one
    for queue in opened:
        if isinstance(queue, BlockingAsyncQueue):
            queue.close()
        queue.redis.close()


def test_history_records_each_transition_with_its_details(queue: TaskQueue) -> None:
    queue.submit(
        {"tasks": [{"id": "a", "title": "A"}, {"id": "b", "title": "B", "dependencies": ["a"]}]}
    )
    claim = queue.claim_next("agent-1")
    assert claim is not None
    queue.complete("a", "agent-1", claim.token)
    second = queue.claim_next("agent-2")
    assert second is not None
    queue.fail("b", "agent-2", second.token, "tests\nfailed", retry=False)

    events = queue.events()

    assert [(e.type, e.task_id, e.agent_id) for e in events] == [
        ("submitted", "a", None),
        ("submitted", "b", None),
        ("claimed", "a", "agent-1"),
        ("completed", "a", "agent-1"),
        ("claimed", "b", "agent-2"),
        ("failed", "b", "agent-2"),
    ]
    assert [e.id for e in events] == stream_ids(queue)
    assert [events[0].data, events[1].data] == [{"status": "available"}, {"status": "blocked"}]
    assert events[2].data == {"token": "1"}
    assert events[3].unblocked == ["b"]
    final = {"reason": "tests failed", "attempts": "1", "status": "failed", "final": "1"}
    assert events[5].data == final
    assert all(earlier.at <= later.at for earlier, later in itertools.pairwise(events))


def test_since_and_count_page_through_history(
    queue: TaskQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(event_log, "PAGE", 3)  # several pages with a short log
    queue.submit(chain_plan(5))
    run_chain(queue, 5)
    ids = stream_ids(queue)
    assert len(ids) == 15  # one submitted event per task, then claimed + completed each

    assert [e.id for e in queue.events()] == ids
    assert [e.id for e in queue.events(since=ids[3])] == ids[4:]
    assert [e.id for e in queue.events(since=ids[3], count=4)] == ids[4:8]
    assert queue.events(since=ids[-1]) == []
    assert queue.events(since="$") == []
    assert queue.last_event_id() == ids[-1]


def test_plan_logs_one_submitted_event_per_task_and_wakes_once(queue: TaskQueue) -> None:
    pubsub = queue.redis.pubsub()  # type: ignore[no-untyped-call]
    pubsub.ssubscribe(queue.keys.channel)
    confirmed = next_message(pubsub, timeout=5)
    assert confirmed is not None and confirmed["type"] == "ssubscribe"
    plan = chain_plan(300)
    plan["tasks"].append({"id": "solo", "title": "S"})

    queue.submit(plan)

    events = queue.events()
    assert [(e.type, e.task_id) for e in events] == [
        ("submitted", t["id"]) for t in plan["tasks"]
    ]
    assert [e.data for e in events[:2]] == [{"status": "available"}, {"status": "blocked"}]
    assert events[-1].data == {"status": "available"}
    woken = next_message(pubsub, timeout=5)
    assert woken is not None
    assert text(woken["data"]) == f"{events[-1].id} submitted solo"
    assert next_message(pubsub, timeout=0.2) is None  # one wake-up for the whole plan
    pubsub.close()


def test_events_wait_returns_when_one_arrives(queue: TaskQueue) -> None:
    last = queue.last_event_id()
    assert last == "0-0"
    threading.Timer(0.05, lambda: queue.submit(chain_plan(1))).start()

    got = queue.events(since=last, wait=30)

    assert [e.type for e in got] == ["submitted"]


@pytest.mark.parametrize("bad", ["", "abc", "1-2-3", "-1", "1-", "0; DROP"])
def test_invalid_cursor_is_refused(queue: TaskQueue, bad: str) -> None:
    with pytest.raises(ValidationError):
        queue.events(since=bad)
    with pytest.raises(ValidationError):
        next(iter(queue.follow(since=bad)))


def test_stream_is_capped_by_length(redis_client: redis.Redis, swarm: str) -> None:
    queue = TaskQueue(redis_client, swarm, settings=Settings(event_stream_cap=100))
    try:
        queue.submit({"tasks": [{"id": f"t{i}", "title": "T"} for i in range(400)]})
        for _ in range(400):
            assert queue.claim_next("a1") is not None
        # 800 events were appended; MAXLEN ~ trims whole stream nodes, so roughly 100 remain.
        assert queue.redis.xlen(queue.keys.events) < 800
        assert [e.id for e in queue.events()] == stream_ids(queue)
    finally:
        delete_swarm(queue)


def test_follow_replays_then_goes_live_without_gap_or_duplicate(
    queue: TaskQueue, open_queue: Opener
) -> None:
    queue.submit(chain_plan(6))
    run_chain(queue, 3)  # 12 events already in the log
    follower = open_queue()
    seen: list[Event] = []
    caught_up = threading.Event()

    def follow() -> None:
        for event in follower.follow(since="0", timeout=30):
            seen.append(event)
            if len(seen) == 12:
                caught_up.set()
            if len(seen) == 18:
                return

    thread = threading.Thread(target=follow)
    thread.start()
    assert caught_up.wait(30)
    run_chain(queue, 3)  # 6 more, live
    thread.join(30)

    assert [e.id for e in seen] == stream_ids(queue)
    assert seen[-1].type == "completed" and seen[-1].task_id == "t5"


def test_follower_reconnecting_with_its_last_id_sees_each_event_once_in_order(
    queue: TaskQueue, open_queue: Opener
) -> None:
    queue.submit(chain_plan(8))
    run_chain(queue, 2)  # 12 events
    seen: list[Event] = []

    first = open_queue()
    for event in first.follow(since="0", timeout=30):
        seen.append(event)
        if len(seen) == 3:
            break  # disconnect mid-stream, with events still unread
    first.redis.close()  # disconnect (a cluster client has one pool per node)
    if isinstance(first, BlockingAsyncQueue):
        first.close()
    run_chain(queue, 3)  # 6 more while nobody follows

    again = open_queue()
    for event in again.follow(since=seen[-1].id, timeout=30):
        seen.append(event)
        if len(seen) == 18:
            break
    run_chain(queue, 3)  # 6 more, live for a follower that resumed once more
    for event in again.follow(since=seen[-1].id, timeout=30):
        seen.append(event)
        if len(seen) == 24:
            break

    assert len(seen) == 24
    assert [e.id for e in seen] == stream_ids(queue)


def test_follow_from_now_and_idle_timeout(queue: TaskQueue) -> None:
    queue.submit(chain_plan(2))
    assert list(queue.follow(since="$", timeout=0.1)) == []
    assert len(list(queue.follow(since="0", timeout=0.1))) == 2  # a submitted event per task


# -- a follower whose connection drops while it waits (real Redis only) ----------------------
# fakeredis cannot model this: CLIENT KILL does not interrupt a blocked XREAD on a fake
# connection, and afterwards every command on that fake client fails even after redis-py's
# reconnect, so there is no reconnect to observe. Resuming with the last id on a new
# connection is tested above on both backends.


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_follower_survives_its_connection_dropping(
    real_redis_url: str, swarm: str, test_settings: Settings, kind: str
) -> None:
    name = f"follower-{uuid.uuid4().hex[:10]}"
    admin = TaskQueue(redis.Redis.from_url(real_redis_url), swarm, settings=test_settings)
    follower: TaskQueue | BlockingAsyncQueue
    if kind == "sync":
        client = redis.Redis.from_url(
            real_redis_url, client_name=name, retry=Retry(ConstantBackoff(0.1), 5)
        )
        follower = TaskQueue(client, swarm, settings=test_settings)
    else:

        def make() -> redis.asyncio.Redis:
            retry = AsyncRetry(ConstantBackoff(0.1), 5)
            return redis.asyncio.Redis.from_url(real_redis_url, client_name=name, retry=retry)

        follower = BlockingAsyncQueue(
            make, redis.Redis.from_url(real_redis_url), swarm, test_settings
        )
    try:
        admin.submit(chain_plan(4))
        seen: list[Event] = []
        blocked = threading.Event()

        def follow() -> None:
            for event in follower.follow(since="0", timeout=30):
                seen.append(event)
                if len(seen) == 4:
                    blocked.set()  # next: XREAD BLOCK, nothing newer yet
                if len(seen) == 12:
                    return

        thread = threading.Thread(target=follow)
        thread.start()
        assert blocked.wait(30)
        killed = [
            admin.redis.client_kill_filter(_id=entry["id"])
            for entry in admin.redis.client_list()
            if entry.get("name") == name
        ]
        assert sum(killed) >= 1
        run_chain(admin, 4)
        thread.join(30)

        assert [e.id for e in seen] == stream_ids(admin)
    finally:
        if isinstance(follower, BlockingAsyncQueue):
            follower.close()
        follower.redis.close()
        delete_swarm(admin)
        admin.redis.close()
