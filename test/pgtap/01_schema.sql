-- Schema objects of the panko extension: types, GIN operator class, tables,
-- the security_invoker view, partitioning, the function signatures of
-- the storage API (and the expiry and HTTP functions), comments, volatility labels and safe
-- search_paths of SECURITY DEFINER functions.
BEGIN;
SELECT plan(73);

SELECT has_extension('panko', 'extension panko is installed');
SELECT is((SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'panko'), 'panko',
          'extension panko lives in schema panko');
SELECT is((SELECT extrelocatable FROM pg_extension WHERE extname = 'panko'), false, 'extension panko is not relocatable');

------------------------------------------------------------------ types
SELECT has_type('panko', 'traits', 'type panko.traits exists');
SELECT has_type('panko', 'traitquery', 'type panko.traitquery exists');
SELECT results_eq(
    $$SELECT t.typname::text COLLATE "default", t.typtype::text, t.typlen::int, t.typreceive <> 0, t.typsend <> 0
        FROM pg_type t WHERE t.typnamespace = 'panko'::regnamespace AND t.typname IN ('traits', 'traitquery')
       ORDER BY 1$$,
    $$VALUES ('traitquery', 'b', -1, true, true), ('traits', 'b', -1, true, true)$$,
    'panko.traits and panko.traitquery are varlena base types with binary I/O');
SELECT is(
    (SELECT castfunc::regprocedure::text FROM pg_cast
      WHERE castsource = 'jsonb'::regtype AND casttarget = 'panko.traits'::regtype),
    'panko.traits(jsonb)', 'cast jsonb -> panko.traits goes through panko.traits(jsonb)');

------------------------------------------------------------------ operators
SELECT set_eq(
    $$SELECT o.oid::regoperator::text, o.oprresult::regtype::text, o.oprcode::regproc::text
        FROM pg_operator o WHERE o.oprnamespace = 'panko'::regnamespace$$,
    $$VALUES ('panko.?(panko.traits,text)', 'boolean', 'panko.traits_exist'),
             ('panko.@>(panko.traits,panko.traits)', 'boolean', 'panko.traits_contains'),
             ('panko.<@(panko.traits,panko.traits)', 'boolean', 'panko.traits_contained'),
             ('panko.@@(panko.traits,panko.traitquery)', 'boolean', 'panko.traits_match'),
             ('panko.@@(panko.traitquery,panko.traits)', 'boolean', 'panko.traits_match_commutator'),
             ('panko.->(panko.traits,text)', 'text', 'panko.traits_fetch_text'),
             ('panko.=(panko.traits,panko.traits)', 'boolean', 'panko.traits_eq'),
             ('panko.<>(panko.traits,panko.traits)', 'boolean', 'panko.traits_ne')$$,
    'operators ? @> <@ @@ (both ways) -> = <> on panko.traits, with their functions');

------------------------------------------------------------------ GIN operator class
SELECT has_opclass('panko', 'traits_ops', 'operator class panko.traits_ops exists');
SELECT results_eq(
    $$SELECT a.amname::text COLLATE "default", c.opcintype::regtype::text, c.opcdefault, c.opckeytype::regtype::text
        FROM pg_opclass c JOIN pg_am a ON a.oid = c.opcmethod
       WHERE c.opcnamespace = 'panko'::regnamespace AND c.opcname = 'traits_ops'$$,
    $$VALUES ('gin', 'panko.traits', true, 'bytea')$$,
    'panko.traits_ops is the default GIN operator class of panko.traits, keys bytea');
SELECT results_eq(
    $$SELECT o.amopstrategy::int, o.amopopr::regoperator::text
        FROM pg_amop o JOIN pg_opclass c ON c.opcfamily = o.amopfamily
       WHERE c.opcnamespace = 'panko'::regnamespace AND c.opcname = 'traits_ops'
       ORDER BY 1$$,
    $$VALUES (7, 'panko.@>(panko.traits,panko.traits)'), (9, 'panko.?(panko.traits,text)'),
             (15, 'panko.@@(panko.traits,panko.traitquery)')$$,
    'panko.traits_ops indexes @> (7), ? (9) and @@ (15)');
