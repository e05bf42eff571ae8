-- Privileges: the NOLOGIN roles, nothing for PUBLIC beyond the types'
-- own functions, exact grants, and what each kind of role can and cannot
-- do.  Tenants read only through functions; the table and the view are
-- readable by roles that see every tenant (panko_auditor, panko_admin).
-- Test login roles (made by run.sh): tap_api (panko_api), tap_reader
-- (panko_reader), tap_writer (panko_writer), tap_admin (panko_admin),
-- tap_plain (no panko role).
BEGIN;
SELECT plan(81);

------------------------------------------------------------------ roles
SELECT has_role('panko_reader', 'role panko_reader exists');
SELECT has_role('panko_writer', 'role panko_writer exists');
SELECT has_role('panko_admin', 'role panko_admin exists');
SELECT has_role('panko_api', 'role panko_api exists');
SELECT has_role('panko_auditor', 'role panko_auditor exists');
SELECT has_role('panko_query', 'role panko_query exists');
SELECT results_eq(
    $$SELECT rolname::text COLLATE "default", rolcanlogin, rolsuper, rolbypassrls, rolcreaterole, rolcreatedb, rolreplication
        FROM pg_roles WHERE rolname LIKE 'panko\_%' ORDER BY 1$$,
    $$VALUES ('panko_admin', false, false, false, false, false, false),
             ('panko_api', false, false, false, false, false, false),
             ('panko_auditor', false, false, false, false, false, false),
             ('panko_query', false, false, false, false, false, false),
             ('panko_reader', false, false, false, false, false, false),
             ('panko_writer', false, false, false, false, false, false)$$,
    'the panko roles are NOLOGIN, not superuser, not BYPASSRLS, no CREATEROLE/CREATEDB/REPLICATION');
SELECT set_eq(
    $$SELECT m.member::regrole::text, m.roleid::regrole::text FROM pg_auth_members m
       WHERE m.member::regrole::text LIKE 'panko\_%' AND m.roleid::regrole::text LIKE 'panko\_%'$$,
    $$VALUES ('panko_admin', 'panko_reader'), ('panko_admin', 'panko_writer'), ('panko_admin', 'panko_auditor'),
             ('panko_auditor', 'panko_reader'),
             ('panko_api', 'panko_reader'), ('panko_api', 'panko_writer')$$,
    'memberships among panko roles: admin audits, reads and writes; auditor reads; api reads and writes; panko_query is nobody''s');
SELECT ok(NOT pg_has_role('panko_api', 'panko_auditor', 'USAGE'),
          'panko_api does not have the privileges of panko_auditor (a gateway reads through functions only)');
SELECT ok(NOT pg_has_role('panko_api', 'panko_admin', 'USAGE'),
          'panko_api does not have the privileges of panko_admin (a gateway without identity sees nothing)');

------------------------------------------------------------------ PUBLIC
SELECT is_empty(
    $$SELECT c.oid::regclass::text || ' ' || p.priv
        FROM pg_class c, unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER']) p(priv)
       WHERE c.relnamespace = 'panko'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
         AND has_table_privilege('public', c.oid, p.priv)$$,
    'PUBLIC has no privilege on any table, partition or view in schema panko');
SELECT is_empty(
    $$SELECT c.oid::regclass::text FROM pg_class c
       WHERE c.relnamespace = 'panko'::regnamespace
         AND CASE WHEN c.relkind = 'S' THEN has_sequence_privilege('public', c.oid, 'USAGE,SELECT,UPDATE') END$$,
    'PUBLIC has no privilege on sequences in schema panko');
SELECT ok(NOT has_function_privilege('public', to_regprocedure('panko.record_events(jsonb)'), 'EXECUTE'),
          'PUBLIC cannot execute panko.record_events');
SELECT ok(NOT has_function_privilege('public', to_regprocedure('panko.get_events(jsonb,integer,text[],text)'), 'EXECUTE'),
          'PUBLIC cannot execute panko.get_events');
SELECT ok(NOT has_function_privilege('public', to_regprocedure('panko.clear_expired_data(bigint,bigint)'), 'EXECUTE'),
          'PUBLIC cannot execute panko.clear_expired_data');
SELECT ok(NOT has_function_privilege('public', to_regprocedure('panko.run_maintenance()'), 'EXECUTE'),
          'PUBLIC cannot execute panko.run_maintenance');
