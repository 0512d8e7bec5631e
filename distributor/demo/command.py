"""The ``swarmqueue demo`` command."""

from __future__ import annotations

import sys

import click

from distributor.cli.app import EXIT_INVALID, EXIT_REFUSED, CliContext, CliError
from distributor.cli.output import json_option
from distributor.demo.redis_source import REDIS_MODES
from distributor.demo.run import DEFAULT_FEATURE, DemoOptions, run_demo, summary_json
from distributor.demo.summary import summary_lines
from distributor.log import configure_logging


@click.command("demo")
@click.option(
    "--agents", type=click.IntRange(1, 16), default=4, show_default=True, help="Agent panes."
)
@click.option(
    "--redis",
    "redis_mode",
    type=click.Choice(REDIS_MODES),
    default="auto",
    show_default=True,
    help="auto: SWARMQUEUE_REDIS_URL if set, else a private redis-server if installed, else "
    "an embedded fakeredis server. url / server / fakeredis force one of them.",
)
@click.option(
    "--timeout", type=click.FloatRange(min=1), default=120.0, show_default=True,
    help="Give up (exit 1) when the tasks are not finished after this many seconds.",
)  # fmt: skip
@click.option(
    "--attach",
    is_flag=True,
    help="Show the agents' panes live in this terminal (a bottom pane shows progress); you are "
    "detached a few seconds after the last task, then the summary prints. Ctrl-b d detaches "
    "earlier; the demo then goes on here.",
)
@click.option(
    "--work-scale", type=click.FloatRange(min=0, max=10), default=1.0, show_default=True,
    help="Multiply the agents' simulated work time (0.3-1.5 s per task).",
)  # fmt: skip
@click.option("--feature", default=DEFAULT_FEATURE, show_default=True, help="What to build.")
@click.option(
    "--dashboard", is_flag=True,
    help="Serve the web dashboard on 127.0.0.1 while the demo runs and print its URL.",
)  # fmt: skip
@click.option(
    "--dashboard-port", type=click.IntRange(1, 65535), default=8765, show_default=True,
    help="The dashboard's port (with --dashboard).",
)  # fmt: skip
@json_option
@click.pass_obj
def demo(
    obj: CliContext,
    agents: int,
    redis_mode: str,
    timeout: float,
    attach: bool,
    work_scale: float,
    feature: str,
    dashboard: bool,
    dashboard_port: int,
    as_json: bool,
) -> None:
    """Watch a swarm of scripted agents build a feature, end to end, on a fresh swarm.

    Opens a private tmux session with one agent per pane; each agent loops `next --wait`,
    works a moment, `done` (one task fails once and is retried). A delivery worker types every
    announcement into the panes. Ends with each task's agent and times, a check of the
    dependency order, and every pane's delivery outcomes. Everything it starts is stopped at
    the end, also on Ctrl-C; on a shared Redis (SWARMQUEUE_REDIS_URL) its keys are deleted.
    """
    if attach and not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise CliError("--attach needs a terminal", EXIT_INVALID)
    settings = obj.settings
    if "log_level" not in settings.model_fields_set:  # the demo's own output tells the story
        configure_logging("WARNING", settings.log_format)
    configured = settings.redis_url if "redis_url" in settings.model_fields_set else None
    options = DemoOptions(
        agents=agents,
        redis_mode=redis_mode,  # type: ignore[arg-type]
        configured_url=configured,
        timeout=timeout,
        attach=attach,
        work_scale=work_scale,
        feature=feature,
        dashboard_port=dashboard_port if dashboard else None,
    )
    try:
        result = run_demo(options, settings, sys.stderr if as_json else sys.stdout)
    except KeyboardInterrupt:
        raise CliError(
            "demo interrupted; everything it started was stopped", EXIT_REFUSED
        ) from None
    summary = result.summary
    if as_json:
        click.echo(summary_json(summary))
    else:
        click.echo("")
        for line in summary_lines(summary):
            click.echo(line)
    if result.timed_out:
        p = summary.progress
        raise CliError(
            f"demo timed out after {timeout:g}s with {p['completed']}/{p['total']} tasks completed",
            EXIT_REFUSED,
        )
    if not summary.finished:
        raise CliError("demo finished with failed tasks", EXIT_REFUSED)
    if not summary.order.ok:
        raise CliError("demo finished but the dependency order was violated", EXIT_REFUSED)
    pending = sum(r.pending for r in summary.panes)
    if pending:
        raise CliError(f"{pending} announcement deliveries still pending at the end", EXIT_REFUSED)


COMMANDS = [demo]
