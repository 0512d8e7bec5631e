#!/usr/bin/env bash
# Run the whole test suite: lint, type checks, and pytest against fakeredis and a real Redis.
# Usage: ./scripts/test.sh [pytest args...]
# Uses SWARMQUEUE_TEST_REDIS_URL, else 127.0.0.1:6379 if it answers, else a private redis-server
# (SWARMQUEUE_TEST_PRIVATE_REDIS=1 always starts the private one).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/setup.sh
source scripts/lib/setup.sh

need_system_packages
ensure_venv dev,bench  # bench: the peers scripts/bench.py compares with (tests/test_bench.py)

trap stop_private_redis EXIT
if [ -z "${SWARMQUEUE_TEST_REDIS_URL:-}" ]; then
    if [ "${SWARMQUEUE_TEST_PRIVATE_REDIS:-0}" != "1" ] && redis_answers "redis://127.0.0.1:6379/0"; then
        SWARMQUEUE_TEST_REDIS_URL="redis://127.0.0.1:6379/0"
    else
        SWARMQUEUE_TEST_REDIS_URL="$(start_private_redis)"
    fi
fi
export SWARMQUEUE_TEST_REDIS_URL
echo "test: real Redis at $SWARMQUEUE_TEST_REDIS_URL" >&2

echo "test: ruff" >&2
.venv/bin/ruff check .
echo "test: mypy" >&2
.venv/bin/mypy
echo "test: pytest" >&2
status=0
.venv/bin/python -m pytest "$@" || status=$?
if [ "$status" -eq 5 ]; then
    echo "test: pytest collected no tests; that is a failure" >&2
fi
exit "$status"
