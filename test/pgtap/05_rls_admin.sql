-- Row-level security for an admin identity: its own project's events plus
-- events without a project_id trait, never another project's; with
-- all_tenants (set_identity(..., true) or q all_tenants=True through
-- api_get_events) everything.  The gateway role tap_api states the identity.
BEGIN;
SELECT plan(45);

SELECT is((SELECT count(*)::int FROM panko.event), 10, 'fixture: 10 events (seen by the superuser)');

------------------------------------------------------------------ admin of project A
SET LOCAL ROLE tap_api;
SELECT panko.set_identity('adm', 'A', 'admin') IS NULL AS ignored \gset
SELECT is(panko.caller_mode(), 'admin', 'adm@A with role admin is an admin');

SELECT results_eq('SELECT message_id COLLATE "default" FROM panko.events ORDER BY 1',
                  ARRAY['a1-create', 'a1-delete', 'a2-create', 'np-auth', 'np-bare'],
                  'admin@A: panko.events shows project A''s events and events without project_id');
SELECT results_eq('SELECT message_id COLLATE "default" FROM panko.event ORDER BY 1',
                  ARRAY['a1-create', 'a1-delete', 'a2-create', 'np-auth', 'np-bare'],
                  'admin@A: panko.event (the table) shows the same');
SELECT results_eq('SELECT message_id FROM panko.get_events() ORDER BY 1',
                  ARRAY['a1-create', 'a1-delete', 'a2-create', 'np-auth', 'np-bare'],
                  'admin@A: get_events() with no filter shows the same');
SELECT is_empty($$SELECT 1 FROM panko.get_events('{"traits_filter": [{"key": "project_id", "op": "eq", "string": "B"}]}')$$,
                'admin@A: get_events() with a project_id = B trait filter returns nothing');
SELECT results_eq($$SELECT message_id FROM panko.get_events('{"admin_proj": "B"}') ORDER BY 1$$,
                  ARRAY['np-auth', 'np-bare'],
                  'admin@A: get_events() with admin_proj = B adds nothing of B (only events without project remain)');
SELECT results_eq($$SELECT message_id FROM panko.get_events('{"admin_proj": "A"}') ORDER BY 1$$,
                  ARRAY['a1-create', 'a1-delete', 'a2-create', 'np-auth', 'np-bare'],
                  'admin@A: get_events() with admin_proj = A (upstream''s admin filter) is its whole view');
SELECT is_empty($$SELECT 1 FROM panko.get_events('{"event_type": "image.upload"}')$$,
                'admin@A: get_events() for project B''s event type returns nothing');
SELECT throws_ok($$SELECT * FROM panko.get_events('{}', 10, NULL, 'b1-create')$$, '22023',
                 'marker "b1-create" is not an event you can see', 'admin@A: the marker of a project B event is rejected');
SELECT throws_ok($$SELECT * FROM panko.get_events('{}', 10, NULL, 'lc-a1')$$, '22023',
                 'marker "lc-a1" is not an event you can see', 'admin@A: the marker of a project "a" event is rejected');
SELECT results_eq($$SELECT message_id FROM panko.get_events('{}', 10, NULL, 'a2-create')$$, ARRAY['np-bare'],
                  'admin@A: a visible marker pages on, skipping project B''s later events');
SELECT results_eq('SELECT * FROM panko.event_types()',
                  ARRAY['compute.instance.create.end', 'compute.instance.delete.end', 'identity.authenticate'],
                  'admin@A: event_types() lists the types of the events it can see');
SELECT is_empty($$SELECT * FROM panko.trait_types('image.upload')$$, 'admin@A: trait_types() of project B''s type is empty');
SELECT results_eq($$SELECT name, type FROM panko.trait_types('identity.authenticate')$$,
                  $$VALUES ('initiator', 'string'), ('user_id', 'string')$$,
                  'admin@A: trait_types() of the project-less type');
SELECT results_eq($$SELECT value FROM panko.get_traits('compute.instance.create.end', 'project_id')$$, ARRAY['A', 'A'],
                  'admin@A: get_traits(type, project_id) shows project A only (two events)');
SELECT is_empty($$SELECT * FROM panko.get_traits('image.upload', 'b_secret')$$,
                'admin@A: get_traits() of project B''s trait is empty');
SELECT results_eq($$SELECT e->>'message_id' FROM json_array_elements(panko.api_get_events('{}')) e ORDER BY 1$$,
                  ARRAY['a1-create', 'a1-delete', 'a2-create', 'np-auth', 'np-bare'],
                  'admin@A: api_get_events() agrees');
SELECT is(panko.api_get_events('{"q": [{"field": "project_id", "value": "B"}]}')::text, '[]',
          'admin@A: api_get_events() with q project_id = B returns []');
SELECT is(panko.api_get_event('np-bare')->>'message_id', 'np-bare', 'admin@A: api_get_event() of an event without traits');
SELECT is(panko.api_get_event('a2-create')->>'message_id', 'a2-create', 'admin@A: api_get_event() of another user''s event in A');
SELECT throws_ok($$SELECT panko.api_get_event('b1-create')$$, 'P0002', 'Event b1-create Not Found',
                 'admin@A: api_get_event() of a project B event is P0002 (404)');
SELECT throws_ok($$SELECT panko.api_get_events('{"marker": "b-a1"}')$$, '22023', 'marker "b-a1" is not an event you can see',
                 'admin@A: api_get_events() rejects the marker of a project B event');
SELECT is(panko.caller_mode(), 'admin', 'admin@A: none of this widened its view');

