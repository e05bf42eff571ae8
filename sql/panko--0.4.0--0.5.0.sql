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
    classes jsonb := '{}';
BEGIN
    -- One run at a time: the worker, pg_cron and manual calls skip when
    -- another run is under way.
    IF NOT panko.try_advisory_lock('maintenance_run') THEN
        RETURN jsonb_build_object('skipped', true, 'partitions_created', 0, 'partitions_dropped', 0,
                                  'rows_deleted', 0, 'classes_expired', '{}'::jsonb, 'event_types_removed', 0, 'registry_rows_purged', 0,
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
        'event_types_removed', types_removed,
        'registry_rows_purged', purged,
        'duration_ms', round((extract(epoch FROM clock_timestamp() - t0) * 1000)::numeric, 3));
END
$$;
COMMENT ON FUNCTION panko.run_maintenance() IS
    'One maintenance run: partitions ahead, expiry by panko.event_time_to_live and by each retention class''s own time to live (whole partitions dropped), unused event types, registry; reports what it did';

REVOKE ALL ON FUNCTION panko.retention_class(text), panko.retention_classes(),
    panko.create_partition_for(timestamptz, text), panko.partition_tables(panko.partition, text[]),
    panko.drop_partition_tables(text, text[]), panko.event_ttl_classes(), panko.set_retention(text, bigint),
    panko.expire_class(text)
FROM PUBLIC;
REVOKE ALL ON panko.retention FROM PUBLIC;
GRANT SELECT ON panko.retention TO panko_auditor;
GRANT EXECUTE ON FUNCTION panko.set_retention(text, bigint), panko.expire_class(text) TO panko_admin;
GRANT EXECUTE ON FUNCTION panko.retention_class(text), panko.retention_classes() TO panko_reader, panko_writer;
