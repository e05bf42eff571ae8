
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
