#!/usr/bin/env bash
# pg_regress (make installcheck) against a throwaway cluster.
#   bash test/regress.sh                  every sql/test_*.sql
#   bash test/regress.sh traits_io expiry  some (names without test_ and .sql)
set -uo pipefail
cd "$(dirname "$0")/.."
source test/lib.sh
pg_start regress || exit 1
rm -rf results regression.diffs regression.out
tests=()
[ $# -gt 0 ] && tests=(TESTS="$*")
if make installcheck PGHOST="$PGHOST" PGPORT="$PGPORT" PGUSER=postgres "${tests[@]}"; then
    exit 0
fi
[ -f regression.diffs ] && cat regression.diffs
exit 1
