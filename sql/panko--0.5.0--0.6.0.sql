-- panko 0.5.0 -> 0.6.0: Kaneda's series in C (metric_series), its whole
-- minutes and hours added up as the rollup's rows stream past.
\echo Use "ALTER EXTENSION panko UPDATE TO '0.6.0'" to load this file. \quit

-- The dashboard's case (no tag filter; every boundary a whole minute, and
-- whole hours or at most a day) is answered from the rollup alone, its
-- rows added up in C as they stream out of its primary key (no GROUP BY,
-- no sort); anything else from metric_buckets.  In src/metric.c.
CREATE OR REPLACE FUNCTION panko.metric_series(name text, bucket interval, "from" timestamptz, "to" timestamptz,
                                    tags jsonb DEFAULT NULL, app text DEFAULT NULL)
    RETURNS TABLE(bucket_start timestamptz, bucket_end timestamptz, count bigint, sum double precision,
                  avg double precision, min double precision, max double precision)
AS 'MODULE_PATHNAME', 'metric_series'
LANGUAGE C STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off;
COMMENT ON FUNCTION panko.metric_series(text, interval, timestamptz, timestamptz, jsonb, text) IS
    'A metric''s numeric reports per bucket (1 s to 1 day, aligned on from) in [from, to): count, sum, avg, min, max; buckets without reports are left out; tags (a list or a dict) and app filter';
