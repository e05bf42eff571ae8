-- The row-level security policy of panko.event is panko.event_visible
-- (since 0.12.0).  Here it is held to the rule it replaced, written out in
-- SQL (the CASE over caller_mode() and caller_scope() of 0.11.0), for
-- every kind of caller, over the 10 fixture events: the same events, and
-- as many as each caller is known to see.
BEGIN;
SELECT plan(23);

SELECT is((SELECT pg_get_expr(polqual, polrelid) FROM pg_policy
            WHERE polrelid = 'panko.event'::regclass AND polname = 'event_visibility'),
          'panko.event_visible(traits)', 'the policy of panko.event is event_visible(traits)');

-- The fixture's traits, readable by every role (the policy is not asked here).
CREATE TEMP TABLE fixture AS SELECT message_id, traits FROM panko.event;
GRANT SELECT ON fixture TO PUBLIC;

-- The rule of 0.11.0's policy, as SQL.
CREATE TEMP VIEW by_rule AS
SELECT message_id FROM fixture
 WHERE CASE panko.caller_mode()
           WHEN 'all' THEN true
           WHEN 'member' THEN traits OPERATOR(panko.@>) panko.caller_scope()
           WHEN 'admin' THEN coalesce(traits OPERATOR(panko.@>) panko.caller_scope(), false)
                             OR NOT traits OPERATOR(panko.?) 'project_id'
           ELSE false
       END;
CREATE TEMP VIEW by_function AS
SELECT message_id FROM fixture WHERE panko.event_visible(traits);
GRANT SELECT ON by_rule, by_function TO PUBLIC;

-- Each caller: the same events both ways, and how many.
CREATE FUNCTION pg_temp.agrees(who text, n integer) RETURNS SETOF text LANGUAGE plpgsql AS $$
BEGIN
    RETURN NEXT set_eq('SELECT message_id FROM by_function', 'SELECT message_id FROM by_rule',
                       who || ': event_visible lets through exactly what the rule does');
    RETURN NEXT is((SELECT count(*)::int FROM by_function), n, who || ': sees ' || n || ' of the 10 events');
END
$$;
GRANT EXECUTE ON FUNCTION pg_temp.agrees(text, integer) TO PUBLIC;

-- Did the statement run in parallel workers?
CREATE FUNCTION pg_temp.workers_launched(q text) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    line text;
BEGIN
    FOR line IN EXECUTE 'EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) ' || q LOOP
        IF line ~ 'Workers Launched: [1-9]' THEN
            RETURN true;
        END IF;
    END LOOP;
    RETURN false;
END
$$;
GRANT EXECUTE ON FUNCTION pg_temp.workers_launched(text) TO PUBLIC;

------------------------------------------------------------------ without a stated identity: the role decides
SET LOCAL ROLE tap_admin;
SELECT * FROM pg_temp.agrees('panko_admin, no identity (all)', 10);
RESET ROLE;
SET LOCAL ROLE tap_reader;
SELECT * FROM pg_temp.agrees('panko_reader, no identity (none)', 0);
RESET ROLE;

------------------------------------------------------------------ identities stated by the gateway
SET LOCAL ROLE tap_api;
SELECT panko.set_identity('a1', 'A', 'member') IS NULL AS ignored \gset
SELECT * FROM pg_temp.agrees('member a1@A', 2);
SELECT panko.set_identity('a1', 'a', 'member') IS NULL AS ignored \gset
SELECT * FROM pg_temp.agrees('member a1@a (case matters)', 1);
SELECT panko.set_identity('a1', '', 'member') IS NULL AS ignored \gset
SELECT * FROM pg_temp.agrees('member a1 without a project (none)', 0);
SELECT panko.set_identity('adm', 'A', 'admin') IS NULL AS ignored \gset
SELECT * FROM pg_temp.agrees('admin@A', 5);
SELECT panko.set_identity('adm', 'B', 'admin') IS NULL AS ignored \gset
SELECT * FROM pg_temp.agrees('admin@B', 5);
SELECT panko.set_identity('adm', 'A', 'admin', true) IS NULL AS ignored \gset
SELECT * FROM pg_temp.agrees('admin@A with all_tenants (all)', 10);
RESET ROLE;

-- And the policy on the table itself, also in parallel workers (which
-- resolve the caller from the settings the leader passes them).
SET LOCAL ROLE tap_api;
SELECT panko.set_identity('a1', 'A', 'member') IS NULL AS ignored \gset
SELECT is((SELECT count(*)::int FROM panko.event), 2, 'member a1@A: two events in panko.event itself');
SET LOCAL force_parallel_mode = on;
SET LOCAL parallel_setup_cost = 0;
SET LOCAL parallel_tuple_cost = 0;
SET LOCAL min_parallel_table_scan_size = 0;
SELECT ok(pg_temp.workers_launched('SELECT count(*) FROM panko.event'),
          'member a1@A: the count below runs in parallel workers');
SELECT is((SELECT count(*)::int FROM panko.event), 2, 'member a1@A, in parallel workers: the same two events');
SELECT panko.set_identity('adm', 'B', 'admin') IS NULL AS ignored \gset
SELECT is((SELECT count(*)::int FROM panko.event), 5, 'admin@B, in parallel workers: five events');
RESET force_parallel_mode;
RESET ROLE;

-- An expression that outlives a statement (PL/pgSQL keeps its simple
-- ones for the transaction) asks again once the identity changed.
CREATE FUNCTION pg_temp.visible_as_a1_then_b1(t panko.traits) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    answers text := '';
BEGIN
    FOR i IN 1..2 LOOP
        IF i = 1 THEN
            PERFORM panko.set_identity('a1', 'A', 'member');
        ELSE
            PERFORM panko.set_identity('b1', 'B', 'member');
        END IF;
        answers := answers || panko.event_visible(t)::text || ' ';
    END LOOP;
    RETURN answers;
END
$$;
GRANT EXECUTE ON FUNCTION pg_temp.visible_as_a1_then_b1(panko.traits) TO PUBLIC;
SET LOCAL ROLE tap_api;
SELECT is(pg_temp.visible_as_a1_then_b1((SELECT traits FROM fixture WHERE message_id = 'a1-create')), 'true false ',
          'one expression, two identities: a1@A sees a1-create, b1@B then does not');
RESET ROLE;

-- ... and once a rolled-back subtransaction took back an identity it
-- stated (the settings revert without a new set_identity).
CREATE FUNCTION pg_temp.visible_as_all_then_a1(t panko.traits) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    answers text := '';
BEGIN
    PERFORM panko.set_identity('a1', 'A', 'member');
    FOR i IN 1..2 LOOP
        BEGIN
            IF i = 1 THEN
                PERFORM panko.set_identity('adm', 'A', 'admin', true);
            END IF;
            answers := answers || panko.event_visible(t)::text || ' ';
            IF i = 1 THEN
                RAISE EXCEPTION 'take the identity back';
            END IF;
        EXCEPTION WHEN raise_exception THEN
            NULL;
        END;
    END LOOP;
    RETURN answers;
END
$$;
GRANT EXECUTE ON FUNCTION pg_temp.visible_as_all_then_a1(panko.traits) TO PUBLIC;
SET LOCAL ROLE tap_api;
SELECT is(pg_temp.visible_as_all_then_a1((SELECT traits FROM fixture WHERE message_id = 'b1-create')), 'true false ',
          'one expression across a rolled-back identity: all_tenants sees b1-create, a1@A after the rollback does not');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
