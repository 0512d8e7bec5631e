"""Task commands: what agents (next, claim, start, heartbeat, done, fail, release) and
operators (tasks, task, status, retry, cancel, reap) run."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import TYPE_CHECKING

import click
import redis

from distributor.cli import tokens
from distributor.cli.app import EXIT_INVALID, EXIT_REFUSED, CliContext, CliError
from distributor.cli.output import emit, json_option, when
from distributor.errors import ConfigError, RedisUnavailable, SwarmQueueError, held_by
from distributor.log import get_logger
from distributor.reservations import index
from distributor.reservations.index import Holdings
from distributor.tasks.ids import derived_request_id, new_request_id
from distributor.tasks.status import ACTIVE_STATUSES, TaskStatus

# Replies are read by attribute (a model or a lean reply type alike); the models load with the
# queue, when a command first talks to Redis, not when this module is imported.
if TYPE_CHECKING:
    from distributor.reservations.models import Reservation
    from distributor.tasks.models import Claim, Task

log = get_logger(__name__)

agent_option = click.option("--agent", "agent_id", required=True, help="Your agent id.")
token_option = click.option(
    "--token", type=int, help="Fencing token from next/claim (default: the one remembered here)."
)
lease_option = click.option("--lease", type=float, help="Lease in seconds for this claim.")
request_option = click.option(
    "--request-id",
    help="Idempotency key; reuse it when retrying (default: one kept here until Redis answers,"
    " so re-running the same command after exit 3 replays its outcome).",
)


@contextlib.contextmanager
def pending(
    obj: CliContext, owner: str | None, given: str | None, *request: object
) -> Iterator[str]:
    """The request id this command sends: ``--request-id`` when given, else the one an earlier,
    unanswered run of the very same command left (``request``: its name and the arguments that
    define it), else a new one, kept in the state directory before it is sent.

    The kept id is dropped once Redis answered (done, or refused: exit 1 or 2) and stays when
    Redis was unreachable (exit 3), so running the same command again replays its outcome.
    The exit-3 line names the id either way. Where no id can be kept, the command still runs
    with a fresh one (a warning says so).
    """
    swarm, kept = obj.settings.swarm, given is None
    request_id = given
    if request_id is None:
        try:
            request_id = tokens.pending_request(swarm, owner, request)
        except ConfigError as exc:
            log.warning("request_id_not_kept", error=str(exc))
            request_id, kept = new_request_id(), False
    try:
        yield request_id
    except RedisUnavailable as exc:  # unanswered: keep the id for a re-run, and name it
        exc.request_id = request_id
        raise
    except (SwarmQueueError, redis.ResponseError, click.ClickException):
        if kept:
            _settle(swarm, owner, request)
        raise
    if kept:
        _settle(swarm, owner, request)


def _settle(swarm: str, owner: str | None, request: tuple[object, ...]) -> None:
    """Drop a pending request id; failing to costs only a logged warning (a re-run would
    replay the answer it already had)."""
    try:
        tokens.settle_request(swarm, owner, request)
    except ConfigError as exc:
        log.warning("request_id_not_dropped", error=str(exc))


def _token(obj: CliContext, agent_id: str, task_id: str, token: int | None) -> int:
    if token is not None:
        return token
    remembered = tokens.recall(obj.settings.swarm, agent_id, task_id)
    if remembered is None:  # a refusal by state: this host holds no claim of the agent on it
        raise CliError(
            f"no token remembered for agent {agent_id!r} and task {task_id!r}; pass --token",
            EXIT_REFUSED,
        )
    return remembered


def _took(obj: CliContext, claim: Claim, finished: str | None = None) -> dict[str, object]:
    """Remember and announce a claim this command made; its JSON form (task + token).

    ``finished`` names a completed task whose token is dropped in the same write. When the
    token cannot be kept (the state directory broke after ``check_writable``), the claim is
    released again, so no task stays held by an agent that could not finish it.
    """
    task = claim.task
    assert task.agent_id is not None
    try:
        tokens.remember(obj.settings.swarm, task.agent_id, task.id, claim.token, finished)
    except ConfigError as exc:
        raise _given_back(obj, claim, exc) from None
    obj.announce(obj.settings.announce_claims, lambda announcer: announcer.claimed(task))
    return {**task.model_dump(mode="json"), "token": claim.token}


def _given_back(obj: CliContext, claim: Claim, exc: ConfigError) -> CliError:
    """Release a claim whose token could not be kept; the one-line error says what happened.

    ``release`` returns the task to ``available`` without counting the attempt. Should that
    fail too, the error line carries the token, so the claim is never held silently.
    """
    task_id, agent_id = claim.task.id, claim.task.agent_id
    assert agent_id is not None
    try:
        obj.queue.release(task_id, agent_id, claim.token)
    except (SwarmQueueError, redis.RedisError) as release_error:
        return CliError(
            f"{exc}; task {task_id!r} is still claimed (token {claim.token}) and could not be "
            f"released ({release_error.__class__.__name__}): pass --token {claim.token}",
            EXIT_INVALID,
        )
    return CliError(f"{exc}; task {task_id!r} was claimed and released again", EXIT_INVALID)


def _forget(obj: CliContext, agent_id: str, task_id: str) -> None:
    """Drop a token that no longer counts. The operation is already done, and a stale token is
    refused anyway, so a state directory that fails here only costs a logged warning."""
    try:
        tokens.forget(obj.settings.swarm, agent_id, task_id)
    except ConfigError as exc:
        log.warning("token_not_forgotten", task_id=task_id, agent_id=agent_id, error=str(exc))


def _claim_lines(claim: Claim) -> list[str]:
    task = claim.task
    return [
        f"{task.id}\t(token {claim.token}, lease until {when(task.lease_expires_at)})",
        f"  {task.title}",
        *([f"  files: {', '.join(task.files)}"] if task.files else []),
        *([f"  {line}" for line in task.description.splitlines()] if task.description else []),
    ]


def _claim_out(obj: CliContext, claim: Claim, as_json: bool) -> None:
    emit(as_json, _took(obj, claim), _claim_lines(claim))


@click.command("next")
@agent_option
@lease_option
@click.option(
    "--wait", type=float, help="Wait up to SECONDS for a task to become ready (no polling)."
)
@request_option
@json_option
@click.pass_obj
def next_task(
    obj: CliContext,
    agent_id: str,
    lease: float | None,
    wait: float | None,
    request_id: str | None,
    as_json: bool,
) -> None:
    """Claim the best ready task (exit 1 when none is ready, or none became ready in --wait)."""
    tokens.check_writable(obj.settings.swarm, agent_id)
    with pending(obj, agent_id, request_id, "next", lease) as rid:
        if wait:
            claim = obj.queue.claim_next(agent_id, lease=lease, request_id=rid, wait=wait)
            if claim is None:
                held = {
                    r.id: r
                    for holders in obj.queue.held_up().values()
                    for r in holders
                    if r.agent_id != agent_id
                }
                why = (
                    f": ready tasks wait for files: {held_by(list(held.values()))}" if held else ""
                )
                raise CliError(f"no task became ready within {wait:g}s{why}", EXIT_REFUSED)
        else:
            outcome = obj.queue.next_claim(agent_id, lease=lease, request_id=rid)
            claim = outcome.claim
            if claim is None and outcome.held_up:
                raise CliError(
                    f"no task is ready for {agent_id}: {len(outcome.skipped)} ready task(s)"
                    f" wait for files: {held_by(list(outcome.holders))}",
                    EXIT_REFUSED,
                )
            if claim is None:
                raise CliError("no task is ready", EXIT_REFUSED)
        _claim_out(obj, claim, as_json)


@click.command("claim")
@click.argument("task_id")
@agent_option
@lease_option
@request_option
@json_option
@click.pass_obj
def claim(
    obj: CliContext,
    task_id: str,
    agent_id: str,
    lease: float | None,
    request_id: str | None,
    as_json: bool,
) -> None:
    """Claim TASK_ID (exit 1 with the reason when refused)."""
    tokens.check_writable(obj.settings.swarm, agent_id)
    with pending(obj, agent_id, request_id, "claim", task_id, lease) as rid:
        result = obj.queue.claim(task_id, agent_id, lease=lease, request_id=rid)
        if result.claim is None:
            why = shown_status(result.task) if result.task and result.reason == "waiting" else None
            if result.reason == "reserved":
                why = f"its files are reserved: {held_by(list(result.holders))}"
            raise CliError(f"task {task_id!r} not claimed: {why or result.reason}", EXIT_REFUSED)
        _claim_out(obj, result.claim, as_json)


@click.command("done")
@click.argument("task_id")
@agent_option
@token_option
@click.option(
    "--next",
    "take_next",
    is_flag=True,
    help="Also claim your next task in the same step (printed after the completion).",
)
@click.option(
    "--wait",
    type=float,
    help="With --next: when nothing is ready, wait up to this many seconds for a task.",
)
@lease_option
@request_option
@json_option
@click.pass_obj
def done(
    obj: CliContext,
    task_id: str,
    agent_id: str,
    token: int | None,
    take_next: bool,
    wait: float | None,
    lease: float | None,
    request_id: str | None,
    as_json: bool,
) -> None:
    """Mark TASK_ID completed; prints the tasks it made available (and, with --next, your
    next claim: `--json` gives {"completed": ..., "next": task with token, or null})."""
    if wait is not None and not take_next:
        raise CliError("--wait goes with --next", EXIT_INVALID)
    if take_next:
        tokens.check_writable(obj.settings.swarm, agent_id)
    held = _token(obj, agent_id, task_id, token)
    with pending(obj, agent_id, request_id, "done", task_id, held, take_next, lease) as rid:
        _done(obj, task_id, agent_id, held, take_next, wait, lease, rid, as_json)


def _done(
    obj: CliContext,
    task_id: str,
    agent_id: str,
    token: int,
    take_next: bool,
    wait: float | None,
    lease: float | None,
    request_id: str,
    as_json: bool,
) -> None:
    """``done``'s work under its request id; the claim a ``--wait`` makes afterwards has an id
    derived from it, so a re-run replays that claim as well."""
    completion = obj.queue.complete(
        task_id, agent_id, token, claim_next=take_next, lease=lease, request_id=request_id
    )
    obj.announce(
        obj.settings.announce_completions, lambda announcer: announcer.completed(completion)
    )
    unblocked = ", ".join(completion.unblocked) or "none"
    lines = [f"completed {task_id}; now available: {unblocked}"]
    if not take_next:
        _forget(obj, agent_id, task_id)
        emit(as_json, completion, lines)
        return
    claim = completion.next
    if claim is None and wait:
        then = derived_request_id(request_id, "next")
        claim = obj.queue.claim_next(agent_id, lease=lease, wait=wait, request_id=then)
    if claim is None:
        _forget(obj, agent_id, task_id)
    completed = completion.model_dump(mode="json", exclude={"next"})
    try:
        taken = _took(obj, claim, finished=task_id) if claim is not None else None
    except CliError:  # the completion stands: show it, then the one-line error
        emit(as_json, {"completed": completed, "next": None}, [*lines, "next: released again"])
        raise
    lines += ["next:", *_claim_lines(claim)] if claim is not None else ["next: no task is ready"]
    emit(as_json, {"completed": completed, "next": taken}, lines)


@click.command("start")
@click.argument("task_id")
@agent_option
@token_option
@lease_option
@request_option
@json_option
@click.pass_obj
def start(
    obj: CliContext,
    task_id: str,
    agent_id: str,
    token: int | None,
    lease: float | None,
    request_id: str | None,
    as_json: bool,
) -> None:
    """Mark a held TASK_ID in progress (renews the lease)."""
    held = _token(obj, agent_id, task_id, token)
    with pending(obj, agent_id, request_id, "start", task_id, held, lease) as rid:
        task = obj.queue.start(task_id, agent_id, held, lease=lease, request_id=rid)
    emit(as_json, task, f"{task_id} in progress, lease until {when(task.lease_expires_at)}")


@click.command("heartbeat")
@click.argument("task_id")
@agent_option
@token_option
@lease_option
@json_option
@click.pass_obj
def heartbeat(
    obj: CliContext,
    task_id: str,
    agent_id: str,
    token: int | None,
    lease: float | None,
    as_json: bool,
) -> None:
    """Renew the lease of a held TASK_ID (exit 1 if the claim was lost)."""
    task = obj.queue.heartbeat(
        task_id, agent_id, _token(obj, agent_id, task_id, token), lease=lease
    )
    emit(as_json, task, f"{task_id} lease until {when(task.lease_expires_at)}")


@click.command("fail")
@click.argument("task_id")
@agent_option
@token_option
@click.option("--reason", required=True, help="What went wrong (one line).")
@click.option("--no-retry", is_flag=True, help="Give up now instead of retrying after a backoff.")
@request_option
@json_option
@click.pass_obj
def fail(
    obj: CliContext,
    task_id: str,
    agent_id: str,
    token: int | None,
    reason: str,
    no_retry: bool,
    request_id: str | None,
    as_json: bool,
) -> None:
    """Report a held TASK_ID as failed; it is retried while attempts remain."""
    held = _token(obj, agent_id, task_id, token)
    with pending(obj, agent_id, request_id, "fail", task_id, held, reason, not no_retry) as rid:
        outcome = obj.queue.fail(
            task_id, agent_id, held, reason, retry=not no_retry, request_id=rid
        )
        _forget(obj, agent_id, task_id)
    line = (
        f"{task_id} failed; waiting until {when(outcome.retry_at)}, then available again"
        if outcome.will_retry
        else f"{task_id} failed for good after {outcome.task.attempts} attempt(s)"
    )
    emit(as_json, outcome, line)


@click.command("release")
@click.argument("task_id")
@agent_option
@token_option
@request_option
@json_option
@click.pass_obj
def release(
    obj: CliContext,
    task_id: str,
    agent_id: str,
    token: int | None,
    request_id: str | None,
    as_json: bool,
) -> None:
    """Hand a held TASK_ID back unfinished (not counted as a failure)."""
    held = _token(obj, agent_id, task_id, token)
    with pending(obj, agent_id, request_id, "release", task_id, held) as rid:
        task = obj.queue.release(task_id, agent_id, held, request_id=rid)
        _forget(obj, agent_id, task_id)
    emit(as_json, task, f"{task_id} released; it is {task.status.value}")


@click.command("retry")
@click.argument("task_id")
@json_option
@click.pass_obj
def retry(obj: CliContext, task_id: str, as_json: bool) -> None:
    """Operator: give a failed TASK_ID a fresh start."""
    task = obj.queue.retry(task_id)
    emit(as_json, task, f"{task_id} retried; it is {task.status.value}")


@click.command("cancel")
@click.argument("task_id")
@click.option("--reason", default="cancelled by operator", show_default=True)
@json_option
@click.pass_obj
def cancel(obj: CliContext, task_id: str, reason: str, as_json: bool) -> None:
    """Operator: stop an unfinished TASK_ID (it becomes failed until retried)."""
    task = obj.queue.cancel(task_id, reason)
    emit(as_json, task, f"{task_id} cancelled")


@click.command("reap")
@json_option
@click.pass_obj
def reap(obj: CliContext, as_json: bool) -> None:
    """Operator: return every task whose lease expired to the queue."""
    expired = obj.queue.reap()
    emit(as_json, {"expired": expired}, f"recovered {expired} expired claim(s)")


def shown_status(task: Task) -> str:
    """A task's status for people: ``waiting`` says until when (its retry time)."""
    if task.status.value == TaskStatus.WAITING:  # by value: a model's or a lean reply's status
        return f"waiting until {when(task.retry_at)}"
    return task.status.value


