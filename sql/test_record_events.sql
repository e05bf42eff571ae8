-- panko.record_events: both input forms, duplicates, rejections, partitions
-- A store of its own: start from a fresh extension
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS panko CASCADE;
CREATE EXTENSION panko;
RESET client_min_messages;
SET search_path = public, panko;
SET TimeZone = 'UTC';

-- The Panko API form and the Ceilometer publisher form, in one batch
SELECT * FROM record_events('[
  {"message_id": "api-1", "event_type": "compute.instance.create.end", "generated": "2020-03-01T10:00:00.123456",
   "traits": [{"name": "project_id", "type": "string", "value": "p1"},
              {"name": "memory_mb", "type": "integer", "value": "512"},
              {"name": "ratio", "type": "float", "value": "0.25"},
              {"name": "launched_at", "type": "datetime", "value": "2020-03-01T09:59:00"}],
   "raw": {"payload": {"state": "active"}}},
  {"message_id": "ceilo-1", "event_type": "volume.attach.end", "generated": "2020-03-01T11:00:00",
   "traits": [["service", 1, "volume"], ["project_id", 1, "p2"], ["size", 2, 10],
              ["ratio", 3, 1.5], ["attached_at", 4, "2020-03-01T10:59:59.5"], ["nothing", 0, null]],
   "raw": {}},
  {"message_id": "bare-1", "event_type": "identity.authenticate", "generated": "2020-03-01T12:00:00+02:00"},
  {"message_id": "nullraw-1", "event_type": "identity.authenticate", "generated": "2020-03-02", "traits": [], "raw": null}
]'::jsonb);

SELECT message_id, event_type, generated, traits, raw FROM panko.events ORDER BY generated, message_id;

-- One row per event NOT stored; the rest of the batch is stored
SELECT * FROM record_events('[
  {"message_id": "ok-1", "event_type": "x", "generated": "2020-03-03T00:00:00"},
  5,
  ["not", "an", "object"],
  {"event_type": "x", "generated": "2020-03-03T00:00:00"},
  {"message_id": "no-type", "generated": "2020-03-03T00:00:00"},
  {"message_id": "no-generated", "event_type": "x"},
  {"message_id": "bad-ts", "event_type": "x", "generated": "2020-03-32T00:00:00"},
  {"message_id": "num-ts", "event_type": "x", "generated": 1583193600},
  {"message_id": "bad-type", "event_type": "x", "generated": "2020-03-03T00:00:00", "traits": [["a", 7, "x"]]},
  {"message_id": "bad-int", "event_type": "x", "generated": "2020-03-03T00:00:00", "traits": [["a", 2, "twelve"]]},
  {"message_id": "bad-traits", "event_type": "x", "generated": "2020-03-03T00:00:00", "traits": "a=b"},
  {"message_id": "extra", "event_type": "x", "generated": "2020-03-03T00:00:00", "colour": "red"},
  {"message_id": 42, "event_type": "x", "generated": "2020-03-03T00:00:00"},
  {"message_id": "", "event_type": "x", "generated": "2020-03-03T00:00:00"},
  {"message_id": "empty-type", "event_type": "", "generated": "2020-03-03T00:00:00"},
  {"message_id": "ok-2", "event_type": "x", "generated": "2020-03-03T00:00:01", "traits": {"plain": "object", "n": 3}}
]'::jsonb);
SELECT message_id, traits FROM panko.events WHERE event_type = 'x' ORDER BY message_id;

-- Limits: message_id and event_type up to 255 bytes
SELECT message_id IS NULL AS no_id, status, detail FROM record_events(jsonb_build_array(
  jsonb_build_object('message_id', repeat('m', 256), 'event_type', 'x', 'generated', '2020-03-03T00:00:00'),
  jsonb_build_object('message_id', 'long-type', 'event_type', repeat('t', 256), 'generated', '2020-03-03T00:00:00')));
SELECT count(*) FROM record_events(jsonb_build_array(
  jsonb_build_object('message_id', repeat('m', 255), 'event_type', repeat('t', 255), 'generated', '2020-03-03T00:00:00')));

-- Duplicates: inside the batch (the first copy wins), against stored events,
-- and across partitions (same message_id, another day)
SELECT * FROM record_events('[
  {"message_id": "dup-1", "event_type": "x", "generated": "2020-03-04T00:00:00", "traits": [["copy", 2, 1]]},
  {"message_id": "dup-1", "event_type": "x", "generated": "2020-03-04T00:00:00", "traits": [["copy", 2, 2]]},
  {"message_id": "api-1", "event_type": "x", "generated": "2020-03-01T10:00:00.123456"},
  {"message_id": "ceilo-1", "event_type": "x", "generated": "2023-07-01T00:00:00"}
]'::jsonb);
SELECT message_id, traits FROM panko.events WHERE message_id IN ('dup-1', 'ceilo-1') ORDER BY 1;
SELECT count(*) AS events, count(DISTINCT message_id) AS ids FROM panko.event;

