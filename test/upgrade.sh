#!/usr/bin/env bash
# test/upgrade.sh: the upgrade path from 0.1.0 to the default version, and
# that it ends in the same schema as a fresh install.
#
# Assumes `make install` was done.  The version is panko.control's
# default_version (read here, never written down): the update chains through
# whatever upgrade scripts sql/panko--A--B.sql are installed, and a fresh
# install runs panko--<default_version>.sql, which make builds from
# sql/panko.sql.
#
# In a throwaway cluster (test/lib.sh), database "upgraded": CREATE EXTENSION
# panko VERSION '0.1.0', record events, ALTER EXTENSION panko UPDATE, then
# check that
#   - the installed version is panko.control's default_version;
#   - the events are intact and queryable through get_events (and, as a
#     gateway with an identity, through the 0.2.0 api_get_events);
#   - the 0.2.0 functions work (run_maintenance's report);
#   - 0.3.0's per-partition counts match the events stored before.
# Then, in a second throwaway cluster (so that roles, which are cluster-wide,
# come from the fresh install alone), database "fresh": CREATE EXTENSION
# panko, and partitions for the same timestamps as the upgraded database's.
# A snapshot of each database's schema must be identical, line for line;
# any difference fails and is printed as a diff (- fresh, + upgraded):
#   - the extension (version, schema, owner), its config_dump tables and
#     conditions, and its member objects;
#   - relations of schema panko (kind, options, row-level security,
#     partition key), their columns (type, NOT NULL, default, identity,
#     collation, storage), constraints, indexes (pg_get_indexdef), views
#     (pg_get_viewdef), sequences, triggers, rules and policies (with their
#     USING and WITH CHECK expressions);
#   - functions: pg_get_functiondef, line by line (arguments and defaults,
#     result, language, volatility, strictness, parallel safety, SECURITY
#     DEFINER, LEAKPROOF, COST, ROWS, SET options, body);
#   - types (I/O, ANALYZE and other support functions, storage, alignment),
#     operators, operator families and classes with their operators and
#     support functions, casts;
#   - every comment (pg_description of objects made after initdb);
#   - owners and privileges of the schema, relations, columns, sequences,
#     functions and types, and the initial privileges pg_dump starts from
#     (pg_init_privs); as sorted ACL items, a missing ACL read as the
#     default one, since the order of ACL entries and a NULL ACL versus the
#     same privileges written out depend on the order of GRANTs, not on
#     what anyone may do;
#   - the partitions of panko.event: how many have each shape (columns,
#     constraints, indexes and the parent index each is attached to, RLS,
#     owner, privileges), with the partition's name taken out (old
#     timestamps get a yearly partition from 0.1.0 but one catch-all from
#     0.3.0 on);
#   - roles made after initdb (attributes, memberships), default
#     privileges, event triggers, statistics objects.
# Exit status 0 when every check passes; each failure prints "FAIL: ...".
#
#   KEEP_CLUSTER=1 bash test/upgrade.sh   keep both cluster directories
set -u
cd "$(dirname "$0")/.."
source test/lib.sh

FAILURES=0
fail() { echo "FAIL: $*"; FAILURES=$((FAILURES + 1)); }
pass() { echo "ok - $*"; }

# q DB SQL...: psql, unaligned, tuples only, stop at the first error.
q() { local db=$1; shift; psql -X -qAt -v ON_ERROR_STOP=1 -d "$db" "$@"; }

# Two clusters: the upgraded and the fresh one.  use_cluster NAME makes one
# current for psql (PGHOST, PGPORT) and for lib.sh's pg_stop.
declare -A CLUSTER_TMP CLUSTER_DATA CLUSTER_PORT
CLUSTERS=()
start_cluster() {
    local name=$1
    pg_start "upgrade-$name" || return 1
    # pg_start only sets a trap for its own cluster
    trap finish EXIT
    CLUSTER_TMP[$name]=$PG_TMP CLUSTER_DATA[$name]=$PGDATA_DIR CLUSTER_PORT[$name]=$PGPORT
    CLUSTERS+=("$name")
    # a second cluster needs its own port
    PGPORT_WANTED=
}
use_cluster() {
    PG_TMP=${CLUSTER_TMP[$1]} PGDATA_DIR=${CLUSTER_DATA[$1]}
    export PGHOST=$PG_TMP PGPORT=${CLUSTER_PORT[$1]}
}

finish() {
    local rc=$?
    local name
    for name in "${CLUSTERS[@]}"; do
        use_cluster "$name"
        if [ "$FAILURES" -ne 0 ] && [ -f "$PG_TMP/server.log" ]; then
            echo "---- last lines of $PG_TMP/server.log ($name)"
            tail -n 30 "$PG_TMP/server.log"
        fi
        [ -n "${KEEP_CLUSTER:-}" ] && echo "# cluster $name kept in $PG_TMP"
        pg_stop
    done
    return $rc
}

CONTROL=panko.control
DEFAULT_VERSION=$(sed -n "s/^[[:space:]]*default_version[[:space:]]*=[[:space:]]*'\([^']*\)'.*/\1/p" "$CONTROL")
if [ -z "$DEFAULT_VERSION" ]; then
    echo "FAIL: no default_version in $CONTROL"
    exit 1
