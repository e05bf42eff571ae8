-- panko 0.10.0 -> 0.11.0: CloudKitty's total plans less for each call.
-- Its answer from the daily rollup is a function of its own
-- (panko.rating_rollup_total), whose plan is kept for the session, and
-- rating_total no longer plans each of its own statements for the call's
-- values (plan_cache_mode): only its statements over the events, which are
-- EXECUTEd.
\echo Use "ALTER EXTENSION panko UPDATE TO '0.11.0'" to load this file. \quit

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

CREATE OR REPLACE FUNCTION panko.rating_total(begin timestamptz, "end" timestamptz, groupby text[] DEFAULT NULL,
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
REVOKE ALL ON FUNCTION panko.rating_rollup_total(timestamptz, timestamptz, integer[], text[], text[], integer[], text[], text[], bigint, bigint)
FROM PUBLIC;
GRANT EXECUTE ON FUNCTION panko.rating_rollup_total(timestamptz, timestamptz, integer[], text[], text[], integer[], text[], text[], bigint, bigint)
TO panko_query;
