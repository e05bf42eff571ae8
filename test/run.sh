#!/usr/bin/env bash
# make test: install what is missing, build with -Werror, install, and run
# every suite against throwaway clusters that each suite starts and stops.
set -uo pipefail
cd "$(dirname "$0")/.."

SUDO=
[ "$(id -u)" -ne 0 ] && SUDO=sudo

bash test/deps.sh || { echo "deps: installing packages failed"; exit 1; }
make clean >/dev/null 2>&1
make PG_CFLAGS="-Wall -Wextra -Werror -Wno-unused-parameter" || { echo "build failed"; exit 1; }
$SUDO make install >/dev/null || { echo "make install failed"; exit 1; }

failures=()
failure_logs=()
# Each suite's output is also kept, so that a failure's last lines can be
# printed again at the very end, where a CI log's tail shows them.
LOGS=$(mktemp -d /tmp/panko-test-logs.XXXXXX)
trap 'rm -rf "$LOGS"' EXIT
run_suite() {
    local name=$1; shift
    local t0=$SECONDS log
    log=$(mktemp "$LOGS/suite.XXXXXX")
    echo
    echo "=================== $name"
    "$@" 2>&1 | tee "$log"
    if [ "${PIPESTATUS[0]}" -eq 0 ]; then
        echo "------------------- $name: ok ($((SECONDS - t0)) s)"
    else
        echo "------------------- $name: FAILED ($((SECONDS - t0)) s)"
        failures+=("$name")
        failure_logs+=("$log")
    fi
}

run_suite "pg_regress" bash test/regress.sh
run_suite "pgTAP" bash test/pgtap/run.sh
run_suite "upgrade" bash test/upgrade.sh
run_suite "ingest crash recovery" bash test/ingest_crash.sh
run_suite "ingest, concurrent writers" bash test/ingest_concurrent.sh
run_suite "security" bash test/security/run.sh
run_suite "worker and pg_cron" bash test/worker/run.sh
run_suite "HTTP API" bash test/api/run.sh
run_suite "OSProfiler driver" bash test/osprofiler/run.sh
run_suite "CloudKitty backend" bash test/cloudkitty/run.sh
run_suite "Kaneda backend" bash test/kaneda/run.sh
run_suite "benchmark smoke" bash test/bench/run.sh --smoke
run_suite "adapter benchmark smoke" bash test/bench/adapters_smoke.sh
run_suite "fuzz (bounded)" make fuzz FUZZ_SECONDS=${FUZZ_SECONDS:-30}

echo
if [ ${#failures[@]} -gt 0 ]; then
    for i in "${!failures[@]}"; do
        echo "=================== the last lines of ${failures[$i]}"
        tail -n 60 "${failure_logs[$i]}"
    done
    echo "make test: FAILED: ${failures[*]}"
    exit 1
fi
echo "make test: all suites passed"
