-- panko 0.3.0 -> 0.4.0
\echo Use "ALTER EXTENSION panko UPDATE TO '0.4.0'" to load this file. \quit

-- 0.4.0 closes holes a security review found:
--  * tenants read events only through functions: the table, the view and
--    the partition list are readable by roles that see every tenant
--    (panko_auditor, panko_admin), so EXPLAIN cannot count hidden rows;
--    the read functions run as panko_query, a role that is subject to
--    row-level security;
--  * PUBLIC executes only the types' own functions and operators; helpers
--    are granted to the roles that use them, and the selectivity, GIN and
--    ANALYZE support functions to nobody (PostgreSQL calls them without a
--    privilege check);
--  * get_events has its search_path pinned again; partitions are created
--    under pinned storage settings;
--  * api_get_events builds filter lists in linear time and takes the limit
--    as a JSON integer (panko-api parses and caps it).
-- and brings two details in line with upstream Panko: trait descriptions
-- come in its order, and start_timestamp/end_timestamp without an operator
-- (which means eq) are refused with its message.

--------------------------------------------------------------------------
-- Roles
--------------------------------------------------------------------------
DO $roles$
DECLARE
    r record;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'panko_auditor') THEN
        CREATE ROLE panko_auditor NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'panko_query') THEN
        CREATE ROLE panko_query NOLOGIN;
    END IF;
    -- Roles are cluster-wide and may already exist: the role the read
    -- functions run as must be subject to row-level security.
    SELECT rolname, rolsuper, rolbypassrls, rolcanlogin INTO r
      FROM pg_catalog.pg_roles WHERE rolname = 'panko_query';
    IF r.rolsuper OR r.rolbypassrls OR r.rolcanlogin THEN
        RAISE EXCEPTION 'role panko_query must be NOLOGIN, NOSUPERUSER and NOBYPASSRLS'
            USING ERRCODE = '42501',
                  DETAIL = 'panko''s read functions run as panko_query; row-level security must apply to it.',
                  HINT = 'ALTER ROLE panko_query NOLOGIN NOSUPERUSER NOBYPASSRLS';
    END IF;
END
$roles$;

GRANT panko_reader TO panko_auditor;
GRANT panko_auditor TO panko_admin;

--------------------------------------------------------------------------
-- Direct reads: only roles that see every tenant
--------------------------------------------------------------------------
REVOKE SELECT ON panko.event, panko.events, panko.event_type, panko.partition FROM panko_reader;
GRANT SELECT ON panko.event, panko.events, panko.event_type, panko.partition TO panko_auditor, panko_query;

--------------------------------------------------------------------------
-- The read functions run as panko_query
--------------------------------------------------------------------------
ALTER FUNCTION panko.get_events(jsonb, integer, text[], text)
    SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION panko.event_types() SECURITY DEFINER;
ALTER FUNCTION panko.trait_types(text) SECURITY DEFINER;
ALTER FUNCTION panko.get_traits(text, text) SECURITY DEFINER;
ALTER FUNCTION panko.api_event_types() SECURITY DEFINER;
ALTER FUNCTION panko.get_events(jsonb, integer, text[], text) OWNER TO panko_query;
ALTER FUNCTION panko.event_types() OWNER TO panko_query;
ALTER FUNCTION panko.trait_types(text) OWNER TO panko_query;
ALTER FUNCTION panko.get_traits(text, text) OWNER TO panko_query;
ALTER FUNCTION panko.api_event_types() OWNER TO panko_query;
-- Granted again so that the extension's initial privileges (pg_init_privs)
-- name the new owner, as after a fresh install.
GRANT EXECUTE ON FUNCTION panko.get_events(jsonb, integer, text[], text), panko.event_types(),
    panko.trait_types(text), panko.get_traits(text, text)
TO panko_reader;

