"""The ``swarmqueue`` command group: global options, the shared context, and exit codes.

Exit codes: the table in :mod:`distributor.store.error_lines` (and the README), the same for the
MCP server's tool errors.

The rule between 1 and 2: input that is wrong whatever the swarm holds is 2 (a bad id or field,
a plan with a cycle or an id listed twice, a usage error, a bad setting, config file or state
directory); input that is fine but meets a swarm state that refuses it is 1 (nothing ready, a
claim someone else holds, no token remembered here, a plan naming an id the swarm already has
or a dependency it lacks).

Errors print one line on stderr, never a traceback; click's usage errors too.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from importlib import import_module
from typing import IO, TYPE_CHECKING, Any

import click

from distributor.errors import ConfigError, SwarmQueueError
from distributor.store.exit_codes import (
    EXIT_AUTH_FAILED,
    EXIT_INVALID,
    EXIT_REDIS_ERROR,
    EXIT_REFUSED,
    EXIT_UNREACHABLE,
)

# redis-py, settings, logging and the queue are imported when a command runs, not at import:
# ``--help`` needs none of them (see docs/benchmarks.md, CLI start-up).
if TYPE_CHECKING:
    import redis

    from distributor.planning.announce import Announcer
    from distributor.settings import Settings
    from distributor.tasks.queue import TaskQueue

__all__ = [
    "EXIT_AUTH_FAILED",
    "EXIT_INVALID",
    "EXIT_REDIS_ERROR",
    "EXIT_REFUSED",
    "EXIT_UNREACHABLE",
    "CliContext",
    "CliError",
    "cli_error_for",
    "exit_code_for",
    "main",
]


def exit_code_for(exc: BaseException) -> int | None:
    """The exit code of a library error (see :mod:`distributor.store.error_lines`)."""
    from distributor.store.error_lines import exit_code_for as code_for

    return code_for(exc)


class CliError(click.ClickException):
    """An error shown as one line ``swarmqueue: <message>`` with a chosen exit code.

    The message is made inert and flat first (no escape sequences, line breaks shown as a
    mark): it may quote what a user or another agent typed.
    """

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code  # type: ignore[misc]

    def show(self, file: IO[Any] | None = None) -> None:
        from distributor.messaging.sanitize import strip_controls  # errors only: its regexes

        line = strip_controls(self.format_message())
        click.echo(f"swarmqueue: {line}", file=file or sys.stderr)


# click >= 8.2 raises this usage error to show a group's help when no command is given
_SHOW_HELP = getattr(click.exceptions, "NoArgsIsHelpError", ())


def one_line_usage_error(exc: click.UsageError) -> CliError:
    """A click usage error (missing or unknown option, bad value) as one line, exit 2."""
    message = exc.format_message().removesuffix(".")
    where = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
    return CliError(f"{message[:1].lower()}{message[1:]}{where}", EXIT_INVALID)


class OneLineUsageGroup(click.Group):
    """A click group whose usage errors, its own and its subcommands', print one line."""

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.UsageError as exc:
            if isinstance(exc, _SHOW_HELP):
                raise
            raise one_line_usage_error(exc) from None

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            if isinstance(exc, _SHOW_HELP):
                raise
            raise one_line_usage_error(exc) from None


class SwarmGroup(OneLineUsageGroup):
    """A click group that turns swarmqueue and Redis errors into one line and an exit code.

    ``lazy`` maps a command name to the module whose ``COMMANDS`` list defines it; the module is
    imported only when that command (or the full help) is needed.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy: dict[str, str] = {}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy:
            for command in import_module(self.lazy[cmd_name]).COMMANDS:
                self.add_command(command)
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list of ``--help``, from :mod:`distributor.cli.summaries` for commands not
        loaded yet (the same lines, without importing every command's module)."""
        from distributor.cli.summaries import SUMMARIES

        rows: list[tuple[str, click.Command]] = []
        for name in self.list_commands(ctx):
            if name not in self.commands and name in self.lazy and name in SUMMARIES:
                rows.append((name, click.Command(name, help=SUMMARIES[name])))
                continue
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command))
        if rows:
            limit = formatter.width - 6 - max(len(name) for name, _ in rows)
            with formatter.section("Commands"):
                formatter.write_dl([(name, c.get_short_help_str(limit)) for name, c in rows])

    def invoke(self, ctx: click.Context) -> Any:
        import redis  # every command that reaches Redis has loaded it already

        try:
            return super().invoke(ctx)
        except (SwarmQueueError, redis.RedisError) as exc:
            raise cli_error_for(exc, ctx.obj) from None


def cli_error_for(exc: SwarmQueueError | redis.RedisError, obj: Any) -> CliError:
    """The one line and exit code for ``exc`` (see :mod:`distributor.store.error_lines`)."""
    from distributor.store.error_lines import error_line

    url = obj.settings.redis_url if isinstance(obj, CliContext) else None
    code, message = error_line(exc, url)
    return CliError(message, code)


