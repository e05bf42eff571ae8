#!/usr/bin/env bash
# test/worker/run.sh: the expiry worker and pg_cron (expiry).
#
# Starts its own throwaway clusters (see test/lib.sh); assumes `make install`
# was done.  Exit status 0 when every check passes; each failure is printed
# as "FAIL: ..." with the server log tail at the end.
#
#   bash test/worker/run.sh            every test
#   ONLY="1 4" bash test/worker/run.sh a subset (the pg_cron test is 7)
#   KEEP_CLUSTER=1 ...                 keep the cluster directories
set -u
cd "$(dirname "$0")/../.."
source test/lib.sh

export PGDATABASE=postgres
# Only warnings and errors from the test's own sessions.
export PGOPTIONS="-c client_min_messages=warning"
FAILURES=0
TTL_DAY=86400

fail() { echo "FAIL: $*"; FAILURES=$((FAILURES + 1)); }
pass() { echo "ok - $*"; }
want() { [ -z "${ONLY:-}" ] || [[ " $ONLY " == *" $1 "* ]]; }

# q [psql args...]: one value, unaligned, errors fatal to the statement.
q() { psql -X -qAt -v ON_ERROR_STOP=1 "$@"; }

# wait_until SECONDS SQL: poll until SQL returns 't'.
wait_until() {
    local deadline=$((SECONDS + $1))
    while [ $SECONDS -lt "$deadline" ]; do
        [ "$(q -c "$2" 2>/dev/null)" = t ] && return 0
        sleep 0.5
    done
    return 1
}

# runs DB: how many maintenance runs of DB the server log reports.
runs() { grep -cE "LOG: +panko maintenance of database \"$1\"(:| skipped)" "$PG_TMP/server.log"; }

# wait_runs SECONDS DB N: wait until N more runs of DB than now are logged.
wait_runs() {
    local deadline=$((SECONDS + $1)) target=$(($(runs "$2") + $3))
    while [ $SECONDS -lt "$deadline" ]; do
        [ "$(runs "$2")" -ge "$target" ] && return 0
        sleep 0.5
    done
    return 1
}

# set_conf NAME VALUE: ALTER SYSTEM + reload, and wait until a new session
# sees it (the postmaster has re-read the file, so new workers get it).
# PostgreSQL 15 refuses ALTER SYSTEM of a custom setting its session does
# not know, hence the LOAD when panko is not preloaded.
set_conf() {
    q -c "LOAD 'panko'" -c "ALTER SYSTEM SET $1 = '$2'" -c "SELECT pg_reload_conf()" >/dev/null
    wait_until 10 "SELECT coalesce((SELECT setting FROM pg_settings WHERE name = '$1'),
                                   current_setting('$1', true)) = '$2'" \
        || fail "setting $1 = $2 not visible after pg_reload_conf()"
}

