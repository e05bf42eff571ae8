/* panko 0.1.0 -> 0.2.0: maintenance for the expiry worker and pg_cron, and
 * the functions behind panko-api (Panko's v2 HTTP API). */

\echo Use "ALTER EXTENSION panko UPDATE TO '0.2.0'" to load this file. \quit

--------------------------------------------------------------------------
-- Maintenance: what the expiry worker, pg_cron or an operator runs
--------------------------------------------------------------------------
CREATE FUNCTION panko.run_maintenance() RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC'
AS $$
DECLARE
    t0 timestamptz := clock_timestamp();
    ttl bigint := panko.setting_seconds('panko.event_time_to_live', -1);
    max_count bigint := nullif(coalesce(current_setting('panko.expiry_max_count', true), '0')::bigint, 0);
    width bigint := panko.setting_seconds('panko.partition_interval', 86400);
    premake integer := coalesce(current_setting('panko.partition_premake', true), '7')::integer;
    created integer := 0;
    dropped bigint := 0;
    deleted bigint := 0;
    types_removed bigint;
    purged bigint;
    r record;
    ts timestamptz;
BEGIN
    -- One run at a time: the worker, pg_cron and manual calls skip when
    -- another run is under way.
    IF NOT pg_try_advisory_xact_lock(1885433451, 3) THEN
        RETURN jsonb_build_object('skipped', true, 'partitions_created', 0, 'partitions_dropped', 0,
                                  'rows_deleted', 0, 'event_types_removed', 0, 'registry_rows_purged', 0,
                                  'duration_ms', round((extract(epoch FROM clock_timestamp() - t0) * 1000)::numeric, 3));
    END IF;
    -- Exclusive against ingest, which holds this lock shared per batch.
    PERFORM pg_advisory_xact_lock(1885433451, 1);

    FOR k IN 0 .. premake LOOP
        ts := now() + make_interval(secs => width * k);
        IF NOT EXISTS (SELECT 1 FROM panko.partition p WHERE ts >= p.lower_bound AND ts < p.upper_bound) THEN
            PERFORM panko.create_partition_for(ts);
            created := created + 1;
        END IF;
    END LOOP;

    IF ttl >= 0 THEN
        r := panko.drop_expired_partitions(now() - make_interval(secs => ttl), max_count);
        dropped := r.partitions_dropped;
        deleted := r.rows_deleted;
    END IF;
    types_removed := panko.remove_unused_event_types();
    purged := panko.purge_registry(50000);

    RETURN jsonb_build_object(
        'skipped', false,
        'partitions_created', created,
        'partitions_dropped', dropped,
        'rows_deleted', deleted,
        'event_types_removed', types_removed,
        'registry_rows_purged', purged,
        'duration_ms', round((extract(epoch FROM clock_timestamp() - t0) * 1000)::numeric, 3));
END
$$;
COMMENT ON FUNCTION panko.run_maintenance() IS
    'One maintenance run: partitions ahead, expiry by panko.event_time_to_live (whole partitions dropped), unused event types, registry; reports what it did';

REVOKE ALL ON FUNCTION panko.run_maintenance() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION panko.run_maintenance() TO panko_admin;

--------------------------------------------------------------------------
-- Panko's v2 HTTP API, as SQL: every rule lives here, panko-api only
-- translates HTTP.  SQLSTATEs map to statuses: class 22 -> 400,
-- 28000 -> 401, 42501 -> 403, P0002 -> 404.
--------------------------------------------------------------------------
CREATE FUNCTION panko.api_require_identity() RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF panko.caller_mode() = 'all' THEN
        RETURN;
    END IF;
    IF coalesce(current_setting('panko.request_user_id', true), '') = ''
       OR coalesce(current_setting('panko.request_project_id', true), '') = '' THEN
        RAISE EXCEPTION 'The request needs a user and a project (X-User-Id and X-Project-Id)'
            USING ERRCODE = '42501';
    END IF;
END
$$;
COMMENT ON FUNCTION panko.api_require_identity() IS
    'Upstream''s rule for /v2/events: a caller without user and project is refused (403)';

