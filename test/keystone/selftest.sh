#!/usr/bin/env bash
# test/keystone/selftest.sh: check test/keystone/lib.sh against the real
# Keystone it starts: tokens per user, validation by the panko service user
# (roles, implied roles, policy), revoked / expired / garbage tokens, the
# catalog, and Keystone stopped and restarted.  Loopback only.
# Prints `ok - ...` / `not ok - ...` per check and `N passed, N failed`.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=test/keystone/lib.sh
. "$HERE/lib.sh"

PASS=0
FAIL=0
ok() { PASS=$((PASS + 1)); echo "ok - $*"; }
not_ok() { FAIL=$((FAIL + 1)); echo "not ok - $*"; }
check() {    # check DESCRIPTION COMMAND...
    local desc=$1; shift
    if "$@"; then ok "$desc"; else not_ok "$desc"; fi
}
finish() {
    echo "$PASS passed, $FAIL failed"
    [ "$FAIL" -eq 0 ]
    exit
}
now() { date +%s.%N; }
ms() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f", (b - a) * 1000 }'; }
# shellcheck disable=SC2317
eq() { [ "$1" = "$2" ] || { echo "#   got '$1', want '$2'"; return 1; }; }

# "user=NAME/ID project=NAME/ID roles=a,b,c" from a GET /v3/auth/tokens body
describe() {
    /usr/bin/python3 -c '
import json, sys
t = json.load(open(sys.argv[1]))["token"]
print("user=%s/%s project=%s/%s roles=%s" % (
    t["user"]["name"], t["user"]["id"], t["project"]["name"], t["project"]["id"],
    ",".join(sorted(r["name"] for r in t["roles"]))))' "$1" 2>/dev/null || echo "(no token body)"
}
field() {    # field BODY_FILE user|project|roles|catalog
    /usr/bin/python3 -c '
import json, sys
t = json.load(open(sys.argv[1]))["token"]
w = sys.argv[2]
if w == "roles":
    print(",".join(sorted(r["name"] for r in t["roles"])))
elif w == "catalog":
    print("catalog" in t)
else:
    print(t[w]["id"])' "$1" "$2" 2>/dev/null
}
errmsg() {
    /usr/bin/python3 -c '
import json, sys
try:
    e = json.load(open(sys.argv[1]))["error"]
    print("%s %s: %s" % (e["code"], e["title"], e["message"]))
except Exception:
    print("(no JSON error body)")' "$1"
}

T=$(mktemp -d /tmp/panko-kstest-XXXXXX)
chained=$(trap 'echo previous' EXIT; keystone_trap_exit; keystone_trap_exit; trap -p EXIT; trap - EXIT)
check "keystone_trap_exit chains the caller's EXIT trap: $chained" \
    eq "$chained" "trap -- 'keystone_cleanup; echo previous' EXIT"
trap 'keystone_cleanup; rm -rf "$T"' EXIT

# --- a Keystone with 1 h tokens -------------------------------------------
if keystone_start 3600; then
    ok "keystone_start: $KEYSTONE_URL up in ${KEYSTONE_START_SECONDS} s (db_sync, fernet_setup, credential_setup, bootstrap, uwsgi)"
else
    not_ok "keystone_start"
    finish
fi
v=$(curl -s "$KEYSTONE_URL" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["version"]["id"])' 2>/dev/null)
check "GET /v3 answers (version ${v:-?})" eq "${v%%.*}" v3
check "log file in the temp dir: $KEYSTONE_DIR/keystone.log" test -s "$KEYSTONE_DIR/keystone.log"
errors=$(grep -c -E ' (ERROR|CRITICAL) ' "$KEYSTONE_DIR/keystone.log" || true)
check "no ERROR in keystone.log after start ($errors)" eq "$errors" 0

