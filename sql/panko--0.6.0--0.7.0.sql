-- panko 0.6.0 -> 0.7.0: a daily rollup of CloudKitty's rated data.  Push
-- adds to it, delete and expiry take away; whole-day totals grouped by type
-- and project, and retrieve's count and page bounds, read it.
\echo Use "ALTER EXTENSION panko UPDATE TO '0.7.0'" to load this file. \quit

-- Rated data per UTC day, type, scope and groupby project_id: what push
-- adds, delete and expiry take away, so that CloudKitty's common totals
-- (by type and project, over whole days) and retrieve's count and page
-- bounds read a few rows per day instead of every point.  Rows name the
-- table of their points and go when it is dropped (panko.rollup_drop).
CREATE TABLE panko.rating_rollup (
    day timestamptz NOT NULL,
    event_type_id integer NOT NULL,
    scope text COLLATE "C",
    gproject text COLLATE "C",
    relid oid NOT NULL,
    points bigint NOT NULL,
    qty numeric NOT NULL,
    price numeric NOT NULL,
    CONSTRAINT rating_rollup_key UNIQUE NULLS NOT DISTINCT (day, event_type_id, scope, gproject, relid)
) WITH (fillfactor = 70);
-- (room on each page: a push's additions to the day's rows are HOT updates)
CREATE INDEX rating_rollup_scope_idx ON panko.rating_rollup (scope, day);
CREATE INDEX rating_rollup_relid_idx ON panko.rating_rollup (relid);
COMMENT ON TABLE panko.rating_rollup IS
    'Rated data per UTC day, metric type, scope and groupby project_id (kept by rating_push, rating_delete and expiry): whole-day totals and retrieve''s counts read it';
COMMENT ON COLUMN panko.rating_rollup.day IS 'Start of the UTC day of the points'' periods';
COMMENT ON COLUMN panko.rating_rollup.scope IS 'The points'' trait project_id (row-level security reads it), NULL when they have none';
COMMENT ON COLUMN panko.rating_rollup.gproject IS 'The points'' groupby project_id (g.project_id), NULL when they have none';
COMMENT ON COLUMN panko.rating_rollup.relid IS 'The table of panko.event holding the points (rows are deleted when it is dropped)';
COMMENT ON COLUMN panko.rating_rollup.points IS 'Data points';
COMMENT ON COLUMN panko.rating_rollup.qty IS 'Exact sum of their qty';
COMMENT ON COLUMN panko.rating_rollup.price IS 'Exact sum of their price';
COMMENT ON INDEX panko.rating_rollup_scope_idx IS 'One project''s days (a project_id filter)';
COMMENT ON INDEX panko.rating_rollup_relid_idx IS 'Rows of a dropped table';

-- As panko.event's policy for points without user_id: admins see their
-- project's and the rows without a scope, auditors and panko_admin all,
-- members none.
ALTER TABLE panko.rating_rollup ENABLE ROW LEVEL SECURITY;
CREATE POLICY rating_rollup_visibility ON panko.rating_rollup FOR SELECT
USING (
    CASE (SELECT panko.caller_mode())
        WHEN 'all' THEN true
        WHEN 'admin' THEN scope IS NULL OR scope OPERATOR(pg_catalog.=) (SELECT panko.caller_project())
        ELSE false
    END
);
COMMENT ON POLICY rating_rollup_visibility ON panko.rating_rollup IS
    'As panko.event for rated data (no user_id): admins their project''s and unscoped rows, auditors and panko_admin everything';

-- The points of one push (all of them stored) into the rollup: one row per
-- day, type, scope, groupby project_id and table, added to what is there.
-- (only rating_push calls it: the rollup must hold what is stored)
CREATE FUNCTION panko.rating_rollup_add(points jsonb) RETURNS void
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH p AS MATERIALIZED (
        SELECT panko.parse_timestamp(x->>'generated') AS ts, x->>'event_type' AS type,
               x->'traits'->>'project_id' AS scope, x->'traits'->>'g.project_id' AS gproject,
               (x->'traits'->>'qty')::numeric AS qty, (x->'traits'->>'price')::numeric AS price
          FROM jsonb_array_elements(points) x
    ), t AS (
        SELECT s.ts,
               (SELECT to_regclass(format('panko.%I', CASE WHEN pt.classes IS NULL THEN pt.name
                                                           ELSE pt.name || '_rating' END))
                  FROM panko.partition pt
                 WHERE pt.lower_bound <= s.ts AND s.ts < pt.upper_bound) AS relid
          FROM (SELECT DISTINCT p.ts FROM p) s
    )
    INSERT INTO panko.rating_rollup AS r (day, event_type_id, scope, gproject, relid, points, qty, price)
    SELECT date_bin('1 day', p.ts, timestamptz '1970-01-01 00:00+00'), et.id, p.scope, p.gproject, t.relid::oid,
           count(*), sum(p.qty), sum(p.price)
      FROM p JOIN t ON t.ts = p.ts JOIN panko.event_type et ON et.name = p.type
     GROUP BY 1, 2, 3, 4, 5
     ORDER BY 1, 2, 3, 4, 5
    ON CONFLICT (day, event_type_id, scope, gproject, relid) DO UPDATE
       SET points = r.points + excluded.points, qty = r.qty + excluded.qty, price = r.price + excluded.price