def _row(task: Task) -> str:
    return f"{task.id}\t{shown_status(task)}\t{task.agent_id or '-'}\t{task.attempts}\t{task.title}"


PAGE_SIZE = 50  # a screen of rows
STREAM_CHUNK = 500  # tasks read per round trip by --limit 0


@click.command("tasks")
@click.option(
    "--status", type=click.Choice([s.value for s in TaskStatus]), help="Only this status."
)
@click.option(
    "--limit", type=click.IntRange(min=0), default=PAGE_SIZE, show_default=True,
    help="Tasks per page; 0 lists every task (streamed as it is read).",
)  # fmt: skip
@click.option("--after", metavar="TASK_ID", help="Start after this task (the last of a page).")
@json_option
@click.pass_obj
def tasks_cmd(
    obj: CliContext, status: str | None, limit: int, after: str | None, as_json: bool
) -> None:
    """List tasks in submission order, a page at a time (--after the last id for the next).

    Text: a header, then one row per task; when more follow, stderr names the next
    --after. --json: a JSON array of the page's tasks (all of them with --limit 0), the
    same task objects as `task --json` without file states; an empty array is past the end.
    """
    if limit:
        found, more = obj.queue.page(status, after, limit)
        emit(as_json, found, ["ID\tSTATUS\tAGENT\tATTEMPTS\tTITLE", *(_row(t) for t in found)])
        if more and found:
            click.echo(f"swarmqueue: more tasks: --after {found[-1].id} (or --limit 0)", err=True)
        return
    click.echo("[" if as_json else "ID\tSTATUS\tAGENT\tATTEMPTS\tTITLE", nl=not as_json)
    first, more = True, True
    while more:
        found, more = obj.queue.page(status, after, STREAM_CHUNK)
        for t in found:
            if as_json:
                sep = "" if first else ", "
                click.echo(sep + json.dumps(t.model_dump(mode="json"), sort_keys=True), nl=False)
            else:
                click.echo(_row(t))
            first = False
        after = found[-1].id if found else after
    if as_json:
        click.echo("]")