# events PREFIX N AGE_SQL [EVENT_TYPE] [DB]: record N events PREFIX-1..N
# generated at now() - AGE_SQL (+ i ms); prints how many were NOT stored.
events() {
    local type=${4:-compute.instance.exists} db=${5:-postgres}
    q -d "$db" -c "
        SELECT count(*) FROM panko.record_events((
            SELECT jsonb_agg(jsonb_build_object(
                'message_id', '$1-' || i,
                'event_type', '$type',
                'generated', to_char((now() - ($3)::interval + i * interval '1 millisecond')
                                     AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US'),
                'traits', jsonb_build_array(jsonb_build_array('project_id', 1, 'p1')),
                'raw', '{}'::jsonb))
            FROM generate_series(1, $2) AS i))"
}

# count PREFIX [DB]: events stored under PREFIX-*.
count() { q -d "${2:-postgres}" -c "SELECT count(*) FROM panko.event WHERE message_id LIKE '$1-%'"; }

# partition_of MESSAGE_ID: the partition holding that event.
partition_of() { q -c "SELECT tableoid::regclass FROM panko.event WHERE message_id = '$1'"; }

# Stop the cluster; on failure show the end of its log first.
finish() {
    if [ "$FAILURES" -ne 0 ] && [ -n "${PG_TMP:-}" ] && [ -f "$PG_TMP/server.log" ]; then
        echo "---- last lines of $PG_TMP/server.log"
        tail -n 40 "$PG_TMP/server.log"
    fi
    pg_stop
}

start_cluster() {
    pg_start worker "$@" || { echo "FAIL: could not start a cluster"; exit 1; }
    trap finish EXIT
}

if want 1 || want 2 || want 3 || want 4 || want 5 || want 6 || want 8 || want 9 || want 10; then
    start_cluster "shared_preload_libraries = 'panko,pg_cron'" \
        "cron.database_name = 'postgres'" \
        "panko.expiry_interval = 1" \
        "max_worker_processes = 16"
    q -c "CREATE EXTENSION panko" >/dev/null 2>&1 || { fail "CREATE EXTENSION panko"; exit 1; }
    echo "# cluster on port $PGPORT, log $PG_TMP/server.log"
fi

# 1. The launcher is visible, with its backend_type and application_name.
if want 1; then
    if wait_until 30 "SELECT count(*) = 1 FROM pg_stat_activity
                      WHERE backend_type = 'panko launcher'
                        AND application_name = 'panko launcher'"; then
        pass "1 launcher in pg_stat_activity (backend_type and application_name 'panko launcher')"
    else
        fail "1 no 'panko launcher' in pg_stat_activity: $(q -c "SELECT string_agg(backend_type, ', ') FROM pg_stat_activity")"
    fi
    if wait_runs 30 postgres 2; then
        pass "1 maintenance runs logged: $(grep 'panko maintenance of database "postgres"' "$PG_TMP/server.log" | tail -n 1 | sed 's/.*LOG: *//')"
    else
        fail "1 no 'panko maintenance of database \"postgres\"' line in the log within 30 s"
    fi
fi

# 2 + 3. Old events expire (their partition dropped), fresh ones all stay,
# and a TTL changed by ALTER SYSTEM + reload applies without a restart.
if want 2 || want 3; then
    set_conf panko.event_time_to_live -1
    rej=$(events old 300 "'3 days'" test.old.only)
    rej2=$(events edge 200 "'30 hours'")
    rej3=$(events fresh 500 "'10 minutes'")
    [ "$rej$rej2$rej3" = 000 ] || fail "2 record_events refused events: old $rej, edge $rej2, fresh $rej3"
    old_part=$(partition_of old-1)
    fresh_part=$(partition_of fresh-1)
    [ -n "$old_part" ] || fail "2 old events not stored"
    wait_runs 30 postgres 2 || fail "2 no maintenance run with TTL -1"
    [ "$(count old)" = 300 ] || fail "2 TTL -1 deleted old events: $(count old) of 300 left"

    set_conf panko.event_time_to_live "$TTL_DAY"
    if wait_until 30 "SELECT count(*) = 0 FROM panko.event WHERE message_id LIKE 'old-%' OR message_id LIKE 'edge-%'"; then
        pass "2 events older than the TTL gone within 30 s of ALTER SYSTEM + pg_reload_conf()"
    else
        fail "2 old events left after 30 s: old $(count old)/300, edge $(count edge)/200"
    fi
    if [ -n "$old_part" ] && [ "$old_part" != "$fresh_part" ]; then
        if wait_until 10 "SELECT to_regclass('$old_part') IS NULL AND NOT EXISTS (
                            SELECT 1 FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                            WHERE i.inhparent = 'panko.event'::regclass AND c.relname = '${old_part#*.}')"; then
            pass "2 partition $old_part of the 3-day-old events dropped"
        else
            fail "2 partition $old_part still exists: $(q -c "SELECT count(*) FROM $old_part") rows"
        fi
    else
        fail "2 old and fresh events share partition '$old_part'; cannot check the drop"
    fi
    n=$(count fresh)
    [ "$n" = 500 ] && pass "2 all 500 fresh events remain" || fail "2 fresh events lost: $n of 500 left"
    if wait_until 10 "SELECT NOT EXISTS (SELECT 1 FROM panko.event_types() t WHERE t = 'test.old.only')"; then
        pass "2 unused event type removed"
    else
        fail "2 event type test.old.only still listed by panko.event_types()"
    fi

    # 3. A shorter TTL, again without restart: two-hour-old events go.
    rej=$(events mid 200 "'2 hours'")
    [ "$rej" = 0 ] || fail "3 record_events refused $rej events"
    wait_runs 30 postgres 2 || fail "3 no maintenance run"
    [ "$(count mid)" = 200 ] || fail "3 TTL of a day deleted two-hour-old events: $(count mid) of 200 left"
    set_conf panko.event_time_to_live 3600
    if wait_until 30 "SELECT count(*) = 0 FROM panko.event WHERE message_id LIKE 'mid-%'"; then
        pass "3 TTL lowered to 3600 s by ALTER SYSTEM + reload: two-hour-old events gone"
    else
        fail "3 two-hour-old events left 30 s after lowering the TTL: $(count mid) of 200"
    fi
    n=$(count fresh)
    [ "$n" = 500 ] && pass "3 all 500 fresh events remain" || fail "3 fresh events lost: $n of 500 left"
    set_conf panko.event_time_to_live -1
