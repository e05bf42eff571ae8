#!/usr/bin/env bash
# test/api/keystone.sh: panko-api --auth keystone against a real Keystone
# (test/keystone/lib.sh), on the cluster test/api/run.sh started (DB,
# PGHOST, PGPORT, PANKO_API and WORK come from it).
#
#   - panko registered in the catalog (keystone_setup_panko): the real
#     openstack CLI with password auth through the catalog, no --os-endpoint,
#     as admin, alice (member of p1), bob (member of p2) and carol (admin of
#     p1), each seeing what the RBAC rules say of fixture events whose
#     project_id/user_id traits are the Keystone ids; event show of another
#     project's event refused;
#   - 401 with WWW-Authenticate for no token, a garbage token, a revoked
#     token (once --token-cache-time has passed) and, on a second Keystone
#     with a short token lifetime, an expired token (the cache never keeps
#     a token past its expires_at; the service token is renewed meanwhile);
#   - identity headers ignored; a repeated X-Auth-Token refused;
#   - Keystone stopped: a new token gets 503 (a cached one is still served);
#     Keystone back: served again, same panko-api process;
#   - Ceilometer's real http publisher posting with the ceilometer service
#     user's token;
#   - 16 concurrent requests with one new token: one Keystone validation;
#   - start-up: refused credentials stop panko-api, an unreachable Keystone
#     does not (503 until it answers).
#
# KEYSTONE_TEST_AUTH=keystone-headers runs the same checks against a server
# that does not validate tokens (to see them fail).
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
HERE=$ROOT/test/api
PY=/usr/bin/python3
# shellcheck source=test/keystone/lib.sh
. "$ROOT/test/keystone/lib.sh"

AUTH=${KEYSTONE_TEST_AUTH:-keystone}
KWORK=$WORK/keystone
mkdir -p "$KWORK"
fails=0
API_PID=

ok() { echo "ok   $1"; }
bad() { echo "FAIL $1"; [ -z "${2:-}" ] || echo "$2" | head -20 | sed 's/^/     /'; fails=$((fails + 1)); }
expect() {    # expect NAME WANT GOT [DETAIL]
    if [ "$2" = "$3" ]; then ok "$1"; else bad "$1 (want $2, got $3)" "${4:-}"; fi
}

stop_api() {
    if [ -n "$API_PID" ]; then
        kill "$API_PID" 2>/dev/null
        wait "$API_PID" 2>/dev/null
        API_PID=
    fi
}
cleanup() { stop_api; keystone_cleanup; }
trap cleanup EXIT

# start_api NAME PORT ARGS...: panko-api in keystone mode as the panko
# service user; waits for /healthcheck; API_PID, API_LOG.
start_api() {
    local name=$1 port=$2 i; shift 2
    API_LOG=$KWORK/$name.log
    local creds=()
    if [ "$AUTH" = keystone ]; then
        creds=(--keystone-url "$KEYSTONE_URL" --keystone-user "$KS_PANKO_USER"
            --keystone-password-file "$KWORK/panko.pw" --keystone-project "$KS_SERVICE_PROJECT")
    fi
    "$PANKO_API" --listen "127.0.0.1:$port" --db "$DB" --auth "$AUTH" "${creds[@]}" \
        --log "$API_LOG" "$@" 2>>"$KWORK/$name.err" &
    API_PID=$!
    for i in $(seq 1 100); do
        curl -sf -o /dev/null "http://127.0.0.1:$port/healthcheck" && return 0
        kill -0 "$API_PID" 2>/dev/null || { cat "$KWORK/$name.err"; API_PID=; return 1; }
        sleep 0.1
    done
    echo "panko-api $name did not become healthy"; cat "$KWORK/$name.err"
    return 1
}

# status URL [CURL ARGS...]: the HTTP status (body in $KWORK/body, headers in $KWORK/headers)
status() {
    local url=$1; shift
    curl -s -o "$KWORK/body" -D "$KWORK/headers" -w '%{http_code}' --max-time 30 "$@" "$url" || true
}
www_auth_ok() {
    grep -qi "^WWW-Authenticate: Keystone uri=\"$KEYSTONE_ROOT_URL\"" "$KWORK/headers"
}
# ids NAME TOKEN: the message_ids of the test's events a token sees, sorted
ids() {
    curl -s --max-time 30 -H "X-Auth-Token: $1" \
        "http://127.0.0.1:$PORT/v2/events?q.field=event_type&q.value=keystone.test&limit=100${2:-}" |
        $PY -c 'import json,sys
try:
    print(" ".join(sorted(e["message_id"] for e in json.load(sys.stdin))))
except Exception as e:
    print("(not a list: %s)" % e)'
}
validations() { grep -c 'keystone: GET /v3/auth/tokens?nocatalog' "$API_LOG"; }

