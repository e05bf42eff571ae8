-- panko.record_events_text(text): the same outcomes and the same stored
-- events as record_events(jsonb) for every kind of event (the fast
-- Ceilometer shape and all that goes the jsonb way), the same errors for
-- malformed JSON (22P02), and the same error for a batch that is not an
-- array.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS panko;
RESET client_min_messages;
SET TimeZone = 'UTC';

-- One event stored before: both forms must report it as a duplicate.
SELECT count(*) FROM panko.record_events('[{"message_id": "txt-stored", "event_type": "compute.instance.create.end",
  "generated": "2026-11-20T10:00:00", "traits": [["host", 1, "h0"]]}]');

-- Runs one form on a batch and undoes it: what it returned, and what it stored.
CREATE FUNCTION pg_temp.run_form(form text, batch text, OUT outcomes text, OUT stored text, OUT err text)
LANGUAGE plpgsql AS $$
DECLARE
    detail text;
BEGIN
    BEGIN
        IF form = 'text' THEN
            SELECT string_agg(format('%s|%s|%s', r.message_id, r.status, r.detail), E'\n' ORDER BY r.detail, r.message_id)
              INTO outcomes FROM panko.record_events_text(batch) r;
        ELSE
            SELECT string_agg(format('%s|%s|%s', r.message_id, r.status, r.detail), E'\n' ORDER BY r.detail, r.message_id)
              INTO outcomes FROM panko.record_events(batch::jsonb) r;
        END IF;
        SELECT string_agg(format('%s %s %s %s %s %s', e.message_id, t.name, e.generated, e.traits, e.raw, e.retention),
                          E'\n' ORDER BY e.message_id)
          INTO stored FROM panko.event e JOIN panko.event_type t ON t.id = e.event_type_id
         WHERE e.message_id LIKE 'txt-%' AND e.message_id <> 'txt-stored';
        RAISE EXCEPTION 'undo' USING ERRCODE = 'P0099';
    EXCEPTION WHEN SQLSTATE 'P0099' THEN
        NULL;
    WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL;
        err := SQLSTATE || ' ' || SQLERRM || coalesce(' (' || nullif(detail, '') || ')', '');
    END;
END $$;

CREATE FUNCTION pg_temp.compare(batch text) RETURNS TABLE(same_outcomes boolean, same_stored boolean, same_error boolean,
                                                        outcomes text, err text)
LANGUAGE sql AS $$
    SELECT t.outcomes IS NOT DISTINCT FROM j.outcomes, t.stored IS NOT DISTINCT FROM j.stored,
           t.err IS NOT DISTINCT FROM j.err, t.outcomes, t.err
    FROM pg_temp.run_form('text', batch) t, pg_temp.run_form('jsonb', batch) j
$$;

-- Every kind of event in one batch.
\pset format unaligned
SELECT * FROM pg_temp.compare($batch$[
  {"message_id": "txt-1", "event_type": "compute.instance.create.end", "generated": "2026-11-20T10:00:01",
   "traits": [["instance_id", 1, "i-1"], ["memory_mb", 2, 512], ["ratio", 3, 0.25], ["launched_at", 4, "2026-11-20T09:00:00"],
              ["tenant_id", 1, 42], ["empty", 0, "x"], ["flavor", 1, "m1"], ["flavor", 1, "m2"]], "raw": {"a": [1, {"b": null}]}},
  {"message_id": "txt-2", "event_type": "osprofiler.trace", "generated": "2026-11-20T10:00:02.5Z", "traits": null, "raw": null},
  {"message_id": "txt-3", "event_type": "image.upload", "generated": "2026-11-20T10:00:03", "traits": []},
  {"message_id": "txt-esc\u00e9", "event_type": "image.upload", "generated": "2026-11-20T10:00:04", "traits": [["host", 1, "a\"b"]]},
  {"message_id": "txt-dupkey", "message_id": "txt-dupkey2", "event_type": "image.upload", "generated": "2026-11-20T10:00:05"},
  {"message_id": "txt-api", "event_type": "image.upload", "generated": "2026-11-20T10:00:06",
   "traits": [{"name": "state", "type": "string", "value": "active"}, {"name": "size", "type": "integer", "value": "7"}]},
  {"message_id": "txt-plain", "event_type": "image.upload", "generated": "2026-11-20T10:00:07", "traits": {"state": "x", "n": 5, "f": 1.5}},
  {"message_id": "txt-numbers", "event_type": "image.upload", "generated": "2026-11-20T10:00:08",
   "traits": [["big", 2, 1e3], ["neg", 2, -0], ["fl", 3, 2.50], ["s", 1, -0], ["s2", 1, 1.0], ["i", 2, 5.0], ["t", "integer", 3]]},
  {"message_id": "txt-1", "event_type": "image.upload", "generated": "2026-11-20T10:00:09"},
  {"message_id": "txt-stored", "event_type": "image.upload", "generated": "2026-11-20T10:00:10"},
  {"message_id": "txt-unknown", "event_type": "image.upload", "generated": "2026-11-20T10:00:11", "extra": 1},
  {"message_id": "txt-nogen", "event_type": "image.upload"},
  {"event_type": "image.upload", "generated": "2026-11-20T10:00:12"},
  {"message_id": "", "event_type": "image.upload", "generated": "2026-11-20T10:00:13"},
  {"message_id": "txt-badts", "event_type": "image.upload", "generated": "yesterday"},
  {"message_id": "txt-badtrait", "event_type": "image.upload", "generated": "2026-11-20T10:00:14", "traits": [["n", 2, "x"]]},
  {"message_id": "txt-badtype", "event_type": "image.upload", "generated": "2026-11-20T10:00:15", "traits": [["n", 7, 1]]},
  {"message_id": "txt-short", "event_type": "image.upload", "generated": "2026-11-20T10:00:16", "traits": [["n", 1]]},
  {"message_id": 5, "event_type": "image.upload", "generated": "2026-11-20T10:00:17"},
  {"message_id": "txt-ws" ,  "event_type" : "image.upload" , "generated":"2026-11-20T10:00:18" , "traits" : [ [ "h" , 1 , "v" ] ] },
  {},
  [1, 2],
  "an event",
  7,
  null
]$batch$);

