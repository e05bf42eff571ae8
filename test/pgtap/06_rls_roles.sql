-- Row-level security without a stated identity: the database role decides.
-- A reader (or the gateway) sees nothing, a member of panko_admin sees
-- everything.  RLS is enabled and not bypassable by the server's role, and
-- statistics do not leak rows.
BEGIN;
SELECT plan(47);

SELECT is((SELECT count(*)::int FROM panko.event), 10, 'fixture: 10 events (seen by the superuser)');

------------------------------------------------------------------ RLS is on, for everyone
SELECT is((SELECT relrowsecurity FROM pg_class WHERE oid = 'panko.event'::regclass), true,
          'row-level security is enabled on panko.event');
SELECT cmp_ok((SELECT count(*)::int FROM pg_policy WHERE polrelid = 'panko.event'::regclass AND polcmd IN ('r', '*')), '>=', 1,
              'panko.event has a policy for SELECT');
SELECT is_empty(
    $$SELECT polname FROM pg_policy WHERE polrelid = 'panko.event'::regclass AND polcmd NOT IN ('r')$$,
    'panko.event has no INSERT/UPDATE/DELETE/ALL policy (writes go through record_events only)');
SELECT is_empty(
    $$SELECT polname FROM pg_policy WHERE polrelid = 'panko.event'::regclass AND polroles <> '{0}'$$,
    'the policies apply to PUBLIC (every role)');
SELECT is_empty(
    $$SELECT polname FROM pg_policy WHERE polrelid = 'panko.event'::regclass AND NOT polpermissive$$,
    'the SELECT policy is permissive (one policy decides; there is no restrictive policy to miss)');
SELECT is((SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = 'panko_api'), false,
          'panko_api is neither superuser nor BYPASSRLS');
SELECT is((SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = 'tap_api'), false,
          'the server''s login role (member of panko_api) is neither superuser nor BYPASSRLS');
SELECT is_empty(
    $$SELECT r.rolname FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.member
       WHERE m.roleid IN (SELECT oid FROM pg_roles WHERE rolname IN ('panko_api', 'panko_reader'))
         AND (r.rolsuper OR r.rolbypassrls)$$,
    'no superuser or BYPASSRLS role is granted panko_api or panko_reader');
SELECT is_empty(
    $$SELECT c.oid::regclass::text FROM pg_class c JOIN pg_inherits i ON i.inhrelid = c.oid
       WHERE i.inhparent = 'panko.event'::regclass AND c.relowner IN (SELECT oid FROM pg_roles WHERE NOT rolsuper)$$,
    'partitions are owned by a superuser (their owner cannot be a tenant role)');

------------------------------------------------------------------ a reader without identity
CREATE TEMP TABLE tap_seen (message_id text);
GRANT ALL ON tap_seen TO PUBLIC;
CREATE FUNCTION pg_temp.tap_leak(message_id text) RETURNS boolean
LANGUAGE plpgsql VOLATILE COST 0.0000001 AS $$
BEGIN
    INSERT INTO tap_seen VALUES (message_id);
    RETURN true;
END
$$;

SET LOCAL ROLE tap_reader;
SELECT is(panko.caller_mode(), 'none', 'a role that is only panko_reader, without identity, is "none"');
SELECT throws_ok('SELECT count(*) FROM panko.events', '42501', 'permission denied for view events',
                 'reader: panko.events is not readable directly (tenants read through functions)');
SELECT throws_ok('SELECT count(*) FROM panko.event', '42501', 'permission denied for table event',
                 'reader: panko.event is not readable directly');
SELECT is((SELECT count(*)::int FROM panko.get_events()), 0, 'reader without identity: get_events() is empty');
SELECT is((SELECT count(*)::int FROM panko.get_events('{"admin_proj": "A"}')), 0,
          'reader without identity: get_events() with admin_proj is empty');
SELECT is((SELECT count(*)::int FROM panko.event_types()), 0, 'reader without identity: event_types() is empty');
SELECT is((SELECT count(*)::int FROM panko.trait_types('compute.instance.create.end')), 0,
          'reader without identity: trait_types() is empty');
