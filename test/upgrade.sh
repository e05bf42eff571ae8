#!/usr/bin/env bash
# test/upgrade.sh: the upgrade path from 0.1.0 to the default version.
#
# Starts its own throwaway cluster (test/lib.sh); assumes `make install` was
# done.  In database "upgraded": CREATE EXTENSION panko VERSION '0.1.0',
# record events, ALTER EXTENSION panko UPDATE, then check that
#   - the installed version is panko.control's default_version;
#   - the events are intact and queryable through get_events (and, as a
#     gateway with an identity, through the 0.2.0 api_get_events);
#   - the 0.2.0 functions work (run_maintenance's report);
#   - 0.3.0's per-partition counts match the events stored before;
#   - the extension's member objects (and their comments, privileges and
#     function attributes) are exactly those of a fresh CREATE EXTENSION
#     panko in database "fresh".
# Exit status 0 when every check passes; each failure prints "FAIL: ...".
#
#   KEEP_CLUSTER=1 bash test/upgrade.sh   keep the cluster directory
set -u
cd "$(dirname "$0")/.."
source test/lib.sh

FAILURES=0
fail() { echo "FAIL: $*"; FAILURES=$((FAILURES + 1)); }
pass() { echo "ok - $*"; }

# q DB SQL...: psql, unaligned, tuples only, stop at the first error.
q() { local db=$1; shift; psql -X -qAt -v ON_ERROR_STOP=1 -d "$db" "$@"; }

finish() {
    local rc=$?
    if [ "$FAILURES" -ne 0 ] && [ -n "${PG_TMP:-}" ] && [ -f "$PG_TMP/server.log" ]; then
        echo "---- last lines of $PG_TMP/server.log"
        tail -n 30 "$PG_TMP/server.log"
    fi
    pg_stop
    return $rc
}

CONTROL=panko.control
DEFAULT_VERSION=$(sed -n "s/^[[:space:]]*default_version[[:space:]]*=[[:space:]]*'\([^']*\)'.*/\1/p" "$CONTROL")
if [ -z "$DEFAULT_VERSION" ]; then
    echo "FAIL: no default_version in $CONTROL"
    exit 1
fi
INSTALLED_CONTROL="$(pg_config --sharedir)/extension/panko.control"
if ! cmp -s "$CONTROL" "$INSTALLED_CONTROL"; then
    echo "FAIL: $INSTALLED_CONTROL differs from $CONTROL: run make install first"
    exit 1
fi
for f in sql/panko--*.sql; do
    cmp -s "$f" "$(pg_config --sharedir)/extension/$(basename "$f")" \
        || echo "# WARNING: $f differs from the installed copy: the test runs against what is installed"
done
echo "# upgrade 0.1.0 -> $DEFAULT_VERSION (default_version of $CONTROL)"

pg_start upgrade || { echo "FAIL: could not start a cluster"; exit 1; }
trap finish EXIT

q postgres -c "CREATE DATABASE upgraded" -c "CREATE DATABASE fresh" >/dev/null \
    || { echo "FAIL: CREATE DATABASE"; exit 1; }
q postgres -c "DO \$\$ BEGIN
                 IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'upgrade_api') THEN
                     CREATE ROLE upgrade_api LOGIN;
                 END IF;
               END \$\$" >/dev/null || { echo "FAIL: CREATE ROLE upgrade_api"; exit 1; }

# ---------------------------------------------------------------- 0.1.0
if ! q upgraded -c "CREATE EXTENSION panko VERSION '0.1.0'" >/dev/null; then
    echo "FAIL: CREATE EXTENSION panko VERSION '0.1.0'"
    exit 1
fi
v=$(q upgraded -c "SELECT extversion FROM pg_extension WHERE extname = 'panko'")
[ "$v" = 0.1.0 ] && pass "installed version 0.1.0" || fail "installed version is '$v', not 0.1.0"
for f in run_maintenance api_get_events; do
    [ "$(q upgraded -c "SELECT count(*) FROM pg_proc WHERE pronamespace = 'panko'::regnamespace AND proname = '$f'")" = 0 ] \
        || fail "0.1.0 already has panko.$f(): the test does not exercise the upgrade"
