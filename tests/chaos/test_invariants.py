"""The chaos suite's own parts find what they must: every invariant check reports its kind of
violation and stays quiet on a clean run, and the proxy loses replies of commands that ran.

These run in the default suite (no ``chaos`` marker): a checker that could not see a violation
would let every chaos scenario pass.
"""

from __future__ import annotations

import socket
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis

from distributor import TaskQueue
from distributor.messaging.messages import (
    Delivery,
    DeliveryStatus,
    FailureReason,
    Message,
    MessageType,
)
from tests.chaos.invariants import (
    PASTE_END,
    Ack,
    Recipient,
    delivery_violations,
    read_acks,
    task_graph_violations,
)
from tests.chaos.proxy import DroppingProxy
from tests.redis_server import AofRedis, RedisServer

DIAMOND = {"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"]}


def submit(queue: TaskQueue, deps: dict[str, list[str]]) -> None:
    queue.submit(
        {"tasks": [{"id": t, "title": t.upper(), "dependencies": d} for t, d in deps.items()]}
    )


def work_through(queue: TaskQueue, agent: str = "ann") -> list[Ack]:
    """Complete every task in claim order; the acknowledgements an agent would write."""
    acks = []
    while (claim := queue.claim_next(agent)) is not None:
        queue.complete(claim.task.id, agent, claim.token)
        acks.append(Ack(agent, claim.task.id, claim.token))
    return acks


def test_a_clean_run_has_no_violations(sync_queue: TaskQueue) -> None:
    submit(sync_queue, DIAMOND)
    acks = work_through(sync_queue)
    assert task_graph_violations(sync_queue, DIAMOND, acks) == []


def test_lost_stuck_and_twice_acknowledged_tasks_are_found(sync_queue: TaskQueue) -> None:
    submit(sync_queue, DIAMOND)
    first = sync_queue.claim_next("ann")
    assert first is not None and first.task.id == "a"
    sync_queue.complete("a", "ann", first.token)
    held = sync_queue.claim_next("bob")  # b (submitted before c), left claimed
    assert held is not None and held.task.id == "b"
    acks = [Ack("ann", "a", first.token), Ack("bob", "a", first.token)]
    assert task_graph_violations(sync_queue, {**DIAMOND, "e": []}, acks) == [
        "task b not completed: claimed (agent bob, attempts 1)",
        "task c not completed: available (agent None, attempts 0)",
        "task d not completed: blocked (agent None, attempts 0)",
        "task e lost: not in the swarm",
        "task a acknowledged 2 times: ann (token 1), bob (token 1)",
        "task a acknowledged by bob, but the log says ann completed it",
        "1 task(s) left blocked (stuck)",
        "1 task(s) left available (stuck)",
        "1 task(s) left claimed (stuck)",
        "counts say 1 completed of 5 submitted",
        "1 task(s) still in the ready index (stuck)",
        "1 task(s) still in the claimed index (stuck)",
    ]


def test_a_completion_nobody_heard_of_is_found_unless_its_agent_was_killed(
    sync_queue: TaskQueue,
) -> None:
    submit(sync_queue, DIAMOND)
    acks = work_through(sync_queue)
    silent = [ack for ack in acks if ack.task_id != "c"]
    lost = "task c completed by ann, which was never killed but never heard of it"
    assert any(v.startswith(lost) for v in task_graph_violations(sync_queue, DIAMOND, silent))
    assert task_graph_violations(sync_queue, DIAMOND, silent, killed={"ann"}) == []
    stale = [Ack("ann", "c", 99) if ack.task_id == "c" else ack for ack in acks]
    assert task_graph_violations(sync_queue, DIAMOND, stale) == [
        "task c acknowledged with token 99; it was completed under token 1"
    ]


def test_work_done_before_a_dependency_is_found(sync_queue: TaskQueue) -> None:
    submit(sync_queue, {"x": [], "y": []})
    acks = [*work_through(sync_queue, "ann")]
    order = [ack.task_id for ack in acks]
    later, earlier = order[1], order[0]
    # Told that the first task done depends on the second: it was claimed and completed early.
    found = task_graph_violations(sync_queue, {earlier: [later], later: []}, acks)
    assert len(found) == 2
    assert all(v.startswith(f"task {earlier} ") for v in found)
    assert {v.split()[2] for v in found} == {"claimed", "completed"}
    assert all(f"before its dependency {later} was completed" in v for v in found)


def test_acknowledgements_are_read_per_agent(tmp_path: Path) -> None:
    (tmp_path / "api-agent-1.acks").write_text("t0001 3\nt0002 1\n")
    (tmp_path / "cli-agent-2.acks").write_text("t0003 2\n")
    assert read_acks(tmp_path) == [
        Ack("api-agent-1", "t0001", 3),
        Ack("api-agent-1", "t0002", 1),
        Ack("cli-agent-2", "t0003", 2),
    ]


PEOPLE = [Recipient("ann", "%1", True), Recipient("bob", "%2", True), Recipient("cy", "%3", False)]


