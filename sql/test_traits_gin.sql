-- GIN: every trait filter is answered from the index, with the same result
SET search_path = public, panko;
SET TimeZone = 'UTC';

CREATE TABLE gin_ev (id int, tr traits);
INSERT INTO gin_ev
SELECT g, traits(jsonb_build_array(
        jsonb_build_array('host', 1, 'host-' || (g % 10)),
        jsonb_build_array('memory_mb', 2, (ARRAY[512, 1024, 2048, 4096, 8192])[1 + g % 5]),
        jsonb_build_array('load', 3, (g % 7) / 4.0),
        jsonb_build_array('launched_at', 4, to_char(timestamp '2024-01-01' + g * interval '1 hour', 'YYYY-MM-DD"T"HH24:MI:SS')),
        jsonb_build_array('mixed', CASE WHEN g % 2 = 0 THEN 1 ELSE 2 END, g % 3)))
FROM generate_series(1, 2000) g;
INSERT INTO gin_ev VALUES (0, '{}'), (-1, NULL),
    (-10, '{"edge":string="abcdefghijklmno"}'), (-11, '{"edge":string="abcdefghijklmnop"}'),
    (-12, '{"edge":string="abcdefghijklmnopA"}'), (-13, '{"edge":string="abcdefghijklmnopB"}'),
    (-14, '{"edge":string="abcdefghijklmnoq"}'), (-15, '{"edge":string="abcdefghijklmnopAB"}'),
    (-20, '{"edge8":string="abcdefg"}'), (-21, '{"edge8":string="abcdefgh"}'), (-22, '{"edge8":string="abcdefghA"}'),
    (-23, '{"edge8":string="abcdefghB"}'), (-24, '{"edge8":string="abcdefgi"}'), (-25, '{"edge8":string="abcdefghAB"}'),
    (-2, ('{"long":string="' || repeat('x', 600) || 'a"}')::traits),
    (-3, ('{"long":string="' || repeat('x', 600) || 'b"}')::traits),
    (-4, ('{"long":string="' || repeat('x', 512) || '"}')::traits),
    -- times around one minute (the index keys a datetime by its minute), and before 1970
    (-30, '{"edgetime":datetime="2024-05-05T10:20:00"}'), (-31, '{"edgetime":datetime="2024-05-05T10:20:00.000001"}'),
    (-32, '{"edgetime":datetime="2024-05-05T10:20:30"}'), (-33, '{"edgetime":datetime="2024-05-05T10:20:59.999999"}'),
    (-34, '{"edgetime":datetime="2024-05-05T10:21:00"}'), (-35, '{"edgetime":datetime="2024-05-05T10:19:59.999999"}'),
    (-36, '{"edgetime":datetime="1969-12-31T23:59:30"}'), (-37, '{"edgetime":datetime="1969-12-31T23:59:00"}'),
    (-38, '{"edgetime":datetime="1970-01-01T00:00:00"}'), (-39, '{"edgetime":datetime="1969-12-31T23:58:59.999999"}'),
    -- amounts (qty and price strings: the index keeps their first two bytes)
    (-40, '{"qty":string="5"}'), (-41, '{"qty":string="54"}'), (-42, '{"qty":string="54.1"}'),
    (-43, '{"qty":string="54.321"}'), (-44, '{"qty":string="55"}'), (-45, '{"qty":string="5.5"}'),
    (-46, '{"qty":string=""}'), (-47, '{"qty":string="540"}'), (-48, '{"qty":string="6"}'),
    (-49, '{"price":string="54.3", "qty":string="54.1"}'), (-50, '{"price":integer=54}'),
    (-51, '{"price":string="0.0000001"}'), (-52, '{"qtyx":string="54.321"}');
CREATE INDEX gin_ev_tr ON gin_ev USING gin (tr);
ANALYZE gin_ev;