fi
EXTDIR="$(pg_config --sharedir)/extension"
if ! cmp -s "$CONTROL" "$EXTDIR/panko.control"; then
    echo "FAIL: $EXTDIR/panko.control differs from $CONTROL: run make install first"
    exit 1
fi
# A fresh install must run the install script built from sql/panko.sql; were
# it missing, CREATE EXTENSION would quietly run 0.1.0's and the upgrades.
INSTALL_SCRIPT="panko--$DEFAULT_VERSION.sql"
if [ ! -f "$EXTDIR/$INSTALL_SCRIPT" ]; then
    echo "FAIL: $EXTDIR/$INSTALL_SCRIPT is not installed (make builds it from sql/panko.sql and the adapters' sql/rating.sql, sql/metric.sql): run make install first"
    exit 1
fi
SOURCES=$(make -s schema-sources)
cat $SOURCES | cmp -s - "$EXTDIR/$INSTALL_SCRIPT" \
    || echo "# WARNING: $SOURCES differ from the installed $INSTALL_SCRIPT: the test runs against what is installed"
for f in sql/panko--0.1.0.sql sql/panko--*--*.sql; do
    cmp -s "$f" "$EXTDIR/$(basename "$f")" \
        || echo "# WARNING: $f differs from the installed copy: the test runs against what is installed"
done
echo "# upgrade 0.1.0 -> $DEFAULT_VERSION (default_version of $CONTROL), compared with a fresh install of $INSTALL_SCRIPT"

start_cluster upgraded || { echo "FAIL: could not start a cluster"; exit 1; }

q postgres -c "CREATE DATABASE upgraded" >/dev/null \
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
path=$(q upgraded -c "SELECT path FROM pg_extension_update_paths('panko') WHERE source = '0.1.0' AND target = '$DEFAULT_VERSION'")
[ -n "$path" ] && echo "# update path: $path" || fail "no update path from 0.1.0 to $DEFAULT_VERSION"