-- Malformed JSON: 22P02, the very error of the jsonb form.
SELECT * FROM pg_temp.compare('[{"message_id": "txt-x"');
SELECT * FROM pg_temp.compare('[{"message_id": "txt-x",}]');
SELECT * FROM pg_temp.compare('[1 2]');
SELECT * FROM pg_temp.compare('[] x');
SELECT * FROM pg_temp.compare('');
-- Malformed JSON inside events the fast scanner reads: it checks every
-- byte itself until the lexer has checked the text, so each is the jsonb
-- form's 22P02 too (a control character in a string, JSON's numbers, a
-- stray or missing separator, an unterminated text, a bad raw body).
SELECT * FROM pg_temp.compare(E'[{"message_id": "txt-\tx", "event_type": "a", "generated": "2026-11-20T10:00:00"}]');
SELECT * FROM pg_temp.compare('[{"message_id": "txt-n", "event_type": "a", "generated": "2026-11-20T10:00:00", "traits": [["n", 2, 012]]}]');
SELECT * FROM pg_temp.compare('[{"message_id": "txt-n", "event_type": "a", "generated": "2026-11-20T10:00:00", "traits": [["f", 3, 1.]]}]');
SELECT * FROM pg_temp.compare('[{"message_id": "txt-n", "event_type": "a", "generated": "2026-11-20T10:00:00", "traits": [["f", 3, -]]}]');
SELECT * FROM pg_temp.compare('[{"message_id": "txt-n", "event_type": "a", "generated": "2026-11-20T10:00:00", "traits": [["f", 3, 1.5.3]]}]');
SELECT * FROM pg_temp.compare('[{"message_id": "txt-n", "event_type": "a", "generated": "2026-11-20T10:00:00", "traits": nullx}]');
SELECT * FROM pg_temp.compare('[{"message_id": "txt-a", "event_type": "a", "generated": "2026-11-20T10:00:00"} {"message_id": "txt-b", "event_type": "a", "generated": "2026-11-20T10:00:00"}]');
SELECT * FROM pg_temp.compare('[{"message_id": "txt-a", "event_type": "a", "generated": "2026-11-20T10:00:00"},]');
SELECT * FROM pg_temp.compare('[{"message_id": "txt-a", "event_type": "a", "generated": "2026-11-20T10:00:00"}] x');
SELECT * FROM pg_temp.compare('[{"message_id": "txt-a", "event_type": "a", "generated": "2026-11-20T10:00:00"}');
SELECT * FROM pg_temp.compare('[{"message_id": "txt-a", "event_type": "a", "generated": "2026-11-20T10:00:00"},');
SELECT * FROM pg_temp.compare('[{"message_id": "txt-a", "event_type": "a", "generated": "2026-11-20T10:00:00", "raw": {"a": tru}}]');
SELECT * FROM pg_temp.compare('[{"message_id": "txt-a", "event_type": "a", "generated": "2026-11-20T10:00:00", "raw": {"a": "\');
SELECT * FROM pg_temp.compare('[{"message_id": "txt-a", "event_type": "a", "generated": "2026-11-20T10:00:00", "raw": { }}] ,');
SELECT * FROM pg_temp.compare('[{"message_id": "txt-a", "event_type": "a", "generated": "2026-11-20T10:00:00", "traits": [["h", 1, "v"],]}]');
SELECT * FROM pg_temp.compare('[{"message_id": "txt-a", "event_type": "a", "generated": "2026-11-20T10:00:00", "traits": [["h", 1, "v"]');
-- The same events, valid: stored by both forms alike.
SELECT * FROM pg_temp.compare(E'[ {"message_id": "txt-a", "event_type": "a", "generated": "2026-11-20T10:00:00", "raw": { \n }} ,\r\n'
  '{"message_id": "txt-b", "event_type": "a", "generated": "2026-11-20T10:00:00", "traits": [["n", 2, 0], ["f", 3, -0.5], ["z", 3, 0.0]], "raw": {"a": [true]}} ]  ');
-- An escape jsonb does not take (22P05), and a bad one (22P02).
SELECT * FROM pg_temp.compare('[{"message_id": "txt-\u0000", "event_type": "a", "generated": "2026-11-20T10:00:00"}]');
SELECT * FROM pg_temp.compare('[{"message_id": "txt-\x", "event_type": "a", "generated": "2026-11-20T10:00:00"}]');
-- Not an array.
SELECT * FROM pg_temp.compare('{"message_id": "txt-x"}');
SELECT * FROM pg_temp.compare('"x"');
-- Empty batch.
SELECT * FROM pg_temp.compare('[]');
\pset format aligned

-- The error itself, from the text form.
SELECT count(*) FROM panko.record_events_text('[{"message_id": "txt-x",}]');
-- STRICT: NULL stores nothing.
SELECT count(*) FROM panko.record_events_text(NULL);

-- Every prefix of a batch of the fast shape, and the batch with one byte
-- replaced by each of a few JSON metacharacters at every position: the
-- text form and the jsonb form agree on every one (the same outcomes, the
-- same stored rows, the same error with its detail).
CREATE TEMP TABLE fuzz_case AS
WITH b(batch) AS (VALUES ('[{"message_id": "txt-f1", "event_type": "a.b", "generated": "2026-11-20T10:00:00", '
                         '"traits": [["h", 1, "v1"], ["n", 2, -12], ["f", 3, 0.5], ["t", 4, "2026-11-20T09:00:00"]], "raw": {}},'
                         ' {"message_id": "txt-f2", "event_type": "a.b", "generated": "2026-11-20T10:00:01", "traits": null, "raw": null}]'))
SELECT 'prefix ' || n AS name, left(batch, n) AS batch FROM b, generate_series(0, length(batch) - 1) n
UNION ALL
SELECT format('byte %s -> %s', n, c), overlay(batch PLACING c FROM n FOR 1)
  FROM b, generate_series(1, length(b.batch)) n, unnest(ARRAY[',', ']', '}', '"', '0', '.', '-', ' ', 'x', E'\t']) c
 WHERE substr(batch, n, 1) <> c;
SELECT count(*) > 1000 AS many_cases,
       count(*) FILTER (WHERE NOT (r.same_outcomes AND r.same_stored AND r.same_error)) AS disagreements,
       count(*) FILTER (WHERE r.err IS NULL) > 20 AS some_stored,
       count(*) FILTER (WHERE r.err LIKE '22P02 %') > 500 AS many_malformed
  FROM fuzz_case f, pg_temp.compare(f.batch) r;
SELECT f.name, r.* FROM fuzz_case f, pg_temp.compare(f.batch) r
 WHERE NOT (r.same_outcomes AND r.same_stored AND r.same_error) ORDER BY f.name LIMIT 5;

-- A batch the text form stores for good: in the store, found by its traits.
SELECT count(*) FROM panko.record_events_text('[{"message_id": "txt-kept", "event_type": "compute.instance.create.end",
  "generated": "2026-11-20T11:00:00", "traits": [["instance_id", 1, "i-kept"], ["memory_mb", 2, 4096]]}]');
