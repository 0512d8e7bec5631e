"""The exceptions swarmqueue raises, grouped so callers can catch them by meaning.

Every error derives from :class:`SwarmQueueError`. The CLI maps each family to one exit code
(see ``exit_code_for`` in :mod:`distributor.cli.app`); library callers catch the specific class
they can act on and let the rest propagate.
"""

from __future__ import annotations

SHOWN_IDS = 20  # ids an error message names at most, so it stays one readable line


class SwarmQueueError(Exception):
    """Base class of every error raised by swarmqueue."""


class ValidationError(SwarmQueueError, ValueError):
    """Input refused at the boundary (ids, lengths, sizes); nothing was written."""


class RedisUnavailable(SwarmQueueError):
    """Redis could not be reached, even after the client's retries.

    ``request_id`` names the state change that was being sent (``None`` for reads and calls
    without one): it may or may not have been applied, so send it again with this id, once
    Redis answers, to get its one outcome (``settings.request_ttl_seconds`` keep it).
    """

    def __init__(self, message: str, request_id: str | None = None) -> None:
        super().__init__(message)
        self.request_id = request_id


class InvalidRedisUrl(ValidationError):
    """The Redis URL is malformed or asks for something unsupported; nothing was connected.

    The message shows the URL with its credentials redacted.
    """


class AuthenticationFailed(RedisUnavailable):
    """Redis answered but refused the credentials (wrong or missing user or password).

    Retrying cannot fix it, so it is raised at once; it is a :class:`RedisUnavailable` so that
    callers giving up on an unusable Redis catch it too.
    """


class TlsHandshakeFailed(RedisUnavailable):
    """The TLS handshake of a ``rediss://`` connection failed or timed out (e.g. a plain port).

    Raised after the connect timeout at most, without retries.
    """


class RefusedError(SwarmQueueError):
    """The request was valid but the swarm's state refuses it."""


class TaskNotFound(RefusedError, KeyError):
    """No task with this id exists in the swarm."""

    def __init__(self, task_id: str) -> None:
        super().__init__(task_id)
        self.task_id = task_id

    def __str__(self) -> str:
        return f"task {self.task_id!r} not found"


class StaleClaim(RefusedError):
    """The caller no longer holds the claim (wrong agent, old token, lease reclaimed)."""

    def __init__(self, task_id: str, detail: str = "") -> None:
        super().__init__(task_id, detail)
        self.task_id = task_id
        self.detail = detail

    def __str__(self) -> str:
        extra = f": {self.detail}" if self.detail else ""
        return f"claim on task {self.task_id!r} is stale{extra}"


class InvalidTransition(RefusedError):
    """The task is in a status from which this operation is not allowed."""

    def __init__(self, task_id: str, status: str, operation: str) -> None:
        super().__init__(task_id, status, operation)
        self.task_id = task_id
        self.status = status
        self.operation = operation

    def __str__(self) -> str:
        return f"cannot {self.operation} task {self.task_id!r}: it is {self.status}"


class RequestIdReused(ValidationError):
    """A request id that already answered a different request (another operation, or the same
    one with other arguments: another plan, another agent's claim); nothing was done.

    A request id names one request: sending that request again replays its stored reply, so a
    lost reply is answered once; anything else needs a fresh id.
    """

    def __init__(self, request_id: str, operation: str) -> None:
        super().__init__(request_id, operation)
        self.request_id = request_id
        self.operation = operation

    def __str__(self) -> str:
        return (
            f"request id {self.request_id!r} was already used for a different request; "
            f"this {self.operation} was not done (use a new request id)"
        )


class PlanError(RefusedError):
    """A plan was refused as a whole; nothing of it was written.

    ``in_itself`` is True when the plan is wrong whatever the swarm holds (a cycle, an id
    listed twice): the CLI calls that invalid input (exit 2). False when the plan only conflicts
    with the swarm (an id it already has, a dependency it lacks): a refusal by state (exit 1).
    """

    in_itself = False


class DuplicateTask(PlanError):
    """A task id already exists in the swarm (:class:`DuplicateInPlan`: twice in the plan)."""

    def __init__(self, task_ids: list[str]) -> None:
        super().__init__(task_ids)
        self.task_ids = task_ids

    def __str__(self) -> str:
        return f"task id(s) already in the swarm: {_listed(self.task_ids)}"


