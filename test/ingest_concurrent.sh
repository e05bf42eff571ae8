#!/usr/bin/env bash
# test/ingest_concurrent.sh: writers storing into the same day at once leave
# a GIN index that finds every event.
#
# A batch's GIN inserts start from the leaf of the previous key
# (src/gin_entry.c), and the leaf is checked under its lock; other writers
# split the same leaves in between.  Three sessions store four batches each
# into one day at the same time: random request ids that fall between each
# other's, instance ids the sessions share, and keys common to all (posting
# trees).  Then every event must be found, through GIN bitmaps alone, by all
# of its traits, and the index's count of each shared key must be a scan's.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"

pg_start ingest-concurrent
export PGOPTIONS="-c search_path=panko,public"
psql -X -q -v ON_ERROR_STOP=1 -c "CREATE EXTENSION panko" 2>/dev/null

# batch WRITER N FROM: COUNT events of WRITER, all on the day before today
batch() {
    cat <<SQL
SELECT count(*) FROM panko.record_events((
  SELECT jsonb_agg(jsonb_build_object(
           'message_id', 'w$1-' || i, 'event_type', 'compute.instance.update',
           'generated', to_char(date_trunc('day', now() AT TIME ZONE 'UTC') - interval '1 day'
                                + make_interval(secs => i % 86000), 'YYYY-MM-DD"T"HH24:MI:SS'),
           'traits', jsonb_build_array(
               jsonb_build_array('request_id', 1, 'req-' || md5('$1/' || i)),
               jsonb_build_array('instance_id', 1, 'inst-' || (i % 900)),
               jsonb_build_array('seq', 2, hashint4($1 * 1000000 + i)),
               jsonb_build_array('state', 1, (ARRAY['active', 'building', 'deleted'])[1 + i % 3]),
               jsonb_build_array('host', 1, 'host-' || (i % 37)))))
    FROM generate_series($3, $3 + $2 - 1) i)) WHERE status <> 'stored';
SQL
}

pids=()
for w in 1 2 3; do
    (
        for b in 0 1 2 3; do batch "$w" 3000 $((b * 3000)); done |
            psql -X -q -At -v ON_ERROR_STOP=1 >"$PG_TMP/writer$w.out"
    ) &
    pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || { echo "FAIL a writer failed"; exit 1; }; done

fail=0
for w in 1 2 3; do
    out=$(echo $(cat "$PG_TMP/writer$w.out"))
    [ "$out" = "0 0 0 0" ] || { echo "FAIL writer $w: events not stored: $out"; fail=1; }
done

check() {   # check WHAT SQL WANT [PGOPTIONS]
    local got
    got=$(PGOPTIONS="$PGOPTIONS ${4:-}" psql -X -At -v ON_ERROR_STOP=1 -c "$2") || { echo "FAIL $1: query failed"; fail=1; return; }
    if [ "$got" = "$3" ]; then echo "ok   $1"; else echo "FAIL $1: got '$got', want '$3'"; fail=1; fi
}
GIN="-c enable_seqscan=off -c enable_indexscan=off -c enable_tidscan=off"
SCAN="-c enable_bitmapscan=off -c enable_indexscan=off"

check "all 36,000 events stored, in one table" \
    "SELECT count(*) || ' ' || count(DISTINCT tableoid) FROM panko.event" "36000 1"
plan=$(PGOPTIONS="$PGOPTIONS $GIN" psql -X -At -c "EXPLAIN SELECT count(*) FROM panko.event x WHERE x.traits @> '{\"seq\":integer=7}'")
if grep -q "Bitmap Index Scan on .*_traits_idx" <<<"$plan" && ! grep -Eq "Seq Scan|Index Only Scan|Tid Scan|[^p] Index Scan" <<<"$plan"; then
    echo "ok   the checks read the GIN index alone"
else
    echo "FAIL the checks do not read the GIN index alone: $plan"; fail=1
fi
check "every event found once through GIN by all of its traits" \
    "SELECT count(*) FILTER (WHERE (SELECT count(*) FROM panko.event x WHERE x.traits @> e.traits) <> 1)
       FROM panko.event e" "0" "$GIN"
for key in '"state":string="active"' '"state":string="deleted"' '"host":string="host-5"' \
           '"instance_id":string="inst-0"' '"instance_id":string="inst-899"' '"state":string="none"'; do
    want=$(PGOPTIONS="$PGOPTIONS $SCAN" psql -X -At -c "SELECT count(*) FROM panko.event WHERE traits @> '{$key}'")
    check "GIN counts {$key} as a scan does ($want)" \
        "SELECT count(*) FROM panko.event WHERE traits @> '{$key}'" "$want" "$GIN"
done
[ "$fail" -eq 0 ] || { echo "ingest, concurrent writers: FAILED"; exit 1; }
echo "ingest, concurrent writers: ok"