# keystone_up EXPIRATION: a Keystone with panko in its catalog at a free
# PORT; one more try on a failure (its message is printed), since a stray
# line on the CLI's stderr fails keystone_setup_panko
keystone_up() {
    local try
    for try in 1 2; do
        PORT=$(_ks_free_port)
        if keystone_start "$1" && keystone_setup_panko "http://127.0.0.1:$PORT"; then
            echo "keystone up in ${KEYSTONE_START_SECONDS}s (tokens live $1 s)"
            return 0
        fi
        echo "keystone: start or catalog setup failed (try $try)" >&2
        keystone_cleanup
    done
    return 1
}

# ---- Keystone, the catalog, the fixture --------------------------------
keystone_up 3600 || exit 1
umask 077
printf '%s\n' "$KS_PANKO_PASSWORD" >"$KWORK/panko.pw"

events=$($PY - <<EOF
import json
def ev(mid, project, user, i):
    traits = [{"name": "service", "type": "string", "value": "compute"}]
    if project:
        traits.append({"name": "project_id", "type": "string", "value": project})
    if user:
        traits.append({"name": "user_id", "type": "string", "value": user})
    return {"message_id": mid, "event_type": "keystone.test",
            "generated": "2024-05-01T00:00:%02d" % i, "traits": traits, "raw": {}}
print(json.dumps([ev("ks-a1", "$KS_P1_ID", "$KS_ALICE_ID", 1),
                  ev("ks-a2", "$KS_P1_ID", "$KS_ALICE_ID", 2),
                  ev("ks-c1", "$KS_P1_ID", "$KS_CAROL_ID", 3),
                  ev("ks-b1", "$KS_P2_ID", "$KS_BOB_ID", 4),
                  ev("ks-np", None, None, 5)]))
EOF
)
n=$(psql -qXtA -v ON_ERROR_STOP=1 -v events="$events" <<<"SELECT count(*) FROM panko.record_events(:'events');") || exit 1
[ "$n" = 0 ] || { echo "fixture: $n events not stored"; exit 1; }

start_api main "$PORT" --threads 8 --token-cache-time 3 || exit 1
BASE=http://127.0.0.1:$PORT

ALICE=$(keystone_token alice "$KS_ALICE_PASSWORD" p1) || exit 1
BOB=$(keystone_token bob "$KS_BOB_PASSWORD" p2) || exit 1
CAROL=$(keystone_token carol "$KS_CAROL_PASSWORD" p1) || exit 1
ADMIN=$(keystone_token admin "$KS_ADMIN_PASSWORD" admin) || exit 1

# ---- the openstack CLI through the catalog -----------------------------
cli() {    # cli USER PASSWORD PROJECT ARGS...
    local u=$1 p=$2 pr=$3; shift 3
    ( keystone_os_env "$u" "$p" "$pr" && exec $PY /usr/bin/openstack "$@" ) 2>&1
}
cli_ids() {    # cli_ids USER PASSWORD PROJECT [FILTERS...]
    local u=$1 p=$2 pr=$3; shift 3
    cli "$u" "$p" "$pr" event list --filter event_type=keystone.test "$@" -f value -c message_id | sort | tr '\n' ' ' | sed 's/ $//'
}
expect "cli: alice (member of p1) sees her own events" "ks-a1 ks-a2" "$(cli_ids alice "$KS_ALICE_PASSWORD" p1)"
expect "cli: bob (member of p2) sees his own event" "ks-b1" "$(cli_ids bob "$KS_BOB_PASSWORD" p2)"
expect "cli: carol (admin of p1) sees p1's events and those without a project" \
    "ks-a1 ks-a2 ks-c1 ks-np" "$(cli_ids carol "$KS_CAROL_PASSWORD" p1)"
expect "cli: admin (admin of project admin) sees the events without a project" \
    "ks-np" "$(cli_ids admin "$KS_ADMIN_PASSWORD" admin)"