fi

# 4. pg_terminate_backend on the launcher: a new one comes back (pg_cron #99).
if want 4; then
    old_pid=$(q -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'panko launcher'")
    if [ -z "$old_pid" ]; then
        fail "4 no launcher to terminate"
    else
        q -c "SELECT pg_terminate_backend($old_pid)" >/dev/null
        if wait_until 30 "SELECT count(*) = 1 FROM pg_stat_activity
                          WHERE backend_type = 'panko launcher' AND pid <> $old_pid"; then
            pass "4 launcher $old_pid terminated, back as pid $(q -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'panko launcher'")"
        else
            fail "4 launcher did not come back within 30 s of pg_terminate_backend($old_pid)"
        fi
        wait_runs 30 postgres 1 && pass "4 restarted launcher runs maintenance" \
            || fail "4 no maintenance run after the restart"
    fi
fi

# 5. Maintenance racing concurrent ingest: nothing lost, no deadlock, no error.
if want 5; then
    set_conf panko.event_time_to_live "$TTL_DAY"
    work=$(mktemp -d /tmp/panko-worker-race-XXXXXX)
    batches=40
    (
        for b in $(seq 1 $batches); do
            # fresh, tomorrow's and expired events, in one call each
            events "race$b" 100 "'1 minute'" || echo "ERROR: batch $b fresh"
            events "future$b" 50 "'-2 days'" || echo "ERROR: batch $b future"
            events "late$b" 50 "'3 days'" || echo "ERROR: batch $b late"
        done
    ) >"$work/writer.out" 2>&1 &
    writer=$!
    log_from=$(wc -l <"$PG_TMP/server.log")
    (
        while kill -0 $writer 2>/dev/null; do
            q -c "SELECT panko.run_maintenance()" || echo "ERROR: run_maintenance failed"
        done
    ) >"$work/maint.out" 2>&1 &
    maint=$!
    wait $writer
    wait $maint
    bad=$(grep -v '^0$' "$work/writer.out" | head -n 5)
    [ -z "$bad" ] && pass "5 writer: every batch stored, no error" || fail "5 writer output: $bad"
    bad=$(grep -i 'error\|deadlock' "$work/maint.out" | head -n 5)
    [ -z "$bad" ] && pass "5 $(grep -c . "$work/maint.out") concurrent run_maintenance() calls, no error" \
        || fail "5 run_maintenance output: $bad"
    # The race is only real if maintenance expired something meanwhile.
    manual=$(grep -oE '"(partitions_dropped|rows_deleted)": [0-9]+' "$work/maint.out" | awk '{n += $2} END {print n + 0}')
    skipped=$(grep -c '"skipped": true' "$work/maint.out")
    by_worker=$(tail -n +"$((log_from + 1))" "$PG_TMP/server.log" \
        | grep -oE '[0-9]+ (partitions dropped|rows deleted)' | awk '{n += $1} END {print n + 0}')
    if [ $((manual + by_worker)) -gt 0 ]; then
        pass "5 maintenance expired during ingest: $manual partitions+rows by hand ($skipped calls skipped, lock held), $by_worker by the worker"
    else
        fail "5 no partition dropped or row deleted while ingesting; the race was not exercised"
    fi
    got=$(q -c "SELECT count(*) FROM panko.event WHERE message_id ~ '^(race|future)[0-9]+-'")
    [ "$got" = $((batches * 150)) ] && pass "5 no lost events: $got of $((batches * 150)) acknowledged fresh/future events stored" \
        || fail "5 lost events: $got stored of $((batches * 150)) acknowledged"
    if grep -q 'deadlock detected' "$PG_TMP/server.log"; then
        fail "5 deadlock in the server log"
    else
        pass "5 no deadlock in the server log"
    fi
    [ -n "${KEEP_CLUSTER:-}" ] || rm -rf "$work"
    set_conf panko.event_time_to_live -1
fi

# 6. TTL -1: nothing is ever deleted, by the worker or by hand.
if want 6; then
    set_conf panko.event_time_to_live -1
    events ancient 100 "'400 days'" >/dev/null
    events week 100 "'7 days'" >/dev/null
    before=$(q -c "SELECT count(*) FROM panko.event")
    wait_runs 30 postgres 3 || fail "6 no maintenance run"
    for i in 1 2 3; do q -c "SELECT panko.run_maintenance()" >/dev/null || fail "6 run_maintenance() failed"; done
    after=$(q -c "SELECT count(*) FROM panko.event")
    if [ "$before" = "$after" ] && [ "$(count ancient)" = 100 ]; then
        pass "6 TTL -1: $after events before and after 3 worker runs and 3 manual runs"
    else
        fail "6 TTL -1 deleted events: $before before, $after after, ancient $(count ancient)/100"
    fi
