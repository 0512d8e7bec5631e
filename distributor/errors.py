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


class ConfigError(ValidationError):
    """A setting, the config file or the state directory is unusable; nothing was done."""


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

    def __init__(self, sender: str, limit: int, retry_after: float) -> None:
        super().__init__(sender, limit, retry_after)
        self.sender = sender
        self.limit = limit
        self.retry_after = retry_after

    def __str__(self) -> str:
        return (
            f"sender {self.sender!r} reached {self.limit} messages per minute; "
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


class MessageNotFound(RefusedError, KeyError):
    """No message with this id is recorded (or it has expired)."""

    def __init__(self, message_id: str) -> None:
        super().__init__(message_id)
        self.message_id = message_id

    def __str__(self) -> str:
        return f"message {self.message_id!r} not found"


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
