"""structlog setup: key-value logs on stderr, JSON when stderr is not a terminal.

structlog is imported when something first logs at a level the configuration lets through (or
when it is loaded already): a CLI command that logs nothing, or only debug lines at INFO, does
not pay for it.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

_pending: list[tuple[str, str]] = []  # configure_logging's arguments, not applied yet
_threshold = [0]  # the configured level's number (0: none configured, nothing is dropped early)
_METHOD_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "warn": logging.WARNING,
    "error": logging.ERROR,
    "exception": logging.ERROR,
    "critical": logging.CRITICAL,
}


def _level_number(level: str) -> int:
    return logging.getLevelNamesMapping().get(level.upper(), logging.INFO)


def _dropped(*args: Any, **kwargs: Any) -> None:
    """A log call below the configured level, made before structlog was needed."""


def configure_logging(level: str = "INFO", fmt: str = "auto") -> None:
    """Send structured logs to stderr (console renderer on a TTY, JSON lines otherwise)."""
    _pending[:] = [(level, fmt)]
    _threshold[0] = _level_number(level)
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
        wrapper_class=structlog.make_filtering_bound_logger(_level_number(level)),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )


class _LazyLogger:
    """A structlog logger made on first use (after any pending configuration is applied)."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._logger: Any = None

    def __getattr__(self, attr: str) -> Any:
        if "structlog" not in sys.modules and _METHOD_LEVELS.get(attr, 99) < _threshold[0]:
            return _dropped  # filtered out anyway: not worth loading structlog for
        if self._logger is None or _pending:
            _apply()
            import structlog

            self._logger = structlog.get_logger(logger_name=self._name)
        return getattr(self._logger, attr)


def get_logger(name: str) -> Any:
    """A lazy structlog logger bound to ``logger_name`` (configuration applies at first use)."""
    return _LazyLogger(name)