SELECT message_id FROM panko.get_events('{"traits_filter": [{"key": "instance_id", "string": "i-kept"}]}');
SELECT message_id FROM panko.get_events('{"traits_filter": [{"key": "memory_mb", "integer": 4096, "op": "eq"}]}');
SELECT count(*) FROM panko.record_events_text('[{"message_id": "txt-kept", "event_type": "compute.instance.create.end",
  "generated": "2026-11-20T11:00:00"}]');

-- A large batch is stored without an INSERT statement (table_multi_insert,
-- the GIN indexes in bulk: event_input.c, 64 events or more); a small one
-- through INSERT.  The same 300 events (four classes, eight days, a copy
-- inside the batch) stored either way must give the same outcomes, the
-- same rows, and the same answers from each GIN index.
CREATE FUNCTION pg_temp.big_batch(lo int, hi int) RETURNS text LANGUAGE sql AS $$
    SELECT json_agg(json_build_object(
        'message_id', 'big-' || CASE WHEN i = 150 THEN 10 ELSE i END,
        'event_type', (ARRAY['compute.instance.update', 'osprofiler.start', 'cloudkitty.rated', 'image.upload'])[1 + i % 4],
        'generated', to_char(timestamptz '2026-11-18 00:00:00+00' + i * interval '37 minutes', 'YYYY-MM-DD"T"HH24:MI:SS'),
        'traits', json_build_array(json_build_array('instance_id', 1, 'inst-' || (i / 7)),
                                   json_build_array('memory_mb', 2, 512 * (1 + i % 5)),
                                   json_build_array('host', 1, 'h' || (i % 9))),
        'raw', json_build_object('i', i)) ORDER BY i)::text
    FROM generate_series(lo, hi) i
