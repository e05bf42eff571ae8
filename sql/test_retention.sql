-- Retention classes: traces, rated data and metrics have tables of their
-- own in each partition and expire by whole tables, apart from events.
-- (in a database of its own: expiry here must not touch the other tests')
SELECT current_database() AS regress_db \gset
CREATE DATABASE panko_retention_test;
\c panko_retention_test
SET client_min_messages = warning;
CREATE EXTENSION panko;
SET TimeZone = 'UTC';

-- The rule: by event type prefix.
SELECT t, panko.retention_class(t)
  FROM unnest(ARRAY['compute.instance.create.end', 'osprofiler.start', 'cloudkitty.rating.cpu',
                    'kaneda.gauge', 'kanedax', 'osprofiler']) t;
SELECT panko.retention_classes();

-- (partition names depend on today's date: shown as event_N)
CREATE FUNCTION pg_temp.tables() RETURNS TABLE(days_ago integer, tbl text, events bigint)
LANGUAGE sql AS $$
    SELECT (current_date - p.lower_bound::date), regexp_replace(e.tableoid::regclass::text, '[0-9]{8}t[0-9]{6}', 'N'),
           count(*)
      FROM panko.event e JOIN panko.partition p ON e.generated >= p.lower_bound AND e.generated < p.upper_bound
     GROUP BY 1, 2 ORDER BY 1 DESC, 2
$$;

SELECT * FROM panko.record_events((
    SELECT jsonb_agg(jsonb_build_object(
               'message_id', format('%s-%s', t, d),
               'event_type', t,
               'generated', to_char(date_trunc('day', now() AT TIME ZONE 'UTC') - make_interval(days => d) + interval '1 hour',
                                    'YYYY-MM-DD"T"HH24:MI:SS'),
               'traits', '[]'::jsonb))
      FROM unnest(ARRAY['compute.instance.exists', 'osprofiler.start', 'cloudkitty.rating', 'kaneda.gauge']) t,
           generate_series(1, 4) d));
SELECT * FROM pg_temp.tables();
SELECT regexp_replace(name, '[0-9]{8}t[0-9]{6}', 'N'), classes FROM panko.partition
 WHERE lower_bound < date_trunc('day', now()) ORDER BY lower_bound;
SELECT regexp_replace(partition, '[0-9]{8}t[0-9]{6}', 'N'), sum(n) FROM panko.partition_rows GROUP BY 1 ORDER BY 1 LIMIT 5;

-- Maintenance seals past partitions that writers left unsealed (here: the
-- seals are removed, as for partitions loaded before summaries existed).
DELETE FROM panko.partition_summary WHERE kind = 's';
SELECT panko.seal_partitions(0) AS sealed_none, panko.seal_partitions() >= 3 AS sealed;
SELECT (current_date - p.lower_bound::date) AS days_ago, s.events
  FROM panko.partition p JOIN panko.partition_summary s ON s.partition = p.name AND s.kind = 's'
 WHERE p.lower_bound < current_date - 1 ORDER BY 1 DESC;
SELECT panko.seal_partitions(-1);

-- One partition's classes are read together, in order.
SELECT message_id FROM panko.get_events('{}', 5, ARRAY['generated:desc', 'message_id:asc']);

-- Bad settings.
SELECT panko.set_retention('event', 60);
SELECT panko.set_retention('nonsense', 60);
SELECT panko.set_retention(NULL, 60);
SELECT panko.set_retention('trace', -2);
SELECT panko.create_partition_for(now(), 'nonsense');
SELECT panko.expire_class('trace');     -- no time to live of its own: nothing

-- Traces live two days, rated data forever.
SELECT panko.set_retention('trace', 2 * 86400);
SELECT panko.set_retention('rating', -1);
SELECT panko.set_retention('trace', 2 * 86400);   -- again: an update
SELECT * FROM panko.retention ORDER BY class;
SELECT panko.expire_class('trace');
SELECT panko.expire_class('rating');
SELECT * FROM pg_temp.tables() WHERE tbl LIKE '%trace' OR tbl LIKE '%rating';

-- Events expire at half past midnight two days ago: whole tables of event
-- and metric (no time to live of their own) in partitions before the
-- cutoff, rows of those classes in the boundary partition (one at 00:10
-- there); never traces or rated data.
SELECT * FROM panko.record_events((
    SELECT jsonb_agg(jsonb_build_object(
               'message_id', t || '-early', 'event_type', t,
               'generated', to_char(date_trunc('day', now()) - interval '1 day 23 hours 50 minutes', 'YYYY-MM-DD"T"HH24:MI:SS'),
               'traits', '[]'::jsonb))
      FROM unnest(ARRAY['compute.instance.exists', 'cloudkitty.rating']) t));
SELECT panko.clear_expired_data(extract(epoch FROM now() - (date_trunc('day', now()) - interval '1 day 23 hours 30 minutes'))::bigint);
SELECT * FROM pg_temp.tables();
SELECT (current_date - lower_bound::date) AS days_ago, classes FROM panko.partition
 WHERE lower_bound < date_trunc('day', now()) ORDER BY lower_bound;

-- A partition whose last table goes is dropped.
SELECT panko.set_retention('rating', 0);
SELECT panko.run_maintenance()->'classes_expired';
SELECT (current_date - lower_bound::date) AS days_ago, classes FROM panko.partition
 WHERE lower_bound < date_trunc('day', now()) ORDER BY lower_bound;
SELECT count(*) AS summaries_of_dropped FROM panko.partition_summary s
 WHERE NOT EXISTS (SELECT 1 FROM panko.partition p WHERE p.name = s.partition);

-- NULL: the class expires with the events again.
SELECT panko.set_retention('trace', NULL);
SELECT * FROM panko.retention ORDER BY class;
SELECT panko.clear_expired_data(0) > 0 AS deleted;
SELECT count(*) FROM panko.event;
SELECT panko.set_retention('rating', NULL);

\c :regress_db
DROP DATABASE panko_retention_test;