SELECT results_eq(
    $$SELECT p.amprocnum::int FROM pg_amproc p JOIN pg_opclass c ON c.opcfamily = p.amprocfamily
       WHERE c.opcnamespace = 'panko'::regnamespace AND c.opcname = 'traits_ops' ORDER BY 1$$,
    ARRAY[1, 2, 3, 4, 5],
    'panko.traits_ops has compare, extractValue, extractQuery, consistent and comparePartial');

------------------------------------------------------------------ tables
SELECT has_table('panko', 'event', 'table panko.event exists');
SELECT has_table('panko', 'event_type', 'table panko.event_type exists');
SELECT has_table('panko', 'event_message', 'table panko.event_message exists');
SELECT has_table('panko', 'partition', 'table panko.partition exists');
SELECT columns_are('panko', 'event', ARRAY['generated', 'event_type_id', 'message_id', 'traits', 'raw', 'retention'],
                   'panko.event has columns generated, event_type_id, message_id, traits, raw, retention');
SELECT results_eq(
    $$SELECT a.attname::text COLLATE "default", format_type(a.atttypid, a.atttypmod), a.attnotnull
        FROM pg_attribute a WHERE a.attrelid = 'panko.event'::regclass AND a.attnum > 0 AND NOT a.attisdropped
       ORDER BY a.attnum$$,
    $$VALUES ('generated', 'timestamp with time zone', true), ('event_type_id', 'integer', true),
             ('message_id', 'text', true), ('traits', 'panko.traits', true), ('raw', 'jsonb', false),
             ('retention', 'text', true)$$,
    'panko.event column types and NOT NULLs (raw may be null)');
SELECT columns_are('panko', 'event_type', ARRAY['id', 'name'], 'panko.event_type has columns id, name');
SELECT col_is_unique('panko', 'event_type', ARRAY['name'], 'panko.event_type.name is unique');
SELECT has_pk('panko', 'event_message', 'panko.event_message (the message_id registry) has a primary key');

-- Partitioned by range of generated, every partition registered.
SELECT is((SELECT relkind::text FROM pg_class WHERE oid = 'panko.event'::regclass), 'p',
          'panko.event is a partitioned table');
SELECT is(pg_get_partkeydef('panko.event'::regclass), 'RANGE (generated)', 'panko.event is partitioned by RANGE (generated)');
SELECT cmp_ok((SELECT count(*)::int FROM pg_inherits WHERE inhparent = 'panko.event'::regclass), '>=', 1,
              'the fixture events made at least one partition');
SELECT set_eq(
    $$SELECT inhrelid::regclass::text FROM pg_inherits WHERE inhparent = 'panko.event'::regclass$$,
    $$SELECT 'panko.' || quote_ident(name) FROM panko.partition$$,
    'every partition of panko.event is registered in panko.partition, and only those');
SELECT index_is_type('panko', 'event', 'event_traits_idx', 'gin', 'panko.event has a GIN index on traits');
SELECT is((SELECT pg_get_indexdef(indexrelid) FROM pg_index
            WHERE indrelid = 'panko.event'::regclass AND indexrelid = 'panko.event_traits_idx'::regclass),
          'CREATE INDEX event_traits_idx ON ONLY panko.event USING gin (traits) WITH (gin_pending_list_limit=''512'')',
          'the GIN index covers panko.event.traits with the default opclass');

------------------------------------------------------------------ the view
SELECT has_view('panko', 'events', 'view panko.events exists');
SELECT columns_are('panko', 'events', ARRAY['message_id', 'event_type', 'generated', 'traits', 'raw'],
                   'panko.events has columns message_id, event_type, generated, traits, raw');
SELECT results_eq(
    $$SELECT a.attname::text COLLATE "default", format_type(a.atttypid, a.atttypmod)
        FROM pg_attribute a WHERE a.attrelid = 'panko.events'::regclass AND a.attnum > 0 ORDER BY a.attnum$$,
    $$VALUES ('message_id', 'text'), ('event_type', 'text'), ('generated', 'timestamp with time zone'),
             ('traits', 'panko.traits'), ('raw', 'jsonb')$$,
    'panko.events column types');
SELECT ok(EXISTS (SELECT 1 FROM pg_class c, unnest(c.reloptions) o
                   WHERE c.oid = 'panko.events'::regclass AND o ~* '^security_invoker=(true|on|yes|1)$'),
          'panko.events is security_invoker (row-level security applies through it)');

