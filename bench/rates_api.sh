#!/usr/bin/env bash
# Latency of GET /api/v1/markets/rates?code=USD&limit=10000 (the full USD history, ~6,000
# rows in one page) under a bounded load, measured with wrk on loopback.
#
#   bench/rates_api.sh                     # SQLite (embedded mode)
#   VIGIL_BENCH_PG=1 bench/rates_api.sh    # SQLite, then PostgreSQL (throwaway database)
#
# Steps per database: start the fake NBP server (a subprocess), load the whole history with
# `vigil markets backfill`, start `vigil api` on a free 127.0.0.1 port, wait for
# /health/ready, warm up for a few seconds, then run wrk and print its latency distribution
# plus p95 (bench/wrk_p95.lua). Everything started here is stopped on exit.
#
# Two measured runs per database: "load" (wrk -t2 -c4 -d15s: four requests in flight) and
# "serial" (wrk -t1 -c1 -d10s: one at a time, i.e. the service time of one request).
#
# Knobs (environment): WRK_THREADS (2), WRK_CONNECTIONS (4), WRK_DURATION (15s),
# WRK_SERIAL_DURATION (10s; 0 skips the serial run), WRK_WARMUP (3s),
# RATES_QUERY (code=USD&limit=10000), API_WORKERS (1: `vigil api --workers N`),
# RATES_CACHE (off: VIGIL_CACHE_TTL=0, every request reads the database and serialises;
# on: the API's response cache with its default TTL, so after the first request wrk measures
# cache hits), VIGIL_BENCH_PG_ADMIN (postgresql://postgres@127.0.0.1:5432). Rate limiting is
# off (VIGIL_RATE_LIMIT=""): wrk's one address would be refused after the default 600 a minute.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="$REPO/.venv/bin/python"
VIGIL="$REPO/.venv/bin/vigil"
WRK_THREADS="${WRK_THREADS:-2}"
WRK_CONNECTIONS="${WRK_CONNECTIONS:-4}"
WRK_DURATION="${WRK_DURATION:-15s}"
WRK_WARMUP="${WRK_WARMUP:-3s}"
WRK_SERIAL_DURATION="${WRK_SERIAL_DURATION:-10s}"
RATES_QUERY="${RATES_QUERY:-code=USD&limit=10000}"
API_WORKERS="${API_WORKERS:-1}"
RATES_CACHE="${RATES_CACHE:-off}"
case "$RATES_CACHE" in
    off) CACHE_ENV=(VIGIL_CACHE_TTL=0) ;;
    on) CACHE_ENV=() ;;
    *) echo "RATES_CACHE must be off or on, not '$RATES_CACHE'" >&2; exit 2 ;;
esac
PG_ADMIN="${VIGIL_BENCH_PG_ADMIN:-postgresql://postgres@127.0.0.1:5432}"

WORK="$(mktemp -d -t vigil_bench_rates.XXXXXX)"
# shellcheck source=bench/_lib.sh
source "$REPO/bench/_lib.sh"
NBP_PID=""
API_PID=""
PG_DB=""

drop_pg_db() {
    if [[ -n "$PG_DB" ]]; then
        psql "$PG_ADMIN/postgres" -qAtc "DROP DATABASE IF EXISTS \"$PG_DB\" WITH (FORCE)" \
            >/dev/null || echo "warning: could not drop database $PG_DB" >&2
        PG_DB=""
    fi
}

