-- The caller's identity: only panko.set_identity() (for gateways, members
-- of panko_api) or a superuser can state it.  Nobody else can SET the
-- panko.request_* settings, not even before the library is loaded, through
-- set_config(), ALTER ROLE or a function's SET clause.
--
-- The first part runs outside a transaction block, before anything loads
-- the panko library in this session; it changes no persistent state.
SET client_min_messages = error;
SELECT plan(52);

------------------------------------------------------------------ before the library is loaded
-- A non-superuser's SET of a not-yet-defined panko.* setting makes a
-- placeholder; loading the library must throw the value away (or, if it
-- was loaded already, the SET itself is refused).
SET ROLE tap_api;
DO $$
BEGIN
    SET panko.request_user_id = 'b1';
    SET panko.request_project_id = 'B';
    SET panko.request_roles = 'admin';
    SET panko.request_all_tenants = 'on';
EXCEPTION WHEN insufficient_privilege THEN
    NULL;
END
$$;
SELECT diag(CASE current_setting('panko.request_roles', true) WHEN 'admin'
                 THEN 'the SETs made placeholders (panko not loaded yet in this session)'
                 ELSE 'the SETs were refused (panko already loaded)' END);
SELECT is(panko.caller_mode(), 'none', 'placeholders set by a non-superuser before the library loaded are ignored');
SELECT results_eq(
    $$SELECT current_setting('panko.request_user_id'), current_setting('panko.request_project_id'),
             current_setting('panko.request_roles'), current_setting('panko.request_all_tenants')$$,
    $$VALUES ('', '', '', 'off')$$,
    'and their values are gone once the library is loaded');
SELECT is((SELECT count(*)::int FROM panko.events), 0, 'so the gateway role without an identity still sees nothing');

------------------------------------------------------------------ outside a transaction block
SELECT lives_ok($$SELECT panko.set_identity('adm', 'A', 'admin', true)$$,
                'set_identity() outside a transaction block (warns)');
SELECT is(panko.caller_mode(), 'none', 'an identity does not outlive its transaction');
SELECT is(current_setting('panko.request_roles'), '', 'panko.request_roles is empty again');
RESET ROLE;

BEGIN;
------------------------------------------------------------------ SET is for superusers only
SET LOCAL ROLE tap_api;
SELECT throws_ok($$SET panko.request_project_id = 'B'$$, '42501',
                 'permission denied to set parameter "panko.request_project_id"',
                 'panko_api cannot SET panko.request_project_id');
SELECT throws_ok($$SET panko.request_user_id = 'b1'$$, '42501',
                 'permission denied to set parameter "panko.request_user_id"',
                 'panko_api cannot SET panko.request_user_id');
SELECT throws_ok($$SET LOCAL panko.request_roles = 'admin'$$, '42501',
                 'permission denied to set parameter "panko.request_roles"',
                 'panko_api cannot SET LOCAL panko.request_roles');
SELECT throws_ok($$SET panko.request_all_tenants = on$$, '42501',
                 'permission denied to set parameter "panko.request_all_tenants"',
                 'panko_api cannot SET panko.request_all_tenants');
SELECT throws_ok($$SELECT set_config('panko.request_project_id', 'B', true)$$, '42501',
                 'permission denied to set parameter "panko.request_project_id"',
                 'panko_api cannot set_config(panko.request_project_id)');
SELECT throws_ok($$RESET panko.request_roles$$, '42501',
                 'permission denied to set parameter "panko.request_roles"',
                 'panko_api cannot RESET panko.request_roles');
SELECT throws_ok($$ALTER ROLE tap_api SET panko.request_roles = 'admin'$$, '42501', NULL,
                 'panko_api cannot ALTER ROLE ... SET panko.request_roles for itself');
SELECT throws_ok($$CREATE FUNCTION pg_temp.tap_escalate() RETURNS text LANGUAGE sql
                   SET panko.request_roles = 'admin' SET panko.request_all_tenants = on
                   AS 'SELECT panko.caller_mode()'$$, '42501', NULL,
                 'panko_api cannot create a function whose SET clause states an identity');
