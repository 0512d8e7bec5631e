"""One process's (or thread's) view of Redis being unreachable, as log lines."""

from __future__ import annotations

from distributor.log import get_logger

log = get_logger("workers.worker")

# Longest wait between two attempts to reach Redis (RQ's is 60 s): deliveries wait for it.
RETRY_MAX_SECONDS = 10.0


class RedisOutage:
    """A line per failed attempt to reach Redis, and one when it answers again."""

    def __init__(self, process: str) -> None:
        self.process = process
        self.retries = 0

    def next_wait(self) -> float:
        """Seconds to wait before the next retry: 1, 2, 4, ... at most ``RETRY_MAX_SECONDS``."""
        return float(min(2**self.retries, RETRY_MAX_SECONDS))

    def retry(self, error: object, wait: float) -> None:
        """Log one failed attempt and the wait before the next."""
        self.retries += 1
        log.warning(
            "redis unreachable, retrying",
            process=self.process,
            retry=self.retries,
            retry_in_seconds=wait,
            error=str(error),
        )

    def over(self) -> None:
        """Redis answered: say so once if it had not before."""
        if self.retries:
            log.info("redis reachable again", process=self.process, retries=self.retries)
            self.retries = 0
