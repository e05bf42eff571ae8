#!/usr/bin/env bash
# test/kaneda/run.sh: Kaneda's panko backend (python/panko_drivers/kaneda.py)
# and the metric functions of the extension (sql/metric.sql), against what
# `make install` installed, in a throwaway cluster (test/lib.sh).
#
#   bash test/kaneda/run.sh             every part
#   bash test/kaneda/run.sh backend     some: backend read
#
# Parts (each must run exactly the tests it has: "no tests ran" fails):
#   backend   test_backend.py: every Metrics method's report as Metrics calls
#             report(), list and dict tags, dict values, custom metrics with
#             ids, timed (ms and s), settings modules (Kaneda's and Django's),
#             a duplicate id_, a database that is down, silent or locked (no
#             exception, a log line, a bounded time), reconnects, batching,
#             the BaseBackend subclass (a fixture of Kaneda's interface)
#   read      test_read.py: metric_series, metric_running_total,
#             metric_latest, metric_events against values computed in the
#             test, rollup rows dropped with their partition, row-level
#             security, bad arguments
set -uo pipefail
cd "$(dirname "$0")/../.."
source test/lib.sh
PY=/usr/bin/python3
HERE=test/kaneda
PARTS=("$@")
[ ${#PARTS[@]} -eq 0 ] && PARTS=(backend read)

FAILED=()
drivers_site kaneda || exit 1

pg_start kaneda "log_min_messages = warning" || { echo "FAIL: could not start a cluster"; exit 1; }
DB=kaneda_test
psql -X -q -v ON_ERROR_STOP=1 -d postgres <<SQL >/dev/null || { echo "FAIL: setup"; exit 1; }
CREATE DATABASE $DB;
\c $DB
CREATE EXTENSION panko;
CREATE ROLE kn_writer LOGIN IN ROLE panko_writer;
CREATE ROLE kn_reader LOGIN IN ROLE panko_reader, panko_auditor;
CREATE ROLE kn_member LOGIN IN ROLE panko_reader;
SQL

cs() { echo "postgresql:///$DB?host=$PGHOST&port=$PGPORT&user=$1"; }
export PANKO_KN_WRITER=$(cs kn_writer) PANKO_KN_READER=$(cs kn_reader) PANKO_KN_MEMBER=$(cs kn_member)
export PANKO_KN_ADMIN_DSN=$(cs postgres)


for part in "${PARTS[@]}"; do
    echo "== $part"
    case $part in
        backend) unittests "$HERE" test_backend.py || FAILED+=(backend) ;;
        read) unittests "$HERE" test_read.py || FAILED+=(read) ;;
        *) echo "unknown part $part"; FAILED+=("$part") ;;
    esac
done

if grep -E "PANIC|server process .* was terminated by signal" "$PG_TMP/server.log" >/dev/null 2>&1; then
    echo "FAIL: the server log shows a crash"; grep -E "PANIC|terminated by signal" "$PG_TMP/server.log" | head
    FAILED+=(server)
fi
echo
if [ ${#FAILED[@]} -gt 0 ]; then
    echo "kaneda: FAILED: ${FAILED[*]}"
    exit 1
fi
echo "kaneda: all parts passed (${PARTS[*]})"