SELECT throws_ok($$SET panko.event_time_to_live = 1$$, '42501',
                 'permission denied to set parameter "panko.event_time_to_live"',
                 'panko_api cannot SET panko.event_time_to_live');
SELECT throws_ok($$SET panko.partition_interval = 1$$, '42501',
                 'permission denied to set parameter "panko.partition_interval"',
                 'panko_api cannot SET panko.partition_interval (record_events makes partitions with it)');
SELECT throws_ok($$SET panko.expiry_max_count = 1$$, '42501',
                 'permission denied to set parameter "panko.expiry_max_count"',
                 'panko_api cannot SET panko.expiry_max_count');
RESET ROLE;

SET LOCAL ROLE tap_reader;
SELECT throws_ok($$SET panko.request_project_id = 'B'$$, '42501',
                 'permission denied to set parameter "panko.request_project_id"',
                 'panko_reader cannot SET panko.request_project_id');
SELECT throws_ok($$SELECT set_config('panko.request_all_tenants', 'on', false)$$, '42501',
                 'permission denied to set parameter "panko.request_all_tenants"',
                 'panko_reader cannot set_config(panko.request_all_tenants)');
RESET ROLE;

SET LOCAL ROLE tap_admin;
SELECT throws_ok($$SET panko.request_project_id = 'B'$$, '42501',
                 'permission denied to set parameter "panko.request_project_id"',
                 'panko_admin cannot SET panko.request_project_id');
SELECT throws_ok($$SET panko.event_time_to_live = 1$$, '42501',
                 'permission denied to set parameter "panko.event_time_to_live"',
                 'panko_admin cannot SET panko.event_time_to_live');
RESET ROLE;

SET LOCAL ROLE tap_writer;
SELECT throws_ok($$SET panko.request_roles = 'admin'$$, '42501',
                 'permission denied to set parameter "panko.request_roles"',
                 'panko_writer cannot SET panko.request_roles');
RESET ROLE;

SET LOCAL ROLE tap_plain;
SELECT throws_ok($$SET panko.request_project_id = 'B'$$, '42501',
                 'permission denied to set parameter "panko.request_project_id"',
                 'a plain role cannot SET panko.request_project_id');
SELECT throws_ok($$SET panko.request_all_tenants = on$$, '42501',
                 'permission denied to set parameter "panko.request_all_tenants"',
                 'a plain role cannot SET panko.request_all_tenants');
RESET ROLE;

SELECT lives_ok($$SET LOCAL panko.request_project_id = 'X'$$, 'a superuser can SET panko.request_project_id');
SELECT is(current_setting('panko.request_project_id'), 'X', 'and it takes');

------------------------------------------------------------------ set_identity()
SET LOCAL ROLE tap_api;
SELECT lives_ok($$SELECT panko.set_identity('a1', 'A', 'member')$$, 'the gateway states an identity');
SELECT results_eq(
    $$SELECT current_setting('panko.request_user_id'), current_setting('panko.request_project_id'),
             current_setting('panko.request_roles'), current_setting('panko.request_all_tenants')$$,
    $$VALUES ('a1', 'A', 'member', 'off')$$,
    'set_identity() fills panko.request_user_id, _project_id, _roles, _all_tenants');
SELECT is(panko.caller_mode(), 'member', 'a non-admin identity with user and project is a member');
SELECT is(panko.caller_project(), 'A', 'caller_project() is the stated project');
SELECT ok(panko.caller_scope() OPERATOR(panko.=) '{"project_id":string="A", "user_id":string="a1"}'::panko.traits,
          'a member''s scope is its project_id and user_id (string traits)');
SELECT is(panko.enable_all_tenants(), false, 'enable_all_tenants() refuses a member');
SELECT is(panko.caller_mode(), 'member', 'and the member stays a member');

