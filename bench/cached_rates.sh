#!/usr/bin/env bash
# The rates API's response cache against its ceiling: GET /api/v1/markets/rates?code=USD for
# one month and for the full history, served from the cache by `vigil api`, measured in the
# same run as a bare FastAPI endpoint (bench/bare_app.py: no middleware, the same bytes from
# memory, the same content type) and as `vigil api` with the cache off.
#
#   bench/cached_rates.sh
#
# Issue #4's targets: cached requests/s >= 50 % of the bare endpoint's, and p99 < 10 ms at
# 500 requests/s. Steps:
#   1. the fake NBP server (a subprocess; the API never talks to the real NBP), `vigil markets
#      backfill` into a SQLite database under a temp directory;
#   2. two `vigil api` processes (one uvicorn process each, logs at WARNING, metrics on as
#      always, VIGIL_RATE_LIMIT very high): "cached" (VIGIL_CACHE_TTL=3600, so no entry expires
#      during the run) and "uncached" (VIGIL_CACHE_TTL=0: every request queries and serialises);
#   3. both answers fetched once from the cached API and saved; bench/bare_app.py under
#      uvicorn (one process, no access log) serves those files as GET /month and GET /full
#      (async def endpoints: the ceiling, what the ratio is taken against) and as GET
#      /month/sync and /full/sync (plain def endpoints, run in the thread pool like Vigil's);
#      the bodies of all of them are checked byte-identical and their sizes printed;
#   4. per answer: wrk throughput (after a short untimed warm-up) on cached, bare, bare-sync
#      and uncached, then `hey` at a fixed total rate on cached and bare for p99 (hey's 99 %
#      line);
#   5. a table of the figures. Only the server under test is busy at any time (the others
#      idle); all traffic is to 127.0.0.1; everything started here is stopped on exit.
#
# Knobs (environment): WRK_THREADS (2), WRK_CONNECTIONS (32), WRK_DURATION (10s), WRK_WARMUP
# (2s), HEY_DURATION (10s), HEY_RATE (500: requests/s in total), HEY_WORKERS (10: each sends
# HEY_RATE/HEY_WORKERS requests/s), MONTH_DAYS (30: "one month" is today-30 days..today),
# VIGIL_RATE_LIMIT (100000000/minute). Takes about 2½ minutes.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="$REPO/.venv/bin/python"
VIGIL="$REPO/.venv/bin/vigil"
WRK_THREADS="${WRK_THREADS:-2}"
WRK_CONNECTIONS="${WRK_CONNECTIONS:-32}"
WRK_DURATION="${WRK_DURATION:-10s}"
WRK_WARMUP="${WRK_WARMUP:-2s}"
HEY_DURATION="${HEY_DURATION:-10s}"
HEY_RATE="${HEY_RATE:-500}"
HEY_WORKERS="${HEY_WORKERS:-10}"
MONTH_DAYS="${MONTH_DAYS:-30}"
RATE_LIMIT="${VIGIL_RATE_LIMIT:-100000000/minute}"
if ((HEY_RATE % HEY_WORKERS != 0)); then
    echo "HEY_RATE ($HEY_RATE) must be a multiple of HEY_WORKERS ($HEY_WORKERS)" >&2
    exit 2
fi
HEY_PER_WORKER=$((HEY_RATE / HEY_WORKERS))
TARGET_RATIO_PCT=50
TARGET_P99_MS=10

WORK="$(mktemp -d -t vigil_bench_cached.XXXXXX)"
# shellcheck source=bench/_lib.sh
source "$REPO/bench/_lib.sh"
NBP_PID=""
CACHED_PID=""
UNCACHED_PID=""
BARE_PID=""