SELECT ok(NOT has_function_privilege('public', to_regprocedure('panko.set_identity(text,text,text,boolean)'), 'EXECUTE'),
          'PUBLIC cannot execute panko.set_identity');
SELECT is_empty(
    $$SELECT p.oid::regprocedure::text FROM pg_proc p
       WHERE p.pronamespace = 'panko'::regnamespace AND p.prosecdef
         AND has_function_privilege('public', p.oid, 'EXECUTE')$$,
    'no SECURITY DEFINER function is executable by PUBLIC');
SELECT is_empty(
    $$SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_roles r ON r.oid = p.proowner
       WHERE p.pronamespace = 'panko'::regnamespace AND p.prosecdef AND r.rolsuper
         AND has_function_privilege('panko_reader', p.oid, 'EXECUTE')$$,
    'no SECURITY DEFINER function of a superuser is executable by a mere reader');
SELECT set_eq(
    $$SELECT p.oid::regprocedure::text FROM pg_proc p
       WHERE p.pronamespace = 'panko'::regnamespace AND p.prosecdef AND p.proowner = 'panko_query'::regrole$$,
    $$VALUES ('panko.get_events(jsonb,integer,text[],text)'), ('panko.event_types()'), ('panko.trait_types(text)'),
             ('panko.get_traits(text,text)'), ('panko.api_event_types()'), ('panko.trace_report(text)'),
             ('panko.trace_list(text[],integer)'), ('panko.trace_errors(integer)'),
             ('panko.rating_retrieve(timestamp with time zone,timestamp with time zone,text[],jsonb,jsonb,bigint,bigint)'),
             ('panko.rating_total(timestamp with time zone,timestamp with time zone,text[],text[],jsonb,jsonb,text,bigint,bigint)'),
             ('panko.metric_events(text,timestamp with time zone,timestamp with time zone,text,integer)'),
             ('panko.metric_latest(text,text)'),
             ('panko.metric_running_total(text,interval,timestamp with time zone,timestamp with time zone,jsonb,text)'),
             ('panko.metric_series(text,interval,timestamp with time zone,timestamp with time zone,jsonb,text)')$$,
    'the read functions run as panko_query, which row-level security applies to');
-- What PUBLIC may execute: the types' input/output and their pure
-- functions and operators.  Support functions (GIN, selectivity, ANALYZE)
-- are called by PostgreSQL without a privilege check.
SELECT is_empty(
    $$SELECT p.oid::regprocedure::text FROM pg_proc p
       WHERE p.pronamespace = 'panko'::regnamespace AND has_function_privilege('public', p.oid, 'EXECUTE')
         AND p.proname NOT IN (
             'traits_in', 'traits_out', 'traits_recv', 'traits_send',
             'traitquery_in', 'traitquery_out', 'traitquery_recv', 'traitquery_send',
             'traits', 'traits_to_jsonb', 'traitquery', 'trait_text', 'trait_int', 'trait_float', 'trait_datetime',
             'trait_count', 'each_trait', 'traits_exist', 'traits_contains', 'traits_contained', 'traits_match',
             'traits_match_commutator', 'traits_fetch_text', 'traits_eq', 'traits_ne')$$,
    'PUBLIC can execute nothing in panko but the types'' own functions');
SELECT ok(NOT has_schema_privilege('public', 'panko', 'CREATE'), 'PUBLIC cannot create objects in schema panko');
SELECT is_empty(
    $$SELECT r FROM unnest(ARRAY['panko_reader', 'panko_writer', 'panko_admin', 'panko_api', 'panko_auditor', 'panko_query']) r
       WHERE has_schema_privilege(r, 'panko', 'CREATE')$$,
    'no panko role can create objects in schema panko');