------------------------------------------------------------------ the storage API (exact signatures)
CREATE TEMP TABLE want_signature (sig text, args text, result text);
INSERT INTO want_signature VALUES
    ('panko.record_events(jsonb)', 'events jsonb', 'TABLE(message_id text, status text, detail text)'),
    ('panko.record_events_text(text)', 'events text', 'TABLE(message_id text, status text, detail text)'),
    ('panko.get_events(jsonb,integer,text[],text)',
     $$filter jsonb DEFAULT '{}'::jsonb, "limit" integer DEFAULT 100, sort text[] DEFAULT NULL::text[], marker text DEFAULT NULL::text$$,
     'TABLE(message_id text, event_type text, generated timestamp with time zone, traits panko.traits, raw jsonb)'),
    ('panko.event_types()', '', 'SETOF text'),
    ('panko.trait_types(text)', 'event_type text', 'TABLE(name text, type text)'),
    ('panko.get_traits(text,text)', 'event_type text, trait_name text DEFAULT NULL::text', 'TABLE(name text, type text, value text)'),
    ('panko.capabilities()', '', 'jsonb'),
    ('panko.clear_expired_data(bigint,bigint)', 'ttl_seconds bigint, max_count bigint DEFAULT NULL::bigint', 'bigint'),
    ('panko.run_maintenance()', '', 'jsonb'),
    ('panko.set_identity(text,text,text,boolean)', 'user_id text, project_id text, roles text, all_tenants boolean DEFAULT false', 'void'),
    ('panko.traits(jsonb)', 'jsonb', 'panko.traits'),
    ('panko.traits_to_jsonb(panko.traits)', 'panko.traits', 'jsonb'),
    ('panko.trait_text(panko.traits,text)', 'panko.traits, text', 'text'),
    ('panko.trait_int(panko.traits,text)', 'panko.traits, text', 'bigint'),
    ('panko.trait_float(panko.traits,text)', 'panko.traits, text', 'double precision'),
    ('panko.trait_datetime(panko.traits,text)', 'panko.traits, text', 'timestamp with time zone'),
    ('panko.trait_count(panko.traits)', 'panko.traits', 'integer'),
    ('panko.api_get_events(jsonb)', 'params jsonb', 'json'),
    ('panko.api_get_event(text)', 'message_id text', 'json'),
    ('panko.api_event_types()', '', 'json'),
    ('panko.api_trait_types(text)', 'event_type text', 'json'),
    ('panko.api_traits(text,text)', 'event_type text, trait_name text', 'json'),
    ('panko.api_capabilities()', '', 'json'),
    ('panko.api_post_events(jsonb)', 'events jsonb', 'json'),
    ('panko.trace_notify(jsonb)', 'notifications jsonb', 'integer'),
    ('panko.trace_report(text)', 'base_id text', 'json'),
    ('panko.trace_list(text[],integer)', 'fields text[] DEFAULT NULL::text[], "limit" integer DEFAULT NULL::integer',
     'TABLE(base_id text, generated timestamp with time zone, trace jsonb)'),
    ('panko.trace_errors(integer)', '"limit" integer DEFAULT NULL::integer',
     'TABLE(base_id text, generated timestamp with time zone, etype text, trace jsonb)');

SELECT is(
    (SELECT pg_get_function_arguments(to_regprocedure(sig)) || ' -> ' || pg_get_function_result(to_regprocedure(sig))),
    args || ' -> ' || result,
    sig || ' has exactly the arguments and result of the storage API')
  FROM want_signature ORDER BY sig;