CREATE FUNCTION panko.api_require_admin() RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    project text := panko.caller_project();
BEGIN
    IF panko.caller_mode() NOT IN ('admin', 'all') THEN
        IF project IS NULL THEN
            RAISE EXCEPTION 'Not Authorized' USING ERRCODE = '28000';
        END IF;
        RAISE EXCEPTION 'Not Authorized to access project %', project USING ERRCODE = '28000';
    END IF;
    -- Event type routes are admin-wide upstream: they see every project.
    PERFORM panko.enable_all_tenants();
END
$$;
COMMENT ON FUNCTION panko.api_require_admin() IS
    'The /v2/event_types routes are admin-only (401 otherwise) and see every project';

CREATE FUNCTION panko.api_get_events(params jsonb) RETURNS json
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
    traits_filter jsonb := '[]';
    lim integer;
    lim_text text;
    sort_keys text[];
    marker text;
    pos integer := 0;
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

    IF jsonb_typeof(params->'limit') IN ('string', 'number') THEN
        lim_text := btrim(params->>'limit');
        IF lim_text !~ '^[+-]?[0-9]{1,10}$' OR lim_text::bigint > 2147483647 THEN
            RAISE EXCEPTION 'Invalid input for field/attribute limit. Value: ''%''. unable to convert to int', params->>'limit'
                USING ERRCODE = '22023';
        END IF;
        lim := lim_text::integer;
        IF lim < 0 THEN
            RAISE EXCEPTION 'Limit must be positive' USING ERRCODE = '22023';
        END IF;
    ELSIF params ? 'limit' AND jsonb_typeof(params->'limit') <> 'null' THEN
        RAISE EXCEPTION 'Invalid input for field/attribute limit. Value: ''%''. unable to convert to int', params->'limit'
            USING ERRCODE = '22023';
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
                IF op NOT IN ('', CASE field WHEN 'start_timestamp' THEN 'ge' ELSE 'le' END) THEN
                    RAISE EXCEPTION 'Only ''%'' operator is available for field %',
                        CASE field WHEN 'start_timestamp' THEN 'ge' ELSE 'le' END, field USING ERRCODE = '22023';
                END IF;
                IF filter ? field THEN
                    RAISE EXCEPTION 'field % is given twice', field USING ERRCODE = '22023';
                END IF;
                PERFORM panko.parse_timestamp(value, field);
                filter := filter || jsonb_build_object(field, value);
            ELSIF field = 'all_tenants' AND lower(value) IN ('true', '1', 'yes')
                  AND panko.caller_mode() IN ('admin', 'all') THEN
                PERFORM panko.enable_all_tenants();
            ELSE
                traits_filter := traits_filter || jsonb_build_array(jsonb_build_object(
                    'field', field, 'op', coalesce(nullif(op, ''), 'eq'),
                    'type', coalesce(item->>'type', 'string'), 'value', value));
            END IF;
        END LOOP;
    END IF;
    IF jsonb_array_length(traits_filter) > 0 THEN
        filter := filter || jsonb_build_object('traits_filter', traits_filter);
    END IF;

    RETURN (SELECT coalesce(json_agg(panko.event_json(g.message_id, g.event_type, g.generated, g.traits, g.raw)), '[]'::json)
              FROM panko.get_events(filter, lim, sort_keys, marker) g);
END
$$;
COMMENT ON FUNCTION panko.api_get_events(jsonb) IS
    'GET /v2/events: {"q": [{"field","op","type","value"}], "limit", "sort", "marker"} -> a JSON list of events';

CREATE FUNCTION panko.api_get_event(message_id text) RETURNS json
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    result json;
BEGIN
    PERFORM panko.api_require_identity();
    SELECT panko.event_json(e.message_id, e.event_type, e.generated, e.traits, e.raw) INTO result
      FROM panko.events e WHERE e.message_id = api_get_event.message_id;
    IF result IS NULL THEN
        RAISE EXCEPTION 'Event % Not Found', message_id USING ERRCODE = 'P0002';
    END IF;
    RETURN result;
END
$$;
COMMENT ON FUNCTION panko.api_get_event(text) IS 'GET /v2/events/{message_id}: one visible event, or P0002 (404)';

