#!/usr/bin/env bash
# test/bench/adapters_smoke.sh: the three adapters' benchmarks at a tiny
# size (make test), so that they keep working: each starts its own cluster,
# loads panko and its baseline, runs every figure and fails when the two
# systems' answers differ.  The figures at this size mean nothing; the
# issues' sizes are each script's defaults (see the README).
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PY=/usr/bin/python3
failed=()
run() {
    local name=$1; shift
    local out
    if out=$("$PY" "$@" 2>&1); then
        echo "ok - $name"
    else
        echo "$out" | tail -30
        echo "FAIL: $name"
        failed+=("$name")
    fi
}
run "kaneda_bench.py" "$HERE/kaneda_bench.py" --reports 3000 --days 2 --call-secs 0.3 --runs 3 \
    --pgbench-secs 1 --pgbench-rounds 1
run "osprofiler_bench.py" "$HERE/osprofiler_bench.py" --traces 200 --notify 100 --runs 3
run "cloudkitty_bench.py" "$HERE/cloudkitty_bench.py" --points 5000 --projects 20 --runs 3
if [ ${#failed[@]} -gt 0 ]; then
    echo "adapter benchmarks: FAILED: ${failed[*]}"
    exit 1
fi
echo "adapter benchmarks: all 3 ran"
