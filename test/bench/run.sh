#!/usr/bin/env bash
# panko benchmarks: panko against upstream Panko's SQL schema, a jsonb table
# and an unindexed heap, in the same run on one throwaway cluster.
#
#   bash test/bench/run.sh [options]        (make bench)
#
# Options (each also an environment variable):
#   --n N                 events (BENCH_N, default 1000000)
#   --days LIST           spans in days, today included: the same N is loaded
#                         once per value, over that many daily partitions, and
#                         every part runs on each (BENCH_DAYS, default 31;
#                         --days 31,365 for the query-path comparison)
#   --parts LIST          ingest,size,queries,calls,expiry,http (BENCH_PARTS,
#                         default all)
#   --systems LIST        panko,upstream,jsonb,heap (BENCH_SYSTEMS, default all)
#   --upstream-sample K   events ingested through upstream's per-event SQL
#                         (BENCH_UPSTREAM_SAMPLE, default 20000)
#   --runs R              timed runs per query (BENCH_RUNS, default 50)
#   --budget S            seconds per query and system before stopping early
#                         (at least 5 runs; BENCH_BUDGET, default 60)
#   --expiry-scales LIST  extra N for the expiry figure (BENCH_EXPIRY_SCALES,
#                         default 5000000; "" for none)
#   --expiry-days D       days expired one after another (BENCH_EXPIRY_DAYS, 3)
#   --http-duration S     wrk duration per route (BENCH_HTTP_DURATION, 20)
#   --call-secs S         calls: pgbench -T per query, form, dataset and
#                         round (BENCH_CALL_SECS, 3; --call-rounds, 2)
#   --first-calls K       calls: new backends per first-call figure
#                         (BENCH_FIRST_CALLS, 20)
#   --smoke               N=2000 over --days 3,40, 5 runs, short HTTP and
#                         pgbench runs, small expiry scale: proves the scripts
#                         work (exits non-zero on any failure)
#   --keep                keep the cluster and the workload files
#
# Prints a table and writes test/bench/results/bench-<time>-n<N>-d<days>.{txt,json}
# (plus .plans.txt with EXPLAIN ANALYZE of every query); results/latest.*
# point to the last run.  Needs `make install` done (as root) for panko.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
PY=/usr/bin/python3

N=${BENCH_N:-1000000}
DAYS=${BENCH_DAYS:-}
PARTS=${BENCH_PARTS:-ingest,size,queries,calls,expiry,http}
SYSTEMS=${BENCH_SYSTEMS:-panko,upstream,jsonb,heap}
UPSTREAM_SAMPLE=${BENCH_UPSTREAM_SAMPLE:-20000}
RUNS=${BENCH_RUNS:-50}
BUDGET=${BENCH_BUDGET:-60}
EXPIRY_SCALES=${BENCH_EXPIRY_SCALES-5000000}
EXPIRY_DAYS=${BENCH_EXPIRY_DAYS:-3}
HTTP_DURATION=${BENCH_HTTP_DURATION:-20}
CALL_SECS=${BENCH_CALL_SECS:-3}
FIRST_CALLS=${BENCH_FIRST_CALLS:-20}
SMOKE=0
KEEP=0
EXTRA=()

usage() { sed -n '2,36p' "$0" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
    case "$1" in
        --n) N=$2; shift 2 ;;
        --n=*) N=${1#*=}; shift ;;
        --days) DAYS=$2; shift 2 ;;
        --days=*) DAYS=${1#*=}; shift ;;
        --parts) PARTS=$2; shift 2 ;;
        --parts=*) PARTS=${1#*=}; shift ;;
        --systems) SYSTEMS=$2; shift 2 ;;
        --systems=*) SYSTEMS=${1#*=}; shift ;;
        --upstream-sample) UPSTREAM_SAMPLE=$2; shift 2 ;;
        --runs) RUNS=$2; shift 2 ;;
        --budget) BUDGET=$2; shift 2 ;;
        --expiry-scales) EXPIRY_SCALES=$2; shift 2 ;;
        --expiry-days) EXPIRY_DAYS=$2; shift 2 ;;
        --http-duration) HTTP_DURATION=$2; shift 2 ;;
        --call-secs) CALL_SECS=$2; shift 2 ;;
        --first-calls) FIRST_CALLS=$2; shift 2 ;;
        --smoke) SMOKE=1; shift ;;
        --keep) KEEP=1; shift ;;
        -h|--help) usage; exit 0 ;;
        --*) EXTRA+=("$1" "$2"); shift 2 ;;   # passed through to bench.py
        *) echo "run.sh: unknown argument $1" >&2; usage >&2; exit 2 ;;
    esac
done

if [ "$SMOKE" = 1 ]; then
    N=2000
    UPSTREAM_SAMPLE=200
    RUNS=5
    BUDGET=10
    EXPIRY_SCALES=4000
    EXPIRY_DAYS=2
    HTTP_DURATION=1
    FIRST_CALLS=3
    DAYS=${DAYS:-3,40}
    EXTRA+=(--warmup 1 --marker-pos 1000 --call-txns 15 --call-warmup 5)
    SETTINGS=(
        "shared_buffers = 256MB"
        "work_mem = 16MB"
        "jit = off"
        "timezone = 'UTC'"
    )
