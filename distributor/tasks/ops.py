"""The task graph's operations, written once: argument packing, script call and reply parsing.

Each method returns an :data:`~distributor.store.calls.Op` generator; ``TaskQueue`` drives it
synchronously and ``AsyncTaskQueue`` with ``await``. Reads (``get``, ``progress``...) live in
:mod:`distributor.tasks.queries`.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from distributor.errors import (
    DuplicateTask,
    FilesReserved,
    InvalidTransition,
    RequestIdReused,
    StaleClaim,
    TaskNotFound,
    UnknownDependency,
    ValidationError,
)
from distributor.records import built
from distributor.reservations.models import Reservation, from_script, script_entries
from distributor.settings import Settings
from distributor.store import codec
from distributor.store.calls import Arg, Op, ScriptCall
from distributor.store.keys import SwarmKeys
from distributor.tasks import discovery
from distributor.tasks.hashes import (
    plan_payload,
    task_from_hash,
    task_from_reply,
)
from distributor.tasks.ids import check_agent_id, check_request_id, check_task_id, validated
from distributor.tasks.models import (
    MAX_LEASE_SECONDS,
    Claim,
    ClaimRefusal,
    ClaimResult,
    Completion,
    FailOutcome,
    NextClaim,
    Task,
    ms_to_datetime,
)

if TYPE_CHECKING:
    from distributor.tasks.specs import Plan

MAX_REASON = 2_000
# how errors name an operation, where it differs
_OPERATION_NAMES = {"submit_plan": "submit", "add_task": "add"}
_REPEATABLE = frozenset({"heartbeat", "reap"})  # running twice does no harm
def request_digest(operation: str, args: tuple[Arg, ...]) -> str:
    """What a request id is bound to: a digest of the operation and the arguments that define it.

    The scripts store it before the reply and compare it on replay (``lua/include/common.lua``).
    Each part is length-prefixed, so two argument lists never hash the same text. Eight bytes
    (16 hex characters, all the stored reply grows by) are plenty: only requests sent under one
    id are compared, and crafting another request with the same digest takes ~2^64 tries.
    """
    h = hashlib.blake2b(digest_size=8)
    for part in (operation, *args):
        raw = part if isinstance(part, bytes) else str(part).encode()
        h.update(b"%d:" % len(raw))
        h.update(raw)
    return h.hexdigest()


def lease_ms(lease_seconds: float | None) -> str:
    """A per-call lease as the scripts take it ('' = the task's own)."""
    if lease_seconds is None:
        return ""
    if not 0 < lease_seconds <= MAX_LEASE_SECONDS:
        raise ValidationError(f"lease must be between 0 and {MAX_LEASE_SECONDS} seconds")
    return str(max(1, round(lease_seconds * 1000)))


def clean_reason(reason: str) -> str:
    """A failure reason as stored: one line, control characters replaced, length capped."""
    flat = "".join(ch if ch.isprintable() else " " for ch in reason).strip()
    return flat[:MAX_REASON] or "unspecified"


def _claim_of(raw: Any) -> Claim:
    """The claim of a task a script just granted (its hash, token included)."""
    task = task_from_reply(raw)
    return built(Claim, {"task": task, "token": task.token})


class Operations:
    """The state changes of one swarm, as generators of Redis calls."""

    def __init__(self, keys: SwarmKeys, settings: Settings) -> None:
        self.keys = keys
        self.settings = settings
        self._script_keys = keys.script_keys()

    def _call(
        self, name: str, request_id: str, args: tuple[Arg, ...], tuning: tuple[Arg, ...] = ()
    ) -> ScriptCall:
        """A script call. ``args`` define the request (the request id is bound to them);
        ``tuning`` are this client's settings (reap batch, backoff), not part of what was asked:
        the same request retried by a process configured otherwise is still the same request."""
        common: list[Arg] = [
            self.keys.prefix,
            self.settings.event_stream_cap,
            request_id,
            request_digest(name, args) if request_id else "",
            self.settings.request_ttl_seconds,
        ]
        # a request id makes the call safe to send again (the executor's retry budget);
        # a heartbeat and a reap are harmless twice, without one
        repeatable = name in _REPEATABLE
        return ScriptCall(
            name, self._script_keys, [*common, *args, *tuning], request_id, repeatable
        )

    def _script(
        self, name: str, request_id: str, args: tuple[Arg, ...], tuning: tuple[Arg, ...] = ()
    ) -> Op[tuple[str, dict[str, Any]]]:
        """Run a script; its reply as (status, body), ``RequestIdReused`` raised."""
        status, body = codec.script_reply((yield self._call(name, request_id, args, tuning)))
        if status == "request_id_reused":
            raise RequestIdReused(request_id, _OPERATION_NAMES.get(name, name))
        return status, body

    def _holder_args(self, task_id: str, agent_id: str, token: int) -> tuple[str, str, str]:
        validated(check_task_id, task_id)
        validated(check_agent_id, agent_id)
        if not isinstance(token, int) or token < 1:
            raise ValidationError("token must be a positive integer")
        return task_id, agent_id, str(token)

    def submit(
        self, plan: Plan | dict[str, Any] | list[Any], request_id: str | None
    ) -> Op[list[str]]:
        from distributor.tasks.specs import check_plan, parse_plan  # pydantic: only to submit

        parsed = parse_plan(plan)
        ordered = check_plan(parsed)
        default_ms = round((parsed.lease_seconds or self.settings.lease_seconds) * 1000)
        payload = plan_payload(ordered, default_ms)
        status, body = yield from self._script(
            "submit_plan", check_request_id(request_id), (payload,)
        )
        if status == "duplicate":
            raise DuplicateTask(list(body["ids"]))
        if status == "unknown_dependency":
            raise UnknownDependency(body["task"], body["dependency"])
        return [t.id for t in ordered]  # the script adds them in this order, all or none

    def add_task(self, new: discovery.NewTask, request_id: str | None) -> Op[Task]:
        """Add one task to the live swarm (see :mod:`distributor.tasks.discovery`)."""
        payload = discovery.script_payload(new, self.settings.lease_seconds)
        status, body = yield from self._script("add_task", check_request_id(request_id), (payload,))
        discovery.raise_refusal(new, status, body)
        return task_from_hash(body["task"], list(body.get("unmet") or []))

    def claim(
        self, task_id: str, agent_id: str, lease: float | None, request_id: str | None
    ) -> Op[ClaimResult]:
        validated(check_task_id, task_id)
        validated(check_agent_id, agent_id)
        status, body = yield from self._script(
            "claim", check_request_id(request_id), (task_id, agent_id, lease_ms(lease))
        )
        if status == "ok":
            task = task_from_hash(body["task"])
            return ClaimResult(claimed=True, claim=Claim(task=task, token=task.token), task=task)
        task_or_none = task_from_hash(body["task"]) if "task" in body else None
        holders = [from_script(h) for h in body.get("holders") or []]
        reason = cast(ClaimRefusal, status)  # the script answers with one of them
        return ClaimResult(claimed=False, reason=reason, task=task_or_none, holders=holders)

    def claim_next(
        self, agent_id: str, lease: float | None, request_id: str | None
    ) -> Op[tuple[Claim | None, datetime | None]]:
        """The claim, or ``None`` and when something may next become claimable."""
        claim, body = yield from self._claim_next(agent_id, lease, request_id)
        return claim, None if claim else ms_to_datetime(body.get("next_due"))

    def next_claim(
        self, agent_id: str, lease: float | None, request_id: str | None
    ) -> Op[NextClaim]:
        """The claim, or why there is none: the reservations that held the ready tasks."""
        claim, body = yield from self._claim_next(agent_id, lease, request_id)
        if claim:
            return NextClaim(claim=claim)
        return NextClaim(
            holders=[from_script(h) for h in body.get("holders") or []],
            skipped=[str(i) for i in body.get("skipped") or []],
            next_due=ms_to_datetime(body.get("next_due")),
        )

    def claim_next_in(
        self, agent_id: str, lease: float | None, request_id: str | None
    ) -> Op[tuple[Claim | None, float | None]]:
        """The claim, or ``None`` and the seconds until ``next_due`` by Redis' own clock.

        A waiter sleeps that long; measuring it on Redis' clock (not the host's) keeps a host
        whose clock runs ahead from spinning, and one that lags from waking late.
        """
        claim, body = yield from self._claim_next(agent_id, lease, request_id)
        if claim or body.get("next_due") is None:
            return claim, None
        return None, max(0.0, (int(body["next_due"]) - int(body["now"])) / 1000)

    def _claim_next(
        self, agent_id: str, lease: float | None, request_id: str | None
    ) -> Op[tuple[Claim | None, dict[str, Any]]]:
        validated(check_agent_id, agent_id)
        status, body = yield from self._script(
            "claim_next",
            check_request_id(request_id),
            (agent_id, lease_ms(lease)),
            (self.settings.reap_batch, self.settings.reservation_scan),
        )
        if status == "ok":
            return _claim_of(body["task"]), body
        return None, body

    def _holder_op(
        self,
        name: str,
        task_id: str,
        agent_id: str,
        token: int,
        request_id: str | None,
        extra: tuple[Arg, ...] = (),
        tuning: tuple[Arg, ...] = (),
    ) -> Op[dict[str, Any]]:
        args = self._holder_args(task_id, agent_id, token)
        rid = "" if request_id == "" else check_request_id(request_id)  # '' = not idempotent
        status, body = yield from self._script(name, rid, (*args, *extra), tuning)
        if status == "not_found":
            raise TaskNotFound(task_id)
        if status == "stale":
            raise StaleClaim(task_id, str(body.get("detail", "")))
        return body

    def complete(
        self,
        task_id: str,
        agent_id: str,
        token: int,
        request_id: str | None,
        claim_next: bool = False,
        lease: float | None = None,
    ) -> Op[Completion]:
        body = yield from self._holder_op(
            "complete",
            task_id,
            agent_id,
            token,
            request_id,
            ("1" if claim_next else "0", lease_ms(lease)),
            (self.settings.reap_batch, self.settings.reservation_scan),
        )
        raw_next = body.get("next")
        return built(  # an agent's hot path: built from what the script wrote, not validated
            Completion,
            {
                "task": task_from_reply(body["task"]),
                "unblocked": list(body.get("unblocked") or []),
                "next": _claim_of(raw_next) if raw_next else None,
            },
        )

    def start(
        self, task_id: str, agent_id: str, token: int, lease: float | None, request_id: str | None
    ) -> Op[Task]:
        body = yield from self._holder_op(
            "start", task_id, agent_id, token, request_id, (lease_ms(lease),)
        )
        return task_from_hash(body["task"])

    def heartbeat(self, task_id: str, agent_id: str, token: int, lease: float | None) -> Op[Task]:
        body = yield from self._holder_op(
            "heartbeat", task_id, agent_id, token, "", (lease_ms(lease),)
        )
        return task_from_hash(body["task"])

    def fail(
        self,
        task_id: str,
        agent_id: str,
        token: int,
        reason: str,
        retry: bool,
        request_id: str | None,
    ) -> Op[FailOutcome]:
        s = self.settings
        body = yield from self._holder_op(
            "fail",
            task_id,
            agent_id,
            token,
            request_id,
            (clean_reason(reason), "1" if retry else "0"),
            (round(s.retry_backoff_seconds * 1000), round(s.retry_backoff_max_seconds * 1000)),
        )
        return FailOutcome(
            task=task_from_hash(body["task"]),
            will_retry=bool(body.get("will_retry")),
            retry_at=ms_to_datetime(body.get("retry_at")),
        )

    def release(self, task_id: str, agent_id: str, token: int, request_id: str | None) -> Op[Task]:
        body = yield from self._holder_op("release", task_id, agent_id, token, request_id)
        return task_from_hash(body["task"])

    def _operator_op(self, name: str, task_id: str, *extra: Arg) -> Op[Task]:
        validated(check_task_id, task_id)
        status, body = yield from self._script(name, "", (task_id, *extra))
        if status == "not_found":
            raise TaskNotFound(task_id)
        task = task_from_hash(body["task"])
        if status == "invalid":
            raise InvalidTransition(task_id, task.status.value, name)
        return task

    def retry(self, task_id: str) -> Op[Task]:
        return (yield from self._operator_op("retry", task_id))

    def cancel(self, task_id: str, reason: str) -> Op[Task]:
        return (yield from self._operator_op("cancel", task_id, clean_reason(reason)))

    def reserve(
        self,
        patterns: list[str],
        agent_id: str,
        ttl: float | None,
        shared: bool,
        reason: str,
        request_id: str | None,
    ) -> Op[list[Reservation]]:
        """Reserve ``patterns`` for ``agent_id``, all or none; ``FilesReserved`` names the
        holders when another agent's live reservation conflicts (nothing is written)."""
        from distributor.reservations.requests import ReserveRequest  # pydantic: only to reserve
        from distributor.validation import validated_as

        req = validated_as(
            ReserveRequest,
            {
                "agent_id": agent_id,
                "patterns": patterns,
                "ttl_seconds": self.settings.reservation_ttl_seconds if ttl is None else ttl,
                "shared": shared,
                "reason": reason,
            },
        )
        entries = script_entries(req.patterns, [req.shared] * len(req.patterns))
        status, body = yield from self._script(
            "reserve",
            check_request_id(request_id),
            (req.agent_id, entries, str(max(1, round(req.ttl_seconds * 1000))), req.reason),
            (self.settings.reap_batch,),
        )
        if status == "conflict":
            raise FilesReserved([from_script(h) for h in body["holders"]])
        return [from_script(r) for r in body.get("reservations") or []]

    def unreserve(
        self, agent_id: str, patterns: list[str] | None, request_id: str | None
    ) -> Op[list[str]]:
        """Free ``agent_id``'s explicit reservations of ``patterns`` (``None``: all of them);
        returns the patterns freed."""
        from distributor.reservations.requests import UnreserveRequest  # pydantic: only here
        from distributor.validation import validated_as

        req = validated_as(UnreserveRequest, {"agent_id": agent_id, "patterns": patterns or []})
        _, body = yield from self._script(
            "unreserve", check_request_id(request_id), (req.agent_id, json.dumps(req.patterns))
        )
        mine = f"a:{req.agent_id}:"
        return [str(rid).removeprefix(mine) for rid in body.get("freed") or []]

    def reap_batch(self) -> Op[tuple[int, int]]:
        """Recover one batch of expired leases and due retries: (expired, promoted)."""
        _, body = yield from self._script("reap", "", (), (self.settings.reap_batch,))
        return int(body["expired"]), int(body["promoted"])