$$;
COMMENT ON FUNCTION panko.rating_rollup_add(jsonb) IS
    'rating_push''s part: add the stored points of one push (every one stored) to the daily rollup';

-- The rollup of the UTC days that [lo, hi] touches, counted again from the
-- points stored (of one scope, or all: NULL): after a delete, expiry row
-- by row, or a push some of whose points were copies.
CREATE FUNCTION panko.rating_rollup_refresh(lo timestamptz, hi timestamptz, scope text DEFAULT NULL) RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    origin constant timestamptz := '1970-01-01 00:00+00';
    d0 timestamptz := CASE WHEN isfinite(lo) THEN date_bin('1 day', lo, origin) ELSE '-infinity' END;
    d1 timestamptz := CASE WHEN isfinite(hi) THEN date_bin('1 day', hi, origin) + interval '1 day' ELSE 'infinity' END;
BEGIN
    IF lo IS NULL OR hi IS NULL THEN
        RAISE EXCEPTION 'the rollup is counted again between two times' USING ERRCODE = '22004',
            HINT = 'Use ''-infinity'' and ''infinity'' for all of it.';
    END IF;
    IF scope IS NULL THEN
        DELETE FROM panko.rating_rollup r WHERE r.day >= d0 AND r.day < d1;
        INSERT INTO panko.rating_rollup (day, event_type_id, scope, gproject, relid, points, qty, price)
        SELECT date_bin('1 day', e.generated, origin), e.event_type_id, panko.trait_text(e.traits, 'project_id'),
               panko.trait_text(e.traits, 'g.project_id'), e.tableoid, count(*),
               sum(panko.trait_text(e.traits, 'qty')::numeric), sum(panko.trait_text(e.traits, 'price')::numeric)
          FROM panko.event e
         WHERE e.retention = 'rating' AND e.generated >= d0 AND e.generated < d1
         GROUP BY 1, 2, 3, 4, 5;
    ELSE
        DELETE FROM panko.rating_rollup r WHERE r.scope = rating_rollup_refresh.scope AND r.day >= d0 AND r.day < d1;
        INSERT INTO panko.rating_rollup (day, event_type_id, scope, gproject, relid, points, qty, price)
        SELECT date_bin('1 day', e.generated, origin), e.event_type_id, rating_rollup_refresh.scope,
               panko.trait_text(e.traits, 'g.project_id'), e.tableoid, count(*),
               sum(panko.trait_text(e.traits, 'qty')::numeric), sum(panko.trait_text(e.traits, 'price')::numeric)
          FROM panko.event e
         WHERE e.retention = 'rating' AND e.generated >= d0 AND e.generated < d1
           AND e.traits OPERATOR(panko.@>) panko.traits(jsonb_build_object('project_id', rating_rollup_refresh.scope))
         GROUP BY 1, 2, 3, 4, 5;
    END IF;
END
$$;
COMMENT ON FUNCTION panko.rating_rollup_refresh(timestamptz, timestamptz, text) IS
    'Count the daily rollup of the UTC days [lo, hi] touches again from the stored points, of one scope (NULL: all)';

