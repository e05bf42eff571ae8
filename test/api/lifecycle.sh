#!/usr/bin/env bash
# test/api/lifecycle.sh: panko-api as a process: flags and environment
# variables, refusing --auth none off loopback, IPv6, the request log,
# SIGHUP log reopening, SIGTERM draining, slow clients, an unreachable
# database (503) and reconnection after the database drops the connection.
#
# Called by test/api/run.sh with PANKO_API, DB, WORK and the PG* variables
# of its cluster exported.
set -uo pipefail
cd "$(dirname "$0")/../.."
source test/lib.sh
HERE=test/api
fails=0
PIDS=()

ok() { echo "ok   $1"; }
bad() { echo "FAIL $1"; fails=$((fails + 1)); }
expect() { if eval "$2"; then ok "$1"; else bad "$1"; fi; }

cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
    wait 2>/dev/null
}
trap cleanup EXIT

# serve PORTVAR PIDVAR HEALTH_URL ARGS...: start panko-api, wait for health.
serve() {
    local portvar=$1 pidvar=$2 url=$3; shift 3
    "$PANKO_API" "$@" &
    local pid=$!
    PIDS+=("$pid")
    printf -v "$pidvar" '%s' "$pid"
    for _ in $(seq 1 100); do
        if curl -sfg -o /dev/null "$url"; then return 0; fi
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

status_of() { curl -sg -o /dev/null -w '%{http_code}' "$@"; }

# --- flags, --help, --version
help=$("$PANKO_API" --help); rc=$?
expect "--help exits 0" "[ $rc = 0 ]"
for word in --listen --db --auth --cors-origin --prefix --threads --max-limit --max-body \
            --max-filters --statement-timeout \
            --timeout --log --version PANKO_API_LISTEN PANKO_API_DB PANKO_API_AUTH \
            PANKO_API_CORS_ORIGIN PANKO_API_PREFIX PANKO_API_THREADS PANKO_API_MAX_LIMIT \
            PANKO_API_MAX_BODY PANKO_API_TIMEOUT PANKO_API_LOG PANKO_API_MAX_FILTERS \
            PANKO_API_STATEMENT_TIMEOUT keystone-headers BYPASSRLS \
            "CREATE ROLE panko_http LOGIN IN ROLE panko_api"; do
    grep -q -- "$word" <<<"$help" || bad "--help mentions $word"
done
ver=$("$PANKO_API" --version)
want=$(sed -n "s/^default_version *= *'\(.*\)'.*/\1/p" panko.control)
expect "--version prints the extension's version" "[ \"$ver\" = \"panko-api $want\" ]"

for args in "--threads 0" "--threads x" "--listen nonsense" "--listen 127.0.0.1:99999" \
            "--auth bogus" "--prefix telemetry" "--max-body 0" "--timeout 0" \
            "--max-limit -1" "--no-such-flag" "--listen 0.0.0.0:8977 --auth none" \
            "--listen [::]:8977 --auth none" "extra-argument" \
            "--max-filters 0" "--max-filters x" "--max-filters 1e3" "--max-filters 100001" \
            "--statement-timeout -1" "--statement-timeout 1.5" "--statement-timeout x" \
            "--statement-timeout 86401"; do
    # shellcheck disable=SC2086
    "$PANKO_API" $args >/dev/null 2>"$WORK/flag.err"; rc=$?
    expect "refuses $args (exit 2 with a message)" "[ $rc = 2 ] && [ -s $WORK/flag.err ]"
done
grep -q "loopback" "$WORK/flag.err" 2>/dev/null || true
# (timeout: a server that does not refuse would run for ever)
timeout 10 "$PANKO_API" --auth none --cors-origin '*' >/dev/null 2>"$WORK/flag.err"; rc=$?
expect "refuses --auth none with --cors-origin '*' (any web page could read everything)" \
    "[ $rc = 2 ] && grep -q 'any web page' $WORK/flag.err"
PANKO_API_AUTH=none PANKO_API_CORS_ORIGIN='http://a.example *' timeout 10 "$PANKO_API" \
    >/dev/null 2>"$WORK/flag.err"; rc=$?
expect "... also from the environment" "[ $rc = 2 ] && grep -q 'any web page' $WORK/flag.err"
PANKO_API_THREADS=zero "$PANKO_API" >/dev/null 2>"$WORK/flag.err"; rc=$?
expect "refuses a bad environment variable, naming it" \
    "[ $rc = 2 ] && grep -q PANKO_API_THREADS $WORK/flag.err"

# --- environment variables, and flags winning over them
P1=$(free_port)
PANKO_API_LISTEN=127.0.0.1:$P1 PANKO_API_DB="$DB" PANKO_API_PREFIX=/fromenv \
    PANKO_API_LOG="$WORK/env.log" PANKO_API_AUTH=none \
    serve _ ENV_PID "http://127.0.0.1:$P1/fromenv/healthcheck" \
    || bad "server configured from the environment starts"
expect "environment prefix applies" "[ $(status_of http://127.0.0.1:$P1/fromenv/v2/events) = 200 ]"
expect "environment auth none applies" \
    "[ $(status_of http://127.0.0.1:$P1/fromenv/v2/events/ev-b1) = 200 ]"
kill "$ENV_PID"; wait "$ENV_PID" 2>/dev/null
P2=$(free_port)
PANKO_API_LISTEN=127.0.0.1:1 PANKO_API_PREFIX=/fromenv PANKO_API_DB="$DB" \
    serve _ FLAG_PID "http://127.0.0.1:$P2/fromflag/healthcheck" \
    --listen "127.0.0.1:$P2" --prefix /fromflag --log "$WORK/flag.log" \
    || bad "flags override the environment"
expect "the environment's prefix is not used" "[ $(status_of http://127.0.0.1:$P2/fromenv/healthcheck) = 404 ]"
kill "$FLAG_PID"; wait "$FLAG_PID" 2>/dev/null

# --- IPv6 loopback, where --auth none is allowed
if grep -q '^0\{31\}1 ' /proc/net/if_inet6 2>/dev/null; then
    P6=$(free_port)
    if serve _ V6_PID "http://[::1]:$P6/healthcheck" --listen "[::1]:$P6" --db "$DB" \
        --auth none --log "$WORK/v6.log"; then
        expect "IPv6 [::1] serves events with --auth none" \
            "[ $(status_of "http://[::1]:$P6/v2/events/ev-b1") = 200 ]"
        expect "IPv6 versions document" \
            "curl -sg http://[::1]:$P6/ | grep -q '\"href\": \"http://\[::1\]:$P6/v2\"'"
    else
        bad "panko-api listens on [::1]"
    fi
else
    echo "skip IPv6: no ::1 on this machine"
fi

# --- the request log and SIGHUP
P3=$(free_port)
serve _ LOG_PID "http://127.0.0.1:$P3/healthcheck" --listen "127.0.0.1:$P3" --db "$DB" \
    --log "$WORK/req.log" --timeout 1 || bad "server with a log file starts"
rid=$(curl -s -D - -o /dev/null -H 'X-User-Id: u' -H 'X-Project-Id: p' \
      "http://127.0.0.1:$P3/v2/events/ev-a1?x=1" | tr -d '\r' | sed -n 's/^x-openstack-request-id: //p')
sleep 0.2
expect "one log line: method, path, status, duration, request id" \
    "grep -Eq '^[0-9T:.-]+Z GET /v2/events/ev-a1 404 [0-9.]+ms $rid\$' $WORK/req.log"
expect "the query string is not logged" "! grep -q 'x=1' $WORK/req.log"
curl -s -o /dev/null "http://127.0.0.1:$P3/v2/events/%0Aforged"
sleep 0.2
expect "a hostile path cannot forge log lines" "! grep -q '^forged' $WORK/req.log"
mv "$WORK/req.log" "$WORK/req.log.1"
kill -HUP "$LOG_PID"; sleep 0.3
curl -s -o /dev/null "http://127.0.0.1:$P3/v2/capabilities"
sleep 0.2
expect "SIGHUP reopens the log file" "grep -q 'GET /v2/capabilities 200' $WORK/req.log"
expect "the old log is left alone after SIGHUP" "! grep -q capabilities $WORK/req.log.1"
expect "the server survives SIGHUP" "kill -0 $LOG_PID"

# --- slow clients (this server has --timeout 1)
/usr/bin/python3 "$HERE/raw_http.py" --slow-client "$P3" || bad "slow clients are cut off"

# --- reconnect after the database drops the connection
curl -s -o /dev/null -H 'X-User-Id: u' -H 'X-Project-Id: p' "http://127.0.0.1:$P3/v2/events"
psql -qXtA -c "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE usename = 'panko_http'" >/dev/null
sleep 0.3
ok_all=1
for _ in 1 2 3 4; do
    [ "$(status_of -H 'X-User-Id: user-a1' -H 'X-Project-Id: proj-a' "http://127.0.0.1:$P3/v2/events")" = 200 ] || ok_all=0
done
expect "requests succeed after the database terminated the connections" "[ $ok_all = 1 ]"
kill "$LOG_PID"; wait "$LOG_PID" 2>/dev/null

# --- an unreachable database: 503, and the server keeps running
P4=$(free_port); DEAD=$(free_port)
"$PANKO_API" --listen "127.0.0.1:$P4" --db "host=127.0.0.1 port=$DEAD user=panko_http connect_timeout=2" \
    --log "$WORK/dead.log" &
DEAD_PID=$!; PIDS+=("$DEAD_PID")
for _ in $(seq 1 50); do curl -s -o /dev/null "http://127.0.0.1:$P4/" && break; sleep 0.1; done
expect "health check is 503 without a database" "[ $(status_of http://127.0.0.1:$P4/healthcheck) = 503 ]"
body=$(curl -s -H 'X-User-Id: u' -H 'X-Project-Id: p' "http://127.0.0.1:$P4/v2/events")
expect "an API call is 503 with a Server fault without a database" \
    "[ $(status_of http://127.0.0.1:$P4/v2/events) = 503 ] && grep -q '\"faultcode\": \"Server\"' <<<'$body'"
expect "the versions document needs no database" "[ $(status_of http://127.0.0.1:$P4/) = 200 ]"
expect "the server survives without a database" "kill -0 $DEAD_PID"
kill "$DEAD_PID"; wait "$DEAD_PID" 2>/dev/null

# --- SIGTERM drains in-flight requests, refuses new ones, exits 0
P5=$(free_port)
serve _ TERM_PID "http://127.0.0.1:$P5/healthcheck" --listen "127.0.0.1:$P5" --db "$DB" \
    --log "$WORK/term.log" || bad "server for SIGTERM starts"
# wait_for SQL: poll until the query returns t (at most 10 s).
wait_for() {
    for _ in $(seq 1 100); do
        [ "$(psql -qXtA -c "$1")" = t ] && return 0
        sleep 0.1
    done
    return 1
}
# hold a lock that blocks readers, so a request is in flight at SIGTERM
psql -qX -c "BEGIN; LOCK TABLE panko.event IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(3); COMMIT;" \
    >/dev/null 2>&1 &
LOCK_PID=$!
wait_for "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE relation = 'panko.event'::regclass
          AND mode = 'AccessExclusiveLock' AND granted)" || bad "the blocking lock was taken"
curl -s -o "$WORK/drained.json" -w '%{http_code}' -H 'X-User-Id: user-a1' -H 'X-Project-Id: proj-a' \
    "http://127.0.0.1:$P5/v2/events" >"$WORK/drained.status" &
CURL_PID=$!
wait_for "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE usename = 'panko_http'
          AND wait_event_type = 'Lock')" || bad "the request was blocked in the database"
kill -TERM "$TERM_PID"
sleep 0.3
expect "no new connections while draining" "[ $(status_of -m 2 http://127.0.0.1:$P5/healthcheck) = 000 ]"
wait "$TERM_PID"; rc=$?
wait "$CURL_PID"; wait "$LOCK_PID"
expect "SIGTERM exits 0" "[ $rc = 0 ]"
expect "the in-flight request completed with its events" \
    "[ \"\$(cat $WORK/drained.status)\" = 200 ] && grep -q ev-a4 $WORK/drained.json"
expect "the drain is logged" "grep -q 'draining 1 in-flight' $WORK/term.log"

echo "lifecycle: $fails failed"
[ "$fails" = 0 ]