-- Every filter, with and without the index: the same rows
CREATE TEMP TABLE queries (q traitquery);
INSERT INTO queries VALUES
    ('{"host":string = "host-3"}'), ('{"host":string <> "host-3"}'), ('{"host":string < "host-3"}'),
    ('{"host":string <= "host-3"}'), ('{"host":string > "host-3"}'), ('{"host":string >= "host-3"}'),
    ('{"memory_mb":integer = 4096}'), ('{"memory_mb":integer <> 4096}'), ('{"memory_mb":integer < 2048}'),
    ('{"memory_mb":integer <= 2048}'), ('{"memory_mb":integer > 2048}'), ('{"memory_mb":integer >= 4096}'),
    ('{"load":float = 0.5}'), ('{"load":float <> 0.5}'), ('{"load":float < 0.5}'), ('{"load":float <= 0.5}'),
    ('{"load":float > 1.25}'), ('{"load":float >= 1.25}'), ('{"load":float > -1}'),
    ('{"launched_at":datetime = "2024-01-02T00:00:00"}'), ('{"launched_at":datetime <> "2024-01-02T00:00:00"}'),
    ('{"launched_at":datetime < "2024-01-02T00:00:00"}'), ('{"launched_at":datetime <= "2024-01-02T00:00:00"}'),
    ('{"launched_at":datetime > "2024-03-01T00:00:00"}'), ('{"launched_at":datetime >= "2024-03-01T00:00:00"}'),
    ('{"mixed":string = "1"}'), ('{"mixed":integer = 1}'), ('{"mixed":integer >= 1, "memory_mb":integer = 512}'),
    ('{"host":string = "host-3", "memory_mb":integer > 1000, "load":float < 1}'),
    ('{"long":string >= "x"}'), ('{"nope":string = "x"}'), ('{"nope":integer > 0}');
-- strings around the bytes an index key keeps as they are (8), and at 16
INSERT INTO queries
SELECT format('{"edge":string %s "%s"}', op, bound)::traitquery
FROM (VALUES ('='), ('<>'), ('<'), ('<='), ('>'), ('>=')) o(op),
     (VALUES ('abcdefghijklmno'), ('abcdefghijklmnop'), ('abcdefghijklmnopA'), ('abcdefghijklmnopAB'),
             ('abcdefghijklmnopAA'), ('abcdefghijklmnopC'), ('abcdefghijklmnoo'), ('abcdefghijklmnor')) b(bound);
INSERT INTO queries
SELECT format('{"edge8":string %s "%s"}', op, bound)::traitquery
FROM (VALUES ('='), ('<>'), ('<'), ('<='), ('>'), ('>=')) o(op),
     (VALUES ('abcdefg'), ('abcdefgh'), ('abcdefghA'), ('abcdefghAB'), ('abcdefghAA'), ('abcdefghC'),
             ('abcdefgg'), ('abcdefgj')) b(bound);
INSERT INTO queries
SELECT format('{"edgetime":datetime %s "%s"}', op, bound)::traitquery
FROM (VALUES ('='), ('<>'), ('<'), ('<='), ('>'), ('>=')) o(op),
     (VALUES ('2024-05-05T10:20:00'), ('2024-05-05T10:20:30'), ('2024-05-05T10:20:15'),
             ('2024-05-05T10:20:59.999999'), ('2024-05-05T10:21:00'), ('2024-05-05T10:19:59.999999'),
             ('1969-12-31T23:59:30'), ('1969-12-31T23:59:59'), ('1969-12-31T23:59:00')) b(bound);
INSERT INTO queries
SELECT format('{"%s":string %s "%s"}', name, op, bound)::traitquery
FROM (VALUES ('qty'), ('price'), ('qtyx')) n(name),
     (VALUES ('='), ('<>'), ('<'), ('<='), ('>'), ('>=')) o(op),
     (VALUES (''), ('5'), ('54'), ('54.1'), ('54.2'), ('54.321'), ('54.4'), ('53.9'), ('55'), ('6'), ('0')) b(bound);