def message(message_id: str, **statuses: Outcome) -> Message:
    return Message(
        id=message_id,
        sender="chaos",
        type=MessageType.INFO,
        content="m",
        at=datetime.now(UTC),
        hosts=["h"],
        deliveries=[
            Delivery(agent_id=agent, host="h", pane="%0", status=status, reason=reason)
            for agent, (status, reason) in statuses.items()
        ],
    )


def typed(*contents: str) -> bytes:
    return b"".join(b"\x1b[200~[chaos][t][INFO]: " + c.encode() + PASTE_END for c in contents)


Outcome = tuple[DeliveryStatus, FailureReason | None]
DELIVERED: Outcome = (DeliveryStatus.DELIVERED, None)
PENDING: Outcome = (DeliveryStatus.PENDING, None)
REFUSED: Outcome = (DeliveryStatus.FAILED, "not_an_agent")


def test_true_outcomes_of_messages_typed_once_have_no_violations() -> None:
    outcomes = {"m1": message("m1", ann=DELIVERED, bob=DELIVERED, cy=REFUSED)}
    received = {"%1": typed("hello-1"), "%2": typed("hello-1"), "%3": b""}
    assert delivery_violations({"m1": "hello-1"}, outcomes, PEOPLE, received) == []


def test_untrue_twice_typed_pending_and_lost_messages_are_found() -> None:
    sent = {"m1": "one", "m2": "two", "m3": "three"}
    outcomes = {
        "m1": message("m1", ann=DELIVERED, bob=DELIVERED, cy=(DeliveryStatus.FAILED, "timeout")),
        "m2": message("m2", ann=PENDING, bob=(DeliveryStatus.FAILED, "timeout"), cy=REFUSED),
    }
    received = {
        "%1": typed("one", "one", "two"),
        "%2": b"\x1b[200~[chaos][t][INFO]: two",  # cut before its end and Enter
        "%3": typed("one"),
    }
    assert delivery_violations(sent, outcomes, PEOPLE, received) == [
        "message m1 to ann (pane %1): typed 2 times",
        "message m1 to bob (pane %2): recorded delivered, but the pane never got it",
        "message m1 to cy (pane %3): recorded failed (timeout), but the pane got it 1 time(s)",
        "message m2 to ann (pane %1): still pending, not final (the pane got it 1 time(s))",
        "message m2 to bob (pane %2): typed 1 time(s) without its end/Enter",
        "message m2 to bob (pane %2): recorded failed (timeout), but the pane got it 1 time(s)",
        "message m3 lost: no record of it",
    ]
    outcomes["m3"] = message("m3", ann=(DeliveryStatus.FAILED, "timeout"), bob=DELIVERED)
    received["%2"] += typed("three")
    found = delivery_violations({"m3": "three"}, outcomes, PEOPLE, received)
    assert found == [
        "message m3: no outcome for cy",
        "message m3 to ann (pane %1): lost, recorded failed (timeout: None) though the pane"
        " takes messages",
    ]


@pytest.mark.slow
def test_the_proxy_runs_commands_whose_replies_it_drops(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis").start()
    client = redis.Redis.from_url(server.url)
    try:
        with_replies = DroppingProxy(server.port, 0.0, seed=1).start()
        try:
            assert redis.Redis.from_url(with_replies.url, retry=None).incr("n") == 1
        finally:
            with_replies.close()
        assert with_replies.stats.dropped == 0 and with_replies.stats.replies >= 1
        without = DroppingProxy(server.port, 1.0, seed=1).start()
        try:
            with socket.create_connection(("127.0.0.1", without.port), timeout=5) as raw:
                raw.sendall(b"INCR n\r\n")
                assert raw.recv(100) == b""  # closed, no reply
        finally:
            without.close()
        assert without.stats.dropped == 1
        assert client.get("n") == b"2"  # the command ran all the same
    finally:
        client.close()
        server.stop()


@pytest.mark.slow
def test_a_torn_aof_is_cut_before_the_script_it_tore(tmp_path: Path) -> None:
    """A kill in the middle of writing a script's effects: the restart repairs the AOF so that
    none of the script is applied, and a write acknowledged after it survives the next kill."""
    server = AofRedis(tmp_path / "redis").start()
    try:
        with redis.Redis.from_url(server.url) as client:
            client.set("before", "0")
            client.eval("redis.call('SET', 'a', '1'); redis.call('SET', 'b', '2')", 0)
        server.kill()
        incr = next((server.folder / "appendonlydir").glob("*.incr.aof"))
        size = incr.stat().st_size
        with incr.open("r+b") as aof:
            aof.truncate(size - 16)  # inside "SET b 2": the block's EXEC and more are gone
        server.start()
        assert server.repairs == 1
        with redis.Redis.from_url(server.url) as client:
            assert client.mget("before", "a", "b") == [b"0", None, None]
            client.set("after", "1")
        server.kill()
        server.start()
        assert server.repairs == 1
        with redis.Redis.from_url(server.url) as client:
            assert client.mget("before", "a", "b", "after") == [b"0", None, None, b"1"]
    finally:
        server.stop()