class UnknownDependency(PlanError):
    """A task depends on an id that is neither in the plan nor in the swarm."""

    def __init__(self, task_id: str, dependency: str) -> None:
        super().__init__(task_id, dependency)
        self.task_id = task_id
        self.dependency = dependency

    def __str__(self) -> str:
        return f"task {self.task_id!r} depends on unknown task {self.dependency!r}"


class DependencyCycle(PlanError):
    """The plan's dependencies form a cycle (``[a, b, a]``; ``[a, a]``: a depends on itself)."""

    in_itself = True

    def __init__(self, cycle: list[str]) -> None:
        super().__init__(cycle)
        self.cycle = cycle

    def __str__(self) -> str:
        if len(self.cycle) == 2 and self.cycle[0] == self.cycle[1]:
            return f"dependency cycle: {self.cycle[0]} -> {self.cycle[0]} (depends on itself)"
        return f"dependency cycle: {_listed(self.cycle, ' -> ')}"


class DuplicateInPlan(DuplicateTask):
    """A task id appears more than once in the plan itself."""

    in_itself = True

    def __str__(self) -> str:
        return f"task id(s) listed twice in the plan: {_listed(self.task_ids)}"


class WouldCreateCycle(DependencyCycle):
    """An added task would close a cycle through tasks already in the swarm (``add`` with
    ``blocks`` and ``depends_on``); nothing was written. A refusal by the swarm's state (exit 1),
    unlike a plan whose own dependencies form a cycle."""

    in_itself = False


class CannotBlockTask(InvalidTransition):
    """``add --blocks`` named a task that can no longer wait for new work: claimed, in progress
    or completed; nothing was written."""

    def __init__(self, task_id: str, status: str, agent_id: str | None = None) -> None:
        super().__init__(task_id, status, "block")
        self.agent_id = agent_id

    def __str__(self) -> str:
        held = f" by {self.agent_id}" if self.agent_id and self.status != "completed" else ""
        return (
            f"task {self.task_id!r} cannot wait for a new task: it is {self.status}{held} "
            "(only a task not yet claimed can be blocked)"
        )


class UnknownLinkedTask(PlanError):
    """An added task names, as ``discovered_from``, ``related`` or ``blocks``, a task the swarm
    does not have; nothing was written."""

    def __init__(self, link: str, task_id: str) -> None:
        super().__init__(link, task_id)
        self.link = link
        self.task_id = task_id

    def __str__(self) -> str:
        return f"{self.link} names unknown task {self.task_id!r}"


class ConfigError(ValidationError):
    """A setting, the config file or the state directory is unusable; nothing was done."""


class InvalidSetting(ConfigError):
    """A setting has a value of the wrong type or out of its range (``setting`` names it).

    The message never quotes the value (it may be a secret), except where a setting's own
    check names the bad entry (a log level, a program pattern), cut short.
    """

    def __init__(self, setting: str, reason: str) -> None:
        super().__init__(f"invalid setting {setting}: {reason}")
        self.setting = setting
        self.reason = reason


class DeliveryBrokerRequired(ConfigError):
    """The delivery queues (RQ) have no usable Redis: the store is a Redis Cluster and
    ``SWARMQUEUE_DELIVERY_REDIS_URL`` is unset, or that URL names a cluster (RQ is not
    cluster-safe). Exit 2 in the CLI; nothing was done."""


def _listed(ids: list[str], sep: str = ", ", limit: int = SHOWN_IDS) -> str:
    """``ids`` joined for one line of output: the first ``limit``, then how many more."""
    if len(ids) <= limit:
        return sep.join(ids)
    return f"{sep.join(ids[:limit])}{sep}... and {len(ids) - limit} more"


# -- messaging: agents, broadcasts, tmux delivery ------------------------------------------------


class RateLimitExceeded(RefusedError):
    """The sender used up its messages for the current window; nothing was recorded."""

    def __init__(
        self, sender: str, limit: int, retry_after: float, window_seconds: float = 60.0
    ) -> None:
        super().__init__(sender, limit, retry_after)
        self.sender = sender
        self.limit = limit
        self.retry_after = retry_after
        self.window_seconds = window_seconds

    def __str__(self) -> str:
        per = "minute" if self.window_seconds == 60 else f"{self.window_seconds:g}s"
        return (
            f"sender {self.sender!r} reached {self.limit} messages per {per}; "
            f"retry in {self.retry_after:.1f}s"
        )


