#!/usr/bin/env bash
# make demo: install what is missing, build and install panko, start a local
# PostgreSQL 15 cluster (as the postgres user, private port and socket),
# load a few thousand sample events, and serve Panko's v2 API until Ctrl-C.
#
#   DEMO_EVENTS=5000 DEMO_PG_PORT=55432 DEMO_API_PORT=8977 make demo
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=
[ "$(id -u)" -ne 0 ] && SUDO=sudo

bash test/deps.sh
make PG_CFLAGS="-Wall -Wextra -Wno-unused-parameter" >/dev/null
$SUDO make install >/dev/null
echo "demo: built and installed panko $(grep default_version panko.control | cut -d"'" -f2)"

source test/lib.sh
export PGDATABASE=panko
PGPORT_WANTED=${DEMO_PG_PORT:-$(free_port)}
pg_start demo "shared_preload_libraries = 'panko'" "panko.expiry_interval = '5min'" "panko.event_time_to_live = '60d'"
API_PORT=${DEMO_API_PORT:-8977}
N=${DEMO_EVENTS:-5000}

psql -X -q -d postgres -c "CREATE DATABASE panko" >/dev/null
psql -X -q -v ON_ERROR_STOP=1 <<SQL
SET client_min_messages = warning;
CREATE EXTENSION panko;
-- panko's operators (?, @>, @@, ->) are found through the search_path, so
-- put panko on it for everyone who connects to this database.
ALTER DATABASE panko SET search_path = "\$user", public, panko;
CREATE ROLE panko_http LOGIN IN ROLE panko_api;
-- A few thousand realistic events over the last week, in Ceilometer's form.
SELECT count(*) AS not_stored FROM panko.record_events((
    SELECT jsonb_agg(jsonb_build_object(
        'message_id', md5('demo-' || g)::uuid::text,
        'event_type', (ARRAY['compute.instance.create.end', 'compute.instance.delete.end',
                             'compute.instance.update', 'compute.instance.power_off.end',
                             'volume.create.end', 'volume.attach.end', 'volume.detach.end',
                             'network.create.end', 'port.create.end', 'identity.authenticate'])[1 + g % 10],
        'generated', panko.iso_timestamp(now() - (g * interval '7 days' / $N)),
        'traits', jsonb_build_array(
            jsonb_build_array('service', 1, (ARRAY['compute', 'compute', 'compute', 'compute', 'volume',
                                                   'volume', 'volume', 'network', 'network', 'identity'])[1 + g % 10]),
            jsonb_build_array('project_id', 1, 'project-' || lpad((g % 5)::text, 2, '0')),
            jsonb_build_array('tenant_id', 1, 'project-' || lpad((g % 5)::text, 2, '0')),
            jsonb_build_array('user_id', 1, 'user-' || (g % 20)),
            jsonb_build_array('request_id', 1, 'req-' || md5('r' || g)::uuid::text),
            jsonb_build_array('instance_id', 1, md5('i' || (g / 7))::uuid::text),
            jsonb_build_array('host', 1, 'compute-' || (g % 8)),
            jsonb_build_array('state', 1, (ARRAY['active', 'active', 'active', 'error', 'building'])[1 + g % 5]),
            jsonb_build_array('memory_mb', 2, (ARRAY[512, 1024, 2048, 4096, 8192])[1 + g % 5]),
            jsonb_build_array('vcpus', 2, 1 + g % 4),
            jsonb_build_array('launched_at', 4, panko.iso_timestamp(now() - (g * interval '7 days' / $N) - interval '90 seconds'))),
        'raw', '{}'::jsonb))
    FROM generate_series(1, $N) g));
SELECT panko.run_maintenance() AS maintenance;
SQL

panko-api --listen "127.0.0.1:$API_PORT" --auth none \
    --db "host=$PGHOST port=$PGPORT dbname=panko user=panko_http" --threads 2 &
API_PID=$!
trap 'kill $API_PID 2>/dev/null; wait $API_PID 2>/dev/null; pg_stop' EXIT INT TERM
for _ in $(seq 50); do
    curl -fsS "http://127.0.0.1:$API_PORT/healthcheck" >/dev/null 2>&1 && break
    sleep 0.2
done
curl -fsS "http://127.0.0.1:$API_PORT/healthcheck" >/dev/null

cat <<EOF

panko demo is running: $N sample events, the expiry worker, and panko-api.

  PostgreSQL  psql -h $PGHOST -p $PGPORT -U postgres panko
  HTTP API    http://127.0.0.1:$API_PORT/   (--auth none: every caller is an admin of all projects)

Try, in psql (the database's search_path includes panko, so its operators work as typed):
  SELECT message_id, event_type, generated FROM panko.get_events('{"event_type": "volume.attach.end"}', 5);
  SELECT count(*) FROM panko.events WHERE traits @@ '{"memory_mb":integer >= 4096, "state":string = "error"}';
  SELECT * FROM panko.get_events('{"traits_filter": [{"key": "project_id", "string": "project-01"}]}', 3, '{generated:desc}');
  EXPLAIN SELECT * FROM panko.events WHERE traits @> '{"host":string="compute-3"}';
  SELECT panko.run_maintenance();

Try, over HTTP:
  curl -s 'http://127.0.0.1:$API_PORT/v2/events?limit=2'
  curl -s 'http://127.0.0.1:$API_PORT/v2/events?q.field=memory_mb&q.op=ge&q.type=integer&q.value=4096&limit=3'
  curl -s 'http://127.0.0.1:$API_PORT/v2/event_types'
  /usr/bin/python3 /usr/bin/openstack --os-auth-type none --os-endpoint http://127.0.0.1:$API_PORT event list --limit 5

Ctrl-C stops panko-api and the cluster.
EOF
wait $API_PID