class CliContext:
    """What every command shares: settings, and a queue connected on first use."""

    def __init__(self, settings: Settings, queue: TaskQueue | None = None) -> None:
        self.settings = settings
        self._queue = queue
        self._announcer: Announcer | None = None

    @property
    def queue(self) -> TaskQueue:
        if self._queue is None:  # its replies are kept long enough to re-run after exit 3
            # A pool, not single_connection: redis-py connects a single-connection client in its
            # constructor, outside the retry budget, so a command started while Redis was out of
            # reach (a cut cable between hosts) failed at once instead of riding the outage out.
            from distributor.tasks.queue import TaskQueue

            cli = {
                "single_connection": False,
                "request_ttl_seconds": self.settings.cli_request_ttl_seconds,
            }
            self._queue = TaskQueue.from_url(settings=self.settings.model_copy(update=cli))
        return self._queue

    def warn_under_replicated(self) -> None:
        """One stderr line when ``min_replicas`` replicas did not acknowledge this command's
        state change in time (it happened; the exit code stays that of the command)."""
        shortfalls = self._queue.shortfalls if self._queue is not None else []
        if shortfalls:
            click.echo(f"swarmqueue: warning: under-replicated: {shortfalls[-1]}", err=True)

    @property
    def announcer(self) -> Announcer:
        """Announces this command's transitions to the agents (failures are only logged)."""
        from distributor.planning.announce import Announcer  # messaging is imported only when used

        if self._announcer is None:
            self._announcer = Announcer.on(self.queue.redis, self.queue.swarm, self.settings)
        return self._announcer

    def announce(self, enabled: bool, send: Callable[[Announcer], object]) -> None:
        """Announce a transition with ``send`` when ``enabled`` (its setting) and some agent is
        registered to hear it. With none there is nobody to tell (the broadcast would refuse
        for want of a recipient), so messaging is not even imported: an agent's command in a
        swarm without registered panes starts as light as ``heartbeat``."""
        if not enabled:
            return
        from redis.exceptions import RedisClusterException, RedisError

        try:
            if not self.queue.redis.exists(self.queue.keys.agents):
                return
        except (RedisError, RedisClusterException):
            pass  # not known: the announcer tries, and logs and counts what fails
        send(self.announcer)


def load_settings(**overrides: Any) -> Settings:
    """Settings from env/toml with command-line overrides; bad values and config files exit 2
    (``InvalidSetting`` and the config file's errors are ``ConfigError``s, one line each)."""
    from distributor.settings import Settings

    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ConfigError as exc:
        raise CliError(str(exc), EXIT_INVALID) from None


@click.group(cls=SwarmGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--redis-url",
    envvar="SWARMQUEUE_REDIS_URL",
    help="Redis to use [env SWARMQUEUE_REDIS_URL; default redis://127.0.0.1:6379/0].",
)
@click.option(
    "--swarm",
    envvar="SWARMQUEUE_SWARM",
    help="Swarm name [env SWARMQUEUE_SWARM; default 'default'].",
)
@click.option(
    "--log-level", envvar="SWARMQUEUE_LOG_LEVEL", help="Log level for stderr logs (default INFO)."
)
@click.version_option(package_name="swarmqueue")
@click.pass_context
def main(
    ctx: click.Context, redis_url: str | None, swarm: str | None, log_level: str | None
) -> None:
    """swarmqueue: a Redis-backed queue that hands a DAG of tasks to AI coding agents.

    Agents pull work with `next`, report with `done` / `fail`; operators watch with
    `status` and `tasks`. Exit codes: 0 ok, 1 refused by the swarm's state, 2 invalid
    input or configuration, 3 Redis unreachable, 4 Redis error, 5 authentication failed.
    """
    from distributor.log import configure_logging
    from distributor.messaging.broker import delivery_url
    from distributor.store.client import check_redis_url
    from distributor.store.keys import check_swarm

    settings = load_settings(redis_url=redis_url, swarm=swarm, log_level=log_level)
    try:
        check_swarm(settings.swarm)
        check_redis_url(settings.redis_url)
        if settings.delivery_redis_url:
            check_redis_url(settings.delivery_redis_url)
        delivery_url(settings)  # a cluster store needs a delivery broker (exit 2 without)
    except ValueError as exc:  # InvalidRedisUrl and DeliveryBrokerRequired are ValueErrors too
        raise CliError(str(exc), EXIT_INVALID) from None
    configure_logging(settings.log_level, settings.log_format)
    if not isinstance(ctx.obj, CliContext):  # tests may pass a prepared context as obj
        ctx.obj = CliContext(settings)
    ctx.call_on_close(ctx.obj.warn_under_replicated)