CREATE FUNCTION panko.api_event_types() RETURNS json
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM panko.api_require_admin();
    RETURN (SELECT coalesce(json_agg(n ORDER BY n), '[]'::json) FROM panko.event_types() n);
END
$$;
COMMENT ON FUNCTION panko.api_event_types() IS 'GET /v2/event_types: sorted event type names (admin)';

CREATE FUNCTION panko.api_trait_types(event_type text) RETURNS json
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM panko.api_require_admin();
    RETURN (SELECT coalesce(json_agg(json_build_object('name', t.name, 'type', t.type) ORDER BY t.name, t.type), '[]'::json)
              FROM panko.trait_types(event_type) t);
END
$$;
COMMENT ON FUNCTION panko.api_trait_types(text) IS 'GET /v2/event_types/{type}/traits: distinct (name, type) pairs (admin)';

CREATE FUNCTION panko.api_traits(event_type text, trait_name text) RETURNS json
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM panko.api_require_admin();
    RETURN (SELECT coalesce(json_agg(json_build_object('name', t.name, 'value', t.value, 'type', t.type)), '[]'::json)
              FROM panko.get_traits(event_type, trait_name) t);
END
$$;
COMMENT ON FUNCTION panko.api_traits(text, text) IS
    'GET /v2/event_types/{type}/traits/{name}: every stored instance of that trait (admin)';

CREATE FUNCTION panko.api_capabilities() RETURNS json
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT panko.capabilities()::json
$$;
COMMENT ON FUNCTION panko.api_capabilities() IS 'GET /v2/capabilities';

CREATE FUNCTION panko.api_post_events(events jsonb) RETURNS json
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    result json;
BEGIN
    IF NOT (panko.caller_has_role('admin') OR panko.caller_has_role('service')) THEN
        RAISE EXCEPTION 'Storing events needs the admin or service role' USING ERRCODE = '42501';
    END IF;
    IF events IS NULL OR jsonb_typeof(events) <> 'array' THEN
        RAISE EXCEPTION 'The request body must be a JSON list of events' USING ERRCODE = '22023';
    END IF;
    WITH r AS (SELECT * FROM panko.record_events(events))
    SELECT json_build_object(
               'stored', jsonb_array_length(events) - count(*),
               'duplicates', count(*) FILTER (WHERE r.status = 'duplicate'),
               'rejected', count(*) FILTER (WHERE r.status = 'rejected'),
               'problems', coalesce(json_agg(json_build_object('message_id', r.message_id, 'status', r.status,
                                                               'detail', r.detail)), '[]'::json))
      INTO result FROM r;
    RETURN result;
END
$$;
COMMENT ON FUNCTION panko.api_post_events(jsonb) IS
    'POST /v2/events: store Ceilometer''s (or Panko''s) event list; counts of stored, duplicate and rejected events';

REVOKE ALL ON FUNCTION panko.api_require_identity(), panko.api_require_admin(), panko.api_get_events(jsonb),
    panko.api_get_event(text), panko.api_event_types(), panko.api_trait_types(text), panko.api_traits(text, text),
    panko.api_capabilities(), panko.api_post_events(jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION panko.api_require_identity(), panko.api_require_admin(), panko.api_get_events(jsonb),
    panko.api_get_event(text), panko.api_event_types(), panko.api_trait_types(text), panko.api_traits(text, text),
    panko.api_capabilities()
TO panko_reader;
GRANT EXECUTE ON FUNCTION panko.api_post_events(jsonb) TO panko_writer;

--------------------------------------------------------------------------
-- Tell the operator how expiry will run.
--------------------------------------------------------------------------
-- Extension scripts run with client_min_messages raised to warning.
SET LOCAL client_min_messages = notice;
DO $notice$
BEGIN
    IF NOT (',' || replace(current_setting('shared_preload_libraries'), ' ', '') || ',') LIKE '%,panko,%' THEN
        RAISE NOTICE 'panko: the expiry worker is not running (panko is not in shared_preload_libraries)'
            USING HINT = 'Add panko to shared_preload_libraries and restart, or schedule SELECT panko.run_maintenance() with pg_cron.';
    END IF;
END
$notice$;
