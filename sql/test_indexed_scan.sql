-- get_events reading partitions through their GIN index without a plan
-- (event_scan.c, panko.indexed_scan): the same pages as the kept plans for
-- every caller, filter, order and limit, as rows and as the API's JSON;
-- the kept plan again wherever a table's row-level security is not
-- exactly panko.event's own policy.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS panko;
RESET client_min_messages;
SET TimeZone = 'UTC';
SET track_functions = 'all';

-- 600 events over 7 days: 13 instances, 2 projects, 3 users (names of
-- their own: the regression database holds other tests' events too).
SELECT count(*) AS not_stored FROM panko.record_events((
    SELECT jsonb_agg(jsonb_build_object(
               'message_id', 'ix-' || lpad(i::text, 3, '0'),
               'event_type', (ARRAY['ix.instance.update', 'ix.image.upload'])[1 + i % 2],
               'generated', panko.iso_timestamp(timestamptz '2026-11-20 00:00+00' + (i / 3) * interval '50 minutes'),
               'traits', jsonb_build_array(jsonb_build_array('instance_id', 1, 'ixi-' || (i % 13)),
                                           jsonb_build_array('project_id', 1, 'ixP' || (i % 2)),
                                           jsonb_build_array('user_id', 1, 'ixU' || (i % 3)),
                                           jsonb_build_array('ixn', 2, i % 7))))
      FROM generate_series(1, 600) i));
-- One day also holds a trace (OSProfiler's class): two tables, read both.
SELECT count(*) AS not_stored FROM panko.record_events('[{"message_id": "ix-trace", "event_type": "osprofiler.ix",
  "generated": "2026-11-21T06:00:00", "traits": [["instance_id", 1, "ixi-3"], ["project_id", 1, "ixP0"], ["user_id", 1, "ixU0"]]}]');
SELECT count(*) AS tables_of_that_day FROM pg_inherits
 WHERE inhparent = (SELECT tableoid FROM panko.event WHERE message_id = 'ix-trace')::regclass::text::regclass
    OR inhparent = (SELECT i.inhparent FROM pg_inherits i WHERE i.inhrelid = (SELECT tableoid FROM panko.event WHERE message_id = 'ix-trace'));
ANALYZE panko.event;

-- A page both ways: its rows in order (same_rows), and the same rows with
-- raw as JSON (same_json), each with panko.indexed_scan on and off; and
-- how often the executor evaluated the policy function (track_functions
-- counts the executor's calls of it; event_scan.c calls it directly, so 0
-- means no partition took a plan).
CREATE FUNCTION pg_temp.page(filter jsonb, lim int, sort text[], OUT same_rows boolean, OUT same_json boolean,
                             OUT nrows int, OUT policy_calls_plan bigint, OUT policy_calls_indexed bigint)
LANGUAGE plpgsql AS $$
DECLARE
    a text; b text; ja text; jb text; c0 bigint; c1 bigint; c2 bigint;
    api jsonb := jsonb_build_object('limit', lim) || CASE WHEN sort IS NULL THEN '{}' ELSE jsonb_build_object('sort', sort) END;
BEGIN
    PERFORM set_config('enable_indexscan', 'off', true);	-- every partition through the GIN index
    c0 := coalesce(pg_stat_get_xact_function_calls('panko.event_visible'::regproc), 0);
    PERFORM set_config('panko.indexed_scan', 'off', true);
    SELECT string_agg(format('%s|%s|%s|%s', message_id, event_type, generated, traits), E'\n' ORDER BY n)
      INTO a FROM panko.get_events(filter, lim, sort) WITH ORDINALITY AS g(message_id, event_type, generated, traits, raw, n);
    c1 := coalesce(pg_stat_get_xact_function_calls('panko.event_visible'::regproc), 0);
    PERFORM set_config('panko.indexed_scan', 'on', true);
    SELECT string_agg(format('%s|%s|%s|%s', message_id, event_type, generated, traits), E'\n' ORDER BY n)
      INTO b FROM panko.get_events(filter, lim, sort) WITH ORDINALITY AS g(message_id, event_type, generated, traits, raw, n);
    c2 := coalesce(pg_stat_get_xact_function_calls('panko.event_visible'::regproc), 0);
    -- the rows again, raw included, as JSON (the API's own sink: pg_temp.api)
    PERFORM set_config('panko.indexed_scan', 'off', true);
    SELECT json_agg(g ORDER BY n)::text INTO ja
      FROM panko.get_events(filter, lim, sort) WITH ORDINALITY AS g(message_id, event_type, generated, traits, raw, n);
    PERFORM set_config('panko.indexed_scan', 'on', true);
    SELECT json_agg(g ORDER BY n)::text INTO jb
      FROM panko.get_events(filter, lim, sort) WITH ORDINALITY AS g(message_id, event_type, generated, traits, raw, n);
    same_rows := a IS NOT DISTINCT FROM b;
    same_json := ja IS NOT DISTINCT FROM jb;
    nrows := coalesce(array_length(string_to_array(b, E'\n'), 1), 0);
    policy_calls_plan := c1 - c0;
    policy_calls_indexed := c2 - c1;
END $$;

CREATE TEMP TABLE ix_case (name text, filter jsonb, lim int, sort text[]);
GRANT SELECT ON ix_case TO PUBLIC;
INSERT INTO ix_case VALUES
  ('instance eq', '{"traits_filter": [{"key": "instance_id", "string": "ixi-3"}]}', 100, NULL),
  ('instance eq, page of 5', '{"traits_filter": [{"key": "instance_id", "string": "ixi-3"}]}', 5, NULL),
  ('instance eq, oldest first', '{"traits_filter": [{"key": "instance_id", "string": "ixi-4"}]}', 7, '{generated:asc}'),
  ('instance eq, by message_id desc', '{"traits_filter": [{"key": "instance_id", "string": "ixi-5"}]}', 9, '{message_id:desc}'),
  ('instance eq, message_id then generated', '{"traits_filter": [{"key": "instance_id", "string": "ixi-6"}]}', 100, '{message_id:asc,generated:desc}'),
  ('instance and ixn >= 3', '{"traits_filter": [{"key": "instance_id", "string": "ixi-7"}, {"key": "ixn", "integer": 3, "op": "ge"}]}', 100, NULL),
  ('ixn < 2', '{"traits_filter": [{"key": "ixn", "integer": 2, "op": "lt"}]}', 50, NULL),
  ('ixn ne 3', '{"traits_filter": [{"key": "ixn", "integer": 3, "op": "ne"}]}', 30, '{generated:asc}'),
  ('type and instance', '{"event_type": "ix.image.upload", "traits_filter": [{"key": "instance_id", "string": "ixi-8"}]}', 100, NULL),
  ('window and instance', '{"start_timestamp": "2026-11-21T00:00:00", "end_timestamp": "2026-11-23T12:00:00", "traits_filter": [{"key": "instance_id", "string": "ixi-9"}]}', 100, NULL),
  ('no match', '{"traits_filter": [{"key": "instance_id", "string": "ixi-99"}]}', 100, NULL);

-- As the superuser (no identity: the policy decides as for any caller).
-- (orders that do not start with generated read every partition in one
-- statement, not a walk: their policy calls are the executor's both ways)
SELECT c.name, p.* FROM ix_case c, pg_temp.page(c.filter, c.lim, c.sort) p ORDER BY c.name;

-- As identities stated by a gateway, each seeing a part of the events.
CREATE ROLE ix_api IN ROLE panko_api;
BEGIN;
SET LOCAL ROLE ix_api;
SELECT 1 AS member_ixu0_ixp0 FROM panko.set_identity('ixU0', 'ixP0', 'member');
SELECT c.name, p.* FROM ix_case c, pg_temp.page(c.filter, c.lim, c.sort) p ORDER BY c.name;
COMMIT;
BEGIN;
SET LOCAL ROLE ix_api;
SELECT 1 AS admin_of_ixp1 FROM panko.set_identity('ixU2', 'ixP1', 'admin');
SELECT c.name, p.* FROM ix_case c, pg_temp.page(c.filter, c.lim, c.sort) p ORDER BY c.name;
COMMIT;
BEGIN;
SET LOCAL ROLE ix_api;
SELECT 1 AS admin_all_tenants FROM panko.set_identity('ixU2', 'ixP1', 'admin', true);
SELECT c.name, p.* FROM ix_case c, pg_temp.page(c.filter, c.lim, c.sort) p WHERE c.name LIKE 'instance%' ORDER BY c.name;
COMMIT;

-- The API's own path (its JSON sink) agrees too.
CREATE FUNCTION pg_temp.api(params jsonb) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE a text; b text;
BEGIN
    PERFORM set_config('enable_indexscan', 'off', true);
    PERFORM set_config('panko.indexed_scan', 'off', true);
    a := panko.api_get_events(params)::text;
    PERFORM set_config('panko.indexed_scan', 'on', true);
    b := panko.api_get_events(params)::text;
    RETURN a = b AND length(a) > 2;
END $$;
BEGIN;
SET LOCAL ROLE ix_api;
SELECT 1 AS member_ixu0_ixp0 FROM panko.set_identity('ixU0', 'ixP0', 'member');
SELECT pg_temp.api('{"q": [{"field": "instance_id", "op": "eq", "type": "string", "value": "ixi-3"}]}') AS api_same;
SELECT pg_temp.api('{"q": [{"field": "instance_id", "op": "eq", "type": "string", "value": "ixi-4"}, {"field": "ixn", "op": "ge", "type": "integer", "value": "2"}], "limit": 4}') AS api_same_limited;
COMMIT;

-- A table whose row-level security is not panko.event's own is read by
-- its kept plan, so PostgreSQL applies what is there: a restrictive
-- policy added by hand to one day hides that day's events of user ixU1.
-- Both settings leave them out, and that day's table took a plan.
SELECT c.relname AS day_table FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
 WHERE i.inhparent = (SELECT inhrelid FROM pg_inherits WHERE inhparent = 'panko.event'::regclass
                       ORDER BY inhrelid::regclass::text LIMIT 1 OFFSET 2) \gset
SELECT count(*) AS hidden_that_day FROM ONLY panko.:"day_table"
 WHERE panko.trait_text(traits, 'instance_id') = 'ixi-3' AND panko.trait_text(traits, 'user_id') = 'ixU1' \gset
SELECT :hidden_that_day > 0 AS some_to_hide;
CREATE POLICY ix_hide ON panko.:"day_table" AS RESTRICTIVE FOR SELECT USING (panko.trait_text(traits, 'user_id') <> 'ixU1');
SELECT p.*, p.nrows = (SELECT count(*) FROM panko.event WHERE panko.trait_text(traits, 'instance_id') = 'ixi-3') - :hidden_that_day
       AS that_days_policy_applied
  FROM pg_temp.page('{"traits_filter": [{"key": "instance_id", "string": "ixi-3"}]}', 100, NULL) p;
DROP POLICY ix_hide ON panko.:"day_table";
-- and with the policy gone, no table takes a plan again
SELECT p.* FROM pg_temp.page('{"traits_filter": [{"key": "instance_id", "string": "ixi-3"}]}', 100, NULL) p;

-- A table without SELECT for the caller: the plan, and its error.
REVOKE SELECT ON panko.:"day_table" FROM panko_query;
SELECT count(*) FROM panko.get_events('{"traits_filter": [{"key": "instance_id", "string": "ixi-3"}]}');
SET enable_indexscan = off;
SELECT count(*) FROM panko.get_events('{"traits_filter": [{"key": "instance_id", "string": "ixi-3"}]}');
RESET enable_indexscan;
GRANT SELECT ON panko.:"day_table" TO panko_query;

-- row_security off: the plan's error, not rows.
BEGIN;
SET LOCAL ROLE ix_api;
SET LOCAL row_security = off;
SET LOCAL enable_indexscan = off;
SELECT 1 AS member_ixu0_ixp0 FROM panko.set_identity('ixU0', 'ixP0', 'member');
SELECT count(*) FROM panko.get_events('{"traits_filter": [{"key": "instance_id", "string": "ixi-3"}]}');
ROLLBACK;

DROP ROLE ix_api;