SELECT is((SELECT count(*)::int FROM panko.get_traits('compute.instance.create.end')), 0,
          'reader without identity: get_traits() is empty');
SELECT throws_ok($$SELECT * FROM panko.get_events('{}', 10, NULL, 'a1-create')$$, '22023',
                 'marker "a1-create" is not an event you can see', 'reader without identity: every marker is rejected');
SELECT throws_ok($$SELECT panko.api_get_events('{}')$$, '42501', 'permission denied for function api_get_events',
                 'reader: the HTTP functions are panko-api''s');
RESET ROLE;

SET LOCAL ROLE tap_api;
SELECT is((SELECT count(*)::int FROM panko.events), 0, 'the gateway role without identity sees nothing');
SELECT throws_ok($$SELECT panko.api_get_events('{}')$$, '42501',
                 'The request needs a user and a project (X-User-Id and X-Project-Id)',
                 'gateway without identity: api_get_events() is refused (403)');
SELECT throws_ok($$SELECT panko.api_get_event('a1-create')$$, '42501', NULL,
                 'gateway without identity: api_get_event() is refused (403)');
SELECT throws_ok($$SELECT panko.api_event_types()$$, '28000', 'Not Authorized',
                 'gateway without identity: api_event_types() is refused (401)');
SELECT is(panko.enable_all_tenants(), false, 'gateway without identity: enable_all_tenants() does not take');
-- (tap_api may read the table in these tests: see run.sh)
SELECT is((SELECT count(*)::int FROM panko.events WHERE pg_temp.tap_leak(message_id)), 0,
          'without identity: a leaky function in WHERE returns nothing');
RESET ROLE;
SELECT is((SELECT count(*)::int FROM tap_seen), 0, '... and was shown no row');

------------------------------------------------------------------ a member of panko_admin without identity
SET LOCAL ROLE tap_admin;
SELECT is(panko.caller_mode(), 'all', 'a member of panko_admin without identity is "all"');
SELECT is((SELECT count(*)::int FROM panko.events), 10, 'panko_admin: panko.events shows all 10 events');
SELECT is((SELECT count(*)::int FROM panko.get_events()), 10, 'panko_admin: get_events() shows all 10 events');
SELECT is((SELECT count(*)::int FROM panko.event_types()), 4, 'panko_admin: event_types() lists all 4 types');
SELECT results_eq($$SELECT value FROM panko.get_traits('image.upload', 'b_secret')$$, ARRAY['only-in-B'],
                  'panko_admin: get_traits() reaches every project');
SELECT is((SELECT message_id FROM panko.get_events('{"message_id": "b1-create"}')), 'b1-create',
          'panko_admin: get_events() finds any event by message_id');
SELECT throws_ok($$SELECT panko.api_get_event('b1-create')$$, '42501', 'permission denied for function api_get_event',
                 'panko_admin: the HTTP functions are panko-api''s (admins use get_events or the table)');
RESET ROLE;

