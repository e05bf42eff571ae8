-- panko.get_events: every filter, sort, marker and limit; the view and EXPLAIN
-- A store of its own: start from a fresh extension
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS panko CASCADE;
CREATE EXTENSION panko;
RESET client_min_messages;
SET search_path = public, panko;
SET TimeZone = 'UTC';

-- Fixture: 12 events over three (yearly) partitions, two of them at the
-- same instant so that message_id breaks the tie.
SELECT count(*) FROM record_events('[
 {"message_id":"e01","event_type":"compute.instance.create.end","generated":"2019-06-01T00:00:00","traits":[["project_id",1,"A"],["user_id",1,"a1"],["instance_id",1,"i-1"],["memory_mb",2,512],["load",3,0.5],["launched_at",4,"2019-05-31T23:00:00"],["state",1,"active"]]},
 {"message_id":"e02","event_type":"compute.instance.create.end","generated":"2019-06-02T00:00:00","traits":[["project_id",1,"A"],["user_id",1,"a2"],["instance_id",1,"i-2"],["memory_mb",2,4096],["load",3,1.5],["launched_at",4,"2019-06-01T23:00:00"],["state",1,"error"]]},
 {"message_id":"e03","event_type":"compute.instance.delete.end","generated":"2019-06-03T00:00:00","traits":[["project_id",1,"B"],["user_id",1,"b1"],["instance_id",1,"i-1"],["memory_mb",2,8192],["state",1,"deleted"]]},
 {"message_id":"e04","event_type":"volume.attach.end","generated":"2020-01-01T00:00:00","traits":[["project_id",1,"B"],["user_id",1,"b1"],["size",2,10]]},
 {"message_id":"e05","event_type":"identity.authenticate","generated":"2020-01-01T00:00:00","traits":[["user_id",1,"a1"]]},
 {"message_id":"e06","event_type":"compute.instance.create.end","generated":"2020-02-01T12:00:00.5","traits":[["project_id",1,"A"],["user_id",1,"a1"],["instance_id",1,"i-3"],["memory_mb",2,4096],["load",3,2.5],["state",1,"error"]]},
 {"message_id":"e07","event_type":"compute.instance.create.end","generated":"2020-02-02T12:00:00","traits":[["project_id",2,7],["memory_mb",1,"4096"]]},
 {"message_id":"e08","event_type":"identity.authenticate","generated":"2020-03-01T00:00:00","traits":[]},
 {"message_id":"e09","event_type":"compute.instance.create.end","generated":"2021-01-01T00:00:00","traits":[["project_id",1,"A"],["user_id",1,"a1"],["instance_id",1,"i-4"],["memory_mb",2,2048],["state",1,"active"]]},
 {"message_id":"e10","event_type":"compute.instance.create.end","generated":"2021-01-02T00:00:00","traits":[["project_id",1,"B"],["user_id",1,"b2"],["instance_id",1,"i-5"],["memory_mb",2,4096],["state",1,"error"]]},
 {"message_id":"e11","event_type":"volume.attach.end","generated":"2021-01-03T00:00:00","traits":[["project_id",1,"A"],["user_id",1,"a2"],["size",2,20]]},
 {"message_id":"e12","event_type":"volume.attach.end","generated":"2021-01-04T00:00:00","traits":[["project_id",1,"A"],["user_id",1,"a1"],["size",2,30]]}
]'::jsonb);

CREATE FUNCTION pg_temp.ids(filter jsonb DEFAULT '{}', lim int DEFAULT 100, srt text[] DEFAULT NULL, mk text DEFAULT NULL)
RETURNS text LANGUAGE sql AS $$
    SELECT coalesce(string_agg(message_id, ' '), '(none)') FROM panko.get_events(filter, lim, srt, mk)
$$;

-- No filter: default order generated asc, message_id asc
SELECT pg_temp.ids();
SELECT * FROM get_events('{}', 2);

