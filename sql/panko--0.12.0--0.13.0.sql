-- panko 0.12.0 -> 0.13.0: the GIN index of traits keys a datetime by its
-- minute (key format 2).  A batch of events holds about as many distinct
-- times as events, and each distinct key costs the batch one descent of
-- the entry tree: a quarter of the keys of a typical event, and of the time
-- record_events spends in the GIN index.  Equality and range filters on a
-- datetime now match the bound's whole minute and are rechecked, as long
-- strings always were; the answers are the same.
--
-- The support functions keep their names and point to the format-2
-- symbols; the old symbols (exact times) stay in the library for indexes
-- built before this update.  The index of panko.event is made again, so
-- that no backend can keep using a support function it looked up for an
-- index of the old format; any other index with panko.traits_ops is
-- rebuilt.  Both read every stored event once (about as long as the
-- events took to index when they were stored).
\echo Use "ALTER EXTENSION panko UPDATE TO '0.13.0'" to load this file. \quit

CREATE OR REPLACE FUNCTION panko.traits_gin_extract_value(panko.traits, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'traits_gin_extract_value_2' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION panko.traits_gin_extract_value(panko.traits, internal) IS
    'GIN support: one ordered key per trait (a datetime by its minute)';
CREATE OR REPLACE FUNCTION panko.traits_gin_extract_query(panko.traits, internal, int2, internal, internal, internal, internal)
    RETURNS internal
    AS 'MODULE_PATHNAME', 'traits_gin_extract_query_2' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION panko.traits_gin_consistent(internal, int2, panko.traits, int4, internal, internal, internal, internal) IS
    'GIN support: all keys must match; recheck for long string and datetime bounds';

DROP INDEX panko.event_traits_idx;
CREATE INDEX event_traits_idx ON panko.event USING gin (traits) WITH (gin_pending_list_limit = 512);
COMMENT ON INDEX panko.event_traits_idx IS 'Every trait filter';

DO $$
DECLARE
    ix regclass;
BEGIN
    FOR ix IN
        SELECT i.indexrelid::pg_catalog.regclass
          FROM pg_catalog.pg_index i
          JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) i.indexrelid
          JOIN pg_catalog.pg_opclass o ON o.oid OPERATOR(pg_catalog.=) ANY (i.indclass::pg_catalog.oid[])
         WHERE o.opcname OPERATOR(pg_catalog.=) 'traits_ops'
           AND o.opcnamespace OPERATOR(pg_catalog.=) 'panko'::pg_catalog.regnamespace
           AND c.relkind OPERATOR(pg_catalog.=) 'i'
           AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_inherits h
                            WHERE h.inhrelid OPERATOR(pg_catalog.=) i.indexrelid)
         ORDER BY 1
    LOOP
        EXECUTE pg_catalog.format('REINDEX INDEX %s', ix);
    END LOOP;
END
$$;
