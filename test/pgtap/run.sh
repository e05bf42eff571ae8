#!/usr/bin/env bash
# test/pgtap/run.sh: pgTAP tests of panko's schema objects, privileges and
# row-level security, run with pg_prove.
#
# Starts its own throwaway cluster (test/lib.sh), creates database
# panko_tap with pgtap and panko, the test login roles and the fixture
# events below, then runs pg_prove on test/pgtap/*.sql.  Assumes
# `make install` was done.  Exit status 0 when every test passes.
#
#   bash test/pgtap/run.sh                      every file
#   bash test/pgtap/run.sh test/pgtap/04_*.sql  some files
#   VERBOSE=1 bash test/pgtap/run.sh            every assertion
#   KEEP_CLUSTER=1 ...                          keep the cluster directory
#
# Test login roles (cluster-wide, made here):
#   tap_api     member of panko_api: the HTTP gateway, calls set_identity()
#   tap_reader  member of panko_reader only
#   tap_writer  member of panko_writer only
#   tap_admin   member of panko_admin (sees everything without an identity)
#   tap_plain   no panko role at all
#   tap_auditor member of panko_auditor (reads every tenant directly)
# tap_api is also made a member of panko_query, the role panko's read
# functions run as, so that the RLS suites can query panko.event and
# panko.events directly and test the policy itself; panko grants that
# direct access to no gateway or tenant role.
#
# Fixture (the RLS tests depend on exactly these 10 events):
#   message_id  project  user  event type
#   a1-create   A        a1    compute.instance.create.end
#   a1-delete   A        a1    compute.instance.delete.end
#   a2-create   A        a2    compute.instance.create.end
#   b1-create   B        b1    compute.instance.create.end
#   b1-upload   B        b1    image.upload  (the only one of its type; trait b_secret)
#   b-a1        B        a1    compute.instance.create.end  (same user id, other project)
#   lc-a1       a        a1    compute.instance.create.end  (project "a": case matters)
#   aa-a1       AA       a1    compute.instance.create.end  (project "AA": no prefix match)
#   np-auth     -        a1    identity.authenticate        (no project_id trait)
#   np-bare     -        -     identity.authenticate        (no traits at all)
set -u
# Files given on the command line, made absolute before changing directory.
FILES=()
for f in "$@"; do FILES+=("$(realpath -e "$f")") || { echo "FAIL: no such file: $f"; exit 1; }; done
cd "$(dirname "$0")/../.."
source test/lib.sh

DB=panko_tap
export PGDATABASE=$DB

