"""The CLI's documented exit codes (see :mod:`distributor.store.error_lines`), importable without
redis-py so that ``swarmqueue --help`` starts fast."""

EXIT_REFUSED, EXIT_INVALID, EXIT_UNREACHABLE, EXIT_REDIS_ERROR = 1, 2, 3, 4
EXIT_AUTH_FAILED = 5
