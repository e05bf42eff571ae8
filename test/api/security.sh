#!/usr/bin/env bash
# test/api/security.sh: panko-api's guards that need servers of their own or
# the database's cooperation:
#   - the statement timeout (--statement-timeout, PANKO_API_STATEMENT_TIMEOUT):
#     a request blocked in the database answers 503 in bounded time;
#   - a client that goes away has its query cancelled, and the connection
#     serves the next request;
#   - a login role that bypasses row-level security (superuser, BYPASSRLS,
#     member of the tables' owner) is refused at startup, in every --auth
#     mode, and a reconnection to such a role answers 503;
#   - --max-filters from the environment;
#   - responses are UTF-8 whatever client encoding the environment or the
#     conninfo asks for.
#
# Called by test/api/run.sh with PANKO_API, DB, WORK and the PG* variables
# of its cluster exported.  Blocking is done with a lock held by psql.
set -uo pipefail
cd "$(dirname "$0")/../.."
source test/lib.sh
fails=0
PIDS=()
LOCK_PID=

ok() { echo "ok   $1"; }
bad() { echo "FAIL $1"; fails=$((fails + 1)); }
expect() { if eval "$2"; then ok "$1"; else bad "$1"; fi; }

cleanup() {
    release_lock
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
    wait 2>/dev/null
}
trap cleanup EXIT

CONN="host=$PGHOST port=$PGPORT dbname=${PGDATABASE:-postgres}"
MEMBER_B=(-H 'X-User-Id: user-b1' -H 'X-Project-Id: proj-b' -H 'X-Roles: member')

# serve NAME PORTVAR PIDVAR ARGS...: start panko-api on a free port with
# --db "$DB" unless ARGS give another, wait for its health check.
serve() {
    local name=$1 portvar=$2 pidvar=$3; shift 3
    local port pid
    port=$(free_port)
    "$PANKO_API" --listen "127.0.0.1:$port" --db "$DB" --log "$WORK/sec-$name.log" "$@" \
        2>>"$WORK/sec-$name.err" &
    pid=$!
    PIDS+=("$pid")
    printf -v "$portvar" '%s' "$port"
    printf -v "$pidvar" '%s' "$pid"
    for _ in $(seq 1 100); do
        if curl -sf -o /dev/null "http://127.0.0.1:$port/healthcheck"; then return 0; fi
        kill -0 "$pid" 2>/dev/null || { cat "$WORK/sec-$name.err"; return 1; }
        sleep 0.1
    done
    return 1
}

# wait_for SQL [TENTHS]: poll until the query returns t (default 10 s).
wait_for() {
    for _ in $(seq 1 "${2:-100}"); do
        [ "$(psql -qXtA -c "$1")" = t ] && return 0
        sleep 0.1
    done
    return 1
}

# hold_lock: a psql session holds ACCESS EXCLUSIVE on panko.event (so that
# GET /v2/events blocks) until release_lock.
hold_lock() {
    PGAPPNAME=panko_test_lock psql -qX \
        -c "BEGIN; LOCK TABLE panko.event IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(120); COMMIT;" \
        >/dev/null 2>&1 &
    LOCK_PID=$!
    wait_for "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE relation = 'panko.event'::regclass
              AND mode = 'AccessExclusiveLock' AND granted)"
}

release_lock() {
    [ -n "$LOCK_PID" ] || return 0
    psql -qXtA -c "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                   WHERE application_name = 'panko_test_lock'" >/dev/null
    wait "$LOCK_PID" 2>/dev/null
    LOCK_PID=
}

# now_ms: wall clock in milliseconds.
now_ms() { local t=${EPOCHREALTIME/./}; echo $((t / 1000)); }

# ids FILE: the message ids of a JSON list of events, as id,id,...
ids() {
    /usr/bin/python3 -c 'import json,sys; print(",".join(e["message_id"] for e in json.load(open(sys.argv[1]))))' "$1" 2>/dev/null
}

# get FILE URL CURL_ARGS...: GET into FILE, print the status.
get() {
    local file=$1 url=$2; shift 2
    curl -s -m 20 -o "$file" -w '%{http_code}' "$@" "$url"
}

# A panko-api backend waiting for the lock in api_get_events?
BLOCKED_SQL="SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE application_name = 'panko-api'
             AND state = 'active' AND wait_event_type = 'Lock' AND query LIKE '%api_get_events%')"