[ ${#FILES[@]} -gt 0 ] || FILES=(test/pgtap/*.sql)

# Warn when the installed extension is not this tree's (run make install).
for f in panko.control sql/panko--*.sql; do
    cmp -s "$f" "$(pg_config --sharedir)/extension/$(basename "$f")" \
        || echo "# WARNING: $f differs from the installed copy: the tests run against what is installed"
done

command -v pg_prove >/dev/null || { echo "FAIL: pg_prove not found (apt-get install libtap-parser-sourcehandler-pgtap-perl)"; exit 1; }

pg_start pgtap || { echo "FAIL: could not start a cluster"; exit 1; }

q() { psql -X -qAt -v ON_ERROR_STOP=1 "$@"; }

q -d postgres -c "CREATE DATABASE $DB" >/dev/null || { echo "FAIL: CREATE DATABASE $DB"; exit 1; }
if ! q -c "SET client_min_messages = warning" -c "CREATE EXTENSION pgtap" -c "CREATE EXTENSION panko" >/dev/null; then
    echo "FAIL: CREATE EXTENSION pgtap, panko"
    exit 1
fi
if ! q >/dev/null <<'EOF'
CREATE ROLE tap_api LOGIN IN ROLE panko_api;
CREATE ROLE tap_reader LOGIN IN ROLE panko_reader;
CREATE ROLE tap_writer LOGIN IN ROLE panko_writer;
CREATE ROLE tap_admin LOGIN IN ROLE panko_admin;
CREATE ROLE tap_plain LOGIN;
CREATE ROLE tap_auditor LOGIN IN ROLE panko_auditor;
GRANT panko_query TO tap_api;
EOF
then
    echo "FAIL: creating the test roles"
    exit 1
fi

FIXTURE=$(cat <<'EOF'
[
 {"message_id": "a1-create", "event_type": "compute.instance.create.end", "generated": "2024-03-01T10:00:00",
  "traits": [{"name": "project_id", "type": "string", "value": "A"}, {"name": "user_id", "type": "string", "value": "a1"},
             {"name": "tenant_id", "type": "string", "value": "A"}, {"name": "host", "type": "string", "value": "compute-1"},
             {"name": "memory_mb", "type": "integer", "value": "512"}],
  "raw": {"who": "a1"}},
 {"message_id": "a1-delete", "event_type": "compute.instance.delete.end", "generated": "2024-03-01T11:00:00",
  "traits": [["project_id", 1, "A"], ["user_id", 1, "a1"], ["host", 1, "compute-1"], ["memory_mb", 2, 512]], "raw": {}},
 {"message_id": "a2-create", "event_type": "compute.instance.create.end", "generated": "2024-03-01T12:00:00",
  "traits": [["project_id", 1, "A"], ["user_id", 1, "a2"], ["host", 1, "compute-2"], ["memory_mb", 2, 2048]], "raw": {}},
 {"message_id": "b1-create", "event_type": "compute.instance.create.end", "generated": "2024-03-01T10:30:00",
  "traits": [["project_id", 1, "B"], ["user_id", 1, "b1"], ["host", 1, "compute-3"], ["memory_mb", 2, 4096]],
  "raw": {"secret": "B"}},
 {"message_id": "b1-upload", "event_type": "image.upload", "generated": "2024-03-02T09:00:00",
  "traits": [["project_id", 1, "B"], ["user_id", 1, "b1"], ["b_secret", 1, "only-in-B"]], "raw": {"secret": "B"}},
 {"message_id": "b-a1", "event_type": "compute.instance.create.end", "generated": "2024-03-02T10:00:00",
  "traits": [["project_id", 1, "B"], ["user_id", 1, "a1"], ["host", 1, "compute-4"], ["memory_mb", 2, 512]], "raw": {}},
 {"message_id": "lc-a1", "event_type": "compute.instance.create.end", "generated": "2024-03-01T13:00:00",
  "traits": [["project_id", 1, "a"], ["user_id", 1, "a1"]], "raw": {}},
 {"message_id": "aa-a1", "event_type": "compute.instance.create.end", "generated": "2024-03-01T14:00:00",
  "traits": [["project_id", 1, "AA"], ["user_id", 1, "a1"]], "raw": {}},
 {"message_id": "np-auth", "event_type": "identity.authenticate", "generated": "2024-03-01T09:00:00",
  "traits": [["user_id", 1, "a1"], ["initiator", 1, "keystone"]], "raw": {}},
 {"message_id": "np-bare", "event_type": "identity.authenticate", "generated": "2024-03-02T08:00:00",
  "traits": [], "raw": {}}
]
EOF
)
notstored=$(q -c "SET client_min_messages = warning" -c "SELECT count(*) FROM panko.record_events(\$fixture\$$FIXTURE\$fixture\$::jsonb)") \
    || { echo "FAIL: loading the fixture"; exit 1; }
stored=$(q -c "SELECT count(*) FROM panko.event")
if [ "$notstored" != 0 ] || [ "$stored" != 10 ]; then
    echo "FAIL: fixture: $notstored events not stored, $stored stored (expected 10)"
    exit 1
fi

args=(--ext .sql --dbname "$DB" --username postgres)
[ -n "${VERBOSE:-}" ] && args+=(--verbose)
pg_prove "${args[@]}" "${FILES[@]}"
rc=$?
if [ $rc -ne 0 ]; then
    echo "pgTAP: FAILED (pg_prove exit status $rc)"
    exit 1
fi
echo "pgTAP: all tests passed"
