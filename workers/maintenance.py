"""Jobs of the shared maintenance queue (``swarmqueue-maintenance``), served by every worker."""

from __future__ import annotations

from rq import get_current_job

from distributor.log import get_logger
from distributor.messages import Messenger
from distributor.settings import Settings

log = get_logger(__name__)


def redispatch(swarm: str, older_than: float = 60.0) -> int:
    """Enqueue again deliveries of ``swarm`` whose job never started (see Messenger.redispatch)."""
    job = get_current_job()
    if job is None:
        raise RuntimeError("redispatch() runs inside an RQ job")
    count = Messenger(job.connection, swarm, settings=Settings()).redispatch(older_than)
    log.info("redispatched deliveries", swarm=swarm, count=count)
    return count