# Events in both input forms, old (a yearly partition) and recent (daily
# partitions), in two projects and without a project; one duplicate and one
# rejected event, which must not be stored.
EVENTS=$(cat <<'EOF'
[
 {"message_id": "up-a1", "event_type": "compute.instance.create.end", "generated": "2023-05-06T07:08:09.123456",
  "traits": [{"name": "project_id", "type": "string", "value": "A"}, {"name": "user_id", "type": "string", "value": "u1"},
             {"name": "memory_mb", "type": "integer", "value": "512"}, {"name": "ratio", "type": "float", "value": "0.1"},
             {"name": "launched_at", "type": "datetime", "value": "2023-05-06T07:00:30"}],
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
expected='[{"name": "launched_at", "type": "datetime", "value": "2023-05-06T07:00:30"}, {"name": "memory_mb", "type": "integer", "value": "512"}, {"name": "project_id", "type": "string", "value": "A"}, {"name": "ratio", "type": "float", "value": "0.1"}, {"name": "user_id", "type": "string", "value": "u1"}]'
[ "$r" = "$expected" ] && pass "typed traits of up-a1 intact" \
    || fail "traits of up-a1 after update: $r"
# 0.13.0 keys datetimes by the minute: the update rebuilds the GIN index, so
# datetime filters answered by it find what a scan finds (up-a1's launched_at,
# 30 s into its minute: an index of exact keys left in place would miss it).
r=$(q upgraded -c "SET enable_seqscan = off" -c "SELECT string_agg(format('%s:%s', f, (SELECT string_agg(message_id, ',')
        FROM panko.event WHERE traits OPERATOR(panko.@@) f::panko.traitquery)), ' ' ORDER BY f)
    FROM unnest(ARRAY['{\"launched_at\":datetime = \"2023-05-06T07:00:30\"}', '{\"launched_at\":datetime >= \"2023-05-06T07:00:30\"}',
                      '{\"launched_at\":datetime < \"2023-05-06T07:00:31\"}', '{\"launched_at\":datetime > \"2023-05-06T07:00:30\"}']) f" | tail -1)
expected='{"launched_at":datetime < "2023-05-06T07:00:31"}:up-a1 {"launched_at":datetime = "2023-05-06T07:00:30"}:up-a1 {"launched_at":datetime > "2023-05-06T07:00:30"}: {"launched_at":datetime >= "2023-05-06T07:00:30"}:up-a1'
plan=$(q upgraded -c "SET enable_seqscan = off" -c "EXPLAIN (COSTS OFF) SELECT 1 FROM panko.event
    WHERE traits OPERATOR(panko.@@) '{\"launched_at\":datetime = \"2023-05-06T07:00:30\"}'::panko.traitquery" | grep -c "Bitmap Index Scan on .*traits_idx")
[ "$r" = "$expected" ] && [ "$plan" -gt 0 ] && pass "datetime filters through the GIN index rebuilt by the update" \
    || fail "datetime filters after update gave '$r' (expected '$expected'), plan with the GIN index: $plan"

# Row-level security still applies after the update, through a 0.2.0 function.
r=$(psql -X -qAt -v ON_ERROR_STOP=1 -d upgraded -U upgrade_api 2>&1 <<'EOF'
BEGIN;
SELECT panko.set_identity('u1', 'A', 'member');
SELECT count(*) FROM json_array_elements(panko.api_get_events('{"limit": 1000}'));
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

# ---------------------------------------------------------------- 0.5.0 retention classes
# Partitions made before the update keep one table for every class; those
# made since (run_maintenance above made some ahead) get a table per class.
ahead=$(date -u -d '+3 days' +%Y-%m-%dT12:00:00)
r=$(q upgraded -c "SELECT count(*) FROM panko.record_events('[
      {\"message_id\": \"up-trace-new\", \"event_type\": \"osprofiler.start\", \"generated\": \"$ahead\", \"traits\": []},
      {\"message_id\": \"up-trace-old\", \"event_type\": \"osprofiler.start\", \"generated\": \"2023-05-06T08:00:00\", \"traits\": []}]')")
[ "$r" = 0 ] && pass "record_events after update stores a trace in an old and in a new partition" \
    || fail "record_events of two traces after update reported $r problems"
r=$(q upgraded -c "SELECT string_agg(format('%s:%s:%s', message_id, retention, tableoid::regclass::text LIKE '%\_trace'), ','
                            ORDER BY message_id)
                     FROM panko.event WHERE message_id LIKE 'up-trace-%'")
[ "$r" = "up-trace-new:trace:t,up-trace-old:trace:f" ] \
    && pass "after update: a new partition has a table for traces, an old one holds them in its one table" \
    || fail "traces after update landed as '$r', expected up-trace-new in a _trace table, up-trace-old in its old partition"
q upgraded -c "DELETE FROM panko.event WHERE message_id LIKE 'up-trace-%'" >/dev/null

# ---------------------------------------------------------------- 0.7.0 rating rollup
# Rated data stored before the update is counted into the daily rollup by
# the update itself (a database of its own, made at 0.6.0).
q upgraded -c "CREATE DATABASE rated" >/dev/null
q rated -c "CREATE EXTENSION panko VERSION '0.6.0'" >/dev/null 2>&1
q rated -c "SELECT panko.rating_push('[
      {\"message_id\": \"cloudkitty:up-1\", \"event_type\": \"cloudkitty.instance\", \"generated\": \"2026-11-02T10:00:00\",
       \"traits\": {\"qty\": \"1.5\", \"price\": \"0.25\", \"unit\": \"instance\", \"period\": 3600, \"project_id\": \"pA\", \"g.project_id\": \"pA\"}},
      {\"message_id\": \"cloudkitty:up-2\", \"event_type\": \"cloudkitty.instance\", \"generated\": \"2026-11-02T11:00:00\",
       \"traits\": {\"qty\": \"2\", \"price\": \"0.125\", \"unit\": \"instance\", \"period\": 3600, \"project_id\": \"pA\", \"g.project_id\": \"pA\"}},
      {\"message_id\": \"cloudkitty:up-3\", \"event_type\": \"cloudkitty.volume\", \"generated\": \"2026-11-03T00:00:00\",
       \"traits\": {\"qty\": \"3\", \"price\": \"1\", \"unit\": \"GiB\", \"period\": 3600, \"project_id\": \"pB\"}}]')" >/dev/null
before=$(q rated -c "SELECT panko.rating_total('2026-11-01', '2026-12-01', '{project_id,type}')::jsonb::text")
q rated -c "ALTER EXTENSION panko UPDATE" >/dev/null
r=$(q rated -c "SELECT string_agg(format('%s/%s/%s/%s/%s/%s', to_char(day AT TIME ZONE 'UTC', 'MM-DD'), t.name, scope,
                                          coalesce(gproject, '-'), points, price), ' ' ORDER BY day, t.name)
                  FROM panko.rating_rollup r JOIN panko.event_type t ON t.id = r.event_type_id")
[ "$r" = "11-02/cloudkitty.instance/pA/pA/2/0.375 11-03/cloudkitty.volume/pB/-/1/1" ] \
    && pass "the update counts the rated data stored before it into the daily rollup" \
    || fail "rollup after update: '$r'"
after=$(q rated -c "SELECT panko.rating_total('2026-11-01', '2026-12-01', '{project_id,type}')::jsonb::text")
[ -n "$before" ] && [ "$before" = "$after" ] \
    && pass "a whole month's total from the rollup after update is the total before it" \
    || fail "total before update '$before', after '$after'"
q upgraded -c "DROP DATABASE rated" >/dev/null

# ---------------------------------------------------------------- 0.16.0 registry rows per push
# 0.16.0 keys a pushed point's message_id cloudkitty:<push>:<n> by its push;
# 0.15.0 registered each point under its own id.  Those rows are emptied here
# (the library installed is the new one, so 0.15.0's own keys cannot be
# written): the update must register the points under their push again, or
# a lookup by message_id finds no registry row and so no point, and the
# push sent again is stored twice.
q upgraded -c "CREATE DATABASE pushes" >/dev/null
q pushes -c "CREATE EXTENSION panko VERSION '0.15.0'" >/dev/null 2>&1
PUSH='{"push": "up-push", "scope": "pA", "frames": [
        {"start": "2026-11-02T10:00:00+00:00", "period": 3600, "points": [["instance", "instance", "1.5", "0.25", {"project_id": "pA"}, {}],
                                                                         ["instance", "instance", "2", "0.5", {"project_id": "pA"}, {}]]},
        {"start": "2026-11-03T10:00:00+00:00", "period": 3600, "points": [["volume", "GiB", "3", "1", {"project_id": "pA"}, {}]]}]}'
q pushes -c "SELECT panko.rating_push_frames('$PUSH')" -c "TRUNCATE panko.event_message" >/dev/null
q pushes -c "ALTER EXTENSION panko UPDATE" >/dev/null
r=$(q pushes -c "SELECT string_agg(format('%s:%s', n, (SELECT to_char(generated AT TIME ZONE 'UTC', 'MM-DD')
                                                        FROM panko.get_events(jsonb_build_object('message_id', 'cloudkitty:up-push:' || n)))), ' ')
                   FROM generate_series(1, 3) n")
rows=$(q pushes -c "SELECT count(*) || ' ' || to_char(max(generated) AT TIME ZONE 'UTC', 'MM-DD') FROM panko.event_message")
q pushes -c "SELECT panko.rating_push_frames('$PUSH')" >/dev/null
points=$(q pushes -c "SELECT count(*) FROM panko.event")
[ "$r" = "1:11-02 2:11-02 3:11-03" ] && [ "$rows" = "1 11-03" ] && [ "$points" = 3 ] \
    && pass "the update registers pushed points under their push: found by message_id, a push sent again stores nothing" \
    || fail "after update: lookups '$r' (expected 1:11-02 2:11-02 3:11-03), registry '$rows' (expected 1 11-03), $points points (expected 3)"
q upgraded -c "DROP DATABASE pushes" >/dev/null

# ---------------------------------------------------------------- 0.17.0 amount keys
# 0.17.0 keys a qty or price string by its first two bytes (key format 3).
# Points stored under 0.16.0 are in an index of exact keys: the update must
# rebuild it, or the format-3 query keys of an amount find nothing there.
q upgraded -c "CREATE DATABASE amounts" >/dev/null
q amounts -c "CREATE EXTENSION panko VERSION '0.16.0'" >/dev/null 2>&1
PUSH='{"push": "up-amounts", "scope": "pA", "frames": [
        {"start": "2026-11-02T10:00:00+00:00", "period": 3600, "points": [["instance", "instance", "54.321", "0.25", {"project_id": "pA"}, {}],
                                                                         ["instance", "instance", "54.1", "0.5", {"project_id": "pA"}, {}],
                                                                         ["instance", "instance", "5", "12.5", {"project_id": "pA"}, {}]]}]}'
q amounts -c "SELECT panko.rating_push_frames('$PUSH')" >/dev/null
q amounts -c "ALTER EXTENSION panko UPDATE" >/dev/null
AMOUNTS="SELECT concat_ws(' ', (SELECT count(*) FROM panko.event WHERE traits OPERATOR(panko.@>) '{\"qty\":string=\"54.1\"}'),
                              (SELECT count(*) FROM panko.event WHERE traits OPERATOR(panko.@@) '{\"qty\":string >= \"54.2\"}'),
                              (SELECT count(*) FROM panko.event WHERE traits OPERATOR(panko.@@) '{\"price\":string < \"0.3\"}'),
                              (SELECT count(*) FROM panko.event WHERE traits OPERATOR(panko.@>) '{\"qty\":string=\"5\"}'))"
