-- panko 0.16.0 -> 0.17.0: the GIN index of traits keys a string trait
-- named qty or price, a rated data point's amounts, by its first two bytes
-- (key format 3).  Amounts are unique at nearly every point, so each was a
-- new key of the entry tree, two random inserts per point pushed: a fifth
-- of the time of a CloudKitty push.  Every filter on an amount is now
-- rechecked; the answers are the same.
--
-- As at 0.13.0, the support functions keep their names and point to the
-- format-3 symbols; the old symbols stay in the library for indexes built
-- before this update.  The index of panko.event is made again, and any
-- other index with panko.traits_ops is rebuilt: both read every stored
-- event once.
\echo Use "ALTER EXTENSION panko UPDATE TO '0.17.0'" to load this file. \quit

CREATE OR REPLACE FUNCTION panko.traits_gin_extract_value(panko.traits, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'traits_gin_extract_value_3' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION panko.traits_gin_extract_value(panko.traits, internal) IS
    'GIN support: one ordered key per trait (a datetime by its minute, an amount, qty or price, by its first bytes)';
CREATE OR REPLACE FUNCTION panko.traits_gin_extract_query(panko.traits, internal, int2, internal, internal, internal, internal)
    RETURNS internal
    AS 'MODULE_PATHNAME', 'traits_gin_extract_query_3' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION panko.traits_gin_consistent(internal, int2, panko.traits, int4, internal, internal, internal, internal) IS
    'GIN support: all keys must match; recheck for long string, datetime and amount bounds';

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