# what bootstrap made, read with curl and an admin token (faster than the CLI)
AT=$(keystone_token admin "$KEYSTONE_ADMIN_PASSWORD" admin)
roles=$(curl -s -H "X-Auth-Token: $AT" "$KEYSTONE_URL/roles" | /usr/bin/python3 -c '
import json, sys; print(" ".join(sorted(r["name"] for r in json.load(sys.stdin)["roles"])))' 2>/dev/null)
check "bootstrap created the roles: $roles" eq "$roles" "admin member reader"
implied=$(curl -s -H "X-Auth-Token: $AT" "$KEYSTONE_URL/role_inferences" | /usr/bin/python3 -c '
import json, sys
print(", ".join(sorted("%s>%s" % (i["prior_role"]["name"], r["name"])
    for i in json.load(sys.stdin)["role_inferences"] for r in i["implies"])))' 2>/dev/null)
check "bootstrap implied roles: $implied" eq "$implied" "admin>member, member>reader"

t0=$(now)
if keystone_setup_panko http://127.0.0.1:9999 >"$T/summary"; then
    ok "keystone_setup_panko in $(ms "$t0" "$(now)") ms: $(cat "$T/summary")"
else
    not_ok "keystone_setup_panko"
    finish
fi
check "one summary line on stdout" eq "$(wc -l <"$T/summary")" 1

# --- a token per user --------------------------------------------------------
declare -A TOK
for spec in "admin:$KS_ADMIN_PASSWORD:admin" "alice:$KS_ALICE_PASSWORD:p1" \
            "bob:$KS_BOB_PASSWORD:p2" "carol:$KS_CAROL_PASSWORD:p1" \
            "panko:$KS_PANKO_PASSWORD:service" "ceilometer:$KS_CEILOMETER_PASSWORD:service"; do
    IFS=: read -r u p pr <<<"$spec"
    t0=$(now)
    if TOK[$u]=$(keystone_token "$u" "$p" "$pr"); then
        ok "keystone_token $u $pr ($(ms "$t0" "$(now)") ms, ${#TOK[$u]} chars)"
    else
        not_ok "keystone_token $u $pr"
        TOK[$u]=none
    fi
done
if keystone_token alice "$KS_ALICE_PASSWORD" p2 >/dev/null 2>"$T/err"; then
    not_ok "alice cannot get a token scoped to p2"
else
    ok "alice cannot get a token scoped to p2 ($(cat "$T/err"))"
fi
if keystone_token alice wrong-password p1 >/dev/null 2>"$T/err"; then
    not_ok "a wrong password gets no token"
else
    ok "a wrong password gets no token ($(cat "$T/err"))"
fi

# --- validation by the panko service user -----------------------------------
validate() {    # validate NAME SERVICE_TOKEN SUBJECT_TOKEN WANT_STATUS [WANT_USER WANT_PROJECT WANT_ROLES]
    local name=$1 st=$2 sub=$3 want=$4 code
    code=$(keystone_validate "$st" "$sub" "$T/body")
    if [ "$code" != "$want" ]; then
        not_ok "$name: HTTP $code, want $want ($(errmsg "$T/body"))"
        return
    fi
    if [ "$want" != 200 ]; then
        ok "$name: HTTP $code ($(errmsg "$T/body"))"
        return
    fi
    local u p r c
    u=$(field "$T/body" user); p=$(field "$T/body" project); r=$(field "$T/body" roles)
    c=$(field "$T/body" catalog)
    if [ "$u" = "$5" ] && [ "$p" = "$6" ] && [ "$r" = "$7" ] && [ "$c" = False ]; then
        ok "$name: HTTP 200 $(describe "$T/body")"
    else
        not_ok "$name: $(describe "$T/body") catalog=$c, want user $5 project $6 roles $7 and no catalog"
    fi
}
PT=${TOK[panko]}
validate "panko validates alice's token" "$PT" "${TOK[alice]}" 200 "$KS_ALICE_ID" "$KS_P1_ID" member,reader
validate "panko validates bob's token" "$PT" "${TOK[bob]}" 200 "$KS_BOB_ID" "$KS_P2_ID" member,reader
validate "panko validates carol's token (admin implies member, reader)" "$PT" "${TOK[carol]}" 200 "$KS_CAROL_ID" "$KS_P1_ID" admin,member,reader
validate "panko validates admin's token" "$PT" "${TOK[admin]}" 200 "$KS_ADMIN_ID" "$KS_ADMIN_PROJECT_ID" admin,member,reader
validate "ceilometer (role service) validates panko's token" "${TOK[ceilometer]}" "$PT" 200 "$KS_PANKO_ID" "$KS_SERVICE_PROJECT_ID" service
validate "alice validates her own token (token_subject)" "${TOK[alice]}" "${TOK[alice]}" 200 "$KS_ALICE_ID" "$KS_P1_ID" member,reader
validate "alice (member) may not validate bob's token" "${TOK[alice]}" "${TOK[bob]}" 403
validate "admin validates alice's token" "${TOK[admin]}" "${TOK[alice]}" 200 "$KS_ALICE_ID" "$KS_P1_ID" member,reader
validate "garbage X-Subject-Token (fernet-looking)" "$PT" "gAAAAABgarbage-not-a-fernet-token" 404
validate "garbage X-Subject-Token (not-a-token)" "$PT" "not-a-token" 404
validate "garbage X-Auth-Token (the service's own token)" "not-a-token" "${TOK[alice]}" 401
code=$(curl -s -o "$T/body" -w '%{http_code}' -H "X-Auth-Token: $PT" "$KEYSTONE_URL/auth/tokens?nocatalog")
echo "# no X-Subject-Token at all: HTTP $code ($(errmsg "$T/body"))"

# timings: the first validation of a token fills Keystone's cache
tok2=$(keystone_token bob "$KS_BOB_PASSWORD" p2)
first=$(curl -s -o /dev/null -w '%{time_total}' -H "X-Auth-Token: $PT" -H "X-Subject-Token: $tok2" "$KEYSTONE_URL/auth/tokens?nocatalog")
sum=0
for _ in $(seq 20); do
    t=$(curl -s -o /dev/null -w '%{time_total}' -H "X-Auth-Token: $PT" -H "X-Subject-Token: $tok2" "$KEYSTONE_URL/auth/tokens?nocatalog")
    sum=$(awk -v a="$sum" -v b="$t" 'BEGIN { print a + b }')
done
par=$(seq 40 | xargs -P 8 -I{} curl -s -o /dev/null -w '%{http_code}\n' -H "X-Auth-Token: $PT" -H "X-Subject-Token: $tok2" "$KEYSTONE_URL/auth/tokens?nocatalog" | sort | uniq -c | awk '{ printf "%s x%s ", $2, $1 }')
check "40 validations, 8 at a time: $par" eq "$par" "200 x40 "
echo "# validation: first $(awk -v t="$first" 'BEGIN { printf "%.1f", t * 1000 }') ms, then $(awk -v s="$sum" 'BEGIN { printf "%.1f", s * 1000 / 20 }') ms on average (20, cached)"
ok "timed validations"

# --- revocation ----------------------------------------------------------
rev=$( (keystone_os_env alice "$KS_ALICE_PASSWORD" p1 && openstack token issue -f value -c id) 2>"$T/err")
if [ -n "$rev" ]; then
    validate "openstack token issue (alice) gives a valid token" "$PT" "$rev" 200 "$KS_ALICE_ID" "$KS_P1_ID" member,reader
    if keystone_openstack token revoke "$rev" 2>"$T/err"; then
        ok "openstack token revoke (as admin)"
    else
        not_ok "openstack token revoke: $(cat "$T/err")"
    fi
    validate "revoked token" "$PT" "$rev" 404
    validate "alice's other token survives the revocation" "$PT" "${TOK[alice]}" 200 "$KS_ALICE_ID" "$KS_P1_ID" member,reader
else
    not_ok "openstack token issue (alice): $(cat "$T/err")"
fi

# --- catalog -----------------------------------------------------------------
keystone_openstack catalog list -f json >"$T/catalog" 2>"$T/err"
event=$(/usr/bin/python3 -c '
import json, sys
for s in json.load(open(sys.argv[1])):
    if s["Type"] == "event":
        print(s["Name"], " ".join(sorted("%s:%s:%s" % (e["region"], e["interface"], e["url"]) for e in s["Endpoints"])))' "$T/catalog" 2>/dev/null)
check "openstack catalog list: event -> $event" eq "$event" \
    "panko RegionOne:admin:http://127.0.0.1:9999 RegionOne:internal:http://127.0.0.1:9999 RegionOne:public:http://127.0.0.1:9999"
ident=$(/usr/bin/python3 -c '
import json, sys
for s in json.load(open(sys.argv[1])):
    if s["Type"] == "identity":
        print(s["Name"], len(s["Endpoints"]), s["Endpoints"][0]["url"])' "$T/catalog" 2>/dev/null)
check "openstack catalog list: identity -> $ident" eq "$ident" "keystone 3 $KEYSTONE_URL"

# --- stop and restart ------------------------------------------------------
keystone_stop
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$KEYSTONE_URL"); rc=$?
check "after keystone_stop GET /v3 cannot connect (curl exit $rc, HTTP $code)" eq "$rc:$code" "7:000"
check "keystone_validate says 000 while Keystone is down" eq "$(keystone_validate "$PT" "${TOK[alice]}")" 000
t0=$(now)
if keystone_restart; then
    ok "keystone_restart on port $KEYSTONE_PORT in $(ms "$t0" "$(now)") ms"
else
    not_ok "keystone_restart"
    finish
fi
validate "after restart panko's old token validates alice's old token" "$PT" "${TOK[alice]}" 200 "$KS_ALICE_ID" "$KS_P1_ID" member,reader
validate "after restart the revoked token stays revoked" "$PT" "${rev:-none}" 404
check "after restart keystone_token works" keystone_token carol "$KS_CAROL_PASSWORD" p1 >/dev/null
keystone_cleanup
check "keystone_cleanup removed the temp dir" test ! -e "$KEYSTONE_DIR"

# --- a Keystone with 5 s tokens: expiry ------------------------------------
if keystone_start 5; then
    ok "keystone_start 5 (token expiration 5 s) in ${KEYSTONE_START_SECONDS} s"
    old=$(keystone_token admin "$KEYSTONE_ADMIN_PASSWORD" admin)
    code=$(keystone_validate "$old" "$old" "$T/body")
    exp=$(/usr/bin/python3 -c 'import json,sys; t=json.load(open(sys.argv[1]))["token"]; print(t["issued_at"], "->", t["expires_at"])' "$T/body" 2>/dev/null)
    check "a 5 s token validates while fresh (HTTP $code, $exp)" eq "$code" 200
    sleep 6
    fresh=$(keystone_token admin "$KEYSTONE_ADMIN_PASSWORD" admin)
    validate "expired X-Subject-Token (validated with a fresh admin token)" "$fresh" "$old" 404
    validate "expired X-Auth-Token" "$old" "$fresh" 401
else
    not_ok "keystone_start 5"
fi
keystone_cleanup

finish