cleanup() {
    stop_pid "$API_PID"
    stop_pid "$NBP_PID"
    drop_pg_db
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ensure_wrk() {
    if ! command -v wrk >/dev/null; then
        log "wrk not found: installing it with apt-get"
        apt-get install -y wrk >/dev/null 2>&1 \
            || { apt-get update >/dev/null && apt-get install -y wrk >/dev/null; }
    fi
}

# Replaces the calling (sub)shell with the command, run from the work directory (so no .env
# of the checkout applies) with explicit settings for one database. Call it in ( ) or with &.
vigil_exec() {
    cd "$WORK"
    exec env VIGIL_DATABASE_URL="$DB_URL" VIGIL_DATA_DIR="$DATA_DIR" \
        VIGIL_NBP_BASE_URL="$NBP_URL" VIGIL_REDIS_URL="" VIGIL_RATE_LIMIT="" VIGIL_HOST=127.0.0.1 \
        VIGIL_LOG_LEVEL=WARNING VIGIL_LOG_FORMAT=console COLUMNS=300 ${CACHE_ENV[@]+"${CACHE_ENV[@]}"} \
        "$@"
}

seconds_since() {
    awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'
}

# After 2 s, how wrk's connections are spread over the API's processes (with --workers N the
# kernel hands each new connection to one worker; wrk keeps its connections open).
connections_per_process() {
    local port="$1"
    sleep 2
    local spread
    spread="$(ss -Htnp state established "( sport = :$port )" 2>/dev/null \
        | grep -o 'pid=[0-9]*' | sort | uniq -c | awk '{ printf "%s%s:%s", sep, $2, $1; sep=" " }')"
    echo "connections per API process (2 s in): ${spread:-unknown}"
}

# run_wrk LABEL MODE THREADS CONNECTIONS DURATION URL: one measured wrk run and a SUMMARY line.
run_wrk() {
    local label="$1" mode="$2" threads="$3" connections="$4" duration="$5" url="$6"
    local out="$WORK/wrk-$label-$mode.txt"
    log "$label ($mode): wrk -t$threads -c$connections -d$duration --latency GET $url"
    connections_per_process "$API_PORT" >"$WORK/spread-$label-$mode.txt" &
    local spread_pid=$!
    wrk -t"$threads" -c"$connections" -d"$duration" --latency \
        -s "$REPO/bench/wrk_p95.lua" "$url" | tee "$out"
    wait "$spread_pid" 2>/dev/null || true
    cat "$WORK/spread-$label-$mode.txt"
    local result p95 verdict
    result="$(sed -n 's/^WRK_RESULT //p' "$out")"
    p95="$(sed -n 's/.*p95_ms=\([0-9.]*\).*/\1/p' <<<"$result")"
    verdict="$(awk -v p="$p95" 'BEGIN { print (p < 50) ? "met" : "MISSED" }')"
    echo "SUMMARY backend=$label mode=$mode workers=$API_WORKERS cache=$RATES_CACHE" \
        "connections=$connections $result target_p95_ms=50 ($verdict)"
}

bench_backend() {
    local label="$1"
    DB_URL="$2"
    DATA_DIR="$WORK/data-$label"
    mkdir -p "$DATA_DIR"

    log "$label: loading the full history (vigil markets backfill)"
    local t0
    t0="$(date +%s.%N)"
    (vigil_exec "$VIGIL" markets backfill) 2>&1 | tail -n 1
    echo "backfill command took $(seconds_since "$t0")s (process start and migrations included)"

    local port
    port="$(free_port)"
    API_PORT="$port"
    vigil_exec env VIGIL_PORT="$port" "$VIGIL" api --workers "$API_WORKERS" >"$WORK/api-$label.log" 2>&1 &
    API_PID=$!
    local base="http://127.0.0.1:$port"
    for _ in $(seq 300); do
        curl -fsS "$base/health/ready" >/dev/null 2>&1 && break
        kill -0 "$API_PID" 2>/dev/null || { cat "$WORK/api-$label.log" >&2; exit 1; }
        sleep 0.1
    done
    curl -fsS "$base/health/ready" >/dev/null || { echo "API not ready" >&2; exit 1; }
    echo "vigil api (pid $API_PID) ready at $base"

    local url="$base/api/v1/markets/rates?$RATES_QUERY"
    # Two requests: the second says whether answers come from the response cache.
    local xcache
    for _ in 1 2; do
        xcache="$(curl -fsS -D - -o "$WORK/rates.json" "$url" | tr -d '\r' \
            | sed -n 's/^[Xx]-[Cc]ache: //p')"
    done
    echo "response cache: RATES_CACHE=$RATES_CACHE, X-Cache of a repeated request: ${xcache:-none}"
    "$PY" - "$WORK/rates.json" <<'PYEOF'
import json, os, sys
page = json.load(open(sys.argv[1], encoding="utf-8"))
items = page["items"]
print(f"one response: {len(items)} rows of {page['total']} "
      f"({items[0]['effective_date']}..{items[-1]['effective_date']}), "
      f"{os.path.getsize(sys.argv[1]) / 1024:.0f} KiB of JSON")
PYEOF

    log "$label: warm-up ($WRK_WARMUP, not measured)"
    wrk -t"$WRK_THREADS" -c"$WRK_CONNECTIONS" -d"$WRK_WARMUP" "$url" >/dev/null

    run_wrk "$label" load "$WRK_THREADS" "$WRK_CONNECTIONS" "$WRK_DURATION" "$url"
    if [[ "$WRK_SERIAL_DURATION" != 0 ]]; then
        run_wrk "$label" serial 1 1 "$WRK_SERIAL_DURATION" "$url"
    fi

    stop_pid "$API_PID"
    API_PID=""
}

ensure_wrk
echo "machine: $(nproc) CPUs, load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "vigil api --workers $API_WORKERS, response cache $RATES_CACHE"
start_fake_nbp "$(warsaw_today)"

bench_backend sqlite ""

if [[ "${VIGIL_BENCH_PG:-0}" == 1 ]]; then
    PG_DB="vigil_bench_$("$PY" -c 'import uuid; print(uuid.uuid4().hex[:10])')"
    psql "$PG_ADMIN/postgres" -qAtc "CREATE DATABASE \"$PG_DB\"" >/dev/null
    bench_backend postgresql "$PG_ADMIN/$PG_DB"
    drop_pg_db
fi
