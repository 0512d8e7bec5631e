"""The CLI checks ids with the pydantic-free rules of distributor/tasks/ids.py: they refuse
exactly what the models refuse, with the same message, and the CLI changes nothing then."""

from __future__ import annotations

import pytest
import redis
from click.testing import CliRunner

from distributor.cli import main
from distributor.cli.app import CliContext
from distributor.errors import ValidationError
from distributor.tasks import ids, specs
from distributor.tasks.queue import TaskQueue
from tests.conftest import snapshot
from tests.test_models import HOSTILE_IDS

IDS = [
    *HOSTILE_IDS,
    "",
    "a b",
    "tab\tid",
    "\x1b[31mred",
    "../up",
    "a/b",
    "dotted.id",
    "x" * 64,
    "x" * 65,
    "y" * 100,
    "y" * 101,
    "ok_id-1",
    "é",
]


def outcome(check: object, value: str) -> str:
    """``ok`` or the refusal's message."""
    try:
        ids.validated(check, value)  # type: ignore[arg-type]
    except ValidationError as exc:
        return str(exc)
    return "ok"


@pytest.mark.parametrize("value", IDS)
def test_the_models_refuse_the_ids_the_cli_refuses(value: str) -> None:
    by_model = "ok"
    try:
        specs.TaskSpec(id=value, title="t")
    except ValueError:
        by_model = "refused"
    assert by_model == ("ok" if outcome(ids.check_task_id, value) == "ok" else "refused")


@pytest.mark.parametrize("bad", [*HOSTILE_IDS, "", "../up", "a/b", "x" * 65])
def test_agent_commands_refuse_the_ids_the_models_refuse(
    cli_obj: CliContext, sync_queue: TaskQueue, redis_client: redis.Redis, bad: str
) -> None:
    sync_queue.submit({"tasks": [{"id": "a", "title": "A"}]})
    with pytest.raises(ValueError) as refused:
        ids.check_agent_id(bad)
    before = snapshot(redis_client, sync_queue.keys.prefix)
    for args in (
        ["next", "--agent", bad],
        ["done", "a", "--agent", bad, "--token", "1"],
        ["heartbeat", "a", "--agent", bad, "--token", "1"],
        ["done", "a", "--agent", bad],
    ):
        result = CliRunner().invoke(main, args, obj=cli_obj)
        assert result.exit_code == 2, (args, result.output)
        assert result.stderr == f"swarmqueue: {refused.value}\n", args
    assert snapshot(redis_client, sync_queue.keys.prefix) == before
