-- Expiry: clear_expired_data (upstream semantics) and run_maintenance
-- A store of its own: start from a fresh extension
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS panko CASCADE;
CREATE EXTENSION panko;
RESET client_min_messages;
SET search_path = public, panko;
SET TimeZone = 'UTC';

-- Events 10, 8 and 6 days old (each in a daily partition), 4 and 2 days
-- old, one hour old, and two with no project in the oldest day.
CREATE FUNCTION pg_temp.ev(id text, age interval, type text DEFAULT 'compute.instance.exists') RETURNS jsonb
LANGUAGE sql AS $$
    SELECT jsonb_build_object('message_id', id, 'event_type', type,
                              'generated', panko.iso_timestamp(now() - age),
                              'traits', jsonb_build_array(jsonb_build_array('project_id', 1, 'p1')))
$$;
SELECT count(*) FROM record_events(jsonb_build_array(
    pg_temp.ev('d10', '10 days'), pg_temp.ev('d10b', '10 days', 'old.only.type'),
    pg_temp.ev('d8', '8 days'), pg_temp.ev('d6', '6 days'),
    pg_temp.ev('d4', '4 days'), pg_temp.ev('d2', '2 days'), pg_temp.ev('h1', '1 hour')));

-- ttl -1 (and NULL) keeps everything, as upstream
SELECT clear_expired_data(-1) AS deleted_forever, clear_expired_data(NULL) AS deleted_null;
SELECT count(*) FROM panko.event;
SELECT clear_expired_data(3600, -5);

-- max_count bounds one call: a partition too big for the budget is not
-- dropped; its oldest rows are deleted instead
SELECT clear_expired_data(5 * 86400, 1) AS deleted;
SELECT message_id FROM panko.events ORDER BY generated;
SELECT count(*) AS day_partitions_left FROM panko.partition WHERE upper_bound <= now() - interval '5 days';

-- Without a bound: the partitions wholly older than the ttl are dropped,
-- rows of the boundary partition deleted; unused event types removed
SELECT clear_expired_data(5 * 86400) AS deleted;
SELECT message_id FROM panko.events ORDER BY generated;
SELECT count(*) AS partitions_left_older_than_ttl FROM panko.partition WHERE upper_bound <= now() - interval '5 days';
SELECT count(*) AS attached_and_listed
  FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN panko.partition p ON p.name = c.relname
 WHERE i.inhparent = 'panko.event'::regclass;
SELECT count(*) AS partitions FROM panko.partition;
SELECT * FROM event_types();
SELECT name FROM panko.event_type ORDER BY name;

-- A cutoff inside a day deletes only the older rows of that partition
-- (and d4, now older than the ttl)
SELECT count(*) FROM record_events(jsonb_build_array(
    pg_temp.ev('b-old', '3 days 2 hours'), pg_temp.ev('b-new', '2 days 22 hours')));
SELECT clear_expired_data(3 * 86400) AS deleted;
SELECT message_id FROM panko.events WHERE message_id LIKE 'b-%' ORDER BY 1;

-- An expired message_id can be stored again (the registry forgets it)
SELECT * FROM record_events(jsonb_build_array(pg_temp.ev('d10', '1 minute')));
SELECT message_id FROM panko.events WHERE message_id = 'd10';
SELECT bool_and(EXISTS (SELECT 1 FROM panko.event_message r WHERE r.id_hash = panko.message_id_hash(e.message_id)))
       AS every_event_registered FROM panko.event e;

-- run_maintenance: partitions ahead, expiry by panko.event_time_to_live
SET panko.event_time_to_live = -1;
SELECT r ? 'partitions_created' AND r ? 'partitions_dropped' AND r ? 'rows_deleted'
       AND r ? 'event_types_removed' AND r ? 'duration_ms' AS complete_report,
       r->>'skipped' AS skipped, (r->>'rows_deleted')::int AS deleted
  FROM run_maintenance() r;
SELECT count(*) AS partitions_ahead FROM panko.partition
 WHERE lower_bound > now() AND lower_bound <= now() + interval '7 days';
SELECT (run_maintenance()->>'partitions_created')::int AS created_again;
SELECT count(*) FROM panko.event;

SET panko.event_time_to_live = '1d';
SELECT (r->>'rows_deleted')::int AS deleted, (r->>'skipped')::boolean AS skipped FROM run_maintenance() r;
SELECT message_id FROM panko.events ORDER BY generated;
RESET panko.event_time_to_live;

-- Only superusers change the settings
CREATE ROLE panko_regress_plain;
SET ROLE panko_regress_plain;
SET panko.event_time_to_live = 60;
SET panko.request_project_id = 'p1';
RESET ROLE;
DROP ROLE panko_regress_plain;

-- The per-partition counts (kept for expiry) match the partitions
-- (every table that holds events is listed: one or two days, by the time of day)
SELECT count(*) = (SELECT count(DISTINCT tableoid) FROM panko.event) AS every_table_listed,
       bool_and(r.total = (SELECT count(*) FROM panko.event e WHERE e.tableoid = c.oid)) AS counts_exact
  FROM (SELECT partition, sum(n) AS total FROM panko.partition_rows GROUP BY partition) r
  JOIN pg_class c ON c.relname = r.partition AND c.relnamespace = 'panko'::regnamespace
 WHERE r.total <> 0;
SELECT (SELECT coalesce(sum(n), 0) FROM panko.partition_rows) = (SELECT count(*) FROM panko.event) AS total_exact;

-- A day's table dropped by hand (an operator's DROP TABLE): panko forgets
-- it, and the next event of that day makes it again
CREATE FUNCTION pg_temp.hand(id text, hours int) RETURNS bigint LANGUAGE sql AS $$
    SELECT count(*) FROM panko.record_events(jsonb_build_array(jsonb_build_object(
        'message_id', id, 'event_type', 'compute.instance.update', 'traits', '[]'::jsonb,
        'generated', panko.iso_timestamp(date_trunc('day', now()) - interval '10 days' + hours * interval '1 hour'))))
$$;
SELECT pg_temp.hand('hand-1', 10) AS problems;
SELECT name AS hand_day FROM panko.partition
 WHERE lower_bound <= date_trunc('day', now()) - interval '10 days' + interval '10 hours'
   AND upper_bound > date_trunc('day', now()) - interval '10 days' + interval '10 hours' \gset
SELECT format('DROP TABLE panko.%I', :'hand_day') AS drop_day \gset
:drop_day;
SELECT count(*) AS partition_rows_left FROM panko.partition WHERE name = :'hand_day';
SELECT count(*) AS counts_left FROM panko.partition_rows WHERE partition LIKE :'hand_day' || '%';
SELECT count(*) AS summaries_left FROM panko.partition_summary WHERE partition = :'hand_day';
SELECT pg_temp.hand('hand-2', 11) AS problems;
SELECT message_id FROM panko.events WHERE message_id LIKE 'hand-%' ORDER BY 1;
-- and its class table alone: the partition keeps the day, not the class
SELECT format('DROP TABLE panko.%I', :'hand_day' || '_event') AS drop_class \gset
:drop_class;
SELECT classes AS classes_left FROM panko.partition WHERE name = :'hand_day';
SELECT pg_temp.hand('hand-3', 12) AS problems;
SELECT message_id FROM panko.events WHERE message_id LIKE 'hand-%' ORDER BY 1;
SELECT classes AS classes_again FROM panko.partition WHERE name = :'hand_day';