cleanup() {
    stop_pid "$BARE_PID"
    stop_pid "$CACHED_PID"
    stop_pid "$UNCACHED_PID"
    stop_pid "$NBP_PID"
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for tool in wrk hey curl; do
    command -v "$tool" >/dev/null || { echo "$tool not found (apt-get install $tool)" >&2; exit 1; }
done

# wait_http NAME PID URL: until URL answers 2xx (at most 30 s), or the process died.
wait_http() {
    local name="$1" pid="$2" url="$3"
    for _ in $(seq 300); do
        curl -fsS -o /dev/null "$url" 2>/dev/null && return
        kill -0 "$pid" 2>/dev/null || { echo "$name died:" >&2; cat "$WORK/$name.log" >&2; exit 1; }
        sleep 0.1
    done
    echo "$name did not answer $url within 30 s" >&2
    exit 1
}

TODAY="$(warsaw_today)"
MONTH_FROM="$("$PY" -c "import datetime as d; print(d.date.fromisoformat('$TODAY') - d.timedelta(days=$MONTH_DAYS))")"

# Replaces the calling (sub)shell with the command, run from the work directory (so no .env
# of the checkout applies) with explicit settings. Extra VAR=value pairs go before the command.
vigil_exec() {
    cd "$WORK"
    exec env VIGIL_DATABASE_URL="" VIGIL_DATA_DIR="$WORK/data" VIGIL_NBP_BASE_URL="$NBP_URL" \
        VIGIL_REDIS_URL="" VIGIL_HOST=127.0.0.1 VIGIL_LOG_LEVEL=WARNING VIGIL_LOG_FORMAT=console \
        VIGIL_RATE_LIMIT="$RATE_LIMIT" COLUMNS=300 "$@"
}

# start_api NAME TTL: `vigil api` (one uvicorn process) with VIGIL_CACHE_TTL=TTL; sets PORT.
start_api() {
    local name="$1" ttl="$2"
    PORT="$(free_port)"
    vigil_exec VIGIL_CACHE_TTL="$ttl" VIGIL_PORT="$PORT" "$VIGIL" api --workers 1 \
        >"$WORK/$name.log" 2>&1 &
    LAST_PID=$!
}

# ms SECONDS: seconds (hey's unit) to milliseconds, 2 decimals.
ms() { awk -v s="$1" 'BEGIN { printf "%.2f", s * 1000 }'; }

# run_wrk LABEL URL: one measured wrk run; sets RPS, WRK_P99, WRK_ERRORS.
run_wrk() {
    local label="$1" url="$2" out="$WORK/wrk-$1.txt"
    echo "-- $label: wrk -t$WRK_THREADS -c$WRK_CONNECTIONS -d$WRK_DURATION $url"
    timeout 60 wrk -t"$WRK_THREADS" -c"$WRK_CONNECTIONS" -d"$WRK_DURATION" --latency \
        -s "$REPO/bench/wrk_p95.lua" "$url" >"$out"
    local result
    result="$(sed -n 's/^WRK_RESULT //p' "$out")"
    RPS="$(sed -n 's/.*rps=\([0-9.]*\).*/\1/p' <<<"$result")"
    WRK_P99="$(sed -n 's/.*p99_ms=\([0-9.]*\).*/\1/p' <<<"$result")"
    WRK_ERRORS="$(sed -n 's/.*errors=\([0-9]*\).*/\1/p' <<<"$result")"
    grep -E 'Transfer/sec|Socket errors|Non-2xx' "$out" | sed 's/^ */   /' || true
    echo "   $result"
}

# run_hey LABEL URL: hey at HEY_RATE requests/s in total; sets HEY_P99, HEY_P50, HEY_RPS, HEY_OK.
run_hey() {
    local label="$1" url="$2" out="$WORK/hey-$1.txt"
    echo "-- $label: hey -z $HEY_DURATION -q $HEY_PER_WORKER -c $HEY_WORKERS $url"
    timeout 60 hey -z "$HEY_DURATION" -q "$HEY_PER_WORKER" -c "$HEY_WORKERS" \
        -disable-compression "$url" >"$out"
    HEY_P99="$(ms "$(awk '$1 == "99%" && $2 == "in" { print $3 }' "$out")")"
    HEY_P50="$(ms "$(awk '$1 == "50%" && $2 == "in" { print $3 }' "$out")")"
    local slowest
    slowest="$(ms "$(awk '$1 == "Slowest:" { print $2 }' "$out")")"
    HEY_RPS="$(awk '$1 == "Requests/sec:" { printf "%.1f", $2 }' "$out")"
    local total
    total="$(awk '/responses$/ { n += $2 } END { print n + 0 }' "$out")"
    HEY_OK="$(awk '$1 == "[200]" { print $2 }' "$out")"
    HEY_OK="${HEY_OK:-0}"
    echo "   requests/s ${HEY_RPS}, p50 ${HEY_P50} ms, p99 ${HEY_P99} ms, slowest ${slowest} ms," \
        "200: ${HEY_OK} of ${total} responses"
    if grep -q 'Error distribution' "$out"; then
        sed -n '/Error distribution/,$p' "$out" | head -n 5
    fi
}

echo "machine: $(nproc) CPUs, load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "tools: $(wrk --version 2>&1 | head -n 1 | cut -d' ' -f1-2), hey $(dpkg-query -W -f='${Version}' hey 2>/dev/null || echo '?')"
# The code under test is whatever src/ holds when the API starts (editable install): say which.
if git -C "$REPO" rev-parse --git-dir >/dev/null 2>&1; then
    dirty="$(git -C "$REPO" status --porcelain -- src | wc -l)"
    echo "code: HEAD $(git -C "$REPO" rev-parse --short HEAD), $dirty changed or new file(s)" \
        "under src/ (diff sha256 $( (git -C "$REPO" diff HEAD -- src; git -C "$REPO" ls-files -o --exclude-standard -z -- src | xargs -0 -r cat) | sha256sum | cut -c1-12))"
fi
START="$(date +%s)"
start_fake_nbp "$TODAY"

log "loading the full history (vigil markets backfill, SQLite)"
(vigil_exec timeout 120 "$VIGIL" markets backfill) 2>&1 | tail -n 1

log "starting vigil api (cached and uncached) and checking the answers"
start_api cached 3600
CACHED_PID=$LAST_PID
CACHED_BASE="http://127.0.0.1:$PORT"
start_api uncached 0
UNCACHED_PID=$LAST_PID
UNCACHED_BASE="http://127.0.0.1:$PORT"
wait_http cached "$CACHED_PID" "$CACHED_BASE/health/ready"
wait_http uncached "$UNCACHED_PID" "$UNCACHED_BASE/health/ready"
echo "vigil api cached (VIGIL_CACHE_TTL=3600, pid $CACHED_PID) at $CACHED_BASE"
echo "vigil api uncached (VIGIL_CACHE_TTL=0, pid $UNCACHED_PID) at $UNCACHED_BASE"

NAMES=(month full)
declare -A QUERY=(
    [month]="code=USD&from=$MONTH_FROM&to=$TODAY"
    [full]="code=USD&limit=10000"
)
for name in "${NAMES[@]}"; do
    url="$CACHED_BASE/api/v1/markets/rates?${QUERY[$name]}"
    curl -fsS -o "$WORK/$name.json" "$url" # fills the cache
    curl -fsS -o /dev/null "$url"
done

BARE_PORT="$(free_port)"
BARE_BASE="http://127.0.0.1:$BARE_PORT"
(cd "$REPO" && exec env BARE_FILE_MONTH="$WORK/month.json" BARE_FILE_FULL="$WORK/full.json" \
    "$PY" -m uvicorn --app-dir bench bare_app:app --host 127.0.0.1 --port "$BARE_PORT" \
    --workers 1 --no-access-log --log-level warning) >"$WORK/bare.log" 2>&1 &
BARE_PID=$!
wait_http bare "$BARE_PID" "$BARE_BASE/month"
echo "bare FastAPI app (bench/bare_app.py, pid $BARE_PID) at $BARE_BASE"

# url_of NAME KIND: the URL of answer NAME (month, full) from server KIND.
url_of() {
    case "$2" in
        cached) echo "$CACHED_BASE/api/v1/markets/rates?${QUERY[$1]}" ;;
        uncached) echo "$UNCACHED_BASE/api/v1/markets/rates?${QUERY[$1]}" ;;
        bare) echo "$BARE_BASE/$1" ;;
        bare-sync) echo "$BARE_BASE/$1/sync" ;;
    esac
}

