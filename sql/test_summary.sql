-- Partition summaries (src/traits_summary.c) under writers that store one
-- event per call: batch rows and deltas are merged, so a partition keeps a
-- bounded number of rows, and a seal built from merged rows, and merged
-- deltas, still hold every key (get_events finds every event by its values).
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS panko CASCADE;
CREATE EXTENSION panko;
CREATE EXTENSION IF NOT EXISTS dblink;
RESET client_min_messages;
SET TimeZone = 'UTC';

-- Two days ago at noon: a past partition (its upper bound is at least a day
-- behind, beyond the seal's grace of an hour), created now, with its table
-- for events (leaf; summaries are the partition's, counts the table's).
CREATE TEMP TABLE fixture AS
SELECT date_trunc('day', now()) - interval '2 days' + interval '12 hours' AS t0,
       panko.create_partition_for(date_trunc('day', now()) - interval '2 days' + interval '12 hours') AS leaf;
ALTER TABLE fixture ADD COLUMN part text;
UPDATE fixture f SET part = p.name FROM panko.partition p WHERE f.t0 >= p.lower_bound AND f.t0 < p.upper_bound;
SELECT (SELECT part FROM fixture) LIKE 'event_%' AS partition_made;

-- One event per call, one transaction each (psql autocommit): event i has
-- the unique traits tag = 'v-i' and seq = i, and a shared one.
CREATE FUNCTION pg_temp.one_event(i int, t timestamptz) RETURNS text LANGUAGE sql AS $$
    SELECT format('SELECT count(*) FROM panko.record_events(%L::jsonb)',
        jsonb_build_array(jsonb_build_object(
            'message_id', 'm-' || i,
            'event_type', 'compute.instance.update',
            'generated', to_char(t + make_interval(secs => i), 'YYYY-MM-DD"T"HH24:MI:SS'),
            'traits', jsonb_build_array(jsonb_build_array('tag', 1, 'v-' || i),
                                        jsonb_build_array('seq', 2, i),
                                        jsonb_build_array('kind', 1, 'summary-test'))))::text)
$$;
-- How many of events lo..hi get_events does not find by each value.
CREATE FUNCTION pg_temp.missed(lo int, hi int) RETURNS bigint LANGUAGE sql AS $$
    SELECT count(*) FROM generate_series(lo, hi) i
     WHERE (SELECT count(*) FROM panko.get_events(jsonb_build_object('traits_filter',
                jsonb_build_array(jsonb_build_object('key', 'tag', 'op', 'eq', 'string', 'v-' || i))), 10)) <> 1
        OR (SELECT count(*) FROM panko.get_events(jsonb_build_object('traits_filter',
                jsonb_build_array(jsonb_build_object('key', 'seq', 'op', 'eq', 'integer', i))), 10)) <> 1
$$;
CREATE FUNCTION pg_temp.rows(k "char") RETURNS TABLE (n bigint, events numeric) LANGUAGE sql AS $$
    SELECT count(*), coalesce(sum(s.events), 0) FROM panko.partition_summary s, fixture f
     WHERE s.partition = f.part AND s.kind = k
$$;

-- 1. Batch rows.  Another session holds ROW EXCLUSIVE on the partition, as
-- a writer in flight does, so no call can seal it: 600 calls each add a
-- batch row, and merges keep them few.
SELECT dblink_connect('other', format('host=%s port=%s dbname=%s user=%s',
    split_part(current_setting('unix_socket_directories'), ',', 1), current_setting('port'),
    current_database(), current_user));
SELECT dblink_exec('other', 'BEGIN');
SELECT dblink_exec('other', format('LOCK TABLE panko.%I IN ROW EXCLUSIVE MODE', (SELECT part FROM fixture)));
\set ECHO none
\o /dev/null
SELECT pg_temp.one_event(i, (SELECT t0 FROM fixture)) FROM generate_series(1, 600) i \gexec
\o
\set ECHO all
SELECT count(*) AS stored FROM panko.event e, fixture f WHERE e.tableoid = ('panko.' || f.leaf)::regclass;
-- unbounded would be 600; at most 15 rows a level for 3 levels
SELECT n <= 45 AS batch_rows_bounded, n < 600 AS batch_rows_merged, events AS batch_events FROM pg_temp.rows('b');
SELECT n AS seals FROM pg_temp.rows('s');
-- the batch rows count every event, so the seal is built from them (no scan)
SELECT (SELECT events FROM pg_temp.rows('b')) =
       (SELECT sum(r.n) FROM panko.partition_rows r, fixture f WHERE r.partition = f.leaf) AS batch_rows_cover;

-- In one transaction too: the calls merge their own rows.
BEGIN;
DO $$
BEGIN
    FOR i IN 601 .. 900 LOOP
        EXECUTE pg_temp.one_event(i, (SELECT t0 FROM fixture));
    END LOOP;
END
$$;
COMMIT;
SELECT n <= 45 AS batch_rows_bounded, events AS batch_events FROM pg_temp.rows('b');

-- 2. The seal.  The other session ends; the next call (into today's
-- partition) seals the past one from its merged batch rows.
SELECT dblink_exec('other', 'COMMIT');
SELECT dblink_disconnect('other');
\set ECHO none
\o /dev/null
SELECT pg_temp.one_event(0, now() - interval '1 minute') \gexec
\o
\set ECHO all
SELECT n AS seals, events AS sealed_events FROM pg_temp.rows('s');
SELECT n AS batch_rows_left FROM pg_temp.rows('b');
-- every event is found by its string and its integer value
SELECT pg_temp.missed(1, 900) AS missed_after_seal;
SELECT count(*) AS no_such_value FROM panko.get_events('{"traits_filter": [{"key": "tag", "string": "v-901"}]}', 10);

-- 3. Deltas: 600 later calls into the sealed partition, each a delta,
-- merged the same way.
\set ECHO none
\o /dev/null
SELECT pg_temp.one_event(i, (SELECT t0 FROM fixture)) FROM generate_series(901, 1500) i \gexec
\o
\set ECHO all
SELECT n <= 45 AS delta_rows_bounded, n < 600 AS delta_rows_merged, events AS delta_events FROM pg_temp.rows('d');
SELECT n AS seals FROM pg_temp.rows('s');
SELECT pg_temp.missed(1, 1500) AS missed_after_deltas;
SELECT count(*) AS kind_matches FROM panko.get_events('{"traits_filter": [{"key": "kind", "string": "summary-test"}]}', 2000);
-- Amounts (qty, price) are summarised by name only: a filter on one looks
-- up the name, and still finds its event in the sealed partition.
SELECT count(*) AS amount_not_stored FROM panko.record_events(jsonb_build_array(jsonb_build_object(
    'message_id', 'amount-1', 'event_type', 'compute.instance.update',
    'generated', to_char((SELECT t0 FROM fixture) + interval '3 hours', 'YYYY-MM-DD"T"HH24:MI:SS'),
    'traits', jsonb_build_array(jsonb_build_array('qty', 1, '54.321'), jsonb_build_array('price', 1, '0.0000125')))));
SELECT (SELECT count(*) FROM panko.get_events('{"traits_filter": [{"key": "qty", "string": "54.321"}]}', 10)) AS qty_found,
       (SELECT count(*) FROM panko.get_events('{"traits_filter": [{"key": "price", "string": "0.0000125"}, {"key": "qty", "string": "54.321"}]}', 10)) AS both_found,
       (SELECT count(*) FROM panko.get_events('{"traits_filter": [{"key": "qty", "string": "54.3"}]}', 10)) AS other_qty_found;

-- Merged rows are sorted key sets: a delta's keys a reader searches.
SELECT DISTINCT get_byte(keys, 0) = ascii('K') AS sorted_key_sets
  FROM panko.partition_summary s, fixture f WHERE s.partition = f.part AND s.kind = 'd';

-- Events without traits: key sets of no keys merge too.
\set ECHO none
\o /dev/null
SELECT format('SELECT count(*) FROM panko.record_events(%L::jsonb)', jsonb_build_array(jsonb_build_object(
    'message_id', 'bare-' || i, 'event_type', 'compute.instance.update',
    'generated', to_char((SELECT t0 FROM fixture) + make_interval(hours => 2, secs => i), 'YYYY-MM-DD"T"HH24:MI:SS'),
    'traits', '[]'::jsonb))) FROM generate_series(1, 40) i \gexec
\o
\set ECHO all
SELECT n <= 45 AS delta_rows_bounded, events AS delta_events FROM pg_temp.rows('d');
SELECT count(*) AS bare_events FROM panko.get_events('{"event_type": "compute.instance.update"}', 2000)
 WHERE message_id LIKE 'bare-%';

-- 4. The open day has no seal: a walk asks its GIN index before it reads
-- it with a statement.  200 events five minutes ago (one batch, one
-- partition, not sealed: its upper bound is not an hour in the past) with
-- values of their own; counted: the scans of that table's GIN index in one
-- transaction.
SELECT count(*) AS stored_today FROM panko.record_events((
    SELECT jsonb_agg(jsonb_build_object(
               'message_id', 'open-' || i, 'event_type', 'compute.instance.update',
               'generated', panko.iso_timestamp(now() - interval '5 minutes' + i * interval '1 millisecond'),
               'traits', jsonb_build_array(jsonb_build_array('tag', 1, 'open-' || i))))
      FROM generate_series(1, 200) i));
ANALYZE panko.event;
CREATE TEMP TABLE open_gin AS
SELECT x.indexrelid, x.indrelid FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_am a ON a.oid = i.relam
 WHERE a.amname = 'gin' AND x.indrelid = (SELECT tableoid FROM panko.event WHERE panko.trait_text(traits, 'tag') = 'open-1');
-- scans of its GIN index and of the table (a statement's bitmap scan counts on both)
CREATE FUNCTION pg_temp.open_scans() RETURNS text LANGUAGE sql AS $$
    SELECT format('index %s table %s', pg_stat_get_xact_numscans(indexrelid), pg_stat_get_xact_numscans(indrelid)) FROM open_gin
$$;
CREATE FUNCTION pg_temp.scans_since(before text) RETURNS text LANGUAGE sql AS $$
    SELECT format('index +%s, table +%s', split_part(now_, ' ', 2)::int - split_part(before, ' ', 2)::int,
                  split_part(now_, ' ', 4)::int - split_part(before, ' ', 4)::int)
      FROM pg_temp.open_scans() now_
$$;
CREATE FUNCTION pg_temp.found(tag text) RETURNS bigint LANGUAGE sql AS $$
    SELECT count(*) FROM panko.get_events(jsonb_build_object('traits_filter',
        jsonb_build_array(jsonb_build_object('key', 'tag', 'op', 'eq', 'string', tag))), 10)
$$;
-- (deltas in one transaction, where a backend's counts only grow; the
-- GIN index for every partition: time order would read this small one)
BEGIN;
SET LOCAL enable_indexscan = off;
SET LOCAL panko.indexed_scan = off;
SELECT pg_temp.open_scans() AS s0 \gset
SELECT pg_temp.found('open-7') AS found_today, pg_temp.scans_since(:'s0') AS probe_and_statement;
-- read through the index without a plan (event_scan.c): the read is the probe
SET LOCAL panko.indexed_scan = on;
SELECT pg_temp.open_scans() AS s0 \gset
SELECT pg_temp.found('open-7') AS found_today, pg_temp.scans_since(:'s0') AS one_indexed_scan;
SELECT pg_temp.open_scans() AS s0 \gset
SELECT pg_temp.found('v-7') AS found_in_the_past, pg_temp.scans_since(:'s0') AS probe_only;
SELECT pg_temp.open_scans() AS s0 \gset
SELECT pg_temp.found('nowhere') AS found_nowhere, pg_temp.scans_since(:'s0') AS probe_only;
COMMIT;
SELECT pg_temp.missed(1, 1500) AS missed_with_the_open_day;

-- 5. A partition made ahead of time is empty, so a walk skips it without
-- reading it (its file's size, the file kept open).  Once another session
-- stores an event there, this session's next call finds it.
SELECT panko.create_partition_for(date_trunc('day', now()) + interval '3 days 12 hours') LIKE 'event_%' AS ahead_made;
SELECT count(*) AS ahead_before FROM panko.get_events('{"traits_filter": [{"key": "tag", "string": "ahead-1"}]}', 10);
SELECT count(*) AS ahead_window_before FROM panko.get_events(jsonb_build_object('start_timestamp',
    panko.iso_timestamp(date_trunc('day', now()) + interval '3 days')), 10);
SELECT dblink_connect('other', format('host=%s port=%s dbname=%s user=%s',
    split_part(current_setting('unix_socket_directories'), ',', 1), current_setting('port'),
    current_database(), current_user));
SELECT * FROM dblink('other', format('SELECT count(*) FROM panko.record_events(%L::jsonb)', jsonb_build_array(jsonb_build_object(
    'message_id', 'ahead-1', 'event_type', 'compute.instance.update',
    'generated', panko.iso_timestamp(date_trunc('day', now()) + interval '3 days 13 hours'),
    'traits', jsonb_build_array(jsonb_build_array('tag', 1, 'ahead-1')))))) AS t(not_stored bigint);
SELECT count(*) AS ahead_after FROM panko.get_events('{"traits_filter": [{"key": "tag", "string": "ahead-1"}]}', 10);
SELECT message_id AS ahead_window_after FROM panko.get_events(jsonb_build_object('start_timestamp',
    panko.iso_timestamp(date_trunc('day', now()) + interval '3 days')), 10);
SELECT dblink_disconnect('other');

SET client_min_messages = warning;
DROP EXTENSION dblink;
RESET client_min_messages;