@click.command("task")
@click.argument("task_id")
@json_option
@click.pass_obj
def task_cmd(obj: CliContext, task_id: str, as_json: bool) -> None:
    """Show one task with its state."""
    t = obj.queue.get(task_id)
    lines = [
        f"{t.id}: {t.title}",
        f"  status {shown_status(t)}, agent {t.agent_id or '-'}, "
        f"attempt {t.attempts}/{t.max_attempts}",
        f"  depends on: {', '.join(t.dependencies) or '-'}"
        + (f" (unmet: {', '.join(t.unmet_dependencies)})" if t.unmet_dependencies else ""),
        f"  created {when(t.created_at)}, claimed {when(t.claimed_at)}, "
        f"completed {when(t.completed_at)}",
    ]
    if t.discovered_from or t.related:
        related = ", ".join(t.related) or "-"
        lines.append(f"  discovered from: {t.discovered_from or '-'}, related: {related}")
    if t.last_error:
        lines.append(f"  last error: {t.last_error}")
    states = file_states(Holdings(obj.queue.reservations()), t) if t.files or t.shared_files else []
    lines += [f"  file {line}" for line in file_lines(t, states)]
    data = {**t.model_dump(mode="json"), "file_states": states_json(states)}
    emit(as_json, data, lines)


@click.command("status")
@json_option
@click.pass_obj
def status(obj: CliContext, as_json: bool) -> None:
    """Progress of the swarm: counts per status, and which failed tasks block others."""
    p = obj.queue.progress()
    held = obj.queue.held_up()
    p["waiting_on_reservations"] = len(held)
    lines = [
        f"swarm {obj.settings.swarm}: {p['completed']}/{p['total']} completed "
        f"({p['completion_pct']}%)",
        "  " + ", ".join(f"{s.value} {p[s.value]}" for s in TaskStatus),
    ]
    for failed, waiting in p["blocked_by_failed"].items():
        lines.append(f"  failed {failed} blocks: {', '.join(waiting)}")
    if held:
        shown = ", ".join(sorted(held)[:20]) + (" ..." if len(held) > 20 else "")
        lines.append(f"  {len(held)} available task(s) wait only on reserved files: {shown}")
    emit(as_json, p, lines)


