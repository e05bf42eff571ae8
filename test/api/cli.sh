#!/usr/bin/env bash
# test/api/cli.sh PORT: the real OpenStack CLI (python3-openstackclient and
# python3-pankoclient) against panko-api started with --auth none on PORT.
# Every `openstack event ...` command must succeed and print the fixture
# events it is asked for.
set -uo pipefail
PORT=$1
fails=0
OS=(/usr/bin/python3 /usr/bin/openstack --os-auth-type none --os-endpoint "http://127.0.0.1:$PORT")

ok() { echo "ok   $1"; }
bad() { echo "FAIL $1"; echo "$2" | head -20 | sed 's/^/     /'; fails=$((fails + 1)); }

# run NAME EXPECTED_REGEX ARGS...: the command succeeds and its output matches.
run() {
    local name=$1 want=$2; shift 2
    local out
    if ! out=$("${OS[@]}" "$@" 2>&1); then
        bad "$name (exit status)" "$out"
    elif ! grep -Pzq -- "$want" <<<"$out"; then
        bad "$name (output does not match /$want/)" "$out"
    else
        ok "$name"
    fi
}

run "event list shows every project's events" \
    '(?s)ev-a0.*ev-a1.*ev-a2.*ev-a3.*ev-b1.*ev-b2.*ev-np.*ev-a4' event list -f value -c message_id
run "event list table shows traits" \
    '\| compute.instance.create.end \| 2024-01-01T00:00:00 +\| ev-a1 +\| host' event list
run "event list --filter project_id" \
    '^ev-b1\nev-b2\n$' event list --filter project_id=proj-b -f value -c message_id
run "event list --filter event_type" \
    '^ev-np\n$' event list --filter event_type=identity.authenticate -f value -c message_id
run "event list --limit and --marker" \
    '^ev-a2\nev-a3\n$' event list --limit 2 --marker ev-a1 -f value -c message_id
run "event list --sort" \
    '^ev-a4\nev-a3\n$' event list --sort message_id:desc --limit 2 --filter project_id=proj-a -f value -c message_id
run "event show" \
    '(?s)"event_type": "compute.instance.create.end".*"message_id": "ev-a3".*1e-05' event show ev-a3 -f json
run "event type list" \
    '(?s)compute.instance.create.end\ncompute.instance.delete.end\ncompute.instance.exists\ncompute.instance.update\ncookies_chocolate.chip\nidentity.authenticate\nimage.upload' \
    event type list -f value
run "event trait description" \
    '(?s)user_id string\nmemory_mb integer\nratio float\nlaunched_at datetime' \
    event trait description compute.instance.create.end -f value
run "event trait list" \
    '(?s)memory_mb 512 integer.*memory_mb 4096 integer.*memory_mb 8192 integer' \
    event trait list compute.instance.create.end memory_mb -f value
run "event capabilities list" \
    '(?s)"events:query:simple": true.*"storage:production_ready": true' event capabilities list -f json

if out=$("${OS[@]}" event show no-such-event 2>&1); then
    bad "event show of a missing event fails" "$out"
elif grep -q "Event no-such-event Not Found (HTTP 404)" <<<"$out"; then
    ok "event show of a missing event reports upstream's 404 message"
else
    bad "event show of a missing event reports upstream's 404 message" "$out"
fi

echo "cli: $fails failed"
[ "$fails" = 0 ]