r=$(q amounts -c "SET enable_seqscan = off" -c "$AMOUNTS")
s=$(q amounts -c "SET enable_bitmapscan = off" -c "SET enable_indexscan = off" -c "$AMOUNTS")
[ "$r" = "1 1 1 1" ] && [ "$s" = "$r" ] \
    && pass "the update rebuilds the traits index in key format 3: filters on amounts stored before it agree with a scan" \
    || fail "amount filters after update: index '$r', scan '$s' (expected 1 1 1 1)"
q upgraded -c "DROP DATABASE amounts" >/dev/null

# ---------------------------------------------------------------- the same schema as a fresh install
# Everything the comparison looks at, one line per fact, in a fixed order.
# Objects are named, never numbered (OIDs differ); partitions are described
# by shape.  See the header for what is covered.
SNAPSHOT=$(cat <<'EOF'
SET search_path = pg_catalog;
-- The extension, its config_dump tables, its member objects.
SELECT format('extension %s version=%s relocatable=%s schema=%s owner=%s',
              e.extname, e.extversion, e.extrelocatable, e.extnamespace::regnamespace, e.extowner::regrole)
  FROM pg_extension e WHERE e.extname = 'panko';
SELECT format('config_dump %s condition=%L', u.tab::regclass, u.cond)
  FROM pg_extension e, unnest(e.extconfig, e.extcondition) AS u(tab, cond)
 WHERE e.extname = 'panko'
 ORDER BY 1;
SELECT 'member ' || pg_describe_object(d.classid, d.objid, d.objsubid)
  FROM pg_depend d
 WHERE d.deptype = 'e' AND d.refclassid = 'pg_extension'::regclass
   AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'panko')
 ORDER BY 1;

