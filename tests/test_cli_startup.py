"""The CLI starts light (issue 17 item 1): ``--help`` lists every command without importing
their modules, redis-py or the settings; a command that logs nothing never loads structlog;
what they print is unchanged. Start-up times are measured by ``scripts/bench.py --only cli``."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import click
import pytest

from distributor.cli import main
from distributor.cli.summaries import SUMMARIES


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    """``code`` run by a fresh interpreter (what it imports is its own); it must succeed."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done


def python(code: str) -> str:
    return run_python(code).stdout


@pytest.mark.parametrize("width", [20, 45, 60, 80, 120, 200])
def test_every_summary_gives_the_commands_own_help_line(width: int) -> None:
    ctx = click.Context(main)
    names = main.list_commands(ctx)
    assert set(SUMMARIES) == set(names)
    for name in names:
        command = main.get_command(ctx, name)
        assert command is not None
        from_summary = click.Command(name, help=SUMMARIES[name]).get_short_help_str(width)
        assert from_summary == command.get_short_help_str(width), name


def test_help_imports_no_command_redis_or_settings_and_prints_the_same() -> None:
    out = python(
        """
        import json, sys
        from click.testing import CliRunner
        from distributor.cli import main, _MODULES
        lazy = CliRunner().invoke(main, ["--help"], terminal_width=100).output
        loaded = sorted(m for m in ("redis", "pydantic", "pydantic_settings", "structlog",
                                    "distributor.settings", "distributor.tasks.queue",
                                    *_MODULES) if m in sys.modules)
        import click
        ctx = click.Context(main)
        for name in main.list_commands(ctx):
            main.get_command(ctx, name)  # every module loaded: click's own listing
        full = CliRunner().invoke(main, ["--help"], terminal_width=100).output
        print(json.dumps({"loaded": loaded, "same": lazy == full, "help": lazy}))
        """
    )
    result = json.loads(out)
    assert result["loaded"] == []
    assert result["same"]
    assert "  tasks" in result["help"] and "  plan" in result["help"]


def test_a_command_that_logs_nothing_does_not_load_structlog() -> None:
    out = python(
        """
        import sys
        import fakeredis
        from click.testing import CliRunner
        from distributor.cli import main
        from distributor.cli.app import CliContext
        from distributor.settings import Settings
        from distributor.tasks.queue import TaskQueue

        queue = TaskQueue(fakeredis.FakeRedis(), "startup", settings=Settings())
        queue.submit({"tasks": [{"id": "a", "title": "A"}]})
        ctx = CliContext(Settings(swarm="startup"), queue)
        result = CliRunner().invoke(main, ["status"], obj=ctx)
        print(result.output.splitlines()[0], "structlog" in sys.modules)
        """
    )
    assert out.strip() == "swarm startup: 0/1 completed (0.0%) False"


def test_log_lines_still_reach_stderr_when_something_logs() -> None:
    done = run_python(
        "from distributor.log import configure_logging, get_logger\n"
        "log = get_logger('x')\n"
        "configure_logging('INFO', 'json')\n"
        "log.debug('hidden')\n"
        "log.warning('shown', n=1)\n"
    )
    assert done.stdout == ""
    [line] = done.stderr.splitlines()
    record = json.loads(line)
    assert (record["event"], record["n"], record["level"], record["logger_name"]) == (
        "shown",
        1,
        "warning",
        "x",
    )


def test_a_line_below_the_level_does_not_load_structlog_and_later_lines_still_show() -> None:
    done = run_python(
        "import sys\n"
        "from distributor.log import configure_logging, get_logger\n"
        "log = get_logger('x')\n"
        "configure_logging('WARNING', 'json')\n"
        "log.debug('hidden', n=1)\n"
        "log.info('hidden too')\n"
        "print('structlog' in sys.modules)\n"
        "log.error('shown', n=2)\n"
        "log.info('still hidden')\n"
    )
    assert done.stdout == "False\n"
    [line] = done.stderr.splitlines()
    assert json.loads(line)["event"] == "shown"


def test_the_task_commands_module_loads_no_models_settings_machinery_or_rq() -> None:
    """The reply records come with the queue, when a command first talks to Redis; the
    settings never bring pydantic or pydantic-settings (issue 17: start-up)."""
    out = python(
        """
        import json, sys
        import distributor.cli.tasks
        from distributor.cli.app import load_settings
        load_settings(swarm="startup")
        heavy = ("pydantic", "pydantic_settings", "structlog", "rq", "distributor.tasks.models",
                 "distributor.reservations.models", "distributor.tasks.queue")
        print(json.dumps(sorted(m for m in heavy if m in sys.modules)))
        """
    )
    assert json.loads(out) == []