------------------------------------------------------------------ volatility, strictness, parallel safety, SECURITY DEFINER
-- As declared in sql/panko.sql.  The read functions are SECURITY DEFINER
-- and owned by panko_query, which row-level security applies to (see
-- 02_privileges.sql).  Every extension function must be listed
-- (a new one must be added here, with its labels); a row that differs from
-- the catalog is reported.
CREATE TEMP TABLE want_labels (sig text, volatility text, strict boolean, parallel text, secdef boolean, leakproof boolean);
INSERT INTO want_labels
VALUES
    ('panko.api_capabilities()', 'i', false, 's', false, false),
    ('panko.api_event_types()', 'v', false, 'u', true, false),
    ('panko.api_get_event(text)', 's', false, 'u', false, false),
    ('panko.api_get_events(jsonb)', 'v', false, 'u', false, false),
    ('panko.api_post_events(jsonb)', 'v', false, 'u', false, false),
    ('panko.api_require_admin()', 'v', false, 'u', false, false),
    ('panko.api_require_identity()', 's', false, 'u', false, false),
    ('panko.api_trait_types(text)', 'v', false, 'u', false, false),
    ('panko.api_traits(text,text)', 'v', false, 'u', false, false),
    ('panko.caller_has_role(text)', 's', true, 's', false, false),
    ('panko.caller_mode()', 's', false, 's', false, false),
    ('panko.caller_project()', 's', false, 's', false, false),
    ('panko.caller_scope()', 's', false, 's', false, false),
    ('panko.capabilities()', 'i', false, 's', false, false),
    ('panko.event_visible(panko.traits)', 's', true, 's', false, false),
    ('panko.clear_expired_data(bigint,bigint)', 'v', false, 'u', true, false),
    ('panko.create_partition_for(timestamp with time zone,text)', 'v', false, 'u', true, false),
    ('panko.secure_partition(text)', 'v', true, 'u', false, false),
    ('panko.drop_partition_tables(text,text[])', 'v', false, 'u', true, false),
    ('panko.event_ttl_classes()', 's', false, 'u', false, false),
    ('panko.expire_class(text)', 'v', false, 'u', true, false),
    ('panko.partition_tables(panko.partition,text[])', 'i', false, 's', false, false),
    ('panko.metric_buckets(text,timestamp with time zone,timestamp with time zone,bigint,jsonb,text)', 's', false, 'u', false, false),
    ('panko.metric_check_window(interval,timestamp with time zone,timestamp with time zone)', 'i', false, 's', false, false),
    ('panko.metric_events(text,timestamp with time zone,timestamp with time zone,text,integer)', 's', false, 'u', true, false),
    ('panko.metric_filter(text,jsonb,text)', 'i', false, 's', false, false),
    ('panko.metric_floor(bigint,bigint)', 'i', true, 's', false, false),
    ('panko.metric_jsonb(text,text)', 'i', true, 's', false, false),
    ('panko.metric_latest(text,text)', 's', false, 'u', true, false),
    ('panko.metric_report(jsonb)', 'v', true, 'u', true, false),
    ('panko.metric_running_total(text,interval,timestamp with time zone,timestamp with time zone,jsonb,text)', 's', false, 'u', true, false),
    ('panko.metric_series(text,interval,timestamp with time zone,timestamp with time zone,jsonb,text)', 's', false, 'u', true, false),
    ('panko.metric_tags(panko.traits)', 's', true, 's', false, false),
    ('panko.metric_trait(text,jsonb)', 'i', true, 's', false, false),
    ('panko.metric_ts(bigint)', 'i', true, 's', false, false),
    ('panko.metric_us(timestamp with time zone)', 'i', true, 's', false, false),
    ('panko.metric_value(panko.traits,jsonb)', 's', false, 's', false, false),
    ('panko.rating_check_points(jsonb)', 'i', true, 's', false, false),
    ('panko.rating_rollup_points(jsonb)', 'i', true, 's', false, false),
    ('panko.rating_check_window(timestamp with time zone,timestamp with time zone,bigint,bigint)', 'i', false, 'u', false, false),
    ('panko.rating_conditions(jsonb,jsonb,integer)', 's', false, 'u', false, false),
    ('panko.rating_delete(timestamp with time zone,timestamp with time zone,jsonb)', 'v', false, 'u', true, false),
    ('panko.rating_init(bigint)', 'v', false, 'u', true, false),
    ('panko.rating_keys(panko.traits,text[])', 'i', true, 's', false, false),
    ('panko.rating_point(panko.traits,text,text)', 'i', true, 's', false, false),
    ('panko.rating_point(panko.traits,timestamp with time zone,integer)', 's', true, 's', false, false),
    ('panko.rating_push(jsonb)', 'v', false, 'u', true, false),
    ('panko.rating_push_frames(jsonb)', 'v', false, 'u', true, false),
    ('panko.rating_store_frames(jsonb)', 'v', true, 'u', false, false),
    ('panko.rating_note_names(text[],boolean,boolean)', 'v', false, 'u', false, false),
    ('panko.rating_rollup_add_groups(timestamp with time zone[],text[],text[],text[],bigint[],numeric[],numeric[])', 'v', false, 'u', false, false),
    ('panko.rating_rollup_add(jsonb)', 'v', false, 'u', false, false),
    ('panko.rating_rollup_covers(timestamp with time zone,timestamp with time zone,jsonb,jsonb)', 's', false, 'u', false, false),
    ('panko.rating_rollup_total(timestamp with time zone,timestamp with time zone,integer[],text[],text[],integer[],text[],text[],bigint,bigint)', 's', false, 'u', false, false),
    ('panko.rating_rollup_request(timestamp with time zone,timestamp with time zone,text[],text[],jsonb,jsonb,text)', 's', false, 'u', false, false),
    ('panko.rollup_drop()', 'v', false, 'u', false, false),
    ('panko.rating_rollup_refresh(timestamp with time zone,timestamp with time zone,text)', 'v', false, 'u', false, false),
    ('panko.rating_retrieve(timestamp with time zone,timestamp with time zone,text[],jsonb,jsonb,bigint,bigint)', 's', false, 'u', true, false),
    ('panko.rating_sum(panko.traits,text)', 'i', false, 's', false, false),
    ('panko.rating_sum_combine(internal,internal)', 'i', false, 's', false, false),
    ('panko.rating_sum_deserialize(bytea,internal)', 'i', true, 's', false, false),
    ('panko.rating_sum_final(internal)', 'i', false, 's', false, false),
    ('panko.rating_sum_serialize(internal)', 'i', true, 's', false, false),
    ('panko.rating_sum_trans(internal,panko.traits,text)', 'i', false, 's', false, false),
    ('panko.rating_total(timestamp with time zone,timestamp with time zone,text[],text[],jsonb,jsonb,text,bigint,bigint)', 's', false, 'u', true, false),
    ('panko.rating_type_ids(text[])', 's', false, 'u', false, false),
    ('panko.retention_class(text)', 'i', true, 's', false, false),
    ('panko.retention_classes()', 'i', false, 's', false, false),
    ('panko.seal_partitions(integer)', 'v', false, 'u', true, false),
    ('panko.set_retention(text,bigint)', 'v', false, 'u', true, false),
    ('panko.drop_expired_partitions(timestamp with time zone,bigint)', 'v', false, 'u', true, false),
    ('panko.each_trait(panko.traits)', 'i', true, 's', false, false),
    ('panko.enable_all_tenants()', 'v', false, 'u', false, false),
    ('panko.event_json(text,text,timestamp with time zone,panko.traits,jsonb)', 'i', false, 's', false, false),
    ('panko.event_types()', 's', false, 's', true, false),
    ('panko.get_events(jsonb,integer,text[],text)', 's', false, 'u', true, false),
    ('panko.get_traits(text,text)', 's', false, 's', true, false),
    ('panko.iso_timestamp(timestamp with time zone)', 'i', true, 's', false, false),
    ('panko.parse_timestamp(text,text)', 'i', false, 's', false, false),
    ('panko.purge_registry(bigint)', 'v', false, 'u', true, false),
    ('panko.record_events(jsonb)', 'v', true, 'u', true, false),
    ('panko.record_events_text(text)', 'v', true, 'u', true, false),
    ('panko.remove_unused_event_types()', 'v', false, 'u', true, false),
    ('panko.run_maintenance()', 'v', false, 'u', true, false),
    ('panko.set_identity(text,text,text,boolean)', 'v', false, 'u', false, false),
    ('panko.setting_value(text)', 's', true, 's', false, false),
    ('panko.advisory_lock(text,boolean)', 'v', true, 'u', false, false),
    ('panko.try_advisory_lock(text,boolean)', 'v', true, 'u', false, false),
    ('panko.trait_count(panko.traits)', 'i', true, 's', false, false),
    ('panko.trait_datetime(panko.traits,text)', 'i', true, 's', false, false),
    ('panko.trait_float(panko.traits,text)', 'i', true, 's', false, false),
    ('panko.trait_int(panko.traits,text)', 'i', true, 's', false, false),
    ('panko.trait_text(panko.traits,text)', 'i', true, 's', false, false),
    ('panko.trait_types(text)', 's', false, 's', true, false),
    ('panko.traitquery(jsonb)', 'i', true, 's', false, false),
    ('panko.traitquery_in(cstring)', 'i', true, 's', false, false),
    ('panko.traitquery_out(panko.traitquery)', 'i', true, 's', false, false),
    ('panko.traitquery_recv(internal)', 'i', true, 's', false, false),
    ('panko.traitquery_send(panko.traitquery)', 'i', true, 's', false, false),
    ('panko.traits(jsonb)', 'i', true, 's', false, false),
    ('panko.traits_contained(panko.traits,panko.traits)', 'i', true, 's', false, true),
    ('panko.traits_contains(panko.traits,panko.traits)', 'i', true, 's', false, true),
    ('panko.traits_eq(panko.traits,panko.traits)', 'i', true, 's', false, true),
    ('panko.traits_exist(panko.traits,text)', 'i', true, 's', false, true),
    ('panko.traits_fetch_text(panko.traits,text)', 'i', true, 's', false, false),
    ('panko.traits_gin_compare_partial(bytea,bytea,smallint,internal)', 'i', true, 's', false, false),
    ('panko.traits_gin_consistent(internal,smallint,panko.traits,integer,internal,internal,internal,internal)', 'i', true, 's', false, false),
    ('panko.traits_gin_extract_query(panko.traits,internal,smallint,internal,internal,internal,internal)', 'i', true, 's', false, false),
    ('panko.traits_gin_extract_value(panko.traits,internal)', 'i', true, 's', false, false),
    ('panko.traits_in(cstring)', 'i', true, 's', false, false),
    ('panko.traits_match(panko.traits,panko.traitquery)', 'i', true, 's', false, true),
    ('panko.traits_match_commutator(panko.traitquery,panko.traits)', 'i', true, 's', false, true),
    ('panko.traits_ne(panko.traits,panko.traits)', 'i', true, 's', false, true),
    ('panko.traits_out(panko.traits)', 'i', true, 's', false, false),
    ('panko.traits_recv(internal)', 'i', true, 's', false, false),
    ('panko.traits_send(panko.traits)', 'i', true, 's', false, false),
    ('panko.traits_to_jsonb(panko.traits)', 'i', true, 's', false, false),
    ('panko.traits_matchsel(internal,oid,internal,integer)', 's', true, 's', false, false),
    ('panko.traits_containsel(internal,oid,internal,integer)', 's', true, 's', false, false),
    ('panko.traits_existsel(internal,oid,internal,integer)', 's', true, 's', false, false),
    ('panko.message_id_hash(text)', 'i', true, 's', false, false),
    ('panko.traits_typanalyze(internal)', 'v', true, 's', false, false),
    ('panko.trace_notify(jsonb)', 'v', false, 'u', true, false),
    ('panko.trace_report(text)', 's', false, 'u', true, false),
    ('panko.trace_report_json(text)', 's', false, 'u', false, false),
    ('panko.trace_list(text[],integer)', 's', false, 'u', true, false),
    ('panko.trace_errors(integer)', 's', false, 'u', true, false);
