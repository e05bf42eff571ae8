#!/usr/bin/env bash
# test/api/run.sh: panko-api against a real cluster.
#
# Assumes `make install` was run (the extension and panko-api installed).
# Starts a throwaway cluster, loads deterministic fixture events, starts
# several panko-api instances on free ports and runs:
#   - gabbi YAML suites (test/api/gabbits/*.yaml) with gabbi-run;
#   - raw HTTP checks gabbi cannot express (raw_http.py);
#   - server lifecycle checks: flags, SIGHUP, SIGTERM drain (lifecycle.sh);
#   - the security guards: statement timeout, cancelling the query of a
#     client that went away, refusing roles that bypass row-level security,
#     bounded filters, UTF-8 responses (security.sh; raw_http.py --noauth for
#     the Host check of --auth none);
#   - the real openstack CLI (cli.sh), Ceilometer's HTTP publisher
#     (ceilometer_publish.py) and a kill -9 durability check (durability.sh);
#   - --auth keystone against a real Keystone (keystone.sh, with
#     test/keystone/lib.sh): the CLI through the catalog as admin and as
#     members of two projects, 401/503, revocation, expiry, single flight.
# Exits non-zero when anything failed, naming each failure.
#
#   bash test/api/run.sh                         every check
#   bash test/api/run.sh events.yaml rbac.yaml   some gabbi files (and/or
#       checks by name: raw_http lifecycle security cli ceilometer durability
#       keystone)
set -uo pipefail
ONLY=("$@")
cd "$(dirname "$0")/../.."
ROOT=$PWD
HERE=$ROOT/test/api
source test/lib.sh

export PANKO_API=${PANKO_API:-$(pg_config --bindir)/panko-api}
PY=/usr/bin/python3
failures=()
SERVER_PIDS=()
WORK=$(mktemp -d /tmp/panko-api-test-XXXXXX)
export WORK