FileStates = list[tuple[str, bool, list["Reservation"]]]


def file_states(holdings: Holdings, t: Task) -> FileStates:
    """Each of the task's files and who, besides its own claim, keeps it (empty: free)."""
    return index.file_states(holdings, t.files, t.shared_files, t.agent_id, t.id)


def file_lines(t: Task, states: FileStates) -> list[str]:
    """A task's files for people: ``src/a.py (exclusive): free`` or who holds it."""
    lines = []
    for pattern, shared, holders in states:
        mode = "shared" if shared else "exclusive"
        if holders:
            state = f"held: {held_by(list(holders))}"
        elif t.agent_id and t.status.value in ACTIVE_STATUSES:
            state = f"reserved by its claim ({t.agent_id})"
        else:
            state = "free"
        lines.append(f"{pattern} ({mode}): {state}")
    return lines


def states_json(states: FileStates) -> list[dict[str, object]]:
    return [
        {
            "pattern": p,
            "shared": s,
            "free": not h,
            "holders": [r.model_dump(mode="json") for r in h],
        }
        for p, s, h in states
    ]


COMMANDS = [
    next_task,
    claim,
    done,
    start,
    heartbeat,
    fail,
    release,
    retry,
    cancel,
    reap,
    tasks_cmd,
    task_cmd,
    status,
]