SELECT is_empty(
    $$SELECT p.oid::regprocedure::text, p.provolatile::text, p.proisstrict, p.proparallel::text, p.prosecdef, p.proleakproof
        FROM pg_proc p JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
       WHERE d.refclassid = 'pg_extension'::regclass AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'panko')
      EXCEPT
      SELECT * FROM want_labels$$,
    'every extension function is listed here with its (volatility, strict, parallel, security definer, leakproof) as declared');
SELECT volatility_is('panko', 'set_identity', ARRAY['text', 'text', 'text', 'boolean'], 'volatile',
                     'panko.set_identity() is VOLATILE');
SELECT volatility_is('panko', 'get_events', ARRAY['jsonb', 'integer', 'text[]', 'text'], 'stable',
                     'panko.get_events() is STABLE');
SELECT volatility_is('panko', 'traits', ARRAY['jsonb'], 'immutable', 'panko.traits(jsonb) is IMMUTABLE');

------------------------------------------------------------------ SECURITY DEFINER functions
SELECT cmp_ok((SELECT count(*)::int FROM pg_proc WHERE pronamespace = 'panko'::regnamespace AND prosecdef), '>=', 2,
              'panko has SECURITY DEFINER functions (record_events, clear_expired_data, ...)');
SELECT is_empty(
    $$SELECT p.oid::regprocedure::text FROM pg_proc p
       WHERE p.pronamespace = 'panko'::regnamespace AND p.prosecdef
         AND NOT EXISTS (SELECT 1 FROM unnest(p.proconfig) c WHERE c LIKE 'search\_path=%')$$,
    'every SECURITY DEFINER function in schema panko sets search_path');