expect "cli: admin with all_tenants sees everything" "ks-a1 ks-a2 ks-b1 ks-c1 ks-np" \
    "$(cli_ids admin "$KS_ADMIN_PASSWORD" admin --filter all_tenants=true)"
expect "cli: alice's all_tenants is an ordinary filter" "" \
    "$(cli_ids alice "$KS_ALICE_PASSWORD" p1 --filter all_tenants=true)"
out=$(cli alice "$KS_ALICE_PASSWORD" p1 event show ks-a1 -f json)
if grep -q '"message_id": "ks-a1"' <<<"$out"; then ok "cli: alice's event show of her event"; else bad "cli: alice's event show of her event" "$out"; fi
out=$(cli alice "$KS_ALICE_PASSWORD" p1 event show ks-b1 -f json)
if grep -q "Event ks-b1 Not Found (HTTP 404)" <<<"$out"; then ok "cli: alice's event show of p2's event is refused"; else bad "cli: alice's event show of p2's event is refused" "$out"; fi
out=$(cli bob "$KS_BOB_PASSWORD" p2 event type list -f value)
if grep -q "HTTP 401" <<<"$out"; then ok "cli: event type list is admin-only (bob: 401)"; else bad "cli: event type list is admin-only (bob: 401)" "$out"; fi
out=$(cli carol "$KS_CAROL_PASSWORD" p1 event type list -f value)
if grep -qx "keystone.test" <<<"$out"; then ok "cli: carol lists event types"; else bad "cli: carol lists event types" "$out"; fi

# ---- tokens: missing, garbage, revoked ---------------------------------
st=$(status "$BASE/v2/events")
expect "no token: 401" 401 "$st" "$(cat "$KWORK/body")"
www_auth_ok && ok "... with WWW-Authenticate: Keystone uri=" || bad "... with WWW-Authenticate" "$(cat "$KWORK/headers")"
grep -q '"faultcode": "Client"' "$KWORK/body" && ok "... and Panko's error body" || bad "... and Panko's error body" "$(cat "$KWORK/body")"
st=$(status "$BASE/v2/events" -H "X-Auth-Token: gAAAAABgarbage-not-a-token")
expect "garbage token: 401" 401 "$st" "$(cat "$KWORK/body")"
www_auth_ok && ok "... with WWW-Authenticate" || bad "... with WWW-Authenticate" "$(cat "$KWORK/headers")"
st=$(status "$BASE/v2/events" -H "X-Auth-Token: has space")
expect "malformed token: 401" 401 "$st" "$(cat "$KWORK/body")"
for route in /v2/events/ks-a1 /v2/event_types /v2/event_types/keystone.test/traits /v2/capabilities; do
    expect "no token on $route: 401" 401 "$(status "$BASE$route")"
done
expect "POST without a token: 401" 401 "$(status "$BASE/v2/events" -H 'Content-Type: application/json' --data-binary '[]')"
expect "/ needs no token" 200 "$(status "$BASE/")"
expect "/healthcheck needs no token" 200 "$(status "$BASE/healthcheck")"
expect "a repeated X-Auth-Token: 400" 400 "$(status "$BASE/v2/events" -H "X-Auth-Token: $ALICE" -H "X-Auth-Token: $BOB")"

REVOKED=$(keystone_token alice "$KS_ALICE_PASSWORD" p1) || exit 1
expect "a fresh token is served" "ks-a1 ks-a2" "$(ids "$REVOKED")"
keystone_openstack token revoke "$REVOKED" >/dev/null 2>&1 || bad "openstack token revoke"
expect "keystone itself: the revoked token is gone" 404 "$(keystone_validate "$ADMIN" "$REVOKED")"
sleep 4    # --token-cache-time 3
st=$(status "$BASE/v2/events" -H "X-Auth-Token: $REVOKED")
expect "revoked token, after the cache time: 401" 401 "$st" "$(cat "$KWORK/body")"
www_auth_ok && ok "... with WWW-Authenticate" || bad "... with WWW-Authenticate" "$(cat "$KWORK/headers")"