-- Relations of schema panko but the partitions of panko.event (below).
SELECT format('relation %s kind=%s persistence=%s options=%s rls=%s force_rls=%s replica_identity=%s partition_key=%s toast=%s',
              c.oid::regclass, c.relkind, c.relpersistence, c.reloptions, c.relrowsecurity, c.relforcerowsecurity,
              c.relreplident, pg_get_partkeydef(c.oid), c.reltoastrelid <> 0)
  FROM pg_class c
 WHERE c.relnamespace = 'panko'::regnamespace AND NOT c.relispartition AND c.relkind NOT IN ('i', 'I')
 ORDER BY 1;
SELECT format('column %s.%I %s not_null=%s default=%s identity=%s generated=%s collation=%s storage=%s compression=%s stattarget=%s',
              c.oid::regclass, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
              pg_get_expr(ad.adbin, ad.adrelid), a.attidentity, a.attgenerated,
              (SELECT co.collname FROM pg_collation co WHERE co.oid = a.attcollation),
              a.attstorage, a.attcompression, a.attstattarget)
  FROM pg_class c
  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
  LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
 WHERE c.relnamespace = 'panko'::regnamespace AND NOT c.relispartition AND c.relkind NOT IN ('i', 'I')
 ORDER BY c.oid::regclass::text, a.attnum;
SELECT format('constraint %s %I %s deferrable=%s deferred=%s validated=%s',
              CASE WHEN con.conrelid <> 0 THEN con.conrelid::regclass::text ELSE format_type(con.contypid, NULL) END,
              con.conname, pg_get_constraintdef(con.oid), con.condeferrable, con.condeferred, con.convalidated)
  FROM pg_constraint con
 WHERE con.connamespace = 'panko'::regnamespace
   AND NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = con.conrelid AND c.relispartition)
 ORDER BY 1;
SELECT format('index %s valid=%s clustered=%s replica_identity=%s',
              pg_get_indexdef(i.indexrelid), i.indisvalid, i.indisclustered, i.indisreplident)
  FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
 WHERE c.relnamespace = 'panko'::regnamespace AND NOT c.relispartition
 ORDER BY 1;
SELECT format('view %s | %s', c.oid::regclass, l)
  FROM pg_class c, regexp_split_to_table(pg_get_viewdef(c.oid), E'\n') WITH ORDINALITY AS v(l, n)
 WHERE c.relnamespace = 'panko'::regnamespace AND c.relkind IN ('v', 'm')
 ORDER BY c.oid::regclass::text, v.n;
