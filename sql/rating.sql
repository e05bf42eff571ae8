
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
-- (retrieve's form: the begin written and the metric type named in C, no
-- lookup of panko.event_type per point of a page)
CREATE FUNCTION panko.rating_point(traits panko.traits, generated timestamptz, event_type_id integer) RETURNS json
    AS 'MODULE_PATHNAME', 'rating_point_stored' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION panko.rating_point(panko.traits, timestamptz, integer) IS
    'A stored rated data point as retrieve returns it, its begin from generated and its metric type from the event type (without "cloudkitty.")';

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

-- What a push adds to the rollup, per time, type, scope and groupby
-- project: the points' count and exact sums, in one pass in C.
CREATE FUNCTION panko.rating_rollup_points(points jsonb, OUT generated timestamptz, OUT event_type text,
                                           OUT scope text, OUT gproject text, OUT npoints bigint,
                                           OUT qty numeric, OUT price numeric)
    RETURNS SETOF record
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION panko.rating_rollup_points(jsonb) IS
    'rating_rollup_add''s part: the points of a push (checked by rating_check_points) grouped by time, event type, scope and groupby project_id: their count and exact qty and price sums';

-- The rows a push adds to the rollup (time, type, scope, groupby project,
-- count and exact sums: rating_rollup_points' columns, as arrays), all of
-- its points stored: one row per day, type, scope, groupby project_id and
-- table, added to what is there.  (only rating_push and rating_push_frames
-- call it: the rollup must hold what is stored)
CREATE FUNCTION panko.rating_rollup_add_groups(generated timestamptz[], event_type text[], scope text[],
                                               gproject text[], npoints bigint[], qty numeric[],
                                               price numeric[]) RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
-- one plan for the session: as a SQL function (and with custom plans,
-- which the arrays' sizes always favour) the statement was parsed and
-- planned again on every push, a third of a small push's time
SET plan_cache_mode = force_generic_plan
AS $$
#variable_conflict use_column
BEGIN
    WITH p AS MATERIALIZED (
        SELECT * FROM unnest(rating_rollup_add_groups.generated, rating_rollup_add_groups.event_type,
                             rating_rollup_add_groups.scope, rating_rollup_add_groups.gproject,
                             rating_rollup_add_groups.npoints, rating_rollup_add_groups.qty,
                             rating_rollup_add_groups.price)
                      AS g(generated, event_type, scope, gproject, npoints, qty, price)
    ), t AS MATERIALIZED (
        -- (each table looked up once, not once a row of p)
        SELECT s.ts,
               (SELECT to_regclass(format('panko.%I', CASE WHEN pt.classes IS NULL THEN pt.name
                                                           ELSE pt.name || '_rating' END))
                  FROM panko.partition pt
                 WHERE pt.lower_bound <= s.ts AND s.ts < pt.upper_bound) AS relid
          FROM (SELECT DISTINCT p.generated AS ts FROM p) s
    )
    INSERT INTO panko.rating_rollup AS r (day, event_type_id, scope, gproject, relid, points, qty, price)
    SELECT date_bin('1 day', p.generated, timestamptz '1970-01-01 00:00+00'), et.id, p.scope, p.gproject, t.relid::oid,
           sum(p.npoints), sum(p.qty), sum(p.price)
      FROM p JOIN t ON t.ts = p.generated JOIN panko.event_type et ON et.name = p.event_type
     GROUP BY 1, 2, 3, 4, 5
     ORDER BY 1, 2, 3, 4, 5
    ON CONFLICT (day, event_type_id, scope, gproject, relid) DO UPDATE
       SET points = r.points + excluded.points, qty = r.qty + excluded.qty, price = r.price + excluded.price;
END
$$;
COMMENT ON FUNCTION panko.rating_rollup_add_groups(timestamptz[], text[], text[], text[], bigint[], numeric[], numeric[]) IS
    'The daily rollup''s one writer for pushes: add a push''s rows (time, type, scope, groupby project_id, count and exact sums; every point stored)';

-- The points of one push (all of them stored) into the rollup.
CREATE FUNCTION panko.rating_rollup_add(points jsonb) RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM panko.rating_rollup_add_groups(array_agg(p.generated), array_agg(p.event_type), array_agg(p.scope),
                                           array_agg(p.gproject), array_agg(p.npoints), array_agg(p.qty),
                                           array_agg(p.price))
       FROM panko.rating_rollup_points(rating_rollup_add.points) p;
END
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

CREATE FUNCTION panko.rating_check_points(points jsonb, OUT ord integer, OUT groupby text[],
                                          OUT g_alias boolean, OUT m_alias boolean)
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION panko.rating_check_points(jsonb) IS
    'rating_push''s checks in one pass: the position of the first malformed rated data point (NULL: none), the groupby names of the points, and whether a groupby or a metadata project_id differs from its point''s scope';

-- What a push records besides its points: the groupby names that total
-- may group by, and whether a groupby or metadata project_id differs from
-- a point's scope (then a project_id filter is not the scope alone).
CREATE FUNCTION panko.rating_note_names(groupby text[], g_alias boolean, m_alias boolean) RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_generic_plan	-- (planned once, not on every push)
AS $$
BEGIN
    IF groupby IS NOT NULL THEN
        INSERT INTO panko.rating_attribute (name)
        SELECT n FROM unnest(groupby) n
         WHERE NOT EXISTS (SELECT 1 FROM panko.rating_attribute a WHERE a.name OPERATOR(pg_catalog.=) n)
        ON CONFLICT DO NOTHING;
    END IF;
    IF g_alias OR m_alias THEN
        INSERT INTO panko.rating_project_alias (attribute)
        SELECT a FROM unnest(ARRAY[CASE WHEN g_alias THEN 'g.project_id' END,
                                   CASE WHEN m_alias THEN 'm.project_id' END]) a
         WHERE a IS NOT NULL
        ON CONFLICT DO NOTHING;
    END IF;
END
$$;
COMMENT ON FUNCTION panko.rating_note_names(text[], boolean, boolean) IS
    'A push''s part: record its groupby names and which project_id attributes differ from the scope';

CREATE FUNCTION panko.rating_push(points jsonb) RETURNS bigint
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
    PERFORM panko.rating_note_names(info.groupby, info.g_alias, info.m_alias);
    RETURN jsonb_array_length(points);
END
$$;
COMMENT ON FUNCTION panko.rating_push(jsonb) IS
    'CloudKitty''s push: store rated data points (a JSON array of events of types cloudkitty.*, see the README) in one transaction; a malformed point stores nothing; returns how many were stored';

-- CloudKitty's push as panko_drivers.cloudkitty sends it: frames of points,
-- each point [metric, unit, qty, price, groupby, metadata], checked and
-- stored in C (rating.c), without writing each point as an event in JSON.
CREATE FUNCTION panko.rating_store_frames(frames jsonb, OUT points bigint, OUT copies bigint, OUT groupby text[],
                                          OUT g_alias boolean, OUT m_alias boolean,
                                          OUT lo timestamptz, OUT hi timestamptz,
                                          OUT generated timestamptz[], OUT event_type text[], OUT scope text[],
                                          OUT gproject text[], OUT npoints bigint[], OUT qty numeric[],
                                          OUT price numeric[])
    RETURNS record
    AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION panko.rating_store_frames(jsonb) IS
    'rating_push_frames'' part: check every point of a push and store them all as events (a malformed point fails the call); returns the counts, the groupby names, the project aliases and the rollup''s rows';

CREATE FUNCTION panko.rating_push_frames(frames jsonb) RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
-- partitions are created under panko's storage settings, not the caller's
SET default_tablespace = '' SET default_table_access_method = 'heap'
AS $$
DECLARE
    info record;
BEGIN
    IF frames IS NULL OR jsonb_typeof(frames) IS DISTINCT FROM 'object' THEN
        RAISE EXCEPTION 'a push of rated data must be a JSON object'
            USING ERRCODE = '22023', HINT = 'panko_drivers.cloudkitty writes it; see the README, "CloudKitty".';
    END IF;
    info := panko.rating_store_frames(frames);
    -- the rollup in the same transaction: the points' sums added, or, when
    -- some were copies (a push sent again), their days counted again
    IF info.copies = 0 THEN
        PERFORM panko.rating_rollup_add_groups(info.generated, info.event_type, info.scope, info.gproject,
                                               info.npoints, info.qty, info.price);
    ELSIF info.points > 0 THEN
        PERFORM panko.rating_rollup_refresh(info.lo, info.hi);
    END IF;
    PERFORM panko.rating_note_names(info.groupby, info.g_alias, info.m_alias);
    RETURN info.points;
END
$$;
COMMENT ON FUNCTION panko.rating_push_frames(jsonb) IS
    'CloudKitty''s push in panko_drivers.cloudkitty''s form ({"push": id, "scope": project or null, "frames": [{"start", "period", "points": [[metric, unit, qty, price, groupby, metadata], ...]}]}): every point checked, then stored as events of types cloudkitty.* in one transaction with the daily rollup; a malformed point stores nothing; returns how many points it held';

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

-- total's answer from the daily rollup, once rating_total has read the
-- call and found that the rollup covers it.  A function of its own, so
-- that its plan is made once a session: rating_total plans its statements
-- over the events for each call's values, and planning this one each time
-- was half of a one-day, one-project total.
CREATE FUNCTION panko.rating_rollup_total(begin timestamptz, "end" timestamptz, ids integer[], scopes text[],
                                          gprojects text[], kinds integer[], aggs text[], names text[],
                                          "offset" bigint, "limit" bigint)
    RETURNS json
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_generic_plan
-- (a generic plan cannot know how many days' rows it groups: hash them;
-- and the cost of the path switched off must not make it JIT-compiled)
SET enable_sort = off
SET jit = off
AS $$
DECLARE
    bytype constant boolean := 0 = ANY (kinds);
    byproject constant boolean := 0 < ANY (kinds);
    result json;
BEGIN
    WITH g AS MATERIALIZED (
        SELECT CASE WHEN bytype THEN r.event_type_id END AS tid,
               CASE WHEN byproject THEN r.gproject END AS proj,
               sum(r.points) AS n, sum(r.qty) AS q, sum(r.price) AS p
          -- (the days' rows, or a scope's days' rows by its index: the
          -- plan is made once, for either)
          FROM (SELECT * FROM panko.rating_rollup r
                 WHERE scopes IS NULL
                   AND r.day OPERATOR(pg_catalog.>=) rating_rollup_total.begin
                   AND r.day OPERATOR(pg_catalog.<) rating_rollup_total."end"
                 UNION ALL
                SELECT * FROM panko.rating_rollup r
                 WHERE r.scope OPERATOR(pg_catalog.=) ANY (scopes)
                   AND r.day OPERATOR(pg_catalog.>=) rating_rollup_total.begin
                   AND r.day OPERATOR(pg_catalog.<) rating_rollup_total."end") r
         WHERE (ids IS NULL OR r.event_type_id OPERATOR(pg_catalog.=) ANY (ids))
           AND (gprojects IS NULL OR r.gproject OPERATOR(pg_catalog.=) ANY (gprojects))
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
                                  FROM unnest(aggs) WITH ORDINALITY AS f(f, i))) ORDER BY o.keys)
                       FROM (SELECT * FROM r ORDER BY r.keys
                             OFFSET coalesce(rating_rollup_total."offset", 0) LIMIT rating_rollup_total."limit") o), '[]'))
      INTO result;
    RETURN result;