$$;
CREATE FUNCTION pg_temp.store_big(batches int, OUT outcomes text, OUT stored text, OUT answers text)
LANGUAGE plpgsql AS $$
DECLARE
    size int := 300 / batches;
BEGIN
    BEGIN
        outcomes := '';
        FOR b IN 0 .. batches - 1 LOOP
            outcomes := outcomes || coalesce((SELECT string_agg(format('%s|%s', r.message_id, r.status), ',' ORDER BY r.message_id)
                                                FROM panko.record_events_text(pg_temp.big_batch(b * size, b * size + size - 1)) r), '');
        END LOOP;
        SELECT string_agg(format('%s %s %s %s %s %s', e.message_id, t.name, e.generated, e.traits, e.raw, e.retention),
                          E'\n' ORDER BY e.message_id)
          INTO stored FROM panko.event e JOIN panko.event_type t ON t.id = e.event_type_id
         WHERE e.message_id LIKE 'big-%';
        SET LOCAL enable_seqscan = off;
        SET LOCAL enable_indexscan = off;
        SELECT string_agg(format('%s=%s', l, (SELECT count(*) FROM panko.event e
                                               WHERE e.traits OPERATOR(panko.@@) panko.traitquery(k::jsonb))), ' ' ORDER BY l)
          INTO answers
          FROM (SELECT 'h' || h, format('[{"key": "host", "op": "eq", "type": "string", "value": "h%s"}]', h)
                  FROM generate_series(0, 8) h
                UNION ALL SELECT 'inst-5', '[{"key": "instance_id", "op": "eq", "type": "string", "value": "inst-5"}]'
                UNION ALL SELECT 'mem>=2048', '[{"key": "memory_mb", "op": "ge", "type": "integer", "value": 2048}]') q(l, k);
        RAISE EXCEPTION 'undo' USING ERRCODE = 'P0099';
    EXCEPTION WHEN SQLSTATE 'P0099' THEN
        NULL;
    END;
END $$;
SELECT w.outcomes = n.outcomes AS same_outcomes, w.outcomes AS outcomes,
       w.stored = n.stored AS same_rows, length(w.stored) > 0 AS stored_some,
       w.answers = n.answers AS same_index_answers, w.answers AS answers
  FROM pg_temp.store_big(1) w, pg_temp.store_big(6) n;

-- The registry claims a large batch's message_ids with a plain INSERT, and
-- when some hash is already there, with ON CONFLICT instead
-- (event_input.c, ClaimAllPlain): an id stored before is a duplicate, an
-- id whose event is gone (as if expired: its registry row stays) is stored
-- again, and every other id of the batch is stored once, and registered.
SELECT count(*) FROM panko.record_events_text(pg_temp.big_batch(320, 320));
SELECT count(*) FROM panko.record_events_text(pg_temp.big_batch(321, 321));
DELETE FROM panko.event WHERE message_id = 'big-321';
SELECT message_id, status FROM panko.record_events_text(pg_temp.big_batch(300, 399));
SELECT count(*) AS stored, count(DISTINCT message_id) AS distinct_ids
  FROM panko.event WHERE message_id IN (SELECT 'big-' || i FROM generate_series(300, 399) i);