-- all_tenants=False for an admin: upstream consumes the item (no trait
-- filter) and keeps the admin's own scope.
SELECT results_eq($$SELECT e->>'message_id' FROM json_array_elements(panko.api_get_events('{"q": [{"field": "all_tenants", "value": "False"}]}')) e ORDER BY 1$$,
                  ARRAY['a1-create', 'a1-delete', 'a2-create', 'np-auth', 'np-bare'],
                  'admin@A: q all_tenants=False keeps the admin''s own view (not a trait filter)');

-- all_tenants=True through the HTTP parameters
SELECT is((SELECT count(*)::int FROM json_array_elements(panko.api_get_events('{"q": [{"field": "all_tenants", "op": "eq", "value": "True"}], "limit": 100}'))),
          10, 'admin@A: q all_tenants=True through api_get_events() shows all 10 events');
RESET ROLE;

SET LOCAL ROLE tap_api;
SELECT panko.set_identity('adm', 'A', 'ADMIN') IS NULL AS ignored \gset
SELECT is((SELECT count(*)::int FROM json_array_elements(panko.api_get_events('{"q": [{"field": "all_tenants", "value": "on"}]}'))),
          10, 'admin@A: all_tenants=on (oslo bool_from_string) also shows all 10 events');

------------------------------------------------------------------ admin of project A with all_tenants
SELECT panko.set_identity('adm', 'A', 'admin', true) IS NULL AS ignored \gset
SELECT is(panko.caller_mode(), 'all', 'set_identity(..., all_tenants => true) for an admin');
SELECT is((SELECT count(*)::int FROM panko.events), 10, 'admin all_tenants: panko.events shows all 10 events');
SELECT is((SELECT count(*)::int FROM panko.get_events()), 10, 'admin all_tenants: get_events() shows all 10 events');
SELECT results_eq('SELECT * FROM panko.event_types()',
                  ARRAY['compute.instance.create.end', 'compute.instance.delete.end', 'identity.authenticate', 'image.upload'],
                  'admin all_tenants: event_types() lists every type');
SELECT results_eq($$SELECT value FROM panko.get_traits('image.upload', 'b_secret')$$, ARRAY['only-in-B'],
                  'admin all_tenants: get_traits() reaches project B');
SELECT is(panko.api_get_event('b1-create')->>'message_id', 'b1-create', 'admin all_tenants: api_get_event() of a project B event');

------------------------------------------------------------------ the admin-only routes see every project (upstream)
SELECT panko.set_identity('adm', 'A', 'admin') IS NULL AS ignored \gset
SELECT is(panko.api_event_types()::text,
          '["compute.instance.create.end", "compute.instance.delete.end", "identity.authenticate", "image.upload"]',
          'admin@A: api_event_types() lists every type, sorted');
SELECT is(panko.api_traits('image.upload', 'b_secret')::text, '[{"name" : "b_secret", "value" : "only-in-B", "type" : "string"}]',
          'admin@A: api_traits() is admin-wide');

------------------------------------------------------------------ admin of project B, admin without project
SELECT panko.set_identity('adm', 'B', 'member,admin') IS NULL AS ignored \gset
SELECT results_eq('SELECT message_id FROM panko.get_events() ORDER BY 1',
                  ARRAY['b-a1', 'b1-create', 'b1-upload', 'np-auth', 'np-bare'],
                  'admin@B: project B''s events and events without project_id, nothing of A');
SELECT results_eq('SELECT * FROM panko.event_types()',
                  ARRAY['compute.instance.create.end', 'identity.authenticate', 'image.upload'],
                  'admin@B: event_types()');
SELECT throws_ok($$SELECT panko.api_get_event('a1-create')$$, 'P0002', 'Event a1-create Not Found',
                 'admin@B: api_get_event() of a project A event is P0002');

SELECT panko.set_identity('adm', NULL, 'admin') IS NULL AS ignored \gset
SELECT results_eq('SELECT message_id COLLATE "default" FROM panko.events ORDER BY 1', ARRAY['np-auth', 'np-bare'],
                  'an admin without project sees only events without project_id');

------------------------------------------------------------------ non-admins asking for all tenants
SELECT panko.set_identity('a1', 'A', 'member', true) IS NULL AS ignored \gset
SELECT results_eq('SELECT message_id COLLATE "default" FROM panko.events ORDER BY 1', ARRAY['a1-create', 'a1-delete'],
                  'a member with set_identity(..., all_tenants => true) still sees only its own events');
SELECT is(panko.api_get_events('{"q": [{"field": "all_tenants", "value": "True"}]}')::text, '[]',
          'a member with q all_tenants=True sees nothing (an ordinary trait filter)');
SELECT panko.set_identity('a1', 'A', 'administrator, admin_A, member') IS NULL AS ignored \gset
SELECT results_eq('SELECT message_id COLLATE "default" FROM panko.events ORDER BY 1', ARRAY['a1-create', 'a1-delete'],
                  'roles that only look like admin give a member''s view');
SELECT is(panko.api_get_events('{"q": [{"field": "all_tenants", "value": "True"}]}')::text, '[]',
          '... and all_tenants=True gives them nothing');
SELECT panko.set_identity('svc', 'A', 'service') IS NULL AS ignored \gset
SELECT is_empty($$SELECT 1 FROM panko.events WHERE message_id IN ('b1-create', 'np-auth')$$,
                'the service role is no admin for reading');
RESET ROLE;

------------------------------------------------------------------ the same through panko_reader
SELECT panko.set_identity('adm', 'A', 'admin') IS NULL AS ignored \gset
SET LOCAL ROLE tap_reader;
SELECT results_eq('SELECT message_id FROM panko.get_events() ORDER BY 1',
                  ARRAY['a1-create', 'a1-delete', 'a2-create', 'np-auth', 'np-bare'],
                  'identity stated by a superuser, then SET ROLE to a reader: admin@A rules');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
