-- panko 0.2.0 -> 0.3.0
\echo Use "ALTER EXTENSION panko UPDATE TO '0.3.0'" to load this file. \quit

-- 0.3.0 stores common trait names as one-byte codes, keys the GIN index
-- more compactly, keeps statistics of traits for the planner, counts the
-- events of each partition instead of counting rows at expiry, and answers
-- get_events in C.  Values written by 0.2.0 stay readable as they are; the
-- indexes are rebuilt, which takes a while on a large store.

--------------------------------------------------------------------------
-- Statistics of traits for the planner
--------------------------------------------------------------------------
CREATE FUNCTION panko.traits_typanalyze(internal) RETURNS boolean
    AS 'MODULE_PATHNAME' LANGUAGE C STRICT PARALLEL SAFE;
COMMENT ON FUNCTION panko.traits_typanalyze(internal) IS
    'ANALYZE support: the most common traits and their frequencies, for the planner';
ALTER TYPE panko.traits SET (ANALYZE = panko.traits_typanalyze);
GRANT EXECUTE ON FUNCTION panko.traits_typanalyze(internal) TO PUBLIC;

COMMENT ON OPERATOR FAMILY panko.traits_ops USING gin IS
    'GIN operator family of panko.traits_ops';
COMMENT ON SEQUENCE panko.event_type_id_seq IS 'Ids of event types';

--------------------------------------------------------------------------
-- Indexes: a hash index for message_ids, a plain one for event types, and
-- the GIN index rebuilt with the 0.3.0 keys and a small pending list
--------------------------------------------------------------------------
DROP INDEX panko.event_message_id_idx;
DROP INDEX panko.event_type_generated_idx;
DROP INDEX panko.event_traits_idx;
CREATE INDEX event_message_id_idx ON panko.event USING hash (message_id);
CREATE INDEX event_type_idx ON panko.event (event_type_id);
-- A small pending list: fast inserts without leaving megabytes of emptied
-- pending pages in every partition's index, or slowing queries of the
-- current partition.
CREATE INDEX event_traits_idx ON panko.event USING gin (traits) WITH (gin_pending_list_limit = 512);
COMMENT ON INDEX panko.event_message_id_idx IS 'Lookup by message_id and markers (hash: a quarter of a btree on random ids)';
COMMENT ON INDEX panko.event_type_idx IS 'Event type filters (btree deduplication keeps it tiny)';
COMMENT ON INDEX panko.event_traits_idx IS 'Every trait filter';

--------------------------------------------------------------------------
-- Events per partition, counted once here and kept up to date by ingest
-- and expiry from now on
--------------------------------------------------------------------------
CREATE TABLE panko.partition_rows (
    partition text COLLATE "C" NOT NULL,
    n bigint NOT NULL
);
CREATE INDEX partition_rows_partition_idx ON panko.partition_rows (partition);
COMMENT ON TABLE panko.partition_rows IS
    'Events stored in (or deleted from) each partition, as deltas: expiry knows a partition''s size without counting it';
COMMENT ON INDEX panko.partition_rows_partition_idx IS 'Deltas of one partition';
SELECT pg_catalog.pg_extension_config_dump('panko.partition_rows', '');

DO $$
DECLARE
    p record;
    n bigint;
BEGIN
    FOR p IN SELECT name FROM panko.partition LOOP
        EXECUTE format('SELECT count(*) FROM panko.%I', p.name) INTO n;
        INSERT INTO panko.partition_rows (partition, n) VALUES (p.name, n);
    END LOOP;
END
$$;

GRANT SELECT ON panko.partition TO panko_reader;

--------------------------------------------------------------------------
-- Partitions, expiry and queries
--------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION panko.create_partition_for(ts timestamptz) RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC'
AS $$
DECLARE
    width bigint := panko.setting_seconds('panko.partition_interval', 86400);
    lo timestamptz;
    hi timestamptz;
    prev_hi timestamptz;
    next_lo timestamptz;
    pname text;
    near_lo timestamptz := to_timestamp(floor(extract(epoch FROM now() - interval '400 days') / width) * width);
    near_hi timestamptz := to_timestamp(floor(extract(epoch FROM now() + interval '400 days') / width) * width);