SELECT is_empty(
    $$SELECT p.oid::regprocedure::text || ' ' || c FROM pg_proc p, unnest(p.proconfig) c
       WHERE p.pronamespace = 'panko'::regnamespace AND p.prosecdef
         AND c LIKE 'search\_path=%' AND c <> 'search_path=pg_catalog, pg_temp'$$,
    'their search_path is exactly pg_catalog, pg_temp (pg_temp last, nothing user-writable)');
SELECT is_empty(
    $$SELECT p.oid::regprocedure::text FROM pg_proc p
       WHERE p.pronamespace = 'panko'::regnamespace AND p.prosecdef
         AND pg_get_userbyid(p.proowner) <> (SELECT pg_get_userbyid(extowner) FROM pg_extension WHERE extname = 'panko')
         AND p.proowner <> 'panko_query'::regrole$$,
    'SECURITY DEFINER functions are owned by the extension owner, or by panko_query (the read functions)');

------------------------------------------------------------------ comments
SELECT cmp_ok(
    (SELECT count(*)::int FROM pg_depend d
      WHERE d.deptype = 'e' AND d.refclassid = 'pg_extension'::regclass
        AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'panko')
        AND d.classid = 'pg_proc'::regclass),
    '>=', 60, 'the extension has its functions as members (so the comment check below is not vacuous)');
