#!/usr/bin/env bash
# test/api/durability.sh PORT: acknowledged events survive kill -9.
#
# A client posts batches to panko-api (--auth none on PORT) while the
# postmaster is killed with SIGKILL; the cluster is started again (crash
# recovery), and every batch that was answered 201 must be there, read back
# through the same panko-api (which reconnects by itself).
# Needs PGDATA_DIR, PG_TMP and the PG* variables of run.sh's cluster.
set -uo pipefail
cd "$(dirname "$0")/../.."
source test/lib.sh
PORT=$1
HERE=test/api
ACK=$(mktemp /tmp/panko-durable-ack-XXXXXX)
STOP=$ACK.stop
rm -f "$STOP"

/usr/bin/python3 "$HERE/durability.py" post "$PORT" "$ACK" "$STOP" &
POSTER=$!
# let some batches through, then crash in the middle of the stream
for _ in $(seq 1 100); do
    [ "$(wc -l <"$ACK")" -ge 1000 ] && break
    sleep 0.1
done
PM=$(head -1 "$PGDATA_DIR/postmaster.pid")
echo "killing postmaster $PM with SIGKILL after $(wc -l <"$ACK") acknowledged events"
kill -9 "$PM"
sleep 1
touch "$STOP"
wait "$POSTER"

# children notice the postmaster's death and exit; then recovery can start
started=0
for _ in $(seq 1 30); do
    if pg_start_again 2>/dev/null; then started=1; break; fi
    sleep 1
done
if [ "$started" != 1 ]; then
    echo "FAIL the cluster did not start again after kill -9"
    tail -20 "$PG_TMP/server.log"
    exit 1
fi
/usr/bin/python3 "$HERE/durability.py" verify "$PORT" "$ACK"
rc=$?
rm -f "$ACK" "$STOP"
exit $rc
