#!/usr/bin/env bash
# pg_regress (make installcheck) against a throwaway cluster.
set -uo pipefail
cd "$(dirname "$0")/.."
source test/lib.sh
pg_start regress || exit 1
rm -rf results regression.diffs regression.out
if make installcheck PGHOST="$PGHOST" PGPORT="$PGPORT" PGUSER=postgres; then
    exit 0
fi
[ -f regression.diffs ] && cat regression.diffs
exit 1