else
    # 24 GB RAM, 2 cores: a quarter of RAM for shared buffers, generous WAL so
    # checkpoints do not land in the middle of one system's ingest (we also
    # CHECKPOINT before each), JIT off (it only adds latency to short queries),
    # durability left at its defaults (fsync, synchronous_commit on).
    SETTINGS=(
        "shared_buffers = 6GB"
        "effective_cache_size = 16GB"
        "work_mem = 64MB"
        "maintenance_work_mem = 1GB"
        "wal_buffers = 64MB"
        "max_wal_size = 24GB"
        "min_wal_size = 2GB"
        "checkpoint_timeout = 30min"
        "checkpoint_completion_target = 0.9"
        "random_page_cost = 1.1"
        "effective_io_concurrency = 200"
        "jit = off"
        "timezone = 'UTC'"
    )
fi

DAYS=${DAYS:-31}

RESULTS=$HERE/results
WORKDIR=${BENCH_WORKDIR:-$(mktemp -d /tmp/panko-bench-work-XXXXXX)}
mkdir -p "$RESULTS" "$WORKDIR"
chmod 755 "$WORKDIR"

# Snapshot the PostgreSQL installation (binaries, libraries with panko.so,
# extension scripts, panko-api) into the work dir and run everything from
# the copy: a `make install` during the run then cannot mix two builds of
# panko into one set of figures.  PostgreSQL finds its share and lib
# directories relative to its binaries, so the copy is self-contained.
REAL_PG_CONFIG=$(command -v pg_config)
export BENCH_PG_INCLUDEDIR=$("$REAL_PG_CONFIG" --includedir)
export BENCH_PG_LIBDIR=$("$REAL_PG_CONFIG" --libdir)
if [ "${BENCH_SNAPSHOT:-1}" = 1 ]; then
    bindir=$("$REAL_PG_CONFIG" --bindir)
    sharedir=$("$REAL_PG_CONFIG" --sharedir)
    SNAP=$WORKDIR/pg
    mkdir -p "$SNAP$(dirname "$(dirname "$bindir")")" "$SNAP$(dirname "$sharedir")"
    cp -a "$(dirname "$bindir")" "$SNAP$(dirname "$(dirname "$bindir")")/"
    cp -a "$sharedir" "$SNAP$(dirname "$sharedir")/"
    chmod -R a+rX "$WORKDIR"
    export PGBIN=$SNAP$bindir
    echo "bench: running from a snapshot of the installation in $SNAP (panko.so installed" \
         "$(date -u -r "$("$REAL_PG_CONFIG" --pkglibdir)/panko.so" '+%Y-%m-%d %H:%M:%S UTC' 2>/dev/null || echo '?'))"
fi

# shellcheck source=../lib.sh
source "$TOP/test/lib.sh"
if [ "$KEEP" = 1 ]; then export KEEP_CLUSTER=1; fi
cleanup() {
    local rc=$?
    if [ -n "${API_PID:-}" ]; then kill "$API_PID" 2>/dev/null || true; fi
    pg_stop
    if [ "$KEEP" != 1 ] && [ -z "${BENCH_WORKDIR:-}" ]; then rm -rf "$WORKDIR"; fi
    exit $rc
}

echo "bench: starting the cluster"
pg_start bench "${SETTINGS[@]}"
trap cleanup EXIT
SHOWN=$(psql -X -At -d postgres -c "SELECT string_agg(name || '=' || current_setting(name), ' ' ORDER BY name)
    FROM pg_settings WHERE name IN ('shared_buffers','effective_cache_size','work_mem','maintenance_work_mem',
    'wal_buffers','max_wal_size','checkpoint_timeout','random_page_cost','effective_io_concurrency','jit',
    'fsync','synchronous_commit','full_page_writes','max_parallel_workers_per_gather','autovacuum','TimeZone')")
echo "bench: PostgreSQL $(psql -X -At -d postgres -c 'SHOW server_version') on $PGHOST port $PGPORT"
echo "bench: settings: $SHOWN"
[ "$KEEP" = 1 ] && echo "bench: keeping cluster in $PG_TMP and workload in $WORKDIR"

export BENCH_PGHOST=$PGHOST BENCH_PGPORT=$PGPORT
set +e
"$PY" "$HERE/bench.py" \
    --n "$N" --days "$DAYS" --parts "$PARTS" --systems "$SYSTEMS" \
    --upstream-sample "$UPSTREAM_SAMPLE" --runs "$RUNS" --budget "$BUDGET" \
    --expiry-scales "$EXPIRY_SCALES" --expiry-days "$EXPIRY_DAYS" \
    --http-duration "$HTTP_DURATION" \
    --call-secs "$CALL_SECS" --first-calls "$FIRST_CALLS" \
    --workdir "$WORKDIR" --results "$RESULTS" \
    --settings "$(printf '%s; ' "${SETTINGS[@]}")" \
    $([ "$KEEP" = 1 ] && echo --keep) \
    "${EXTRA[@]}"
rc=$?
set -e
if [ $rc -ne 0 ]; then
    echo "bench: FAILED (exit $rc)" >&2
    echo "bench: server log tail:" >&2
    tail -n 30 "$PG_TMP/server.log" >&2 || true
else
    echo "bench: OK"
fi
exit $rc
