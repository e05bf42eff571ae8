-- Operators as a psql user types them, and panko's own SQL under a hostile
-- search_path.
--
-- panko's objects live in schema panko; PostgreSQL finds an operator only
-- in a schema on the search_path (or written as OPERATOR(panko.?)).  make
-- demo and the README put panko on the database's search_path, as PostGIS
-- users do for a postgis schema:
--   ALTER DATABASE d SET search_path = "$user", public, panko;
--   ALTER ROLE r SET search_path = "$user", public, panko;
SET client_min_messages = warning;
SHOW search_path;
-- Without panko on the search_path the operator is not found.
SELECT count(*) FROM panko.events WHERE traits ? 'trait_A';

-- With it (set for the database, as make demo does), it works as typed.
ALTER DATABASE contrib_regression SET search_path = "$user", public, panko;
\c
SET client_min_messages = warning;
SHOW search_path;
BEGIN;
SELECT count(*) AS not_stored FROM panko.record_events('[
  {"message_id": "sp-1", "event_type": "search_path.test", "generated": "2024-05-01T10:00:00",
   "traits": [{"name": "trait_A", "type": "string", "value": "a"}, {"name": "memory_mb", "type": "integer", "value": "4096"}]},
  {"message_id": "sp-2", "event_type": "search_path.test", "generated": "2024-05-01T11:00:00",
   "traits": [{"name": "trait_B", "type": "string", "value": "b"}, {"name": "memory_mb", "type": "integer", "value": "512"}]}]');
SELECT count(*) FROM panko.events WHERE traits ? 'trait_A' AND event_type = 'search_path.test';
SELECT message_id FROM panko.events WHERE traits @> '{"trait_B":string="b"}' AND event_type = 'search_path.test';
SELECT message_id FROM panko.events WHERE traits @@ '{"memory_mb":integer >= 1024}' AND event_type = 'search_path.test';
SELECT message_id, traits -> 'memory_mb' AS memory_mb FROM panko.events WHERE event_type = 'search_path.test' ORDER BY 1;

-- A hostile search_path: a schema of the caller's, searched first, whose
-- operators and functions would change every comparison.  panko's
-- functions pin their own search_path and qualify their operators, so
-- their answers do not change.
CREATE SCHEMA hostile;
CREATE FUNCTION hostile.texteq_always(text, text) RETURNS boolean LANGUAGE sql AS 'SELECT true';
CREATE OPERATOR hostile.= (LEFTARG = text, RIGHTARG = text, FUNCTION = hostile.texteq_always);
CREATE FUNCTION hostile.now() RETURNS timestamptz LANGUAGE sql AS $$SELECT '1999-01-01'::timestamptz$$;
CREATE TABLE hostile.event (generated timestamptz, event_type_id int, message_id text, traits panko.traits, raw jsonb);
CREATE TABLE hostile.partition (name text, lower_bound timestamptz, upper_bound timestamptz);
SET LOCAL search_path = hostile, pg_catalog, panko;
SELECT message_id FROM panko.get_events('{"message_id": "sp-2"}');
SELECT message_id FROM panko.get_events('{"event_type": "search_path.test", "traits_filter": [{"key": "trait_A", "op": "eq", "string": "a"}]}');
SELECT message_id, status FROM panko.record_events('[
  {"message_id": "sp-1", "event_type": "search_path.test", "generated": "2024-05-01T10:00:00", "traits": []},
  {"message_id": "sp-3", "event_type": "search_path.test", "generated": "2024-05-01T12:00:00", "traits": []}]');
SELECT panko.event_types() AS t INTERSECT SELECT 'search_path.test';
SELECT name, type FROM panko.trait_types('search_path.test');
ROLLBACK;

ALTER DATABASE contrib_regression RESET search_path;