------------------------------------------------------------------ exact grants to the panko roles
SELECT set_eq(
    $$SELECT a.grantee::regrole::text, c.oid::regclass::text, a.privilege_type
        FROM pg_class c, aclexplode(c.relacl) a
       WHERE c.relnamespace = 'panko'::regnamespace AND a.grantee <> c.relowner$$,
    $$SELECT r, t, 'SELECT' FROM unnest(ARRAY['panko_auditor', 'panko_query']) r,
             unnest(ARRAY['panko.event', 'panko.event_type', 'panko.events', 'panko.partition']) t
      UNION ALL VALUES ('panko_auditor', 'panko.retention', 'SELECT'),
             ('panko_auditor', 'panko.rating_attribute', 'SELECT'), ('panko_query', 'panko.rating_attribute', 'SELECT'),
             ('panko_auditor', 'panko.rating_project_alias', 'SELECT'), ('panko_query', 'panko.rating_project_alias', 'SELECT'),
             ('panko_auditor', 'panko.rating_rollup', 'SELECT'), ('panko_query', 'panko.rating_rollup', 'SELECT'),
             ('panko_auditor', 'panko.metric_rollup', 'SELECT'), ('panko_query', 'panko.metric_rollup', 'SELECT')
      UNION ALL SELECT r, t.relid::regclass::text, 'SELECT'
        FROM pg_partition_tree('panko.event') t, unnest(ARRAY['panko_auditor', 'panko_query']) r
       WHERE t.level > 0$$,
    'table privileges in panko: SELECT on event (and each table under it, since get_events reads a day''s table directly), event_type, events and partition to panko_auditor and panko_query, on retention to panko_auditor, nothing else');
