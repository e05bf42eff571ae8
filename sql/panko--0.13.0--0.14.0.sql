-- panko 0.13.0 -> 0.14.0: CloudKitty's retrieve writes a page's points
-- without a lookup of panko.event_type per point (the new
-- panko.rating_point(traits, generated, event_type_id) names the metric
-- type in C), and plans only its statements over the events for each
-- call's values: the others, and those of the functions it calls, keep
-- their plans for the session.  When the daily rollup gives the total,
-- only the page is read, sorted as it is scanned.  And a new partition's
-- policies are copied after a check of its own ancestors, not of every
-- partition of panko.event.
\echo Use "ALTER EXTENSION panko UPDATE TO '0.14.0'" to load this file. \quit

CREATE FUNCTION panko.rating_point(traits panko.traits, generated timestamptz, event_type_id integer) RETURNS json
    AS 'MODULE_PATHNAME', 'rating_point_stored' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION panko.rating_point(panko.traits, timestamptz, integer) IS
    'A stored rated data point as retrieve returns it, its begin from generated and its metric type from the event type (without "cloudkitty.")';
REVOKE ALL ON FUNCTION panko.rating_point(panko.traits, timestamptz, integer) FROM PUBLIC;
-- (only rating_retrieve calls it, as its owner: it names event types by id)
GRANT EXECUTE ON FUNCTION panko.rating_point(panko.traits, timestamptz, integer) TO panko_query;