-- event_type, message_id, time window (start >= , end <=)
SELECT pg_temp.ids('{"event_type": "volume.attach.end"}');
SELECT pg_temp.ids('{"event_type": "no.such.type"}');
SELECT pg_temp.ids('{"message_id": "e06"}');
SELECT pg_temp.ids('{"message_id": "nope"}');
SELECT pg_temp.ids('{"start_timestamp": "2020-01-01T00:00:00", "end_timestamp": "2020-03-01T00:00:00"}');
SELECT pg_temp.ids('{"start_timestamp": "2020-01-01T01:00:00+01:00"}');
SELECT pg_temp.ids('{"end_timestamp": "2019-06-02"}');
SELECT pg_temp.ids('{"event_type": "compute.instance.create.end", "start_timestamp": "2020-01-01", "end_timestamp": "2020-12-31"}');

-- Trait filters: every op on every type; typed, ANDed
SELECT pg_temp.ids('{"traits_filter": [{"key": "instance_id", "op": "eq", "string": "i-1"}]}');
SELECT pg_temp.ids('{"traits_filter": [{"key": "state", "string": "error"}]}');
SELECT pg_temp.ids('{"traits_filter": [{"key": "state", "op": "ne", "string": "error"}]}');
SELECT pg_temp.ids('{"traits_filter": [{"key": "memory_mb", "op": "ge", "integer": 4096}]}');
SELECT pg_temp.ids('{"traits_filter": [{"key": "memory_mb", "op": "gt", "integer": 4096}]}');
SELECT pg_temp.ids('{"traits_filter": [{"key": "memory_mb", "op": "lt", "integer": 4096}]}');
SELECT pg_temp.ids('{"traits_filter": [{"key": "memory_mb", "op": "le", "integer": "2048"}]}');
SELECT pg_temp.ids('{"traits_filter": [{"key": "memory_mb", "op": "eq", "string": "4096"}]}');
SELECT pg_temp.ids('{"traits_filter": [{"key": "load", "op": "gt", "float": 1.0}]}');
SELECT pg_temp.ids('{"traits_filter": [{"key": "load", "op": "le", "float": "1.5"}]}');
SELECT pg_temp.ids('{"traits_filter": [{"key": "launched_at", "op": "lt", "datetime": "2019-06-01T00:00:00"}]}');
SELECT pg_temp.ids('{"traits_filter": [{"key": "launched_at", "op": "ge", "datetime": "2019-06-01T00:00:00+01:00"}]}');
SELECT pg_temp.ids('{"traits_filter": [{"key": "memory_mb", "op": "ge", "integer": 4096}, {"key": "state", "string": "error"}],
                    "start_timestamp": "2020-01-01", "end_timestamp": "2021-12-31"}');
SELECT pg_temp.ids('{"traits_filter": [{"key": "unknown_trait", "string": "x"}]}');
SELECT pg_temp.ids('{"traits_filter": []}');

-- admin_proj: the project's events and events without a project_id trait
SELECT pg_temp.ids('{"admin_proj": "B"}');

-- Sort keys replace the default; message_id is always the last tiebreak
SELECT pg_temp.ids('{}', 100, '{generated:desc}');
SELECT pg_temp.ids('{}', 100, '{message_id:desc}');
SELECT pg_temp.ids('{}', 100, '{message_id}');
SELECT pg_temp.ids('{}', 100, '{generated:asc,message_id:desc}');
SELECT pg_temp.ids('{}', 100, '{generated:desc,message_id:desc}');

-- Markers: keyset pagination strictly after the marker, under the current order
SELECT pg_temp.ids('{}', 3);
SELECT pg_temp.ids('{}', 3, NULL, 'e03');
SELECT pg_temp.ids('{}', 3, NULL, 'e04');
SELECT pg_temp.ids('{}', 3, NULL, 'e05');
SELECT pg_temp.ids('{}', 3, '{generated:desc}', 'e05');
SELECT pg_temp.ids('{}', 3, '{generated:desc}', 'e04');
SELECT pg_temp.ids('{}', 3, '{message_id:desc}', 'e10');
SELECT pg_temp.ids('{"traits_filter": [{"key": "project_id", "string": "A"}]}', 2, NULL, 'e06');
SELECT pg_temp.ids('{}', 3, NULL, 'e12');