SELECT set_eq(
    $$SELECT a.grantee::regrole::text, p.oid::regprocedure::text
        FROM pg_proc p, aclexplode(p.proacl) a
       WHERE p.pronamespace = 'panko'::regnamespace AND a.grantee::regrole::text LIKE 'panko\_%'$$,
    $$SELECT 'panko_reader', f FROM unnest(ARRAY[
                 'panko.get_events(jsonb,integer,text[],text)', 'panko.event_types()', 'panko.trait_types(text)',
                 'panko.get_traits(text,text)', 'panko.iso_timestamp(timestamp with time zone)',
                 'panko.parse_timestamp(text,text)', 'panko.event_json(text,text,timestamp with time zone,panko.traits,jsonb)',
                 'panko.capabilities()', 'panko.caller_mode()', 'panko.caller_scope()', 'panko.event_visible(panko.traits)', 'panko.caller_has_role(text)',
                 'panko.caller_project()', 'panko.trace_report(text)', 'panko.trace_list(text[],integer)',
                 'panko.trace_errors(integer)']) f
      UNION ALL
      SELECT 'panko_query', f FROM unnest(ARRAY[
                 'panko.get_events(jsonb,integer,text[],text)', 'panko.event_types()', 'panko.trait_types(text)',
                 'panko.get_traits(text,text)', 'panko.api_event_types()', 'panko.iso_timestamp(timestamp with time zone)',
                 'panko.parse_timestamp(text,text)', 'panko.event_json(text,text,timestamp with time zone,panko.traits,jsonb)',
                 'panko.capabilities()', 'panko.caller_mode()', 'panko.caller_scope()', 'panko.event_visible(panko.traits)', 'panko.caller_has_role(text)',
                 'panko.caller_project()', 'panko.api_require_admin()', 'panko.enable_all_tenants()',
                 'panko.trace_report(text)', 'panko.trace_report_json(text)', 'panko.trace_list(text[],integer)',
                 'panko.trace_errors(integer)']) f
      UNION ALL
      SELECT 'panko_api', f FROM unnest(ARRAY[
                 'panko.set_identity(text,text,text,boolean)', 'panko.api_require_identity()', 'panko.api_require_admin()',
                 'panko.api_get_events(jsonb)', 'panko.api_get_event(text)', 'panko.api_event_types()',
                 'panko.api_trait_types(text)', 'panko.api_traits(text,text)', 'panko.api_capabilities()',
                 'panko.api_post_events(jsonb)', 'panko.enable_all_tenants()']) f
      UNION ALL
      VALUES ('panko_writer', 'panko.record_events(jsonb)'), ('panko_writer', 'panko.record_events_text(text)'), ('panko_writer', 'panko.trace_notify(jsonb)'),
             ('panko_admin', 'panko.clear_expired_data(bigint,bigint)'), ('panko_admin', 'panko.run_maintenance()'),
             ('panko_admin', 'panko.message_id_hash(text)'), ('panko_admin', 'panko.set_retention(text,bigint)'),
             ('panko_admin', 'panko.expire_class(text)'), ('panko_admin', 'panko.seal_partitions(integer)'),
             ('panko_reader', 'panko.retention_class(text)'), ('panko_reader', 'panko.retention_classes()'),
             ('panko_writer', 'panko.retention_class(text)'), ('panko_writer', 'panko.retention_classes()'),
             ('panko_writer', 'panko.rating_push(jsonb)'), ('panko_writer', 'panko.rating_push_frames(jsonb)'), ('panko_writer', 'panko.rating_check_points(jsonb)'),
             ('panko_admin', 'panko.rating_delete(timestamp with time zone,timestamp with time zone,jsonb)'),
             ('panko_admin', 'panko.rating_init(bigint)')
      UNION ALL
      SELECT r, f FROM unnest(ARRAY['panko_reader', 'panko_query']) r, unnest(ARRAY[
                 'panko.rating_retrieve(timestamp with time zone,timestamp with time zone,text[],jsonb,jsonb,bigint,bigint)',
                 'panko.rating_total(timestamp with time zone,timestamp with time zone,text[],text[],jsonb,jsonb,text,bigint,bigint)',
                 'panko.rating_sum(panko.traits,text)', 'panko.rating_point(panko.traits,text,text)', 'panko.rating_keys(panko.traits,text[])',
                 'panko.rating_conditions(jsonb,jsonb,integer)',
                 'panko.rating_type_ids(text[])',
                 'panko.rating_check_window(timestamp with time zone,timestamp with time zone,bigint,bigint)',
                 'panko.rating_rollup_covers(timestamp with time zone,timestamp with time zone,jsonb,jsonb)']) f
      UNION ALL
      SELECT r, f FROM unnest(ARRAY['panko_auditor', 'panko_query']) r, unnest(ARRAY[
                 'panko.metric_buckets(text,timestamp with time zone,timestamp with time zone,bigint,jsonb,text)',
                 'panko.metric_check_window(interval,timestamp with time zone,timestamp with time zone)',
                 'panko.metric_filter(text,jsonb,text)', 'panko.metric_floor(bigint,bigint)', 'panko.metric_jsonb(text,text)',
                 'panko.metric_trait(text,jsonb)', 'panko.metric_ts(bigint)', 'panko.metric_us(timestamp with time zone)', 'panko.metric_tags(panko.traits)', 'panko.metric_value(panko.traits,jsonb)']) f
      UNION ALL
      SELECT r, f FROM unnest(ARRAY['panko_reader', 'panko_query']) r, unnest(ARRAY[
                 'panko.metric_events(text,timestamp with time zone,timestamp with time zone,text,integer)', 'panko.metric_latest(text,text)',
                 'panko.metric_running_total(text,interval,timestamp with time zone,timestamp with time zone,jsonb,text)',
                 'panko.metric_series(text,interval,timestamp with time zone,timestamp with time zone,jsonb,text)',
                 'panko.metric_tags(panko.traits)', 'panko.metric_value(panko.traits,jsonb)']) f
      UNION ALL
      VALUES ('panko_writer', 'panko.metric_report(jsonb)'),
             ('panko_query', 'panko.rating_point(panko.traits,timestamp with time zone,integer)'),
             ('panko_query', 'panko.rating_rollup_total(timestamp with time zone,timestamp with time zone,integer[],text[],text[],integer[],text[],text[],bigint,bigint)'),
             ('panko_query', 'panko.rating_rollup_request(timestamp with time zone,timestamp with time zone,text[],text[],jsonb,jsonb,text)')$$,
    'EXECUTE grants to panko roles are exactly: readers query, writers record, admins expire, gateways set identity and answer HTTP');

------------------------------------------------------------------ a role without any panko role
SET LOCAL ROLE tap_plain;
SELECT throws_ok('SELECT count(*) FROM panko.event', '42501', 'permission denied for table event',
                 'a plain role cannot read panko.event');
SELECT throws_ok('SELECT count(*) FROM panko.events', '42501', 'permission denied for view events',
                 'a plain role cannot read panko.events');
SELECT throws_ok('SELECT count(*) FROM panko.event_type', '42501', 'permission denied for table event_type',
                 'a plain role cannot read panko.event_type');
SELECT throws_ok('SELECT count(*) FROM panko.get_events()', '42501', 'permission denied for function get_events',
                 'a plain role cannot call panko.get_events');
