"""The delivery workers of each host, read from RQ's own keys without changing them.

Each host's ``swarmqueue worker`` serves the RQ queue ``swarmqueue-deliver-<host>``
(:mod:`distributor.messaging.dispatch`). RQ registers a live worker in the set
``rq:workers:<queue>`` and keeps its hash ``rq:worker:<name>`` alive with heartbeats (Redis
expires it ``WORKER_TTL`` + 60 s after the last one, by Redis' clock), so a worker is alive while
its hash exists; a member whose hash is gone is a dead worker.
Finished and failed jobs sit in RQ's registries, scored by when they expire; the newest of
both is the host's last job. RQ's own helpers (``Worker.all``, ``get_job_ids``) clean up as
they read; these reads do not.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import redis
from rq import Queue
from rq.exceptions import NoSuchJobError
from rq.job import Job
from rq.registry import FailedJobRegistry, FinishedJobRegistry

from distributor.messaging.jobs import delivery_queue, fetch_job
from distributor.store.calls import text


@dataclass
class WorkerRow:
    """One RQ worker registered on a host's queue."""

    name: str
    state: str
    last_heartbeat: datetime | None
    alive: bool
    current_job: str | None


@dataclass
class HostView:
    """A host's delivery queue: its workers, queue length, last job and that job's outcome."""

    host: str
    queue: str
    queued: int
    workers: list[WorkerRow] = field(default_factory=list)
    last_job: str | None = None
    last_status: str | None = None
    last_ended: datetime | None = None
    last_outcome: str = ""

    @property
    def alive(self) -> bool:
        return any(w.alive for w in self.workers)


def _worker(raw: dict[str, str], name: str) -> WorkerRow:
    beat = raw.get("last_heartbeat")
    seen = datetime.fromisoformat(beat.replace("Z", "+00:00")) if beat else None
    if seen is not None and seen.tzinfo is None:
        seen = seen.replace(tzinfo=UTC)
    return WorkerRow(name, raw.get("state", "?"), seen, True, raw.get("current_job") or None)


def _outcome(job: Job) -> str:
    """A delivery job's report in a few words (its return value, or its error's last line)."""
    if job.get_status(refresh=False) == "failed":
        info = job.exc_info or ""
        lines = [line for line in info.splitlines() if line.strip()]
        return lines[-1].strip()[:300] if lines else "failed"
    value: Any = job.return_value()
    if not isinstance(value, dict):
        return ""
    shown = ("delivered", "failed", "retrying", "skipped")
    parts = [f"{k} {value[k]}" for k in shown if value.get(k)]
    if value.get("busy"):
        parts.append("busy")
    return ", ".join(parts) or "nothing to type"


def _last_job(client: redis.Redis, queue: Queue) -> Job | None:
    newest: list[Job] = []
    for registry in (FinishedJobRegistry(queue=queue), FailedJobRegistry(queue=queue)):
        for job_id in client.zrange(registry.key, -1, -1):
            try:
                newest.append(fetch_job(text(job_id), client))
            except NoSuchJobError:
                continue
    ended = [j for j in newest if j.ended_at is not None]
    return max(ended, key=lambda j: j.ended_at or datetime.min) if ended else None


def hosts_of(client: redis.Redis, hosts: list[str]) -> list[HostView]:
    """The view of each host in ``hosts``."""
    views = []
    for host in hosts:
        queue = delivery_queue(host, client)
        view = HostView(host, queue.name, int(client.llen(queue.key)))
        for key in sorted(text(k) for k in client.smembers(f"rq:workers:{queue.name}")):
            raw = {text(k): text(v) for k, v in client.hgetall(key).items()}
            name = key.removeprefix("rq:worker:")
            view.workers.append(
                _worker(raw, name) if raw else WorkerRow(name, "gone", None, False, None)
            )
        job = _last_job(client, queue)
        if job is not None:
            view.last_job = job.id
            status = job.get_status(refresh=False)
            view.last_status = str(getattr(status, "value", status))
            view.last_ended = job.ended_at.replace(tzinfo=UTC) if job.ended_at else None
            view.last_outcome = _outcome(job)
        views.append(view)
    return views
