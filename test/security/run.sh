#!/usr/bin/env bash
# test/security/run.sh: what an attacker with a SQL login tries.
#
# Starts its own cluster (test/lib.sh) and runs every check twice: in a
# database with a fresh CREATE EXTENSION panko, and in one created at
# 0.3.0 (the release before the fixes) and brought up with ALTER EXTENSION
# panko UPDATE, so the upgrade script is shown to carry each fix.
#
#   bash test/security/run.sh            every check
#   VERBOSE=1 bash test/security/run.sh  print each statement's output
#
# Checks:
#   null-calls    every function of the extension (from pg_proc) called
#                 with NULL for every argument, as a role with no grants
#                 and as superuser; the server log must show no backend
#                 killed by a signal, and the server must still answer
#   explain       a tenant role (panko_reader, panko_api) cannot read the
#                 table or the view, so EXPLAIN cannot count hidden rows;
#                 through get_events a right and a wrong guess of another
#                 tenant's secret give identical EXPLAIN ANALYZE output;
#                 readers still get trait filters answered from GIN
#   privileges    PUBLIC executes only the types' functions; every
#                 SECURITY DEFINER function pins search_path; partitions
#                 are created under pinned storage settings
#   filters       20,000 q items are checked in linear time
#   utf8          messages that quote bad input never cut a character
set -uo pipefail
cd "$(dirname "$0")/../.."
source test/lib.sh

PASS=0
FAIL=0
ok() { PASS=$((PASS + 1)); echo "ok - $1"; }
not_ok() { FAIL=$((FAIL + 1)); echo "not ok - $1"; [ -n "${2:-}" ] && echo "$2" | sed 's/^/#   /'; }

# check NAME EXPECTED SQL [psql args...]: the SQL's output must equal EXPECTED.
check() {
    local name=$1 expected=$2 sql=$3; shift 3
    local got
    got=$(psql -X -qAt "$@" -c "$sql" 2>&1)
    [ -n "${VERBOSE:-}" ] && echo "$got" | sed 's/^/#   /'
    if [ "$got" = "$expected" ]; then ok "$name"; else not_ok "$name" "expected: $expected
got: $got"; fi
}

# refused NAME SQLSTATE SQL [psql args...]: the SQL must fail with SQLSTATE.
refused() {
    local name=$1 state=$2 sql=$3; shift 3
    local got
    got=$(psql -X -qAt -v ON_ERROR_STOP=1 -v VERBOSITY=verbose "$@" -c "$sql" 2>&1)
    if echo "$got" | grep -q "ERROR:  $state:"; then ok "$name"; else not_ok "$name" "expected SQLSTATE $state, got: $got"; fi
}

pg_start security "log_min_messages = warning" || { echo "could not start a cluster"; exit 1; }
LOG=$PG_TMP/server.log
export PGDATABASE=postgres

# Login roles: one of each panko role, and one with nothing at all.
psql -X -q -v ON_ERROR_STOP=1 <<'SQL' >/dev/null || { echo "could not create roles"; exit 1; }
CREATE EXTENSION panko;  -- creates the NOLOGIN roles; dropped again below
DROP EXTENSION panko;
CREATE ROLE sec_nobody LOGIN;
CREATE ROLE sec_reader LOGIN IN ROLE panko_reader;
CREATE ROLE sec_writer LOGIN IN ROLE panko_writer;
CREATE ROLE sec_api LOGIN IN ROLE panko_api;
SQL

# The fixture: one event of project A, one of project B with a secret.
FIXTURE='[{"message_id": "a1", "event_type": "compute.instance.create.end", "generated": "2026-06-01T10:00:00",
   "traits": [{"name": "project_id", "type": "string", "value": "projA"},
              {"name": "user_id", "type": "string", "value": "uA"}]},
  {"message_id": "b1", "event_type": "compute.instance.create.end", "generated": "2026-06-01T11:00:00",
   "traits": [{"name": "project_id", "type": "string", "value": "projB"},
              {"name": "user_id", "type": "string", "value": "uB"},
              {"name": "secret", "type": "string", "value": "bravo-secret-value"}]}]'