declare -A SIZE
for name in "${NAMES[@]}"; do
    line="$name:"
    for kind in cached uncached bare bare-sync; do
        url="$(url_of "$name" "$kind")"
        meta="$(curl -fsS -D "$WORK/$name-$kind.headers" -o "$WORK/$name-$kind.body" \
            -w '%{size_download} %{content_type}' "$url")"
        xcache="$(tr -d '\r' <"$WORK/$name-$kind.headers" | sed -n 's/^[Xx]-[Cc]ache: //p')"
        xlimit="$(tr -d '\r' <"$WORK/$name-$kind.headers" | sed -n 's/^[Xx]-[Rr]ate[Ll]imit-[Ll]imit: //p')"
        line+=" $kind ${meta%% *} bytes (${meta#* }${xcache:+, X-Cache: $xcache}"
        line+="${xlimit:+, X-RateLimit-Limit: $xlimit});"
        cmp -s "$WORK/$name.json" "$WORK/$name-$kind.body" \
            || { echo "$name: the $kind body differs from the cached one" >&2; exit 1; }
    done
    SIZE[$name]="$(stat -c %s "$WORK/$name.json")"
    echo "$line identical bodies"
done
"$PY" - "$WORK/month.json" "$WORK/full.json" <<'PYEOF'
import json, sys
for path in sys.argv[1:]:
    page = json.load(open(path, encoding="utf-8"))
    items = page["items"]
    print(f"{path.rsplit('/', 1)[-1]}: {len(items)} rows of {page['total']} "
          f"({items[0]['effective_date']}..{items[-1]['effective_date']})")
PYEOF