------------------------------------------------------------------ plans cached across roles and identities
-- The same query shapes run in one session by a superuser (no RLS), a
-- member, a reader and panko_admin, several rounds (custom then generic
-- plans): each sees its own view every time, marker lookup included.
CREATE FUNCTION pg_temp.tap_view(who text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    n int;
    m text;
BEGIN
    -- Each view runs in a block that is rolled back: a stated identity
    -- (even an empty one) lasts until the end of its transaction.
    BEGIN
    CASE who
        WHEN 'superuser' THEN NULL;
        WHEN 'member' THEN PERFORM panko.set_identity('a1', 'A', 'member'); SET LOCAL ROLE tap_api;
        WHEN 'reader' THEN SET LOCAL ROLE tap_reader;
        WHEN 'admin' THEN SET LOCAL ROLE tap_admin;
    END CASE;
    SELECT count(*) INTO n FROM panko.get_events();
    BEGIN
        SELECT count(*)::text INTO m FROM panko.get_events('{}', 100, NULL, 'np-auth');
    EXCEPTION WHEN invalid_parameter_value THEN
        m := 'rejected';
    END;
    RESET ROLE;
    RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = who || ' ' || n || ', after np-auth ' || m;
    EXCEPTION WHEN raise_exception THEN
        RETURN SQLERRM;
    END;
END
$$;
SELECT results_eq(
    $$SELECT pg_temp.tap_view(w) FROM generate_series(1, 7) i,
             unnest(ARRAY['superuser', 'member', 'reader', 'admin']) WITH ORDINALITY AS u(w, o) ORDER BY i, o$$,
    $$SELECT w FROM generate_series(1, 7) i,
             unnest(ARRAY['superuser 10, after np-auth 9', 'member 2, after np-auth rejected',
                          'reader 0, after np-auth rejected', 'admin 10, after np-auth 9']) WITH ORDINALITY AS u(w, o)
       ORDER BY i, o$$,
    'get_events() alternating superuser, member, reader and panko_admin in one session: 7 rounds, each its own view');

------------------------------------------------------------------ parallel query keeps the identity
SET LOCAL force_parallel_mode = on;
SET LOCAL parallel_setup_cost = 0;
SET LOCAL parallel_tuple_cost = 0;
SET LOCAL min_parallel_table_scan_size = 0;
SET LOCAL ROLE tap_reader;
SELECT is((SELECT count(*)::int FROM panko.get_events()), 0, 'parallel query: a reader without identity still sees nothing');
RESET ROLE;
SET LOCAL ROLE tap_admin;
SELECT is((SELECT count(*)::int FROM panko.events), 10, 'parallel query: panko_admin still sees everything');
RESET ROLE;
SET LOCAL ROLE tap_api;
SELECT panko.set_identity('a1', 'A', 'member') IS NULL AS ignored \gset
SELECT results_eq('SELECT message_id COLLATE "default" FROM panko.events ORDER BY 1', ARRAY['a1-create', 'a1-delete'],
                  'parallel query: a member still sees only its events through the view');
SELECT results_eq($$SELECT value FROM panko.get_traits('compute.instance.create.end', 'project_id')$$, ARRAY['A'],
                  'parallel query: get_traits() still scoped to the member');
SELECT panko.set_identity('adm', 'A', 'admin', true) IS NULL AS ignored \gset
SELECT is((SELECT count(*)::int FROM panko.events), 10, 'parallel query: an all_tenants admin still sees everything');
RESET ROLE;
RESET force_parallel_mode;

------------------------------------------------------------------ statistics do not leak rows
ANALYZE panko.event;
SELECT cmp_ok((SELECT count(*)::int FROM pg_stats WHERE schemaname = 'panko' AND tablename = 'event'), '>', 0,
              'ANALYZE made statistics on panko.event (seen by the superuser)');
SET LOCAL ROLE tap_reader;
SELECT is((SELECT count(*)::int FROM pg_stats WHERE schemaname = 'panko' AND tablename LIKE 'event%'), 0,
          'a reader sees no statistics of panko.event or its partitions (pg_stats hides RLS tables)');
RESET ROLE;
SET LOCAL ROLE tap_api;
SELECT panko.set_identity('a1', 'A', 'member') IS NULL AS ignored \gset
SELECT is((SELECT count(*)::int FROM pg_stats WHERE schemaname = 'panko' AND tablename LIKE 'event%'), 0,
          'a member sees no statistics of panko.event or its partitions');
SELECT is((SELECT count(*)::int FROM pg_stats_ext WHERE schemaname = 'panko'), 0,
          'nor any extended statistics');
RESET ROLE;

------------------------------------------------------------------ the gateway without identity
-- (last: a stated identity, even an empty one, lasts until the transaction
-- ends, and then the database role no longer decides)
SET LOCAL ROLE tap_api;
SELECT panko.set_identity(NULL, NULL, NULL) IS NULL AS ignored \gset
SELECT is((SELECT count(*)::int FROM panko.get_events()), 0, 'the gateway with an all-NULL identity sees nothing');
SELECT panko.set_identity('', '', '', false) IS NULL AS ignored \gset
SELECT is((SELECT count(*)::int FROM panko.get_events()), 0, 'the gateway with an all-empty identity sees nothing');
RESET ROLE;

SET LOCAL ROLE tap_admin;
SELECT is(panko.caller_mode(), 'none',
          'once a gateway stated an empty identity, even panko_admin sees nothing in that transaction');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