setup_db() {
    local db=$1 version=${2:-}
    psql -X -q -v ON_ERROR_STOP=1 -c "CREATE DATABASE $db" >/dev/null || return 1
    if [ -n "$version" ]; then
        psql -X -q -v ON_ERROR_STOP=1 -d "$db" -c "CREATE EXTENSION panko VERSION '$version'" \
            -c "ALTER EXTENSION panko UPDATE" >/dev/null 2>&1 || return 1
    else
        psql -X -q -v ON_ERROR_STOP=1 -d "$db" -c "CREATE EXTENSION panko" >/dev/null 2>&1 || return 1
    fi
    psql -X -qAt -v ON_ERROR_STOP=1 -d "$db" -v events="$FIXTURE" \
        <<<"SELECT count(*) FROM panko.record_events(:'events');" | grep -qx 0 || return 1
    # 5,000 events of project A on the same day, so that a rare trait is
    # worth a GIN probe to the planner.
    psql -X -qAt -v ON_ERROR_STOP=1 -d "$db" <<'SQL' | grep -qx 0
SELECT count(*) FROM panko.record_events((
    SELECT jsonb_agg(jsonb_build_object('message_id', 'bulk-' || g, 'event_type', 'compute.instance.update',
               'generated', '2026-06-01T12:00:00',
               'traits', jsonb_build_array(jsonb_build_array('project_id', 1, 'projA'), jsonb_build_array('user_id', 1, 'uA'),
                                           jsonb_build_array('instance_id', 1, 'i-' || g))))
      FROM generate_series(1, 5000) g));
ANALYZE panko.event;
SQL
}

# Every function of panko, called with a NULL of each argument's type.
null_calls() {
    psql -X -qAt -d "$1" <<'SQL'
SELECT format('SELECT %s(%s);', p.oid::regproc,
              coalesce(string_agg(format('NULL::%s', format_type(t, NULL)), ', ' ORDER BY n)
                           FILTER (WHERE t IS NOT NULL), ''))
  FROM pg_proc p
  LEFT JOIN LATERAL unnest(p.proargtypes::oid[]) WITH ORDINALITY AS a(t, n) ON true
 WHERE p.pronamespace = 'panko'::regnamespace AND p.prokind = 'f'
 GROUP BY p.oid
HAVING NOT bool_or(coalesce(t = 'internal'::regtype, false))
 ORDER BY 1;
SQL
}

# guess SECRET: as a member of project A, filter on project B's secret.
guess() {
    psql -X -qAt -U sec_api -d "$GUESS_DB" <<SQL 2>&1
BEGIN;
SELECT panko.set_identity('uA', 'projA', 'member');
SET LOCAL enable_seqscan = off;
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF)
SELECT * FROM panko.get_events('{"traits_filter": [{"key": "project_id", "op": "eq", "string": "projB"},
                                               {"key": "secret", "op": "eq", "string": "$1"}]}');
SELECT panko.api_get_events('{"q": [{"field": "secret", "op": "ge", "value": "$1"}]}');
COMMIT;
SQL
}