BEGIN
    -- Serialise creators; then another session may already have made it.
    PERFORM pg_advisory_xact_lock(1885433451, 2);
    SELECT p.name INTO pname FROM panko.partition p
     WHERE ts >= p.lower_bound AND ts < p.upper_bound;
    IF FOUND THEN
        RETURN pname;
    END IF;

    IF ts >= near_lo AND ts < near_hi THEN
        lo := to_timestamp(floor(extract(epoch FROM ts) / width) * width);
        hi := lo + make_interval(secs => width);
    ELSIF ts < near_lo THEN
        -- More than 400 days old: one partition fills the whole gap below,
        -- so stray timestamps cannot make thousands of partitions.
        lo := '-infinity';
        hi := near_lo;
    ELSE
        -- More than 400 days ahead (a wrong clock): likewise, above.
        lo := near_hi;
        hi := 'infinity';
    END IF;

    -- Fit into the gap between existing partitions.
    SELECT max(p.upper_bound) INTO prev_hi FROM panko.partition p WHERE p.upper_bound <= ts;
    SELECT min(p.lower_bound) INTO next_lo FROM panko.partition p WHERE p.lower_bound > ts;
    lo := greatest(lo, prev_hi);
    hi := least(hi, next_lo);

    pname := CASE WHEN lo = '-infinity' THEN 'event_before_' || to_char(hi, 'YYYYMMDD"t"HH24MISS')
                  ELSE 'event_' || to_char(lo, 'YYYYMMDD"t"HH24MISS') END;
    EXECUTE format('CREATE TABLE panko.%I (LIKE panko.event INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE)', pname);
    EXECUTE format('ALTER TABLE panko.event ATTACH PARTITION panko.%I FOR VALUES FROM (%L) TO (%L)', pname, lo, hi);
    INSERT INTO panko.partition (name, lower_bound, upper_bound) VALUES (pname, lo, hi);
    RETURN pname;
END
$$;
COMMENT ON FUNCTION panko.create_partition_for(timestamptz) IS
    'Create the partition that will hold this timestamp (interval-aligned within 400 days of now, one catch-all below and above, fitted between existing ones)';

CREATE OR REPLACE FUNCTION panko.drop_expired_partitions(cutoff timestamptz, max_count bigint,
                                              OUT partitions_dropped bigint, OUT rows_deleted bigint)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p record;
    n bigint;
    budget bigint := max_count;
    lim bigint;
    t timestamptz;
    saved_lock_timeout text := current_setting('lock_timeout');