SELECT format('sequence %s type=%s start=%s increment=%s min=%s max=%s cache=%s cycle=%s owned_by=%s',
              s.seqrelid::regclass, format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement, s.seqmin, s.seqmax,
              s.seqcache, s.seqcycle,
              (SELECT string_agg(format('%s.%I(%s)', d.refobjid::regclass, a.attname, d.deptype), ',')
                 FROM pg_depend d
                 JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
                WHERE d.classid = 'pg_class'::regclass AND d.objid = s.seqrelid
                  AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')))
  FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid
 WHERE c.relnamespace = 'panko'::regnamespace
 ORDER BY 1;
SELECT format('trigger %s enabled=%s', pg_get_triggerdef(t.oid), t.tgenabled)
  FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
 WHERE c.relnamespace = 'panko'::regnamespace AND NOT c.relispartition AND NOT t.tgisinternal
 ORDER BY 1;
SELECT format('rule %s.%I %s', r.schemaname, r.rulename, regexp_replace(r.definition, '\s+', ' ', 'g'))
  FROM pg_rules r WHERE r.schemaname = 'panko'
 ORDER BY 1;
SELECT format('policy %I on %s.%s %s', p.policyname, p.schemaname, p.tablename, l)
  FROM pg_policies p,
       regexp_split_to_table(format(E'permissive=%s roles=%s command=%s\nUSING (%s)\nWITH CHECK (%s)',
                                    p.permissive, p.roles, p.cmd, p.qual, p.with_check), E'\n') WITH ORDINALITY AS e(l, n)
 WHERE p.schemaname = 'panko'
   -- (partitions' policies are in their shape below; pgTAP checks they are panko.event's)
   AND NOT (SELECT c.relispartition FROM pg_class c WHERE c.oid = format('%I.%I', p.schemaname, p.tablename)::regclass)
 ORDER BY p.schemaname, p.tablename, p.policyname, e.n;
SELECT format('statistics %s', pg_get_statisticsobjdef(s.oid))
  FROM pg_statistic_ext s WHERE s.stxnamespace = 'panko'::regnamespace
 ORDER BY 1;

-- Functions, whole definitions, line by line.
SELECT format('function %s | %s', p.oid::regprocedure, l)
  FROM pg_proc p,
       regexp_split_to_table(CASE WHEN p.prokind = 'a' THEN 'aggregate' ELSE pg_get_functiondef(p.oid) END, E'\n')
           WITH ORDINALITY AS f(l, n)
 WHERE p.pronamespace = 'panko'::regnamespace
 ORDER BY p.oid::regprocedure::text, f.n;

-- Types (not the row types of relations), operators, operator classes and
-- families, casts.
SELECT format('type %s type=%s len=%s byval=%s category=%s preferred=%s delimiter=%s input=%s output=%s receive=%s send=%s typmod_in=%s typmod_out=%s analyze=%s subscript=%s align=%s storage=%s not_null=%s element=%s array=%s base=%s typmod=%s ndims=%s collation=%s default=%s',
              format_type(t.oid, NULL), t.typtype, t.typlen, t.typbyval, t.typcategory, t.typispreferred, t.typdelim,
              t.typinput, t.typoutput, t.typreceive, t.typsend, t.typmodin, t.typmodout, t.typanalyze, t.typsubscript,
              t.typalign, t.typstorage, t.typnotnull, format_type(nullif(t.typelem, 0), NULL),
              format_type(nullif(t.typarray, 0), NULL), format_type(nullif(t.typbasetype, 0), NULL), t.typtypmod,
              t.typndims, (SELECT co.collname FROM pg_collation co WHERE co.oid = t.typcollation), t.typdefault)
  FROM pg_type t
 WHERE t.typnamespace = 'panko'::regnamespace
   AND NOT EXISTS (SELECT 1 FROM pg_class c
                    WHERE c.relkind <> 'c'
                      AND c.oid IN (t.typrelid, (SELECT e.typrelid FROM pg_type e WHERE e.oid = t.typelem)))
 ORDER BY 1;
SELECT format('operator %s kind=%s result=%s function=%s restrict=%s join=%s commutator=%s negator=%s merges=%s hashes=%s owner=%s',
              o.oid::regoperator, o.oprkind, format_type(o.oprresult, NULL), o.oprcode, o.oprrest, o.oprjoin,
              nullif(o.oprcom, 0)::regoperator, nullif(o.oprnegate, 0)::regoperator, o.oprcanmerge, o.oprcanhash,
              o.oprowner::regrole)
  FROM pg_operator o WHERE o.oprnamespace = 'panko'::regnamespace
 ORDER BY 1;
SELECT format('operator family %s.%I using %s owner=%s', f.opfnamespace::regnamespace, f.opfname, am.amname, f.opfowner::regrole)
  FROM pg_opfamily f JOIN pg_am am ON am.oid = f.opfmethod
 WHERE f.opfnamespace = 'panko'::regnamespace
 ORDER BY 1;
SELECT format('operator class %s.%I using %s for %s default=%s storage=%s family=%s.%I owner=%s',
              c.opcnamespace::regnamespace, c.opcname, am.amname, format_type(c.opcintype, NULL), c.opcdefault,
              format_type(nullif(c.opckeytype, 0), NULL), f.opfnamespace::regnamespace, f.opfname, c.opcowner::regrole)
  FROM pg_opclass c JOIN pg_am am ON am.oid = c.opcmethod JOIN pg_opfamily f ON f.oid = c.opcfamily
 WHERE c.opcnamespace = 'panko'::regnamespace
 ORDER BY 1;
SELECT format('operator family %s.%I using %s: operator %s %s (%s, %s) purpose=%s sort_family=%s',
              f.opfnamespace::regnamespace, f.opfname, am.amname, ao.amopstrategy, ao.amopopr::regoperator,
              format_type(ao.amoplefttype, NULL), format_type(ao.amoprighttype, NULL), ao.amoppurpose,
              nullif(ao.amopsortfamily, 0))
  FROM pg_amop ao JOIN pg_opfamily f ON f.oid = ao.amopfamily JOIN pg_am am ON am.oid = f.opfmethod
 WHERE f.opfnamespace = 'panko'::regnamespace
 ORDER BY f.opfname, am.amname, ao.amopstrategy, 1;
SELECT format('operator family %s.%I using %s: function %s (%s, %s) %s',
              f.opfnamespace::regnamespace, f.opfname, am.amname, ap.amprocnum, format_type(ap.amproclefttype, NULL),
              format_type(ap.amprocrighttype, NULL), ap.amproc::regprocedure)
  FROM pg_amproc ap JOIN pg_opfamily f ON f.oid = ap.amprocfamily JOIN pg_am am ON am.oid = f.opfmethod
 WHERE f.opfnamespace = 'panko'::regnamespace
 ORDER BY f.opfname, am.amname, ap.amprocnum, 1;
SELECT format('cast (%s AS %s) function=%s context=%s method=%s', format_type(c.castsource, NULL),
              format_type(c.casttarget, NULL), nullif(c.castfunc, 0)::regprocedure, c.castcontext, c.castmethod)
  FROM pg_cast c WHERE c.oid >= 16384
 ORDER BY 1;

-- Every comment on an object made after initdb.
SELECT format('comment on %s: %s', pg_describe_object(d.classoid, d.objoid, d.objsubid), d.description)
  FROM pg_description d WHERE d.objoid >= 16384
 ORDER BY 1;

-- Owners, privileges and initial privileges (pg_init_privs), as sets of
-- ACL items (one per grantee and grantor) in a fixed order; no ACL means the
-- default one.
WITH obj(label, cls, objid, subid, acl, kind, owner) AS (
    SELECT format('schema %I', n.nspname), 'pg_namespace'::regclass, n.oid, 0, n.nspacl, 'n', n.nspowner
      FROM pg_namespace n WHERE n.nspname = 'panko'
    UNION ALL
    SELECT format('%s %s', CASE c.relkind WHEN 'S' THEN 'sequence' WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view'
                                          WHEN 'f' THEN 'foreign table' ELSE 'table' END, c.oid::regclass),
           'pg_class'::regclass, c.oid, 0, c.relacl, CASE c.relkind WHEN 'S' THEN 's' ELSE 'r' END, c.relowner
      FROM pg_class c
     WHERE c.relnamespace = 'panko'::regnamespace AND NOT c.relispartition AND c.relkind NOT IN ('i', 'I', 'c')
    UNION ALL
    SELECT format('column %s.%I', c.oid::regclass, a.attname), 'pg_class'::regclass, c.oid, a.attnum, a.attacl, 'c', c.relowner
      FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
     WHERE c.relnamespace = 'panko'::regnamespace AND NOT c.relispartition AND c.relkind NOT IN ('i', 'I', 'c')
    UNION ALL
    SELECT format('function %s', p.oid::regprocedure), 'pg_proc'::regclass, p.oid, 0, p.proacl, 'f', p.proowner
      FROM pg_proc p WHERE p.pronamespace = 'panko'::regnamespace
    UNION ALL
    SELECT format('type %s', format_type(t.oid, NULL)), 'pg_type'::regclass, t.oid, 0, t.typacl, 'T', t.typowner
      FROM pg_type t
     WHERE t.typnamespace = 'panko'::regnamespace
       AND NOT EXISTS (SELECT 1 FROM pg_class c
                        WHERE c.relkind <> 'c'
                          AND c.oid IN (t.typrelid, (SELECT e.typrelid FROM pg_type e WHERE e.oid = t.typelem)))
)
SELECT format('privileges of %s owner=%s acl=%s initial=%s', o.label, o.owner::regrole, now_acl.x, init_acl.x)
  FROM obj o,
       LATERAL (SELECT '{' || coalesce(string_agg(a::text, ',' ORDER BY a::text), '') || '}' AS x
                  FROM unnest(coalesce(o.acl, acldefault(o.kind::"char", o.owner))) a) now_acl,
       LATERAL (SELECT '{' || coalesce(string_agg(a::text, ',' ORDER BY a::text), '') || '}' AS x
                  FROM unnest(coalesce((SELECT i.initprivs FROM pg_init_privs i
                                         WHERE i.classoid = o.cls AND i.objoid = o.objid AND i.objsubid = o.subid),
                                       acldefault(o.kind::"char", o.owner))) a) init_acl
 ORDER BY o.label;

-- Partitions of panko.event, and their tables of each class, by shape (a
-- line per fact, the table's own name taken out): each distinct shape once.
-- (How many there are differs: an updated database keeps the partitions
-- it had, one table each, beside the ones partitioned by class since 0.5.0;
-- both kinds of table that hold events must have the same shape.)
SELECT format('partitions of panko.event | %s', l)
  FROM (SELECT DISTINCT shape
          FROM (SELECT replace(concat_ws(E'\n',
                           format('relation kind=%s persistence=%s options=%s rls=%s force_rls=%s owner=%s acl=%s',
                                  c.relkind, c.relpersistence, c.reloptions, c.relrowsecurity, c.relforcerowsecurity,
                                  c.relowner::regrole,
                                  (SELECT '{' || string_agg(x::text, ',' ORDER BY x::text) || '}'
                                     FROM unnest(coalesce(c.relacl, acldefault('r', c.relowner))) x)),
                           (SELECT string_agg(format('column %I %s not_null=%s default=%s storage=%s compression=%s collation=%s acl=%s',
                                                     a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
                                                     pg_get_expr(ad.adbin, ad.adrelid), a.attstorage, a.attcompression,
                                                     (SELECT co.collname FROM pg_collation co WHERE co.oid = a.attcollation),
                                                     (SELECT '{' || string_agg(x::text, ',' ORDER BY x::text) || '}'
                                                        FROM unnest(a.attacl) x)),
                                              E'\n' ORDER BY a.attnum)
                              FROM pg_attribute a
                              LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
                             WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped),
                           (SELECT string_agg(format('constraint %I %s', con.conname, pg_get_constraintdef(con.oid)), E'\n'
                                              ORDER BY replace(con.conname, c.relname, ''))
                              FROM pg_constraint con WHERE con.conrelid = c.oid),
                           (SELECT string_agg(format('index %s valid=%s attached_to=%s', pg_get_indexdef(x.indexrelid), x.indisvalid,
                                                     pg_partition_root(x.indexrelid)),
                                              E'\n' ORDER BY replace(pg_get_indexdef(x.indexrelid), c.relname, ''))
                              FROM pg_index x WHERE x.indrelid = c.oid),
                           (SELECT string_agg(format('trigger %s', pg_get_triggerdef(t.oid)), E'\n'
                                              ORDER BY replace(pg_get_triggerdef(t.oid), c.relname, ''))
                              FROM pg_trigger t WHERE t.tgrelid = c.oid),
                           (SELECT string_agg(format('policy %I', pol.polname), E'\n' ORDER BY pol.polname)
                              FROM pg_policy pol WHERE pol.polrelid = c.oid)),
                       c.relname, '<partition>') AS shape
                  FROM pg_partition_tree('panko.event'::regclass) i JOIN pg_class c ON c.oid = i.relid
                 WHERE i.level >= 1) s) g,
       regexp_split_to_table(g.shape, E'\n') WITH ORDINALITY AS f(l, k)
 ORDER BY g.shape, f.k;

-- Cluster-wide: roles made after initdb (not this test's), their
-- memberships; and default privileges, event triggers.
SELECT format('role %I login=%s superuser=%s inherit=%s createrole=%s createdb=%s replication=%s bypassrls=%s connection_limit=%s valid_until=%s config=%s comment=%s',
              r.rolname, r.rolcanlogin, r.rolsuper, r.rolinherit, r.rolcreaterole, r.rolcreatedb, r.rolreplication,
              r.rolbypassrls, r.rolconnlimit, r.rolvaliduntil, r.rolconfig, shobj_description(r.oid, 'pg_authid'))
  FROM pg_roles r WHERE r.oid >= 16384 AND r.rolname <> 'upgrade_api'
 ORDER BY 1;
SELECT format('role %I is a member of %I admin_option=%s grantor=%s', m.member::regrole, m.roleid::regrole,
              m.admin_option, m.grantor::regrole)
  FROM pg_auth_members m
 WHERE (m.roleid >= 16384 OR m.member >= 16384)
   AND 'upgrade_api' NOT IN (m.roleid::regrole::text, m.member::regrole::text)
 ORDER BY 1;
SELECT format('default privileges of %s in %s on %s: %s', d.defaclrole::regrole,
              coalesce(nullif(d.defaclnamespace, 0)::regnamespace::text, '-'), d.defaclobjtype, d.defaclacl)
  FROM pg_default_acl d
 ORDER BY 1;
SELECT format('event trigger %I on %s function=%s enabled=%s tags=%s', t.evtname, t.evtevent, t.evtfoid::regprocedure,
              t.evtenabled, t.evttags)
  FROM pg_event_trigger t
 ORDER BY 1;
EOF
)

# The update is done and checked; what the comparison needs of the upgraded
# database: its snapshot, and the timestamps its partitions were made for.
work=$(mktemp -d)
q upgraded -f - <<<"$SNAPSHOT" >"$work/upgraded.schema" \
    || { fail "taking the snapshot of the upgraded database failed"; exit 1; }
q upgraded -c "SELECT CASE WHEN lower_bound = '-infinity' THEN upper_bound - interval '1 microsecond' ELSE lower_bound END
                 FROM panko.partition ORDER BY lower_bound" >"$work/partition.timestamps" \
    || { fail "listing the partitions of the upgraded database failed"; exit 1; }

# ---------------------------------------------------------------- fresh install, in a cluster of its own
start_cluster fresh || { fail "could not start a second cluster"; exit 1; }
q postgres -c "CREATE DATABASE fresh" >/dev/null || { fail "CREATE DATABASE fresh"; exit 1; }
if ! out=$(q fresh -c "CREATE EXTENSION panko" 2>&1); then
    fail "CREATE EXTENSION panko in a fresh database: $out"
    exit 1
fi
v=$(q fresh -c "SELECT extversion FROM pg_extension WHERE extname = 'panko'")
[ "$v" = "$DEFAULT_VERSION" ] && pass "a fresh CREATE EXTENSION panko installs $v" \
    || fail "a fresh CREATE EXTENSION panko installed '$v', not default_version '$DEFAULT_VERSION'"
# Partitions for the same timestamps as the upgraded database's.
while read -r ts; do
    q fresh -c "SELECT panko.create_partition_for('$ts')" >/dev/null || fail "fresh: create_partition_for('$ts') failed"
done <"$work/partition.timestamps"
q fresh -f - <<<"$SNAPSHOT" >"$work/fresh.schema" || { fail "taking the snapshot of the fresh database failed"; exit 1; }

members=$(grep -c '^member ' "$work/fresh.schema")
if [ "$members" -lt 50 ]; then
    fail "a fresh CREATE EXTENSION panko has only $members member objects"
elif diff -u --label fresh --label upgraded "$work/fresh.schema" "$work/upgraded.schema" >"$work/schema.diff"; then
    pass "schema after update identical to a fresh install: $members member objects, $(wc -l <"$work/fresh.schema") facts (definitions, indexes, partitions, policies, comments, privileges, roles)"
else
    fail "schema after update differs from a fresh install of $INSTALL_SCRIPT (- fresh, + upgraded):"
    sed 's/^/    /' "$work/schema.diff"
fi
if [ -n "${KEEP_CLUSTER:-}" ]; then
    echo "# snapshots kept in $work"
else
    rm -rf "$work"
fi

echo
if [ "$FAILURES" -ne 0 ]; then
    echo "upgrade: $FAILURES check(s) FAILED"
    exit 1
fi
echo "upgrade: all checks passed"