CREATE OR REPLACE FUNCTION panko.rating_retrieve(begin timestamptz, "end" timestamptz, metric_types text[] DEFAULT NULL,
                                      filters jsonb DEFAULT NULL, group_filters jsonb DEFAULT NULL,
                                      "offset" bigint DEFAULT 0, "limit" bigint DEFAULT 1000)
    RETURNS json
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
-- (no ordered scan of a partition's time index, filtered, for a page: the
-- matches are few; plans kept where the body does not say otherwise, and
-- what it says undone when it returns: see below)
SET enable_indexscan = off
SET plan_cache_mode = auto
AS $$
DECLARE
    c record;
    rc record;
    ids integer[];
    total bigint;
    known bigint;
    lo timestamptz;
    hi timestamptz;
    before bigint;
    points json;
    cond text;
    -- (the page's days and its offset in them, when the rollup finds them)
    window_begin ALIAS FOR $1;
    window_end ALIAS FOR $2;
    page_offset ALIAS FOR $6;
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
    -- Whole UTC days, filtered by type and project only: the rollup's
    -- points per day give the total and the days the page lies in, and only
    -- those days' points are read below.
    IF "limit" IS NOT NULL THEN
        rc := panko.rating_rollup_covers(begin, "end", filters, group_filters);
        IF rc.covered THEN
            SELECT coalesce(sum(d.n), 0)::bigint,
                   min(d.day) FILTER (WHERE d.before + d.n > coalesce(rating_retrieve."offset", 0)),
                   max(d.day) FILTER (WHERE d.before < coalesce(rating_retrieve."offset", 0) + rating_retrieve."limit"),
                   min(d.before) FILTER (WHERE d.before + d.n > coalesce(rating_retrieve."offset", 0))
              INTO known, lo, hi, before
              FROM (SELECT r.day, sum(r.points) AS n, sum(sum(r.points)) OVER (ORDER BY r.day) - sum(r.points) AS before
                      FROM panko.rating_rollup r
                     WHERE r.day OPERATOR(pg_catalog.>=) rating_retrieve.begin
                       AND r.day OPERATOR(pg_catalog.<) rating_retrieve."end"
                       AND (metric_types IS NULL OR r.event_type_id OPERATOR(pg_catalog.=) ANY (ids))
                       AND (rc.scopes IS NULL OR r.scope OPERATOR(pg_catalog.=) ANY (rc.scopes))
                       AND (rc.gprojects IS NULL OR r.gproject OPERATOR(pg_catalog.=) ANY (rc.gprojects))
                     GROUP BY r.day) d;
            IF lo IS NULL OR "limit" = 0 THEN
                RETURN json_build_object('total', known, 'points', '[]'::json);
            END IF;
            window_begin := lo;
            window_end := hi + interval '1 day';
            page_offset := coalesce(page_offset, 0) - before;
        END IF;
    END IF;
    -- The common shapes (no filter, or filters that are one containment)
    -- are static SQL (parsed once; planned for each call's values, see
    -- below); the others are built, parameterised, for each call.  Either
    -- way the matches are read once (bitmap scans of the window's rating
    -- tables), then counted and the page sorted, each point built in C;
    -- when the rollup gave the total, only the page is read.
    -- The statements over the events are planned for each call's values: a
    -- generic plan cannot know that the window covers whole partitions, or
    -- how few points a filter matches, and ANDs a bitmap of each
    -- partition's whole time index into the trait index's.  (Set here, not
    -- for the function: its other statements, and those of the functions
    -- it calls, keep their plans.  The function's own SET of
    -- plan_cache_mode makes this one end when the function returns.)
    PERFORM pg_catalog.set_config('plan_cache_mode', 'force_custom_plan', true);
    IF known IS NOT NULL AND c.together IS NOT NULL THEN
        -- (the rollup gave the total: only the page is read, its points
        -- sorted as they are scanned, none kept; the custom plan keeps the
        -- containment only when there is one, here and below)
        SELECT coalesce(json_agg(panko.rating_point(p.traits, p.generated, p.event_type_id)
                                 ORDER BY p.generated, p.message_id), '[]')
          INTO points
          FROM (SELECT e.generated, e.message_id, e.event_type_id, e.traits FROM panko.event e
                 WHERE e.retention OPERATOR(pg_catalog.=) 'rating'
                   AND e.generated OPERATOR(pg_catalog.>=) rating_retrieve.begin
                   AND e.generated OPERATOR(pg_catalog.<) rating_retrieve."end"
                   AND (panko.trait_count(c.together) OPERATOR(pg_catalog.=) 0
                        OR e.traits OPERATOR(panko.@>) c.together)
                   AND (metric_types IS NULL OR e.event_type_id OPERATOR(pg_catalog.=) ANY (ids))
                 ORDER BY e.generated, e.message_id
                OFFSET coalesce(rating_retrieve."offset", 0) LIMIT rating_retrieve."limit") p;
        RETURN json_build_object('total', known, 'points', points);
    ELSIF c.together IS NOT NULL THEN
        WITH m AS MATERIALIZED (
            SELECT e.generated, e.message_id, e.event_type_id, e.traits FROM panko.event e
             WHERE e.retention OPERATOR(pg_catalog.=) 'rating'
               AND e.generated OPERATOR(pg_catalog.>=) rating_retrieve.begin
               AND e.generated OPERATOR(pg_catalog.<) rating_retrieve."end"
               AND (panko.trait_count(c.together) OPERATOR(pg_catalog.=) 0
                    OR e.traits OPERATOR(panko.@>) c.together)
               AND (metric_types IS NULL OR e.event_type_id OPERATOR(pg_catalog.=) ANY (ids)))
        SELECT (SELECT count(*) FROM m),
               coalesce((SELECT json_agg(panko.rating_point(p.traits, p.generated, p.event_type_id)
                                         ORDER BY p.generated, p.message_id)
                           FROM (SELECT * FROM m ORDER BY m.generated, m.message_id
                                 OFFSET coalesce(rating_retrieve."offset", 0) LIMIT rating_retrieve."limit") p), '[]')
          INTO total, points;
        RETURN json_build_object('total', coalesce(known, total), 'points', points);
    END IF;
    cond := ' FROM panko.event e WHERE e.retention OPERATOR(pg_catalog.=) ''rating'''
            ' AND e.generated >= $1 AND e.generated < $2'
            ' AND e.event_type_id OPERATOR(pg_catalog.=) ANY ($3)' || c.clause;
    -- (the same, built) (bitmap scans of the window's rating tables), then
    -- their count and the page, sorted, each point built only for the page.
    EXECUTE 'WITH m AS MATERIALIZED (SELECT e.generated, e.message_id, e.event_type_id, e.traits' || cond || ')'
            ' SELECT (SELECT count(*) FROM m), coalesce((SELECT json_agg(panko.rating_point(p.traits,'
            ' p.generated, p.event_type_id) ORDER BY p.generated, p.message_id)'
            ' FROM (SELECT * FROM m ORDER BY m.generated, m.message_id OFFSET $5 LIMIT $6) p), ''[]'')'
       INTO total, points USING begin, "end", ids, c.args, coalesce("offset", 0), "limit";
    RETURN json_build_object('total', coalesce(known, total), 'points', points);
END
$$;
COMMENT ON FUNCTION panko.rating_retrieve(timestamptz, timestamptz, text[], jsonb, jsonb, bigint, bigint) IS
    'CloudKitty''s retrieve: the rated data points of [begin, end) matching the filters, oldest first, a page of limit after offset (NULL limit: all); {"total", "points": [[begin, period, type, unit, qty, price, groupby, metadata]]}';

CREATE OR REPLACE FUNCTION panko.secure_partition(pname text) RETURNS void
LANGUAGE plpgsql VOLATILE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    parent oid := 'panko.event'::regclass;
    child oid := format('panko.%I', pname)::regclass;
    pol record;
    acl record;
BEGIN
    -- (its ancestors, not the whole tree: a check that read every partition
    -- made creating the 365th day's table a third slower than the first's)
    IF child = parent OR NOT EXISTS (SELECT FROM pg_partition_ancestors(child) a WHERE a.relid = parent) THEN
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
