-- panko 0.7.0 -> 0.8.0: get_events reads each day's table directly, so a
-- new backend never builds panko.event's partition descriptor.  Every
-- partition gets the row-level security policies and grants of
-- panko.event (panko.secure_partition), those made from now on as they
-- are created.  panko.record_events_text takes a batch as JSON text.
\echo Use "ALTER EXTENSION panko UPDATE TO '0.8.0'" to load this file. \quit

-- get_events reads a day's events from the day's table itself, so that a
-- call never builds the partition descriptor of panko.event (365 bounds
-- parsed by every new backend).  Row-level security then needs the
-- policies of panko.event on each day's table too: a query that names a
-- partition is judged by the partition's policies, not the parent's.
-- Every table under panko.event (a day's, and each class table in it)
-- gets them, so that all tables that hold events look alike.
-- panko.event's policies and grants stay the one source; this copies them,
-- and every change to them must call it for every partition (pgTAP checks
-- that each table under panko.event has exactly the parent's).
CREATE FUNCTION panko.secure_partition(pname text) RETURNS void
LANGUAGE plpgsql VOLATILE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    parent oid := 'panko.event'::regclass;
    child oid := format('panko.%I', pname)::regclass;
    pol record;
    acl record;
BEGIN
    IF NOT EXISTS (SELECT FROM pg_partition_tree(parent) t WHERE t.relid = child AND t.level > 0) THEN
        RAISE EXCEPTION 'panko.% is not a partition of panko.event', pname
            USING ERRCODE = '22023', HINT = 'Pass the name of a row of panko.partition.';
    END IF;
    EXECUTE format('ALTER TABLE panko.%I ENABLE ROW LEVEL SECURITY', pname);
    FOR pol IN SELECT p.polname FROM pg_policy p WHERE p.polrelid = child LOOP
        EXECUTE format('DROP POLICY %I ON panko.%I', pol.polname, pname);
    END LOOP;
    FOR pol IN
        SELECT p.polname, p.polpermissive,
               CASE p.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT' WHEN 'w' THEN 'UPDATE'
                             WHEN 'd' THEN 'DELETE' ELSE 'ALL' END AS cmd,
               (SELECT string_agg(CASE WHEN r.r = 0 THEN 'PUBLIC' ELSE quote_ident(a.rolname) END, ', ')
                  FROM unnest(p.polroles) r(r) LEFT JOIN pg_roles a ON a.oid = r.r) AS roles,
               pg_get_expr(p.polqual, p.polrelid) AS qual,
               pg_get_expr(p.polwithcheck, p.polrelid) AS withcheck
          FROM pg_policy p WHERE p.polrelid = parent ORDER BY p.polname
    LOOP
        EXECUTE format('CREATE POLICY %I ON panko.%I AS %s FOR %s TO %s%s%s', pol.polname, pname,
                       CASE WHEN pol.polpermissive THEN 'PERMISSIVE' ELSE 'RESTRICTIVE' END, pol.cmd, pol.roles,
                       CASE WHEN pol.qual IS NULL THEN '' ELSE ' USING (' || pol.qual || ')' END,
                       CASE WHEN pol.withcheck IS NULL THEN '' ELSE ' WITH CHECK (' || pol.withcheck || ')' END);
    END LOOP;
    EXECUTE format('REVOKE ALL ON panko.%I FROM PUBLIC', pname);
    FOR acl IN
        SELECT a.privilege_type, CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(r.rolname) END AS grantee
          FROM pg_class c, aclexplode(c.relacl) a LEFT JOIN pg_roles r ON r.oid = a.grantee
         WHERE c.oid = parent AND a.grantee <> c.relowner
    LOOP
        EXECUTE format('GRANT %s ON panko.%I TO %s', acl.privilege_type, pname, acl.grantee);
    END LOOP;
END
$$;
COMMENT ON FUNCTION panko.secure_partition(text) IS
    'Give a table under panko.event (a day''s, or a class table in it) the row-level security policies and grants of panko.event (get_events reads a day''s table directly)';

CREATE OR REPLACE FUNCTION panko.create_partition_for(ts timestamptz, class text DEFAULT 'event') RETURNS text
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
        PERFORM panko.secure_partition(pname);
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
        PERFORM panko.secure_partition(pname || '_' || class);
        UPDATE panko.partition p SET classes = ARRAY(SELECT c FROM unnest(p.classes || class) c ORDER BY c)
         WHERE p.name = pname;
    END IF;
    RETURN pname || '_' || class;
END
$$;
COMMENT ON FUNCTION panko.create_partition_for(timestamptz, text) IS
    'Create the partition that will hold this timestamp (interval-aligned within 400 days of now, one catch-all below and above, fitted between existing ones) and its table for the class; returns the table';

REVOKE ALL ON FUNCTION panko.secure_partition(text) FROM PUBLIC;

-- The tables made so far: every day's, and every class table in one.
SELECT panko.secure_partition(c.relname)
  FROM pg_catalog.pg_partition_tree('panko.event'::pg_catalog.regclass) t
  JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) t.relid
 WHERE t.level OPERATOR(pg_catalog.>) 0
 ORDER BY t.level, c.relname;

-- A batch as JSON text, read without building a jsonb of it.
CREATE FUNCTION panko.record_events_text(events text)
    RETURNS TABLE(message_id text, status text, detail text)
    AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE STRICT SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    -- partitions are created under panko's storage settings, not the caller's
    SET default_tablespace = '' SET default_table_access_method = 'heap';
COMMENT ON FUNCTION panko.record_events_text(text) IS
    'record_events for a batch sent as JSON text: the same outcomes, read without building a jsonb of the batch (malformed JSON fails with 22P02 as the jsonb argument would)';
REVOKE ALL ON FUNCTION panko.record_events_text(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION panko.record_events_text(text) TO panko_writer;