fi

# 8. Which databases: every database with panko by default, only the listed
# ones otherwise; a failing run in one database does not stop the others.
if want 8; then
    q -c "CREATE DATABASE db_two" -c "CREATE DATABASE db_none" -c "CREATE DATABASE db_broken" >/dev/null
    q -d db_two -c "CREATE EXTENSION panko" >/dev/null 2>&1
    q -d db_broken -c "CREATE EXTENSION panko" >/dev/null 2>&1
    # Keep the extension but make its maintenance fail.
    q -d db_broken -c "CREATE OR REPLACE FUNCTION panko.run_maintenance() RETURNS jsonb
                       LANGUAGE plpgsql AS \$\$BEGIN RAISE EXCEPTION 'broken on purpose'; END\$\$" >/dev/null
    if wait_runs 30 db_two 2; then
        pass "8 default: a second database with panko is maintained"
    else
        fail "8 no maintenance of db_two"
    fi
    [ "$(runs db_none)" = 0 ] && pass "8 database without panko: no maintenance line" \
        || fail "8 maintenance logged for db_none, which has no panko"
    grep -q 'broken on purpose' "$PG_TMP/server.log" \
        && grep 'broken on purpose' -A4 "$PG_TMP/server.log" | grep -q 'panko maintenance of database "db_broken"' \
        && pass "8 failing run logged with its database" \
        || fail "8 the failure in db_broken is not in the log with its database"
    wait_runs 30 postgres 2 && wait_runs 30 db_two 2 \
        && pass "8 runs go on in the other databases after a failure" \
        || fail "8 maintenance stopped after the failure in db_broken"

    set_conf panko.expiry_databases db_two
    sleep 2
    p=$(runs postgres)
    wait_runs 30 db_two 3 || fail "8 db_two not maintained when listed"
    [ "$(runs postgres)" = "$p" ] && pass "8 panko.expiry_databases = db_two: only db_two maintained" \
        || fail "8 postgres maintained although not listed"

    set_conf panko.expiry_databases "db_two, no_such_db"
    if wait_until 10 "SELECT true" && sleep 2 && grep -q 'names database "no_such_db", which does not exist' "$PG_TMP/server.log"; then
        pass "8 unknown database in panko.expiry_databases: warning"
    else
        fail "8 no warning for database no_such_db"
    fi
    warnings=$(grep -c 'no_such_db' "$PG_TMP/server.log")
    sleep 3
    [ "$(grep -c 'no_such_db' "$PG_TMP/server.log")" = "$warnings" ] && pass "8 the warning is not repeated every round" \
        || fail "8 the no_such_db warning repeats every round"
    q -c "ALTER SYSTEM RESET panko.expiry_databases" -c "SELECT pg_reload_conf()" >/dev/null
fi

# 9. A long reader must not stall ingest while maintenance waits to drop a
# partition (DROP needs an exclusive lock the reader's lock blocks).
if want 9; then
    set_conf panko.event_time_to_live -1
    events stale 50 "'3 days'" >/dev/null
    wait_runs 30 postgres 1
    psql -X -q -c "BEGIN" -c "SELECT count(*) FROM panko.events" -c "SELECT pg_sleep(15)" -c "COMMIT" \
        >/dev/null 2>&1 &
    reader=$!
    sleep 1
    set_conf panko.event_time_to_live "$TTL_DAY"
    sleep 3
    t0=$(date +%s%N)
    rej=$(timeout 30 bash -c "$(declare -f q events); events unstalled 50 \"'1 minute'\"" 2>&1)
    ms=$((($(date +%s%N) - t0) / 1000000))
    if [ "$rej" = 0 ] && [ "$ms" -lt 5000 ]; then
        pass "9 ingest took $ms ms while a 15 s reader held off the partition drop"
    else
        fail "9 ingest stalled $ms ms (result '$rej') behind maintenance waiting on a long reader's lock"
    fi
    wait $reader
    wait_until 30 "SELECT count(*) = 0 FROM panko.event WHERE message_id LIKE 'stale-%'" \
        && pass "9 the expired partition is dropped once the reader is gone" \
        || fail "9 expired events left after the reader ended: $(count stale) of 50"
    set_conf panko.event_time_to_live -1
fi