-- One event over HTTP is a get_events call, so it needs no table access.
CREATE OR REPLACE FUNCTION panko.api_get_event(message_id text) RETURNS json
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    result json;
BEGIN
    PERFORM panko.api_require_identity();
    IF message_id IS NOT NULL THEN
        SELECT panko.event_json(g.message_id, g.event_type, g.generated, g.traits, g.raw) INTO result
          FROM panko.get_events(jsonb_build_object('message_id', message_id), 1) g;
    END IF;
    IF result IS NULL THEN
        RAISE EXCEPTION 'Event % Not Found', message_id USING ERRCODE = 'P0002';
    END IF;
    RETURN result;
END
$$;

--------------------------------------------------------------------------
-- Partitions are created under pinned storage settings, not the caller's
--------------------------------------------------------------------------
ALTER FUNCTION panko.record_events(jsonb)
    SET default_tablespace = '' SET default_table_access_method = 'heap';
ALTER FUNCTION panko.create_partition_for(timestamptz)
    SET default_tablespace = '' SET default_table_access_method = 'heap';

--------------------------------------------------------------------------
-- GET /v2/events: filter lists in linear time, the limit as an integer
--------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION panko.api_get_events(params jsonb) RETURNS json
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    k text;
    item jsonb;
    field text;
    op text;
    value text;
    filter jsonb := '{}';
    traits_filter jsonb;
    lim integer;
    sort_keys text[];
    marker text;
    pos integer := 0;
    admin boolean := panko.caller_mode() IN ('admin', 'all');
