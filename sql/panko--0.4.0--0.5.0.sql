-- panko 0.4.0 -> 0.5.0: retention classes (traces, rated data and metrics
-- keep their own time to live, dropped by whole partitions), CloudKitty's
-- rated data and Kaneda's metrics.
\echo Use "ALTER EXTENSION panko UPDATE TO '0.5.0'" to load this file. \quit

--------------------------------------------------------------------------
-- Retention classes.  Partitions made from now on are partitioned by class
-- (<partition>_<class>); those made before hold every class in one table
-- and expire with the events, as they did.
--------------------------------------------------------------------------
ALTER TABLE panko.event ADD COLUMN retention text COLLATE "C" NOT NULL DEFAULT 'event';
COMMENT ON TABLE panko.event IS
    'Events, partitioned by generated (panko.partition_interval wide), each partition by retention class; read them through panko.events or panko.get_events';
COMMENT ON COLUMN panko.event.retention IS
    'Retention class, from the event type (panko.retention_class): event, trace, rating or metric; each has partitions of its own';

ALTER TABLE panko.partition ADD COLUMN classes text[] COLLATE "C";
COMMENT ON COLUMN panko.partition.classes IS
    'Retention classes with a table in this partition (<name>_<class>, a list partition); NULL: a partition made before 0.5.0, one table for every class';

CREATE TABLE panko.retention (
    class text COLLATE "C" PRIMARY KEY,
    ttl_seconds bigint NOT NULL CHECK (ttl_seconds >= -1)
);
COMMENT ON TABLE panko.retention IS
    'Time to live of each retention class that has its own (set by panko.set_retention); a class without a row expires with the events';
COMMENT ON COLUMN panko.retention.class IS 'trace, rating or metric (events follow panko.event_time_to_live)';
COMMENT ON COLUMN panko.retention.ttl_seconds IS 'Seconds; -1 keeps the class forever';
SELECT pg_catalog.pg_extension_config_dump('panko.retention', '');

DROP FUNCTION panko.create_partition_for(timestamptz);

CREATE FUNCTION panko.retention_class(event_type text) RETURNS text
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION panko.retention_class(text) IS
    'The retention class of an event type: trace (osprofiler.*), rating (cloudkitty.*), metric (kaneda.*), else event';
CREATE FUNCTION panko.retention_classes() RETURNS text[]
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION panko.retention_classes() IS 'Every retention class, event first';

CREATE FUNCTION panko.create_partition_for(ts timestamptz, class text DEFAULT 'event') RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC'
SET default_tablespace = ''
SET default_table_access_method = 'heap'
AS $$
DECLARE
    width bigint := panko.setting_value('panko.partition_interval');
    lo timestamptz;
    hi timestamptz;
    prev_hi timestamptz;
    next_lo timestamptz;
    pname text;
    pclasses text[];
    near_lo timestamptz := to_timestamp(floor(extract(epoch FROM now() - interval '400 days') / width) * width);
    near_hi timestamptz := to_timestamp(floor(extract(epoch FROM now() + interval '400 days') / width) * width);
BEGIN
    IF class IS NULL OR NOT class = ANY (panko.retention_classes()) THEN
        RAISE EXCEPTION 'unknown retention class "%"', class
            USING ERRCODE = '22023', HINT = format('The classes are %s.', array_to_string(panko.retention_classes(), ', '));
    END IF;
    -- Serialise creators; then another session may already have made it.
    PERFORM panko.advisory_lock('partition');
    SELECT p.name, p.classes INTO pname, pclasses FROM panko.partition p
     WHERE ts >= p.lower_bound AND ts < p.upper_bound;
    IF NOT FOUND THEN
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

        -- A partition of the time range, itself partitioned by class.
        pname := CASE WHEN lo = '-infinity' THEN 'event_before_' || to_char(hi, 'YYYYMMDD"t"HH24MISS')
                      ELSE 'event_' || to_char(lo, 'YYYYMMDD"t"HH24MISS') END;
        pclasses := '{}';
        EXECUTE format('CREATE TABLE panko.%I (LIKE panko.event INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE) '
                       'PARTITION BY LIST (retention)', pname);
        EXECUTE format('ALTER TABLE panko.event ATTACH PARTITION panko.%I FOR VALUES FROM (%L) TO (%L)', pname, lo, hi);
        INSERT INTO panko.partition (name, lower_bound, upper_bound, classes) VALUES (pname, lo, hi, pclasses);
    END IF;

    -- A partition made before 0.5.0 holds every class.
    IF pclasses IS NULL THEN
        RETURN pname;
    END IF;
    IF NOT class = ANY (pclasses) THEN
        EXECUTE format('CREATE TABLE panko.%I (LIKE panko.event INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE)',
                       pname || '_' || class);
        EXECUTE format('ALTER TABLE panko.%I ATTACH PARTITION panko.%I FOR VALUES IN (%L)', pname, pname || '_' || class, class);
        UPDATE panko.partition p SET classes = ARRAY(SELECT c FROM unnest(p.classes || class) c ORDER BY c)
         WHERE p.name = pname;
    END IF;
    RETURN pname || '_' || class;
END
$$;
COMMENT ON FUNCTION panko.create_partition_for(timestamptz, text) IS
    'Create the partition that will hold this timestamp (interval-aligned within 400 days of now, one catch-all below and above, fitted between existing ones) and its table for the class; returns the table';

-- The tables of a partition that hold these classes (all of them: NULL).
CREATE FUNCTION panko.partition_tables(p panko.partition, wanted text[] DEFAULT NULL) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN p.classes IS NULL THEN ARRAY[p.name]
                ELSE ARRAY(SELECT p.name || '_' || c FROM unnest(p.classes) c
                            WHERE wanted IS NULL OR c = ANY (wanted) ORDER BY c) END
$$;
COMMENT ON FUNCTION panko.partition_tables(panko.partition, text[]) IS
    'The tables that hold a partition''s events of these classes (NULL: every class): <name>_<class>, or the partition itself when it was made before 0.5.0';

-- Drop a partition's tables of these classes, and the partition itself
-- when no class is left in it (one made before 0.5.0 holds every class,
-- so it goes whole).  A long reader of a table must not stall ingest
-- behind us: after a second the drop gives up (NULL) and is tried again
-- by the next run.
CREATE FUNCTION panko.drop_partition_tables(pname text, doomed_classes text[]) RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p panko.partition;
    doomed text[];
    everything text[];
    whole boolean;
    n bigint;
    t text;
    saved_lock_timeout text := current_setting('lock_timeout');
BEGIN
    SELECT * INTO p FROM panko.partition WHERE name = pname FOR UPDATE;
    IF NOT FOUND THEN
        RETURN 0;
    END IF;
    doomed := panko.partition_tables(p, doomed_classes);
    everything := panko.partition_tables(p);
    whole := p.classes IS NULL OR p.classes <@ doomed_classes;
    SELECT coalesce(sum(r.n), 0) INTO n FROM panko.partition_rows r WHERE r.partition = ANY (doomed);
    BEGIN
        PERFORM set_config('lock_timeout', '1s', true);
        IF whole THEN
            EXECUTE format('DROP TABLE panko.%I', p.name);
        ELSE
            FOREACH t IN ARRAY doomed LOOP
                EXECUTE format('DROP TABLE panko.%I', t);
            END LOOP;
        END IF;
        PERFORM set_config('lock_timeout', saved_lock_timeout, true);
    EXCEPTION WHEN lock_not_available THEN
        RAISE LOG 'panko: partition % is in use; it is dropped next run', p.name;
        RETURN NULL;
    END;
    IF whole THEN
        DELETE FROM panko.partition WHERE name = p.name;
        DELETE FROM panko.partition_rows WHERE partition = ANY (everything || p.name);
        DELETE FROM panko.partition_summary WHERE partition = p.name;
        UPDATE panko.summary_epoch SET epoch = epoch + 1;
    ELSE
        UPDATE panko.partition SET classes = ARRAY(SELECT c FROM unnest(p.classes) c WHERE NOT c = ANY (doomed_classes) ORDER BY c)
         WHERE name = p.name;
        DELETE FROM panko.partition_rows WHERE partition = ANY (doomed);
    END IF;
    RETURN n;
END
$$;
COMMENT ON FUNCTION panko.drop_partition_tables(text, text[]) IS
    'Drop a partition''s tables of these classes, and the partition when none is left; events dropped, or NULL when a reader held a table for a second';

-- The classes that expire with the events: event, and every class without
-- a time to live of its own.
CREATE FUNCTION panko.event_ttl_classes() RETURNS text[]
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT ARRAY(SELECT c FROM unnest(panko.retention_classes()) c
                  WHERE NOT EXISTS (SELECT 1 FROM panko.retention r WHERE r.class = c) ORDER BY c)
$$;
COMMENT ON FUNCTION panko.event_ttl_classes() IS 'The retention classes that expire with the events (no time to live of their own)';

CREATE OR REPLACE FUNCTION panko.drop_expired_partitions(cutoff timestamptz, max_count bigint,
                                              OUT partitions_dropped bigint, OUT rows_deleted bigint)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p panko.partition;
    n bigint;
    budget bigint := max_count;
    lim bigint;
    t timestamptz;
    following text[] := panko.event_ttl_classes();
