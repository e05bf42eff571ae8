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
SITE=$($PY -c 'import panko_drivers, os; print(os.path.dirname(panko_drivers.__file__))' 2>/dev/null) \
    || { echo "FAIL: panko_drivers is not installed for $PY: run make install first"; exit 1; }
[ -f "$SITE/kaneda.py" ] || { echo "FAIL: $SITE has no kaneda.py: run make install"; exit 1; }
for f in python/panko_drivers/*.py; do
    cmp -s "$f" "$SITE/$(basename "$f")" \
        || echo "# WARNING: $f differs from the installed $SITE/$(basename "$f"): the tests run what is installed"
done
echo "# panko_drivers from $SITE"

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

unittests() {
    local file=$1 want ran out
    want=$(grep -c '^    def test_' "$HERE/$file")
    out=$(cd "$HERE" && $PY -m unittest -v "${file%.py}" 2>&1)
    echo "$out" | grep -E '^(test_|Ran |OK|FAILED)|^(ERROR|FAIL):' | sed 's/^/    /'
    ran=$(echo "$out" | sed -n 's/^Ran \([0-9]*\) tests\{0,1\} .*/\1/p')
    if [ "${ran:-0}" != "$want" ] || ! echo "$out" | grep -q '^OK'; then
        echo "$out" | sed -n '/^=====/,$p' | head -200
        echo "FAIL: $file ran ${ran:-0} of its $want tests, or some failed"
        return 1
    fi
    echo "ok - $file: $ran of $want tests passed"
}

for part in "${PARTS[@]}"; do
    echo "== $part"
    case $part in
        backend) unittests test_backend.py || FAILED+=(backend) ;;
        read) unittests test_read.py || FAILED+=(read) ;;
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
