-- panko 0.14.0 -> 0.15.0: CloudKitty's common total (whole UTC days, the
-- default fields, grouped by type and/or project_id, filtered by type and
-- project) is read in C (panko.rating_rollup_request) and answered from
-- the daily rollup at once, without rating_total's PL/pgSQL walk of its
-- filters.  And a table of panko.event dropped by hand takes panko's
-- bookkeeping of it along (panko.rollup_drop): its counts, summaries, and
-- its partition's row or class, so that the next event of that day makes
-- its table again.
\echo Use "ALTER EXTENSION panko UPDATE TO '0.15.0'" to load this file. \quit

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

REVOKE ALL ON FUNCTION panko.rating_rollup_request(timestamptz, timestamptz, text[], text[], jsonb, jsonb, text) FROM PUBLIC;
-- (only rating_total calls it, as its owner)
GRANT EXECUTE ON FUNCTION panko.rating_rollup_request(timestamptz, timestamptz, text[], text[], jsonb, jsonb, text) TO panko_query;

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

CREATE OR REPLACE FUNCTION panko.rollup_drop() RETURNS event_trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    dropped oid[];
    names text[];
    rollup text;
BEGIN
    SELECT array_agg(d.objid), array_agg(d.object_name) INTO dropped, names FROM pg_event_trigger_dropped_objects() d
     WHERE d.classid = 'pg_class'::regclass AND d.object_type = 'table' AND d.schema_name = 'panko';
    IF dropped IS NULL THEN
        RETURN;
    END IF;
    IF to_regclass('panko.partition') IS NOT NULL AND to_regclass('panko.partition_rows') IS NOT NULL
       AND to_regclass('panko.partition_summary') IS NOT NULL THEN
        -- (what expiry's drop_partition_tables also does itself)
        DELETE FROM panko.partition_rows r WHERE r.partition OPERATOR(pg_catalog.=) ANY (names);
        DELETE FROM panko.partition_summary s
         WHERE s.relid OPERATOR(pg_catalog.=) ANY (dropped) OR s.partition OPERATOR(pg_catalog.=) ANY (names);
        IF FOUND THEN
            UPDATE panko.summary_epoch SET epoch = epoch + 1;
        END IF;
        DELETE FROM panko.partition p WHERE p.name OPERATOR(pg_catalog.=) ANY (names);
        UPDATE panko.partition p
           SET classes = ARRAY(SELECT c FROM unnest(p.classes) c
                                WHERE NOT (p.name || '_' || c) OPERATOR(pg_catalog.=) ANY (names) ORDER BY c)
         WHERE p.classes IS NOT NULL
           AND EXISTS (SELECT FROM unnest(p.classes) c WHERE (p.name || '_' || c) OPERATOR(pg_catalog.=) ANY (names));
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
    'Event trigger: deletes the rollups'' rows (rating_rollup, metric_rollup) of a dropped table of panko.event, and panko''s bookkeeping of it: its counts, summaries, and its partition''s row or class';