SELECT is_empty(
    $$SELECT pg_describe_object(d.classid, d.objid, d.objsubid)
        FROM pg_depend d
       WHERE d.deptype = 'e' AND d.refclassid = 'pg_extension'::regclass
         AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'panko')
         AND (d.classid IN ('pg_proc'::regclass, 'pg_type'::regclass, 'pg_operator'::regclass,
                            'pg_opclass'::regclass, 'pg_cast'::regclass)
              OR (d.classid = 'pg_class'::regclass
                  AND (SELECT relkind FROM pg_class WHERE oid = d.objid) IN ('r', 'p', 'v', 'm')))
         AND NOT EXISTS (SELECT 1 FROM pg_description ds
                          WHERE ds.classoid = d.classid AND ds.objoid = d.objid AND ds.objsubid = 0
                            AND ds.description <> '')$$,
    'every function, table, view, type, operator, operator class and cast of the extension has a COMMENT');
SELECT is_empty(
    $$SELECT c.oid::regclass::text FROM pg_class c
       WHERE c.oid IN ('panko.event'::regclass, 'panko.event_type'::regclass, 'panko.event_message'::regclass,
                       'panko.partition'::regclass, 'panko.events'::regclass)
         AND obj_description(c.oid, 'pg_class') IS NULL$$,
    'tables and the view carry a COMMENT');
SELECT isnt(obj_description('panko.traits'::regtype, 'pg_type'), NULL, 'type panko.traits has a COMMENT');
SELECT isnt(obj_description('panko.get_events(jsonb,integer,text[],text)'::regprocedure, 'pg_proc'), NULL,
            'panko.get_events has a COMMENT');

-- A function that switches a sort off makes its plans cost as much as
-- PostgreSQL's disable_cost, which would have them JIT-compiled on every
-- call (650 ms for rating_rollup_total): each also switches JIT off.
SELECT is_empty(
    $$SELECT p.oid::regprocedure::text FROM pg_proc p
       WHERE p.pronamespace = 'panko'::regnamespace AND 'enable_sort=off' = ANY (p.proconfig)
         AND NOT 'jit=off' = ANY (p.proconfig)$$,
    'every function that sets enable_sort = off also sets jit = off');

SELECT * FROM finish();
ROLLBACK;