-- A whole batch that is not an array is an error (nothing is stored)
SELECT * FROM record_events('{"message_id": "x"}'::jsonb);
SELECT * FROM record_events('"events"'::jsonb);
SELECT * FROM record_events('[]'::jsonb);

-- Ingest never fails for lack of a partition: timestamps more than 400 days
-- from now share one catch-all partition below and one above; timestamps
-- near now get panko.partition_interval wide ones
SELECT count(*) FROM record_events('[
  {"message_id": "far-past", "event_type": "x", "generated": "0001-01-01T00:00:00"},
  {"message_id": "epoch", "event_type": "x", "generated": "1970-06-15T12:00:00"},
  {"message_id": "far-future", "event_type": "x", "generated": "9999-12-31T23:59:59.999999"}
]'::jsonb);
SELECT message_id, generated FROM panko.events WHERE message_id IN ('far-past', 'epoch', 'far-future') ORDER BY generated;
SELECT e.message_id, p.lower_bound = '-infinity' AS open_below, p.upper_bound = 'infinity' AS open_above
  FROM panko.events e JOIN panko.partition p ON e.generated >= p.lower_bound AND e.generated < p.upper_bound
 WHERE e.message_id IN ('far-past', 'epoch', 'far-future', 'api-1') ORDER BY e.generated;
-- a thousand distinct years in one batch add no partition
SELECT count(*) AS partitions_before FROM panko.partition \gset
SELECT count(*) FROM record_events((
    SELECT jsonb_agg(jsonb_build_object('message_id', 'year-' || y, 'event_type', 'x',
                                        'generated', lpad(y::text, 4, '0') || '-06-01T00:00:00'))
    FROM generate_series(1000, 1999) y));
SELECT count(*) - :partitions_before AS partitions_added FROM panko.partition;

SELECT count(*) FROM record_events(jsonb_build_array(
  jsonb_build_object('message_id', 'now-1', 'event_type', 'x', 'generated', iso_timestamp(now()))));
SELECT p.upper_bound - p.lower_bound AS width
  FROM panko.partition p
 WHERE now() >= p.lower_bound AND now() < p.upper_bound;

-- A narrower interval applies to partitions made afterwards; they fit
-- between the partitions that exist
SET panko.partition_interval = '1h';
SELECT count(*) FROM record_events(jsonb_build_array(
  jsonb_build_object('message_id', 'soon-1', 'event_type', 'x', 'generated', iso_timestamp(now() + interval '3 days'))));
SELECT p.upper_bound - p.lower_bound AS width
  FROM panko.partition p
 WHERE now() + interval '3 days' >= p.lower_bound AND now() + interval '3 days' < p.upper_bound;
RESET panko.partition_interval;
SELECT count(*) AS overlapping_partitions
  FROM panko.partition a JOIN panko.partition b ON a.name < b.name
 WHERE a.lower_bound < b.upper_bound AND b.lower_bound < a.upper_bound;

-- Every stored event is registered, no older than it is; every partition is attached
SELECT bool_and(EXISTS (SELECT 1 FROM panko.event_message r
                         WHERE r.id_hash = panko.message_id_hash(e.message_id) AND r.generated >= e.generated))
       AS every_event_registered FROM panko.event e;

-- A registry hit is checked against the events: a leftover hash (an
-- expired event, or another id with the same hash) does not make a duplicate
INSERT INTO panko.event_message VALUES (panko.message_id_hash('left-over'), '2000-01-01');
SELECT * FROM record_events('[{"message_id": "left-over", "event_type": "x", "generated": "2020-03-05T00:00:00"}]'::jsonb);
SELECT message_id FROM panko.events WHERE message_id = 'left-over';
SELECT generated FROM panko.event_message WHERE id_hash = panko.message_id_hash('left-over');
SELECT * FROM record_events('[{"message_id": "left-over", "event_type": "x", "generated": "2020-03-06T00:00:00"}]'::jsonb);
SELECT count(*) = (SELECT count(*) FROM panko.partition) AS partitions_attached
  FROM pg_inherits WHERE inhparent = 'panko.event'::regclass;

-- The per-partition counts (kept for expiry) match the partitions
SELECT count(*) AS partitions_with_events,
       bool_and(r.total = (SELECT count(*) FROM panko.event e WHERE e.tableoid = c.oid)) AS counts_exact
  FROM (SELECT partition, sum(n) AS total FROM panko.partition_rows GROUP BY partition) r
  JOIN pg_class c ON c.relname = r.partition AND c.relnamespace = 'panko'::regnamespace
 WHERE r.total <> 0;
SELECT (SELECT coalesce(sum(n), 0) FROM panko.partition_rows) = (SELECT count(*) FROM panko.event) AS total_exact;