cleanup() {
    for pid in "${SERVER_PIDS[@]}"; do
        kill "$pid" 2>/dev/null
    done
    for pid in "${SERVER_PIDS[@]}"; do
        wait "$pid" 2>/dev/null
    done
    pg_stop
    if [ ${#failures[@]} -gt 0 ]; then
        echo "server logs kept in $WORK"
    else
        rm -rf "$WORK"
    fi
}

# want KEY: is this check among the ones asked for (all when none were)?
want() {
    [ ${#ONLY[@]} -eq 0 ] && return 0
    local k
    for k in "${ONLY[@]}"; do [ "$k" = "$1" ] && return 0; done
    return 1
}

# check NAME CMD...: run one check, remember it when it fails.
CHECKS_RUN=0
check() {
    local name=$1; shift
    CHECKS_RUN=$((CHECKS_RUN + 1))
    echo "=== api: $name"
    if "$@"; then
        echo "--- api: $name: ok"
    else
        echo "--- api: $name: FAILED"
        failures+=("$name")
    fi
}

# start_server NAME VAR_PREFIX ARGS...: start panko-api on a free port, wait
# for /healthcheck; sets <VAR_PREFIX>_PORT, <VAR_PREFIX>_PID and exports the port.
start_server() {
    local name=$1 var=$2; shift 2
    local port pid i
    port=$(free_port)
    "$PANKO_API" --listen "127.0.0.1:$port" --db "$DB" --threads 2 \
        --log "$WORK/$name.log" "$@" 2>>"$WORK/$name.err" &
    pid=$!
    SERVER_PIDS+=("$pid")
    for i in $(seq 1 100); do
        if curl -sf -o /dev/null "http://127.0.0.1:$port${PREFIX_FOR_HEALTH:-}/healthcheck"; then
            printf -v "${var}_PORT" '%s' "$port"
            printf -v "${var}_PID" '%s' "$pid"
            export "${var}_PORT"
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "panko-api $name exited at startup:"; cat "$WORK/$name.err" "$WORK/$name.log"
            return 1
        fi
        sleep 0.1
    done
    echo "panko-api $name did not become healthy"; cat "$WORK/$name.err" "$WORK/$name.log"
    return 1
}

# gabbi FILE PORT [PREFIX]: one gabbi suite against a server.
gabbi() {
    local file=$1 port=$2 prefix=${3:-}
    gabbi-run "http://127.0.0.1:$port$prefix" -- "$HERE/gabbits/$file"
}

[ -x "$PANKO_API" ] || { echo "panko-api not installed at $PANKO_API (run make install)"; exit 1; }
command -v gabbi-run >/dev/null || { echo "gabbi-run missing (apt-get install python3-gabbi)"; exit 1; }

pg_start api || exit 1
trap cleanup EXIT
export PGDATA_DIR PG_TMP PGBIN

psql -qX -v ON_ERROR_STOP=1 \
    -c "CREATE EXTENSION panko" \
    -c "CREATE ROLE panko_http LOGIN IN ROLE panko_api" >/dev/null || exit 1
not_stored=$(psql -qXtA -v ON_ERROR_STOP=1 -v events="$(cat "$HERE/fixtures/events.json")" \
    <<<"SELECT count(*) FROM panko.record_events(:'events');") || exit 1
if [ "$not_stored" != 0 ]; then
    echo "fixture events were not all stored ($not_stored problems)"; exit 1
fi
export DB="host=$PGHOST port=$PGPORT dbname=${PGDATABASE:-postgres} user=panko_http"

# The servers: main (keystone-headers), CORS with a small limit cap,
# mounted under a prefix, and auth none for the CLI and Ceilometer.
start_server main MAIN --max-body 4096 || exit 1
start_server cors CORS --cors-origin http://horizon.example \
    --cors-origin http://other.example --max-limit 2 || exit 1
PREFIX_FOR_HEALTH=/telemetry start_server prefix PREFIX --prefix /telemetry/ || exit 1
start_server noauth NOAUTH --auth none || exit 1

want basics.yaml && check "gabbi basics" gabbi basics.yaml "$MAIN_PORT"
want encoding.yaml && check "gabbi encoding" gabbi encoding.yaml "$MAIN_PORT"
want events.yaml && check "gabbi events" gabbi events.yaml "$MAIN_PORT"
want rbac.yaml && check "gabbi rbac" gabbi rbac.yaml "$MAIN_PORT"
want cors.yaml && check "gabbi cors" gabbi cors.yaml "$CORS_PORT"
want prefix.yaml && check "gabbi prefix" gabbi prefix.yaml "$PREFIX_PORT" /telemetry
want noauth.yaml && check "gabbi auth none" gabbi noauth.yaml "$NOAUTH_PORT"
want raw_http && check "raw http" $PY "$HERE/raw_http.py" "$MAIN_PORT"
want raw_http && check "raw http, auth none" $PY "$HERE/raw_http.py" --noauth "$NOAUTH_PORT" "$NOAUTH_PID"
want ingest.yaml && check "gabbi ingest" gabbi ingest.yaml "$MAIN_PORT"
want lifecycle && check "lifecycle" bash "$HERE/lifecycle.sh"
want security && check "security" bash "$HERE/security.sh"
want cli && check "openstack cli" bash "$HERE/cli.sh" "$NOAUTH_PORT"
want ceilometer && check "ceilometer publisher" $PY "$HERE/ceilometer_publish.py" "$NOAUTH_PORT"
want durability && check "durability (kill -9)" bash "$HERE/durability.sh" "$NOAUTH_PORT"
want keystone && check "auth keystone (a real Keystone)" bash "$HERE/keystone.sh"

[ "$CHECKS_RUN" -gt 0 ] || { echo "test/api: no check matches: ${ONLY[*]}"; failures+=("none run"); }
echo
if [ ${#failures[@]} -gt 0 ]; then
    echo "test/api: FAILED: ${failures[*]}"
    exit 1
fi
echo "test/api: all passed"
exit 0
