"""Reply records: keyword construction, immutable, compared by value, dumped as pydantic does."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime

import pytest

from distributor.reservations.models import Reservation
from distributor.tasks.models import Claim, Completion, Event, NextClaim, Task
from distributor.tasks.specs import Plan
from distributor.tasks.status import TaskStatus

AT = datetime(2026, 11, 30, 4, 14, 2, 123000, tzinfo=UTC)


def test_fields_defaults_and_fresh_lists() -> None:
    task = Task(id="a", title="A")
    assert (task.status, task.files, task.max_attempts) == (TaskStatus.BLOCKED, [], 3)
    assert task.files is not Task(id="b", title="B").files  # a list made for each record
    assert Task._fields[:3] == ("id", "title", "description")
    assert NextClaim().holders == [] and not NextClaim().held_up


def test_missing_or_unknown_fields_are_refused() -> None:
    with pytest.raises(TypeError, match="needs 'title'"):
        Task(id="a")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="no field 'colour'"):
        Task(id="a", title="A", colour="red")  # type: ignore[call-arg]


def test_immutable_equal_by_value_and_picklable() -> None:
    task = Task(id="a", title="A", token=3)
    with pytest.raises(AttributeError, match="immutable"):
        task.token = 4  # type: ignore[misc]
    assert task == Task(id="a", title="A", token=3) and task != Task(id="a", title="A")
    assert task != Claim(task=task, token=3)
    event = Event(id="1-0", type="claimed", task_id="a", at=AT, data={"k": "v"})
    assert pickle.loads(pickle.dumps(event)) == event
    assert repr(Claim(task=task, token=3)).startswith("Claim(task=Task(id='a', title='A'")


def test_model_dump_matches_pydantics_json_forms() -> None:
    held = Reservation(id="r1", agent_id="a1", pattern="src/", expires_at=AT)
    task = Task(id="a", title="A", status=TaskStatus.CLAIMED, created_at=AT,
                claimed_at=AT.replace(microsecond=0))  # fmt: skip
    dumped = Completion(task=task, unblocked=["b"], next=Claim(task=task, token=2)).model_dump(
        mode="json", exclude={"unblocked"}
    )
    assert "unblocked" not in dumped
    assert dumped["task"]["status"] == "claimed"
    assert dumped["task"]["created_at"] == "2026-11-30T04:14:02.123000Z"
    assert dumped["task"]["claimed_at"] == "2026-11-30T04:14:02Z"
    assert dumped["next"]["token"] == 2 and dumped["next"]["task"]["id"] == "a"
    assert held.model_dump(mode="json")["expires_at"] == "2026-11-30T04:14:02.123000Z"
    python = task.model_dump()
    assert python["status"] is TaskStatus.CLAIMED and python["created_at"] == AT


def test_a_plan_takes_task_records_and_dumps_and_ignores_their_state() -> None:
    done = Task(id="a", title="A", status=TaskStatus.COMPLETED, token=9, files=["src/x.py"])
    plan = Plan(tasks=[done, {**done.model_dump(mode="json"), "id": "b"}])
    assert [t.id for t in plan.tasks] == ["a", "b"]
    assert plan.tasks[0].files == ["src/x.py"] and not hasattr(plan.tasks[0], "token")


def test_a_delivery_dumps_its_as_field_under_its_stored_name_and_copies() -> None:
    from distributor.messaging.messages import Delivery, DeliveryStatus

    delivery = Delivery(agent_id="a1", host="h", pane="%1", status=DeliveryStatus.DELIVERED,
                        delivered_as="comment", delivered_at=AT)  # fmt: skip
    dumped = delivery.model_dump(mode="json")
    assert dumped["as"] == "comment" and "delivered_as" not in dumped
    assert dumped["status"] == "delivered" and dumped["delivered_at"].endswith(".123000Z")
    later = delivery.model_copy(update={"attempts": 2})
    assert later.attempts == 2 and delivery.attempts == 0 and later.host == "h"
