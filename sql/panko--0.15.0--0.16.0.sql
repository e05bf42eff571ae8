-- panko 0.15.0 -> 0.16.0: the registry of message_ids keeps one row per
-- CloudKitty push instead of one per rated data point.  A point's id is
-- cloudkitty:<push>:<n>, and a push is stored whole in one transaction,
-- so the registry keys such an id by its push (panko.message_id_hash of
-- cloudkitty:<push>:<n> is now that of cloudkitty:<push>): a row per
-- point was a seventh of a push's time, each a write to a random page.
\echo Use "ALTER EXTENSION panko UPDATE TO '0.16.0'" to load this file. \quit

COMMENT ON FUNCTION panko.message_id_hash(text) IS
    'The registry key of a message_id (64-bit hash; of a CloudKitty point''s id cloudkitty:<push>:<n>, of its push''s cloudkitty:<push>)';

-- The points stored before the update are registered under their own ids'
-- old keys: register them under the new ones, with the newest generated
-- each stands for, so that they are still found by message_id and a push
-- sent again still finds its copies.  (The old rows stay until
-- panko.purge_registry drops them with their partitions: a leftover costs
-- ingest one check, never a lost event.)
INSERT INTO panko.event_message AS r (id_hash, generated)
SELECT panko.message_id_hash(e.message_id), max(e.generated)
  FROM panko.event e
 WHERE e.message_id LIKE 'cloudkitty:%'
 GROUP BY 1
ON CONFLICT (id_hash) DO UPDATE SET generated = greatest(r.generated, excluded.generated);

-- The daily rollup's writers for pushes in PL/pgSQL, which keeps their
-- statement's plan for the session: as SQL functions they were parsed and
-- planned again on every push (a third of the time of a small push).
CREATE OR REPLACE FUNCTION panko.rating_rollup_add_groups(generated timestamptz[], event_type text[], scope text[],
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

CREATE OR REPLACE FUNCTION panko.rating_rollup_add(points jsonb) RETURNS void
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

CREATE OR REPLACE FUNCTION panko.rating_note_names(groupby text[], g_alias boolean, m_alias boolean) RETURNS void
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