END
$$;
COMMENT ON FUNCTION panko.rating_rollup_total(timestamptz, timestamptz, integer[], text[], text[], integer[], text[], text[], bigint, bigint) IS
    'rating_total''s answer from the daily rollup: the days of [begin, end) of these event types (NULL: all), scopes and groupby projects (NULL: all), grouped by kinds (0: type, > 0: project), with the fields aggs (q, p, n) named names; a page of limit after offset';

-- What a total asks of the daily rollup, read in C: whether the rollup
-- answers it (whole UTC days, the default fields, grouped by type and/or
-- project_id, filtered by type and project only), and then
-- rating_rollup_total's arguments.  Anything else, malformed input
-- included, is not covered: rating_total's full path reads it.
CREATE FUNCTION panko.rating_rollup_request(begin timestamptz, "end" timestamptz, groupby text[], metric_types text[],
                                            filters jsonb, group_filters jsonb, custom_fields text,
                                            OUT covered boolean, OUT kinds integer[], OUT ids integer[],
                                            OUT scopes text[], OUT gprojects text[])
    RETURNS record
    AS 'MODULE_PATHNAME' LANGUAGE C STABLE;
COMMENT ON FUNCTION panko.rating_rollup_request(timestamptz, timestamptz, text[], text[], jsonb, jsonb, text) IS
    'rating_total''s common call read in C: whether the daily rollup answers it as it stands (whole UTC days, default fields, groupby type and/or project_id, type and project filters), and rating_rollup_total''s kinds, event type ids (NULL: all), scopes and groupby projects';