# ---- identity comes from the token only --------------------------------
expect "alice's token with X-User-Id/X-Project-Id/X-Roles of another: still alice" "ks-a1 ks-a2" \
    "$(curl -s -H "X-Auth-Token: $ALICE" -H "X-User-Id: $KS_BOB_ID" -H "X-Project-Id: $KS_P2_ID" \
        -H "X-Roles: admin" "$BASE/v2/events?q.field=event_type&q.value=keystone.test" |
        $PY -c 'import json,sys; print(" ".join(sorted(e["message_id"] for e in json.load(sys.stdin))))' 2>&1)"
expect "identity headers without a token: 401" 401 \
    "$(status "$BASE/v2/event_types" -H "X-User-Id: $KS_ADMIN_ID" -H "X-Project-Id: $KS_ADMIN_PROJECT_ID" -H "X-Roles: admin")"
expect "repeated identity headers are ignored too (alice)" "ks-a1 ks-a2" \
    "$(curl -s -H "X-Auth-Token: $ALICE" -H "X-Roles: admin" -H "X-Roles: admin" \
        "$BASE/v2/events?q.field=event_type&q.value=keystone.test" |
        $PY -c 'import json,sys; print(" ".join(sorted(e["message_id"] for e in json.load(sys.stdin))))' 2>&1)"
expect "bob's token sees bob's event" "ks-b1" "$(ids "$BOB")"
expect "carol's token sees p1's events and those without a project" "ks-a1 ks-a2 ks-c1 ks-np" "$(ids "$CAROL")"

# ---- single flight: concurrent requests with one new token -------------
NEW=$(keystone_token bob "$KS_BOB_PASSWORD" p2) || exit 1
before=$(validations)
flight=()
for i in $(seq 16); do
    curl -s -o /dev/null -w '%{http_code}\n' -H "X-Auth-Token: $NEW" "$BASE/v2/events?limit=1" >>"$KWORK/flight" &
    flight+=($!)
done
wait "${flight[@]}"
after=$(validations)
expect "16 concurrent requests with a new token: all 200" 16 "$(grep -c '^200$' "$KWORK/flight")"
expect "... and one Keystone validation" 1 "$((after - before))"

# ---- Ceilometer's publisher with the ceilometer service user's token ----
CEILO=$(keystone_token ceilometer "$KS_CEILOMETER_PASSWORD" service) || exit 1
if out=$($PY "$HERE/ceilometer_publish.py" "$PORT" --token "$CEILO" --read-token "$ADMIN" \
        --project proj-ceilometer-keystone 2>&1); then
    ok "ceilometer publisher posts with the ceilometer user's token"
else
    bad "ceilometer publisher posts with the ceilometer user's token" "$out"
fi
expect "POST with alice's token (no service role): 403" 403 \
    "$(status "$BASE/v2/events" -H "X-Auth-Token: $ALICE" -H 'Content-Type: application/json' --data-binary '[]')"

# ---- Keystone down, Keystone back --------------------------------------
UNSEEN=$(keystone_token bob "$KS_BOB_PASSWORD" p2) || exit 1
CACHED=$(keystone_token alice "$KS_ALICE_PASSWORD" p1) || exit 1
expect "a token seen before Keystone stops" "ks-a1 ks-a2" "$(ids "$CACHED")"
keystone_stop
st=$(status "$BASE/v2/events" -H "X-Auth-Token: $UNSEEN")
expect "Keystone stopped: a new token gets 503" 503 "$st" "$(cat "$KWORK/body")"
expect "Keystone stopped: a token validated moments ago is still served (cache)" "ks-a1 ks-a2" "$(ids "$CACHED")"
expect "Keystone stopped: no token is still 401" 401 "$(status "$BASE/v2/events")"
expect "Keystone stopped: /healthcheck is the database's" 200 "$(status "$BASE/healthcheck")"
pid_before=$API_PID
keystone_restart || bad "keystone_restart"
sleep 1
st=$(status "$BASE/v2/events?limit=1" -H "X-Auth-Token: $UNSEEN")
expect "Keystone back: the new token is served" 200 "$st" "$(cat "$KWORK/body")"
kill -0 "$pid_before" 2>/dev/null && [ "$API_PID" = "$pid_before" ] &&
    ok "... by the same panko-api process" || bad "... by the same panko-api process"
grep -q "$ALICE\|$BOB\|$CAROL\|$NEW\|$REVOKED" "$API_LOG" "$KWORK/main.err" &&
    bad "tokens appear in panko-api's log" || ok "no token appears in panko-api's log"
stop_api