-- Walk every page: no event is skipped or repeated
WITH RECURSIVE pages(n, last, seen) AS (
    SELECT 1, (SELECT message_id FROM (SELECT message_id, row_number() OVER () r FROM get_events('{}', 5)) x ORDER BY r DESC LIMIT 1),
           (SELECT string_agg(message_id, ' ') FROM get_events('{}', 5))
  UNION ALL
    SELECT n + 1,
           (SELECT message_id FROM (SELECT message_id, row_number() OVER () r FROM get_events('{}', 5, NULL, pages.last)) x ORDER BY r DESC LIMIT 1),
           (SELECT string_agg(message_id, ' ') FROM get_events('{}', 5, NULL, pages.last))
      FROM pages WHERE n < 5 AND last IS NOT NULL
)
SELECT n, seen FROM pages WHERE seen IS NOT NULL ORDER BY n;

-- Limit: 0 means the default (100); negative is an error
SELECT pg_temp.ids('{}', 0);
SELECT pg_temp.ids('{}', NULL);
SELECT pg_temp.ids('{}', 1);

-- Bad input: a clear error with SQLSTATE 22023 (22007 for timestamps), never a crash
CREATE FUNCTION pg_temp.try(query text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE query;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;
SELECT pg_temp.try($q$SELECT pg_temp.ids('{}', -1)$q$);
SELECT pg_temp.try($q$SELECT pg_temp.ids('{"start_timestamp": "last tuesday"}')$q$);
SELECT pg_temp.try($q$SELECT pg_temp.ids('{"colour": "red"}')$q$);
SELECT pg_temp.try($q$SELECT pg_temp.ids('[1]')$q$);
SELECT pg_temp.try($q$SELECT pg_temp.ids('{"event_type": 5}')$q$);
SELECT pg_temp.try($q$SELECT pg_temp.ids('{"traits_filter": [{"key": "memory_mb", "op": "like", "integer": 1}]}')$q$);
SELECT pg_temp.try($q$SELECT pg_temp.ids('{"traits_filter": [{"key": "memory_mb", "op": "eq", "boolean": true}]}')$q$);
SELECT pg_temp.try($q$SELECT pg_temp.ids('{"traits_filter": [{"key": "memory_mb", "op": "eq", "integer": "1.5"}]}')$q$);
SELECT pg_temp.try($q$SELECT pg_temp.ids('{}', 10, '{colour:asc}')$q$);
SELECT pg_temp.try($q$SELECT pg_temp.ids('{}', 10, '{generated:sideways}')$q$);
SELECT pg_temp.try($q$SELECT pg_temp.ids('{}', 10, '{generated:asc:desc}')$q$);
SELECT pg_temp.try($q$SELECT pg_temp.ids('{}', 10, '{generated,generated:desc}')$q$);
SELECT pg_temp.try($q$SELECT pg_temp.ids('{}', 10, NULL, 'no-such-event')$q$);

-- The view, with the trait operators
SELECT message_id, event_type FROM panko.events WHERE traits @@ '{"memory_mb":integer >= 4096}' ORDER BY message_id;
SELECT message_id, traits -> 'project_id' AS project FROM panko.events WHERE traits ? 'size' ORDER BY message_id;

-- Other storage functions
SELECT * FROM event_types();
SELECT * FROM trait_types('volume.attach.end');
SELECT * FROM trait_types('no.such.type');
SELECT * FROM get_traits('volume.attach.end', 'size');
SELECT count(*) FROM get_traits('compute.instance.create.end');
SELECT capabilities();

-- A selective trait filter is answered from the GIN index, never by a
-- sequential scan of the events (enough rows for the planner to care)
SELECT count(*) FROM record_events((
    SELECT jsonb_agg(jsonb_build_object(
        'message_id', 'bulk-' || g, 'event_type', 'compute.instance.exists',
        'generated', '2020-06-01T00:00:00',
        'traits', jsonb_build_array(jsonb_build_array('instance_id', 1, 'inst-' || (g % 700)),
                                    jsonb_build_array('project_id', 1, 'P' || (g % 50)),
                                    jsonb_build_array('memory_mb', 2, 512 * (1 + g % 5)))))
    FROM generate_series(1, 5000) g));
VACUUM ANALYZE panko.event;
-- (partition names depend on today's date: show them as event_N)
CREATE FUNCTION pg_temp.plan(query text) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
    line text;
BEGIN
    FOR line IN EXECUTE 'EXPLAIN (COSTS OFF) ' || query LOOP
        RETURN NEXT regexp_replace(line, 'event_[a-z_]*[0-9]{8}t[0-9]{6}', 'event_N', 'g');
    END LOOP;
END $$;
SELECT pg_temp.plan($$SELECT message_id FROM panko.event
 WHERE traits @> '{"instance_id":string="inst-7"}' AND generated >= '2020-06-01' AND generated < '2020-06-02'$$);
SELECT pg_temp.plan($$SELECT message_id FROM panko.event
 WHERE traits @@ '{"instance_id":string = "inst-7", "memory_mb":integer >= 1024}'
   AND generated >= '2020-06-01' AND generated < '2020-06-02'$$);
SELECT count(*) FROM panko.events WHERE traits @@ '{"instance_id":string = "inst-7", "memory_mb":integer >= 1024}';

-- With statistics of the current partition, a trait filter runs one of two
-- kept plans (time order then filter for common values, the GIN index then
-- a sort for rare ones): the answers are the same as a plain query's.
SELECT count(*) FROM record_events((
    SELECT jsonb_agg(jsonb_build_object(
        'message_id', 'now-' || g, 'event_type', 'compute.instance.exists',
        'generated', panko.iso_timestamp(now() - g * interval '1 second'),
        'traits', jsonb_build_array(jsonb_build_array('instance_id', 1, 'inst-' || (g % 1500)),
                                    jsonb_build_array('project_id', 1, 'P' || (g % 5)),
                                    jsonb_build_array('memory_mb', 2, 512 * (1 + g % 5)))))
    FROM generate_series(1, 3000) g));
ANALYZE panko.event;
CREATE FUNCTION pg_temp.same(filter jsonb, q traitquery, lim int, descending bool) RETURNS boolean
LANGUAGE sql AS $$
    SELECT (SELECT array_agg(message_id) FROM panko.get_events(filter, lim,
                CASE WHEN descending THEN '{generated:desc}'::text[] END))
         = (SELECT array_agg(message_id) FROM (
                SELECT message_id FROM panko.events WHERE traits @@ q
                 ORDER BY CASE WHEN descending THEN now() - generated ELSE generated - now() END, message_id
                 LIMIT lim) s)
$$;
SELECT pg_temp.same('{"traits_filter":[{"key":"instance_id","string":"inst-7"}]}', '{"instance_id":string="inst-7"}', 5, false) AS rare,
       pg_temp.same('{"traits_filter":[{"key":"project_id","string":"P3"}]}', '{"project_id":string="P3"}', 20, false) AS common,
       pg_temp.same('{"traits_filter":[{"key":"memory_mb","op":"ge","integer":2048}]}', '{"memory_mb":integer >= 2048}', 20, true) AS common_desc,
       pg_temp.same('{"traits_filter":[{"key":"instance_id","string":"inst-8"}]}', '{"instance_id":string="inst-8"}', 3, true) AS rare_desc;
SELECT count(*) FROM panko.get_events('{"traits_filter":[{"key":"instance_id","string":"inst-9"}]}', 100);
-- A small plan cache: each limit is a text of its own, so 40 of them
-- overflow 16 kept statements again and again; the least recently used
-- half is forgotten each time, and every page stays right.
SET panko.plan_cache_size = 16;
SHOW panko.plan_cache_size;
SELECT bool_and(pg_temp.same('{"traits_filter":[{"key":"project_id","string":"P3"}]}', '{"project_id":string="P3"}',
                             lim, lim % 2 = 0)) AS small_cache
  FROM generate_series(1, 40) lim, generate_series(1, 2) round;
RESET panko.plan_cache_size;
-- The heap memory a backend keeps (glibc's trim threshold): set where the
-- server is configured, not by a session.
SHOW panko.malloc_trim_threshold;
SET panko.malloc_trim_threshold = 0;
