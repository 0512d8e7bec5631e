# Shared setup for scripts/test.sh and scripts/demo.sh (sourced, not run).
# Makes sure the system tools exist, (re)creates .venv and installs the project into it.

need_system_packages() {
    # Install the Debian packages providing the given commands when missing and we are root.
    local missing=()
    command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
    command -v tmux >/dev/null 2>&1 || missing+=(tmux)
    if [ ${#missing[@]} -eq 0 ]; then
        return 0
    fi
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
        echo "setup: installing ${missing[*]} with apt-get" >&2
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
    else
        echo "setup: missing ${missing[*]}; install them (not root, so not done here)" >&2
    fi
}

ensure_venv() {
    # Create or refresh .venv and install the project with the given extras (e.g. "dev").
    local extras="${1:-}"
    local python="${PYTHON:-python3}"
    if [ ! -x .venv/bin/python ]; then
        echo "setup: creating .venv" >&2
        "$python" -m venv .venv
    fi
    .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip >&2 2>/dev/null || true
    local target="."
    if [ -n "$extras" ]; then
        target=".[${extras}]"
    fi
    local log
    log="$(mktemp)"
    if ! .venv/bin/python -m pip install -q --disable-pip-version-check -e "$target" >"$log" 2>&1; then
        cat "$log" >&2
        rm -f "$log"
        echo "setup: installing $target into .venv failed" >&2
        return 1
    fi
    rm -f "$log"
}

free_port() {
    .venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

redis_answers() {
    # True when a Redis answers PING at the URL $1.
    .venv/bin/python - "$1" <<'PY' >/dev/null 2>&1
import sys, redis
sys.exit(0 if redis.Redis.from_url(sys.argv[1], socket_connect_timeout=1).ping() else 1)
PY
}

PRIVATE_REDIS_DIR=""

start_private_redis() {
    # Start a throwaway redis-server on a free port; prints its URL. Stopped by stop_private_redis.
    local port
    port="$(free_port)"
    PRIVATE_REDIS_DIR="$(mktemp -d)"
    redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no \
        --dir "$PRIVATE_REDIS_DIR" --daemonize yes --pidfile "$PRIVATE_REDIS_DIR/redis.pid" \
        --logfile "$PRIVATE_REDIS_DIR/redis.log" >&2
    for _ in $(seq 1 50); do
        if redis_answers "redis://127.0.0.1:$port/0"; then
            echo "redis://127.0.0.1:$port/0"
            return 0
        fi
        sleep 0.1
    done
    echo "setup: private redis-server did not start" >&2
    return 1
}

stop_private_redis() {
    if [ -n "$PRIVATE_REDIS_DIR" ] && [ -f "$PRIVATE_REDIS_DIR/redis.pid" ]; then
        kill "$(cat "$PRIVATE_REDIS_DIR/redis.pid")" 2>/dev/null || true
        rm -rf "$PRIVATE_REDIS_DIR"
    fi
}