BEGIN
    partitions_dropped := 0;
    rows_deleted := 0;
    FOR p IN SELECT * FROM panko.partition WHERE upper_bound <= cutoff
                AND (classes IS NULL OR classes && following) ORDER BY lower_bound LOOP
        SELECT coalesce(sum(r.n), 0) INTO n FROM panko.partition_rows r
         WHERE r.partition = ANY (panko.partition_tables(p, following));
        EXIT WHEN budget IS NOT NULL AND n > budget;
        n := panko.drop_partition_tables(p.name, following);
        IF n IS NULL THEN
            RETURN;
        END IF;
        partitions_dropped := partitions_dropped + 1;
        rows_deleted := rows_deleted + n;
        budget := budget - n;
    END LOOP;

    -- What is left below the cutoff: rows of the boundary partition (or of
    -- a partition too big for the budget), deleted oldest first in batches
    -- of at most 10,000, each found through the generated index.  Classes
    -- with a time to live of their own are never deleted row by row.
    LOOP
        EXIT WHEN budget IS NOT NULL AND budget <= 0;
        lim := least(coalesce(budget, 10000), 10000);
        t := NULL;
        SELECT e.generated INTO t FROM panko.event e
         WHERE e.generated < cutoff AND e.retention = ANY (following) ORDER BY e.generated OFFSET lim - 1 LIMIT 1;
        -- (each batch also takes its rows off the partitions' counts)
        IF t IS NULL THEN
            -- fewer than a batch left: all of them
            WITH gone AS (
                DELETE FROM panko.event e WHERE e.generated < cutoff AND e.retention = ANY (following) RETURNING e.tableoid
            ), counted AS (
                INSERT INTO panko.partition_rows (partition, n)
                SELECT c.relname, -count(*) FROM gone g JOIN pg_class c ON c.oid = g.tableoid GROUP BY c.relname
                RETURNING partition_rows.n AS delta
            )
            SELECT coalesce(-sum(counted.delta), 0) INTO n FROM counted;
        ELSIF budget IS NULL THEN
            WITH gone AS (
                DELETE FROM panko.event e WHERE e.generated <= t AND e.generated < cutoff AND e.retention = ANY (following)
                RETURNING e.tableoid
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
                 WHERE e.generated <= t AND e.retention = ANY (following) ORDER BY e.generated, e.message_id LIMIT lim
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
COMMENT ON FUNCTION panko.drop_expired_partitions(timestamptz, bigint) IS
    'Events'' expiry: drop the tables of partitions wholly older than cutoff (within max_count events) of every class without a time to live of its own, then delete older rows of those classes in the boundary partition';

CREATE FUNCTION panko.set_retention(class text, ttl_seconds bigint) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF class IS NULL OR NOT class = ANY (panko.retention_classes()) OR class = 'event' THEN
        RAISE EXCEPTION 'unknown retention class "%"', class
            USING ERRCODE = '22023',
                  DETAIL = 'Events expire by panko.event_time_to_live (or panko.clear_expired_data); the other classes can have a time to live of their own.',
                  HINT = 'The classes are trace, rating and metric.';
    END IF;
    IF ttl_seconds IS NULL THEN
        DELETE FROM panko.retention r WHERE r.class = set_retention.class;
    ELSIF ttl_seconds < -1 THEN
        RAISE EXCEPTION 'a time to live must be -1 (forever) or at least 0 seconds, not %', ttl_seconds
            USING ERRCODE = '22023';
    ELSE
        INSERT INTO panko.retention AS r (class, ttl_seconds) VALUES (set_retention.class, ttl_seconds)
        ON CONFLICT ON CONSTRAINT retention_pkey DO UPDATE SET ttl_seconds = excluded.ttl_seconds;
    END IF;
END
$$;
COMMENT ON FUNCTION panko.set_retention(text, bigint) IS
    'Give a retention class (trace, rating, metric) its own time to live in seconds (-1: forever), or NULL: it expires with the events again';

CREATE FUNCTION panko.expire_class(class text) RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    ttl bigint;
    p panko.partition;
    n bigint;
    total bigint := 0;
BEGIN
    SELECT r.ttl_seconds INTO ttl FROM panko.retention r WHERE r.class = expire_class.class;
    IF NOT FOUND OR ttl < 0 THEN
        RETURN 0;                       -- expires with the events, or never
    END IF;
    -- Exclusive against ingest (which holds it shared) and other runs.
    PERFORM panko.advisory_lock('maintenance');
    -- Whole tables only: the class's table in every partition wholly older
    -- than the cutoff.  (Partitions made before 0.5.0 hold every class in
    -- one table and expire with the events.)
    FOR p IN SELECT * FROM panko.partition pp
              WHERE pp.upper_bound <= now() - make_interval(secs => ttl)
                AND expire_class.class = ANY (pp.classes) ORDER BY pp.lower_bound LOOP
        n := panko.drop_partition_tables(p.name, ARRAY[class]);
        EXIT WHEN n IS NULL;
        total := total + n;
    END LOOP;
    RETURN total;
END
$$;
COMMENT ON FUNCTION panko.expire_class(text) IS
    'Drop a retention class''s tables of the partitions wholly older than its time to live (panko.set_retention); events dropped';

CREATE FUNCTION panko.seal_partitions(max_count integer DEFAULT 1000) RETURNS integer
    AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION panko.seal_partitions(integer) IS
    'Seal past partitions that have no summary of their trait keys yet (at most max_count, newest first), so that trait filters skip them; run by maintenance; returns how many';

CREATE OR REPLACE FUNCTION panko.run_maintenance() RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC'
AS $$
DECLARE
    t0 timestamptz := clock_timestamp();
    ttl bigint := panko.setting_value('panko.event_time_to_live');
    max_count bigint := nullif(panko.setting_value('panko.expiry_max_count'), 0);
    width bigint := panko.setting_value('panko.partition_interval');
    premake integer := panko.setting_value('panko.partition_premake');
    created integer := 0;
    dropped bigint := 0;
    deleted bigint := 0;
    types_removed bigint;
    purged bigint;
    r record;
    ts timestamptz;
    c text;
    expired bigint;
    sealed integer;
    classes jsonb := '{}';
BEGIN
    -- One run at a time: the worker, pg_cron and manual calls skip when
    -- another run is under way.
    IF NOT panko.try_advisory_lock('maintenance_run') THEN
        RETURN jsonb_build_object('skipped', true, 'partitions_created', 0, 'partitions_dropped', 0,
                                  'rows_deleted', 0, 'classes_expired', '{}'::jsonb, 'partitions_sealed', 0, 'event_types_removed', 0, 'registry_rows_purged', 0,
                                  'duration_ms', round((extract(epoch FROM clock_timestamp() - t0) * 1000)::numeric, 3));
    END IF;
    -- Exclusive against ingest, which holds this lock shared per batch.
    PERFORM panko.advisory_lock('maintenance');

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
    -- Classes with a time to live of their own: whole tables only.
    FOR c IN SELECT rr.class FROM panko.retention rr ORDER BY rr.class LOOP
        expired := panko.expire_class(c);
        classes := classes || jsonb_build_object(c, expired);
        deleted := deleted + expired;
    END LOOP;
    -- Summaries of past partitions that writers have not sealed.
    sealed := panko.seal_partitions(1000);
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
        'classes_expired', classes,
        'partitions_sealed', sealed,
        'event_types_removed', types_removed,
        'registry_rows_purged', purged,
        'duration_ms', round((extract(epoch FROM clock_timestamp() - t0) * 1000)::numeric, 3));
END
$$;
COMMENT ON FUNCTION panko.run_maintenance() IS
    'One maintenance run: partitions ahead, expiry by panko.event_time_to_live and by each retention class''s own time to live (whole partitions dropped), seals of past partitions, unused event types, registry; reports what it did';

REVOKE ALL ON FUNCTION panko.retention_class(text), panko.retention_classes(),
    panko.create_partition_for(timestamptz, text), panko.partition_tables(panko.partition, text[]),
    panko.drop_partition_tables(text, text[]), panko.event_ttl_classes(), panko.set_retention(text, bigint),
    panko.expire_class(text), panko.seal_partitions(integer)
FROM PUBLIC;
REVOKE ALL ON panko.retention FROM PUBLIC;
GRANT SELECT ON panko.retention TO panko_auditor;
GRANT EXECUTE ON FUNCTION panko.set_retention(text, bigint), panko.expire_class(text), panko.seal_partitions(integer)
TO panko_admin;
GRANT EXECUTE ON FUNCTION panko.retention_class(text), panko.retention_classes() TO panko_reader, panko_writer;

-- partition_summary: bounded reads per record_events call (src/traits_summary.c
-- merges a partition's batch rows and deltas by level; the seal check and the
-- search for partitions to seal go through indexes).
DROP INDEX panko.partition_summary_relid_idx;
CREATE INDEX partition_summary_relid_kind_idx ON panko.partition_summary (relid, kind, events);
CREATE INDEX partition_summary_seal_idx ON panko.partition_summary (partition) WHERE kind = 's';
COMMENT ON INDEX panko.partition_summary_relid_kind_idx IS
    'Summaries of one partition by kind and size: the merge of a level''s rows and the seal read only their own';
COMMENT ON INDEX panko.partition_summary_seal_idx IS 'Seals by partition name: is a partition sealed, which past partitions are not yet';
COMMENT ON COLUMN panko.partition_summary.events IS 'Events whose keys it holds (b and d rows of fewer than 4096 are merged by floor(log16(events)))';

-- panko.trace_report: the report is built in C in one pass
-- (panko.trace_report_json, src/trace_report.c); trace_report, still
-- SECURITY DEFINER owned by panko_query, calls it.
CREATE FUNCTION panko.trace_report_json(base_id text) RETURNS json
    AS 'MODULE_PATHNAME' LANGUAGE C STABLE
    SET search_path = pg_catalog, pg_temp
    -- the GIN index even when the trace is a large part of its partition (a
    -- scan tests every row's traits and costs far more than the planner
    -- thinks), and no JIT for a plan whose cost that inflates
    SET enable_seqscan = off
    SET jit = off;
COMMENT ON FUNCTION panko.trace_report_json(text) IS
    'The body of panko.trace_report (C, one pass: the trace''s notifications from the GIN index, the tree in memory, the JSON written once); runs with the caller''s rights, so only panko_query (trace_report''s owner) may call it';
REVOKE ALL ON FUNCTION panko.trace_report_json(text) FROM PUBLIC;
-- trace_report's body: only its owner calls it.
GRANT EXECUTE ON FUNCTION panko.trace_report_json(text) TO panko_query;

CREATE OR REPLACE FUNCTION panko.trace_report(base_id text) RETURNS json
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- osprofiler.drivers.base.Driver: _append_results over the trace's
    -- notifications in the order they happened (a span's start before its
    -- stop, then by trace_id), then _parse_results and _build_tree, in C
    -- (src/trace_report.c), reading as panko_query: row-level security
    -- judges the caller.
    RETURN panko.trace_report_json(base_id);
END
$$;
COMMENT ON FUNCTION panko.trace_report(text) IS
    'The report of one OSProfiler trace, the tree osprofiler''s Driver._parse_results builds (info, children, stats); P0002 when no notification of it is visible';
REVOKE ALL ON FUNCTION panko.trace_report(text) FROM PUBLIC;
ALTER FUNCTION panko.trace_report(text) OWNER TO panko_query;
GRANT EXECUTE ON FUNCTION panko.trace_report(text) TO panko_reader;

-- OSProfiler's notify in C (src/trace_notify.c): it stores through
-- record_events' own path, so it runs as record_events does, SECURITY
-- DEFINER as the extension's owner, granted to panko_writer only.
CREATE OR REPLACE FUNCTION panko.trace_notify(notifications jsonb) RETURNS integer
    AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    -- partitions are created under panko's storage settings, not the caller's
    SET default_tablespace = '' SET default_table_access_method = 'heap';
COMMENT ON FUNCTION panko.trace_notify(jsonb) IS
    'Store OSProfiler notifications (a JSON object, or an array of them): the panko:// driver''s notify; returns how many were new (copies already stored are ignored); a notification without its ids, name or timestamp fails the call and nothing is stored';
REVOKE ALL ON FUNCTION panko.trace_notify(jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION panko.trace_notify(jsonb) TO panko_writer;

--------------------------------------------------------------------------
-- CloudKitty's rated data (panko_drivers.cloudkitty): data points stored
-- as events of their own types, and the SQL its v2 storage backend calls.
-- (Appended to sql/panko.sql by the build; same rules: every object once,
-- in its final form, and into the next version's upgrade script too.)
--------------------------------------------------------------------------
--
-- A data point is an event:
--   event_type  cloudkitty.<metric type>          (retention class rating)
--   message_id  cloudkitty:<uuid>                 (one per point)
--   generated   the start of the point's period (UTC)
--   traits      project_id = the scope (row-level security uses it), or
--               the groupby's project_id when no scope is given;
--               g.<name> per groupby attribute, m.<name> per metadata one
--               (strings); qty and price (strings: the exact Decimal in
--               plain notation); unit (string); period (integer seconds)
--   raw         NULL
-- Totals add qty and price with panko.rating_sum, exactly (src/rating.c).
-- Filters are answered from the GIN index on traits; every query names its
-- time window, so partitions outside it are never read.
--------------------------------------------------------------------------

CREATE FUNCTION panko.rating_sum_trans(internal, panko.traits, text) RETURNS internal
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION panko.rating_sum_trans(internal, panko.traits, text) IS
    'rating_sum support: add one row''s decimal string trait';
CREATE FUNCTION panko.rating_sum_combine(internal, internal) RETURNS internal
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION panko.rating_sum_combine(internal, internal) IS
    'rating_sum support: add two partial sums (parallel plans)';
CREATE FUNCTION panko.rating_sum_final(internal) RETURNS numeric
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION panko.rating_sum_final(internal) IS
    'rating_sum support: the exact total as numeric (0 for no rows)';
CREATE FUNCTION panko.rating_sum_serialize(internal) RETURNS bytea
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION panko.rating_sum_serialize(internal) IS
    'rating_sum support: a partial sum as bytes (parallel plans)';
CREATE FUNCTION panko.rating_sum_deserialize(bytea, internal) RETURNS internal
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION panko.rating_sum_deserialize(bytea, internal) IS
    'rating_sum support: bytes back to a partial sum (parallel plans)';

CREATE AGGREGATE panko.rating_sum(panko.traits, text) (
    SFUNC = panko.rating_sum_trans,
    STYPE = internal,
    FINALFUNC = panko.rating_sum_final,
    COMBINEFUNC = panko.rating_sum_combine,
    SERIALFUNC = panko.rating_sum_serialize,
    DESERIALFUNC = panko.rating_sum_deserialize,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE panko.rating_sum(panko.traits, text) IS
    'Exact sum of a decimal string trait (128-bit integers for short values, numeric for the rest); rows without it add nothing; 0 for no rows';

CREATE FUNCTION panko.rating_point(traits panko.traits, begin text, type text) RETURNS json
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION panko.rating_point(panko.traits, text, text) IS
    'A rated data point as retrieve returns it: [begin, period, type, unit, qty, price, {groupby}, {metadata}] from its traits';

CREATE FUNCTION panko.rating_keys(traits panko.traits, names text[]) RETURNS text[]
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION panko.rating_keys(panko.traits, text[]) IS
    'The string traits of these names (NULL where absent), in order: total''s group key of any groupby attributes';

-- The groupby attributes ever pushed: total() refuses to group by others.
CREATE TABLE panko.rating_attribute (
    name text COLLATE "C" PRIMARY KEY
);
COMMENT ON TABLE panko.rating_attribute IS
    'Names of the groupby attributes of the rated data pushed so far (what total may group by, besides type and time)';
SELECT pg_catalog.pg_extension_config_dump('panko.rating_attribute', '');

-- Which of a point's groupby and metadata project_id ever differed from its
-- scope (the trait project_id): only then does a project_id filter read
-- them too; until then it is one index condition on the scope.
CREATE TABLE panko.rating_project_alias (
    attribute text COLLATE "C" PRIMARY KEY CHECK (attribute IN ('g.project_id', 'm.project_id'))
);
COMMENT ON TABLE panko.rating_project_alias IS
    'g.project_id and/or m.project_id once some rated point pushed had that attribute with a value other than its scope (the trait project_id): a project_id filter then matches those traits too';
SELECT pg_catalog.pg_extension_config_dump('panko.rating_project_alias', '');

CREATE FUNCTION panko.rating_check_points(points jsonb, OUT ord integer, OUT groupby text[],
                                          OUT g_alias boolean, OUT m_alias boolean)
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION panko.rating_check_points(jsonb) IS
    'rating_push''s checks in one pass: the position of the first malformed rated data point (NULL: none), the groupby names of the points, and whether a groupby or a metadata project_id differs from its point''s scope';

CREATE FUNCTION panko.rating_push(points jsonb) RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    info record;
    problem record;
BEGIN
    IF points IS NULL OR jsonb_typeof(points) IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION 'rated data points must be a JSON array'
            USING ERRCODE = '22023', HINT = 'panko_drivers.cloudkitty writes them; see the README, "CloudKitty".';
    END IF;
    -- Every point is checked before anything is stored (one pass, in C):
    -- one bad point fails the call and nothing of it is stored.
    info := panko.rating_check_points(points);
    IF info.ord IS NOT NULL THEN
        RAISE EXCEPTION 'rated data point % of % is malformed', info.ord, jsonb_array_length(points)
            USING ERRCODE = '22023',
                  DETAIL = left((points->(info.ord::integer - 1))::text, 200),
                  HINT = 'A point is {"message_id": "cloudkitty:<id>", "event_type": "cloudkitty.<metric>", "generated": "<ISO 8601>", "traits": {"qty": "<decimal>", "price": "<decimal>", "unit": "...", "period": <seconds>, "project_id": "...", "g.<name>": "...", "m.<name>": "..."}}.';
    END IF;
    -- (a duplicate is a copy of a point already stored, e.g. a push sent
    -- again after a lost connection: message_ids are unique per point)
    FOR problem IN SELECT * FROM panko.record_events(points) r WHERE r.status <> 'duplicate' LOOP
        RAISE EXCEPTION 'rated data point not stored: % %', problem.status, coalesce(problem.detail, '')
            USING ERRCODE = '22023', DETAIL = 'message_id ' || coalesce(problem.message_id, '(none)');
    END LOOP;
    IF info.groupby IS NOT NULL THEN
        INSERT INTO panko.rating_attribute (name)
        SELECT n FROM unnest(info.groupby) n
         WHERE NOT EXISTS (SELECT 1 FROM panko.rating_attribute a WHERE a.name OPERATOR(pg_catalog.=) n)
        ON CONFLICT DO NOTHING;
    END IF;
    IF info.g_alias OR info.m_alias THEN
        INSERT INTO panko.rating_project_alias (attribute)
        SELECT a FROM unnest(ARRAY[CASE WHEN info.g_alias THEN 'g.project_id' END,
                                   CASE WHEN info.m_alias THEN 'm.project_id' END]) a
         WHERE a IS NOT NULL
        ON CONFLICT DO NOTHING;
    END IF;
    RETURN jsonb_array_length(points);
END
$$;
COMMENT ON FUNCTION panko.rating_push(jsonb) IS
    'CloudKitty''s push: store rated data points (a JSON array of events of types cloudkitty.*, see the README) in one transaction; a malformed point stores nothing; returns how many were stored';

-- The WHERE clause of CloudKitty's filters, as SQL text made of fixed
-- fragments only: values travel as the parameter $<param> (the traits
-- returned in args), never in the text.
CREATE FUNCTION panko.rating_conditions(filters jsonb, group_filters jsonb, param integer,
                                        OUT clause text, OUT args panko.traits[], OUT types text[],
                                        OUT together panko.traits)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    f record;
    which text;
    vals text[];
    names text[];
    alts text[];
    n text;
    v text;
    single jsonb := '{}';
BEGIN
    clause := '';
    args := '{}';
    FOREACH which IN ARRAY ARRAY['filters', 'group_filters'] LOOP
        FOR f IN SELECT * FROM jsonb_each(coalesce(CASE which WHEN 'filters' THEN filters ELSE group_filters END, '{}'))
        LOOP
            IF f.key = '' OR octet_length(f.key) > 253 THEN
                RAISE EXCEPTION 'bad % attribute name "%"', which, left(f.key, 64)
                    USING ERRCODE = '22023', DETAIL = 'An attribute name is 1 to 253 bytes.';
            END IF;
            IF jsonb_typeof(f.value) IN ('string', 'number', 'boolean') THEN
                vals := ARRAY[f.value #>> '{}'];
            ELSIF jsonb_typeof(f.value) = 'array'
                  AND NOT EXISTS (SELECT 1 FROM jsonb_array_elements(f.value) x
                                   WHERE jsonb_typeof(x) NOT IN ('string', 'number', 'boolean')) THEN
                vals := ARRAY(SELECT x #>> '{}' FROM jsonb_array_elements(f.value) x);
            ELSE
                RAISE EXCEPTION 'bad value for % attribute "%"', which, left(f.key, 64)
                    USING ERRCODE = '22023', DETAIL = 'A filter value is a string, a number, or a list of them.';
            END IF;
            IF f.key = 'type' THEN
                -- the metric type, as in the Elasticsearch backend
                types := CASE WHEN types IS NULL THEN vals
                              ELSE ARRAY(SELECT unnest(types) INTERSECT SELECT unnest(vals)) END;
                CONTINUE;
            END IF;
            IF which = 'group_filters' AND cardinality(vals) = 1 THEN
                single := single || jsonb_build_object('g.' || f.key, vals[1]);
                CONTINUE;
            END IF;
            -- filters match a groupby or a metadata attribute (and, for
            -- project_id, the scope); group_filters the groupby only
            names := CASE WHEN which = 'group_filters' THEN ARRAY['g.' || f.key]
                          WHEN f.key = 'project_id' THEN
                              -- (the scope, and the others only once some
                              -- point had them differ from its scope)
                              ARRAY['project_id'] || ARRAY(SELECT a.attribute FROM panko.rating_project_alias a
                                                            ORDER BY a.attribute)
                          ELSE ARRAY['g.' || f.key, 'm.' || f.key] END;
            IF cardinality(vals) = 1 AND cardinality(names) = 1
               AND coalesce(single->>names[1], vals[1]) = vals[1] THEN
                -- (e.g. a project_id: one trait, so one index condition)
                single := single || jsonb_build_object(names[1], vals[1]);
                CONTINUE;
            END IF;
            alts := '{}';
            FOREACH v IN ARRAY vals LOOP
                FOREACH n IN ARRAY names LOOP
                    args := args || panko.traits(jsonb_build_object(n, v));
                    alts := alts || format('e.traits OPERATOR(panko.@>) $%s[%s]', param, cardinality(args));
                END LOOP;
            END LOOP;
            clause := clause || CASE WHEN cardinality(alts) = 0 THEN ' AND false'
                                     ELSE ' AND (' || array_to_string(alts, ' OR ') || ')' END;
        END LOOP;
    END LOOP;
    -- Filters that are all single traits are one containment: the common
    -- shapes' static queries take it (the empty traits for no filter).
    IF clause = '' THEN
        together := panko.traits(single);
    END IF;
    IF single <> '{}' THEN
        args := args || panko.traits(single);
        clause := clause || format(' AND e.traits OPERATOR(panko.@>) $%s[%s]', param, cardinality(args));
    END IF;
END
$$;
COMMENT ON FUNCTION panko.rating_conditions(jsonb, jsonb, integer) IS
    'CloudKitty''s filters and group_filters as a parameterised WHERE clause over traits (GIN conditions), the traits it binds, the metric types a "type" filter names, and (when every condition is one trait) all of them as one traits value to contain';

-- The ids of the event types of these metric types (all rated data: NULL).
CREATE FUNCTION panko.rating_type_ids(metric_types text[]) RETURNS integer[]
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(array_agg(t.id), '{}')
      FROM panko.event_type t
     WHERE left(t.name, 11) OPERATOR(pg_catalog.=) 'cloudkitty.'
       AND (metric_types IS NULL OR substr(t.name, 12) OPERATOR(pg_catalog.=) ANY (metric_types))
$$;
COMMENT ON FUNCTION panko.rating_type_ids(text[]) IS
    'Ids of the event types cloudkitty.<metric> of these metric types (every rated type for NULL)';

CREATE FUNCTION panko.rating_check_window(begin timestamptz, "end" timestamptz, "offset" bigint, "limit" bigint)
    RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF begin > "end" THEN
        RAISE EXCEPTION 'begin (%) is after end (%)', begin, "end"
            USING ERRCODE = '22023', HINT = 'The period is begin <= time < end.';
    END IF;
    IF "offset" < 0 OR "limit" < 0 THEN
        RAISE EXCEPTION 'offset and limit must not be negative' USING ERRCODE = '22023';
    END IF;
END
$$;
COMMENT ON FUNCTION panko.rating_check_window(timestamptz, timestamptz, bigint, bigint) IS
    'Refuse a period that ends before it begins, and a negative offset or limit (22023)';

CREATE FUNCTION panko.rating_retrieve(begin timestamptz, "end" timestamptz, metric_types text[] DEFAULT NULL,
                                      filters jsonb DEFAULT NULL, group_filters jsonb DEFAULT NULL,
                                      "offset" bigint DEFAULT 0, "limit" bigint DEFAULT 1000)
    RETURNS json
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
-- (every plan is made for the call's values: a generic plan cannot know
-- that the window covers whole partitions, or how few points a filter
-- matches, and ANDs a bitmap of each partition's whole time index into
-- the trait index's; and no ordered scan of a partition's time index,
-- filtered, for a page: the matches are few)
SET plan_cache_mode = force_custom_plan
SET enable_indexscan = off
AS $$
DECLARE
    c record;
    ids integer[];
    total bigint;
    points json;
    cond text;
BEGIN
    IF begin IS NULL OR "end" IS NULL THEN
        RAISE EXCEPTION 'retrieve needs begin and end' USING ERRCODE = '22023';
    END IF;
    PERFORM panko.rating_check_window(begin, "end", "offset", "limit");
    c := panko.rating_conditions(filters, group_filters, 4);
    IF c.types IS NOT NULL THEN
        metric_types := CASE WHEN metric_types IS NULL THEN c.types
                             ELSE ARRAY(SELECT unnest(metric_types) INTERSECT SELECT unnest(c.types)) END;
    END IF;
    -- (as panko.rating_type_ids, with the plan kept by this function)
    SELECT coalesce(array_agg(t.id), '{}') INTO ids
      FROM panko.event_type t
     WHERE left(t.name, 11) OPERATOR(pg_catalog.=) 'cloudkitty.'
       AND (metric_types IS NULL OR substr(t.name, 12) OPERATOR(pg_catalog.=) ANY (metric_types));
    -- The common shapes (no filter, or filters that are one containment)
    -- are static SQL (parsed once; planned for each call's values, see
    -- above); the others are built, parameterised, for each call.  Either
    -- way the matches are read once (bitmap scans of the window's rating
    -- tables), then counted and the page sorted, each point built in C.
    IF c.together IS NOT NULL AND panko.trait_count(c.together) OPERATOR(pg_catalog.=) 0 THEN
        WITH m AS MATERIALIZED (
            SELECT e.generated, e.message_id, e.event_type_id, e.traits FROM panko.event e
             WHERE e.retention OPERATOR(pg_catalog.=) 'rating'
               AND e.generated OPERATOR(pg_catalog.>=) rating_retrieve.begin
               AND e.generated OPERATOR(pg_catalog.<) rating_retrieve."end"
               AND (metric_types IS NULL OR e.event_type_id OPERATOR(pg_catalog.=) ANY (ids)))
        SELECT (SELECT count(*) FROM m),
               coalesce((SELECT json_agg(panko.rating_point(p.traits, panko.iso_timestamp(p.generated),
                                         (SELECT substr(t.name, 12) FROM panko.event_type t
                                           WHERE t.id OPERATOR(pg_catalog.=) p.event_type_id))
                                         ORDER BY p.generated, p.message_id)
                           FROM (SELECT * FROM m ORDER BY m.generated, m.message_id
                                 OFFSET coalesce(rating_retrieve."offset", 0) LIMIT rating_retrieve."limit") p), '[]')
          INTO total, points;
        RETURN json_build_object('total', total, 'points', points);
    ELSIF c.together IS NOT NULL THEN
        WITH m AS MATERIALIZED (
            SELECT e.generated, e.message_id, e.event_type_id, e.traits FROM panko.event e
             WHERE e.retention OPERATOR(pg_catalog.=) 'rating'
               AND e.generated OPERATOR(pg_catalog.>=) rating_retrieve.begin
               AND e.generated OPERATOR(pg_catalog.<) rating_retrieve."end"
               AND e.traits OPERATOR(panko.@>) c.together
               AND (metric_types IS NULL OR e.event_type_id OPERATOR(pg_catalog.=) ANY (ids)))
        SELECT (SELECT count(*) FROM m),
               coalesce((SELECT json_agg(panko.rating_point(p.traits, panko.iso_timestamp(p.generated),
                                         (SELECT substr(t.name, 12) FROM panko.event_type t
                                           WHERE t.id OPERATOR(pg_catalog.=) p.event_type_id))
                                         ORDER BY p.generated, p.message_id)
                           FROM (SELECT * FROM m ORDER BY m.generated, m.message_id
                                 OFFSET coalesce(rating_retrieve."offset", 0) LIMIT rating_retrieve."limit") p), '[]')
          INTO total, points;
        RETURN json_build_object('total', total, 'points', points);
    END IF;
    cond := ' FROM panko.event e WHERE e.retention OPERATOR(pg_catalog.=) ''rating'''
            ' AND e.generated >= $1 AND e.generated < $2'
            ' AND e.event_type_id OPERATOR(pg_catalog.=) ANY ($3)' || c.clause;
    -- (the same, built) (bitmap scans of the window's rating tables), then
    -- their count and the page, sorted, each point built only for the page.
    EXECUTE 'WITH m AS MATERIALIZED (SELECT e.generated, e.message_id, e.event_type_id, e.traits' || cond || ')'
            ' SELECT (SELECT count(*) FROM m), coalesce((SELECT json_agg(panko.rating_point(p.traits,'
            ' panko.iso_timestamp(p.generated),'
            ' (SELECT substr(t.name, 12) FROM panko.event_type t WHERE t.id OPERATOR(pg_catalog.=) p.event_type_id))'
            ' ORDER BY p.generated, p.message_id)'
            ' FROM (SELECT * FROM m ORDER BY m.generated, m.message_id OFFSET $5 LIMIT $6) p), ''[]'')'
       INTO total, points USING begin, "end", ids, c.args, coalesce("offset", 0), "limit";
    RETURN json_build_object('total', total, 'points', points);
END
$$;
COMMENT ON FUNCTION panko.rating_retrieve(timestamptz, timestamptz, text[], jsonb, jsonb, bigint, bigint) IS
    'CloudKitty''s retrieve: the rated data points of [begin, end) matching the filters, oldest first, a page of limit after offset (NULL limit: all); {"total", "points": [[begin, period, type, unit, qty, price, groupby, metadata]]}';

CREATE FUNCTION panko.rating_total(begin timestamptz, "end" timestamptz, groupby text[] DEFAULT NULL,
                                   metric_types text[] DEFAULT NULL, filters jsonb DEFAULT NULL,
                                   group_filters jsonb DEFAULT NULL, custom_fields text DEFAULT NULL,
                                   "offset" bigint DEFAULT 0, "limit" bigint DEFAULT 1000)
    RETURNS json
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
-- (as rating_retrieve: plans for the call's values, bitmap scans)
SET plan_cache_mode = force_custom_plan
SET enable_indexscan = off
AS $$
DECLARE
    c record;
    ids integer[];
    field text;
    m text[];
    names text[] := '{}';
    aggs text[] := '{}';
    keys text[] := '{}';
    outer_keys text[] := '{}';
    attrs text[] := '{}';
    g text;
    i integer := 0;
    timecol boolean := false;
    kinds integer[] := '{}';
    bytype boolean := false;
    inner_sql text;
    result json;
    field_re constant text := '^\s*(sum|min|max|avg|count)\s*\(\s*(qty|price|\*)\s*\)\s*(?:as\s+([A-Za-z_][A-Za-z0-9_]*))?\s*$';
BEGIN
    IF begin IS NULL OR "end" IS NULL THEN
        RAISE EXCEPTION 'total needs begin and end' USING ERRCODE = '22023';
    END IF;
    PERFORM panko.rating_check_window(begin, "end", "offset", "limit");

    -- custom_fields: "AGG(field) [AS name], ..." against a fixed list; each
    -- becomes a fixed SQL fragment, the name only a key of the answer.
    FOREACH field IN ARRAY string_to_array(coalesce(custom_fields, 'SUM(qty) AS qty, SUM(price) AS rate'), ',') LOOP
        m := regexp_match(field, field_re, 'i');
        IF m IS NULL OR (m[2] = '*' AND lower(m[1]) <> 'count') THEN
            RAISE EXCEPTION 'bad custom field "%"', left(btrim(field), 64)
                USING ERRCODE = '22023',
                      HINT = 'A custom field is AGG(FIELD) [AS name] with AGG one of SUM, MIN, MAX, AVG, COUNT and FIELD qty or price (or * for COUNT), e.g. "SUM(qty) AS qty, SUM(price) AS rate".';
        END IF;
        g := coalesce(m[3], lower(m[1]));
        IF g = ANY (names) OR g IN ('begin', 'end') OR g = ANY (groupby) THEN
            RAISE EXCEPTION 'custom field name "%" is used twice', g USING ERRCODE = '22023';
        END IF;
        names := names || g;
        aggs := aggs || CASE lower(m[1]) || ' ' || lower(m[2])
            WHEN 'sum qty' THEN 'panko.rating_sum(e.traits, ''qty'')'
            WHEN 'sum price' THEN 'panko.rating_sum(e.traits, ''price'')'
            WHEN 'min qty' THEN 'min(panko.trait_text(e.traits, ''qty'')::numeric)'
            WHEN 'min price' THEN 'min(panko.trait_text(e.traits, ''price'')::numeric)'
            WHEN 'max qty' THEN 'max(panko.trait_text(e.traits, ''qty'')::numeric)'
            WHEN 'max price' THEN 'max(panko.trait_text(e.traits, ''price'')::numeric)'
            WHEN 'avg qty' THEN 'avg(panko.trait_text(e.traits, ''qty'')::numeric)'
            WHEN 'avg price' THEN 'avg(panko.trait_text(e.traits, ''price'')::numeric)'
            ELSE 'count(*)' END;
    END LOOP;

    IF cardinality(aggs) = 0 THEN
        RAISE EXCEPTION 'bad custom field ""' USING ERRCODE = '22023',
            HINT = 'custom_fields lists at least one field, e.g. "SUM(qty) AS qty, SUM(price) AS rate".';
    END IF;

    -- groupby: type (the metric type), time (each point's period), or a
    -- groupby attribute some pushed point has.
    FOREACH g IN ARRAY coalesce(groupby, '{}') LOOP
        i := i + 1;
        IF g IS NULL OR g = ANY (groupby[1:i - 1]) THEN
            RAISE EXCEPTION 'groupby must name distinct attributes' USING ERRCODE = '22023';
        ELSIF g = 'type' THEN
            keys := keys || 'e.event_type_id'::text;
            kinds := kinds || 0;
            bytype := true;
            outer_keys := outer_keys || format('(SELECT substr(t.name, 12) FROM panko.event_type t WHERE t.id OPERATOR(pg_catalog.=) g.k%s)', i);
        ELSIF g = 'time' THEN
            timecol := true;
            keys := keys || 'e.generated'::text;
            kinds := kinds || -1;
            outer_keys := outer_keys || format('panko.iso_timestamp(g.k%s) COLLATE "C"', i);
        ELSIF EXISTS (SELECT 1 FROM panko.rating_attribute a WHERE a.name OPERATOR(pg_catalog.=) g) THEN
            attrs := attrs || ('g.' || g);
            kinds := kinds || cardinality(attrs);
            keys := keys || format('panko.trait_text(e.traits, $5[%s])', cardinality(attrs));
            outer_keys := outer_keys || format('g.k%s COLLATE "C"', i);
        ELSE
            RAISE EXCEPTION 'unknown groupby attribute "%"', left(g, 64)
                USING ERRCODE = '22023',
                      DETAIL = 'No rated data point has it among its groupby attributes.',
                      HINT = 'Group by type, time, or one of: ' || coalesce((SELECT string_agg(a.name, ', ' ORDER BY a.name)
                                                                   FROM (SELECT name FROM panko.rating_attribute ORDER BY name LIMIT 30) a), '(none yet)');
        END IF;
    END LOOP;
    IF timecol THEN
        keys := keys || 'panko.trait_int(e.traits, ''period'')'::text;
        outer_keys := outer_keys || format('g.k%s', cardinality(keys));
    END IF;

    c := panko.rating_conditions(filters, group_filters, 4);
    IF c.types IS NOT NULL THEN
        metric_types := CASE WHEN metric_types IS NULL THEN c.types
                             ELSE ARRAY(SELECT unnest(metric_types) INTERSECT SELECT unnest(c.types)) END;
    END IF;
    -- (as panko.rating_type_ids, with the plan kept by this function)
    SELECT coalesce(array_agg(t.id), '{}') INTO ids
      FROM panko.event_type t
     WHERE left(t.name, 11) OPERATOR(pg_catalog.=) 'cloudkitty.'
       AND (metric_types IS NULL OR substr(t.name, 12) OPERATOR(pg_catalog.=) ANY (metric_types));
    -- The small common shape (the default fields, filters that are one
    -- containment, e.g. a project's) is static SQL, grouping by any
    -- groupby through one array of attribute values; the others, where the
    -- SQL text is a small part of the time (a total over every project: a
    -- parallel scan), are built for each call.
    -- Both order the groups alike: by their keys (text bytewise), NULLs last.
    IF custom_fields IS NULL AND c.together IS NOT NULL
       AND panko.trait_count(c.together) OPERATOR(pg_catalog.>) 0 THEN
        WITH g AS MATERIALIZED (
            SELECT CASE WHEN bytype THEN e.event_type_id END AS tid,
                   CASE WHEN timecol THEN e.generated END AS ts,
                   CASE WHEN timecol THEN panko.trait_int(e.traits, 'period') END AS per,
                   panko.rating_keys(e.traits, attrs) AS k,
                   panko.rating_sum(e.traits, 'qty') AS q, panko.rating_sum(e.traits, 'price') AS p
              FROM panko.event e
             WHERE e.retention OPERATOR(pg_catalog.=) 'rating'
               AND e.generated OPERATOR(pg_catalog.>=) rating_total.begin
               AND e.generated OPERATOR(pg_catalog.<) rating_total."end"
               AND e.traits OPERATOR(panko.@>) c.together
               AND (metric_types IS NULL OR e.event_type_id OPERATOR(pg_catalog.=) ANY (ids))
             GROUP BY 1, 2, 3, 4),
        r AS (
            SELECT g.q, g.p, g.per,
                   ARRAY(SELECT CASE WHEN x.kind OPERATOR(pg_catalog.=) 0
                                     THEN (SELECT substr(t.name, 12) FROM panko.event_type t
                                            WHERE t.id OPERATOR(pg_catalog.=) g.tid)
                                     WHEN x.kind OPERATOR(pg_catalog.<) 0 THEN panko.iso_timestamp(g.ts)
                                     ELSE g.k[x.kind] END COLLATE "C"
                           FROM unnest(kinds) WITH ORDINALITY AS x(kind, i) ORDER BY x.i) AS keys
              FROM g
            -- (no groupby: one total, 0 when nothing matches)
             UNION ALL
            SELECT 0, 0, NULL, '{}' WHERE cardinality(kinds) OPERATOR(pg_catalog.=) 0 AND NOT EXISTS (SELECT FROM g))
        SELECT json_build_object('total', (SELECT count(*) FROM r), 'fields', names, 'results',
               coalesce((SELECT json_agg(json_build_array(
                                   CASE WHEN timecol THEN (pg_catalog.to_jsonb(o.keys) OPERATOR(pg_catalog.||) pg_catalog.to_jsonb(o.per))::json
                                        ELSE pg_catalog.to_json(o.keys) END,
                                   json_build_array(o.q::text, o.p::text)) ORDER BY o.keys, o.per NULLS LAST)
                           FROM (SELECT * FROM r ORDER BY r.keys, r.per NULLS LAST
                                 OFFSET coalesce(rating_total."offset", 0) LIMIT rating_total."limit") o), '[]'))
          INTO result;
        RETURN result;
    END IF;
    inner_sql := 'SELECT '
        || coalesce((SELECT string_agg(format('%s AS k%s', k, n), ', ') FROM unnest(keys) WITH ORDINALITY AS x(k, n)) || ', ', '')
        || (SELECT string_agg(format('%s AS a%s', a, n), ', ') FROM unnest(aggs) WITH ORDINALITY AS x(a, n))
        || ' FROM panko.event e WHERE e.retention OPERATOR(pg_catalog.=) ''rating'''
        || ' AND e.generated >= $1 AND e.generated < $2'
        || ' AND e.event_type_id OPERATOR(pg_catalog.=) ANY ($3)' || c.clause
        || coalesce(' GROUP BY ' || (SELECT string_agg(format('k%s', n), ', ') FROM unnest(keys) WITH ORDINALITY AS x(k, n)), '');
    EXECUTE 'WITH g AS MATERIALIZED (' || inner_sql || ')'
        || ' SELECT json_build_object(''total'', (SELECT count(*) FROM g), ''fields'', $8::text[], ''results'', '
        || ' coalesce((SELECT json_agg(json_build_array(json_build_array('
        || coalesce(array_to_string(outer_keys, ', '), '') || '), json_build_array('
        || (SELECT string_agg(format('g.a%s::text', n), ', ') FROM unnest(aggs) WITH ORDINALITY AS x(a, n))
        || ')) ORDER BY g.ord) FROM (SELECT g.*, row_number() OVER (ORDER BY '
        || coalesce((SELECT string_agg(format('%s NULLS LAST', k), ', ') FROM unnest(outer_keys) AS k), '1')
        || ') AS ord FROM g ORDER BY ord OFFSET $6 LIMIT $7) g), ''[]''))'
       INTO result USING begin, "end", ids, c.args, attrs, coalesce("offset", 0), "limit", names;
    RETURN result;
END
$$;
COMMENT ON FUNCTION panko.rating_total(timestamptz, timestamptz, text[], text[], jsonb, jsonb, text, bigint, bigint) IS
    'CloudKitty''s total: exact sums (or the custom fields) of the rated data of [begin, end) matching the filters, grouped by groupby (attributes, type, time), ordered by the groups'' keys (bytewise, missing last), a page of limit after offset (NULL: all); {"total": groups, "fields", "results": [[keys], [values]]}';

CREATE FUNCTION panko.rating_delete(begin timestamptz DEFAULT NULL, "end" timestamptz DEFAULT NULL,
                                    filters jsonb DEFAULT NULL)
    RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c record;
    ids integer[];
    n bigint;
BEGIN
    PERFORM panko.rating_check_window(begin, "end", 0, 0);
    c := panko.rating_conditions(filters, NULL, 4);
    ids := panko.rating_type_ids(c.types);
    -- (each deletion also takes its rows off the partitions' counts)
    EXECUTE 'WITH gone AS (DELETE FROM panko.event e WHERE e.retention OPERATOR(pg_catalog.=) ''rating'''
            ' AND e.generated >= $1 AND e.generated < $2'
            ' AND e.event_type_id OPERATOR(pg_catalog.=) ANY ($3)' || c.clause || ' RETURNING e.tableoid),'
            ' counted AS (INSERT INTO panko.partition_rows (partition, n)'
            ' SELECT c.relname, -count(*) FROM gone g JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) g.tableoid'
            ' GROUP BY c.relname RETURNING partition_rows.n AS delta)'
            ' SELECT coalesce(-sum(counted.delta), 0) FROM counted'
       INTO n USING coalesce(begin, '-infinity'), coalesce("end", 'infinity'), ids, c.args;
    RETURN n;
END
$$;
COMMENT ON FUNCTION panko.rating_delete(timestamptz, timestamptz, jsonb) IS
    'CloudKitty''s delete: remove the rated data of [begin, end) (NULL: unbounded) matching the filters, of every scope; returns how many points were deleted';

CREATE FUNCTION panko.rating_init(retention_seconds bigint) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF retention_seconds IS NULL OR retention_seconds < -1 THEN
        RAISE EXCEPTION 'retention must be -1 (forever) or a number of seconds' USING ERRCODE = '22023';
    END IF;
    PERFORM panko.set_retention('rating', retention_seconds);
END
$$;
COMMENT ON FUNCTION panko.rating_init(bigint) IS
    'CloudKitty''s init: rated data (retention class rating) is kept for retention_seconds ([storage] retention_period), whole partitions dropped by maintenance';

-- Writers push (with their own rights); readers (auditors, and gateways' identities under
-- row-level security) retrieve and total, as panko_query; deleting and
-- setting the retention are the admin's, or granted to CloudKitty's role.
REVOKE ALL ON TABLE panko.rating_attribute FROM PUBLIC;
REVOKE ALL ON TABLE panko.rating_project_alias FROM PUBLIC;
GRANT SELECT ON panko.rating_attribute, panko.rating_project_alias TO panko_auditor, panko_query;
-- (rating_push runs with the writer's rights: record_events is its own
-- SECURITY DEFINER, and the writer adds the names it pushes)
GRANT SELECT, INSERT ON panko.rating_attribute, panko.rating_project_alias TO panko_writer;
REVOKE ALL ON FUNCTION panko.rating_sum_trans(internal, panko.traits, text), panko.rating_sum_combine(internal, internal),
    panko.rating_sum_final(internal), panko.rating_sum_serialize(internal), panko.rating_sum_deserialize(bytea, internal),
    panko.rating_sum(panko.traits, text), panko.rating_point(panko.traits, text, text),
    panko.rating_keys(panko.traits, text[]), panko.rating_check_points(jsonb), panko.rating_push(jsonb), panko.rating_conditions(jsonb, jsonb, integer),
    panko.rating_type_ids(text[]), panko.rating_check_window(timestamptz, timestamptz, bigint, bigint),
    panko.rating_retrieve(timestamptz, timestamptz, text[], jsonb, jsonb, bigint, bigint),
    panko.rating_total(timestamptz, timestamptz, text[], text[], jsonb, jsonb, text, bigint, bigint),
    panko.rating_delete(timestamptz, timestamptz, jsonb), panko.rating_init(bigint)
FROM PUBLIC;
ALTER FUNCTION panko.rating_retrieve(timestamptz, timestamptz, text[], jsonb, jsonb, bigint, bigint) OWNER TO panko_query;
ALTER FUNCTION panko.rating_total(timestamptz, timestamptz, text[], text[], jsonb, jsonb, text, bigint, bigint) OWNER TO panko_query;
GRANT EXECUTE ON FUNCTION panko.rating_sum(panko.traits, text), panko.rating_point(panko.traits, text, text),
    panko.rating_keys(panko.traits, text[]), panko.rating_conditions(jsonb, jsonb, integer),
    panko.rating_type_ids(text[]), panko.rating_check_window(timestamptz, timestamptz, bigint, bigint)
TO panko_reader, panko_query;
GRANT EXECUTE ON FUNCTION panko.rating_push(jsonb), panko.rating_check_points(jsonb) TO panko_writer;
GRANT EXECUTE ON FUNCTION panko.rating_retrieve(timestamptz, timestamptz, text[], jsonb, jsonb, bigint, bigint),
    panko.rating_total(timestamptz, timestamptz, text[], text[], jsonb, jsonb, text, bigint, bigint)
TO panko_reader;
GRANT EXECUTE ON FUNCTION panko.rating_delete(timestamptz, timestamptz, jsonb), panko.rating_init(bigint) TO panko_admin;

--------------------------------------------------------------------------
-- Kaneda's metrics and events (panko_drivers.kaneda): reports stored as
-- events of their own types, and the series functions that read them.
-- (Appended to sql/panko.sql and sql/rating.sql by the build; same rules:
-- every object once, in its final form, and into the next version's
-- upgrade script too.)
--
-- A report (Metrics.gauge/increment/decrement/timing/event/custom: one
-- backend.report(name, metric, value, tags, id_)) is an event of type
-- kaneda.gauge, kaneda.counter, kaneda.timing, kaneda.event, or
-- kaneda.custom (trait metric = the custom metric's name), with traits:
--   app_name, name, host      string
--   value                     a scalar value: integer, float or string
--                             (true/false: integer 1/0)
--   value.<key>               each scalar key of a dict value
--   tag.<tag>                 each tag of a list of tags (string = the tag)
--   tags.<key>                each key of a dict of tags (typed)
--   id                        the report's id_, when given
-- raw holds the value only when traits cannot carry it (null, a list, a
-- nested dict).  message_id: kaneda:id:<length of app>:<app>:<id_> for a
-- report with an id_ (a second copy is a duplicate, in any partition),
-- kaneda:<key> otherwise (key: a UUID the client makes per report, so a
-- retried call stores nothing twice).
--
-- Numeric reports also go into panko.metric_rollup at ingest: one row per
-- metric name, app, kind and minute (width 60) or hour (width 3600), with
-- count, sum, min, max and the newest value.  A series takes whole hours
-- and whole minutes of each bucket from it and the rest (the edges of
-- buckets that are not whole minutes) from the reports, so every bucket
-- is exact.  Rollup rows name the partition of their reports and are
-- deleted when it is dropped (the event trigger metric_rollup_drop).
--------------------------------------------------------------------------

CREATE TABLE panko.metric_rollup (
    name text COLLATE "C" NOT NULL,
    width integer NOT NULL CHECK (width IN (60, 3600)),
    bucket timestamptz NOT NULL,
    app_name text COLLATE "C" NOT NULL,
    metric text COLLATE "C" NOT NULL,
    relid oid NOT NULL,
    n bigint NOT NULL,
    total double precision NOT NULL,
    low double precision NOT NULL,
    high double precision NOT NULL,
    last_at timestamptz NOT NULL,
    last_value double precision NOT NULL,
    PRIMARY KEY (name, width, bucket, app_name, metric) INCLUDE (n, total, low, high)
);
CREATE INDEX metric_rollup_relid_idx ON panko.metric_rollup (relid);
CREATE INDEX metric_rollup_latest_idx ON panko.metric_rollup (metric, name, app_name, bucket DESC)
    INCLUDE (last_at, last_value) WHERE width = 3600;
COMMENT ON TABLE panko.metric_rollup IS
    'Per-minute and per-hour aggregates of Kaneda''s numeric reports, kept by panko.metric_report; the series functions read whole minutes and hours from it';
COMMENT ON COLUMN panko.metric_rollup.width IS 'Seconds: 60 (a minute) or 3600 (an hour)';
COMMENT ON COLUMN panko.metric_rollup.bucket IS 'Start of the minute or hour (UTC)';
COMMENT ON COLUMN panko.metric_rollup.metric IS 'gauge, counter, timing or a custom metric''s name';
COMMENT ON COLUMN panko.metric_rollup.relid IS 'The partition of panko.event holding the reports (rows are deleted when it is dropped)';
COMMENT ON COLUMN panko.metric_rollup.n IS 'Reports';
COMMENT ON COLUMN panko.metric_rollup.total IS 'Sum of their values';
COMMENT ON COLUMN panko.metric_rollup.low IS 'Smallest value';
COMMENT ON COLUMN panko.metric_rollup.high IS 'Largest value';
COMMENT ON COLUMN panko.metric_rollup.last_at IS 'Time of the newest report';
COMMENT ON COLUMN panko.metric_rollup.last_value IS 'Value of the newest report';
COMMENT ON INDEX panko.metric_rollup_relid_idx IS 'Rows of a dropped partition';
COMMENT ON INDEX panko.metric_rollup_latest_idx IS 'The newest hour of each series (metric_latest)';

-- Kaneda's reports carry no project_id, so members see none of them and
-- admins, auditors and panko_admin see all, as with the events.
ALTER TABLE panko.metric_rollup ENABLE ROW LEVEL SECURITY;
CREATE POLICY metric_rollup_visibility ON panko.metric_rollup FOR SELECT
    USING ((SELECT panko.caller_mode()) IN ('all', 'admin'));
COMMENT ON POLICY metric_rollup_visibility ON panko.metric_rollup IS
    'As panko.event for events without project_id: admins, auditors and panko_admin';

-- Rollup rows go with their partition, whoever drops it (expiry by class,
-- clear_expired_data, an operator).
-- (not SECURITY DEFINER: only the owner of a partition, panko's, can drop it)
CREATE FUNCTION panko.metric_rollup_drop() RETURNS event_trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF to_regclass('panko.metric_rollup') IS NULL THEN
        RETURN;     -- the extension itself is being dropped
    END IF;
    DELETE FROM panko.metric_rollup r
     USING pg_event_trigger_dropped_objects() d
     WHERE d.classid = 'pg_class'::regclass AND d.object_type = 'table'
       AND d.schema_name = 'panko' AND r.relid = d.objid;
END
$$;
COMMENT ON FUNCTION panko.metric_rollup_drop() IS
    'Event trigger: deletes the rollup rows of a dropped partition of panko.event';
CREATE EVENT TRIGGER metric_rollup_drop ON sql_drop WHEN TAG IN ('DROP TABLE')
    EXECUTE FUNCTION panko.metric_rollup_drop();

-- A JSON scalar as a Panko trait {"name","type","value"}; NULL when traits
-- cannot carry it (null, arrays, objects).
CREATE FUNCTION panko.metric_trait(name text, v jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE jsonb_typeof(v)
        WHEN 'string' THEN jsonb_build_object('name', name, 'type', 'string', 'value', v)
        WHEN 'boolean' THEN jsonb_build_object('name', name, 'type', 'integer', 'value', CASE WHEN v = 'true' THEN 1 ELSE 0 END)
        WHEN 'number' THEN jsonb_build_object('name', name,
                               'type', CASE WHEN v::text ~ '^-?[0-9]{1,18}$' THEN 'integer' ELSE 'float' END,
                               'value', v)
    END
$$;
COMMENT ON FUNCTION panko.metric_trait(text, jsonb) IS
    'A JSON scalar as a Panko trait (string; integral number: integer; other number: float; boolean: integer 1/0); NULL for null, lists, dicts';

-- The traits a report must have to match: its name (when given), its app
-- (when given), and its tags: a list needs each tag, a dict each key with
-- its value.
CREATE FUNCTION panko.metric_filter(name text, tags jsonb, app text) RETURNS panko.traits
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t jsonb := '[]';
BEGIN
    IF name IS NOT NULL THEN
        t := t || jsonb_build_array(jsonb_build_object('name', 'name', 'type', 'string', 'value', name));
    END IF;
    IF app IS NOT NULL THEN
        t := t || jsonb_build_array(jsonb_build_object('name', 'app_name', 'type', 'string', 'value', app));
    END IF;
    IF tags IS NULL OR tags = 'null' THEN
        RETURN panko.traits(t);
    END IF;
    CASE jsonb_typeof(tags)
        WHEN 'array' THEN
            IF EXISTS (SELECT 1 FROM jsonb_array_elements(tags) x WHERE jsonb_typeof(x) <> 'string') THEN
                RAISE EXCEPTION 'A list of tags holds strings only' USING ERRCODE = '22023',
                    HINT = 'Filter by ["tag", ...] or by {"key": value, ...}.';
            END IF;
            t := t || coalesce((SELECT jsonb_agg(panko.metric_trait('tag.' || (x #>> '{}'), x))
                                  FROM jsonb_array_elements(tags) x), '[]');
        WHEN 'object' THEN
            IF EXISTS (SELECT 1 FROM jsonb_each(tags) x WHERE panko.metric_trait('tags.' || x.key, x.value) IS NULL) THEN
                RAISE EXCEPTION 'A dict of tags maps keys to strings or numbers' USING ERRCODE = '22023',
                    HINT = 'Filter by ["tag", ...] or by {"key": value, ...}.';
            END IF;
            t := t || (SELECT jsonb_agg(panko.metric_trait('tags.' || x.key, x.value)) FROM jsonb_each(tags) x);
        ELSE
            RAISE EXCEPTION 'Tags must be a JSON list or object, not %', jsonb_typeof(tags) USING ERRCODE = '22023',
                HINT = 'Filter by ["tag", ...] or by {"key": value, ...}.';
    END CASE;
    RETURN panko.traits(t);
END
$$;
COMMENT ON FUNCTION panko.metric_filter(text, jsonb, text) IS
    'The traits a report must contain to match a metric name, a filter of tags (a list, or a dict) and an app (each optional)';

CREATE FUNCTION panko.metric_report(reports jsonb)
    RETURNS TABLE(ord integer, message_id text, status text, detail text)
LANGUAGE plpgsql VOLATILE STRICT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
-- partitions are created under panko's storage settings, not the caller's
SET default_tablespace = '' SET default_table_access_method = 'heap'
AS $$
DECLARE
    batch jsonb := CASE jsonb_typeof(reports) WHEN 'array' THEN reports ELSE jsonb_build_array(reports) END;
    r jsonb;
    i integer := 0;
    k text;
    problem text;
    bad integer[] := '{}';
    ts timestamptz;
    events jsonb;
    prepared jsonb;
    skip text[] := '{}';
BEGIN
    -- Each report is checked first; a bad one is answered as rejected and
    -- the others are stored.
    FOR r IN SELECT x FROM jsonb_array_elements(batch) x LOOP
        i := i + 1;
        problem := NULL;
        IF jsonb_typeof(r) IS DISTINCT FROM 'object' THEN
            problem := 'a report is a JSON object';
        ELSE
            SELECT string_agg(x, ', ') INTO k FROM jsonb_object_keys(r) x
             WHERE x NOT IN ('app_name', 'name', 'metric', 'value', 'tags', 'id', 'host', 'time', 'key');
            IF k IS NOT NULL THEN
                problem := 'unknown field ' || k;
            END IF;
            FOREACH k IN ARRAY ARRAY['app_name', 'name', 'metric'] LOOP
                IF problem IS NULL AND (jsonb_typeof(r->k) IS DISTINCT FROM 'string' OR r->>k = '') THEN
                    problem := k || ' must be a non-empty string';
                ELSIF problem IS NULL AND octet_length(r->>k) > 200 THEN
                    problem := k || ' is longer than 200 bytes';
                END IF;
            END LOOP;
            IF problem IS NULL AND r ? 'host' AND jsonb_typeof(r->'host') NOT IN ('string', 'null') THEN
                problem := 'host must be a string';
            END IF;
            IF problem IS NULL AND r ? 'tags' AND jsonb_typeof(r->'tags') NOT IN ('array', 'object', 'null') THEN
                problem := 'tags must be a list or a dict';
            ELSIF problem IS NULL AND jsonb_typeof(r->'tags') = 'array'
                  AND EXISTS (SELECT 1 FROM jsonb_array_elements(r->'tags') x
                               WHERE jsonb_typeof(x) <> 'string' OR x #>> '{}' = '') THEN
                problem := 'a list of tags holds non-empty strings only';
            ELSIF problem IS NULL AND jsonb_typeof(r->'tags') = 'object'
                  AND EXISTS (SELECT 1 FROM jsonb_each(r->'tags') x
                               WHERE panko.metric_trait('tags.' || x.key, x.value) IS NULL) THEN
                problem := 'a dict of tags maps keys to strings, numbers or booleans';
            END IF;
            IF problem IS NULL AND r ? 'id' AND jsonb_typeof(r->'id') NOT IN ('string', 'number', 'null') THEN
                problem := 'id must be a string or a number';
            END IF;
            IF problem IS NULL AND r ? 'key' AND jsonb_typeof(r->'key') NOT IN ('string', 'null') THEN
                problem := 'key must be a string';
            END IF;
            IF problem IS NULL AND jsonb_typeof(r->'time') IS DISTINCT FROM 'string' AND r->'time' IS NOT NULL
               AND jsonb_typeof(r->'time') <> 'null' THEN
                problem := 'time must be an ISO 8601 string';
            ELSIF problem IS NULL AND jsonb_typeof(r->'time') = 'string' THEN
                BEGIN
                    ts := panko.parse_timestamp(r->>'time', 'time');
                EXCEPTION WHEN data_exception THEN
                    problem := 'bad time ' || left(r->>'time', 64);
                END;
            END IF;
        END IF;
        IF problem IS NOT NULL THEN
            bad := bad || i;
            ord := i; message_id := NULL; status := 'rejected'; detail := problem;
            RETURN NEXT;
        END IF;
    END LOOP;
    IF cardinality(bad) = i THEN
        RETURN;
    END IF;

    -- The reports to store, once (a missing key is made here).
    SELECT jsonb_agg(jsonb_build_object(
               'ord', x.ord, 'rep', x.r, 'generated', coalesce(panko.parse_timestamp(x.r->>'time', 'time'), now()),
               'name', x.r->>'name', 'app_name', x.r->>'app_name', 'metric', x.r->>'metric',
               'v', CASE jsonb_typeof(x.r->'value') WHEN 'number' THEN x.r->'value'
                                                    WHEN 'boolean' THEN to_jsonb(CASE WHEN x.r->'value' = 'true' THEN 1 ELSE 0 END) END,
               'message_id', CASE WHEN jsonb_typeof(x.r->'id') IN ('string', 'number')
                                  THEN 'kaneda:id:' || octet_length(x.r->>'app_name') || ':' || (x.r->>'app_name') || ':' || (x.r->>'id')
                                  ELSE 'kaneda:' || coalesce(x.r->>'key', gen_random_uuid()::text) END))
      INTO prepared
      FROM jsonb_array_elements(batch) WITH ORDINALITY AS x(r, ord)
     WHERE x.ord <> ALL (bad);

    SELECT jsonb_agg(jsonb_build_object(
               'message_id', b.message_id,
               'event_type', 'kaneda.' || CASE WHEN b.metric IN ('gauge', 'counter', 'timing', 'event') THEN b.metric ELSE 'custom' END,
               'generated', panko.iso_timestamp(b.generated),
               -- (panko.metric_trait, written out: a function with its own
               -- search_path is not inlined, and this runs for every trait)
               'traits', (SELECT jsonb_agg(CASE jsonb_typeof(p.v)
                              WHEN 'string' THEN jsonb_build_object('name', p.n, 'type', 'string', 'value', p.v)
                              WHEN 'boolean' THEN jsonb_build_object('name', p.n, 'type', 'integer',
                                                                     'value', CASE WHEN p.v = 'true' THEN 1 ELSE 0 END)
                              ELSE jsonb_build_object('name', p.n,
                                       'type', CASE WHEN p.v::text ~ '^-?[0-9]{1,18}$' THEN 'integer' ELSE 'float' END,
                                       'value', p.v) END)
                  FROM (SELECT 'app_name' AS n, to_jsonb(b.app_name) AS v
                        UNION ALL SELECT 'name', to_jsonb(b.name)
                        UNION ALL SELECT 'host', b.rep->'host'
                        UNION ALL SELECT 'metric', to_jsonb(b.metric) WHERE b.metric NOT IN ('gauge', 'counter', 'timing', 'event')
                        UNION ALL SELECT 'id', to_jsonb(b.rep->>'id') WHERE jsonb_typeof(b.rep->'id') IN ('string', 'number')
                        UNION ALL SELECT 'value', b.rep->'value'
                        UNION ALL SELECT 'value.' || v.key, v.value
                                    FROM jsonb_each(CASE jsonb_typeof(b.rep->'value') WHEN 'object' THEN b.rep->'value' ELSE '{}' END) v
                        UNION ALL SELECT 'tag.' || (g #>> '{}'), g
                                    FROM jsonb_array_elements(CASE jsonb_typeof(b.rep->'tags') WHEN 'array' THEN b.rep->'tags' ELSE '[]' END) g
                        UNION ALL SELECT 'tags.' || g.key, g.value
                                    FROM jsonb_each(CASE jsonb_typeof(b.rep->'tags') WHEN 'object' THEN b.rep->'tags' ELSE '{}' END) g
                       ) p WHERE jsonb_typeof(p.v) IN ('string', 'boolean', 'number')),
               'raw', CASE WHEN b.rep->'value' IS NULL OR jsonb_typeof(b.rep->'value') IN ('null', 'array')
                                OR (jsonb_typeof(b.rep->'value') = 'object'
                                    AND EXISTS (SELECT 1 FROM jsonb_each(b.rep->'value') v
                                                 WHERE jsonb_typeof(v.value) NOT IN ('string', 'boolean', 'number')))
                           THEN jsonb_build_object('value', coalesce(b.rep->'value', 'null')) END)
           ORDER BY b.ord)
      INTO events
      FROM jsonb_to_recordset(prepared) AS b(ord integer, rep jsonb, generated timestamptz, name text, app_name text,
                                            metric text, v double precision, message_id text);

    -- record_events answers for the reports it did not store: duplicates
    -- (an id_ already stored) and rejected ones.
    FOR r IN SELECT to_jsonb(p) FROM panko.record_events(events) p LOOP
        -- (a copy repeated in this batch: the first one is stored)
        IF r->>'detail' IS DISTINCT FROM 'repeated earlier in this batch' THEN
            skip := skip || (r->>'message_id');
        END IF;
        ord := (SELECT max((b->>'ord')::integer) FROM jsonb_array_elements(prepared) b
                 WHERE b->>'message_id' = r->>'message_id');
        message_id := r->>'message_id'; status := r->>'status';
        detail := regexp_replace(r->>'detail', '^event [0-9]+: ', '');
        RETURN NEXT;
    END LOOP;

    -- The rollup: each minute and hour of the numeric reports stored,
    -- with the partition that holds them.
    INSERT INTO panko.metric_rollup AS m (name, width, bucket, app_name, metric, relid, n, total, low, high, last_at, last_value)
    SELECT b.name, w.width, w.bucket, b.app_name, b.metric, min(b.relid), count(*), sum(b.v), min(b.v), max(b.v),
           max(b.generated), (array_agg(b.v ORDER BY b.generated DESC, b.ord DESC))[1]
      FROM (WITH b AS MATERIALIZED (
                SELECT DISTINCT ON (b.message_id) b.*, date_bin('1 hour', b.generated, '2000-01-01') AS hour
                  FROM jsonb_to_recordset(prepared) AS b(ord integer, generated timestamptz, name text, app_name text,
                                                        metric text, v double precision, message_id text)
                 WHERE b.v IS NOT NULL AND b.metric <> 'event' AND b.message_id <> ALL (skip)
                 ORDER BY b.message_id, b.ord
            ), h AS (
                -- An hour lies in one partition: one probe of the
                -- message_id index per hour finds it.
                SELECT DISTINCT ON (b.hour) b.hour,
                       (SELECT e.tableoid::oid FROM panko.event e
                         WHERE e.retention = 'metric' AND e.message_id = b.message_id AND e.generated = b.generated
                         LIMIT 1) AS relid
                  FROM b ORDER BY b.hour, b.ord
            )
            SELECT b.*, h.relid FROM b JOIN h USING (hour)) b
     CROSS JOIN LATERAL (VALUES (60, date_bin('1 minute', b.generated, '2000-01-01')),
                                (3600, date_bin('1 hour', b.generated, '2000-01-01'))) AS w(width, bucket)
     WHERE b.relid IS NOT NULL
     GROUP BY b.name, w.width, w.bucket, b.app_name, b.metric
    ON CONFLICT (name, width, bucket, app_name, metric) DO UPDATE
       SET n = m.n + excluded.n, total = m.total + excluded.total,
           low = least(m.low, excluded.low), high = greatest(m.high, excluded.high),
           last_at = greatest(m.last_at, excluded.last_at),
           last_value = CASE WHEN excluded.last_at >= m.last_at THEN excluded.last_value ELSE m.last_value END;
END
$$;
COMMENT ON FUNCTION panko.metric_report(jsonb) IS
    'Store Kaneda reports (a JSON object or array of {app_name, name, metric, value, tags, id, host, time, key}) as kaneda.* events and their rollup; returns one row per report NOT stored: duplicate (its id was stored before) or rejected, with why';

-- Microseconds since the epoch, and back; floor and ceiling to a multiple.
CREATE FUNCTION panko.metric_us(ts timestamptz) RETURNS bigint
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT (extract(epoch FROM ts) * 1000000)::bigint $$;
COMMENT ON FUNCTION panko.metric_us(timestamptz) IS 'Microseconds since 1970-01-01 UTC';

CREATE FUNCTION panko.metric_floor(us bigint, m bigint) RETURNS bigint
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT us - ((us % m) + m) % m $$;
COMMENT ON FUNCTION panko.metric_floor(bigint, bigint) IS 'The largest multiple of m not above us (m > 0)';

CREATE FUNCTION panko.metric_ts(us bigint) RETURNS timestamptz
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT timestamptz '1970-01-01 00:00:00+00' + make_interval(secs => us / 1000000.0) $$;
COMMENT ON FUNCTION panko.metric_ts(bigint) IS 'The time that many microseconds after 1970-01-01 UTC';

-- The aggregates of bucket k = [f + k*w, min(f + (k+1)*w, t)) of a
-- metric's numeric reports.  Without tags, whole hours and then whole
-- minutes of each bucket come from the rollup and what is left from the
-- reports; adjacent pieces read from one source are read as one range.
-- With tags, from the reports only (GIN on the traits).
CREATE FUNCTION panko.metric_buckets(name text, f timestamptz, t timestamptz, w bigint, tags jsonb, app text)
    RETURNS TABLE(k bigint, n bigint, total double precision, low double precision, high double precision)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
-- Its statements read panko.event with the time bounds as parameters: a
-- generic plan, made once per session and pruned at run time, costs far
-- less than planning every partition at every call (a custom plan).
SET plan_cache_mode = force_generic_plan
-- (helpers written out: a function with its own search_path is not inlined)
AS $$
DECLARE
    fu bigint := (extract(epoch FROM f) * 1000000)::bigint;
    tu bigint := (extract(epoch FROM t) * 1000000)::bigint;
    nb bigint;
    filt panko.traits;
    types integer[];
    raw_only boolean := tags IS NOT NULL AND tags <> 'null' AND tags NOT IN ('[]', '{}');
    lvls integer[];
    los timestamptz[];
    his timestamptz[];
    hx bigint;
    mx bigint;
    h1 bigint;
    h2 bigint;
    m1 bigint;
    m4 bigint;
    ts_h1 timestamptz;
    ts_h2 timestamptz;
    ts_m1 timestamptz;
    ts_m4 timestamptz;
    bw interval;
BEGIN
    IF name IS NULL OR f IS NULL OR t IS NULL OR w IS NULL OR w <= 0 OR fu >= tu THEN
        RETURN;
    END IF;
    nb := (tu - fu + w - 1) / w;
    IF NOT raw_only AND (nb = 1 OR (w % 60000000 = 0 AND fu % 60000000 = 0
                                    AND (tu - fu <= 86400000000 OR (w % 3600000000 = 0 AND fu % 3600000000 = 0)))) THEN
        -- One bucket, or every bucket boundary is a whole minute (and a
        -- whole hour, or the window is at most a day): whole hours (when
        -- every boundary is one, or one bucket), whole minutes, and the
        -- reports of the edges (less than a minute each), each read as
        -- one range by static statements (plans cached, partitions pruned
        -- at run time).
        h1 := fu + ((3600000000 - fu % 3600000000) % 3600000000);
        h2 := tu - (tu % 3600000000 + 3600000000) % 3600000000;
        IF h1 >= h2 OR (nb > 1 AND (w % 3600000000 <> 0 OR fu % 3600000000 <> 0)) THEN
            h1 := fu; h2 := fu;
        END IF;
        m1 := fu + ((60000000 - fu % 60000000) % 60000000);
        m4 := tu - (tu % 60000000 + 60000000) % 60000000;
        IF m1 >= m4 THEN
            m1 := fu; m4 := fu;     -- (no whole minute: all from the reports)
        END IF;
        IF h1 = h2 THEN h1 := m1; h2 := m1; END IF;
        -- minutes: [m1, h1) and [h2, m4); reports: [f, m1) and [m4, t)
        ts_h1 := timestamptz 'epoch' + h1 * interval '1 microsecond';
        ts_h2 := timestamptz 'epoch' + h2 * interval '1 microsecond';
        ts_m1 := timestamptz 'epoch' + m1 * interval '1 microsecond';
        ts_m4 := timestamptz 'epoch' + m4 * interval '1 microsecond';
        bw := w * interval '1 microsecond';
        IF m1 = fu AND m4 = tu AND m1 < m4 THEN
            RETURN QUERY
            SELECT ((extract(epoch FROM x.s - f) * 1000000)::bigint) / w, sum(x.n::double precision)::bigint, sum(x.total), min(x.low), max(x.high)
              FROM (SELECT date_bin(bw, r.bucket, f) AS s, r.n, r.total, r.low, r.high
                      FROM panko.metric_rollup r
                     WHERE r.name = metric_buckets.name AND r.width = 3600 AND r.bucket >= ts_h1 AND r.bucket < ts_h2
                       AND (app IS NULL OR r.app_name = app)
                    UNION ALL
                    SELECT date_bin(bw, r.bucket, f), r.n, r.total, r.low, r.high
                      FROM panko.metric_rollup r
                     WHERE r.name = metric_buckets.name AND r.width = 60 AND r.bucket >= ts_m1 AND r.bucket < ts_h1
                       AND (app IS NULL OR r.app_name = app)
                    UNION ALL
                    SELECT date_bin(bw, r.bucket, f), r.n, r.total, r.low, r.high
                      FROM panko.metric_rollup r
                     WHERE r.name = metric_buckets.name AND r.width = 60 AND r.bucket >= ts_h2 AND r.bucket < ts_m4
                       AND (app IS NULL OR r.app_name = app)) x
             GROUP BY x.s;
            RETURN;
        END IF;
        filt := panko.metric_filter(name, NULL, app);
        SELECT array_agg(et.id) INTO types FROM panko.event_type et
         WHERE et.name IN ('kaneda.gauge', 'kaneda.counter', 'kaneda.timing', 'kaneda.custom');
        RETURN QUERY
        SELECT ((extract(epoch FROM x.s - f) * 1000000)::bigint) / w, sum(x.n::double precision)::bigint, sum(x.total), min(x.low), max(x.high)
          FROM (SELECT date_bin(bw, r.bucket, f) AS s, r.n, r.total, r.low, r.high
                  FROM panko.metric_rollup r
                 WHERE r.name = metric_buckets.name AND r.width = 3600 AND r.bucket >= ts_h1 AND r.bucket < ts_h2
                   AND (app IS NULL OR r.app_name = app)
                UNION ALL
                SELECT date_bin(bw, r.bucket, f), r.n, r.total, r.low, r.high
                  FROM panko.metric_rollup r
                 WHERE r.name = metric_buckets.name AND r.width = 60 AND r.bucket >= ts_m1 AND r.bucket < ts_h1
                   AND (app IS NULL OR r.app_name = app)
                UNION ALL
                SELECT date_bin(bw, r.bucket, f), r.n, r.total, r.low, r.high
                  FROM panko.metric_rollup r
                 WHERE r.name = metric_buckets.name AND r.width = 60 AND r.bucket >= ts_h2 AND r.bucket < ts_m4
                   AND (app IS NULL OR r.app_name = app)
                UNION ALL
                SELECT date_bin(bw, e.generated, f), 1, e.v, e.v, e.v
                  FROM (SELECT e.generated,
                               coalesce(panko.trait_float(e.traits, 'value'),
                                        panko.trait_int(e.traits, 'value')::double precision) AS v
                          FROM panko.event e
                         WHERE e.retention = 'metric' AND e.generated >= f AND e.generated < ts_m1
                           AND e.traits OPERATOR(panko.@>) filt AND e.event_type_id = ANY (types)
                        UNION ALL
                        SELECT e.generated,
                               coalesce(panko.trait_float(e.traits, 'value'),
                                        panko.trait_int(e.traits, 'value')::double precision)
                          FROM panko.event e
                         WHERE e.retention = 'metric' AND e.generated >= ts_m4 AND e.generated < t
                           AND e.traits OPERATOR(panko.@>) filt AND e.event_type_id = ANY (types)) e
                 WHERE e.v IS NOT NULL) x
         GROUP BY x.s;
        RETURN;
    END IF;
    filt := panko.metric_filter(name, tags, app);
    SELECT array_agg(et.id) INTO types FROM panko.event_type et
     WHERE et.name IN ('kaneda.gauge', 'kaneda.counter', 'kaneda.timing', 'kaneda.custom');
    IF raw_only THEN
        -- With tags: the reports of the window, one range (the GIN index
        -- on the traits where it is selective).
        RETURN QUERY
        SELECT ((extract(epoch FROM e.generated) * 1000000)::bigint - fu) / w, count(*), sum(e.v), min(e.v), max(e.v)
          FROM (SELECT e.generated,
                       coalesce(panko.trait_float(e.traits, 'value'),
                                panko.trait_int(e.traits, 'value')::double precision) AS v
                  FROM panko.event e
                 WHERE e.retention = 'metric' AND e.generated >= f AND e.generated < t
                   AND e.traits OPERATOR(panko.@>) filt AND e.event_type_id = ANY (types)) e
         WHERE e.v IS NOT NULL
         GROUP BY 1;
        RETURN;
    ELSIF w % 60000000 = 0 AND fu % 60000000 = 0 THEN
        -- Every bucket boundary is a whole minute (and a whole hour when w
        -- and from are): whole hours, then whole minutes, then the rest,
        -- without a piece per bucket.
        mx := tu - ((tu % 60000000) + 60000000) % 60000000;
        hx := CASE WHEN w % 3600000000 = 0 AND fu % 3600000000 = 0
                   THEN tu - ((tu % 3600000000) + 3600000000) % 3600000000 ELSE fu END;
        lvls := ARRAY[3600, 60, 0];
        los := ARRAY[f, timestamptz 'epoch' + hx * interval '1 microsecond', timestamptz 'epoch' + mx * interval '1 microsecond'];
        his := ARRAY[timestamptz 'epoch' + hx * interval '1 microsecond', timestamptz 'epoch' + mx * interval '1 microsecond', t];
    ELSE
    WITH RECURSIVE b AS (
        SELECT fu + i * w AS lo, least(fu + (i + 1) * w, tu) AS hi
          FROM generate_series(0::bigint, nb - 1) i
    ), h AS (
        SELECT b.lo, b.hi,
               CASE WHEN raw_only THEN b.hi ELSE ((b.lo + 3599999999) - ((((b.lo + 3599999999) % 3600000000) + 3600000000) % 3600000000)) END AS hlo,
               CASE WHEN raw_only THEN b.hi ELSE ((b.hi) - ((((b.hi) % 3600000000) + 3600000000) % 3600000000)) END AS hhi
          FROM b
    ), rest AS (
        SELECT h.lo AS a, CASE WHEN h.hlo < h.hhi THEN h.hlo ELSE h.hi END AS z FROM h
        UNION ALL
        SELECT h.hhi, h.hi FROM h WHERE h.hlo < h.hhi
    ), m AS (
        SELECT r.a, r.z,
               CASE WHEN raw_only THEN r.z ELSE ((r.a + 59999999) - ((((r.a + 59999999) % 60000000) + 60000000) % 60000000)) END AS mlo,
               CASE WHEN raw_only THEN r.z ELSE ((r.z) - ((((r.z) % 60000000) + 60000000) % 60000000)) END AS mhi
          FROM rest r WHERE r.a < r.z
    ), parts AS (
        SELECT 3600 AS lvl, h.hlo AS a, h.hhi AS z FROM h WHERE h.hlo < h.hhi
        UNION ALL SELECT 60, m.mlo, m.mhi FROM m WHERE m.mlo < m.mhi
        UNION ALL SELECT 0, m.a, CASE WHEN m.mlo < m.mhi THEN m.mlo ELSE m.z END FROM m
        UNION ALL SELECT 0, m.mhi, m.z FROM m WHERE m.mlo < m.mhi
    ), brk AS (
        SELECT p.lvl, p.a, p.z,
               CASE WHEN p.a = lag(p.z) OVER (PARTITION BY p.lvl ORDER BY p.a) THEN 0 ELSE 1 END AS brk
          FROM parts p WHERE p.a < p.z
    ), island AS (
        SELECT g.lvl, (timestamptz 'epoch' + min(g.a) * interval '1 microsecond') AS a, (timestamptz 'epoch' + max(g.z) * interval '1 microsecond') AS z
          FROM (SELECT brk.*, sum(brk.brk) OVER (PARTITION BY brk.lvl ORDER BY brk.a) AS g FROM brk) g
         GROUP BY g.lvl, g.g
    )
    SELECT array_agg(i.lvl), array_agg(i.a), array_agg(i.z) INTO lvls, los, his FROM island i;
    END IF;
    RETURN QUERY
    WITH island AS (
        SELECT i.lvl, i.a, i.z FROM unnest(lvls, los, his) AS i(lvl, a, z) WHERE i.a < i.z
    ), piece AS (
        SELECT ((extract(epoch FROM r.bucket) * 1000000)::bigint - fu) / w AS k, r.n, r.total, r.low, r.high
          FROM island i
          JOIN LATERAL (SELECT r.bucket, r.n, r.total, r.low, r.high
                          FROM panko.metric_rollup r
                         WHERE r.name = metric_buckets.name AND r.width = i.lvl
                           AND r.bucket >= i.a AND r.bucket < i.z
                           AND (app IS NULL OR r.app_name = app)
                        OFFSET 0) r ON true     -- (one index range per island)
         WHERE i.lvl > 0
        UNION ALL
        SELECT ((extract(epoch FROM e.generated) * 1000000)::bigint - fu) / w, 1, e.v, e.v, e.v
          FROM island i
          JOIN LATERAL (SELECT e.generated,
                               coalesce(panko.trait_float(e.traits, 'value'),
                                        panko.trait_int(e.traits, 'value')::double precision) AS v
                          FROM panko.event e
                         WHERE e.retention = 'metric' AND e.generated >= i.a AND e.generated < i.z
                           -- (a filter: the islands are short, the time
                           -- index alone reads them)
                           AND (e.traits OPERATOR(panko.@>) filt) IS TRUE
                           AND e.event_type_id = ANY (types)
                        OFFSET 0) e ON e.v IS NOT NULL
         WHERE i.lvl = 0
    )
    SELECT p.k, sum(p.n)::bigint, sum(p.total), min(p.low), max(p.high)
      FROM piece p GROUP BY p.k;
END
$$;
COMMENT ON FUNCTION panko.metric_buckets(text, timestamptz, timestamptz, bigint, jsonb, text) IS
    'Count, sum, min and max of a metric''s numeric reports in each bucket k = [f + k*w, f + (k+1)*w) of [f, t) (w in microseconds), filtered by tags and app; from the rollup where whole minutes and hours allow';

-- The public series functions check their arguments here, once.
CREATE FUNCTION panko.metric_check_window(bucket interval, "from" timestamptz, "to" timestamptz) RETURNS bigint
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    w bigint;
BEGIN
    IF bucket IS NULL OR "from" IS NULL OR "to" IS NULL THEN
        RAISE EXCEPTION 'bucket, from and to are required' USING ERRCODE = '22004';
    END IF;
    IF extract(month FROM bucket) <> 0 OR extract(year FROM bucket) <> 0
       OR bucket < interval '1 second' OR bucket > interval '1 day' THEN
        RAISE EXCEPTION 'A bucket is from 1 second to 1 day, not %', bucket USING ERRCODE = '22023',
            HINT = 'e.g. interval ''1 minute'' or ''1 hour''';
    END IF;
    IF NOT isfinite("from") OR NOT isfinite("to") OR "from" >= "to" THEN
        RAISE EXCEPTION 'The window [%, %) is empty or not finite', "from", "to" USING ERRCODE = '22023';
    END IF;
    w := (extract(epoch FROM bucket) * 1000000)::bigint;
    IF ((extract(epoch FROM "to") * 1000000)::bigint - (extract(epoch FROM "from") * 1000000)::bigint) / w >= 1000000 THEN
        RAISE EXCEPTION 'The window holds more than 1,000,000 buckets of %', bucket USING ERRCODE = '22023',
            HINT = 'Take a larger bucket or a shorter window.';
    END IF;
    RETURN w;
END
$$;
COMMENT ON FUNCTION panko.metric_check_window(interval, timestamptz, timestamptz) IS
    'The bucket in microseconds, after checking it (1 s to 1 day) and the window (finite, from < to, at most 1,000,000 buckets)';

CREATE FUNCTION panko.metric_series(name text, bucket interval, "from" timestamptz, "to" timestamptz,
                                    tags jsonb DEFAULT NULL, app text DEFAULT NULL)
    RETURNS TABLE(bucket_start timestamptz, bucket_end timestamptz, count bigint, sum double precision,
                  avg double precision, min double precision, max double precision)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
DECLARE
    w bigint := panko.metric_check_window(bucket, "from", "to");
    fu bigint := (extract(epoch FROM "from") * 1000000)::bigint;
    tu bigint := (extract(epoch FROM "to") * 1000000)::bigint;
    hx timestamptz;
BEGIN
    IF name IS NULL THEN
        RAISE EXCEPTION 'A metric name is required' USING ERRCODE = '22004';
    END IF;
    IF (tags IS NULL OR tags IN ('null', '[]', '{}')) AND w % 60000000 = 0 AND fu % 60000000 = 0
       AND tu % 60000000 = 0 AND (tu - fu <= 86400000000 OR (w % 3600000000 = 0 AND fu % 3600000000 = 0)) THEN
        -- The dashboard's case: every bucket boundary and both ends are
        -- whole minutes (whole hours, or at most a day), so the rollup
        -- alone answers, in one static statement (its plan is cached):
        -- whole hours [from, hx) when every boundary is one, then minutes.
        hx := CASE WHEN w % 3600000000 = 0 AND fu % 3600000000 = 0
                   THEN "from" + ((tu - fu) / 3600000000) * interval '1 hour' ELSE "from" END;
        RETURN QUERY
        -- (counts summed as float8, exact below 2^53: numeric is slower)
        SELECT y.s, least(y.s + metric_series.bucket, metric_series."to"), y.n::bigint, y.total, y.total / y.n, y.low, y.high
          FROM (SELECT x.s, sum(x.n::double precision) AS n, sum(x.total) AS total, min(x.low) AS low, max(x.high) AS high
          FROM (SELECT date_bin(metric_series.bucket, r.bucket, metric_series."from") AS s, r.n, r.total, r.low, r.high
                  FROM panko.metric_rollup r
                 WHERE r.name = metric_series.name AND r.width = 3600
                   AND r.bucket >= metric_series."from" AND r.bucket < hx
                   AND (app IS NULL OR r.app_name = app)
                UNION ALL
                SELECT date_bin(metric_series.bucket, r.bucket, metric_series."from"), r.n, r.total, r.low, r.high
                  FROM panko.metric_rollup r
                 WHERE r.name = metric_series.name AND r.width = 60
                   AND r.bucket >= hx AND r.bucket < metric_series."to"
                   AND (app IS NULL OR r.app_name = app)) x
         GROUP BY x.s) y
         ORDER BY y.s;
        RETURN;
    END IF;
    RETURN QUERY
    SELECT (timestamptz 'epoch' + (fu + b.k * w) * interval '1 microsecond'),
           least(timestamptz 'epoch' + (fu + (b.k + 1) * w) * interval '1 microsecond', metric_series."to"),
           b.n, b.total, b.total / b.n, b.low, b.high
      FROM panko.metric_buckets(name, "from", "to", w, tags, app) b
     ORDER BY b.k;
END
$$;
COMMENT ON FUNCTION panko.metric_series(text, interval, timestamptz, timestamptz, jsonb, text) IS
    'A metric''s numeric reports per bucket (1 s to 1 day, aligned on from) in [from, to): count, sum, avg, min, max; buckets without reports are left out; tags (a list or a dict) and app filter';

CREATE FUNCTION panko.metric_running_total(name text, bucket interval, "from" timestamptz, "to" timestamptz,
                                           tags jsonb DEFAULT NULL, app text DEFAULT NULL)
    RETURNS TABLE(bucket_start timestamptz, bucket_end timestamptz, count bigint, sum double precision,
                  total double precision)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
DECLARE
    w bigint := panko.metric_check_window(bucket, "from", "to");
    fu bigint := (extract(epoch FROM "from") * 1000000)::bigint;
    first timestamptz;
    before double precision := 0;
BEGIN
    IF name IS NULL THEN
        RAISE EXCEPTION 'A metric name is required' USING ERRCODE = '22004';
    END IF;
    -- Everything stored before from: one bucket from the first hour of
    -- the metric (every numeric report is in an hour of the rollup).
    SELECT min(r.bucket) INTO first FROM panko.metric_rollup r
     WHERE r.name = metric_running_total.name AND r.width = 3600;
    IF first < "from" THEN
        SELECT coalesce(b.total, 0) INTO before
          FROM panko.metric_buckets(name, first, "from", (extract(epoch FROM "from") * 1000000)::bigint - (extract(epoch FROM first) * 1000000)::bigint, tags, app) b;
        before := coalesce(before, 0);
    END IF;
    RETURN QUERY
    SELECT (timestamptz 'epoch' + (fu + b.k * w) * interval '1 microsecond'),
           least(timestamptz 'epoch' + (fu + (b.k + 1) * w) * interval '1 microsecond', metric_running_total."to"),
           b.n, b.total, before + sum(b.total) OVER (ORDER BY b.k)
      FROM panko.metric_buckets(name, "from", "to", w, tags, app) b
     ORDER BY b.k;
END
$$;
COMMENT ON FUNCTION panko.metric_running_total(text, interval, timestamptz, timestamptz, jsonb, text) IS
    'A counter per bucket in [from, to): reports, their sum, and the running total (every report stored before the end of the bucket, before from included); tags and app filter';

CREATE FUNCTION panko.metric_latest(app text DEFAULT NULL, name text DEFAULT NULL)
    RETURNS TABLE(app_name text, metric_name text, generated timestamptz, value double precision)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
    -- Each (name, app) of the gauges in turn (a skip scan of the index),
    -- then its newest hour.
    WITH RECURSIVE s AS (
        (SELECT r.name, r.app_name FROM panko.metric_rollup r
          WHERE r.width = 3600 AND r.metric = 'gauge'
            AND (metric_latest.name IS NULL OR r.name = metric_latest.name)
            AND (metric_latest.app IS NULL OR r.app_name = metric_latest.app)
          ORDER BY r.name, r.app_name LIMIT 1)
        UNION ALL
        SELECT x.name, x.app_name FROM s
          CROSS JOIN LATERAL (
              SELECT r.name, r.app_name FROM panko.metric_rollup r
               WHERE r.width = 3600 AND r.metric = 'gauge' AND (r.name, r.app_name) > (s.name, s.app_name)
                 AND (metric_latest.name IS NULL OR r.name = metric_latest.name)
                 AND (metric_latest.app IS NULL OR r.app_name = metric_latest.app)
               ORDER BY r.name, r.app_name LIMIT 1) x
    )
    SELECT s.app_name::text, s.name::text, l.last_at, l.last_value
      FROM s CROSS JOIN LATERAL (
          SELECT r.last_at, r.last_value FROM panko.metric_rollup r
           WHERE r.width = 3600 AND r.metric = 'gauge' AND r.name = s.name AND r.app_name = s.app_name
           ORDER BY r.bucket DESC LIMIT 1) l
     ORDER BY s.app_name, s.name
$$;
COMMENT ON FUNCTION panko.metric_latest(text, text) IS
    'The newest value of each gauge (of one app, or one name, or all): app, name, when, value';

-- A report's value and tags as Kaneda gave them (from the traits, or raw).
CREATE FUNCTION panko.metric_value(traits panko.traits, raw jsonb) RETURNS jsonb
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN raw ? 'value' THEN raw->'value'
                WHEN traits OPERATOR(panko.?) 'value'
                THEN (SELECT panko.metric_jsonb(t.type, t.value) FROM panko.each_trait(traits) t
                       WHERE t.name = 'value' LIMIT 1)
                ELSE (SELECT jsonb_object_agg(substr(t.name, 7), panko.metric_jsonb(t.type, t.value))
                        FROM panko.each_trait(traits) t WHERE t.name LIKE 'value.%')
           END
$$;
COMMENT ON FUNCTION panko.metric_value(panko.traits, jsonb) IS
    'The value of a Kaneda report: the value trait, the dict of its value.<key> traits, or raw''s value';

CREATE FUNCTION panko.metric_tags(traits panko.traits) RETURNS jsonb
LANGUAGE sql STABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce((SELECT jsonb_agg(substr(t.name, 5) ORDER BY t.name) FROM panko.each_trait(traits) t
                      WHERE t.name LIKE 'tag.%'),
                    (SELECT jsonb_object_agg(substr(t.name, 6), panko.metric_jsonb(t.type, t.value))
                       FROM panko.each_trait(traits) t WHERE t.name LIKE 'tags.%'))
$$;
COMMENT ON FUNCTION panko.metric_tags(panko.traits) IS
    'The tags of a Kaneda report: a list (sorted) or a dict; NULL when it had none';

CREATE FUNCTION panko.metric_jsonb(type text, value text) RETURNS jsonb
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE type WHEN 'integer' THEN to_jsonb(value::bigint)
                     WHEN 'float' THEN to_jsonb(value::double precision)
                     ELSE to_jsonb(value) END
$$;
COMMENT ON FUNCTION panko.metric_jsonb(text, text) IS 'A trait''s value (panko.each_trait) as JSON: numbers as numbers';

CREATE FUNCTION panko.metric_events(app text, "from" timestamptz, "to" timestamptz, name text DEFAULT NULL,
                                    "limit" integer DEFAULT NULL)
    RETURNS TABLE(generated timestamptz, event_name text, host text, value jsonb, tags jsonb, message_id text)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
BEGIN
    IF app IS NULL OR "from" IS NULL OR "to" IS NULL THEN
        RAISE EXCEPTION 'app, from and to are required' USING ERRCODE = '22004';
    END IF;
    IF "limit" < 0 THEN
        RAISE EXCEPTION 'limit must not be negative' USING ERRCODE = '22023';
    END IF;
    RETURN QUERY
    SELECT e.generated, panko.trait_text(e.traits, 'name'), panko.trait_text(e.traits, 'host'),
           panko.metric_value(e.traits, e.raw), panko.metric_tags(e.traits), e.message_id::text
      FROM panko.event e
     WHERE e.generated >= metric_events."from" AND e.generated < metric_events."to"
       AND e.traits OPERATOR(panko.@>) panko.metric_filter(metric_events.name, NULL, app)
       AND e.event_type_id = (SELECT t.id FROM panko.event_type t WHERE t.name = 'kaneda.event')
     ORDER BY e.generated, e.message_id
     LIMIT metric_events."limit";
END
$$;
COMMENT ON FUNCTION panko.metric_events(text, timestamptz, timestamptz, text, integer) IS
    'The events (Metrics.event) of an app in [from, to), oldest first (at most limit): when, name, host, text, tags, message_id';

-- Privileges.  metric_report stores with panko's rights (as record_events)
-- for panko_writer; the readers run as panko_query, so row-level security
-- judges the caller.
REVOKE ALL ON panko.metric_rollup FROM PUBLIC;
GRANT SELECT ON panko.metric_rollup TO panko_auditor, panko_query;
REVOKE ALL ON FUNCTION panko.metric_rollup_drop(), panko.metric_trait(text, jsonb),
    panko.metric_filter(text, jsonb, text), panko.metric_report(jsonb), panko.metric_us(timestamptz),
    panko.metric_floor(bigint, bigint), panko.metric_ts(bigint),
    panko.metric_buckets(text, timestamptz, timestamptz, bigint, jsonb, text),
    panko.metric_check_window(interval, timestamptz, timestamptz),
    panko.metric_series(text, interval, timestamptz, timestamptz, jsonb, text),
    panko.metric_running_total(text, interval, timestamptz, timestamptz, jsonb, text),
    panko.metric_latest(text, text), panko.metric_value(panko.traits, jsonb), panko.metric_tags(panko.traits),
    panko.metric_jsonb(text, text), panko.metric_events(text, timestamptz, timestamptz, text, integer)
FROM PUBLIC;
ALTER FUNCTION panko.metric_series(text, interval, timestamptz, timestamptz, jsonb, text) OWNER TO panko_query;
ALTER FUNCTION panko.metric_running_total(text, interval, timestamptz, timestamptz, jsonb, text) OWNER TO panko_query;
ALTER FUNCTION panko.metric_latest(text, text) OWNER TO panko_query;
ALTER FUNCTION panko.metric_events(text, timestamptz, timestamptz, text, integer) OWNER TO panko_query;
GRANT EXECUTE ON FUNCTION panko.metric_report(jsonb) TO panko_writer;
GRANT EXECUTE ON FUNCTION panko.metric_series(text, interval, timestamptz, timestamptz, jsonb, text),
    panko.metric_running_total(text, interval, timestamptz, timestamptz, jsonb, text),
    panko.metric_latest(text, text), panko.metric_events(text, timestamptz, timestamptz, text, integer),
    panko.metric_value(panko.traits, jsonb), panko.metric_tags(panko.traits)
TO panko_reader;
GRANT EXECUTE ON FUNCTION panko.metric_trait(text, jsonb), panko.metric_filter(text, jsonb, text),
    panko.metric_us(timestamptz), panko.metric_floor(bigint, bigint), panko.metric_ts(bigint),
    panko.metric_buckets(text, timestamptz, timestamptz, bigint, jsonb, text),
    panko.metric_check_window(interval, timestamptz, timestamptz),
    panko.metric_value(panko.traits, jsonb), panko.metric_tags(panko.traits), panko.metric_jsonb(text, text)
TO panko_query, panko_auditor;