SELECT throws_ok('SELECT count(*) FROM panko.event_types()', '42501', 'permission denied for function event_types',
                 'a plain role cannot call panko.event_types');
SELECT throws_ok($$SELECT count(*) FROM panko.record_events('[]')$$, '42501', 'permission denied for function record_events',
                 'a plain role cannot call panko.record_events');
SELECT throws_ok($$SELECT panko.set_identity('a1', 'A', 'admin', true)$$, '42501', 'permission denied for function set_identity',
                 'a plain role cannot call panko.set_identity');
SELECT throws_ok($$SELECT panko.api_get_events('{}')$$, '42501', 'permission denied for function api_get_events',
                 'a plain role cannot call panko.api_get_events');
SELECT throws_ok('CREATE FUNCTION panko.tap_trojan() RETURNS int LANGUAGE sql AS $f$ SELECT 1 $f$', '42501',
                 'permission denied for schema panko', 'a plain role cannot create functions in schema panko');
SELECT lives_ok($$SELECT panko.traits_to_jsonb('{"a":string="b"}'::panko.traits)$$,
                'a plain role can use the panko.traits type and its pure functions');
RESET ROLE;

------------------------------------------------------------------ panko_reader
SELECT name AS tap_partition FROM panko.partition ORDER BY lower_bound LIMIT 1 \gset
SET LOCAL ROLE tap_reader;
SELECT lives_ok('SELECT count(*) FROM panko.get_events()', 'panko_reader may query through panko.get_events (positive control)');
SELECT throws_ok('SELECT count(*) FROM panko.events', '42501', 'permission denied for view events',
                 'panko_reader cannot read panko.events directly (EXPLAIN would count hidden rows)');
SELECT throws_ok('SELECT count(*) FROM panko.event', '42501', 'permission denied for table event',
                 'panko_reader cannot read panko.event directly');
SELECT throws_ok($$INSERT INTO panko.event VALUES (now(), 1, 'tap-x', '{}', NULL)$$, '42501',
                 'permission denied for table event', 'panko_reader cannot insert into panko.event');
SELECT throws_ok($$UPDATE panko.event SET raw = NULL$$, '42501', 'permission denied for table event',
                 'panko_reader cannot update panko.event');
SELECT throws_ok($$DELETE FROM panko.event$$, '42501', 'permission denied for table event',
                 'panko_reader cannot delete from panko.event');
SELECT throws_ok($$TRUNCATE panko.event$$, '42501', 'permission denied for table event',
                 'panko_reader cannot truncate panko.event');
SELECT throws_ok($$INSERT INTO panko.event_type (name) VALUES ('tap.type')$$, '42501',
                 'permission denied for table event_type', 'panko_reader cannot insert into panko.event_type');
SELECT throws_ok($$SELECT count(*) FROM panko.record_events('[{"message_id": "tap-r1", "event_type": "x", "generated": "2024-03-01T00:00:00", "traits": []}]')$$,
                 '42501', 'permission denied for function record_events', 'panko_reader cannot call panko.record_events');
SELECT throws_ok($$SELECT panko.api_post_events('[]')$$, '42501', 'permission denied for function api_post_events',
                 'panko_reader cannot call panko.api_post_events');
SELECT throws_ok($$SELECT panko.set_identity('a1', 'A', 'admin', true)$$, '42501',
                 'permission denied for function set_identity', 'panko_reader cannot call panko.set_identity');
SELECT throws_ok('SELECT panko.clear_expired_data(0)', '42501', 'permission denied for function clear_expired_data',
                 'panko_reader cannot call panko.clear_expired_data');
SELECT throws_ok('SELECT panko.run_maintenance()', '42501', 'permission denied for function run_maintenance',
                 'panko_reader cannot call panko.run_maintenance');
SELECT throws_ok('SELECT count(*) FROM panko.event_message', '42501', 'permission denied for table event_message',
                 'panko_reader cannot read the message_id registry');
SELECT throws_ok('SELECT count(*) FROM panko.partition', '42501', 'permission denied for table partition',
                 'panko_reader cannot read panko.partition (which days hold events)');
SELECT throws_ok(format('SELECT count(*) FROM panko.%I', :'tap_partition'), '42501',
                 format('permission denied for table %s', :'tap_partition'),
                 'panko_reader cannot read a partition directly (' || :'tap_partition' || ')');