SELECT count(*) AS registered FROM panko.event_message
 WHERE id_hash IN (SELECT panko.message_id_hash('big-' || i) FROM generate_series(300, 399) i);
-- New ids only: all claimed by the plain INSERT.
SELECT count(*) FROM panko.record_events_text(pg_temp.big_batch(400, 499));
SELECT count(*) AS stored FROM panko.event WHERE message_id IN (SELECT 'big-' || i FROM generate_series(400, 499) i);
SELECT count(*) AS registered FROM panko.event_message
 WHERE id_hash IN (SELECT panko.message_id_hash('big-' || i) FROM generate_series(400, 499) i);
-- The same batch again: all duplicates, nothing stored twice.
SELECT status, count(*) FROM panko.record_events_text(pg_temp.big_batch(400, 499)) GROUP BY status;
SELECT count(*) AS stored FROM panko.event WHERE message_id IN (SELECT 'big-' || i FROM generate_series(400, 499) i);

-- A large batch of wide events (40 traits each: more keys than the GIN
-- accumulator is first sized for, so it grows while the batch is stored):
-- the GIN index must answer for every key as a scan of the rows does.
SELECT count(*) FROM panko.record_events_text((
    SELECT json_agg(json_build_object(
        'message_id', 'wide-' || i, 'event_type', 'compute.instance.update',
        'generated', to_char(timestamptz '2026-11-19 00:00:00+00' + i * interval '1 minute', 'YYYY-MM-DD"T"HH24:MI:SS'),
        'traits', (SELECT json_agg(json_build_array('w' || k, 1, 'v' || (i % 7) || '_' || k)) FROM generate_series(1, 40) k)))::text
    FROM generate_series(1, 120) i));
CREATE FUNCTION pg_temp.wide_counts(by_index boolean) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    out text;
BEGIN
    IF by_index THEN
        SET LOCAL enable_seqscan = off;
        SET LOCAL enable_indexscan = off;
    ELSE
        SET LOCAL enable_bitmapscan = off;
        SET LOCAL enable_indexscan = off;
    END IF;
    SELECT string_agg(format('w%s=v%s:%s', k, v, (SELECT count(*) FROM panko.event e
                                           WHERE e.traits OPERATOR(panko.@@) panko.traitquery(
                                               jsonb_build_array(jsonb_build_object('key', 'w' || k, 'op', 'eq', 'type', 'string',
                                                                                    'value', 'v' || v || '_' || k))))), ' ' ORDER BY k, v)
      INTO out FROM generate_series(1, 40, 13) k, generate_series(0, 6, 3) v;
    RETURN out;
END $$;
SELECT pg_temp.wide_counts(true) = pg_temp.wide_counts(false) AS same_answers, pg_temp.wide_counts(true) AS answers;

-- A loader that stores many large batches before it commits: each plain
-- claim takes a subtransaction, so past 64 of them (what a backend's
-- snapshot cache of subtransactions holds) the batches claim with ON
-- CONFLICT instead.  Both ways store every batch, and a repeat after the
-- switch is still a duplicate.  (PostgreSQL 15 shows no backend's count of
-- subtransactions, so only the outcome is checked.)
BEGIN;
DO $$
BEGIN
    FOR b IN 1 .. 70 LOOP
        IF EXISTS (SELECT FROM panko.record_events_text((
                SELECT json_agg(json_build_object(
                    'message_id', format('loader-%s-%s', b, i), 'event_type', 'compute.instance.update',
                    'generated', to_char(timestamptz '2026-11-18 00:00:00+00' + (b * 100 + i) * interval '1 second',
                                         'YYYY-MM-DD"T"HH24:MI:SS'),
                    'traits', json_build_array(json_build_array('batch', 2, b))))::text
                  FROM generate_series(1, 100) i))) THEN
            RAISE EXCEPTION 'batch % was not stored in full', b;
        END IF;
    END LOOP;
END $$;
SELECT status, count(*) FROM panko.record_events_text((
    SELECT json_agg(json_build_object(
        'message_id', format('loader-70-%s', i), 'event_type', 'compute.instance.update',
        'generated', to_char(timestamptz '2026-11-18 00:00:00+00' + (7000 + i) * interval '1 second', 'YYYY-MM-DD"T"HH24:MI:SS'),
        'traits', json_build_array(json_build_array('batch', 2, 70))))::text
      FROM generate_series(1, 100) i)) GROUP BY 1;
COMMIT;
SELECT count(*) AS loader_events, count(DISTINCT message_id) AS distinct_ids
  FROM panko.event WHERE message_id LIKE 'loader-%';
