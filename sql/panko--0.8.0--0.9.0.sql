-- panko 0.8.0 -> 0.9.0: a large batch claims its message_ids in the
-- registry with a plain INSERT (event_input.c; no schema change), and
-- CloudKitty's push counts its daily rollup in C
-- (panko.rating_rollup_points) instead of reading every point again in SQL.
\echo Use "ALTER EXTENSION panko UPDATE TO '0.9.0'" to load this file. \quit

-- What a push adds to the rollup, per time, type, scope and groupby
-- project: the points' count and exact sums, in one pass in C.
CREATE FUNCTION panko.rating_rollup_points(points jsonb, OUT generated timestamptz, OUT event_type text,
                                           OUT scope text, OUT gproject text, OUT npoints bigint,
                                           OUT qty numeric, OUT price numeric)
    RETURNS SETOF record
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION panko.rating_rollup_points(jsonb) IS
    'rating_rollup_add''s part: the points of a push (checked by rating_check_points) grouped by time, event type, scope and groupby project_id: their count and exact qty and price sums';

-- The points of one push (all of them stored) into the rollup: one row per
-- day, type, scope, groupby project_id and table, added to what is there.
-- (only rating_push calls it: the rollup must hold what is stored)
CREATE OR REPLACE FUNCTION panko.rating_rollup_add(points jsonb) RETURNS void
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH p AS MATERIALIZED (
        SELECT * FROM panko.rating_rollup_points(rating_rollup_add.points)
    ), t AS (
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
       SET points = r.points + excluded.points, qty = r.qty + excluded.qty, price = r.price + excluded.price
$$;

REVOKE ALL ON FUNCTION panko.rating_rollup_points(jsonb) FROM PUBLIC;