SAVEPOINT before_admin;
SELECT lives_ok($$SELECT panko.set_identity('adm', 'A', 'reader, Admin ')$$, 'a new identity replaces the old one');
SELECT is(panko.caller_mode(), 'admin', '"Admin" among the roles (any case, spaces trimmed) makes an admin');
SELECT ok(panko.caller_scope() OPERATOR(panko.=) '{"project_id":string="A"}'::panko.traits,
          'an admin''s scope is its project_id alone');
SELECT is(panko.enable_all_tenants(), true, 'enable_all_tenants() takes for an admin');
SELECT is(panko.caller_mode(), 'all', 'and makes it see all tenants');
ROLLBACK TO SAVEPOINT before_admin;
SELECT is(panko.caller_mode(), 'member', 'rolling back to a savepoint restores the previous identity');

SELECT panko.set_identity('adm', 'A', 'administrator,admins,xadmin,admin2') IS NULL AS ignored \gset
SELECT is(panko.caller_mode(), 'member', 'roles that merely contain "admin" are not admin');
SELECT is(panko.caller_has_role('admin'), false, 'caller_has_role(''admin'') matches whole role names only');
SELECT panko.set_identity('u', 'P', 'member, service') IS NULL AS ignored \gset
SELECT is(panko.caller_has_role('SERVICE'), true, 'caller_has_role() is case-insensitive');
SELECT panko.set_identity('a1', NULL, 'member') IS NULL AS ignored \gset
SELECT is(panko.caller_mode(), 'none', 'a non-admin identity without a project sees nothing');
SELECT panko.set_identity(NULL, 'A', 'member') IS NULL AS ignored \gset
SELECT is(panko.caller_mode(), 'none', 'a non-admin identity without a user sees nothing');
SELECT panko.set_identity('a1', 'A', 'member', true) IS NULL AS ignored \gset
SELECT is(panko.caller_mode(), 'member', 'all_tenants does nothing for a non-admin identity');
SELECT panko.set_identity(NULL, NULL, 'admin', true) IS NULL AS ignored \gset
SELECT is(panko.caller_mode(), 'all', 'an admin with all_tenants (the "none" auth mode) sees everything');
RESET ROLE;

-- An identity stated by a superuser (acting as gateway) applies to the role
-- it switches to, but grants no privilege.
SELECT panko.set_identity('a1', 'A', 'member') IS NULL AS ignored \gset
SET LOCAL ROLE tap_reader;
SELECT is(panko.caller_mode(), 'member', 'an identity set by a superuser applies after SET ROLE');
RESET ROLE;
SET LOCAL ROLE tap_plain;
SELECT throws_ok('SELECT count(*) FROM panko.events', '42501', 'permission denied for view events',
                 'an identity gives a role without panko_reader no access');
RESET ROLE;

------------------------------------------------------------------ panko.admin_roles
-- The role names that make a caller an admin are a setting (upstream's
-- context_is_admin rule in policy.yaml): superuser-only, read by the policy.
SELECT is(current_setting('panko.admin_roles'), 'admin', 'panko.admin_roles defaults to admin');
SET LOCAL ROLE tap_api;
SELECT throws_ok($$SET panko.admin_roles = 'member'$$, '42501',
                 'permission denied to set parameter "panko.admin_roles"',
                 'a gateway cannot change which roles are admin');
RESET ROLE;
SET LOCAL panko.admin_roles = 'cloud_admin, Operator';
SET LOCAL ROLE tap_api;
SELECT panko.set_identity('u9', 'A', 'reader,operator') IS NULL AS ignored \gset
SELECT is(panko.caller_mode(), 'admin', 'with admin_roles = cloud_admin, Operator: a caller with role operator is an admin (case-insensitive)');
SELECT panko.set_identity('u9', 'A', 'admin') IS NULL AS ignored \gset
SELECT is(panko.caller_mode(), 'member', '... and one with role admin is not');
RESET ROLE;
SET LOCAL panko.admin_roles = 'admin';

SELECT * FROM finish();
ROLLBACK;