# 10. Two writers storing the same new message_ids (and two new event
# types) at once, in large batches (the registry's plain INSERT,
# event_input.c) and in opposite orders: each id is stored once, the other
# writer reports every one as a duplicate, and neither gets an error or a
# deadlock.
if want 10; then
    set_conf panko.event_time_to_live -1
    work=$(mktemp -d /tmp/panko-worker-claim-XXXXXX)
    rounds=20
    same_ids() { # PREFIX ORDER: 1,000 events, the same ids whatever the order
        q -c "SELECT count(*) FROM panko.record_events((
                SELECT jsonb_agg(jsonb_build_object(
                    'message_id', '$1-' || i, 'event_type', '$1.' || (i % 2),
                    'generated', to_char((now() - interval '1 minute' + i * interval '1 millisecond')
                                         AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US'),
                    'traits', jsonb_build_array(jsonb_build_array('project_id', 1, 'p1'))) ORDER BY i $2)
                FROM generate_series(1, 1000) AS i))"
    }
    log_from=$(wc -l <"$PG_TMP/server.log")
    for r in $(seq 1 $rounds); do
        same_ids "claim$r" ASC >"$work/a$r" 2>&1 &
        a=$!
        same_ids "claim$r" DESC >"$work/b$r" 2>&1 &
        b=$!
        wait $a $b
    done
    bad=""
    for r in $(seq 1 $rounds); do
        out_a=$(cat "$work/a$r"); out_b=$(cat "$work/b$r")
        if [[ $out_a =~ ^[0-9]+$ && $out_b =~ ^[0-9]+$ ]]; then dups=$((out_a + out_b)); else dups=error; fi
        stored=$(q -c "SELECT count(*) || '/' || count(DISTINCT message_id) FROM panko.event WHERE message_id LIKE 'claim$r-%'")
        [ "$dups" = 1000 ] && [ "$stored" = "1000/1000" ] || bad="$bad round $r: duplicates '$dups' stored '$stored' ($(echo "$out_a $out_b" | tr '\n' ' ' | cut -c1-200));"
    done
    [ -z "$bad" ] && pass "10 $rounds rounds of two writers with the same 1,000 new ids: each stored once, the other writer's 1,000 reported as duplicates" \
        || fail "10 racing writers:$bad"
    if tail -n +"$((log_from + 1))" "$PG_TMP/server.log" | grep -q 'deadlock detected\|duplicate key'; then
        fail "10 a deadlock or a unique violation reached the server log"
    else
        pass "10 no deadlock and no unique violation error in the server log"
    fi
    rm -rf "$work"
fi

# 7. pg_cron alone, panko not preloaded.
if want 7; then
    pg_stop
    start_cluster "shared_preload_libraries = 'pg_cron'" \
        "cron.database_name = 'postgres'" \
        "cron.use_background_workers = on"
    echo "# cluster (pg_cron only) on port $PGPORT"
    notice=$(PGOPTIONS= psql -X -q -c "CREATE EXTENSION panko" 2>&1)
    if echo "$notice" | grep -q 'NOTICE' && echo "$notice" | grep -qi 'shared_preload_libraries'; then
        pass "7 CREATE EXTENSION panko without preload: $(echo "$notice" | grep NOTICE | head -n 1)"
    else
        fail "7 no NOTICE about shared_preload_libraries from CREATE EXTENSION panko: $notice"
    fi
    [ "$(q -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type LIKE 'panko%'")" = 0 ] \
        || fail "7 a panko worker runs although panko is not preloaded"
    set_conf panko.event_time_to_live "$TTL_DAY"
    events cronold 200 "'3 days'" >/dev/null
    events cronfresh 300 "'5 minutes'" >/dev/null
    q -c "CREATE EXTENSION pg_cron" \
        -c "SELECT cron.schedule('panko-expiry', '* * * * *', 'SELECT panko.run_maintenance()')" >/dev/null \
        || fail "7 cron.schedule failed"
    # pg_cron 1.4 schedules by the minute: allow two minutes and some slack.
    if wait_until 150 "SELECT count(*) = 0 FROM panko.event WHERE message_id LIKE 'cronold-%'"; then
        pass "7 expired events removed by pg_cron alone ($(q -c "SELECT status FROM cron.job_run_details ORDER BY runid DESC LIMIT 1"))"
    else
        fail "7 expired events still there after 150 s: $(count cronold) of 200; last cron run: $(q -c "SELECT status || ' ' || coalesce(return_message, '') FROM cron.job_run_details ORDER BY runid DESC LIMIT 1")"
    fi
    n=$(count cronfresh)
    [ "$n" = 300 ] && pass "7 all 300 fresh events remain" || fail "7 fresh events lost: $n of 300"
fi

if [ "$FAILURES" -ne 0 ]; then
    echo "worker tests: $FAILURES failure(s)"
    exit 1
fi
echo "worker tests: all passed"