-- Can the rollup answer for this window and these filters?  Whole UTC
-- days, and filters on the metric type and project only (a project_id
-- filter is the scope while no point had another project_id: see
-- rating_project_alias; a group_filters project_id is the groupby's).
-- The scopes and groupby projects to keep (NULL: any).
CREATE FUNCTION panko.rating_rollup_covers(begin timestamptz, "end" timestamptz, filters jsonb, group_filters jsonb,
                                           OUT covered boolean, OUT scopes text[], OUT gprojects text[])
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    origin constant timestamptz := '1970-01-01 00:00+00';
    f record;
    vals text[];
BEGIN
    covered := coalesce(current_setting('panko.rating_rollup', true), 'on') <> 'off'
               AND isfinite(begin) AND isfinite("end")
               AND date_bin('1 day', begin, origin) = begin AND date_bin('1 day', "end", origin) = "end";
    IF NOT covered THEN
        RETURN;
    END IF;
    -- (values as rating_conditions reads them; it has refused bad ones)
    FOR f IN SELECT 'filters' AS which, * FROM jsonb_each(coalesce(filters, '{}'))
             UNION ALL SELECT 'group_filters', * FROM jsonb_each(coalesce(group_filters, '{}')) LOOP
        CONTINUE WHEN f.key = 'type';
        vals := CASE WHEN jsonb_typeof(f.value) = 'array' THEN ARRAY(SELECT x #>> '{}' FROM jsonb_array_elements(f.value) x)
                     ELSE ARRAY[f.value #>> '{}'] END;
        IF f.key = 'project_id' AND f.which = 'group_filters' THEN
            gprojects := vals;
        ELSIF f.key = 'project_id' AND NOT EXISTS (SELECT FROM panko.rating_project_alias) THEN
            scopes := vals;
        ELSE
            covered := false;
            RETURN;
        END IF;
    END LOOP;
END
$$;
COMMENT ON FUNCTION panko.rating_rollup_covers(timestamptz, timestamptz, jsonb, jsonb) IS
    'Whether the daily rollup answers for [begin, end) and these filters (whole UTC days; type and project filters only; setting panko.rating_rollup not off), and the scopes and groupby projects the filters keep';


-- push adds to the rollup (and becomes SECURITY DEFINER: no writer writes
-- the rollup or the names but through it)
CREATE OR REPLACE FUNCTION panko.rating_push(points jsonb) RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
-- partitions are created under panko's storage settings, not the caller's
SET default_tablespace = '' SET default_table_access_method = 'heap'
AS $$
DECLARE
    info record;
    problem record;
    copies integer := 0;
    lo timestamptz;
    hi timestamptz;
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
    FOR problem IN SELECT * FROM panko.record_events(points) r LOOP
        IF problem.status <> 'duplicate' THEN
            RAISE EXCEPTION 'rated data point not stored: % %', problem.status, coalesce(problem.detail, '')
                USING ERRCODE = '22023', DETAIL = 'message_id ' || coalesce(problem.message_id, '(none)');
        END IF;
        copies := copies + 1;
    END LOOP;
    -- The daily rollup, in the same transaction: the points' sums added,
    -- or, when some were copies (which were stored is the events' to say),
    -- their days counted again.
    IF copies = 0 THEN
        PERFORM panko.rating_rollup_add(points);
    ELSE
        SELECT min(panko.parse_timestamp(x->>'generated')), max(panko.parse_timestamp(x->>'generated'))
          INTO lo, hi FROM jsonb_array_elements(points) x;
        PERFORM panko.rating_rollup_refresh(lo, hi);
    END IF;
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


-- retrieve's total and page bounds from the rollup
CREATE OR REPLACE FUNCTION panko.rating_retrieve(begin timestamptz, "end" timestamptz, metric_types text[] DEFAULT NULL,
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
        RETURN json_build_object('total', coalesce(known, total), 'points', points);
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
        RETURN json_build_object('total', coalesce(known, total), 'points', points);
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
    RETURN json_build_object('total', coalesce(known, total), 'points', points);
END
$$;
COMMENT ON FUNCTION panko.rating_retrieve(timestamptz, timestamptz, text[], jsonb, jsonb, bigint, bigint) IS
    'CloudKitty''s retrieve: the rated data points of [begin, end) matching the filters, oldest first, a page of limit after offset (NULL limit: all); {"total", "points": [[begin, period, type, unit, qty, price, groupby, metadata]]}';


-- whole-day totals by type and project from the rollup
CREATE OR REPLACE FUNCTION panko.rating_total(begin timestamptz, "end" timestamptz, groupby text[] DEFAULT NULL,
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
    rc record;
    ids integer[];
    field text;
    m text[];
    names text[] := '{}';
    aggs text[] := '{}';
    rollup_aggs text[] := '{}';
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
        -- (what the daily rollup holds: q, p, n; x for what it cannot give)
        rollup_aggs := rollup_aggs || CASE lower(m[1]) || ' ' || lower(m[2])
            WHEN 'sum qty' THEN 'q' WHEN 'sum price' THEN 'p' WHEN 'count *' THEN 'n' ELSE 'x' END;
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
    -- Whole UTC days grouped by type and/or project_id, with sums and
    -- counts, filtered by type and project only: the daily rollup answers,
    -- its groups ordered and paged as below.
    IF NOT timecol AND attrs <@ ARRAY['g.project_id'] AND NOT 'x' = ANY (rollup_aggs) THEN
        rc := panko.rating_rollup_covers(begin, "end", filters, group_filters);
        IF rc.covered THEN
            WITH g AS MATERIALIZED (
                SELECT CASE WHEN bytype THEN r.event_type_id END AS tid,
                       CASE WHEN cardinality(attrs) OPERATOR(pg_catalog.>) 0 THEN r.gproject END AS proj,
                       sum(r.points) AS n, sum(r.qty) AS q, sum(r.price) AS p
                  FROM panko.rating_rollup r
                 WHERE r.day OPERATOR(pg_catalog.>=) rating_total.begin
                   AND r.day OPERATOR(pg_catalog.<) rating_total."end"
                   AND (metric_types IS NULL OR r.event_type_id OPERATOR(pg_catalog.=) ANY (ids))
                   AND (rc.scopes IS NULL OR r.scope OPERATOR(pg_catalog.=) ANY (rc.scopes))
                   AND (rc.gprojects IS NULL OR r.gproject OPERATOR(pg_catalog.=) ANY (rc.gprojects))
                 GROUP BY 1, 2),
            r AS (
                SELECT g.n, g.q, g.p,
                       ARRAY(SELECT CASE WHEN x.kind OPERATOR(pg_catalog.=) 0
                                         THEN (SELECT substr(t.name, 12) FROM panko.event_type t
                                                WHERE t.id OPERATOR(pg_catalog.=) g.tid)
                                         ELSE g.proj END COLLATE "C"
                               FROM unnest(kinds) WITH ORDINALITY AS x(kind, i) ORDER BY x.i) AS keys
                  FROM g
                -- (no groupby: one total, 0 when nothing matches)
                 UNION ALL
                SELECT 0, 0, 0, '{}' WHERE cardinality(kinds) OPERATOR(pg_catalog.=) 0 AND NOT EXISTS (SELECT FROM g))
            SELECT json_build_object('total', (SELECT count(*) FROM r), 'fields', names, 'results',
                   coalesce((SELECT json_agg(json_build_array(pg_catalog.to_json(o.keys),
                                       (SELECT json_agg(CASE f.f WHEN 'q' THEN o.q::text WHEN 'p' THEN o.p::text
                                                                 ELSE o.n::text END ORDER BY f.i)
                                          FROM unnest(rollup_aggs) WITH ORDINALITY AS f(f, i))) ORDER BY o.keys)
                               FROM (SELECT * FROM r ORDER BY r.keys
                                     OFFSET coalesce(rating_total."offset", 0) LIMIT rating_total."limit") o), '[]'))
              INTO result;
            RETURN result;
        END IF;
    END IF;
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


-- delete counts the days it touched again
CREATE OR REPLACE FUNCTION panko.rating_delete(begin timestamptz DEFAULT NULL, "end" timestamptz DEFAULT NULL,
                                    filters jsonb DEFAULT NULL)
    RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c record;
    ids integer[];
    n bigint;
    lo timestamptz;
    hi timestamptz;
    scopes text[];
    unscoped boolean;
    s text;
BEGIN
    PERFORM panko.rating_check_window(begin, "end", 0, 0);
    c := panko.rating_conditions(filters, NULL, 4);
    ids := panko.rating_type_ids(c.types);
    -- (each deletion also takes its rows off the partitions' counts, and
    -- says which days and scopes of the rollup to count again)
    EXECUTE 'WITH gone AS (DELETE FROM panko.event e WHERE e.retention OPERATOR(pg_catalog.=) ''rating'''
            ' AND e.generated >= $1 AND e.generated < $2'
            ' AND e.event_type_id OPERATOR(pg_catalog.=) ANY ($3)' || c.clause
            || ' RETURNING e.tableoid, e.generated, panko.trait_text(e.traits, ''project_id'') AS scope),'
            ' counted AS (INSERT INTO panko.partition_rows (partition, n)'
            ' SELECT c.relname, -count(*) FROM gone g JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) g.tableoid'
            ' GROUP BY c.relname RETURNING partition_rows.n AS delta)'
            ' SELECT (SELECT coalesce(-sum(counted.delta), 0) FROM counted), min(g.generated), max(g.generated),'
            ' array_agg(DISTINCT g.scope) FILTER (WHERE g.scope IS NOT NULL), bool_or(g.scope IS NULL) FROM gone g'
       INTO n, lo, hi, scopes, unscoped USING coalesce(begin, '-infinity'), coalesce("end", 'infinity'), ids, c.args;
    IF n > 0 THEN
        IF unscoped OR cardinality(scopes) > 16 THEN
            PERFORM panko.rating_rollup_refresh(lo, hi);
        ELSE
            FOREACH s IN ARRAY scopes LOOP
                PERFORM panko.rating_rollup_refresh(lo, hi, s);
            END LOOP;
        END IF;
    END IF;
    RETURN n;
END
$$;
COMMENT ON FUNCTION panko.rating_delete(timestamptz, timestamptz, jsonb) IS
    'CloudKitty''s delete: remove the rated data of [begin, end) (NULL: unbounded) matching the filters, of every scope; returns how many points were deleted';


-- expiry row by row counts the rollup again up to the cutoff
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
    by_row bigint := 0;
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
        by_row := by_row + n;
        budget := budget - n;
        EXIT WHEN t IS NULL OR n = 0;
    END LOOP;
    -- Rated data that follows the events' time to live, deleted row by
    -- row: its daily rollup (sql/rating.sql) counted again up to the cutoff.
    IF by_row > 0 AND 'rating' = ANY (following) THEN
        PERFORM panko.rating_rollup_refresh('-infinity', cutoff);
    END IF;
END
$$;
COMMENT ON FUNCTION panko.drop_expired_partitions(timestamptz, bigint) IS
    'Events'' expiry: drop the tables of partitions wholly older than cutoff (within max_count events) of every class without a time to live of its own, then delete older rows of those classes in the boundary partition';


-- One event trigger for both rollups, replacing Kaneda's: it read its
-- rollup on every DROP TABLE in the database, which only panko's roles
-- may, so a role without panko rights could not drop a table of its own.
DROP EVENT TRIGGER metric_rollup_drop;
DROP FUNCTION panko.metric_rollup_drop();
CREATE FUNCTION panko.rollup_drop() RETURNS event_trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    dropped oid[];
    rollup text;
BEGIN
    SELECT array_agg(d.objid) INTO dropped FROM pg_event_trigger_dropped_objects() d
     WHERE d.classid = 'pg_class'::regclass AND d.object_type = 'table' AND d.schema_name = 'panko';
    IF dropped IS NULL THEN
        RETURN;
    END IF;
    FOREACH rollup IN ARRAY ARRAY['rating_rollup', 'metric_rollup'] LOOP
        -- (gone when the extension itself is being dropped)
        IF to_regclass('panko.' || rollup) IS NOT NULL THEN
            EXECUTE format('DELETE FROM panko.%I r WHERE r.relid OPERATOR(pg_catalog.=) ANY ($1)', rollup) USING dropped;
        END IF;
    END LOOP;
END
$$;
COMMENT ON FUNCTION panko.rollup_drop() IS
    'Event trigger: deletes the rollups'' rows (rating_rollup, metric_rollup) of a dropped table of panko.event';

CREATE EVENT TRIGGER rollup_drop ON sql_drop WHEN TAG IN ('DROP TABLE')
    EXECUTE FUNCTION panko.rollup_drop();


REVOKE ALL ON TABLE panko.rating_rollup FROM PUBLIC;
GRANT SELECT ON panko.rating_rollup TO panko_auditor, panko_query;
REVOKE ALL ON TABLE panko.rating_attribute, panko.rating_project_alias FROM panko_writer;
REVOKE ALL ON FUNCTION panko.rollup_drop(), panko.rating_rollup_add(jsonb),
    panko.rating_rollup_refresh(timestamptz, timestamptz, text),
    panko.rating_rollup_covers(timestamptz, timestamptz, jsonb, jsonb)
FROM PUBLIC;
GRANT EXECUTE ON FUNCTION panko.rating_rollup_covers(timestamptz, timestamptz, jsonb, jsonb) TO panko_reader, panko_query;

-- The rated data stored so far, counted into the rollup.
SELECT panko.rating_rollup_refresh('-infinity', 'infinity');
