#!/usr/bin/env bash
# Run the test suite: lint, type checks, and pytest against fakeredis and a real Redis.
# Usage: ./scripts/test.sh [pytest args...]
# The chaos suite (tests/chaos/, marker chaos) and the long live-view test (marker long) run only
# when asked for: ./scripts/test.sh -m 'chaos or long or cluster or netns or browser' (.ci/run does)
# (SWARMQUEUE_CHAOS_ROUNDS=N repeats each of its scenarios N times).
# Uses SWARMQUEUE_TEST_REDIS_URL, else 127.0.0.1:6379 if it answers, else a private redis-server
# on a free port, stopped (and its temporary folder removed) when the script exits, also on an
# error or Ctrl-C. SWARMQUEUE_TEST_PRIVATE_REDIS=1 always starts the private one.
# SWARMQUEUE_TEST_PYTEST_ONLY=1 skips installing into .venv, ruff and mypy (.venv must exist).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/setup.sh
source scripts/lib/setup.sh

if [ "${SWARMQUEUE_TEST_PYTEST_ONLY:-0}" != "1" ]; then
    # openssl: tests/test_trust.py's certificates; zsh: tests/test_shell_safety.py's zsh pane
    need_system_packages redis-server tmux openssl zsh
    # chromium + chromium-driver (its chromedriver): tests/test_dashboard_browser.py (marker browser)
    need_system_packages chromium
    command -v chromedriver >/dev/null 2>&1 || need_system_packages chromium-driver
    # redis-sentinel: the Sentinel fixture (tests/redis_sentinel.py; falls back to redis-server --sentinel)
    need_system_packages redis-sentinel
    # iproute2: `ip` makes the namespaces, veth pairs and bridge of tests/test_hosts.py (-m netns)
    command -v ip >/dev/null 2>&1 || need_system_packages iproute2
    ensure_venv dev,bench  # bench: the peers scripts/bench.py compares with (tests/test_bench.py)
fi

trap stop_private_redis EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
if [ -z "${SWARMQUEUE_TEST_REDIS_URL:-}" ]; then
    if [ "${SWARMQUEUE_TEST_PRIVATE_REDIS:-0}" != "1" ] && redis_answers "redis://127.0.0.1:6379/0"; then
        SWARMQUEUE_TEST_REDIS_URL="redis://127.0.0.1:6379/0"
    else
        start_private_redis  # not in $(...): stop_private_redis needs the variables it sets
        SWARMQUEUE_TEST_REDIS_URL="$PRIVATE_REDIS_URL"
    fi
fi
export SWARMQUEUE_TEST_REDIS_URL
echo "test: real Redis at $SWARMQUEUE_TEST_REDIS_URL" >&2

if [ "${SWARMQUEUE_TEST_PYTEST_ONLY:-0}" != "1" ]; then
    echo "test: ruff" >&2
    .venv/bin/ruff check .
    echo "test: mypy" >&2
    .venv/bin/mypy
fi
echo "test: pytest" >&2
status=0
.venv/bin/python -m pytest "$@" || status=$?
if [ "$status" -eq 5 ]; then
    echo "test: pytest collected no tests; that is a failure" >&2
fi
exit "$status"
