-- For the lead: the SQL of panko.record_events_text, to go into
-- sql/panko--0.7.0--0.8.0.sql (sql/panko.sql has the same for fresh installs).
CREATE FUNCTION panko.record_events_text(events text)
    RETURNS TABLE(message_id text, status text, detail text)
    AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE STRICT SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    -- partitions are created under panko's storage settings, not the caller's
    SET default_tablespace = '' SET default_table_access_method = 'heap';
COMMENT ON FUNCTION panko.record_events_text(text) IS
    'record_events for a batch sent as JSON text: the same outcomes, read without building a jsonb of the batch (malformed JSON fails with 22P02 as the jsonb argument would)';
REVOKE ALL ON FUNCTION panko.record_events_text(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION panko.record_events_text(text) TO panko_writer;