done
q postgres -c "GRANT panko_api TO upgrade_api" >/dev/null

# Events in both input forms, old (a yearly partition) and recent (daily
# partitions), in two projects and without a project; one duplicate and one
# rejected event, which must not be stored.
EVENTS=$(cat <<'EOF'
[
 {"message_id": "up-a1", "event_type": "compute.instance.create.end", "generated": "2023-05-06T07:08:09.123456",
  "traits": [{"name": "project_id", "type": "string", "value": "A"}, {"name": "user_id", "type": "string", "value": "u1"},
             {"name": "memory_mb", "type": "integer", "value": "512"}, {"name": "ratio", "type": "float", "value": "0.1"},
             {"name": "launched_at", "type": "datetime", "value": "2023-05-06T07:00:00"}],
  "raw": {"payload": {"k": [1, 2, 3]}}},
 {"message_id": "up-a2", "event_type": "compute.instance.delete.end", "generated": "2023-05-07T00:00:00",
  "traits": [["project_id", 1, "A"], ["user_id", 1, "u1"], ["memory_mb", 2, 4096], ["nothing", 0, null]], "raw": {}},
 {"message_id": "up-b1", "event_type": "compute.instance.create.end", "generated": "2023-05-06T08:00:00",
  "traits": [["project_id", 1, "B"], ["user_id", 1, "u2"], ["memory_mb", 2, 2048]], "raw": null},
 {"message_id": "up-np", "event_type": "identity.authenticate", "generated": "2023-05-06T09:00:00",
  "traits": [["user_id", 1, "u1"]], "raw": {}},
 {"message_id": "up-a1", "event_type": "compute.instance.create.end", "generated": "2023-05-06T07:08:09",
  "traits": [], "raw": {}},
 {"message_id": "up-bad", "event_type": "compute.instance.create.end", "generated": "not a time",
  "traits": [], "raw": {}}
]
EOF
)
# A few recent events too (their partitions are daily).
RECENT="SELECT jsonb_agg(jsonb_build_object(
            'message_id', 'up-recent-' || i, 'event_type', 'compute.instance.exists',
            'generated', to_char((now() - i * interval '1 hour') AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US'),
            'traits', jsonb_build_array(jsonb_build_array('project_id', 1, 'A'), jsonb_build_array('user_id', 1, 'u1'),
                                        jsonb_build_array('seq', 2, i)),
            'raw', '{}'::jsonb))
          FROM generate_series(1, 30) AS i"

notstored=$(q upgraded -c "SELECT string_agg(message_id || ':' || status, ',' ORDER BY status) FROM panko.record_events(\$json\$$EVENTS\$json\$::jsonb)")
[ "$notstored" = "up-a1:duplicate,up-bad:rejected" ] \
    && pass "0.1.0 record_events: 4 stored, 1 duplicate, 1 rejected" \
    || fail "0.1.0 record_events returned '$notstored', expected up-a1:duplicate,up-bad:rejected"
notstored=$(q upgraded -c "SELECT count(*) FROM panko.record_events(($RECENT))")
[ "$notstored" = 0 ] && pass "0.1.0 record_events: 30 recent events stored" \
    || fail "0.1.0 record_events did not store $notstored recent events"

# Everything a reader can observe about the events, as one digest.
DIGEST="SELECT count(*) || ' ' || md5(string_agg(concat_ws('|', message_id, event_type, panko.iso_timestamp(generated),
                                                          traits::text, panko.traits_to_jsonb(traits)::text, raw::text),
                                                '#' ORDER BY message_id))
          FROM panko.events"
before=$(q upgraded -c "$DIGEST")
types_before=$(q upgraded -c "SELECT string_agg(t, ',' ORDER BY t) FROM panko.event_types() t")
parts_before=$(q upgraded -c "SELECT count(*) FROM panko.partition")
case "$before" in
    34\ *) pass "0.1.0: 34 events stored in $parts_before partitions" ;;
    *) fail "0.1.0: expected 34 events, digest '$before'" ;;