BEGIN
    PERFORM panko.api_require_identity();
    IF params IS NULL OR jsonb_typeof(params) <> 'object' THEN
        RAISE EXCEPTION 'Request must be a JSON dict' USING ERRCODE = '22023';
    END IF;
    FOR k IN SELECT jsonb_object_keys(params) LOOP
        IF k NOT IN ('q', 'limit', 'sort', 'marker') THEN
            RAISE EXCEPTION 'Unknown argument: "%"', k USING ERRCODE = '22023';
        END IF;
    END LOOP;

    -- panko-api decides what a limit is and caps it; here it is a JSON
    -- integer, and 0 means the default.
    IF params ? 'limit' AND jsonb_typeof(params->'limit') <> 'null' THEN
        IF jsonb_typeof(params->'limit') <> 'number' OR params->>'limit' !~ '^-?[0-9]{1,10}$'
           OR (params->>'limit')::bigint > 2147483647 THEN
            RAISE EXCEPTION 'Invalid input for field/attribute limit. Value: ''%''. unable to convert to int', params->>'limit'
                USING ERRCODE = '22023';
        END IF;
        lim := (params->>'limit')::integer;
        IF lim < 0 THEN
            RAISE EXCEPTION 'Limit must be positive' USING ERRCODE = '22023';
        END IF;
        lim := nullif(lim, 0);
    END IF;

    CASE jsonb_typeof(params->'sort')
        WHEN 'string' THEN sort_keys := ARRAY[params->>'sort'];
        WHEN 'array' THEN
            IF EXISTS (SELECT 1 FROM jsonb_array_elements(params->'sort') e WHERE jsonb_typeof(e) <> 'string') THEN
                RAISE EXCEPTION 'sort must be a list of strings' USING ERRCODE = '22023';
            END IF;
            SELECT array_agg(e ORDER BY n) INTO sort_keys FROM jsonb_array_elements_text(params->'sort') WITH ORDINALITY AS s(e, n);
        WHEN 'null' THEN NULL;
        ELSE
            IF params ? 'sort' THEN
                RAISE EXCEPTION 'sort must be a list of strings' USING ERRCODE = '22023';
            END IF;
    END CASE;

    IF jsonb_typeof(params->'marker') = 'string' THEN
        marker := params->>'marker';
    ELSIF params ? 'marker' AND jsonb_typeof(params->'marker') <> 'null' THEN
        RAISE EXCEPTION 'marker must be a string' USING ERRCODE = '22023';
    END IF;

    IF params ? 'q' AND jsonb_typeof(params->'q') <> 'null' THEN
        IF jsonb_typeof(params->'q') <> 'array' THEN
            RAISE EXCEPTION 'q must be a list of queries' USING ERRCODE = '22023';
        END IF;
        -- Check every item in order (the first bad one is reported) ...
        FOR item IN SELECT e FROM jsonb_array_elements(params->'q') e LOOP
            pos := pos + 1;
            IF jsonb_typeof(item) <> 'object' THEN
                RAISE EXCEPTION 'query % must be an object with field, op, type and value', pos USING ERRCODE = '22023';
            END IF;
            FOR k IN SELECT jsonb_object_keys(item) LOOP
                IF k NOT IN ('field', 'op', 'type', 'value') THEN
                    RAISE EXCEPTION 'Unknown attribute for argument q: %', k USING ERRCODE = '22023';
                END IF;
            END LOOP;
            field := item->>'field';
            op := coalesce(item->>'op', '');
            value := item->>'value';
            IF field IS NULL OR field = '' THEN
                RAISE EXCEPTION 'query % has no field', pos USING ERRCODE = '22023';
            END IF;
            IF value IS NULL THEN
                RAISE EXCEPTION 'query % (field %) has no value', pos, field USING ERRCODE = '22023';
            END IF;
            IF op <> '' AND op NOT IN ('lt', 'le', 'eq', 'ne', 'ge', 'gt') THEN
                RAISE EXCEPTION 'Operator % is not supported. The supported operators are: (''lt'', ''le'', ''eq'', ''ne'', ''ge'', ''gt'')', op
                    USING ERRCODE = '22023';
            END IF;

            IF field IN ('event_type', 'message_id') THEN
                IF op NOT IN ('', 'eq') THEN
                    RAISE EXCEPTION 'Only ''eq'' operator is available for field %', field USING ERRCODE = '22023';
                END IF;
                IF filter ? field THEN
                    RAISE EXCEPTION 'field % is given twice', field USING ERRCODE = '22023';
                END IF;
                filter := filter || jsonb_build_object(field, value);
            ELSIF field IN ('start_timestamp', 'end_timestamp') THEN
                -- A missing op means eq, which these fields do not take
                -- (upstream's rule and message).
                IF coalesce(nullif(op, ''), 'eq') <> (CASE field WHEN 'start_timestamp' THEN 'ge' ELSE 'le' END) THEN
                    RAISE EXCEPTION 'Operator % is not supported. Only `%'' operator is available for field %',
                        coalesce(nullif(op, ''), 'eq'), CASE field WHEN 'start_timestamp' THEN 'ge' ELSE 'le' END, field
                        USING ERRCODE = '22023';
                END IF;
                IF filter ? field THEN
                    RAISE EXCEPTION 'field % is given twice', field USING ERRCODE = '22023';
                END IF;
                PERFORM panko.parse_timestamp(value, field);
                filter := filter || jsonb_build_object(field, value);
            ELSIF field = 'all_tenants' AND admin THEN
                -- an admin's all_tenants is never a trait filter; read as
                -- oslo's bool_from_string does
                IF lower(btrim(value)) IN ('1', 't', 'true', 'on', 'y', 'yes') THEN
                    PERFORM panko.enable_all_tenants();
                END IF;
            END IF;
        END LOOP;
        -- ... then build the trait filters in one pass.
        SELECT jsonb_agg(jsonb_build_object(
                   'field', e->>'field', 'op', coalesce(nullif(e->>'op', ''), 'eq'),
                   'type', coalesce(e->>'type', 'string'), 'value', e->>'value') ORDER BY n)
          INTO traits_filter
          FROM jsonb_array_elements(params->'q') WITH ORDINALITY AS q(e, n)
         WHERE e->>'field' NOT IN ('event_type', 'message_id', 'start_timestamp', 'end_timestamp')
           AND NOT (admin AND e->>'field' = 'all_tenants');
        IF traits_filter IS NOT NULL THEN
            filter := filter || jsonb_build_object('traits_filter', traits_filter);
        END IF;
    END IF;

    RETURN (SELECT coalesce(json_agg(panko.event_json(g.message_id, g.event_type, g.generated, g.traits, g.raw)), '[]'::json)
              FROM panko.get_events(filter, lim, sort_keys, marker) g);
END
$$;

--------------------------------------------------------------------------
-- Trait descriptions in upstream's order (string, integer, float,
-- datetime, then by name), in SQL and over HTTP alike
--------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION panko.trait_types(event_type text) RETURNS TABLE(name text, type text)
LANGUAGE sql STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    -- Upstream's order: its trait tables one by one (string, integer,
    -- float, datetime), the names sorted within each.
    SELECT d.name, d.type
      FROM (SELECT DISTINCT tr.name, tr.type
              FROM panko.events e, panko.each_trait(e.traits) tr
             WHERE e.event_type OPERATOR(pg_catalog.=) trait_types.event_type) d
     ORDER BY pg_catalog.array_position(ARRAY['string', 'integer', 'float', 'datetime'], d.type), d.name COLLATE "C"