# ---- start-up ----------------------------------------------------------
if [ "$AUTH" = keystone ]; then
    printf 'wrong\n' >"$KWORK/wrong.pw"
    p=$(_ks_free_port)
    "$PANKO_API" --listen "127.0.0.1:$p" --db "$DB" --auth keystone --keystone-url "$KEYSTONE_URL" \
        --keystone-user panko --keystone-password-file "$KWORK/wrong.pw" --keystone-project service \
        >"$KWORK/wrong.out" 2>&1 </dev/null &
    wpid=$!
    for i in $(seq 100); do kill -0 "$wpid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$wpid" 2>/dev/null; then
        bad "refused credentials: panko-api does not start"; kill "$wpid"; wait "$wpid"
    else
        wait "$wpid"; rc=$?
        expect "refused credentials: panko-api exits 1" 1 "$rc"
        grep -q "refusing to start: Keystone refused panko-api's credentials" "$KWORK/wrong.out" &&
            ok "... saying so" || bad "... saying so" "$(cat "$KWORK/wrong.out")"
    fi
    expect "no password at all: exit 2" 2 "$(env -u PANKO_API_KEYSTONE_PASSWORD "$PANKO_API" --auth keystone \
        --keystone-url "$KEYSTONE_URL" --keystone-user panko --keystone-project service >/dev/null 2>&1; echo $?)"
    # the password from the environment; Keystone unreachable at start
    dead=$(_ks_free_port)
    p=$(_ks_free_port)
    PANKO_API_KEYSTONE_PASSWORD=$KS_PANKO_PASSWORD "$PANKO_API" --listen "127.0.0.1:$p" --db "$DB" \
        --auth keystone --keystone-url "http://127.0.0.1:$dead/v3" --keystone-user panko \
        --keystone-project service --log "$KWORK/unreachable.log" 2>"$KWORK/unreachable.err" &
    API_PID=$!
    for i in $(seq 50); do curl -sf -o /dev/null "http://127.0.0.1:$p/healthcheck" && break; sleep 0.1; done
    expect "Keystone unreachable at start: panko-api starts" 200 "$(status "http://127.0.0.1:$p/healthcheck")"
    expect "... and answers 503 to a token" 503 "$(status "http://127.0.0.1:$p/v2/events" -H "X-Auth-Token: $ALICE")"
    grep -q "Keystone cannot be reached yet" "$KWORK/unreachable.log" && ok "... saying so in its log" ||
        bad "... saying so in its log" "$(cat "$KWORK/unreachable.log")"
    stop_api
fi

# ---- expiry, on a Keystone whose tokens live 8 seconds ------------------
keystone_cleanup
keystone_up 8 >/dev/null || exit 1
printf '%s\n' "$KS_PANKO_PASSWORD" >"$KWORK/panko.pw"
BASE=http://127.0.0.1:$PORT
start_api expiry "$PORT" --threads 2 || exit 1    # --token-cache-time 300
SHORT=$(keystone_token alice "$KS_ALICE_PASSWORD" p1) || exit 1
t0=$SECONDS
expect "short-lived token: served while valid" 200 "$(status "$BASE/v2/events?limit=1" -H "X-Auth-Token: $SHORT")"
sleep $((10 - (SECONDS - t0)))
st=$(status "$BASE/v2/events?limit=1" -H "X-Auth-Token: $SHORT")
expect "expired token (cached for 300 s, but never past expires_at): 401" 401 "$st" "$(cat "$KWORK/body")"
www_auth_ok && ok "... with WWW-Authenticate" || bad "... with WWW-Authenticate" "$(cat "$KWORK/headers")"
LATER=$(keystone_token alice "$KS_ALICE_PASSWORD" p1) || exit 1
st=$(status "$BASE/v2/events?limit=1" -H "X-Auth-Token: $LATER")
expect "a new token after the service token expired: served (renewed)" 200 "$st" "$(cat "$KWORK/body")"
if [ "$AUTH" = keystone ]; then
    n=$(grep -c "keystone: got a service token" "$API_LOG")
    [ "$n" -ge 2 ] && ok "... panko-api renewed its service token ($n tokens)" ||
        bad "... panko-api renewed its service token ($n tokens)" "$(cat "$API_LOG")"
fi
stop_api

echo "keystone: $fails failed"
[ "$fails" = 0 ]
