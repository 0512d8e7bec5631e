# Shared setup for scripts/test.sh and scripts/demo.sh (sourced, not run).
# Makes sure the system tools exist, (re)creates .venv and installs the project into it.

need_system_packages() {
    # Install the Debian packages of the given commands (same names) when missing and we are root.
    local missing=() cmd
    for cmd in "$@"; do
        command -v "$cmd" >/dev/null 2>&1 || missing+=("$cmd")
    done
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
    # An editable install leaves the project's modules as source, and where
    # PYTHONDONTWRITEBYTECODE is set every CLI call would compile them again (~40 ms of an
    # agent's command); compiled here, as pip does for a regular install.
    .venv/bin/python -m compileall -q distributor workers >/dev/null
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
PRIVATE_REDIS_URL=""

start_private_redis() {
    # Start a throwaway redis-server on a free port in a new temporary folder. Sets
    # PRIVATE_REDIS_URL and PRIVATE_REDIS_DIR (its folder, holding redis.pid and redis.log).
    # Call it directly, not in $(...): a subshell's variables are lost, and then
    # stop_private_redis could not find the server to stop (it did, until it ran that way).
    local port
    port="$(free_port)"
    PRIVATE_REDIS_DIR="$(mktemp -d "${TMPDIR:-/tmp}/swarmqueue-test-redis.XXXXXX")"
    redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no \
        --dir "$PRIVATE_REDIS_DIR" --daemonize yes --pidfile "$PRIVATE_REDIS_DIR/redis.pid" \
        --logfile "$PRIVATE_REDIS_DIR/redis.log" >&2
    for _ in $(seq 1 50); do
        if redis_answers "redis://127.0.0.1:$port/0"; then
            PRIVATE_REDIS_URL="redis://127.0.0.1:$port/0"
            echo "setup: private redis-server $PRIVATE_REDIS_URL, pid $(cat "$PRIVATE_REDIS_DIR/redis.pid")" >&2
            return 0
        fi
        sleep 0.1
    done
    echo "setup: private redis-server did not start; its log: $PRIVATE_REDIS_DIR/redis.log" >&2
    return 1
}

stop_private_redis() {
    # Stop the server start_private_redis started (by the PID in its folder), wait until it is
    # gone, and remove its folder. Does nothing when none was started; safe to call twice.
    [ -n "$PRIVATE_REDIS_DIR" ] || return 0
    local pidfile="$PRIVATE_REDIS_DIR/redis.pid" pid=""
    [ -f "$pidfile" ] && pid="$(cat "$pidfile")"
    if [ -n "$pid" ] && kill "$pid" 2>/dev/null; then
        for _ in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            echo "setup: redis-server $pid ignored SIGTERM for 5s; killing it" >&2
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    rm -rf "$PRIVATE_REDIS_DIR"
    PRIVATE_REDIS_DIR=""
    PRIVATE_REDIS_URL=""
}
