#!/usr/bin/env bash
# The whole swarm at work: scripted agents in tmux panes pull, do and finish the tasks of
# "Add JWT authentication to FastAPI app", with every announcement typed into their panes.
# Usage: ./scripts/demo.sh [--attach] [--agents N] [--redis auto|url|server|fakeredis] [--json]
# Uses SWARMQUEUE_REDIS_URL when set, else a private redis-server, else embedded fakeredis.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/setup.sh
source scripts/lib/setup.sh

need_system_packages redis-server tmux
ensure_venv
exec .venv/bin/swarmqueue demo "$@"
