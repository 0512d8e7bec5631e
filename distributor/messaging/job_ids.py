"""The names of delivery queues and jobs: which queue a host's worker serves, which id a
message's job has on a host, and the function a delivery job runs (no RQ import: commands that
deliver nothing do not load it)."""

from __future__ import annotations

import hashlib
import re

DELIVERY_QUEUE_PREFIX = "swarmqueue-deliver-"
DELIVER_JOB = "workers.delivery.deliver"


def delivery_queue_name(host: str) -> str:
    """The RQ queue served by the worker of ``host``."""
    return DELIVERY_QUEUE_PREFIX + host


def delivery_job_id(message_id: str, host: str) -> str:
    """The id of the first job delivering a message on a host (RQ allows ``[A-Za-z0-9_-]``)."""
    slug = re.sub(r"[^A-Za-z0-9_-]", "_", host)
    digest = hashlib.sha1(host.encode(), usedforsecurity=False).hexdigest()[:8]
    return f"swarmqueue-deliver-{message_id}-{slug}-{digest}"