esac

# ---------------------------------------------------------------- update
if out=$(q upgraded -c "ALTER EXTENSION panko UPDATE" 2>&1); then
    pass "ALTER EXTENSION panko UPDATE"
else
    fail "ALTER EXTENSION panko UPDATE failed: $out"
    exit 1
fi
v=$(q upgraded -c "SELECT extversion FROM pg_extension WHERE extname = 'panko'")
[ "$v" = "$DEFAULT_VERSION" ] && pass "version after update is $v (default_version)" \
    || fail "version after update is '$v', expected default_version '$DEFAULT_VERSION'"
out=$(q upgraded -c "ALTER EXTENSION panko UPDATE" 2>&1) \
    && pass "a second ALTER EXTENSION panko UPDATE is a no-op" \
    || fail "a second ALTER EXTENSION panko UPDATE failed: $out"

# 0.3.0 keeps per-partition counts for expiry: the update counts what is there.
mismatch=$(q upgraded -c "SELECT string_agg(format('%s: %s counted, %s stored', p.name, coalesce(c.n, 0), s.n), '; ')
  FROM panko.partition p
  LEFT JOIN (SELECT partition, sum(n) AS n FROM panko.partition_rows GROUP BY partition) c ON c.partition = p.name
  JOIN (SELECT tableoid::regclass::text AS name, count(*) AS n FROM panko.event GROUP BY 1) s ON s.name = 'panko.' || p.name
 WHERE coalesce(c.n, 0) <> s.n")
total=$(q upgraded -c "SELECT coalesce(sum(n), 0) FROM panko.partition_rows")
[ -z "$mismatch" ] && [ "$total" = 34 ] && pass "partition counts after update match the events (34)" \
    || fail "partition counts after update: total $total, $mismatch"

# ---------------------------------------------------------------- data intact
after=$(q upgraded -c "$DIGEST")
[ "$after" = "$before" ] && pass "events unchanged by the update ($after)" \
    || fail "events changed by the update: before '$before', after '$after'"
[ "$(q upgraded -c "SELECT string_agg(t, ',' ORDER BY t) FROM panko.event_types() t")" = "$types_before" ] \
    && pass "event_types() unchanged" || fail "event_types() changed by the update"

r=$(q upgraded -c "SELECT string_agg(message_id, ',' ORDER BY generated, message_id)
                     FROM panko.get_events('{\"traits_filter\": [{\"key\": \"memory_mb\", \"op\": \"ge\", \"integer\": 1024}]}')")
[ "$r" = "up-b1,up-a2" ] && pass "get_events integer trait filter after update" \
    || fail "get_events memory_mb >= 1024 after update gave '$r', expected up-b1,up-a2"
r=$(q upgraded -c "SELECT string_agg(message_id, ',' ORDER BY message_id)
                     FROM panko.get_events('{\"event_type\": \"compute.instance.create.end\",
                                             \"start_timestamp\": \"2023-05-06T00:00:00\",
                                             \"end_timestamp\": \"2023-05-06T23:59:59\"}')")
[ "$r" = "up-a1,up-b1" ] && pass "get_events event_type + time window after update" \
    || fail "get_events event_type + window after update gave '$r', expected up-a1,up-b1"
r=$(q upgraded -c "SELECT string_agg(message_id, ',') FROM panko.get_events('{}', 2, ARRAY['generated:desc'], 'up-recent-29')")
[ "$r" = "up-recent-30,up-a2" ] && pass "get_events sort + marker after update" \
    || fail "get_events after marker up-recent-29 (generated desc, limit 2) gave '$r', expected up-recent-30,up-a2"
r=$(q upgraded -c "SELECT panko.traits_to_jsonb(traits)::text FROM panko.get_events('{\"message_id\": \"up-a1\"}')")
expected='[{"name": "launched_at", "type": "datetime", "value": "2023-05-06T07:00:00"}, {"name": "memory_mb", "type": "integer", "value": "512"}, {"name": "project_id", "type": "string", "value": "A"}, {"name": "ratio", "type": "float", "value": "0.1"}, {"name": "user_id", "type": "string", "value": "u1"}]'
[ "$r" = "$expected" ] && pass "typed traits of up-a1 intact" \
    || fail "traits of up-a1 after update: $r"

# Row-level security still applies after the update, through a 0.2.0 function.
r=$(psql -X -qAt -v ON_ERROR_STOP=1 -d upgraded -U upgrade_api 2>&1 <<'EOF'
BEGIN;
SELECT panko.set_identity('u1', 'A', 'member');
SELECT count(*) FROM json_array_elements(panko.api_get_events('{"limit": "1000"}'));
SELECT string_agg(m, ',' ORDER BY m) FROM (SELECT e->>'message_id' AS m
  FROM json_array_elements(panko.api_get_events('{"q": [{"field": "memory_mb", "op": "ge", "type": "integer", "value": "1"}]}')) e) s;
ROLLBACK;
EOF
)
[ "$r" = $'\n32\nup-a1,up-a2' ] && pass "a member (u1@A) sees its 32 events (not B's, not project-less) through api_get_events after update" \
    || fail "api_get_events as u1@A after update: '$r' (expected 32 events, and up-a1,up-a2 for memory_mb >= 1)"

# ---------------------------------------------------------------- 0.2.0 functions
report=$(q upgraded -c "SELECT panko.run_maintenance()")
r=$(q upgraded -c "SELECT (SELECT string_agg(k, ',' ORDER BY k) FROM jsonb_object_keys(r) k)
                          || ' ' || (r->>'skipped') || ' ' || (jsonb_typeof(r->'partitions_created') = 'number')
                          || ' ' || ((r->>'partitions_created')::int >= 1)
                          || ' ' || (jsonb_typeof(r->'duration_ms') = 'number')
                     FROM (SELECT '$report'::jsonb AS r) s")
case "$r" in
    *duration_ms*event_types_removed*partitions_created*partitions_dropped*rows_deleted*skipped*" false true true true")
        pass "run_maintenance() after update: $report" ;;
    *) fail "run_maintenance() after update returned '$report' (checked: '$r')" ;;
esac
r=$(q upgraded -c "SELECT count(*) FROM panko.partition WHERE now() + interval '6 days' >= lower_bound AND now() + interval '6 days' < upper_bound")
[ "$r" = 1 ] && pass "run_maintenance() made the partitions ahead" || fail "no partition for now() + 6 days after run_maintenance()"
r=$(q upgraded -c "SELECT panko.run_maintenance()->>'partitions_created'")
[ "$r" = 0 ] && pass "a second run_maintenance() creates no partition" \
    || fail "a second run_maintenance() created '$r' partitions"
after=$(q upgraded -c "$DIGEST")
[ "$after" = "$before" ] && pass "run_maintenance() with the default TTL (-1) kept every event" \
    || fail "run_maintenance() changed the events: '$after'"
r=$(q upgraded -c "SELECT panko.api_capabilities()::text")
[ "$r" = '{"api": {"events:query:simple": true}, "event_storage": {"storage:production_ready": true}}' ] \
    && pass "api_capabilities() after update" || fail "api_capabilities() after update: '$r'"
r=$(q upgraded -c "SELECT string_agg(p::text, ',' ORDER BY p::text) FROM unnest(ARRAY[
                       'panko.run_maintenance()', 'panko.api_get_events(jsonb)', 'panko.api_get_event(text)',
                       'panko.api_post_events(jsonb)', 'panko.api_event_types()']::regprocedure[]) p
                     WHERE has_function_privilege('public', p, 'EXECUTE')")
[ -z "$r" ] && pass "PUBLIC cannot execute the 0.2.0 functions after update" \
    || fail "PUBLIC can execute after update: $r"

# ---------------------------------------------------------------- same objects as a fresh install
if ! q fresh -c "CREATE EXTENSION panko" >/dev/null 2>&1; then
    fail "CREATE EXTENSION panko in a fresh database"
else
    MEMBERS="SELECT pg_describe_object(d.classid, d.objid, d.objsubid)
               FROM pg_depend d
              WHERE d.deptype = 'e' AND d.refclassid = 'pg_extension'::regclass
                AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'panko')
              ORDER BY 1"
    # The same objects with what distinguishes them beyond their names.
    DETAILS="SELECT pg_describe_object(d.classid, d.objid, d.objsubid)
                    || ' comment=' || coalesce(quote_literal(obj_description(d.objid, d.classid::regclass::name)), '-')
                    || coalesce(' proc=' || (SELECT concat_ws(' ', p.provolatile, p.proisstrict, p.proparallel, p.prosecdef,
                                                             p.proleakproof, p.proconfig::text, p.proacl::text,
                                                             pg_get_function_arguments(p.oid), pg_get_function_result(p.oid),
                                                             md5(p.prosrc))
                                             FROM pg_proc p WHERE d.classid = 'pg_proc'::regclass AND p.oid = d.objid), '')
                    || coalesce(' rel=' || (SELECT concat_ws(' ', c.relkind, c.relrowsecurity, c.relforcerowsecurity,
                                                            c.reloptions::text, c.relacl::text,
                                                            (SELECT string_agg(a.attname || ':' || format_type(a.atttypid, a.atttypmod)
                                                                               || ':' || a.attnotnull, ',' ORDER BY a.attnum)
                                                               FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0
                                                                AND NOT a.attisdropped),
                                                            CASE WHEN c.relkind = 'v' THEN md5(pg_get_viewdef(c.oid)) END,
                                                            (SELECT string_agg(pg_get_indexdef(i.indexrelid), ';' ORDER BY 1)
                                                               FROM pg_index i WHERE i.indrelid = c.oid),
                                                            (SELECT string_agg(pol.polname || ':' || pol.polcmd::text || ':'
                                                                               || md5(pg_get_expr(pol.polqual, pol.polrelid)), ';')
                                                               FROM pg_policy pol WHERE pol.polrelid = c.oid))
                                            FROM pg_class c WHERE d.classid = 'pg_class'::regclass AND c.oid = d.objid), '')
               FROM pg_depend d
              WHERE d.deptype = 'e' AND d.refclassid = 'pg_extension'::regclass
                AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'panko')
              ORDER BY 1"
    work=$(mktemp -d)
    ok=1
    q upgraded -c "$MEMBERS" >"$work/upgraded.members" && q fresh -c "$MEMBERS" >"$work/fresh.members" || ok=0
    n=$(wc -l <"$work/fresh.members")
    if [ $ok = 0 ]; then
        fail "listing the member objects failed"
    elif [ "$n" -lt 50 ]; then
        fail "a fresh CREATE EXTENSION panko has only $n member objects"
    elif diff -u "$work/fresh.members" "$work/upgraded.members" >"$work/members.diff"; then
        pass "member objects after update identical to a fresh install ($n objects)"
    else
        fail "member objects after update differ from a fresh install (- fresh, + upgraded):"
        sed 's/^/    /' "$work/members.diff"
    fi
    ok=1
    q upgraded -c "$DETAILS" >"$work/upgraded.details" && q fresh -c "$DETAILS" >"$work/fresh.details" || ok=0
    if [ $ok = 0 ] || [ "$(wc -l <"$work/fresh.details")" != "$n" ]; then
        fail "listing the member objects' details failed"
    elif diff -u "$work/fresh.details" "$work/upgraded.details" >"$work/details.diff"; then
        pass "comments, privileges, function attributes and table definitions identical to a fresh install"
    else
        fail "member object details after update differ from a fresh install (- fresh, + upgraded):"
        sed 's/^/    /' "$work/details.diff"
    fi
    rm -rf "$work"
fi

q postgres -c "DROP DATABASE upgraded" -c "DROP DATABASE fresh" -c "DROP ROLE upgrade_api" >/dev/null 2>&1
echo
if [ "$FAILURES" -ne 0 ]; then
    echo "upgrade: $FAILURES check(s) FAILED"
    exit 1
fi
echo "upgrade: all checks passed"
