-- Row-level security for a member (a non-admin identity): it sees only the
-- events of its project AND its user, through every function and the view.
-- The gateway role tap_api (member of panko_api) states the identity as
-- panko-api does; fixture events are listed in run.sh.
BEGIN;
SELECT plan(72);

SELECT is((SELECT count(*)::int FROM panko.event), 10, 'fixture: 10 events (seen by the superuser)');

-- A non-leakproof function that records every row it is shown: row-level
-- security must filter before it runs.
CREATE TEMP TABLE tap_seen (message_id text, raw text);
GRANT ALL ON tap_seen TO PUBLIC;
CREATE FUNCTION pg_temp.tap_leak(message_id text, raw jsonb) RETURNS boolean
LANGUAGE plpgsql VOLATILE COST 0.0000001 AS $$
BEGIN
    INSERT INTO tap_seen VALUES (message_id, raw::text);
    RETURN true;
END
$$;

-- Everything an error tells the caller, with one id replaced by X.
CREATE FUNCTION pg_temp.tap_error(query text, id text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    st text; msg text; det text; hin text;
BEGIN
    EXECUTE query;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL, hin = PG_EXCEPTION_HINT;
    RETURN replace(concat_ws(' | ', st, msg, det, hin), id, 'X');
END
$$;

------------------------------------------------------------------ member a1 of project A
SET LOCAL ROLE tap_api;
SELECT panko.set_identity('a1', 'A', 'member') IS NULL AS ignored \gset
SELECT is(panko.caller_mode(), 'member', 'a1@A is a member');

-- the view and the table
SELECT results_eq('SELECT message_id COLLATE "default" FROM panko.events ORDER BY message_id', ARRAY['a1-create', 'a1-delete'],
                  'member a1@A: panko.events shows only project A events of user a1');
SELECT results_eq('SELECT message_id COLLATE "default" FROM panko.event ORDER BY message_id', ARRAY['a1-create', 'a1-delete'],
                  'member a1@A: panko.event (the table) shows the same');
SELECT is_empty($$SELECT 1 FROM panko.events WHERE message_id IN ('b1-create', 'b1-upload', 'b-a1', 'a2-create', 'np-auth', 'np-bare', 'lc-a1', 'aa-a1')$$,
                'member a1@A: asking the view for other events by message_id finds nothing');
SELECT is_empty($$SELECT 1 FROM panko.events WHERE traits OPERATOR(panko.@>) '{"project_id":string="B"}'$$,
                'member a1@A: a trait containment query on the view for project B finds nothing');
SELECT is_empty($$SELECT 1 FROM panko.events WHERE raw ? 'secret'$$,
                'member a1@A: the raw notifications of project B are not readable');
SELECT is((SELECT count(*)::int FROM panko.events WHERE pg_temp.tap_leak(message_id, raw)), 2,
          'member a1@A: a cheap leaky function in WHERE over the view returns 2 rows');
SELECT is((SELECT count(*)::int FROM panko.event WHERE pg_temp.tap_leak(message_id, raw)), 2,
          'member a1@A: a cheap leaky function in WHERE over the table returns 2 rows');

-- get_events
SELECT results_eq('SELECT message_id FROM panko.get_events()', ARRAY['a1-create', 'a1-delete'],
                  'member a1@A: get_events() with no filter returns its two events in order');
SELECT is_empty($$SELECT 1 FROM panko.get_events('{"traits_filter": [{"key": "project_id", "op": "eq", "string": "B"}]}')$$,
                'member a1@A: get_events() with a project_id = B trait filter returns nothing');
SELECT results_eq($$SELECT message_id FROM panko.get_events('{"traits_filter": [{"key": "user_id", "op": "eq", "string": "a1"}]}')$$,
                  ARRAY['a1-create', 'a1-delete'],
                  'member a1@A: get_events() for user_id = a1 does not reach a1''s events in other projects');
SELECT is_empty($$SELECT 1 FROM panko.get_events('{"traits_filter": [{"key": "project_id", "op": "ne", "string": "A"}]}')$$,
                'member a1@A: get_events() with project_id <> A returns nothing');
SELECT is_empty($$SELECT 1 FROM panko.get_events('{"admin_proj": "B"}')$$,
                'member a1@A: get_events() with admin_proj = B returns nothing');
SELECT results_eq($$SELECT message_id FROM panko.get_events('{"admin_proj": "A"}')$$, ARRAY['a1-create', 'a1-delete'],
                  'member a1@A: admin_proj = A does not widen a member''s view');
SELECT is_empty($$SELECT 1 FROM panko.get_events('{"message_id": "b1-create"}')$$,
                'member a1@A: get_events() by message_id of a project B event returns nothing');
SELECT is_empty($$SELECT 1 FROM panko.get_events('{"event_type": "image.upload"}')$$,
                'member a1@A: get_events() for an event type only project B has returns nothing');
SELECT results_eq($$SELECT message_id FROM panko.get_events('{}', 10, ARRAY['generated:desc'])$$,
                  ARRAY['a1-delete', 'a1-create'], 'member a1@A: sorted descending, still only its events');
SELECT results_eq($$SELECT message_id FROM panko.get_events('{}', 10, NULL, 'a1-create')$$, ARRAY['a1-delete'],
                  'member a1@A: a marker it can see pages on');
SELECT throws_ok($$SELECT * FROM panko.get_events('{}', 10, NULL, 'b1-create')$$, '22023',
                 'marker "b1-create" is not an event you can see',
                 'member a1@A: the marker of a project B event is rejected');
SELECT throws_ok($$SELECT * FROM panko.get_events('{}', 10, NULL, 'no-such-event')$$, '22023',
                 'marker "no-such-event" is not an event you can see',
                 'member a1@A: ... with the same error as a marker that does not exist');
SELECT is(pg_temp.tap_error($$SELECT * FROM panko.get_events('{}', 10, NULL, 'b1-create')$$, 'b1-create'),
          pg_temp.tap_error($$SELECT * FROM panko.get_events('{}', 10, NULL, 'b1-createX')$$, 'b1-createX'),
          'member a1@A: SQLSTATE, message, detail and hint are the same for an invisible and a missing marker');
SELECT throws_ok($$SELECT * FROM panko.get_events('{}', 10, ARRAY['generated:desc'], 'np-auth')$$, '22023',
                 'marker "np-auth" is not an event you can see',
                 'member a1@A: the marker of an event without project is rejected too');

-- event_types, trait_types, get_traits
SELECT results_eq('SELECT * FROM panko.event_types()',
                  ARRAY['compute.instance.create.end', 'compute.instance.delete.end'],
                  'member a1@A: event_types() lists only the types of its events');
SELECT is_empty($$SELECT * FROM panko.trait_types('image.upload')$$,
                'member a1@A: trait_types() of a type only project B has is empty');
SELECT is_empty($$SELECT * FROM panko.trait_types('identity.authenticate')$$,
                'member a1@A: trait_types() of a type only events without project have is empty');
SELECT results_eq($$SELECT name, type FROM panko.trait_types('compute.instance.create.end')$$,
                  $$VALUES ('host', 'string'), ('project_id', 'string'), ('tenant_id', 'string'),
                           ('user_id', 'string'), ('memory_mb', 'integer')$$,
                  'member a1@A: trait_types() of a shared type shows the traits of its own event (strings first, as upstream)');
SELECT results_eq($$SELECT value FROM panko.get_traits('compute.instance.create.end', 'project_id')$$, ARRAY['A'],
                  'member a1@A: get_traits(type, project_id) shows only its own project');
SELECT results_eq($$SELECT value FROM panko.get_traits('compute.instance.create.end', 'host')$$, ARRAY['compute-1'],
                  'member a1@A: get_traits(type, host) shows only its own event''s host');
SELECT results_eq($$SELECT name || '=' || value FROM panko.get_traits('compute.instance.create.end')$$,
                  ARRAY['host=compute-1', 'memory_mb=512', 'project_id=A', 'tenant_id=A', 'user_id=a1'],
                  'member a1@A: get_traits(type) shows only its own event''s traits');
SELECT is_empty($$SELECT * FROM panko.get_traits('image.upload', 'b_secret')$$,
                'member a1@A: get_traits() of project B''s type and trait is empty');
SELECT is_empty($$SELECT * FROM panko.get_traits('image.upload')$$,
                'member a1@A: get_traits() of project B''s type is empty');

-- the HTTP-facing functions
SELECT results_eq($$SELECT e->>'message_id' FROM json_array_elements(panko.api_get_events('{}')) e$$,
                  ARRAY['a1-create', 'a1-delete'], 'member a1@A: api_get_events() returns its two events');
SELECT is(panko.api_get_events('{"q": [{"field": "project_id", "op": "eq", "value": "B"}]}')::text, '[]',
          'member a1@A: api_get_events() with q project_id = B returns []');
SELECT is(panko.api_get_events('{"q": [{"field": "user_id", "value": "b1"}]}')::text, '[]',
          'member a1@A: api_get_events() with q user_id = b1 returns []');
SELECT is(panko.api_get_events('{"q": [{"field": "all_tenants", "op": "eq", "value": "True"}]}')::text, '[]',
          'member a1@A: all_tenants=True is an ordinary trait filter for a member (matches nothing)');
SELECT is(panko.caller_mode(), 'member', 'member a1@A: ... and leaves it a member');
SELECT results_eq($$SELECT e->>'message_id' FROM json_array_elements(panko.api_get_events('{"q": [{"field": "event_type", "value": "compute.instance.create.end"}]}')) e$$,
                  ARRAY['a1-create'], 'member a1@A: api_get_events() by a shared event type returns only its event');
SELECT throws_ok($$SELECT panko.api_get_events('{"marker": "b1-create"}')$$, '22023',
                 'marker "b1-create" is not an event you can see',
                 'member a1@A: api_get_events() rejects the marker of a project B event');
SELECT is(panko.api_get_event('a1-create')->>'message_id', 'a1-create', 'member a1@A: api_get_event() of its own event');
SELECT throws_ok($$SELECT panko.api_get_event('b1-create')$$, 'P0002', 'Event b1-create Not Found',
                 'member a1@A: api_get_event() of a project B event is P0002 (404)');
SELECT throws_ok($$SELECT panko.api_get_event('b-a1')$$, 'P0002', 'Event b-a1 Not Found',
                 'member a1@A: api_get_event() of its user''s event in project B is P0002');
SELECT throws_ok($$SELECT panko.api_get_event('a2-create')$$, 'P0002', 'Event a2-create Not Found',
                 'member a1@A: api_get_event() of another user''s event in project A is P0002');
SELECT throws_ok($$SELECT panko.api_get_event('np-auth')$$, 'P0002', 'Event np-auth Not Found',
                 'member a1@A: api_get_event() of its user''s event without project is P0002');
SELECT throws_ok($$SELECT panko.api_get_event('lc-a1')$$, 'P0002', 'Event lc-a1 Not Found',
                 'member a1@A: api_get_event() of project "a" (case differs) is P0002');
SELECT throws_ok($$SELECT panko.api_get_event('aa-a1')$$, 'P0002', 'Event aa-a1 Not Found',
                 'member a1@A: api_get_event() of project "AA" (prefix) is P0002');
SELECT throws_ok($$SELECT panko.api_get_event('no-such-event')$$, 'P0002', 'Event no-such-event Not Found',
                 'member a1@A: api_get_event() of a missing event is the same P0002');
SELECT is(pg_temp.tap_error($$SELECT panko.api_get_event('b1-create')$$, 'b1-create'),
          pg_temp.tap_error($$SELECT panko.api_get_event('b1-createX')$$, 'b1-createX'),
          'member a1@A: api_get_event() errors are the same for an invisible and a missing event');
SELECT is(pg_temp.tap_error($$SELECT panko.api_get_events('{"marker": "b1-create"}')$$, 'b1-create'),
          pg_temp.tap_error($$SELECT panko.api_get_events('{"marker": "b1-createX"}')$$, 'b1-createX'),
          'member a1@A: api_get_events() errors are the same for an invisible and a missing marker');
SELECT throws_ok($$SELECT panko.api_event_types()$$, '28000', 'Not Authorized to access project A',
                 'member a1@A: api_event_types() is refused (401)');
SELECT throws_ok($$SELECT panko.api_trait_types('image.upload')$$, '28000', 'Not Authorized to access project A',
                 'member a1@A: api_trait_types() is refused (401)');
SELECT throws_ok($$SELECT panko.api_traits('image.upload', 'b_secret')$$, '28000', 'Not Authorized to access project A',
                 'member a1@A: api_traits() is refused (401)');
SELECT throws_ok($$SELECT panko.api_post_events('[]')$$, '42501', NULL,
                 'member a1@A: api_post_events() needs the admin or service role (403)');
RESET ROLE;

SELECT results_eq('SELECT DISTINCT message_id FROM tap_seen ORDER BY 1', ARRAY['a1-create', 'a1-delete'],
                  'the leaky function was shown only the member''s rows');
SELECT is_empty($$SELECT 1 FROM tap_seen WHERE raw LIKE '%secret%'$$,
                'the leaky function never saw project B''s raw notification');

------------------------------------------------------------------ other members
SET LOCAL ROLE tap_api;
SELECT panko.set_identity('a2', 'A', 'member') IS NULL AS ignored \gset
SELECT results_eq('SELECT message_id COLLATE "default" FROM panko.events ORDER BY 1', ARRAY['a2-create'],
                  'member a2@A sees only its own event, not a1''s');
SELECT results_eq($$SELECT e->>'message_id' FROM json_array_elements(panko.api_get_events('{}')) e$$,
                  ARRAY['a2-create'], 'member a2@A: api_get_events() agrees');

SELECT panko.set_identity('b1', 'B', 'member') IS NULL AS ignored \gset
SELECT results_eq('SELECT message_id FROM panko.get_events()', ARRAY['b1-create', 'b1-upload'],
                  'member b1@B sees b1''s project B events, not a1''s event in B');
SELECT results_eq('SELECT * FROM panko.event_types()', ARRAY['compute.instance.create.end', 'image.upload'],
                  'member b1@B: event_types()');
SELECT results_eq($$SELECT value FROM panko.get_traits('image.upload', 'b_secret')$$, ARRAY['only-in-B'],
                  'member b1@B can read its own trait (positive control for the checks above)');

SELECT panko.set_identity('a1', 'B', 'member') IS NULL AS ignored \gset
SELECT results_eq('SELECT message_id COLLATE "default" FROM panko.events', ARRAY['b-a1'], 'member a1@B sees only a1''s event in project B');

SELECT panko.set_identity('a1', 'a', 'member') IS NULL AS ignored \gset
SELECT results_eq('SELECT message_id COLLATE "default" FROM panko.events', ARRAY['lc-a1'], 'member a1@a (lower case) sees only project "a"');

SELECT panko.set_identity('a1', 'AA', 'member') IS NULL AS ignored \gset
SELECT results_eq('SELECT message_id COLLATE "default" FROM panko.events', ARRAY['aa-a1'], 'member a1@AA sees only project "AA"');

SELECT panko.set_identity('a1', 'C', 'member') IS NULL AS ignored \gset
SELECT is_empty('SELECT 1 FROM panko.events', 'a member of a project without events sees nothing');

-- Identity values are data, never parsed as trait literals or SQL.
SELECT panko.set_identity('b1", "project_id":string="B', 'A", "user_id":string="b1', 'member') IS NULL AS ignored \gset
SELECT is_empty('SELECT 1 FROM panko.events', 'identity values that look like trait literals match nothing');
SELECT is((SELECT count(*)::int FROM panko.get_events()), 0, '... also through get_events()');
SELECT panko.set_identity($$a1' OR true OR '$$, $$A' OR true OR '$$, 'member') IS NULL AS ignored \gset
SELECT is_empty('SELECT 1 FROM panko.events', 'identity values that look like SQL match nothing');

SELECT panko.set_identity('a1', NULL, 'member') IS NULL AS ignored \gset
SELECT is_empty('SELECT 1 FROM panko.events', 'a member without a project sees nothing');
SELECT throws_ok($$SELECT panko.api_get_events('{}')$$, '42501',
                 'The request needs a user and a project (X-User-Id and X-Project-Id)',
                 'api_get_events() without a project is refused (403)');
SELECT throws_ok($$SELECT panko.api_get_event('a1-create')$$, '42501',
                 'The request needs a user and a project (X-User-Id and X-Project-Id)',
                 'api_get_event() without a project is refused (403)');
RESET ROLE;

------------------------------------------------------------------ superuser as gateway
SELECT panko.set_identity('a1', 'A', 'member') IS NULL AS ignored \gset
SET LOCAL ROLE tap_api;
SELECT results_eq('SELECT message_id COLLATE "default" FROM panko.events ORDER BY 1', ARRAY['a1-create', 'a1-delete'],
                  'identity stated by a superuser, then SET ROLE to the gateway: member a1@A rules');
RESET ROLE;
SET LOCAL ROLE tap_reader;
SELECT results_eq('SELECT message_id FROM panko.get_events()', ARRAY['a1-create', 'a1-delete'],
                  'identity stated by a superuser, then SET ROLE to a reader: member a1@A rules');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