# --- the statement timeout: a blocked request is 503 in bounded time
serve timeout T_PORT T_PID --threads 1 --statement-timeout 1 || bad "server with --statement-timeout 1 starts"
PANKO_API_STATEMENT_TIMEOUT=1 serve timeout-env TE_PORT TE_PID --threads 1 \
    || bad "server with PANKO_API_STATEMENT_TIMEOUT=1 starts"
hold_lock || bad "the blocking lock was taken"
for which in T TE; do
    port_var=${which}_PORT
    t0=$(now_ms)
    code=$(get "$WORK/sec.json" "http://127.0.0.1:${!port_var}/v2/events" "${MEMBER_B[@]}")
    ms=$(($(now_ms) - t0))
    expect "$which: a request blocked in the database is 503 with a Server fault" \
        "[ '$code' = 503 ] && grep -q '\"faultcode\": \"Server\"' $WORK/sec.json &&
         grep -q 'statement timeout' $WORK/sec.json"
    expect "$which: ... after about one second (${ms} ms)" "[ $ms -ge 900 ] && [ $ms -lt 5000 ]"
done
release_lock
code=$(get "$WORK/sec.json" "http://127.0.0.1:$T_PORT/v2/events" "${MEMBER_B[@]}")
expect "the connection serves the next request after a timeout" \
    "[ $code = 200 ] && [ \"\$(ids $WORK/sec.json)\" = ev-b1,ev-b2 ]"
kill "$T_PID" "$TE_PID"; wait "$T_PID" "$TE_PID" 2>/dev/null

# --- a client that goes away: its query is cancelled (no --statement-timeout
# here: the default of 10 s is far longer than the 2 s allowed)
serve cancel C_PORT C_PID --threads 1 || bad "server for the cancellation starts"
hold_lock || bad "the blocking lock was taken"
curl -s -o /dev/null -m 60 "${MEMBER_B[@]}" "http://127.0.0.1:$C_PORT/v2/events" &
CURL_PID=$!
wait_for "$BLOCKED_SQL" || bad "the request was blocked in the database"
kill "$CURL_PID"; wait "$CURL_PID" 2>/dev/null
expect "the query of a client that went away is cancelled within 2 s" \
    'wait_for "SELECT NOT (${BLOCKED_SQL#SELECT })" 20'
expect "the same connection then serves the health check" \
    "[ \"\$(curl -s -m 5 http://127.0.0.1:$C_PORT/healthcheck)\" = OK ]"
release_lock
code=$(get "$WORK/sec.json" "http://127.0.0.1:$C_PORT/v2/events" "${MEMBER_B[@]}")
expect "... and the next query" "[ $code = 200 ] && [ \"\$(ids $WORK/sec.json)\" = ev-b1,ev-b2 ]"
expect "the cancellation is logged" "grep -q 'went away' $WORK/sec-cancel.log"
kill "$C_PID"; wait "$C_PID" 2>/dev/null

# --- roles that bypass row-level security are refused at startup
psql -qX -v ON_ERROR_STOP=1 \
    -c "DROP ROLE IF EXISTS panko_bypass, panko_owner, panko_flip" \
    -c "CREATE ROLE panko_bypass LOGIN BYPASSRLS IN ROLE panko_api" \
    -c "CREATE ROLE panko_owner LOGIN IN ROLE panko_api, postgres" \
    -c "CREATE ROLE panko_flip LOGIN IN ROLE panko_api" >/dev/null || bad "test roles created"
for case in "postgres keystone-headers" "postgres none" "panko_bypass keystone-headers" \
            "panko_bypass none" "panko_owner keystone-headers"; do
    read -r role mode <<<"$case"
    port=$(free_port)
    timeout 10 "$PANKO_API" --listen "127.0.0.1:$port" --db "$CONN user=$role" --auth "$mode" \
        >/dev/null 2>"$WORK/sec-role.err"; rc=$?
    expect "refuses to start as $role with --auth $mode (exit $rc)" "[ $rc != 0 ] && [ $rc != 124 ]"
    expect "... naming the role and the fix" \
        "grep -q '\"$role\"' $WORK/sec-role.err && grep -q 'CREATE ROLE panko_http LOGIN IN ROLE panko_api' $WORK/sec-role.err"
done

