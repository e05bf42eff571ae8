#!/usr/bin/env bash
# test/osprofiler/run.sh: OSProfiler's panko:// driver (python/panko_drivers)
# and the trace functions of the extension, against what `make install`
# installed, in a throwaway cluster (test/lib.sh) it starts and stops.
#
#   bash test/osprofiler/run.sh            every part
#   bash test/osprofiler/run.sh unit cli   some: unit store functional cli
#
# Parts (each must run exactly the tests it has: "no tests ran" fails):
#   unit        test_driver.py: get_driver, every method of base.Driver,
#               reports equal to OSProfiler's own report builder on random
#               traces, duplicates, bad input that stores nothing, connection
#               strings, roles, a database that is down, reconnects, fork,
#               the autoload hook in a fresh /usr/bin/python3
#   store       test_store.py: the SQL functions as psql users call them, the
#               plans inside them on ~30,000 notifications (auto_explain),
#               row-level security with stated identities, privileges, errors
#   functional  OSProfiler's own osprofiler/tests/functional/test_driver.py
#               (Debian's, unmodified) with connection_string = panko://...
#   cli         test_cli.py: /usr/bin/osprofiler trace show --json, trace
#               list, trace list --error-trace, and its error messages
set -uo pipefail
cd "$(dirname "$0")/../.."
source test/lib.sh
PY=/usr/bin/python3
HERE=test/osprofiler
PARTS=("$@")
[ ${#PARTS[@]} -eq 0 ] && PARTS=(unit store functional cli)

FAILED=()
# The package the tests use is the installed one: it must be this tree's.
drivers_site || exit 1

pg_start osprofiler "log_min_messages = warning" || { echo "FAIL: could not start a cluster"; exit 1; }
DB=osprofiler_test
psql -X -q -v ON_ERROR_STOP=1 -d postgres <<SQL >/dev/null || { echo "FAIL: setup"; exit 1; }
CREATE DATABASE $DB;
\c $DB
CREATE EXTENSION panko;
CREATE ROLE osp_writer LOGIN IN ROLE panko_writer;
CREATE ROLE osp_reader LOGIN IN ROLE panko_auditor;
CREATE ROLE osp_both LOGIN IN ROLE panko_writer, panko_auditor;
CREATE ROLE osp_member LOGIN IN ROLE panko_reader;
CREATE ROLE osp_api LOGIN IN ROLE panko_api;
CREATE ROLE osp_explain LOGIN IN ROLE panko_auditor, panko_writer;
ALTER ROLE osp_explain SET session_preload_libraries = 'auto_explain';
ALTER ROLE osp_explain SET auto_explain.log_min_duration = 0;
ALTER ROLE osp_explain SET auto_explain.log_nested_statements = on;
ALTER ROLE osp_explain SET auto_explain.log_level = notice;
SQL

cs() { echo "panko:///$DB?host=$PGHOST&port=$PGPORT&user=$1"; }
export PANKO_OSP_BOTH=$(cs osp_both) PANKO_OSP_WRITER=$(cs osp_writer) PANKO_OSP_READER=$(cs osp_reader)
export PANKO_OSP_MEMBER=$(cs osp_member) PANKO_OSP_API=$(cs osp_api) PANKO_OSP_EXPLAIN=$(cs osp_explain)
export PANKO_OSP_ADMIN_DSN="postgresql:///$DB?host=$PGHOST&port=$PGPORT&user=postgres"


for part in "${PARTS[@]}"; do
    echo "== $part"
    case $part in
        unit) unittests "$HERE" test_driver.py || FAILED+=(unit) ;;
        store) unittests "$HERE" test_store.py || FAILED+=(store) ;;
        functional)
            out=$(cd / && $PY "$OLDPWD/$HERE/functional.py" "$PANKO_OSP_BOTH" 2>&1); rc=$?
            echo "$out" | grep -E '^(# |Ran |OK|FAILED|FAIL|functional:)|\.\.\. ' | sed 's/^/    /'
            if [ $rc -ne 0 ]; then echo "$out" | tail -60; FAILED+=(functional); fi ;;
        cli) unittests "$HERE" test_cli.py || FAILED+=(cli) ;;
        *) echo "unknown part $part"; FAILED+=("$part") ;;
    esac
done

if grep -E "PANIC|server process .* was terminated by signal" "$PG_TMP/server.log" >/dev/null 2>&1; then
    echo "FAIL: the server log shows a crash"; grep -E "PANIC|terminated by signal" "$PG_TMP/server.log" | head
    FAILED+=(server)
fi
echo
if [ ${#FAILED[@]} -gt 0 ]; then
    echo "osprofiler: FAILED: ${FAILED[*]}"
    exit 1
fi
echo "osprofiler: all parts passed (${PARTS[*]})"