CREATE FUNCTION panko.rating_total(begin timestamptz, "end" timestamptz, groupby text[] DEFAULT NULL,
                                   metric_types text[] DEFAULT NULL, filters jsonb DEFAULT NULL,
                                   group_filters jsonb DEFAULT NULL, custom_fields text DEFAULT NULL,
                                   "offset" bigint DEFAULT 0, "limit" bigint DEFAULT 1000)
    RETURNS json
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
-- (bitmap scans, as rating_retrieve; the statements over the events are
-- EXECUTEd, so planned for the call's values)
SET enable_indexscan = off
AS $$
DECLARE
    c record;
    rc record;
    rq record;
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
    -- The common call, which the daily rollup answers as it stands: read in
    -- C, without the walk of the filters below.
    rq := panko.rating_rollup_request(begin, "end", groupby, metric_types, filters, group_filters, custom_fields);
    IF rq.covered THEN
        RETURN panko.rating_rollup_total(begin, "end", rq.ids, rq.scopes, rq.gprojects, rq.kinds,
                                         '{q,p}', '{qty,rate}', "offset", "limit");
    END IF;

    -- custom_fields: "AGG(field) [AS name], ..." against a fixed list; each
    -- becomes a fixed SQL fragment, the name only a key of the answer.
    -- (the default fields, as the loop reads them: the common call pays for
    -- no regular expression)
    IF custom_fields IS NULL AND NOT coalesce(groupby, '{}') && ARRAY['qty', 'rate'] THEN
        names := '{qty,rate}';
        aggs := ARRAY['panko.rating_sum(e.traits, ''qty'')', 'panko.rating_sum(e.traits, ''price'')'];
        rollup_aggs := '{q,p}';
    END IF;
    FOREACH field IN ARRAY CASE WHEN cardinality(names) = 0
                                THEN string_to_array(coalesce(custom_fields, 'SUM(qty) AS qty, SUM(price) AS rate'), ',')
                                ELSE '{}' END LOOP
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
            RETURN panko.rating_rollup_total(begin, "end", CASE WHEN metric_types IS NOT NULL THEN ids END,
                                             rc.scopes, rc.gprojects, kinds, rollup_aggs, names,
                                             "offset", "limit");
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
        -- (EXECUTE: planned for the call's values, as the partitions' pruning
        -- and the filter's selectivity want)
        EXECUTE $q$
        WITH g AS MATERIALIZED (
            SELECT CASE WHEN $9 THEN e.event_type_id END AS tid,
                   CASE WHEN $8 THEN e.generated END AS ts,
                   CASE WHEN $8 THEN panko.trait_int(e.traits, 'period') END AS per,
                   panko.rating_keys(e.traits, $5) AS k,
                   panko.rating_sum(e.traits, 'qty') AS q, panko.rating_sum(e.traits, 'price') AS p
              FROM panko.event e
             WHERE e.retention OPERATOR(pg_catalog.=) 'rating'
               AND e.generated OPERATOR(pg_catalog.>=) $1
               AND e.generated OPERATOR(pg_catalog.<) $2
               AND e.traits OPERATOR(panko.@>) $3
               AND ($4 IS NULL OR e.event_type_id OPERATOR(pg_catalog.=) ANY ($4))
             GROUP BY 1, 2, 3, 4),
        r AS (
            SELECT g.q, g.p, g.per,
                   ARRAY(SELECT CASE WHEN x.kind OPERATOR(pg_catalog.=) 0
                                     THEN (SELECT substr(t.name, 12) FROM panko.event_type t
                                            WHERE t.id OPERATOR(pg_catalog.=) g.tid)
                                     WHEN x.kind OPERATOR(pg_catalog.<) 0 THEN panko.iso_timestamp(g.ts)
                                     ELSE g.k[x.kind] END COLLATE "C"
                           FROM unnest($6) WITH ORDINALITY AS x(kind, i) ORDER BY x.i) AS keys
              FROM g
            -- (no groupby: one total, 0 when nothing matches)
             UNION ALL
            SELECT 0, 0, NULL, '{}' WHERE cardinality($6) OPERATOR(pg_catalog.=) 0 AND NOT EXISTS (SELECT FROM g))
        SELECT json_build_object('total', (SELECT count(*) FROM r), 'fields', $7, 'results',
               coalesce((SELECT json_agg(json_build_array(
                                   CASE WHEN $8 THEN (pg_catalog.to_jsonb(o.keys) OPERATOR(pg_catalog.||) pg_catalog.to_jsonb(o.per))::json
                                        ELSE pg_catalog.to_json(o.keys) END,
                                   json_build_array(o.q::text, o.p::text)) ORDER BY o.keys, o.per NULLS LAST)
                           FROM (SELECT * FROM r ORDER BY r.keys, r.per NULLS LAST
                                 OFFSET $10 LIMIT $11) o), '[]'))$q$
           INTO result
          USING begin, "end", c.together, CASE WHEN metric_types IS NOT NULL THEN ids END, attrs, kinds,
                names, timecol, bytype, coalesce("offset", 0), "limit";
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
REVOKE ALL ON TABLE panko.rating_rollup FROM PUBLIC;
GRANT SELECT ON panko.rating_attribute, panko.rating_project_alias, panko.rating_rollup TO panko_auditor, panko_query;
-- (rating_push and rating_push_frames are SECURITY DEFINER: the rollup
-- holds what is stored, so no writer writes it, or the names, or stores
-- rated data with rating_store_frames, but through them)
REVOKE ALL ON FUNCTION panko.rating_sum_trans(internal, panko.traits, text), panko.rating_sum_combine(internal, internal),
    panko.rating_sum_final(internal), panko.rating_sum_serialize(internal), panko.rating_sum_deserialize(bytea, internal),
    panko.rating_sum(panko.traits, text), panko.rating_point(panko.traits, text, text),
    panko.rating_point(panko.traits, timestamptz, integer),
    panko.rating_keys(panko.traits, text[]), panko.rating_check_points(jsonb), panko.rating_rollup_points(jsonb), panko.rating_push(jsonb), panko.rating_conditions(jsonb, jsonb, integer),
    panko.rating_store_frames(jsonb), panko.rating_push_frames(jsonb), panko.rating_note_names(text[], boolean, boolean),
    panko.rating_rollup_add_groups(timestamptz[], text[], text[], text[], bigint[], numeric[], numeric[]),
    panko.rating_type_ids(text[]), panko.rating_check_window(timestamptz, timestamptz, bigint, bigint),
    panko.rating_retrieve(timestamptz, timestamptz, text[], jsonb, jsonb, bigint, bigint),
    panko.rating_total(timestamptz, timestamptz, text[], text[], jsonb, jsonb, text, bigint, bigint),
    panko.rating_delete(timestamptz, timestamptz, jsonb), panko.rating_init(bigint),
    panko.rating_rollup_add(jsonb), panko.rating_rollup_refresh(timestamptz, timestamptz, text),
    panko.rating_rollup_covers(timestamptz, timestamptz, jsonb, jsonb),
    panko.rating_rollup_request(timestamptz, timestamptz, text[], text[], jsonb, jsonb, text),
    panko.rating_rollup_total(timestamptz, timestamptz, integer[], text[], text[], integer[], text[], text[], bigint, bigint)
FROM PUBLIC;
ALTER FUNCTION panko.rating_retrieve(timestamptz, timestamptz, text[], jsonb, jsonb, bigint, bigint) OWNER TO panko_query;
ALTER FUNCTION panko.rating_total(timestamptz, timestamptz, text[], text[], jsonb, jsonb, text, bigint, bigint) OWNER TO panko_query;
GRANT EXECUTE ON FUNCTION panko.rating_sum(panko.traits, text), panko.rating_point(panko.traits, text, text),
    panko.rating_keys(panko.traits, text[]), panko.rating_conditions(jsonb, jsonb, integer),
    panko.rating_type_ids(text[]), panko.rating_check_window(timestamptz, timestamptz, bigint, bigint),
    panko.rating_rollup_covers(timestamptz, timestamptz, jsonb, jsonb)
TO panko_reader, panko_query;
-- (only rating_retrieve calls it, as its owner: it names event types by id)
GRANT EXECUTE ON FUNCTION panko.rating_point(panko.traits, timestamptz, integer) TO panko_query;
-- (only rating_total calls them, as its owner)
GRANT EXECUTE ON FUNCTION panko.rating_rollup_total(timestamptz, timestamptz, integer[], text[], text[], integer[], text[], text[], bigint, bigint),
    panko.rating_rollup_request(timestamptz, timestamptz, text[], text[], jsonb, jsonb, text) TO panko_query;
GRANT EXECUTE ON FUNCTION panko.rating_push(jsonb), panko.rating_push_frames(jsonb), panko.rating_check_points(jsonb) TO panko_writer;
GRANT EXECUTE ON FUNCTION panko.rating_retrieve(timestamptz, timestamptz, text[], jsonb, jsonb, bigint, bigint),
    panko.rating_total(timestamptz, timestamptz, text[], text[], jsonb, jsonb, text, bigint, bigint)
TO panko_reader;
GRANT EXECUTE ON FUNCTION panko.rating_delete(timestamptz, timestamptz, jsonb), panko.rating_init(bigint) TO panko_admin;