# --- a reconnection to a role that has become BYPASSRLS answers 503
serve flip F_PORT F_PID --threads 1 --db "$CONN user=panko_flip" || bad "server as panko_flip starts"
code=$(get "$WORK/sec.json" "http://127.0.0.1:$F_PORT/v2/events" "${MEMBER_B[@]}")
expect "a member sees its own events" "[ $code = 200 ] && [ \"\$(ids $WORK/sec.json)\" = ev-b1,ev-b2 ]"
psql -qXtA -c "ALTER ROLE panko_flip BYPASSRLS" \
    -c "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE usename = 'panko_flip'" >/dev/null
sleep 0.3
code=$(get "$WORK/sec.json" "http://127.0.0.1:$F_PORT/v2/events" "${MEMBER_B[@]}")
expect "after reconnecting to a BYPASSRLS role, requests are 503 ($code)" \
    "[ $code = 503 ] && ! grep -q message_id $WORK/sec.json"
code=$(get /dev/null "http://127.0.0.1:$F_PORT/healthcheck")
expect "the health check is 503 too ($code)" "[ $code = 503 ]"
expect "the refusal is logged, naming the role" \
    "grep -q 'not serving: .*\"panko_flip\" has BYPASSRLS' $WORK/sec-flip.log"
psql -qXtA -c "ALTER ROLE panko_flip NOBYPASSRLS" >/dev/null
code=$(get "$WORK/sec.json" "http://127.0.0.1:$F_PORT/v2/events" "${MEMBER_B[@]}")
expect "without BYPASSRLS again, the server serves again, with row-level security" \
    "[ $code = 200 ] && [ \"\$(ids $WORK/sec.json)\" = ev-b1,ev-b2 ]"
kill "$F_PID"; wait "$F_PID" 2>/dev/null

# --- --max-filters from the environment
q_items() { local i out=; for i in $(seq 1 "$1"); do out+="q.field=host&q.value=compute-1&"; done; echo "${out%&}"; }
PANKO_API_MAX_FILTERS=3 serve filters M_PORT M_PID || bad "server with PANKO_API_MAX_FILTERS=3 starts"
code=$(get "$WORK/sec.json" "http://127.0.0.1:$M_PORT/v2/events?$(q_items 3)" "${MEMBER_B[@]}")
expect "3 filters are served" "[ $code = 200 ]"
code=$(get "$WORK/sec.json" "http://127.0.0.1:$M_PORT/v2/events?$(q_items 4)" "${MEMBER_B[@]}")
expect "4 filters are 400" \
    "[ $code = 400 ] && grep -q 'Too many filters: 4 given, at most 3 are allowed' $WORK/sec.json"
kill "$M_PID"; wait "$M_PID" 2>/dev/null

# --- UTF-8 responses whatever client encoding is asked for
events='[{"message_id": "enc-1", "event_type": "image.upload", "generated": "2024-06-01T00:00:00",
          "traits": [["project_id", 1, "proj-enc"], ["label", 1, "café"]], "raw": {"note": "déjà"}}]'
psql -qXtA -v ON_ERROR_STOP=1 -v events="$events" \
    <<<"SELECT count(*) FROM panko.record_events(:'events');" >/dev/null || bad "the encoding event is stored"
ADMIN_ENC=(-H 'X-User-Id: admin-e' -H 'X-Project-Id: proj-enc' -H 'X-Roles: admin')
PGCLIENTENCODING=LATIN1 serve enc-env E1_PORT E1_PID || bad "server with PGCLIENTENCODING=LATIN1 starts"
serve enc-conninfo E2_PORT E2_PID --db "$DB client_encoding=LATIN1" || bad "server with client_encoding=LATIN1 starts"
for port in "$E1_PORT" "$E2_PORT"; do
    code=$(get "$WORK/enc.json" "http://127.0.0.1:$port/v2/events/enc-1" "${ADMIN_ENC[@]}")
    expect "the event comes back in UTF-8 (port $port)" \
        "[ $code = 200 ] && iconv -f UTF-8 -t UTF-8 $WORK/enc.json >/dev/null 2>&1 &&
         grep -q 'café' $WORK/enc.json && grep -q 'déjà' $WORK/enc.json"
done
kill "$E1_PID" "$E2_PID"; wait "$E1_PID" "$E2_PID" 2>/dev/null

echo "security: $fails failed"
[ "$fails" = 0 ]