BEGIN
    partitions_dropped := 0;
    rows_deleted := 0;
    FOR p IN SELECT * FROM panko.partition WHERE upper_bound <= cutoff ORDER BY lower_bound LOOP
        SELECT coalesce(sum(r.n), 0) INTO n FROM panko.partition_rows r WHERE r.partition = p.name;
        EXIT WHEN budget IS NOT NULL AND n > budget;
        -- A long reader of that partition must not stall ingest behind us:
        -- give up after a second and drop it next run.
        BEGIN
            PERFORM set_config('lock_timeout', '1s', true);
            EXECUTE format('DROP TABLE panko.%I', p.name);
            PERFORM set_config('lock_timeout', saved_lock_timeout, true);
        EXCEPTION WHEN lock_not_available THEN
            RAISE LOG 'panko: partition % is in use; it is dropped next run', p.name;
            RETURN;
        END;
        DELETE FROM panko.partition WHERE name = p.name;
        DELETE FROM panko.partition_rows WHERE partition = p.name;
        partitions_dropped := partitions_dropped + 1;
        rows_deleted := rows_deleted + n;
        budget := budget - n;
    END LOOP;

    -- What is left below the cutoff: rows of the boundary partition (or of
    -- a partition too big for the budget), deleted oldest first in batches
    -- of at most 10,000, each found through the generated index.
    LOOP
        EXIT WHEN budget IS NOT NULL AND budget <= 0;
        lim := least(coalesce(budget, 10000), 10000);
        t := NULL;
        SELECT e.generated INTO t FROM panko.event e
         WHERE e.generated < cutoff ORDER BY e.generated OFFSET lim - 1 LIMIT 1;
        -- (each batch also takes its rows off the partitions' counts)
        IF t IS NULL THEN
            -- fewer than a batch left: all of them
            WITH gone AS (
                DELETE FROM panko.event e WHERE e.generated < cutoff RETURNING e.tableoid
            ), counted AS (
                INSERT INTO panko.partition_rows (partition, n)
                SELECT c.relname, -count(*) FROM gone g JOIN pg_class c ON c.oid = g.tableoid GROUP BY c.relname
                RETURNING partition_rows.n AS delta
            )
            SELECT coalesce(-sum(counted.delta), 0) INTO n FROM counted;
        ELSIF budget IS NULL THEN
            WITH gone AS (
                DELETE FROM panko.event e WHERE e.generated <= t AND e.generated < cutoff RETURNING e.tableoid
            ), counted AS (
                INSERT INTO panko.partition_rows (partition, n)
                SELECT c.relname, -count(*) FROM gone g JOIN pg_class c ON c.oid = g.tableoid GROUP BY c.relname
                RETURNING partition_rows.n AS delta
            )
            SELECT coalesce(-sum(counted.delta), 0) INTO n FROM counted;
        ELSE
            -- exactly lim rows, oldest first
            WITH doomed AS (
                SELECT e.generated, e.message_id FROM panko.event e
                 WHERE e.generated <= t ORDER BY e.generated, e.message_id LIMIT lim
            ), gone AS (
                DELETE FROM panko.event e USING doomed d
                 WHERE e.generated = d.generated AND e.message_id = d.message_id
                RETURNING e.tableoid
            ), counted AS (
                INSERT INTO panko.partition_rows (partition, n)
                SELECT c.relname, -count(*) FROM gone g JOIN pg_class c ON c.oid = g.tableoid GROUP BY c.relname
                RETURNING partition_rows.n AS delta
            )
            SELECT coalesce(-sum(counted.delta), 0) INTO n FROM counted;
        END IF;
        rows_deleted := rows_deleted + n;
        budget := budget - n;
        EXIT WHEN t IS NULL OR n = 0;
    END LOOP;
END
$$;

CREATE OR REPLACE FUNCTION panko.remove_unused_event_types() RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t record;
    p record;
    used boolean;
    n bigint := 0;
BEGIN
    -- One index probe per type, in the newest partition first, where a type
    -- still in use almost always is: never a scan of the events, and no
    -- query over every partition at once.
    FOR t IN SELECT id FROM panko.event_type LOOP
        used := false;
        FOR p IN SELECT name FROM panko.partition ORDER BY lower_bound > now(), lower_bound DESC LOOP
            EXECUTE format('SELECT EXISTS (SELECT 1 FROM panko.%I WHERE event_type_id = $1)', p.name)
               INTO used USING t.id;
            EXIT WHEN used;
        END LOOP;
        IF NOT used THEN
            DELETE FROM panko.event_type WHERE id = t.id;
            n := n + 1;
        END IF;
    END LOOP;
    RETURN n;
END
$$;

CREATE OR REPLACE FUNCTION panko.clear_expired_data(ttl_seconds bigint, max_count bigint DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
BEGIN
    IF ttl_seconds IS NULL OR ttl_seconds < 0 THEN
        RETURN 0;                       -- -1 keeps events forever, as upstream
    END IF;
    IF max_count IS NOT NULL AND max_count < 0 THEN
        RAISE EXCEPTION 'max_count must not be negative' USING ERRCODE = '22023';
    END IF;
    -- Exclusive against ingest (which holds it shared) and other runs.
    PERFORM pg_advisory_xact_lock(1885433451, 1);
    r := panko.drop_expired_partitions(now() - make_interval(secs => ttl_seconds), max_count);
    PERFORM panko.remove_unused_event_types();
    -- (the registry of message_ids is purged by panko.run_maintenance())
    RETURN r.rows_deleted;
END
$$;

CREATE OR REPLACE FUNCTION panko.get_events(filter jsonb DEFAULT '{}', "limit" integer DEFAULT 100,
                                 sort text[] DEFAULT NULL, marker text DEFAULT NULL)
    RETURNS TABLE(message_id text, event_type text, generated timestamptz, traits panko.traits, raw jsonb)
    AS 'MODULE_PATHNAME' LANGUAGE C STABLE PARALLEL UNSAFE ROWS 100;

CREATE OR REPLACE FUNCTION panko.run_maintenance() RETURNS jsonb
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
    -- one row per partition in the counts (ingest adds one per batch)
    WITH d AS (DELETE FROM panko.partition_rows RETURNING partition, n)
    INSERT INTO panko.partition_rows (partition, n) SELECT partition, sum(n) FROM d GROUP BY partition;

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
            ELSIF field = 'all_tenants' AND panko.caller_mode() IN ('admin', 'all') THEN
                -- an admin's all_tenants is never a trait filter; read as
                -- oslo's bool_from_string does
                IF lower(btrim(value)) IN ('1', 't', 'true', 'on', 'y', 'yes') THEN
                    PERFORM panko.enable_all_tenants();
                END IF;
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

CREATE OR REPLACE FUNCTION panko.api_event_types() RETURNS json
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM panko.api_require_admin();
    -- Upstream listed its dictionary of event types (maintenance removes
    -- the types no event uses any more).
    RETURN (SELECT coalesce(json_agg(t.name ORDER BY t.name), '[]'::json) FROM panko.event_type t);
END
$$;