run_checks() {
    local db=$1 label=$2
    local calls n_calls n_internal

    echo "# $label ($db)"
    ######################################################## others' tables
    # panko's event triggers fire on everyone's DROP TABLE: a role with no
    # panko rights must still be able to drop a table of its own.
    psql -X -q -d "$db" -c "GRANT CREATE ON SCHEMA public TO sec_nobody" >/dev/null
    check "$label: a role without panko rights creates and drops a table of its own" "dropped" \
        "CREATE TABLE public.sec_own (a int); DROP TABLE public.sec_own; SELECT 'dropped'" -U sec_nobody -d "$db"
    psql -X -q -d "$db" -c "REVOKE CREATE ON SCHEMA public FROM sec_nobody" >/dev/null
    ######################################################## null-calls
    calls=$(null_calls "$db")
    n_calls=$(echo "$calls" | grep -c .)
    n_internal=$(psql -X -qAt -d "$db" -c "SELECT count(*) FROM pg_proc WHERE pronamespace = 'panko'::regnamespace
        AND 'internal'::regtype = ANY (proargtypes::oid[])")
    echo "# $n_calls functions callable from SQL; $n_internal take internal (not callable from SQL)"
    [ "$n_calls" -gt 40 ] || not_ok "$label: found the functions in pg_proc" "only $n_calls"
    for role in sec_nobody postgres; do
        # One statement per line: an error in one (permission denied, a bad
        # NULL) must not stop the others.
        local out
        out=$(echo "$calls" | psql -X -q -U "$role" -d "$db" 2>&1 >/dev/null)
        if echo "$out" | grep -q "syntax error\|function .* does not exist"; then
            not_ok "$label: every generated NULL call is a valid call" "$(echo "$out" | grep -m3 "syntax error\|function .* does not exist")"
        fi
        if grep -q "terminated by signal" "$LOG"; then
            not_ok "$label: NULL for every argument of every function as $role" "$(grep -B2 'terminated by signal' "$LOG" | head -20)"
        else
            ok "$label: NULL for every argument of every function as $role: no backend killed by a signal"
        fi
        check "$label: the server still answers after the NULL calls as $role" 1 "SELECT 1" -d "$db"
    done

    ######################################################## explain
    for role in sec_reader sec_api; do
        refused "$label: $role cannot read panko.event (so EXPLAIN cannot count hidden rows)" 42501 \
            "SET enable_seqscan = off; EXPLAIN (ANALYZE, COSTS OFF) SELECT 1 FROM panko.event
              WHERE traits OPERATOR(panko.@>) '{\"project_id\":string=\"projB\",\"secret\":string=\"bravo-secret-value\"}'" \
            -U "$role" -d "$db"
        refused "$label: $role cannot read the view panko.events" 42501 \
            "EXPLAIN ANALYZE SELECT 1 FROM panko.events WHERE message_id = 'b1'" -U "$role" -d "$db"
        refused "$label: $role cannot read panko.partition (which days hold events)" 42501 \
            "SELECT count(*) FROM panko.partition" -U "$role" -d "$db"
        check "$label: $role sees no statistics of the events (pg_stats)" 0 \
            "SELECT count(*) FROM pg_stats WHERE schemaname = 'panko'" -U "$role" -d "$db"
    done
    psql -X -q -d "$db" -c "ANALYZE panko.event" >/dev/null
    # Through the functions, as a member of project A: a right and a wrong
    # guess of B's secret must look the same, row counts and plan included.
    local right wrong
    GUESS_DB=$db
    right=$(guess bravo-secret-value)
    wrong=$(guess alpha-wrong-guess)
    if [ "$right" = "$wrong" ] && echo "$right" | grep -q "Function Scan"; then
        ok "$label: a right and a wrong guess of another tenant's trait look the same through get_events"
    else
        not_ok "$label: a right and a wrong guess look the same" "right:
$right
wrong:
$wrong"
    fi
    # Trait filters are still answered from the GIN index for a tenant: the
    # operators are LEAKPROOF, so the policy does not keep them out of the
    # index conditions (with the time-order index scan switched off, the
    # only other plan is a sequential scan).  The kept plans, with
    # panko.indexed_scan off; with it on, below.
    local plan
    plan=$(psql -X -qAt -d "$db" 2>&1 <<'SQL'
LOAD 'auto_explain';
SET auto_explain.log_min_duration = 0; SET auto_explain.log_nested_statements = on;
SET auto_explain.log_level = notice; SET enable_seqscan = off; SET enable_indexscan = off;
SET panko.indexed_scan = off;
SET ROLE sec_api;
BEGIN;
SELECT panko.set_identity('uB', 'projB', 'member');
SELECT count(*) FROM panko.get_events('{"traits_filter": [{"key": "secret", "op": "eq", "string": "bravo-secret-value"}]}');
COMMIT;
SQL
)
    if echo "$plan" | grep -q "Bitmap Index Scan on .*traits_idx"; then
        ok "$label: the plan inside get_events uses the GIN index"
    else
        not_ok "$label: the plan inside get_events uses the GIN index" "$plan"
    fi
    # Read through the index without a plan (event_scan.c): the GIN indexes
    # are scanned, no statement runs inside get_events, and the tenant gets
    # its one event, as with the plans.
    plan=$(psql -X -qAt -d "$db" 2>&1 <<'SQL'
LOAD 'auto_explain';
SET auto_explain.log_min_duration = 0; SET auto_explain.log_nested_statements = on;
SET auto_explain.log_level = notice; SET enable_seqscan = off; SET enable_indexscan = off;
SET ROLE sec_api;
BEGIN;
SELECT panko.set_identity('uB', 'projB', 'member');
CREATE TEMP VIEW sec_gin_scans AS SELECT sum(pg_stat_get_xact_numscans(x.indexrelid)) AS n
  FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_am a ON a.oid = i.relam
 WHERE a.amname = 'gin' AND i.relnamespace = 'panko'::regnamespace;
SELECT n AS before FROM sec_gin_scans \gset
SELECT 'events ' || count(*) FROM panko.get_events('{"traits_filter": [{"key": "secret", "op": "eq", "string": "bravo-secret-value"}]}');
SELECT 'gin scans ' || (n > :before) FROM sec_gin_scans;
COMMIT;
SQL
)
    if echo "$plan" | grep -q "^events 1$" && echo "$plan" | grep -q "^gin scans true$" &&
        ! echo "$plan" | grep -q "Query Text: SELECT e.message_id"; then
        ok "$label: get_events reads a tenant's rare match through the GIN index without a plan"
    else
        not_ok "$label: get_events reads a tenant's rare match through the GIN index without a plan" "$plan"
    fi

    ######################################################## privileges
    check "$label: PUBLIC executes only the types' own functions" "" "
        SELECT p.oid::regprocedure FROM pg_proc p
         WHERE p.pronamespace = 'panko'::regnamespace AND has_function_privilege('public', p.oid, 'EXECUTE')
           AND p.proname NOT IN ('traits_in', 'traits_out', 'traits_recv', 'traits_send',
                                 'traitquery_in', 'traitquery_out', 'traitquery_recv', 'traitquery_send',
                                 'traits', 'traits_to_jsonb', 'traitquery', 'trait_text', 'trait_int',
                                 'trait_float', 'trait_datetime', 'trait_count', 'each_trait', 'traits_exist',
                                 'traits_contains', 'traits_contained', 'traits_match', 'traits_match_commutator',
                                 'traits_fetch_text', 'traits_eq', 'traits_ne')
         ORDER BY 1" -d "$db"
    check "$label: every function that runs SQL pins search_path" "" "
        SELECT p.oid::regprocedure FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
         WHERE p.pronamespace = 'panko'::regnamespace
           AND (l.lanname IN ('sql', 'plpgsql') OR p.prosecdef
                OR p.oid IN ('panko.get_events(jsonb,integer,text[],text)'::regprocedure,
                             'panko.record_events(jsonb)'::regprocedure,
                             to_regprocedure('panko.record_events_text(text)')))
           AND p.proname NOT IN ('capabilities', 'api_capabilities')  -- a constant
           AND NOT coalesce('search_path=pg_catalog, pg_temp' = ANY (p.proconfig), false)
         ORDER BY 1" -d "$db"
    check "$label: no SECURITY DEFINER function runs as a role that bypasses row-level security, but for the maintenance and ingest functions" \
        "" "SELECT p.oid::regprocedure FROM pg_proc p JOIN pg_roles r ON r.oid = p.proowner
             WHERE p.pronamespace = 'panko'::regnamespace AND p.prosecdef AND (r.rolsuper OR r.rolbypassrls)
               AND p.proname NOT IN ('record_events', 'record_events_text', 'create_partition_for', 'drop_expired_partitions',
                                     'purge_registry', 'remove_unused_event_types', 'clear_expired_data',
                                     'run_maintenance', 'drop_partition_tables', 'expire_class', 'set_retention',
                                     'rating_delete', 'rating_init', 'rating_push', 'rating_push_frames', 'metric_report', 'seal_partitions',
                                     'trace_notify')
             ORDER BY 1" -d "$db"
    check "$label: functions that create partitions pin default_tablespace and default_table_access_method" "" "
        SELECT p.oid::regprocedure FROM pg_proc p
         WHERE p.oid IN ('panko.record_events(jsonb)'::regprocedure, to_regprocedure('panko.record_events_text(text)'), 'panko.create_partition_for(timestamptz,text)'::regprocedure,
                         'panko.trace_notify(jsonb)'::regprocedure, 'panko.rating_push(jsonb)'::regprocedure,
                         'panko.rating_push_frames(jsonb)'::regprocedure,
                         'panko.metric_report(jsonb)'::regprocedure)
           AND NOT ('default_tablespace=' = ANY (p.proconfig) AND 'default_table_access_method=heap' = ANY (p.proconfig))" -d "$db"
    # A writer's default_tablespace does not move new partitions.
    PGOPTIONS="-c default_tablespace=sec_space" psql -X -qAt -U sec_writer -d "$db" -c "SELECT count(*) FROM panko.record_events(
        '[{\"message_id\": \"ts-1\", \"event_type\": \"x\", \"generated\": \"2026-07-15T00:00:00\", \"traits\": []}]')" >/dev/null 2>&1
    check "$label: a partition created for a writer who set default_tablespace is in the default tablespace" "1|0" "
        SELECT count(*) || '|' || count(*) FILTER (WHERE c.reltablespace <> 0)
          FROM panko.event e JOIN pg_class c ON c.oid = e.tableoid WHERE e.message_id = 'ts-1'" -d "$db"

    ######################################################## filters
    local t0 t1 got
    # 20,000 items (690 kB) used to take more than 45 s: each was appended
    # to the filter list with jsonb ||.
    /usr/bin/python3 - "$PG_TMP/q.sql" <<'PY'
import json, sys
body = json.dumps({"q": [{"field": "f%d" % i, "op": "eq", "value": "v"} for i in range(20000)], "limit": 1})
with open(sys.argv[1], "w") as f:
    f.write("BEGIN;\nSET LOCAL statement_timeout = '30s';\n"
            "SELECT panko.set_identity('uA', 'projA', 'member') IS NULL;\n"
            "SELECT panko.api_get_events($q$" + body + "$q$);\nCOMMIT;\n")
PY
    t0=$(date +%s%N)
    got=$(psql -X -qAt -U sec_api -d "$db" -f "$PG_TMP/q.sql" 2>&1)
    t1=$(( ($(date +%s%N) - t0) / 1000000 ))
    if [ "$got" = "$(printf 'f\n[]')" ] && [ "$t1" -lt 10000 ]; then
        ok "$label: 20,000 q items are answered in $t1 ms (linear)"
    else
        not_ok "$label: 20,000 q items are answered in linear time" "took $t1 ms: $(echo "$got" | head -c 300)"
    fi

    ######################################################## utf8
    local euros
    euros=$(printf '€%.0s' $(seq 30))
    check "$label: record_events quotes an unknown field without cutting a character" "t|t" "
        SELECT detail LIKE '%€\"%', convert_from(convert_to(detail, 'UTF8'), 'UTF8') = detail
          FROM panko.record_events('[{\"message_id\": \"u8\", \"event_type\": \"x\", \"generated\": \"2026-06-01T00:00:00\",
                                     \"traits\": [], \"$euros\": 1}]')" -U sec_writer -d "$db" -F '|'
    check "$label: record_events quotes a bad timestamp without cutting a character" "t" "
        SELECT detail LIKE '%€\"%' FROM panko.record_events('[{\"message_id\": \"u9\", \"event_type\": \"x\",
                                     \"generated\": \"$euros\", \"traits\": []}]')" -U sec_writer -d "$db"
    check "$label: a bad datetime trait is quoted without cutting a character" "t" "
        SELECT detail LIKE '%€\"%' FROM panko.record_events('[{\"message_id\": \"u10\", \"event_type\": \"x\",
              \"generated\": \"2026-06-01T00:00:00\", \"traits\": [{\"name\": \"t\", \"type\": \"datetime\", \"value\": \"$euros\"}]}]')" \
        -U sec_writer -d "$db"
    refused "$label: parse_timestamp quotes bad input without cutting a character" 22007 \
        "SELECT panko.parse_timestamp('$euros', 'start_timestamp')" -U sec_reader -d "$db"
    got=$(psql -X -qAt -U sec_reader -d "$db" -c "SELECT panko.parse_timestamp('$euros', 'start_timestamp')" 2>&1)
    if echo "$got" | grep -q '€": ' && echo "$got" | iconv -f UTF-8 -t UTF-8 >/dev/null 2>&1; then
        ok "$label: parse_timestamp's message is valid UTF-8"
    else
        not_ok "$label: parse_timestamp's message is valid UTF-8" "$got"
    fi
}

mkdir -p "$PG_TMP/sec_space" && chown postgres "$PG_TMP/sec_space"
psql -X -q -v ON_ERROR_STOP=1 -c "CREATE TABLESPACE sec_space LOCATION '$PG_TMP/sec_space'" \
    -c "GRANT CREATE ON TABLESPACE sec_space TO sec_writer" >/dev/null || { echo "could not create a tablespace"; exit 1; }

setup_db sec_fresh || { echo "could not set up sec_fresh"; exit 1; }
run_checks sec_fresh "fresh install"
setup_db sec_upgraded 0.3.0 || { echo "could not set up sec_upgraded"; exit 1; }
check "upgraded: ALTER EXTENSION panko UPDATE reached the control file's version" \
    "$(sed -n "s/^default_version *= *'\(.*\)'.*/\1/p" panko.control)" \
    "SELECT extversion FROM pg_extension WHERE extname = 'panko'" -d sec_upgraded
run_checks sec_upgraded "upgraded from 0.3.0"

if grep -q "terminated by signal" "$LOG"; then
    not_ok "no backend was killed by a signal during the whole run" "$(grep 'terminated by signal' "$LOG")"
fi
echo
echo "$PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
