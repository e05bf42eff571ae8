#!/usr/bin/env bash
# test/cloudkitty/run.sh: CloudKitty's panko storage backend
# (python/panko_drivers/cloudkitty.py) and the rating functions of the
# extension, against what `make install` installed, in a throwaway cluster
# (test/lib.sh) it starts and stops.
#
#   bash test/cloudkitty/run.sh              every part
#   bash test/cloudkitty/run.sh upstream     some: upstream backend
#
# Parts (each must run exactly the tests it has: "no tests ran" fails):
#   upstream    CloudKitty's own StorageUnitTest (Debian's
#               cloudkitty/tests/storage/v2/test_storage_unit.py, unmodified)
#               with a panko scenario: totals, groupby, pagination, retrieve
#   backend     test_backend.py: exact Decimal totals, bad input that stores
#               nothing, filters and group_filters, delete, custom fields,
#               pagination, scopes under row-level security, retention, the
#               entry point CloudKitty's loader finds
set -uo pipefail
cd "$(dirname "$0")/../.."
source test/lib.sh
PY=/usr/bin/python3
HERE=test/cloudkitty
PARTS=("$@")
[ ${#PARTS[@]} -eq 0 ] && PARTS=(upstream backend)

FAILED=()
drivers_site || exit 1

pg_start cloudkitty "log_min_messages = warning" || { echo "FAIL: could not start a cluster"; exit 1; }
DB=cloudkitty_test
# CloudKitty's login as the README tells operators to make it.
psql -X -q -v ON_ERROR_STOP=1 -d postgres <<SQL >/dev/null || { echo "FAIL: setup"; exit 1; }
CREATE DATABASE $DB;
\c $DB
CREATE EXTENSION panko;
CREATE ROLE ck_storage LOGIN IN ROLE panko_writer, panko_auditor;
GRANT EXECUTE ON FUNCTION panko.rating_delete(timestamptz, timestamptz, jsonb), panko.rating_init(bigint) TO ck_storage;
CREATE ROLE ck_api LOGIN IN ROLE panko_api;
CREATE ROLE ck_reader LOGIN IN ROLE panko_reader;
SQL

export PANKO_CK_CONNECTION="postgresql:///$DB?host=$PGHOST&port=$PGPORT&user=ck_storage"
export PANKO_CK_ADMIN_DSN="postgresql:///$DB?host=$PGHOST&port=$PGPORT&user=postgres"

# tests FILE WANT: run it serially, and require exactly WANT tests to pass.
tests() {
    local file=$1 want=$2 ran out
    out=$(cd "$HERE" && $PY -m testtools.run "${file%.py}" 2>&1)
    echo "$out" | grep -E '^(Ran |OK|FAILED)|^(ERROR|FAIL):' | sed 's/^/    /'
    ran=$(echo "$out" | sed -n 's/^Ran \([0-9]*\) tests\{0,1\} .*/\1/p')
    if [ "${ran:-0}" != "$want" ] || ! echo "$out" | grep -q '^OK'; then
        echo "$out" | grep -v alembic | sed -n '/^=====/,$p' | head -200
        echo "FAIL: $file ran ${ran:-0} of its $want tests, or some failed"
        return 1
    fi
    echo "ok - $file: $ran of $want tests passed"
}

for part in "${PARTS[@]}"; do
    echo "== $part"
    case $part in
        upstream)
            # every test_ method of the upstream class, once (one scenario)
            want=$(grep -c '^    def test_' /usr/lib/python3/dist-packages/cloudkitty/tests/storage/v2/test_storage_unit.py)
            tests test_storage_unit.py "$want" || FAILED+=(upstream) ;;
        backend)
            tests test_backend.py "$(grep -c '^    def test_' $HERE/test_backend.py)" || FAILED+=(backend) ;;
        *) echo "unknown part $part"; FAILED+=("$part") ;;
    esac
done

if grep -E "PANIC|server process .* was terminated by signal" "$PG_TMP/server.log" >/dev/null 2>&1; then
    echo "FAIL: the server log shows a crash"; grep -E "PANIC|terminated by signal" "$PG_TMP/server.log" | head
    FAILED+=(server)
fi
echo
if [ ${#FAILED[@]} -gt 0 ]; then
    echo "cloudkitty: FAILED: ${FAILED[*]}"
    exit 1
fi
echo "cloudkitty: all parts passed (${PARTS[*]})"