SELECT throws_ok(format('SELECT count(*) FROM ONLY panko.%I', :'tap_partition'), '42501', NULL,
                 'panko_reader cannot read a partition with ONLY either');
RESET ROLE;
SELECT is_empty(
    $$SELECT t.relid::regclass::text || ' ' || r || ' ' || p.priv
        FROM pg_partition_tree('panko.event') t,
             unnest(ARRAY['panko_reader', 'panko_writer', 'panko_admin', 'panko_api', 'panko_auditor',
                          'panko_query', 'tap_api', 'tap_reader', 'tap_writer', 'tap_plain']) r,
             unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE']) p(priv)
       WHERE t.level > 0
         AND has_table_privilege(r, t.relid, p.priv) <> has_table_privilege(r, 'panko.event', p.priv)$$,
    'every role has on each table under panko.event (days and their class tables) exactly the privileges it has on panko.event');
SELECT cmp_ok((SELECT count(*) FROM pg_partition_tree('panko.event') t WHERE t.level = 2), '>', 0::bigint,
              'the fixture has class tables under its days (so the checks around are not vacuous)');
SELECT is_empty(
    $$SELECT c.relname, x.polname
        FROM pg_partition_tree('panko.event') t JOIN pg_class c ON c.oid = t.relid
        LEFT JOIN LATERAL (
            (SELECT p.polname, p.polcmd, p.polpermissive, p.polroles, pg_get_expr(p.polqual, p.polrelid) q
               FROM pg_policy p WHERE p.polrelid = 'panko.event'::regclass
             EXCEPT
             SELECT p.polname, p.polcmd, p.polpermissive, p.polroles, pg_get_expr(p.polqual, p.polrelid)
               FROM pg_policy p WHERE p.polrelid = c.oid)
            UNION ALL
            (SELECT p.polname, p.polcmd, p.polpermissive, p.polroles, pg_get_expr(p.polqual, p.polrelid)
               FROM pg_policy p WHERE p.polrelid = c.oid
             EXCEPT
             SELECT p.polname, p.polcmd, p.polpermissive, p.polroles, pg_get_expr(p.polqual, p.polrelid) q
               FROM pg_policy p WHERE p.polrelid = 'panko.event'::regclass)) x ON true
       WHERE t.level > 0 AND (NOT c.relrowsecurity OR x.polname IS NOT NULL)$$,
    'each table under panko.event has row-level security and exactly the policies of panko.event');
-- get_events names partitions directly: one without row-level security is
-- an error, never a read that skips the policy.
ALTER TABLE panko.:"tap_partition" DISABLE ROW LEVEL SECURITY;
SET ROLE tap_reader;
SELECT throws_ok($$SELECT count(*) FROM panko.get_events('{}', 10)$$, '55000', NULL,
                 'get_events refuses to read a partition without row-level security');
RESET ROLE;
ALTER TABLE panko.:"tap_partition" ENABLE ROW LEVEL SECURITY;
-- (a partition of one retention class is read through its one table)
SELECT c.relname AS tap_table FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
 WHERE i.inhparent = format('panko.%I', :'tap_partition')::regclass LIMIT 1 \gset
ALTER TABLE panko.:"tap_table" DISABLE ROW LEVEL SECURITY;
SET ROLE tap_reader;
SELECT throws_ok($$SELECT count(*) FROM panko.get_events('{}', 10)$$, '55000', NULL,
                 'get_events refuses to read a partition''s table without row-level security');
RESET ROLE;
ALTER TABLE panko.:"tap_table" ENABLE ROW LEVEL SECURITY;
SELECT throws_ok($$SELECT panko.secure_partition('event_type')$$, '22023', NULL,
                 'secure_partition refuses a table that is not a partition of panko.event');
SELECT throws_ok($$SELECT panko.secure_partition('event')$$, '22023', NULL,
                 'secure_partition refuses panko.event itself');

------------------------------------------------------------------ panko_writer
SET LOCAL ROLE tap_writer;
SELECT is(
    (SELECT count(*)::int FROM panko.record_events(
        '[{"message_id": "tap-w1", "event_type": "tap.write", "generated": "2024-03-01T00:00:00", "traits": [["project_id", 1, "A"]]}]')),
    0, 'panko_writer can record events (nothing reported as not stored)');