declare -A R
for name in "${NAMES[@]}"; do
    log "$name (${SIZE[$name]} bytes): throughput, wrk -t$WRK_THREADS -c$WRK_CONNECTIONS -d$WRK_DURATION"
    for kind in cached bare bare-sync uncached; do
        url="$(url_of "$name" "$kind")"
        timeout 30 wrk -t"$WRK_THREADS" -c"$WRK_CONNECTIONS" -d"$WRK_WARMUP" "$url" >/dev/null
        run_wrk "$name-$kind" "$url"
        R[$name,$kind,rps]="$RPS"
        R[$name,$kind,wrk_p99]="$WRK_P99"
        R[$name,$kind,errors]="$WRK_ERRORS"
    done
    R[$name,ratio]="$(awk -v c="${R[$name,cached,rps]}" -v b="${R[$name,bare,rps]}" \
        'BEGIN { printf "%.0f", 100 * c / b }')"
    R[$name,ratio_sync]="$(awk -v c="${R[$name,cached,rps]}" -v b="${R[$name,bare-sync,rps]}" \
        'BEGIN { printf "%.0f", 100 * c / b }')"
    echo "$name: cached/bare = ${R[$name,ratio]} % (target >= $TARGET_RATIO_PCT %)," \
        "cached/bare-sync = ${R[$name,ratio_sync]} %"

    log "$name: latency at $HEY_RATE requests/s, hey -z $HEY_DURATION -q $HEY_PER_WORKER -c $HEY_WORKERS"
    for kind in cached bare; do
        url="$(url_of "$name" "$kind")"
        run_hey "$name-$kind" "$url"
        R[$name,$kind,p99]="$HEY_P99"
        R[$name,$kind,p50]="$HEY_P50"
        R[$name,$kind,hey_rps]="$HEY_RPS"
        R[$name,$kind,hey_ok]="$HEY_OK"
    done
done

log "cache lookups counted by the cached API (its /metrics)"
curl -fsS "$CACHED_BASE/metrics" | grep '^vigil_cache_requests_total' || echo "(none)"

log "summary (load average now: $(cut -d' ' -f1-3 /proc/loadavg); took $(($(date +%s) - START)) s)"
{
    echo "answer bytes cached_rps bare_rps cached/bare bare_sync_rps cached/bare_sync uncached_rps" \
        "cached_p50@${HEY_RATE} cached_p99@${HEY_RATE} bare_p99@${HEY_RATE} achieved_rps(cached/bare) verdict"
    for name in "${NAMES[@]}"; do
        verdict="$(awk -v r="${R[$name,ratio]}" -v p="${R[$name,cached,p99]}" \
            -v tr="$TARGET_RATIO_PCT" -v tp="$TARGET_P99_MS" 'BEGIN {
                printf "ratio:%s,p99:%s", (r >= tr) ? "met" : "MISSED", (p < tp) ? "met" : "MISSED" }')"
        echo "$name ${SIZE[$name]} ${R[$name,cached,rps]} ${R[$name,bare,rps]}" \
            "${R[$name,ratio]}% ${R[$name,bare-sync,rps]} ${R[$name,ratio_sync]}%" \
            "${R[$name,uncached,rps]}" \
            "${R[$name,cached,p50]}ms ${R[$name,cached,p99]}ms ${R[$name,bare,p99]}ms" \
            "${R[$name,cached,hey_rps]}/${R[$name,bare,hey_rps]} $verdict"
    done
} | column -t
for name in "${NAMES[@]}"; do
    echo "RESULT answer=$name bytes=${SIZE[$name]}" \
        "cached_rps=${R[$name,cached,rps]} bare_rps=${R[$name,bare,rps]} ratio_pct=${R[$name,ratio]}" \
        "bare_sync_rps=${R[$name,bare-sync,rps]} ratio_sync_pct=${R[$name,ratio_sync]}" \
        "uncached_rps=${R[$name,uncached,rps]}" \
        "wrk_p99_ms(cached/bare/bare-sync/uncached)=${R[$name,cached,wrk_p99]}/${R[$name,bare,wrk_p99]}/${R[$name,bare-sync,wrk_p99]}/${R[$name,uncached,wrk_p99]}" \
        "wrk_errors(cached/bare/bare-sync/uncached)=${R[$name,cached,errors]}/${R[$name,bare,errors]}/${R[$name,bare-sync,errors]}/${R[$name,uncached,errors]}" \
        "hey_p99_ms(cached/bare)=${R[$name,cached,p99]}/${R[$name,bare,p99]}" \
        "hey_rps(cached/bare)=${R[$name,cached,hey_rps]}/${R[$name,bare,hey_rps]}" \
        "hey_200(cached/bare)=${R[$name,cached,hey_ok]}/${R[$name,bare,hey_ok]}"
done
echo "targets: cached >= $TARGET_RATIO_PCT % of bare (async def) requests/s; cached p99 < $TARGET_P99_MS ms at $HEY_RATE requests/s"