class AgentNotFoundError(RefusedError, KeyError):
    """No registered agent has this id, or no agent is active to receive a broadcast."""

    def __init__(self, agent_ids: list[str], detail: str = "") -> None:
        super().__init__(agent_ids, detail)
        self.agent_ids = agent_ids
        self.detail = detail

    def __str__(self) -> str:
        if self.detail:
            return self.detail
        return f"unknown agent(s): {', '.join(self.agent_ids)}"


class PaneNotRegistered(AgentNotFoundError):
    """No agent (or more than one) is registered for the tmux pane a command runs in, so it
    cannot tell who is sending or acknowledging."""

    def __init__(self, pane: str, host: str, candidates: list[str] | None = None) -> None:
        self.pane = pane
        self.host = host
        self.candidates = candidates or []
        if self.candidates:
            detail = (
                f"several agents are registered for pane {pane} on host {host}: "
                f"{', '.join(self.candidates)}; name one with --sender/--agent"
            )
        else:
            detail = (
                f"no agent is registered for pane {pane} on host {host}; run "
                "'swarmqueue agents register --agent ID' in the pane, or pass --sender/--agent"
            )
        super().__init__(self.candidates, detail)


class NotARecipient(RefusedError):
    """An agent tried to acknowledge a message that was not sent to it; nothing changed."""

    def __init__(self, message_id: str, agent_id: str) -> None:
        super().__init__(message_id, agent_id)
        self.message_id = message_id
        self.agent_id = agent_id

    def __str__(self) -> str:
        return (
            f"message {self.message_id!r} was not sent to {self.agent_id!r}; "
            "nothing to acknowledge"
        )


class MessageNotFound(RefusedError, KeyError):
    """No message with this id is recorded (or it has expired)."""

    def __init__(self, message_id: str) -> None:
        super().__init__(message_id)
        self.message_id = message_id

    def __str__(self) -> str:
        return f"message {self.message_id!r} not found"


class ForeignJobRefused(RefusedError):
    """A job in a delivery queue names a function other than the delivery: not run."""

    def __init__(self, job_id: str, function: str) -> None:
        super().__init__(job_id, function)
        self.job_id = job_id
        self.function = function

    def __str__(self) -> str:
        return f"job {self.job_id!r} names {self.function[:200]!r}, not the delivery: refused"


class TmuxError(SwarmQueueError):
    """tmux refused or failed a command. ``kind`` names the failure for delivery records."""

    kind = "tmux_error"

    def __init__(self, detail: str, target: str = "") -> None:
        super().__init__(detail, target)
        self.detail = detail
        self.target = target
        self.partial_output = ""  # what tmux printed before failing (see workers.tmux)

    def __str__(self) -> str:
        return self.detail


class PaneNotFound(TmuxError):
    """The pane does not exist (closed, or its tmux server restarted)."""

    kind = "pane_not_found"


class TmuxTimeout(TmuxError):
    """tmux did not answer within the configured timeout."""

    kind = "timeout"


class TmuxServerNotFound(TmuxError):
    """No tmux server answers at the socket, or the tmux binary is not installed."""

    kind = "server_not_found"


class PaneProgramChanged(TmuxError):
    """The pane's foreground program changed after it was checked; nothing was typed."""

    kind = "foreground_changed"


class DemoError(SwarmQueueError):
    """The demo could not start (no tmux, Redis did not come up) or did not finish in time."""


# -- file reservations ---------------------------------------------------------------------------


class FilesReserved(RefusedError):
    """Paths asked for are held by other agents' live reservations; nothing was reserved.

    ``holders`` lists them (:class:`distributor.reservations.models.Reservation`).
    """

    def __init__(self, holders: list[object], what: str = "cannot reserve") -> None:
        super().__init__(holders, what)
        self.holders = holders
        self.what = what

    def __str__(self) -> str:
        return f"{self.what}: {held_by(self.holders)}"


def held_by(holders: list[object], limit: int = 5) -> str:
    """Holders in one line: ``src/a.py held by agent-2 (exclusive, until 12:00:03Z, task t1)``."""
    parts = []
    for h in holders[:limit]:
        task = getattr(h, "task_id", None)
        until = getattr(h, "expires_at", None)
        shown_until = until.strftime("%H:%M:%SZ") if until is not None else "?"
        parts.append(
            f"{getattr(h, 'pattern', '?')} held by {getattr(h, 'agent_id', '?')}"
            f" ({'shared' if getattr(h, 'shared', False) else 'exclusive'}, until {shown_until}"
            + (f", task {task}" if task else "")
            + ")"
        )
    more = f"; and {len(holders) - limit} more" if len(holders) > limit else ""
    return "; ".join(parts) + more
