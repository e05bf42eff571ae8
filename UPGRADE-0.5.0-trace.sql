-- panko.trace_report: the trace's filter value is built once (a variable)
CREATE OR REPLACE FUNCTION panko.trace_report(base_id text) RETURNS json
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
-- the GIN index even when the trace is a large part of its partition (a
-- scan tests every row's traits and costs far more than the planner
-- thinks), and no JIT for a plan whose cost that inflates
SET enable_seqscan = off
SET jit = off
AS $$
DECLARE
    start_type integer;
    stop_type integer;
    trace_key panko.traits;
    report text;
BEGIN
    IF base_id IS NULL OR base_id = '' THEN
        RAISE EXCEPTION 'A trace''s base_id must be a non-empty string' USING ERRCODE = '22023';
    END IF;
    -- the filter's value, built once: in the query, the GIN recheck of
    -- every row and the planning of every partition would build it again
    trace_key := panko.traits(jsonb_build_object('base_id', trace_report.base_id));
    SELECT t.id INTO start_type FROM panko.event_type t WHERE t.name OPERATOR(pg_catalog.=) 'osprofiler.start';
    SELECT t.id INTO stop_type FROM panko.event_type t WHERE t.name OPERATOR(pg_catalog.=) 'osprofiler.stop';

    -- osprofiler.drivers.base.Driver: _append_results over the trace's
    -- notifications in the order they happened (a span's start before its
    -- stop, then by trace_id), then _parse_results and _build_tree.  The
    -- JSON is written as text, with the keys in the order osprofiler's
    -- dicts have them.
    WITH RECURSIVE n AS MATERIALIZED (
        SELECT (extract(epoch FROM e.generated) * 1000000)::bigint AS us,
               coalesce(e.event_type_id OPERATOR(pg_catalog.=) stop_type, false) AS stop,
               e.raw->>'trace_id' AS trace_id, e.raw->>'parent_id' AS parent_id, e.raw->>'name' AS name,
               e.raw
          FROM panko.event e
         WHERE e.traits OPERATOR(panko.@>) trace_key
           -- (+ 0: a filter, not an index condition; the event type's
           -- index would only add work to the GIN's)
           AND (e.event_type_id OPERATOR(pg_catalog.+) 0) IN (start_type, stop_type)
    ), bounds AS (
        SELECT min(n.us) AS t0, max(n.us) AS t1, max(n.us) FILTER (WHERE NOT n.stop) AS last_start FROM n
    ), span AS (
        -- A span has at most one start (a) and one stop (z): their
        -- message_ids.  Its name and parent_id come from its first
        -- notification, as in _append_results.
        SELECT coalesce(a.trace_id, z.trace_id) AS trace_id, f.stop_first,
               a.us IS NOT NULL AND z.us IS NOT NULL AS both,
               CASE WHEN f.stop_first THEN z.us ELSE a.us END AS first_us,
               CASE WHEN f.stop_first THEN z.parent_id ELSE a.parent_id END AS parent_id,
               split_part(CASE WHEN f.stop_first THEN z.name ELSE a.name END, '-', 1) AS op,
               (coalesce(a.us, z.us) - b.t0) / 1000 AS started,
               (coalesce(z.us, a.us) - b.t0) / 1000 AS finished
          FROM (SELECT n.trace_id, n.us, n.parent_id, n.name FROM n WHERE NOT n.stop) a
          FULL JOIN (SELECT n.trace_id, n.us, n.parent_id, n.name FROM n WHERE n.stop) z USING (trace_id)
         CROSS JOIN bounds b
         CROSS JOIN LATERAL (SELECT a.us IS NULL OR (z.us IS NOT NULL AND z.us < a.us) AS stop_first) f
    ), node AS (
        -- Siblings by start, then in order of appearance (_build_tree's
        -- stable sort); spans whose parent is not in the trace are roots.
        SELECT s.*,
               row_number() OVER (PARTITION BY CASE WHEN s.root THEN NULL ELSE s.parent_id END
                                  ORDER BY s.started, s.seen)::integer AS rank
          FROM (SELECT s.*, s.parent_id NOT IN (SELECT n.trace_id FROM n) AS root,
                       row_number() OVER (ORDER BY s.first_us, s.stop_first, s.trace_id) AS seen
                  FROM span s) s
    ), tree AS (
        SELECT d.trace_id, 0 AS depth, ARRAY[d.rank] AS path FROM node d WHERE d.root
        UNION ALL
        SELECT c.trace_id, t.depth + 1, t.path || c.rank
          FROM tree t JOIN node c ON c.parent_id OPERATOR(pg_catalog.=) t.trace_id AND NOT c.root
    ), walk AS (
        -- Preorder; after each node, the brackets of what ends with it.
        SELECT d.*, row_number() OVER w AS ord,
               CASE WHEN lead(t.depth, 1, -1) OVER w > t.depth THEN ''
                    ELSE repeat(']}', t.depth - lead(t.depth, 1, 0) OVER w + 1)
                         || CASE WHEN lead(t.depth, 1, -1) OVER w >= 0 THEN ', ' ELSE '' END
               END AS tail
          FROM tree t JOIN node d USING (trace_id)
        WINDOW w AS (ORDER BY t.path)
    ), piece AS (
        -- Each notification's part of its node, in the node's order: the
        -- first opens the node (name, project, service, host), each adds
        -- "meta.raw_payload.<name>" and what it sets, the last closes it.
        SELECT w.ord, x.stop IS DISTINCT FROM w.stop_first AS second,
               concat(CASE WHEN x.stop = w.stop_first
                           THEN concat('{"info": {"name": ', to_json(w.op),
                                       ', "project": ', coalesce((x.raw->'project')::text, 'null'),
                                       ', "service": ', coalesce((x.raw->'service')::text, 'null'),
                                       ', "host": ', coalesce((x.raw->'info'->'host')::text, 'null')) END,
                      ', ', to_json('meta.raw_payload.' || x.name), ': ', x.raw::text,
                      CASE WHEN x.stop
                           THEN concat(', "finished": ', w.finished, ', "exception": ',
                                       CASE WHEN x.raw->'info' ? 'etype' THEN (x.raw->'info'->'etype')::text
                                            ELSE '"None"' END)
                           ELSE ', "started": ' || w.started END,
                      CASE WHEN NOT w.both
                           THEN CASE WHEN x.stop THEN ', "started": ' || w.started
                                     ELSE ', "finished": ' || w.finished END END,
                      CASE WHEN NOT w.both OR x.stop IS DISTINCT FROM w.stop_first
                           THEN concat('}, "trace_id": ', to_json(w.trace_id), ', "parent_id": ', to_json(w.parent_id),
                                       ', "children": [', w.tail) END) AS text
          FROM n x JOIN walk w ON w.trace_id OPERATOR(pg_catalog.=) x.trace_id
    )
    SELECT concat('{"info": {"name": "total", "started": 0, "finished": ', (b.t1 - b.t0) / 1000,
                  ', "last_trace_started": ', coalesce(((b.last_start - b.t0) / 1000)::text, 'null'),
                  '}, "children": [',
                  (SELECT string_agg(p.text, '' ORDER BY p.ord, p.second) FROM piece p),
                  '], "stats": {',
                  (SELECT string_agg(concat(to_json(x.op), ': {"count": ', x.count, ', "duration": ', x.duration, '}'),
                                     ', ' ORDER BY x.seen)
                     FROM (SELECT d.op, count(*) AS count, sum(d.finished - d.started) AS duration, min(d.seen) AS seen
                             FROM node d GROUP BY d.op) x),
                  '}}')
      INTO report
      FROM bounds b
     WHERE b.t0 IS NOT NULL;
    IF report IS NULL THEN
        RAISE EXCEPTION 'Trace % not found', base_id USING ERRCODE = 'P0002',
            HINT = 'No notification of this trace is stored, or none is visible to this role.';
    END IF;
    RETURN report::json;
END
$$;
