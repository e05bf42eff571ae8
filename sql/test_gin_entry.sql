-- A batch's GIN keys start from the previous key's leaf (src/gin_entry.c):
-- whatever leaf they land on, every key of every stored event must be
-- found through the index.  Three batches into one partition, with keys
-- that fall between each other's (random request ids and numbers), keys
-- that grow into long posting lists and posting trees (host, state), and
-- enough distinct keys for an entry tree of several levels and many leaf
-- splits.  Then each event must be found, through the GIN index alone, by
-- all of its traits, and counts through the index must equal a scan's.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS panko;
RESET client_min_messages;
SET TimeZone = 'UTC';

CREATE FUNCTION pg_temp.batch(b int, n int) RETURNS jsonb LANGUAGE sql AS $$
    SELECT jsonb_agg(jsonb_build_object(
        'message_id', format('gin-%s-%s', b, i),
        'event_type', 'compute.instance.update',
        'generated', to_char(date_trunc('day', now()) - interval '2 days' + (b * n + i) * interval '1 second',
                             'YYYY-MM-DD"T"HH24:MI:SS.US'),
        'traits', jsonb_build_array(
            jsonb_build_array('request_id', 1, 'req-' || md5(format('%s/%s', b, i))),
            jsonb_build_array('seq', 2, (hashint4(b * n + i))::bigint),
            jsonb_build_array('host', 1, 'compute-' || (i % 3)),
            jsonb_build_array('state', 1, CASE WHEN i % 10 = 0 THEN 'error' ELSE 'active' END),
            jsonb_build_array('display_name', 1, 'vm-' || (hashint4(i) % 500)))))
      FROM generate_series(1, n) i
$$;

SELECT b, count(*) AS not_stored FROM generate_series(1, 3) b, panko.record_events(pg_temp.batch(b, 5000)) GROUP BY b ORDER BY b;
SELECT count(*) AS stored, count(DISTINCT tableoid) AS tables FROM panko.event WHERE message_id LIKE 'gin-%';

-- The index has many pages, so an entry tree of more than one level.
SELECT (SELECT count(*) FROM panko.event WHERE message_id LIKE 'gin-%') > 0 AS filled,
       pg_relation_size(i.indexrelid) / current_setting('block_size')::int > 100 AS many_pages
  FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
 WHERE i.indrelid = (SELECT DISTINCT tableoid FROM panko.event WHERE message_id LIKE 'gin-%')
   AND c.relam = (SELECT oid FROM pg_am WHERE amname = 'gin');

-- Does a plan read the events through GIN bitmaps, and no other index or scan?
CREATE FUNCTION pg_temp.gin_only(q text) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    line text;
    gin boolean := false;
    other boolean := false;
BEGIN
    FOR line IN EXECUTE 'EXPLAIN (COSTS OFF) ' || q LOOP
        IF line ~ 'Bitmap Index Scan on \S+_traits_idx' THEN
            gin := true;
        ELSIF line ~ '(Index|Seq|Tid|Index Only) Scan' THEN
            other := true;
        END IF;
    END LOOP;
    RETURN gin AND NOT other;
END $$;

-- (the scan's counts: no index at all)
SET enable_bitmapscan = off;
SET enable_indexscan = off;
CREATE TEMP TABLE gin_rows AS SELECT message_id, traits FROM panko.event WHERE message_id LIKE 'gin-%';
CREATE TEMP TABLE gin_counts AS
SELECT k, (SELECT count(*) FROM panko.event e WHERE e.message_id LIKE 'gin-%' AND e.traits OPERATOR(panko.@>) k::panko.traits) AS by_scan
  FROM unnest(ARRAY['{"state": string = "active"}', '{"state": string = "error"}', '{"state": string = "none"}',
                    '{"host": string = "compute-0"}', '{"host": string = "compute-1"}', '{"host": string = "compute-2"}',
                    '{"host": string = "compute-1", "state": string = "error"}']) k;
RESET enable_bitmapscan;
RESET enable_indexscan;

-- Through the GIN index only (each event's request_id is its own).
SET enable_seqscan = off;
SET enable_indexscan = off;
SET enable_tidscan = off;
SELECT pg_temp.gin_only($$SELECT count(*) FROM panko.event x WHERE x.traits OPERATOR(panko.@>) '{"host": string = "compute-1", "seq": integer = 7}'$$) AS gin_only;
-- every event, by all of its traits
SELECT count(*) AS checked,
       count(*) FILTER (WHERE (SELECT count(*) FROM panko.event x WHERE x.traits OPERATOR(panko.@>) r.traits) <> 1) AS not_found_once
  FROM gin_rows r;
-- common keys (posting trees), a rare one, and one not there: the index's counts are a scan's
SELECT k, by_scan, (SELECT count(*) FROM panko.event e
                     WHERE e.traits OPERATOR(panko.@>) k::panko.traits AND e.message_id LIKE 'gin-%') = by_scan AS index_agrees,
       by_scan > 0 AS found
  FROM gin_counts ORDER BY k;
RESET enable_seqscan;
RESET enable_indexscan;
RESET enable_tidscan;

DELETE FROM panko.event WHERE message_id LIKE 'gin-%';