SELECT throws_ok('SELECT count(*) FROM panko.events', '42501', 'permission denied for view events',
                 'panko_writer alone cannot read panko.events');
SELECT throws_ok('SELECT count(*) FROM panko.event', '42501', 'permission denied for table event',
                 'panko_writer alone cannot read panko.event');
SELECT throws_ok($$INSERT INTO panko.event VALUES (now(), 1, 'tap-x', '{}', NULL)$$, '42501',
                 'permission denied for table event', 'panko_writer cannot insert into panko.event directly');
SELECT throws_ok($$SELECT panko.set_identity('a1', 'A', 'admin', true)$$, '42501',
                 'permission denied for function set_identity', 'panko_writer cannot call panko.set_identity');
RESET ROLE;
SELECT is((SELECT count(*)::int FROM panko.event WHERE message_id = 'tap-w1'), 1, 'the writer''s event was stored');

------------------------------------------------------------------ panko_admin
SET LOCAL ROLE tap_admin;
SELECT is(panko.clear_expired_data(-1), 0::bigint, 'panko_admin can call panko.clear_expired_data (ttl -1 keeps all)');
SELECT ok(panko.run_maintenance() ?& ARRAY['partitions_created', 'partitions_dropped', 'rows_deleted', 'skipped'],
          'panko_admin can call panko.run_maintenance');
SELECT throws_ok($$SELECT panko.set_identity('a1', 'A', 'admin', true)$$, '42501',
                 'permission denied for function set_identity', 'panko_admin cannot call panko.set_identity (it is no gateway)');
SELECT throws_ok($$INSERT INTO panko.event VALUES (now(), 1, 'tap-x', '{}', NULL)$$, '42501',
                 'permission denied for table event', 'panko_admin cannot insert into panko.event directly');
SELECT throws_ok($$DELETE FROM panko.event$$, '42501', 'permission denied for table event',
                 'panko_admin cannot delete from panko.event directly');
SELECT throws_ok($$TRUNCATE panko.event$$, '42501', 'permission denied for table event',
                 'panko_admin cannot truncate panko.event');
SELECT throws_ok($$SELECT panko.create_partition_for(now() + interval '3 years')$$, '42501',
                 'permission denied for function create_partition_for',
                 'panko_admin cannot call the internal SECURITY DEFINER panko.create_partition_for');
RESET ROLE;

------------------------------------------------------------------ panko_auditor
SET LOCAL ROLE tap_auditor;
SELECT is((SELECT count(*)::int FROM panko.events), 11,
          'panko_auditor reads every tenant''s events directly (the fixture and tap-w1)');
SELECT throws_ok($$SELECT count(*) FROM panko.record_events('[]')$$, '42501',
                 'permission denied for function record_events', 'panko_auditor cannot record events');
SELECT throws_ok('SELECT panko.run_maintenance()', '42501', 'permission denied for function run_maintenance',
                 'panko_auditor cannot run maintenance');
RESET ROLE;

------------------------------------------------------------------ panko_api (the gateway)
SET LOCAL ROLE tap_api;
SELECT lives_ok($$SELECT panko.set_identity('a1', 'A', 'member')$$, 'panko_api can call panko.set_identity');
SELECT throws_ok('SELECT panko.clear_expired_data(0)', '42501', 'permission denied for function clear_expired_data',
                 'panko_api cannot call panko.clear_expired_data');
SELECT throws_ok('SELECT panko.run_maintenance()', '42501', 'permission denied for function run_maintenance',
                 'panko_api cannot call panko.run_maintenance');
SELECT throws_ok($$DELETE FROM panko.event$$, '42501', 'permission denied for table event',
                 'panko_api cannot delete from panko.event');
SELECT throws_ok($$SELECT panko.drop_expired_partitions(now(), NULL)$$, '42501',
                 'permission denied for function drop_expired_partitions',
                 'panko_api cannot call the internal SECURITY DEFINER panko.drop_expired_partitions');
SELECT throws_ok($$SELECT panko.purge_registry()$$, '42501', 'permission denied for function purge_registry',
                 'panko_api cannot call the internal SECURITY DEFINER panko.purge_registry');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
