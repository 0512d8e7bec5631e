"""End to end: a message that must be acknowledged, typed into real tmux panes, re-delivered to
the recipients that do not acknowledge it (by the workers' sweep, by Redis time), then given up.

Panes run ``tests/pane_reader.py`` on a private tmux server; an RQ ``SimpleWorker`` runs the
delivery jobs and :func:`tests.messaging_support.sweep` is one tick of a worker's keeper thread.
Time moves by the swarm's clock offset (what every script reads besides ``TIME``), so the test
decides when re-deliveries are due instead of sleeping.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from click.testing import CliRunner

from distributor.cli import main
from distributor.cli.app import CliContext
from distributor.messaging.messages import DeliveryStatus
from distributor.tasks.queue import TaskQueue
from tests.messaging_support import Messaging, TmuxLab, pasted, run_worker, sweep, wait_for

pytestmark = pytest.mark.slow

FIRST_DELAY = 30.0  # seconds before the first re-delivery; the second waits 60, the give-up 120
REDELIVERIES = 2


@pytest.fixture
def ms(redis_client: redis.Redis, swarm: str) -> Iterator[Messaging]:
    m = Messaging(
        redis_client,
        swarm,
        ack_redeliveries=REDELIVERIES,
        ack_first_delay_seconds=FIRST_DELAY,
    )
    yield m
    m.close()


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[TmuxLab]:
    lab = TmuxLab(tmp_path)
    yield lab
    lab.close()


def cli(ms: Messaging, *args: str) -> str:
    """Run a command the way an operator does, on the test's swarm; its stdout."""
    obj = CliContext(ms.settings, TaskQueue(ms.client, ms.swarm, settings=ms.settings))
    result = CliRunner().invoke(main, list(args), obj=obj)
    assert result.exit_code == 0, result.output
    return result.stdout


def copies(lab: TmuxLab, panes: list[str], line: str, expected: list[int]) -> list[int]:
    """How many times ``line`` reached each pane (once at least ``expected`` did)."""
    one = pasted(line)
    for pane, n in zip(panes, expected, strict=True):

        def arrived(pane: str = pane, n: int = n) -> bool:
            return lab.received(pane).count(one) >= n

        wait_for(arrived, what=f"{n} in {pane}")
    time.sleep(0.2)  # anything typed by the job that just ran has reached the readers by now
    found = []
    for pane in panes:
        received = lab.received(pane)
        assert received == one * received.count(one), received  # nothing else, nothing partial
        found.append(received.count(one))
    return found


def deliver_due(ms: Messaging) -> None:
    """One sweep (re-deliveries due, lost jobs replaced), then the worker runs the jobs."""
    sweep(ms.client, ms.host, ms.settings, ms.rq)
    run_worker(ms.rq, ms.host)


def test_unacknowledged_recipients_get_it_again_within_the_bound_then_are_given_up(
    ms: Messaging, lab: TmuxLab
) -> None:
    panes = lab.spawn(3)
    agents = ["ann", "bob", "cy"]
    for agent, pane in zip(agents, panes, strict=True):
        ms.registry.register(agent, pane, socket=lab.socket)

    message_id = cli(
        ms, "broadcast", "schema changed: rebase before merging", "--type", "alert",
        "--ack", "--sender", "lead",
    ).strip()  # fmt: skip
    run_worker(ms.rq, ms.host)
    line = ms.messenger.get(message_id).line()
    assert line.endswith(f"rebase before merging (ack: swarmqueue ack {message_id})")
    assert copies(lab, panes, line, [1] * 3) == [1, 1, 1]

    assert "acknowledged by ann" in cli(ms, "ack", message_id, "--agent", "ann")
    deliver_due(ms)  # nothing is due yet
    assert copies(lab, panes, line, [0] * 3) == [1, 1, 1]

    # 1st re-delivery, FIRST_DELAY after the delivery; then the 2nd, twice as late
    for n, wait in enumerate((FIRST_DELAY, 2 * FIRST_DELAY), start=1):
        ms.advance_clock(wait - 10)
        deliver_due(ms)
        assert copies(lab, panes, line, [0] * 3) == [1, n, n]  # not yet
        ms.advance_clock(11)
        deliver_due(ms)
        expected = [1, n + 1, n + 1]
        assert copies(lab, panes, line, expected) == expected
        outcomes = {d.agent_id: d for d in ms.messenger.get(message_id).deliveries}
        assert (outcomes["bob"].status, outcomes["bob"].reminders) == ("delivered", n)

    # the bound is reached: after one more (doubled) wait the two are given up, never typed
    ms.advance_clock(4 * FIRST_DELAY - 10)
    deliver_due(ms)
    assert ms.messenger.get(message_id).counts()["unacknowledged"] == 0  # not yet
    ms.advance_clock(11)
    deliver_due(ms)
    deliver_due(ms)
    assert copies(lab, panes, line, [0] * 3) == [1, 3, 3]

    shown = json.loads(cli(ms, "deliveries", message_id, "--json"))
    shown_outcomes = {d["agent_id"]: d for d in shown["deliveries"]}
    assert shown["requires_ack"] is True
    assert shown_outcomes["ann"]["status"] == "acknowledged" and shown_outcomes["ann"]["acked_at"]
    assert shown_outcomes["ann"]["reminders"] == 0
    for agent in ("bob", "cy"):
        assert shown_outcomes[agent]["status"] == "unacknowledged"
        assert shown_outcomes[agent]["reminders"] == REDELIVERIES
        assert shown_outcomes[agent]["unacked_at"] and shown_outcomes[agent]["acked_at"] is None
    assert {k: v for k, v in shown["counts"].items() if v} == {"acknowledged": 1,
                                                                "unacknowledged": 2}  # fmt: skip
    assert ms.client.zcard(ms.keys.acks) == 0  # nothing left to remind
    assert ms.outbox() == []

    # a late acknowledgement is recorded as such; acknowledging again changes nothing
    late = json.loads(cli(ms, "ack", message_id, "--agent", "bob", "--json"))
    assert (late["already"], late["late"]) == (False, True)
    again = json.loads(cli(ms, "ack", message_id, "--agent", "bob", "--json"))
    assert (again["already"], again["acked_at"]) == (True, late["acked_at"])
    bob = next(d for d in ms.messenger.get(message_id).deliveries if d.agent_id == "bob")
    assert bob.status is DeliveryStatus.ACKNOWLEDGED and bob.late