$$;
COMMENT ON FUNCTION panko.trait_types(text) IS 'Distinct (trait name, type) pairs of an event type, in upstream''s order: string, integer, float, datetime, then by name';

CREATE OR REPLACE FUNCTION panko.api_trait_types(event_type text) RETURNS json
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM panko.api_require_admin();
    RETURN (SELECT coalesce(json_agg(json_build_object('name', t.name, 'type', t.type) ORDER BY t.n), '[]'::json)
              FROM panko.trait_types(event_type) WITH ORDINALITY AS t(name, type, n));
END
$$;

--------------------------------------------------------------------------
-- Privileges: PUBLIC gets the types and their operators, nothing else
--------------------------------------------------------------------------
REVOKE EXECUTE ON FUNCTION
    panko.traits_gin_extract_value(panko.traits, internal),
    panko.traits_gin_extract_query(panko.traits, internal, int2, internal, internal, internal, internal),
    panko.traits_gin_consistent(internal, int2, panko.traits, int4, internal, internal, internal, internal),
    panko.traits_gin_compare_partial(bytea, bytea, int2, internal),
    panko.traits_matchsel(internal, oid, internal, integer), panko.traits_containsel(internal, oid, internal, integer),
    panko.traits_existsel(internal, oid, internal, integer), panko.traits_typanalyze(internal),
    panko.iso_timestamp(timestamptz), panko.parse_timestamp(text, text),
    panko.event_json(text, text, timestamptz, panko.traits, jsonb), panko.message_id_hash(text),
    panko.caller_mode(), panko.caller_scope(), panko.caller_has_role(text), panko.caller_project(),
    panko.enable_all_tenants(), panko.setting_seconds(text, bigint), panko.capabilities()
FROM PUBLIC;

-- For the users of the store, and for the row-level security policy
-- (evaluated as the role that reads: panko_query or a direct reader).
GRANT EXECUTE ON FUNCTION
    panko.iso_timestamp(timestamptz), panko.parse_timestamp(text, text),
    panko.event_json(text, text, timestamptz, panko.traits, jsonb), panko.capabilities(),
    panko.caller_mode(), panko.caller_scope(), panko.caller_has_role(text), panko.caller_project()
TO panko_reader, panko_query;
GRANT EXECUTE ON FUNCTION panko.message_id_hash(text) TO panko_admin;

-- The HTTP functions are panko-api's.
REVOKE EXECUTE ON FUNCTION panko.api_require_identity(), panko.api_require_admin(), panko.api_get_events(jsonb),
    panko.api_get_event(text), panko.api_event_types(), panko.api_trait_types(text), panko.api_traits(text, text),
    panko.api_capabilities()
FROM panko_reader;
REVOKE EXECUTE ON FUNCTION panko.api_post_events(jsonb) FROM panko_writer;
GRANT EXECUTE ON FUNCTION panko.api_require_identity(), panko.api_require_admin(), panko.api_get_events(jsonb),
    panko.api_get_event(text), panko.api_event_types(), panko.api_trait_types(text), panko.api_traits(text, text),
    panko.api_capabilities(), panko.api_post_events(jsonb), panko.enable_all_tenants()
TO panko_api;
-- api_event_types runs as panko_query and asks for an admin itself.
GRANT EXECUTE ON FUNCTION panko.api_require_admin(), panko.enable_all_tenants() TO panko_query;
