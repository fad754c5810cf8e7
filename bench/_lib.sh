# Shell pieces the API benchmarks share (sourced by rates_api.sh and cached_rates.sh).
# The sourcing script sets REPO, PY and WORK first.

log() { printf '\n== %s\n' "$*"; }

# stop_pid PID: SIGTERM, up to 5 s to exit, then SIGKILL; always reaped.
stop_pid() {
    local pid="$1"
    if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
}

free_port() {
    "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# NBP's "today" (the client clamps every range to today in Warsaw; the fake must serve it).
warsaw_today() {
    (cd "$REPO" && "$PY" -c 'from vigil.markets.sources.nbp import warsaw_today; print(warsaw_today())')
}

# start_fake_nbp TODAY: the fake NBP server as a process on loopback; sets NBP_PID, NBP_URL.
start_fake_nbp() {
    local today="$1"
    (cd "$REPO" && exec "$PY" -m tests.fakes.nbp_server --port 0 --today "$today") \
        >"$WORK/nbp.out" 2>"$WORK/nbp.err" &
    NBP_PID=$!
    for _ in $(seq 300); do
        if grep -q '^READY ' "$WORK/nbp.out" 2>/dev/null; then
            NBP_URL="$(sed -n 's/^READY //p' "$WORK/nbp.out")"
            echo "fake NBP server (pid $NBP_PID) at $NBP_URL, today=$today"
            return
        fi
        kill -0 "$NBP_PID" 2>/dev/null || { cat "$WORK/nbp.err" >&2; exit 1; }
        sleep 0.1
    done
    echo "fake NBP server did not become ready" >&2
    exit 1
}