def test_an_agents_task_commands_run_without_pydantic() -> None:
    """Replies are plain records and validation is imported only by the operations that take
    new input (submit, add, reserve), so an agent's heartbeat, status, next and claim never
    load pydantic; their output is what the CLI tests check."""
    out = python(
        """
        import json, sys
        import fakeredis
        from click.testing import CliRunner
        from distributor.cli import main
        from distributor.cli.app import CliContext
        from distributor.settings import Settings
        from distributor.tasks.queue import TaskQueue

        server = fakeredis.FakeServer()
        settings = Settings(swarm="lean")  # announcing, but no agent is registered
        queue = TaskQueue(fakeredis.FakeRedis(server=server), "lean", settings=settings)
        loaded = {"import": "pydantic" in sys.modules}
        exits = {}
        for name, args in {
            "next": ["next", "--agent", "a1"],  # nothing to claim yet
            "claim": ["claim", "nope", "--agent", "a1"],  # refused: not found
            "status": ["status", "--json"],
        }.items():
            ctx = CliContext(settings, queue)
            exits[name] = CliRunner().invoke(main, args, obj=ctx).exit_code
            loaded[name] = "pydantic" in sys.modules
        print(json.dumps({"loaded": loaded, "exits": exits}))
        """
    )
    result = json.loads(out)
    assert result["exits"] == {"next": 1, "claim": 1, "status": 0}
    assert not any(result["loaded"].values()), result["loaded"]


def test_heartbeat_and_done_of_a_held_task_run_without_pydantic() -> None:
    """Set up with pydantic (a submit validates the plan), then make it and every module that
    validates unimportable: the agent's commands still work."""
    out = python(
        """
        import json, sys
        import fakeredis
        from click.testing import CliRunner
        from distributor.cli import main
        from distributor.cli.app import CliContext
        from distributor.settings import Settings
        from distributor.tasks.queue import TaskQueue

        settings = Settings(swarm="lean")  # announcing, but no agent is registered
        queue = TaskQueue(fakeredis.FakeRedis(), "lean", settings=settings)
        queue.submit({"tasks": [{"id": "a", "title": "A"}, {"id": "b", "title": "B"}]})
        validating = ("distributor.tasks.specs", "distributor.validation",
                      "distributor.reservations.requests")
        for m in list(sys.modules):
            if m in validating or m == "pydantic" or m.startswith(("pydantic.", "pydantic_")):
                sys.modules[m] = None  # importing it now raises ImportError
        outputs = []
        for args in (["next", "--agent", "a1", "--json"], ["heartbeat", "--agent", "a1", "a"],
                     ["done", "--agent", "a1", "a"]):
            result = CliRunner().invoke(main, args, obj=CliContext(settings, queue))
            outputs.append([result.exit_code, result.output.split()[:2]])
        print(json.dumps(outputs))
        """
    )
    [claimed, beat, done] = json.loads(out)
    assert claimed[0] == 0 and beat == [0, ["a", "lease"]]
    assert done[0] == 0 and done[1][0] == "completed"


def test_announcing_to_registered_agents_loads_no_pydantic() -> None:
    """Messaging's replies are records too: a claim and a completion announced to a registered
    agent are recorded in its inbox without pydantic (registering it did validate)."""
    out = python(
        """
        import json, sys
        import fakeredis
        from click.testing import CliRunner
        from distributor.cli import main
        from distributor.cli.app import CliContext
        from distributor.messaging.agents import AgentRegistry
        from distributor.messaging.messages import Messenger
        from distributor.settings import Settings
        from distributor.tasks.queue import TaskQueue

        settings = Settings(swarm="told")
        queue = TaskQueue(fakeredis.FakeRedis(), "told", settings=settings)
        queue.submit({"tasks": [{"id": "a", "title": "A"}]})
        AgentRegistry(queue.redis, "told", settings=settings).register(
            "peer", host="elsewhere", pane="%1")
        validating = ("distributor.tasks.specs", "distributor.validation",
                      "distributor.reservations.requests", "distributor.messaging.agents")
        for m in list(sys.modules):
            if m in validating or m == "pydantic" or m.startswith(("pydantic.", "pydantic_")):
                sys.modules[m] = None  # importing it now raises ImportError
        exits = []
        for args in (["next", "--agent", "a1"], ["done", "--agent", "a1", "a"]):
            exits.append(CliRunner().invoke(main, args, obj=CliContext(settings, queue)).exit_code)
        told = Messenger(queue.redis, "told", settings=settings).inbox("peer")
        print(json.dumps({"exits": exits, "told": [e.content for e in told]}))
        """
    )
    result = json.loads(out)
    assert result["exits"] == [0, 0]
    assert result["told"] == [
        "a1 claimed a: A",
        "a1 completed a: A; now available: nothing new",
    ]
