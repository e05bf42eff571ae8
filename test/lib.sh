# test/lib.sh: helpers shared by panko's test and demo scripts.
# Source it; it defines:
#   pg_start NAME [conf lines...]   start a throwaway cluster; exports PGHOST,
#                                   PGPORT, PGUSER=postgres, PGDATA_DIR
#   pg_stop                          stop it (also done on EXIT)
#   pg_restart                       restart it with the same settings
#   free_port                        print an unused TCP port on loopback
# Clusters run as the postgres user (PostgreSQL refuses root) in a private
# temp directory with their socket there; nothing listens on 5432.

PGBIN=${PGBIN:-$(pg_config --bindir 2>/dev/null || echo /usr/lib/postgresql/15/bin)}
export PATH="$PGBIN:$PATH"

_as_pg() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

free_port() {
    /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

pg_start() {
    local name=$1; shift
    PG_TMP=$(mktemp -d "/tmp/panko-$name-XXXXXX")
    chmod 755 "$PG_TMP"
    [ "$(id -u)" -eq 0 ] && chown postgres:postgres "$PG_TMP"
    PGDATA_DIR="$PG_TMP/data"
    export PGPORT=${PGPORT_WANTED:-$(free_port)}
    export PGHOST="$PG_TMP"
    export PGUSER=postgres
    export PGDATABASE=${PGDATABASE:-postgres}
    _as_pg "$PGBIN/initdb" -D "$PGDATA_DIR" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$PG_TMP/initdb.log" 2>&1 \
        || { cat "$PG_TMP/initdb.log"; return 1; }
    {
        echo "port = $PGPORT"
        echo "listen_addresses = '127.0.0.1'"
        echo "unix_socket_directories = '$PG_TMP'"
        echo "fsync = on"
        echo "max_connections = 100"
        echo "shared_buffers = 256MB"
        echo "log_min_messages = warning"
        echo "logging_collector = off"
        for line in "$@"; do echo "$line"; done
    } | _as_pg tee -a "$PGDATA_DIR/postgresql.conf" >/dev/null
    _as_pg "$PGBIN/pg_ctl" -D "$PGDATA_DIR" -l "$PG_TMP/server.log" -w -t 60 start >/dev/null \
        || { cat "$PG_TMP/server.log"; return 1; }
    trap pg_stop EXIT
}

pg_stop() {
    if [ -n "${PGDATA_DIR:-}" ] && [ -d "$PGDATA_DIR" ]; then
        _as_pg "$PGBIN/pg_ctl" -D "$PGDATA_DIR" -m fast -w stop >/dev/null 2>&1 || true
        if [ -z "${KEEP_CLUSTER:-}" ]; then rm -rf "$PG_TMP"; fi
    fi
}

pg_restart() {
    _as_pg "$PGBIN/pg_ctl" -D "$PGDATA_DIR" -l "$PG_TMP/server.log" -w -t 60 restart >/dev/null
}

# pg_start_crashed: start again after kill -9 (recovery runs).
pg_start_again() {
    _as_pg "$PGBIN/pg_ctl" -D "$PGDATA_DIR" -l "$PG_TMP/server.log" -w -t 120 start >/dev/null
}

# drivers_site [MODULE]: the installed panko_drivers for /usr/bin/python3
# (what the adapters' tests run), in SITE; fails when it is missing (or
# lacks MODULE.py), warns when it differs from python/panko_drivers.
drivers_site() {
    local f
    SITE=$(/usr/bin/python3 -c 'import panko_drivers, os; print(os.path.dirname(panko_drivers.__file__))' 2>/dev/null) \
        || { echo "FAIL: panko_drivers is not installed for /usr/bin/python3: run make install first"; return 1; }
    if [ -n "${1:-}" ] && [ ! -f "$SITE/$1.py" ]; then
        echo "FAIL: $SITE has no $1.py: run make install"
        return 1
    fi
    for f in python/panko_drivers/*.py; do
        cmp -s "$f" "$SITE/$(basename "$f")" \
            || echo "# WARNING: $f differs from the installed $SITE/$(basename "$f"): the tests run what is installed"
    done
    echo "# panko_drivers from $SITE"
}

# unittests DIR FILE: run FILE's tests with /usr/bin/python3 -m unittest in
# DIR; fails unless every test it defines ran and passed ("no tests ran"
# is a failure).
unittests() {
    local dir=$1 file=$2 want ran out
    want=$(grep -c '^    def test_' "$dir/$file")
    out=$(cd "$dir" && /usr/bin/python3 -m unittest -v "${file%.py}" 2>&1)
    echo "$out" | grep -E '^(test_|Ran |OK|FAILED)|^(ERROR|FAIL):' | sed 's/^/    /'
    ran=$(echo "$out" | sed -n 's/^Ran \([0-9]*\) tests\{0,1\} .*/\1/p')
    if [ "${ran:-0}" != "$want" ] || ! echo "$out" | grep -q '^OK'; then
        echo "$out" | sed -n '/^=====/,$p' | head -200
        echo "FAIL: $file ran ${ran:-0} of its $want tests, or some failed"
        return 1
    fi
    echo "ok - $file: $ran of $want tests passed"
}