INSERT INTO queries VALUES ('{"price":integer = 54}'), ('{"price":integer >= 54}'), ('{"price":integer < 54}'),
    ('{"qty":string >= "54", "price":string < "6"}');
-- string bounds longer than the index keeps (recheck)
INSERT INTO queries
SELECT format('{"long":string %s "%s"}', op, bound)::traitquery
FROM (VALUES ('='), ('<>'), ('<'), ('<='), ('>'), ('>=')) o(op),
     (VALUES (repeat('x', 600) || 'a'), (repeat('x', 600) || 'b'), (repeat('x', 512)), (repeat('x', 511))) b(bound);

CREATE TEMP TABLE seq_results AS
SELECT q::text AS q, (SELECT coalesce(array_agg(id ORDER BY id), '{}') FROM gin_ev WHERE tr @@ queries.q) AS ids FROM queries;
SET enable_seqscan = off;
CREATE TEMP TABLE idx_results AS
SELECT q::text AS q, (SELECT coalesce(array_agg(id ORDER BY id), '{}') FROM gin_ev WHERE tr @@ queries.q) AS ids FROM queries;
SELECT left(s.q, 60) AS q, cardinality(s.ids) AS rows, s.ids = i.ids AS index_agrees
FROM seq_results s JOIN idx_results i USING (q) ORDER BY s.q;

-- The index answers them (no sequential scan of the events)
EXPLAIN (COSTS OFF) SELECT id FROM gin_ev WHERE tr @@ '{"memory_mb":integer >= 4096, "host":string = "host-1"}';
EXPLAIN (COSTS OFF) SELECT id FROM gin_ev WHERE tr @> '{"host":string="host-1"}';
EXPLAIN (COSTS OFF) SELECT id FROM gin_ev WHERE tr ? 'launched_at';

-- @> and ? agree with a scan too
SELECT (SELECT array_agg(id ORDER BY id) FROM gin_ev WHERE tr @> '{"edgetime":datetime="2024-05-05T10:20:30"}') AS contains_time_idx,
       (SELECT array_agg(id ORDER BY id) FROM gin_ev WHERE tr @> '{"edgetime":datetime="1969-12-31T23:59:30"}') AS contains_1969_idx;
SELECT (SELECT array_agg(id ORDER BY id) FROM gin_ev WHERE tr @> '{"qty":string="54.1"}') AS contains_qty_idx,
       (SELECT array_agg(id ORDER BY id) FROM gin_ev WHERE tr @> '{"qty":string="5"}') AS contains_short_qty_idx,
       (SELECT array_agg(id ORDER BY id) FROM gin_ev WHERE tr @> '{"price":string="54.3", "qty":string="54.1"}') AS contains_both_idx;
SELECT (SELECT count(*) FROM gin_ev WHERE tr @> '{"host":string="host-1", "memory_mb":integer=1024}') AS contains_idx,
       (SELECT count(*) FROM gin_ev WHERE tr ? 'long') AS exists_idx,
       (SELECT count(*) FROM gin_ev WHERE tr @> '{}') AS contains_empty;
RESET enable_seqscan;
SET enable_bitmapscan = off;
SELECT (SELECT array_agg(id ORDER BY id) FROM gin_ev WHERE tr @> '{"qty":string="54.1"}') AS contains_qty_seq,
       (SELECT array_agg(id ORDER BY id) FROM gin_ev WHERE tr @> '{"qty":string="5"}') AS contains_short_qty_seq,
       (SELECT array_agg(id ORDER BY id) FROM gin_ev WHERE tr @> '{"price":string="54.3", "qty":string="54.1"}') AS contains_both_seq;
RESET enable_bitmapscan;
SELECT (SELECT count(*) FROM gin_ev WHERE tr @> '{"host":string="host-1", "memory_mb":integer=1024}') AS contains_seq,
       (SELECT count(*) FROM gin_ev WHERE tr ? 'long') AS exists_seq,
       (SELECT count(*) FROM gin_ev WHERE tr @> '{}') AS contains_empty;

DROP TABLE gin_ev;
