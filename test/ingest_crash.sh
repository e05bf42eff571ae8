#!/usr/bin/env bash
# test/ingest_crash.sh: events stored into tables their own transaction
# created survive a crash, GIN index included.
#
# record_events fills the GIN index of a table created in the current
# subtransaction without WAL (GIN's build mode) and then logs the index's
# pages whole (event_input.c, GinBulkLogged).  This test stores batches
# into new days and into existing ones, in one transaction with two calls,
# in a released savepoint and in a rolled-back one, with no checkpoint
# after the first, stops the cluster with -m immediate (no shutdown
# checkpoint: recovery replays the WAL), and then compares what each
# table's GIN index finds with what a scan of its rows finds.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"

pg_start ingest-crash "checkpoint_timeout = 1h" "max_wal_size = 4GB"
export PGOPTIONS="-c search_path=panko,public"
psql -X -q -v ON_ERROR_STOP=1 -c "CREATE EXTENSION panko" 2>/dev/null
psql -X -q -v ON_ERROR_STOP=1 -c "CHECKPOINT"

# batch DAY FROM COUNT: COUNT events on day DAY (days before today, in UTC),
# message ids DAY-FROM.., traits that make a few distinct and many shared
# GIN keys (a posting tree for state, one key per instance_id).
batch() {
    cat <<SQL
SELECT count(*) FROM panko.record_events((
  SELECT jsonb_agg(jsonb_build_object(
           'message_id', 'm-$1-' || i, 'event_type', 'compute.instance.update',
           'generated', to_char(date_trunc('day', now() AT TIME ZONE 'UTC') - make_interval(days => $1)
                                + make_interval(secs => i), 'YYYY-MM-DD"T"HH24:MI:SS'),
           'traits', jsonb_build_array(
               jsonb_build_array('instance_id', 1, 'inst-$1-' || (i % 700)),
               jsonb_build_array('state', 1, (ARRAY['active', 'building', 'deleted'])[1 + i % 3]),
               jsonb_build_array('memory_mb', 2, 512 * (1 + i % 8)),
               jsonb_build_array('host', 1, 'host-' || (i % 37)))))
    FROM generate_series($2, $2 + $3 - 1) i)) WHERE status <> 'stored';
SQL
}

# a new day (its table made by this call), then more of that day and a new
# one in one call, two calls into a new day in one transaction, a released
# and a rolled-back savepoint
OUT=$(psql -X -q -At -v ON_ERROR_STOP=1 <<SQL
$(batch 10 0 5000)
$(batch 10 5000 3000)
BEGIN;
$(batch 11 0 4000)
$(batch 11 4000 2500)
COMMIT;
BEGIN;
SAVEPOINT a;
$(batch 12 0 3000)
RELEASE SAVEPOINT a;
SAVEPOINT b;
$(batch 13 0 3000)
ROLLBACK TO SAVEPOINT b;
$(batch 14 0 2000)
COMMIT;
SQL
)
# each call's events not stored: none
[ "$(echo $OUT)" = "0 0 0 0 0 0 0" ] || { echo "FAIL some events were not stored: $OUT"; exit 1; }

EXPECTED=$(psql -X -At -c "SELECT count(*) FROM panko.event")
echo "stored $EXPECTED events; stopping with -m immediate"
[ "$EXPECTED" -eq 19500 ] || { echo "FAIL expected 19500 events stored, found $EXPECTED"; exit 1; }
_as_pg "$PGBIN/pg_ctl" -D "$PGDATA_DIR" -m immediate -w stop >/dev/null
pg_start_again
grep -q "redo starts" "$PG_TMP/server.log" || { echo "FAIL recovery did not run"; exit 1; }

fail=0
# q [SETTINGS] SQL: one value; SETTINGS are -c options (index or scan)
q() {
    if [ $# -eq 2 ]; then PGOPTIONS="$PGOPTIONS $1" psql -X -At -v ON_ERROR_STOP=1 -c "$2"
    else psql -X -At -v ON_ERROR_STOP=1 -c "$1"; fi
}
INDEX="-c enable_seqscan=off"
SCAN="-c enable_bitmapscan=off -c enable_indexscan=off"
check() {   # check WHAT SQL WANT [SETTINGS]
    local got
    got=$(q ${4:+"$4"} "$2") || { echo "FAIL $1: query failed"; fail=1; return; }
    if [ "$got" = "$3" ]; then echo "ok   $1"; else echo "FAIL $1: got '$got', want '$3'"; fail=1; fi
}
check "all events after recovery" "SELECT count(*) FROM panko.event" "$EXPECTED"
check "the rolled-back day stored nothing" \
    "SELECT count(*) FROM panko.event WHERE message_id LIKE 'm-13-%'" "0"

# every table's GIN index against its rows: per key, the rows the index
# finds (a bitmap scan, seqscan off) and the rows a scan finds
for leaf in $(psql -X -At -c "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                               WHERE c.relkind = 'r' AND c.relnamespace = 'panko'::regnamespace
                                 AND i.inhparent IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = 'panko.event'::regclass)
                               ORDER BY 1"); do
    rows=$(psql -X -At -c "SELECT count(*) FROM panko.$leaf")
    [ "$rows" -gt 0 ] || continue
    plan=$(q "$INDEX" "EXPLAIN SELECT count(*) FROM panko.$leaf WHERE traits @> '{\"state\":string=\"active\"}'")
    if ! grep -q "Bitmap Index Scan on ${leaf}_traits_idx" <<<"$plan"; then
        echo "FAIL $leaf: the check does not read the GIN index: $plan"; fail=1; continue
    fi
    for key in '"state":string="active"' '"state":string="deleted"' '"host":string="host-5"' \
               '"memory_mb":integer=4096' '"instance_id":string="inst-10-5"' \
               '"instance_id":string="inst-11-699"' '"instance_id":string="inst-12-0"' \
               '"instance_id":string="inst-14-333"'; do
        want=$(q "$SCAN" "SELECT count(*) FROM panko.$leaf WHERE traits @> '{$key}'")
        check "$leaf ($rows rows): GIN finds {$key}" \
            "SELECT count(*) FROM panko.$leaf WHERE traits @> '{$key}'" "$want" "$INDEX"
    done
done
check "message_id lookups after recovery" \
    "SELECT count(*) FROM panko.event WHERE message_id IN ('m-10-0', 'm-10-7999', 'm-11-6499', 'm-12-2999', 'm-14-1999')" "5" "$INDEX"
# and the tables take more events after recovery
check "more events after recovery" "$(batch 10 8000 1500)" "0"
check "all events at the end" "SELECT count(*) FROM panko.event" "$((EXPECTED + 1500))"
[ "$fail" -eq 0 ] || { echo "ingest crash recovery: FAILED"; exit 1; }
echo "ingest crash recovery: ok"
