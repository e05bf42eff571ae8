
--------------------------------------------------------------------------
-- Kaneda's metrics and events (panko_drivers.kaneda): reports stored as
-- events of their own types, and the series functions that read them.
-- (Appended to sql/panko.sql and sql/rating.sql by the build; same rules:
-- every object once, in its final form, and into the next version's
-- upgrade script too.)
--
-- A report (Metrics.gauge/increment/decrement/timing/event/custom: one
-- backend.report(name, metric, value, tags, id_)) is an event of type
-- kaneda.gauge, kaneda.counter, kaneda.timing, kaneda.event, or
-- kaneda.custom (trait metric = the custom metric's name), with traits:
--   app_name, name, host      string
--   value                     a scalar value: integer, float or string
--                             (true/false: integer 1/0)
--   value.<key>               each scalar key of a dict value
--   tag.<tag>                 each tag of a list of tags (string = the tag)
--   tags.<key>                each key of a dict of tags (typed)
--   id                        the report's id_, when given
-- raw holds the value only when traits cannot carry it (null, a list, a
-- nested dict).  message_id: kaneda:id:<length of app>:<app>:<id_> for a
-- report with an id_ (a second copy is a duplicate, in any partition),
-- kaneda:<key> otherwise (key: a UUID the client makes per report, so a
-- retried call stores nothing twice).
--
-- Numeric reports also go into panko.metric_rollup at ingest: one row per
-- metric name, app, kind and minute (width 60) or hour (width 3600), with
-- count, sum, min, max and the newest value.  A series takes whole hours
-- and whole minutes of each bucket from it and the rest (the edges of
-- buckets that are not whole minutes) from the reports, so every bucket
-- is exact.  Rollup rows name the partition of their reports and are
-- deleted when it is dropped (the event trigger panko.rollup_drop).
--------------------------------------------------------------------------

CREATE TABLE panko.metric_rollup (
    name text COLLATE "C" NOT NULL,
    width integer NOT NULL CHECK (width IN (60, 3600)),
    bucket timestamptz NOT NULL,
    app_name text COLLATE "C" NOT NULL,
    metric text COLLATE "C" NOT NULL,
    relid oid NOT NULL,
    n bigint NOT NULL,
    total double precision NOT NULL,
    low double precision NOT NULL,
    high double precision NOT NULL,
    last_at timestamptz NOT NULL,
    last_value double precision NOT NULL,
    PRIMARY KEY (name, width, bucket, app_name, metric) INCLUDE (n, total, low, high)
);
CREATE INDEX metric_rollup_relid_idx ON panko.metric_rollup (relid);
CREATE INDEX metric_rollup_latest_idx ON panko.metric_rollup (metric, name, app_name, bucket DESC)
    INCLUDE (last_at, last_value) WHERE width = 3600;
COMMENT ON TABLE panko.metric_rollup IS
    'Per-minute and per-hour aggregates of Kaneda''s numeric reports, kept by panko.metric_report; the series functions read whole minutes and hours from it';
COMMENT ON COLUMN panko.metric_rollup.width IS 'Seconds: 60 (a minute) or 3600 (an hour)';
COMMENT ON COLUMN panko.metric_rollup.bucket IS 'Start of the minute or hour (UTC)';
COMMENT ON COLUMN panko.metric_rollup.metric IS 'gauge, counter, timing or a custom metric''s name';
COMMENT ON COLUMN panko.metric_rollup.relid IS 'The partition of panko.event holding the reports (rows are deleted when it is dropped)';
COMMENT ON COLUMN panko.metric_rollup.n IS 'Reports';
COMMENT ON COLUMN panko.metric_rollup.total IS 'Sum of their values';
COMMENT ON COLUMN panko.metric_rollup.low IS 'Smallest value';
COMMENT ON COLUMN panko.metric_rollup.high IS 'Largest value';
COMMENT ON COLUMN panko.metric_rollup.last_at IS 'Time of the newest report';
COMMENT ON COLUMN panko.metric_rollup.last_value IS 'Value of the newest report';
COMMENT ON INDEX panko.metric_rollup_relid_idx IS 'Rows of a dropped partition';
COMMENT ON INDEX panko.metric_rollup_latest_idx IS 'The newest hour of each series (metric_latest)';

-- Kaneda's reports carry no project_id, so members see none of them and
-- admins, auditors and panko_admin see all, as with the events.
ALTER TABLE panko.metric_rollup ENABLE ROW LEVEL SECURITY;
CREATE POLICY metric_rollup_visibility ON panko.metric_rollup FOR SELECT
    USING ((SELECT panko.caller_mode()) IN ('all', 'admin'));
COMMENT ON POLICY metric_rollup_visibility ON panko.metric_rollup IS
    'As panko.event for events without project_id: admins, auditors and panko_admin';

-- A JSON scalar as a Panko trait {"name","type","value"}; NULL when traits
-- cannot carry it (null, arrays, objects).
CREATE FUNCTION panko.metric_trait(name text, v jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE jsonb_typeof(v)
        WHEN 'string' THEN jsonb_build_object('name', name, 'type', 'string', 'value', v)
        WHEN 'boolean' THEN jsonb_build_object('name', name, 'type', 'integer', 'value', CASE WHEN v = 'true' THEN 1 ELSE 0 END)
        WHEN 'number' THEN jsonb_build_object('name', name,
                               'type', CASE WHEN v::text ~ '^-?[0-9]{1,18}$' THEN 'integer' ELSE 'float' END,
                               'value', v)
    END
$$;
COMMENT ON FUNCTION panko.metric_trait(text, jsonb) IS
    'A JSON scalar as a Panko trait (string; integral number: integer; other number: float; boolean: integer 1/0); NULL for null, lists, dicts';

-- The traits a report must have to match: its name (when given), its app
-- (when given), and its tags: a list needs each tag, a dict each key with
-- its value.
CREATE FUNCTION panko.metric_filter(name text, tags jsonb, app text) RETURNS panko.traits
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t jsonb := '[]';
BEGIN
    IF name IS NOT NULL THEN
        t := t || jsonb_build_array(jsonb_build_object('name', 'name', 'type', 'string', 'value', name));
    END IF;
    IF app IS NOT NULL THEN
        t := t || jsonb_build_array(jsonb_build_object('name', 'app_name', 'type', 'string', 'value', app));
    END IF;
    IF tags IS NULL OR tags = 'null' THEN
        RETURN panko.traits(t);
    END IF;
    CASE jsonb_typeof(tags)
        WHEN 'array' THEN
            IF EXISTS (SELECT 1 FROM jsonb_array_elements(tags) x WHERE jsonb_typeof(x) <> 'string') THEN
                RAISE EXCEPTION 'A list of tags holds strings only' USING ERRCODE = '22023',
                    HINT = 'Filter by ["tag", ...] or by {"key": value, ...}.';
            END IF;
            t := t || coalesce((SELECT jsonb_agg(panko.metric_trait('tag.' || (x #>> '{}'), x))
                                  FROM jsonb_array_elements(tags) x), '[]');
        WHEN 'object' THEN
            IF EXISTS (SELECT 1 FROM jsonb_each(tags) x WHERE panko.metric_trait('tags.' || x.key, x.value) IS NULL) THEN
                RAISE EXCEPTION 'A dict of tags maps keys to strings or numbers' USING ERRCODE = '22023',
                    HINT = 'Filter by ["tag", ...] or by {"key": value, ...}.';
            END IF;
            t := t || (SELECT jsonb_agg(panko.metric_trait('tags.' || x.key, x.value)) FROM jsonb_each(tags) x);
        ELSE
            RAISE EXCEPTION 'Tags must be a JSON list or object, not %', jsonb_typeof(tags) USING ERRCODE = '22023',
                HINT = 'Filter by ["tag", ...] or by {"key": value, ...}.';
    END CASE;
    RETURN panko.traits(t);
END
$$;
COMMENT ON FUNCTION panko.metric_filter(text, jsonb, text) IS
    'The traits a report must contain to match a metric name, a filter of tags (a list, or a dict) and an app (each optional)';

CREATE FUNCTION panko.metric_report(reports jsonb)
    RETURNS TABLE(ord integer, message_id text, status text, detail text)
LANGUAGE plpgsql VOLATILE STRICT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
-- partitions are created under panko's storage settings, not the caller's
SET default_tablespace = '' SET default_table_access_method = 'heap'
AS $$
DECLARE
    batch jsonb := CASE jsonb_typeof(reports) WHEN 'array' THEN reports ELSE jsonb_build_array(reports) END;
    r jsonb;
    i integer := 0;
    k text;
    problem text;
    bad integer[] := '{}';
    ts timestamptz;
    events jsonb;
    prepared jsonb;
    skip text[] := '{}';
BEGIN
    -- Each report is checked first; a bad one is answered as rejected and
    -- the others are stored.
    FOR r IN SELECT x FROM jsonb_array_elements(batch) x LOOP
        i := i + 1;
        problem := NULL;
        IF jsonb_typeof(r) IS DISTINCT FROM 'object' THEN
            problem := 'a report is a JSON object';
        ELSE
            SELECT string_agg(x, ', ') INTO k FROM jsonb_object_keys(r) x
             WHERE x NOT IN ('app_name', 'name', 'metric', 'value', 'tags', 'id', 'host', 'time', 'key');
            IF k IS NOT NULL THEN
                problem := 'unknown field ' || k;
            END IF;
            FOREACH k IN ARRAY ARRAY['app_name', 'name', 'metric'] LOOP
                IF problem IS NULL AND (jsonb_typeof(r->k) IS DISTINCT FROM 'string' OR r->>k = '') THEN
                    problem := k || ' must be a non-empty string';
                ELSIF problem IS NULL AND octet_length(r->>k) > 200 THEN
                    problem := k || ' is longer than 200 bytes';
                END IF;
            END LOOP;
            IF problem IS NULL AND r ? 'host' AND jsonb_typeof(r->'host') NOT IN ('string', 'null') THEN
                problem := 'host must be a string';
            END IF;
            IF problem IS NULL AND r ? 'tags' AND jsonb_typeof(r->'tags') NOT IN ('array', 'object', 'null') THEN
                problem := 'tags must be a list or a dict';
            ELSIF problem IS NULL AND jsonb_typeof(r->'tags') = 'array'
                  AND EXISTS (SELECT 1 FROM jsonb_array_elements(r->'tags') x
                               WHERE jsonb_typeof(x) <> 'string' OR x #>> '{}' = '') THEN
                problem := 'a list of tags holds non-empty strings only';
            ELSIF problem IS NULL AND jsonb_typeof(r->'tags') = 'object'
                  AND EXISTS (SELECT 1 FROM jsonb_each(r->'tags') x
                               WHERE panko.metric_trait('tags.' || x.key, x.value) IS NULL) THEN
                problem := 'a dict of tags maps keys to strings, numbers or booleans';
            END IF;
            IF problem IS NULL AND r ? 'id' AND jsonb_typeof(r->'id') NOT IN ('string', 'number', 'null') THEN
                problem := 'id must be a string or a number';
            END IF;
            IF problem IS NULL AND r ? 'key' AND jsonb_typeof(r->'key') NOT IN ('string', 'null') THEN
                problem := 'key must be a string';
            END IF;
            IF problem IS NULL AND jsonb_typeof(r->'time') IS DISTINCT FROM 'string' AND r->'time' IS NOT NULL
               AND jsonb_typeof(r->'time') <> 'null' THEN
                problem := 'time must be an ISO 8601 string';
            ELSIF problem IS NULL AND jsonb_typeof(r->'time') = 'string' THEN
                BEGIN
                    ts := panko.parse_timestamp(r->>'time', 'time');
                EXCEPTION WHEN data_exception THEN
                    problem := 'bad time ' || left(r->>'time', 64);
                END;
            END IF;
        END IF;
        IF problem IS NOT NULL THEN
            bad := bad || i;
            ord := i; message_id := NULL; status := 'rejected'; detail := problem;
            RETURN NEXT;
        END IF;
    END LOOP;
    IF cardinality(bad) = i THEN
        RETURN;
    END IF;

    -- The reports to store, once (a missing key is made here).
    SELECT jsonb_agg(jsonb_build_object(
               'ord', x.ord, 'rep', x.r, 'generated', coalesce(panko.parse_timestamp(x.r->>'time', 'time'), now()),
               'name', x.r->>'name', 'app_name', x.r->>'app_name', 'metric', x.r->>'metric',
               'v', CASE jsonb_typeof(x.r->'value') WHEN 'number' THEN x.r->'value'
                                                    WHEN 'boolean' THEN to_jsonb(CASE WHEN x.r->'value' = 'true' THEN 1 ELSE 0 END) END,
               'message_id', CASE WHEN jsonb_typeof(x.r->'id') IN ('string', 'number')
                                  THEN 'kaneda:id:' || octet_length(x.r->>'app_name') || ':' || (x.r->>'app_name') || ':' || (x.r->>'id')
                                  ELSE 'kaneda:' || coalesce(x.r->>'key', gen_random_uuid()::text) END))
      INTO prepared
      FROM jsonb_array_elements(batch) WITH ORDINALITY AS x(r, ord)
     WHERE x.ord <> ALL (bad);

    SELECT jsonb_agg(jsonb_build_object(
               'message_id', b.message_id,
               'event_type', 'kaneda.' || CASE WHEN b.metric IN ('gauge', 'counter', 'timing', 'event') THEN b.metric ELSE 'custom' END,
               'generated', panko.iso_timestamp(b.generated),
               -- (panko.metric_trait, written out: a function with its own
               -- search_path is not inlined, and this runs for every trait)
               'traits', (SELECT jsonb_agg(CASE jsonb_typeof(p.v)
                              WHEN 'string' THEN jsonb_build_object('name', p.n, 'type', 'string', 'value', p.v)
                              WHEN 'boolean' THEN jsonb_build_object('name', p.n, 'type', 'integer',
                                                                     'value', CASE WHEN p.v = 'true' THEN 1 ELSE 0 END)
                              ELSE jsonb_build_object('name', p.n,
                                       'type', CASE WHEN p.v::text ~ '^-?[0-9]{1,18}$' THEN 'integer' ELSE 'float' END,
                                       'value', p.v) END)
                  FROM (SELECT 'app_name' AS n, to_jsonb(b.app_name) AS v
                        UNION ALL SELECT 'name', to_jsonb(b.name)
                        UNION ALL SELECT 'host', b.rep->'host'
                        UNION ALL SELECT 'metric', to_jsonb(b.metric) WHERE b.metric NOT IN ('gauge', 'counter', 'timing', 'event')
                        UNION ALL SELECT 'id', to_jsonb(b.rep->>'id') WHERE jsonb_typeof(b.rep->'id') IN ('string', 'number')
                        UNION ALL SELECT 'value', b.rep->'value'
                        UNION ALL SELECT 'value.' || v.key, v.value
                                    FROM jsonb_each(CASE jsonb_typeof(b.rep->'value') WHEN 'object' THEN b.rep->'value' ELSE '{}' END) v
                        UNION ALL SELECT 'tag.' || (g #>> '{}'), g
                                    FROM jsonb_array_elements(CASE jsonb_typeof(b.rep->'tags') WHEN 'array' THEN b.rep->'tags' ELSE '[]' END) g
                        UNION ALL SELECT 'tags.' || g.key, g.value
                                    FROM jsonb_each(CASE jsonb_typeof(b.rep->'tags') WHEN 'object' THEN b.rep->'tags' ELSE '{}' END) g
                       ) p WHERE jsonb_typeof(p.v) IN ('string', 'boolean', 'number')),
               'raw', CASE WHEN b.rep->'value' IS NULL OR jsonb_typeof(b.rep->'value') IN ('null', 'array')
                                OR (jsonb_typeof(b.rep->'value') = 'object'
                                    AND EXISTS (SELECT 1 FROM jsonb_each(b.rep->'value') v
                                                 WHERE jsonb_typeof(v.value) NOT IN ('string', 'boolean', 'number')))
                           THEN jsonb_build_object('value', coalesce(b.rep->'value', 'null')) END)
           ORDER BY b.ord)
      INTO events
      FROM jsonb_to_recordset(prepared) AS b(ord integer, rep jsonb, generated timestamptz, name text, app_name text,
                                            metric text, v double precision, message_id text);

    -- record_events answers for the reports it did not store: duplicates
    -- (an id_ already stored) and rejected ones.
    FOR r IN SELECT to_jsonb(p) FROM panko.record_events(events) p LOOP
        -- (a copy repeated in this batch: the first one is stored)
        IF r->>'detail' IS DISTINCT FROM 'repeated earlier in this batch' THEN
            skip := skip || (r->>'message_id');
        END IF;
        ord := (SELECT max((b->>'ord')::integer) FROM jsonb_array_elements(prepared) b
                 WHERE b->>'message_id' = r->>'message_id');
        message_id := r->>'message_id'; status := r->>'status';
        detail := regexp_replace(r->>'detail', '^event [0-9]+: ', '');
        RETURN NEXT;
    END LOOP;

    -- The rollup: each minute and hour of the numeric reports stored,
    -- with the partition that holds them.
    INSERT INTO panko.metric_rollup AS m (name, width, bucket, app_name, metric, relid, n, total, low, high, last_at, last_value)
    SELECT b.name, w.width, w.bucket, b.app_name, b.metric, min(b.relid), count(*), sum(b.v), min(b.v), max(b.v),
           max(b.generated), (array_agg(b.v ORDER BY b.generated DESC, b.ord DESC))[1]
      FROM (WITH b AS MATERIALIZED (
                SELECT DISTINCT ON (b.message_id) b.*, date_bin('1 hour', b.generated, '2000-01-01') AS hour
                  FROM jsonb_to_recordset(prepared) AS b(ord integer, generated timestamptz, name text, app_name text,
                                                        metric text, v double precision, message_id text)
                 WHERE b.v IS NOT NULL AND b.metric <> 'event' AND b.message_id <> ALL (skip)
                 ORDER BY b.message_id, b.ord
            ), h AS (
                -- An hour lies in one partition: one probe of the
                -- message_id index per hour finds it.
                SELECT DISTINCT ON (b.hour) b.hour,
                       (SELECT e.tableoid::oid FROM panko.event e
                         WHERE e.retention = 'metric' AND e.message_id = b.message_id AND e.generated = b.generated
                         LIMIT 1) AS relid
                  FROM b ORDER BY b.hour, b.ord
            )
            SELECT b.*, h.relid FROM b JOIN h USING (hour)) b
     CROSS JOIN LATERAL (VALUES (60, date_bin('1 minute', b.generated, '2000-01-01')),
                                (3600, date_bin('1 hour', b.generated, '2000-01-01'))) AS w(width, bucket)
     WHERE b.relid IS NOT NULL
     GROUP BY b.name, w.width, w.bucket, b.app_name, b.metric
    ON CONFLICT (name, width, bucket, app_name, metric) DO UPDATE
       SET n = m.n + excluded.n, total = m.total + excluded.total,
           low = least(m.low, excluded.low), high = greatest(m.high, excluded.high),
           last_at = greatest(m.last_at, excluded.last_at),
           last_value = CASE WHEN excluded.last_at >= m.last_at THEN excluded.last_value ELSE m.last_value END;
END
$$;
COMMENT ON FUNCTION panko.metric_report(jsonb) IS
    'Store Kaneda reports (a JSON object or array of {app_name, name, metric, value, tags, id, host, time, key}) as kaneda.* events and their rollup; returns one row per report NOT stored: duplicate (its id was stored before) or rejected, with why';

-- Microseconds since the epoch, and back; floor and ceiling to a multiple.
CREATE FUNCTION panko.metric_us(ts timestamptz) RETURNS bigint
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT (extract(epoch FROM ts) * 1000000)::bigint $$;
COMMENT ON FUNCTION panko.metric_us(timestamptz) IS 'Microseconds since 1970-01-01 UTC';

CREATE FUNCTION panko.metric_floor(us bigint, m bigint) RETURNS bigint
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT us - ((us % m) + m) % m $$;
COMMENT ON FUNCTION panko.metric_floor(bigint, bigint) IS 'The largest multiple of m not above us (m > 0)';

CREATE FUNCTION panko.metric_ts(us bigint) RETURNS timestamptz
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT timestamptz '1970-01-01 00:00:00+00' + make_interval(secs => us / 1000000.0) $$;
COMMENT ON FUNCTION panko.metric_ts(bigint) IS 'The time that many microseconds after 1970-01-01 UTC';

-- The aggregates of bucket k = [f + k*w, min(f + (k+1)*w, t)) of a
-- metric's numeric reports.  Without tags, whole hours and then whole
-- minutes of each bucket come from the rollup and what is left from the
-- reports; adjacent pieces read from one source are read as one range.
-- With tags, from the reports only (GIN on the traits).
CREATE FUNCTION panko.metric_buckets(name text, f timestamptz, t timestamptz, w bigint, tags jsonb, app text)
    RETURNS TABLE(k bigint, n bigint, total double precision, low double precision, high double precision)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
-- Its statements read panko.event with the time bounds as parameters: a
-- generic plan, made once per session and pruned at run time, costs far
-- less than planning every partition at every call (a custom plan).
SET plan_cache_mode = force_generic_plan
-- (helpers written out: a function with its own search_path is not inlined)
AS $$
DECLARE
    fu bigint := (extract(epoch FROM f) * 1000000)::bigint;
    tu bigint := (extract(epoch FROM t) * 1000000)::bigint;
    nb bigint;
    filt panko.traits;
    types integer[];
    raw_only boolean := tags IS NOT NULL AND tags <> 'null' AND tags NOT IN ('[]', '{}');
    lvls integer[];
    los timestamptz[];
    his timestamptz[];
    hx bigint;
    mx bigint;
    h1 bigint;
    h2 bigint;
    m1 bigint;
    m4 bigint;
    ts_h1 timestamptz;
    ts_h2 timestamptz;
    ts_m1 timestamptz;
    ts_m4 timestamptz;
    bw interval;
BEGIN
    IF name IS NULL OR f IS NULL OR t IS NULL OR w IS NULL OR w <= 0 OR fu >= tu THEN
        RETURN;
    END IF;
    nb := (tu - fu + w - 1) / w;
    IF NOT raw_only AND (nb = 1 OR (w % 60000000 = 0 AND fu % 60000000 = 0
                                    AND (tu - fu <= 86400000000 OR (w % 3600000000 = 0 AND fu % 3600000000 = 0)))) THEN
        -- One bucket, or every bucket boundary is a whole minute (and a
        -- whole hour, or the window is at most a day): whole hours (when
        -- every boundary is one, or one bucket), whole minutes, and the
        -- reports of the edges (less than a minute each), each read as
        -- one range by static statements (plans cached, partitions pruned
        -- at run time).
        h1 := fu + ((3600000000 - fu % 3600000000) % 3600000000);
        h2 := tu - (tu % 3600000000 + 3600000000) % 3600000000;
        IF h1 >= h2 OR (nb > 1 AND (w % 3600000000 <> 0 OR fu % 3600000000 <> 0)) THEN
            h1 := fu; h2 := fu;
        END IF;
        m1 := fu + ((60000000 - fu % 60000000) % 60000000);
        m4 := tu - (tu % 60000000 + 60000000) % 60000000;
        IF m1 >= m4 THEN
            m1 := fu; m4 := fu;     -- (no whole minute: all from the reports)
        END IF;
        IF h1 = h2 THEN h1 := m1; h2 := m1; END IF;
        -- minutes: [m1, h1) and [h2, m4); reports: [f, m1) and [m4, t)
        ts_h1 := timestamptz 'epoch' + h1 * interval '1 microsecond';
        ts_h2 := timestamptz 'epoch' + h2 * interval '1 microsecond';
        ts_m1 := timestamptz 'epoch' + m1 * interval '1 microsecond';
        ts_m4 := timestamptz 'epoch' + m4 * interval '1 microsecond';
        bw := w * interval '1 microsecond';
        IF m1 = fu AND m4 = tu AND m1 < m4 THEN
            RETURN QUERY
            SELECT ((extract(epoch FROM x.s - f) * 1000000)::bigint) / w, sum(x.n::double precision)::bigint, sum(x.total), min(x.low), max(x.high)
              FROM (SELECT date_bin(bw, r.bucket, f) AS s, r.n, r.total, r.low, r.high
                      FROM panko.metric_rollup r
                     WHERE r.name = metric_buckets.name AND r.width = 3600 AND r.bucket >= ts_h1 AND r.bucket < ts_h2
                       AND (app IS NULL OR r.app_name = app)
                    UNION ALL
                    SELECT date_bin(bw, r.bucket, f), r.n, r.total, r.low, r.high
                      FROM panko.metric_rollup r
                     WHERE r.name = metric_buckets.name AND r.width = 60 AND r.bucket >= ts_m1 AND r.bucket < ts_h1
                       AND (app IS NULL OR r.app_name = app)
                    UNION ALL
                    SELECT date_bin(bw, r.bucket, f), r.n, r.total, r.low, r.high
                      FROM panko.metric_rollup r
                     WHERE r.name = metric_buckets.name AND r.width = 60 AND r.bucket >= ts_h2 AND r.bucket < ts_m4
                       AND (app IS NULL OR r.app_name = app)) x
             GROUP BY x.s;
            RETURN;
        END IF;
        filt := panko.metric_filter(name, NULL, app);
        SELECT array_agg(et.id) INTO types FROM panko.event_type et
         WHERE et.name IN ('kaneda.gauge', 'kaneda.counter', 'kaneda.timing', 'kaneda.custom');
        RETURN QUERY
        SELECT ((extract(epoch FROM x.s - f) * 1000000)::bigint) / w, sum(x.n::double precision)::bigint, sum(x.total), min(x.low), max(x.high)
          FROM (SELECT date_bin(bw, r.bucket, f) AS s, r.n, r.total, r.low, r.high
                  FROM panko.metric_rollup r
                 WHERE r.name = metric_buckets.name AND r.width = 3600 AND r.bucket >= ts_h1 AND r.bucket < ts_h2
                   AND (app IS NULL OR r.app_name = app)
                UNION ALL
                SELECT date_bin(bw, r.bucket, f), r.n, r.total, r.low, r.high
                  FROM panko.metric_rollup r
                 WHERE r.name = metric_buckets.name AND r.width = 60 AND r.bucket >= ts_m1 AND r.bucket < ts_h1
                   AND (app IS NULL OR r.app_name = app)
                UNION ALL
                SELECT date_bin(bw, r.bucket, f), r.n, r.total, r.low, r.high
                  FROM panko.metric_rollup r
                 WHERE r.name = metric_buckets.name AND r.width = 60 AND r.bucket >= ts_h2 AND r.bucket < ts_m4
                   AND (app IS NULL OR r.app_name = app)
                UNION ALL
                SELECT date_bin(bw, e.generated, f), 1, e.v, e.v, e.v
                  FROM (SELECT e.generated,
                               coalesce(panko.trait_float(e.traits, 'value'),
                                        panko.trait_int(e.traits, 'value')::double precision) AS v
                          FROM panko.event e
                         WHERE e.retention = 'metric' AND e.generated >= f AND e.generated < ts_m1
                           AND e.traits OPERATOR(panko.@>) filt AND e.event_type_id = ANY (types)
                        UNION ALL
                        SELECT e.generated,
                               coalesce(panko.trait_float(e.traits, 'value'),
                                        panko.trait_int(e.traits, 'value')::double precision)
                          FROM panko.event e
                         WHERE e.retention = 'metric' AND e.generated >= ts_m4 AND e.generated < t
                           AND e.traits OPERATOR(panko.@>) filt AND e.event_type_id = ANY (types)) e
                 WHERE e.v IS NOT NULL) x
         GROUP BY x.s;
        RETURN;
    END IF;
    filt := panko.metric_filter(name, tags, app);
    SELECT array_agg(et.id) INTO types FROM panko.event_type et
     WHERE et.name IN ('kaneda.gauge', 'kaneda.counter', 'kaneda.timing', 'kaneda.custom');
    IF raw_only THEN
        -- With tags: the reports of the window, one range (the GIN index
        -- on the traits where it is selective).
        RETURN QUERY
        SELECT ((extract(epoch FROM e.generated) * 1000000)::bigint - fu) / w, count(*), sum(e.v), min(e.v), max(e.v)
          FROM (SELECT e.generated,
                       coalesce(panko.trait_float(e.traits, 'value'),
                                panko.trait_int(e.traits, 'value')::double precision) AS v
                  FROM panko.event e
                 WHERE e.retention = 'metric' AND e.generated >= f AND e.generated < t
                   AND e.traits OPERATOR(panko.@>) filt AND e.event_type_id = ANY (types)) e
         WHERE e.v IS NOT NULL
         GROUP BY 1;
        RETURN;
    ELSIF w % 60000000 = 0 AND fu % 60000000 = 0 THEN
        -- Every bucket boundary is a whole minute (and a whole hour when w
        -- and from are): whole hours, then whole minutes, then the rest,
        -- without a piece per bucket.
        mx := tu - ((tu % 60000000) + 60000000) % 60000000;
        hx := CASE WHEN w % 3600000000 = 0 AND fu % 3600000000 = 0
                   THEN tu - ((tu % 3600000000) + 3600000000) % 3600000000 ELSE fu END;
        lvls := ARRAY[3600, 60, 0];
        los := ARRAY[f, timestamptz 'epoch' + hx * interval '1 microsecond', timestamptz 'epoch' + mx * interval '1 microsecond'];
        his := ARRAY[timestamptz 'epoch' + hx * interval '1 microsecond', timestamptz 'epoch' + mx * interval '1 microsecond', t];
    ELSE
    WITH RECURSIVE b AS (
        SELECT fu + i * w AS lo, least(fu + (i + 1) * w, tu) AS hi
          FROM generate_series(0::bigint, nb - 1) i
    ), h AS (
        SELECT b.lo, b.hi,
               CASE WHEN raw_only THEN b.hi ELSE ((b.lo + 3599999999) - ((((b.lo + 3599999999) % 3600000000) + 3600000000) % 3600000000)) END AS hlo,
               CASE WHEN raw_only THEN b.hi ELSE ((b.hi) - ((((b.hi) % 3600000000) + 3600000000) % 3600000000)) END AS hhi
          FROM b
    ), rest AS (
        SELECT h.lo AS a, CASE WHEN h.hlo < h.hhi THEN h.hlo ELSE h.hi END AS z FROM h
        UNION ALL
        SELECT h.hhi, h.hi FROM h WHERE h.hlo < h.hhi
    ), m AS (
        SELECT r.a, r.z,
               CASE WHEN raw_only THEN r.z ELSE ((r.a + 59999999) - ((((r.a + 59999999) % 60000000) + 60000000) % 60000000)) END AS mlo,
               CASE WHEN raw_only THEN r.z ELSE ((r.z) - ((((r.z) % 60000000) + 60000000) % 60000000)) END AS mhi
          FROM rest r WHERE r.a < r.z
    ), parts AS (
        SELECT 3600 AS lvl, h.hlo AS a, h.hhi AS z FROM h WHERE h.hlo < h.hhi
        UNION ALL SELECT 60, m.mlo, m.mhi FROM m WHERE m.mlo < m.mhi
        UNION ALL SELECT 0, m.a, CASE WHEN m.mlo < m.mhi THEN m.mlo ELSE m.z END FROM m
        UNION ALL SELECT 0, m.mhi, m.z FROM m WHERE m.mlo < m.mhi
    ), brk AS (
        SELECT p.lvl, p.a, p.z,
               CASE WHEN p.a = lag(p.z) OVER (PARTITION BY p.lvl ORDER BY p.a) THEN 0 ELSE 1 END AS brk
          FROM parts p WHERE p.a < p.z
    ), island AS (
        SELECT g.lvl, (timestamptz 'epoch' + min(g.a) * interval '1 microsecond') AS a, (timestamptz 'epoch' + max(g.z) * interval '1 microsecond') AS z
          FROM (SELECT brk.*, sum(brk.brk) OVER (PARTITION BY brk.lvl ORDER BY brk.a) AS g FROM brk) g
         GROUP BY g.lvl, g.g
    )
    SELECT array_agg(i.lvl), array_agg(i.a), array_agg(i.z) INTO lvls, los, his FROM island i;
    END IF;
    RETURN QUERY
    WITH island AS (
        SELECT i.lvl, i.a, i.z FROM unnest(lvls, los, his) AS i(lvl, a, z) WHERE i.a < i.z
    ), piece AS (
        SELECT ((extract(epoch FROM r.bucket) * 1000000)::bigint - fu) / w AS k, r.n, r.total, r.low, r.high
          FROM island i
          JOIN LATERAL (SELECT r.bucket, r.n, r.total, r.low, r.high
                          FROM panko.metric_rollup r
                         WHERE r.name = metric_buckets.name AND r.width = i.lvl
                           AND r.bucket >= i.a AND r.bucket < i.z
                           AND (app IS NULL OR r.app_name = app)
                        OFFSET 0) r ON true     -- (one index range per island)
         WHERE i.lvl > 0
        UNION ALL
        SELECT ((extract(epoch FROM e.generated) * 1000000)::bigint - fu) / w, 1, e.v, e.v, e.v
          FROM island i
          JOIN LATERAL (SELECT e.generated,
                               coalesce(panko.trait_float(e.traits, 'value'),
                                        panko.trait_int(e.traits, 'value')::double precision) AS v
                          FROM panko.event e
                         WHERE e.retention = 'metric' AND e.generated >= i.a AND e.generated < i.z
                           -- (a filter: the islands are short, the time
                           -- index alone reads them)
                           AND (e.traits OPERATOR(panko.@>) filt) IS TRUE
                           AND e.event_type_id = ANY (types)
                        OFFSET 0) e ON e.v IS NOT NULL
         WHERE i.lvl = 0
    )
    SELECT p.k, sum(p.n)::bigint, sum(p.total), min(p.low), max(p.high)
      FROM piece p GROUP BY p.k;
END
$$;
COMMENT ON FUNCTION panko.metric_buckets(text, timestamptz, timestamptz, bigint, jsonb, text) IS
    'Count, sum, min and max of a metric''s numeric reports in each bucket k = [f + k*w, f + (k+1)*w) of [f, t) (w in microseconds), filtered by tags and app; from the rollup where whole minutes and hours allow';

-- The public series functions check their arguments here, once.
CREATE FUNCTION panko.metric_check_window(bucket interval, "from" timestamptz, "to" timestamptz) RETURNS bigint
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    w bigint;
BEGIN
    IF bucket IS NULL OR "from" IS NULL OR "to" IS NULL THEN
        RAISE EXCEPTION 'bucket, from and to are required' USING ERRCODE = '22004';
    END IF;
    IF extract(month FROM bucket) <> 0 OR extract(year FROM bucket) <> 0
       OR bucket < interval '1 second' OR bucket > interval '1 day' THEN
        RAISE EXCEPTION 'A bucket is from 1 second to 1 day, not %', bucket USING ERRCODE = '22023',
            HINT = 'e.g. interval ''1 minute'' or ''1 hour''';
    END IF;
    IF NOT isfinite("from") OR NOT isfinite("to") OR "from" >= "to" THEN
        RAISE EXCEPTION 'The window [%, %) is empty or not finite', "from", "to" USING ERRCODE = '22023';
    END IF;
    w := (extract(epoch FROM bucket) * 1000000)::bigint;
    IF ((extract(epoch FROM "to") * 1000000)::bigint - (extract(epoch FROM "from") * 1000000)::bigint) / w >= 1000000 THEN
        RAISE EXCEPTION 'The window holds more than 1,000,000 buckets of %', bucket USING ERRCODE = '22023',
            HINT = 'Take a larger bucket or a shorter window.';
    END IF;
    RETURN w;
END
$$;
COMMENT ON FUNCTION panko.metric_check_window(interval, timestamptz, timestamptz) IS
    'The bucket in microseconds, after checking it (1 s to 1 day) and the window (finite, from < to, at most 1,000,000 buckets)';

-- The dashboard's case (no tag filter; every boundary a whole minute, and
-- whole hours or at most a day) is answered from the rollup alone, its
-- rows added up in C as they stream out of its primary key (no GROUP BY,
-- no sort); anything else from metric_buckets.  In src/metric.c.
CREATE FUNCTION panko.metric_series(name text, bucket interval, "from" timestamptz, "to" timestamptz,
                                    tags jsonb DEFAULT NULL, app text DEFAULT NULL)
    RETURNS TABLE(bucket_start timestamptz, bucket_end timestamptz, count bigint, sum double precision,
                  avg double precision, min double precision, max double precision)
AS 'MODULE_PATHNAME', 'metric_series'
LANGUAGE C STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off;
COMMENT ON FUNCTION panko.metric_series(text, interval, timestamptz, timestamptz, jsonb, text) IS
    'A metric''s numeric reports per bucket (1 s to 1 day, aligned on from) in [from, to): count, sum, avg, min, max; buckets without reports are left out; tags (a list or a dict) and app filter';

CREATE FUNCTION panko.metric_running_total(name text, bucket interval, "from" timestamptz, "to" timestamptz,
                                           tags jsonb DEFAULT NULL, app text DEFAULT NULL)
    RETURNS TABLE(bucket_start timestamptz, bucket_end timestamptz, count bigint, sum double precision,
                  total double precision)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
DECLARE
    w bigint := panko.metric_check_window(bucket, "from", "to");
    fu bigint := (extract(epoch FROM "from") * 1000000)::bigint;
    first timestamptz;
    before double precision := 0;
BEGIN
    IF name IS NULL THEN
        RAISE EXCEPTION 'A metric name is required' USING ERRCODE = '22004';
    END IF;
    -- Everything stored before from: one bucket from the first hour of
    -- the metric (every numeric report is in an hour of the rollup).
    SELECT min(r.bucket) INTO first FROM panko.metric_rollup r
     WHERE r.name = metric_running_total.name AND r.width = 3600;
    IF first < "from" THEN
        SELECT coalesce(b.total, 0) INTO before
          FROM panko.metric_buckets(name, first, "from", (extract(epoch FROM "from") * 1000000)::bigint - (extract(epoch FROM first) * 1000000)::bigint, tags, app) b;
        before := coalesce(before, 0);
    END IF;
    RETURN QUERY
    SELECT (timestamptz 'epoch' + (fu + b.k * w) * interval '1 microsecond'),
           least(timestamptz 'epoch' + (fu + (b.k + 1) * w) * interval '1 microsecond', metric_running_total."to"),
           b.n, b.total, before + sum(b.total) OVER (ORDER BY b.k)
      FROM panko.metric_buckets(name, "from", "to", w, tags, app) b
     ORDER BY b.k;
END
$$;
COMMENT ON FUNCTION panko.metric_running_total(text, interval, timestamptz, timestamptz, jsonb, text) IS
    'A counter per bucket in [from, to): reports, their sum, and the running total (every report stored before the end of the bucket, before from included); tags and app filter';

CREATE FUNCTION panko.metric_latest(app text DEFAULT NULL, name text DEFAULT NULL)
    RETURNS TABLE(app_name text, metric_name text, generated timestamptz, value double precision)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
    -- Each (name, app) of the gauges in turn (a skip scan of the index),
    -- then its newest hour.
    WITH RECURSIVE s AS (
        (SELECT r.name, r.app_name FROM panko.metric_rollup r
          WHERE r.width = 3600 AND r.metric = 'gauge'
            AND (metric_latest.name IS NULL OR r.name = metric_latest.name)
            AND (metric_latest.app IS NULL OR r.app_name = metric_latest.app)
          ORDER BY r.name, r.app_name LIMIT 1)
        UNION ALL
        SELECT x.name, x.app_name FROM s
          CROSS JOIN LATERAL (
              SELECT r.name, r.app_name FROM panko.metric_rollup r
               WHERE r.width = 3600 AND r.metric = 'gauge' AND (r.name, r.app_name) > (s.name, s.app_name)
                 AND (metric_latest.name IS NULL OR r.name = metric_latest.name)
                 AND (metric_latest.app IS NULL OR r.app_name = metric_latest.app)
               ORDER BY r.name, r.app_name LIMIT 1) x
    )
    SELECT s.app_name::text, s.name::text, l.last_at, l.last_value
      FROM s CROSS JOIN LATERAL (
          SELECT r.last_at, r.last_value FROM panko.metric_rollup r
           WHERE r.width = 3600 AND r.metric = 'gauge' AND r.name = s.name AND r.app_name = s.app_name
           ORDER BY r.bucket DESC LIMIT 1) l
     ORDER BY s.app_name, s.name
$$;
COMMENT ON FUNCTION panko.metric_latest(text, text) IS
    'The newest value of each gauge (of one app, or one name, or all): app, name, when, value';

-- A report's value and tags as Kaneda gave them (from the traits, or raw).
CREATE FUNCTION panko.metric_value(traits panko.traits, raw jsonb) RETURNS jsonb
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN raw ? 'value' THEN raw->'value'
                WHEN traits OPERATOR(panko.?) 'value'
                THEN (SELECT panko.metric_jsonb(t.type, t.value) FROM panko.each_trait(traits) t
                       WHERE t.name = 'value' LIMIT 1)
                ELSE (SELECT jsonb_object_agg(substr(t.name, 7), panko.metric_jsonb(t.type, t.value))
                        FROM panko.each_trait(traits) t WHERE t.name LIKE 'value.%')
           END
$$;
COMMENT ON FUNCTION panko.metric_value(panko.traits, jsonb) IS
    'The value of a Kaneda report: the value trait, the dict of its value.<key> traits, or raw''s value';

CREATE FUNCTION panko.metric_tags(traits panko.traits) RETURNS jsonb
LANGUAGE sql STABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce((SELECT jsonb_agg(substr(t.name, 5) ORDER BY t.name) FROM panko.each_trait(traits) t
                      WHERE t.name LIKE 'tag.%'),
                    (SELECT jsonb_object_agg(substr(t.name, 6), panko.metric_jsonb(t.type, t.value))
                       FROM panko.each_trait(traits) t WHERE t.name LIKE 'tags.%'))
$$;
COMMENT ON FUNCTION panko.metric_tags(panko.traits) IS
    'The tags of a Kaneda report: a list (sorted) or a dict; NULL when it had none';

CREATE FUNCTION panko.metric_jsonb(type text, value text) RETURNS jsonb
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE type WHEN 'integer' THEN to_jsonb(value::bigint)
                     WHEN 'float' THEN to_jsonb(value::double precision)
                     ELSE to_jsonb(value) END
$$;
COMMENT ON FUNCTION panko.metric_jsonb(text, text) IS 'A trait''s value (panko.each_trait) as JSON: numbers as numbers';

CREATE FUNCTION panko.metric_events(app text, "from" timestamptz, "to" timestamptz, name text DEFAULT NULL,
                                    "limit" integer DEFAULT NULL)
    RETURNS TABLE(generated timestamptz, event_name text, host text, value jsonb, tags jsonb, message_id text)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
BEGIN
    IF app IS NULL OR "from" IS NULL OR "to" IS NULL THEN
        RAISE EXCEPTION 'app, from and to are required' USING ERRCODE = '22004';
    END IF;
    IF "limit" < 0 THEN
        RAISE EXCEPTION 'limit must not be negative' USING ERRCODE = '22023';
    END IF;
    RETURN QUERY
    SELECT e.generated, panko.trait_text(e.traits, 'name'), panko.trait_text(e.traits, 'host'),
           panko.metric_value(e.traits, e.raw), panko.metric_tags(e.traits), e.message_id::text
      FROM panko.event e
     WHERE e.generated >= metric_events."from" AND e.generated < metric_events."to"
       AND e.traits OPERATOR(panko.@>) panko.metric_filter(metric_events.name, NULL, app)
       AND e.event_type_id = (SELECT t.id FROM panko.event_type t WHERE t.name = 'kaneda.event')
     ORDER BY e.generated, e.message_id
     LIMIT metric_events."limit";
END
$$;
COMMENT ON FUNCTION panko.metric_events(text, timestamptz, timestamptz, text, integer) IS
    'The events (Metrics.event) of an app in [from, to), oldest first (at most limit): when, name, host, text, tags, message_id';

-- Privileges.  metric_report stores with panko's rights (as record_events)
-- for panko_writer; the readers run as panko_query, so row-level security
-- judges the caller.
REVOKE ALL ON panko.metric_rollup FROM PUBLIC;
GRANT SELECT ON panko.metric_rollup TO panko_auditor, panko_query;
REVOKE ALL ON FUNCTION panko.metric_trait(text, jsonb),
    panko.metric_filter(text, jsonb, text), panko.metric_report(jsonb), panko.metric_us(timestamptz),
    panko.metric_floor(bigint, bigint), panko.metric_ts(bigint),
    panko.metric_buckets(text, timestamptz, timestamptz, bigint, jsonb, text),
    panko.metric_check_window(interval, timestamptz, timestamptz),
    panko.metric_series(text, interval, timestamptz, timestamptz, jsonb, text),
    panko.metric_running_total(text, interval, timestamptz, timestamptz, jsonb, text),
    panko.metric_latest(text, text), panko.metric_value(panko.traits, jsonb), panko.metric_tags(panko.traits),
    panko.metric_jsonb(text, text), panko.metric_events(text, timestamptz, timestamptz, text, integer)
FROM PUBLIC;
ALTER FUNCTION panko.metric_series(text, interval, timestamptz, timestamptz, jsonb, text) OWNER TO panko_query;
ALTER FUNCTION panko.metric_running_total(text, interval, timestamptz, timestamptz, jsonb, text) OWNER TO panko_query;
ALTER FUNCTION panko.metric_latest(text, text) OWNER TO panko_query;
ALTER FUNCTION panko.metric_events(text, timestamptz, timestamptz, text, integer) OWNER TO panko_query;
GRANT EXECUTE ON FUNCTION panko.metric_report(jsonb) TO panko_writer;
GRANT EXECUTE ON FUNCTION panko.metric_series(text, interval, timestamptz, timestamptz, jsonb, text),
    panko.metric_running_total(text, interval, timestamptz, timestamptz, jsonb, text),
    panko.metric_latest(text, text), panko.metric_events(text, timestamptz, timestamptz, text, integer),
    panko.metric_value(panko.traits, jsonb), panko.metric_tags(panko.traits)
TO panko_reader;
GRANT EXECUTE ON FUNCTION panko.metric_trait(text, jsonb), panko.metric_filter(text, jsonb, text),
    panko.metric_us(timestamptz), panko.metric_floor(bigint, bigint), panko.metric_ts(bigint),
    panko.metric_buckets(text, timestamptz, timestamptz, bigint, jsonb, text),
    panko.metric_check_window(interval, timestamptz, timestamptz),
    panko.metric_value(panko.traits, jsonb), panko.metric_tags(panko.traits), panko.metric_jsonb(text, text)
TO panko_query, panko_auditor;
