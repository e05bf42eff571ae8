-- panko 0.9.0 -> 0.10.0: CloudKitty's push in a compact form
-- (panko.rating_push_frames): panko_drivers.cloudkitty sends frames of
-- points, [metric, unit, qty, price, groupby, metadata], and C checks them
-- and stores them as events without each point written as an event in
-- JSON.  rating_push keeps its form; both add to the rollup through
-- rating_rollup_add_groups and record names through rating_note_names.
\echo Use "ALTER EXTENSION panko UPDATE TO '0.10.0'" to load this file. \quit

-- The rows a push adds to the rollup (time, type, scope, groupby project,
-- count and exact sums: rating_rollup_points' columns, as arrays), all of
-- its points stored: one row per day, type, scope, groupby project_id and
-- table, added to what is there.  (only rating_push and rating_push_frames
-- call it: the rollup must hold what is stored)
CREATE FUNCTION panko.rating_rollup_add_groups(generated timestamptz[], event_type text[], scope text[],
                                               gproject text[], npoints bigint[], qty numeric[],
                                               price numeric[]) RETURNS void
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH p AS MATERIALIZED (
        SELECT * FROM unnest(rating_rollup_add_groups.generated, rating_rollup_add_groups.event_type,
                             rating_rollup_add_groups.scope, rating_rollup_add_groups.gproject,
                             rating_rollup_add_groups.npoints, rating_rollup_add_groups.qty,
                             rating_rollup_add_groups.price)
                      AS g(generated, event_type, scope, gproject, npoints, qty, price)
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
COMMENT ON FUNCTION panko.rating_rollup_add_groups(timestamptz[], text[], text[], text[], bigint[], numeric[], numeric[]) IS
    'The daily rollup''s one writer for pushes: add a push''s rows (time, type, scope, groupby project_id, count and exact sums; every point stored)';

-- The points of one push (all of them stored) into the rollup.
CREATE OR REPLACE FUNCTION panko.rating_rollup_add(points jsonb) RETURNS void
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT panko.rating_rollup_add_groups(array_agg(p.generated), array_agg(p.event_type), array_agg(p.scope),
                                          array_agg(p.gproject), array_agg(p.npoints), array_agg(p.qty),
                                          array_agg(p.price))
      FROM panko.rating_rollup_points(rating_rollup_add.points) p
$$;
COMMENT ON FUNCTION panko.rating_rollup_add(jsonb) IS
    'rating_push''s part: add the stored points of one push (every one stored) to the daily rollup';

-- What a push records besides its points: the groupby names that total
-- may group by, and whether a groupby or metadata project_id differs from
-- a point's scope (then a project_id filter is not the scope alone).
CREATE FUNCTION panko.rating_note_names(groupby text[], g_alias boolean, m_alias boolean) RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
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

REVOKE ALL ON FUNCTION panko.rating_store_frames(jsonb), panko.rating_push_frames(jsonb),
    panko.rating_note_names(text[], boolean, boolean),
    panko.rating_rollup_add_groups(timestamptz[], text[], text[], text[], bigint[], numeric[], numeric[])
FROM PUBLIC;
GRANT EXECUTE ON FUNCTION panko.rating_push_frames(jsonb) TO panko_writer;
