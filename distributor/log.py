"""structlog setup: key-value logs on stderr, JSON when stderr is not a terminal.

structlog is imported when something first logs (or when it is loaded already): a CLI command
that logs nothing does not pay for it.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

_pending: list[tuple[str, str]] = []  # configure_logging's arguments, not applied yet


def configure_logging(level: str = "INFO", fmt: str = "auto") -> None:
    """Send structured logs to stderr (console renderer on a TTY, JSON lines otherwise)."""
    _pending[:] = [(level, fmt)]
    if "structlog" in sys.modules:  # loaded already (a server, a test): apply at once
        _apply()


def _apply() -> None:
    import structlog

    if not _pending:
        return
    level, fmt = _pending.pop()
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    renderer: Any = (
        structlog.processors.JSONRenderer() if use_json else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
        ),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )


class _LazyLogger:
    """A structlog logger made on first use (after any pending configuration is applied)."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._logger: Any = None

    def __getattr__(self, attr: str) -> Any:
        if self._logger is None or _pending:
            _apply()
            import structlog

            self._logger = structlog.get_logger(logger_name=self._name)
        return getattr(self._logger, attr)


def get_logger(name: str) -> Any:
    """A lazy structlog logger bound to ``logger_name`` (configuration applies at first use)."""
    return _LazyLogger(name)
