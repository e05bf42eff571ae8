-- panko 0.11.0 -> 0.12.0: the row-level security policy of panko.event is
-- one C function, panko.event_visible(traits), instead of a CASE over
-- three subqueries.  The rule is the same (members: their project and
-- user; admins: their project and events without project_id; "all":
-- everything; anyone else: nothing); the caller is resolved once per
-- statement, as the subqueries' initplans did.  get_events reads each
-- partition with a statement of its own, and setting up the CASE and its
-- initplans was a fifth of setting up each of those statements.
\echo Use "ALTER EXTENSION panko UPDATE TO '0.12.0'" to load this file. \quit

CREATE FUNCTION panko.event_visible(traits panko.traits) RETURNS boolean
    AS 'MODULE_PATHNAME' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION panko.event_visible(panko.traits) IS
    'The row-level security policy of panko.event: may the caller see an event with these traits (the caller resolved once per statement)';
REVOKE ALL ON FUNCTION panko.event_visible(panko.traits) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION panko.event_visible(panko.traits) TO panko_reader, panko_query;

ALTER POLICY event_visibility ON panko.event USING (panko.event_visible(traits));

-- Every table under panko.event carries the parent's policies
-- (get_events reads them directly): copy the new one to each.
SELECT panko.secure_partition(c.relname)
  FROM pg_catalog.pg_partition_tree('panko.event'::pg_catalog.regclass) t
  JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) t.relid
 WHERE t.level OPERATOR(pg_catalog.>) 0
 ORDER BY t.level, c.relname;
