/* panko 0.1.0: OpenStack Panko's event store as a PostgreSQL extension */

\echo Use "CREATE EXTENSION panko" to load this file. \quit

--------------------------------------------------------------------------
-- Roles.  They are cluster-wide, so they are created only when missing
-- and survive DROP EXTENSION.  None can log in: grant them to login roles.
--------------------------------------------------------------------------
DO $roles$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'panko_reader') THEN
        CREATE ROLE panko_reader NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'panko_writer') THEN
        CREATE ROLE panko_writer NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'panko_admin') THEN
        CREATE ROLE panko_admin NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'panko_api') THEN
        CREATE ROLE panko_api NOLOGIN;
    END IF;
END
$roles$;

GRANT panko_reader, panko_writer TO panko_admin;
GRANT panko_reader, panko_writer TO panko_api;

--------------------------------------------------------------------------
-- panko.traits: an event's typed traits
--------------------------------------------------------------------------
CREATE TYPE panko.traits;

CREATE FUNCTION panko.traits_in(cstring) RETURNS panko.traits
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION panko.traits_out(panko.traits) RETURNS cstring
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION panko.traits_recv(internal) RETURNS panko.traits
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION panko.traits_send(panko.traits) RETURNS bytea
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE TYPE panko.traits (
    INPUT = panko.traits_in,
    OUTPUT = panko.traits_out,
    RECEIVE = panko.traits_recv,
    SEND = panko.traits_send,
    INTERNALLENGTH = VARIABLE,
    ALIGNMENT = int4,
    STORAGE = extended
);

COMMENT ON TYPE panko.traits IS
    'An event''s traits: name -> (type, value), types string, integer, float, datetime; text form {"name":type=value, ...}';
COMMENT ON FUNCTION panko.traits_in(cstring) IS 'Text input of panko.traits';
COMMENT ON FUNCTION panko.traits_out(panko.traits) IS 'Text output of panko.traits (canonical: sorted by name and type)';
COMMENT ON FUNCTION panko.traits_recv(internal) IS 'Binary input of panko.traits; checks every length';
COMMENT ON FUNCTION panko.traits_send(panko.traits) IS 'Binary output of panko.traits';

--------------------------------------------------------------------------
-- panko.traitquery: a conjunction of Panko trait filters
--------------------------------------------------------------------------
CREATE TYPE panko.traitquery;

CREATE FUNCTION panko.traitquery_in(cstring) RETURNS panko.traitquery
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION panko.traitquery_out(panko.traitquery) RETURNS cstring
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION panko.traitquery_recv(internal) RETURNS panko.traitquery
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION panko.traitquery_send(panko.traitquery) RETURNS bytea
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE TYPE panko.traitquery (
    INPUT = panko.traitquery_in,
    OUTPUT = panko.traitquery_out,
    RECEIVE = panko.traitquery_recv,
    SEND = panko.traitquery_send,
    INTERNALLENGTH = VARIABLE,
    ALIGNMENT = int4,
    STORAGE = extended
);

COMMENT ON TYPE panko.traitquery IS
    'Trait filters that must all hold: {"name":type op value, ...} with op one of = <> < <= > >=';
COMMENT ON FUNCTION panko.traitquery_in(cstring) IS 'Text input of panko.traitquery';
COMMENT ON FUNCTION panko.traitquery_out(panko.traitquery) IS 'Text output of panko.traitquery';
COMMENT ON FUNCTION panko.traitquery_recv(internal) IS 'Binary input of panko.traitquery (its text form)';
COMMENT ON FUNCTION panko.traitquery_send(panko.traitquery) IS 'Binary output of panko.traitquery (its text form)';

--------------------------------------------------------------------------
-- Constructors, accessors, operators
--------------------------------------------------------------------------
CREATE FUNCTION panko.traits(jsonb) RETURNS panko.traits
    AS 'MODULE_PATHNAME', 'traits_from_jsonb' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION panko.traits(jsonb) IS
    'Traits from [{"name","type","value"}] (Panko), [[name, type_id, value]] (Ceilometer) or {"name": value} (strings and numbers)';
CREATE CAST (jsonb AS panko.traits) WITH FUNCTION panko.traits(jsonb);
COMMENT ON CAST (jsonb AS panko.traits) IS 'Same as panko.traits(jsonb)';

CREATE FUNCTION panko.traits_to_jsonb(panko.traits) RETURNS jsonb
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION panko.traits_to_jsonb(panko.traits) IS
    'The Panko API form: [{"name","type","value"}] sorted by name, every value a string';

CREATE FUNCTION panko.traitquery(jsonb) RETURNS panko.traitquery
    AS 'MODULE_PATHNAME', 'traitquery_from_jsonb' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION panko.traitquery(jsonb) IS
    'A trait query from Panko''s traits_filter list [{"key","op","string"|"integer"|"float"|"datetime": value}]';

CREATE FUNCTION panko.trait_text(panko.traits, text) RETURNS text
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION panko.trait_text(panko.traits, text) IS 'Value of the string trait of that name, or NULL';
CREATE FUNCTION panko.trait_int(panko.traits, text) RETURNS bigint
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION panko.trait_int(panko.traits, text) IS 'Value of the integer trait of that name, or NULL';
CREATE FUNCTION panko.trait_float(panko.traits, text) RETURNS double precision
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION panko.trait_float(panko.traits, text) IS 'Value of the float trait of that name, or NULL';
CREATE FUNCTION panko.trait_datetime(panko.traits, text) RETURNS timestamptz
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION panko.trait_datetime(panko.traits, text) IS 'Value of the datetime trait of that name (UTC), or NULL';
CREATE FUNCTION panko.trait_count(panko.traits) RETURNS integer
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION panko.trait_count(panko.traits) IS 'Number of traits';
CREATE FUNCTION panko.each_trait(panko.traits, OUT name text, OUT type text, OUT value text)
    RETURNS SETOF record
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE ROWS 12;
COMMENT ON FUNCTION panko.each_trait(panko.traits) IS
    'One row per trait: name, type and the value as the API prints it';

CREATE FUNCTION panko.traits_exist(panko.traits, text) RETURNS boolean
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
COMMENT ON FUNCTION panko.traits_exist(panko.traits, text) IS 'Implements ?: has a trait of that name, of any type';
CREATE FUNCTION panko.traits_contains(panko.traits, panko.traits) RETURNS boolean
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
COMMENT ON FUNCTION panko.traits_contains(panko.traits, panko.traits) IS
    'Implements @>: every trait on the right is on the left with the same type and value';
CREATE FUNCTION panko.traits_contained(panko.traits, panko.traits) RETURNS boolean
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
COMMENT ON FUNCTION panko.traits_contained(panko.traits, panko.traits) IS 'Implements <@';
CREATE FUNCTION panko.traits_match(panko.traits, panko.traitquery) RETURNS boolean
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
COMMENT ON FUNCTION panko.traits_match(panko.traits, panko.traitquery) IS
    'Implements @@: every filter holds (a trait of that name and type whose value compares true)';
CREATE FUNCTION panko.traits_match_commutator(panko.traitquery, panko.traits) RETURNS boolean
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
COMMENT ON FUNCTION panko.traits_match_commutator(panko.traitquery, panko.traits) IS 'Implements @@ with the query on the left';
CREATE FUNCTION panko.traits_fetch_text(panko.traits, text) RETURNS text
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION panko.traits_fetch_text(panko.traits, text) IS
    'Implements ->: the trait''s value as text (first type in string, integer, float, datetime order)';
CREATE FUNCTION panko.traits_eq(panko.traits, panko.traits) RETURNS boolean
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
COMMENT ON FUNCTION panko.traits_eq(panko.traits, panko.traits) IS 'Implements =: the same traits';
CREATE FUNCTION panko.traits_ne(panko.traits, panko.traits) RETURNS boolean
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
COMMENT ON FUNCTION panko.traits_ne(panko.traits, panko.traits) IS 'Implements <>';

CREATE FUNCTION panko.traits_matchsel(internal, oid, internal, integer) RETURNS double precision
    AS 'MODULE_PATHNAME' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION panko.traits_matchsel(internal, oid, internal, integer) IS
    'Selectivity of @@: equality like a btree equality, ranges like a btree range, per filter';
CREATE FUNCTION panko.traits_containsel(internal, oid, internal, integer) RETURNS double precision
    AS 'MODULE_PATHNAME' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION panko.traits_containsel(internal, oid, internal, integer) IS
    'Selectivity of @>: one equality per listed trait';
CREATE FUNCTION panko.traits_existsel(internal, oid, internal, integer) RETURNS double precision
    AS 'MODULE_PATHNAME' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION panko.traits_existsel(internal, oid, internal, integer) IS
    'Selectivity of ?';

CREATE OPERATOR panko.? (
    LEFTARG = panko.traits, RIGHTARG = text, FUNCTION = panko.traits_exist,
    RESTRICT = panko.traits_existsel, JOIN = matchingjoinsel
);
COMMENT ON OPERATOR panko.? (panko.traits, text) IS 'Has a trait of that name';

CREATE OPERATOR panko.@> (
    LEFTARG = panko.traits, RIGHTARG = panko.traits, FUNCTION = panko.traits_contains,
    COMMUTATOR = OPERATOR(panko.<@), RESTRICT = panko.traits_containsel, JOIN = matchingjoinsel
);
COMMENT ON OPERATOR panko.@> (panko.traits, panko.traits) IS 'Contains these traits (typed equality)';

CREATE OPERATOR panko.<@ (
    LEFTARG = panko.traits, RIGHTARG = panko.traits, FUNCTION = panko.traits_contained,
    COMMUTATOR = OPERATOR(panko.@>), RESTRICT = panko.traits_containsel, JOIN = matchingjoinsel
);
COMMENT ON OPERATOR panko.<@ (panko.traits, panko.traits) IS 'Is contained in';

CREATE OPERATOR panko.@@ (
    LEFTARG = panko.traits, RIGHTARG = panko.traitquery, FUNCTION = panko.traits_match,
    COMMUTATOR = OPERATOR(panko.@@), RESTRICT = panko.traits_matchsel, JOIN = matchingjoinsel
);
COMMENT ON OPERATOR panko.@@ (panko.traits, panko.traitquery) IS 'Matches every trait filter of the query';

CREATE OPERATOR panko.@@ (
    LEFTARG = panko.traitquery, RIGHTARG = panko.traits, FUNCTION = panko.traits_match_commutator,
    COMMUTATOR = OPERATOR(panko.@@), RESTRICT = panko.traits_matchsel, JOIN = matchingjoinsel
);
COMMENT ON OPERATOR panko.@@ (panko.traitquery, panko.traits) IS 'Matches every trait filter of the query';

CREATE OPERATOR panko.-> (
    LEFTARG = panko.traits, RIGHTARG = text, FUNCTION = panko.traits_fetch_text
);
COMMENT ON OPERATOR panko.-> (panko.traits, text) IS 'Value of a trait as text';

CREATE OPERATOR panko.= (
    LEFTARG = panko.traits, RIGHTARG = panko.traits, FUNCTION = panko.traits_eq,
    COMMUTATOR = OPERATOR(panko.=), NEGATOR = OPERATOR(panko.<>),
    RESTRICT = eqsel, JOIN = eqjoinsel
);
COMMENT ON OPERATOR panko.= (panko.traits, panko.traits) IS 'Same traits';

CREATE OPERATOR panko.<> (
    LEFTARG = panko.traits, RIGHTARG = panko.traits, FUNCTION = panko.traits_ne,
    COMMUTATOR = OPERATOR(panko.<>), NEGATOR = OPERATOR(panko.=),
    RESTRICT = neqsel, JOIN = neqjoinsel
);
COMMENT ON OPERATOR panko.<> (panko.traits, panko.traits) IS 'Different traits';

--------------------------------------------------------------------------
-- GIN: every trait filter (eq ne lt le gt ge, all four types) from the index
--------------------------------------------------------------------------
CREATE FUNCTION panko.traits_gin_extract_value(panko.traits, internal) RETURNS internal
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION panko.traits_gin_extract_value(panko.traits, internal) IS 'GIN support: one ordered key per trait';
CREATE FUNCTION panko.traits_gin_extract_query(panko.traits, internal, int2, internal, internal, internal, internal)
    RETURNS internal
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION panko.traits_gin_extract_query(panko.traits, internal, int2, internal, internal, internal, internal) IS
    'GIN support: exact keys for equality, partial-match scans for ranges';
CREATE FUNCTION panko.traits_gin_consistent(internal, int2, panko.traits, int4, internal, internal, internal, internal)
    RETURNS boolean
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION panko.traits_gin_consistent(internal, int2, panko.traits, int4, internal, internal, internal, internal) IS
    'GIN support: all keys must match; recheck only for long string bounds';
CREATE FUNCTION panko.traits_gin_compare_partial(bytea, bytea, int2, internal) RETURNS integer
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION panko.traits_gin_compare_partial(bytea, bytea, int2, internal) IS
    'GIN support: partial match over one (name, type) for range filters';

CREATE OPERATOR CLASS panko.traits_ops DEFAULT FOR TYPE panko.traits USING gin AS
    OPERATOR 7 panko.@> (panko.traits, panko.traits),
    OPERATOR 9 panko.? (panko.traits, text),
    OPERATOR 15 panko.@@ (panko.traits, panko.traitquery),
    FUNCTION 1 pg_catalog.byteacmp(bytea, bytea),
    FUNCTION 2 panko.traits_gin_extract_value(panko.traits, internal),
    FUNCTION 3 panko.traits_gin_extract_query(panko.traits, internal, int2, internal, internal, internal, internal),
    FUNCTION 4 panko.traits_gin_consistent(internal, int2, panko.traits, int4, internal, internal, internal, internal),
    FUNCTION 5 panko.traits_gin_compare_partial(bytea, bytea, int2, internal),
    STORAGE bytea;
COMMENT ON OPERATOR CLASS panko.traits_ops USING gin IS
    'GIN index on traits: @>, ? and @@ (every Panko trait filter)';

--------------------------------------------------------------------------
-- Timestamps as the API writes and reads them; the event JSON
--------------------------------------------------------------------------
CREATE FUNCTION panko.iso_timestamp(timestamptz) RETURNS text
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION panko.iso_timestamp(timestamptz) IS
    'ISO 8601 in UTC without a zone, microseconds only when not zero (as Panko writes generated)';
CREATE FUNCTION panko.parse_timestamp(value text, what text DEFAULT NULL) RETURNS timestamptz
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION panko.parse_timestamp(text, text) IS
    'Parse ISO 8601 as the API does (no zone = UTC, offsets converted, bare date = midnight); 22007 naming "what" on failure';
CREATE FUNCTION panko.event_json(message_id text, event_type text, generated timestamptz, traits panko.traits, raw jsonb)
    RETURNS json
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION panko.event_json(text, text, timestamptz, panko.traits, jsonb) IS
    'An event as Panko''s API returns it (every trait value a string)';

CREATE FUNCTION panko.message_id_hash(text) RETURNS bigint
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION panko.message_id_hash(text) IS 'The registry key of a message_id (64-bit hash)';

--------------------------------------------------------------------------
-- Identity of the caller, for row-level security
--------------------------------------------------------------------------
CREATE FUNCTION panko.set_identity(user_id text, project_id text, roles text, all_tenants boolean DEFAULT false)
    RETURNS void
    AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION panko.set_identity(text, text, text, boolean) IS
    'For trusted gateways (panko_api): the caller''s Keystone identity for the rest of the transaction';
CREATE FUNCTION panko.caller_mode() RETURNS text
    AS 'MODULE_PATHNAME' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION panko.caller_mode() IS
    'What the caller may see: all, admin (own project and events without one), member (own project and user), none';
CREATE FUNCTION panko.caller_scope() RETURNS panko.traits
    AS 'MODULE_PATHNAME' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION panko.caller_scope() IS
    'Traits a visible event must contain (project_id, and user_id for members); NULL when containment does not decide';
CREATE FUNCTION panko.caller_has_role(role text) RETURNS boolean
    AS 'MODULE_PATHNAME' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION panko.caller_has_role(text) IS
    'Whether the stated identity carries this Keystone role (case-insensitive); without one, membership in panko_admin';
CREATE FUNCTION panko.caller_project() RETURNS text
    AS 'MODULE_PATHNAME' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION panko.caller_project() IS 'Project id of the stated identity, or NULL';
CREATE FUNCTION panko.enable_all_tenants() RETURNS boolean
    AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION panko.enable_all_tenants() IS
    'all_tenants=true: for an admin identity, every event becomes visible for the rest of the transaction; false for others';

--------------------------------------------------------------------------
-- Data
--------------------------------------------------------------------------
CREATE TABLE panko.event_type (
    id integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    name text COLLATE "C" NOT NULL UNIQUE
);
COMMENT ON TABLE panko.event_type IS 'Dictionary of event type names';
COMMENT ON COLUMN panko.event_type.name IS 'Event type, e.g. compute.instance.create.end';

CREATE TABLE panko.event (
    generated timestamptz NOT NULL,
    event_type_id integer NOT NULL,
    message_id text COLLATE "C" NOT NULL,
    traits panko.traits NOT NULL,
    raw jsonb
) PARTITION BY RANGE (generated);
COMMENT ON TABLE panko.event IS
    'Events, partitioned by generated (panko.partition_interval wide); read them through panko.events or panko.get_events';
COMMENT ON COLUMN panko.event.generated IS 'When the event happened (UTC, microseconds)';
COMMENT ON COLUMN panko.event.message_id IS 'Unique id of the event (unique across partitions through panko.event_message)';
COMMENT ON COLUMN panko.event.traits IS 'Typed traits';
COMMENT ON COLUMN panko.event.raw IS 'The original notification, when stored';

CREATE INDEX event_generated_idx ON panko.event (generated);
CREATE INDEX event_message_id_idx ON panko.event (message_id);
CREATE INDEX event_type_generated_idx ON panko.event (event_type_id, generated);
CREATE INDEX event_traits_idx ON panko.event USING gin (traits);
COMMENT ON INDEX panko.event_generated_idx IS 'Time windows and the default order';
COMMENT ON INDEX panko.event_message_id_idx IS 'Lookup by message_id and markers';
COMMENT ON INDEX panko.event_type_generated_idx IS 'Event type filters';
COMMENT ON INDEX panko.event_traits_idx IS 'Every trait filter';

CREATE TABLE panko.event_message (
    id_hash bigint PRIMARY KEY,
    generated timestamptz NOT NULL
);
CREATE INDEX event_message_generated_idx ON panko.event_message USING brin (generated);
COMMENT ON TABLE panko.event_message IS
    'Registry of stored message_ids by 64-bit hash: one int8 probe finds a duplicate in any partition (a hit is checked against the events)';
COMMENT ON COLUMN panko.event_message.id_hash IS 'panko.message_id_hash(message_id)';
COMMENT ON COLUMN panko.event_message.generated IS 'Newest generated among the events this hash stands for';
COMMENT ON INDEX panko.event_message_generated_idx IS 'Finds registry rows of expired events';

CREATE TABLE panko.partition (
    name text COLLATE "C" PRIMARY KEY,
    lower_bound timestamptz NOT NULL UNIQUE,
    upper_bound timestamptz NOT NULL,
    CHECK (lower_bound < upper_bound)
);
COMMENT ON TABLE panko.partition IS 'Partitions of panko.event and their bounds [lower_bound, upper_bound)';

SELECT pg_catalog.pg_extension_config_dump('panko.event_type', '');
SELECT pg_catalog.pg_extension_config_dump('panko.event_message', '');
SELECT pg_catalog.pg_extension_config_dump('panko.partition', '');

--------------------------------------------------------------------------
-- Row-level security: Panko's RBAC rules, whoever asks (psql or HTTP)
--------------------------------------------------------------------------
ALTER TABLE panko.event ENABLE ROW LEVEL SECURITY;

CREATE POLICY event_visibility ON panko.event FOR SELECT
USING (
    CASE (SELECT panko.caller_mode())
        WHEN 'all' THEN true
        WHEN 'member' THEN traits OPERATOR(panko.@>) (SELECT panko.caller_scope())
        WHEN 'admin' THEN coalesce(traits OPERATOR(panko.@>) (SELECT panko.caller_scope()), false)
                          OR NOT traits OPERATOR(panko.?) 'project_id'
        ELSE false
    END
);
COMMENT ON POLICY event_visibility ON panko.event IS
    'Members see their project''s and user''s events; admins their project''s and events without project_id; all_tenants admins and panko_admin everything';

CREATE VIEW panko.events WITH (security_invoker = true) AS
SELECT e.message_id, t.name AS event_type, e.generated, e.traits, e.raw
FROM panko.event e
JOIN panko.event_type t ON t.id OPERATOR(pg_catalog.=) e.event_type_id;
COMMENT ON VIEW panko.events IS
    'Events for ad-hoc SQL; row-level security applies, trait operators use the GIN index';

--------------------------------------------------------------------------
-- Partitions
--------------------------------------------------------------------------
CREATE FUNCTION panko.setting_seconds(name text, fallback bigint) RETURNS bigint
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(extract(epoch FROM current_setting(name, true)::interval)::bigint, fallback)
$$;
COMMENT ON FUNCTION panko.setting_seconds(text, bigint) IS
    'A panko.* setting in seconds (fallback when the library has not defined it yet)';

CREATE FUNCTION panko.create_partition_for(ts timestamptz) RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC'
AS $$
DECLARE
    width bigint := panko.setting_seconds('panko.partition_interval', 86400);
    lo timestamptz;
    hi timestamptz;
    prev_hi timestamptz;
    next_lo timestamptz;
    pname text;
BEGIN
    -- Serialise creators; then another session may already have made it.
    PERFORM pg_advisory_xact_lock(1885433451, 2);
    SELECT p.name INTO pname FROM panko.partition p
     WHERE ts >= p.lower_bound AND ts < p.upper_bound;
    IF FOUND THEN
        RETURN pname;
    END IF;

    IF ts BETWEEN now() - interval '400 days' AND now() + interval '400 days' THEN
        lo := to_timestamp(floor(extract(epoch FROM ts) / width) * width);
        hi := lo + make_interval(secs => width);
    ELSE
        -- Far from now: one partition a year, so stray clocks cannot make thousands.
        lo := date_trunc('year', ts);
        hi := lo + interval '1 year';
    END IF;

    -- Fit into the gap between existing partitions.
    SELECT max(p.upper_bound) INTO prev_hi FROM panko.partition p WHERE p.upper_bound <= ts;
    SELECT min(p.lower_bound) INTO next_lo FROM panko.partition p WHERE p.lower_bound > ts;
    lo := greatest(lo, prev_hi);
    hi := least(hi, next_lo);

    pname := 'event_' || to_char(lo, 'YYYYMMDD"t"HH24MISS');
    EXECUTE format('CREATE TABLE panko.%I (LIKE panko.event INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE)', pname);
    EXECUTE format('ALTER TABLE panko.event ATTACH PARTITION panko.%I FOR VALUES FROM (%L) TO (%L)', pname, lo, hi);
    INSERT INTO panko.partition (name, lower_bound, upper_bound) VALUES (pname, lo, hi);
    RETURN pname;
END
$$;
COMMENT ON FUNCTION panko.create_partition_for(timestamptz) IS
    'Create the partition that will hold this timestamp (interval-aligned, yearly far from now, fitted between existing ones)';

CREATE FUNCTION panko.drop_expired_partitions(cutoff timestamptz, max_count bigint,
                                              OUT partitions_dropped bigint, OUT rows_deleted bigint)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p record;
    n bigint;
    budget bigint := max_count;
    saved_lock_timeout text := current_setting('lock_timeout');
BEGIN
    partitions_dropped := 0;
    rows_deleted := 0;
    FOR p IN SELECT * FROM panko.partition WHERE upper_bound <= cutoff ORDER BY lower_bound LOOP
        EXECUTE format('SELECT count(*) FROM panko.%I', p.name) INTO n;
        EXIT WHEN budget IS NOT NULL AND n > budget;
        -- A long reader of that partition must not stall ingest behind us:
        -- give up after a second and drop it next run.
        BEGIN
            PERFORM set_config('lock_timeout', '1s', true);
            EXECUTE format('DROP TABLE panko.%I', p.name);
            PERFORM set_config('lock_timeout', saved_lock_timeout, true);
        EXCEPTION WHEN lock_not_available THEN
            RAISE LOG 'panko: partition % is in use; it is dropped next run', p.name;
            RETURN;
        END;
        DELETE FROM panko.partition WHERE name = p.name;
        partitions_dropped := partitions_dropped + 1;
        rows_deleted := rows_deleted + n;
        budget := budget - n;
    END LOOP;

    -- What is left below the cutoff: rows of the boundary partition (or of
    -- a partition too big for the budget), deleted oldest first, in batches.
    LOOP
        EXIT WHEN budget IS NOT NULL AND budget <= 0;
        WITH doomed AS (
            SELECT e.generated, e.message_id FROM panko.event e
             WHERE e.generated < cutoff
             ORDER BY e.generated, e.message_id
             LIMIT least(coalesce(budget, 10000), 10000)
        ), gone AS (
            DELETE FROM panko.event e USING doomed d
             WHERE e.generated = d.generated AND e.message_id = d.message_id
            RETURNING 1
        )
        SELECT count(*) INTO n FROM gone;
        EXIT WHEN n = 0;
        rows_deleted := rows_deleted + n;
        budget := budget - n;
    END LOOP;
END
$$;
COMMENT ON FUNCTION panko.drop_expired_partitions(timestamptz, bigint) IS
    'Drop partitions wholly older than cutoff (within max_count events), then delete older rows of the boundary partition';

CREATE FUNCTION panko.purge_registry(max_rows bigint DEFAULT 50000) RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    oldest timestamptz;
    n bigint;
BEGIN
    SELECT min(lower_bound) INTO oldest FROM panko.partition;
    WITH stale AS (
        SELECT ctid FROM panko.event_message
         WHERE oldest IS NULL OR generated < oldest
         LIMIT max_rows
    ), gone AS (
        DELETE FROM panko.event_message m USING stale s WHERE m.ctid = s.ctid RETURNING 1
    )
    SELECT count(*) INTO n FROM gone;
    RETURN n;
END
$$;
COMMENT ON FUNCTION panko.purge_registry(bigint) IS
    'Forget message_id hashes older than every partition, a bounded batch at a time (a leftover costs ingest one check, never a lost event)';

CREATE FUNCTION panko.remove_unused_event_types() RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint;
BEGIN
    WITH gone AS (
        DELETE FROM panko.event_type t
         WHERE NOT EXISTS (SELECT 1 FROM panko.event e WHERE e.event_type_id = t.id)
        RETURNING 1
    )
    SELECT count(*) INTO n FROM gone;
    RETURN n;
END
$$;
COMMENT ON FUNCTION panko.remove_unused_event_types() IS 'Delete event types no event uses any more';

CREATE FUNCTION panko.clear_expired_data(ttl_seconds bigint, max_count bigint DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
BEGIN
    IF ttl_seconds IS NULL OR ttl_seconds < 0 THEN
        RETURN 0;                       -- -1 keeps events forever, as upstream
    END IF;
    IF max_count IS NOT NULL AND max_count < 0 THEN
        RAISE EXCEPTION 'max_count must not be negative' USING ERRCODE = '22023';
    END IF;
    -- Exclusive against ingest (which holds it shared) and other runs.
    PERFORM pg_advisory_xact_lock(1885433451, 1);
    r := panko.drop_expired_partitions(now() - make_interval(secs => ttl_seconds), max_count);
    PERFORM panko.remove_unused_event_types();
    PERFORM panko.purge_registry(10000);
    RETURN r.rows_deleted;
END
$$;
COMMENT ON FUNCTION panko.clear_expired_data(bigint, bigint) IS
    'Upstream''s expiry: delete events older than ttl_seconds (at most max_count), drop unused event types; returns events deleted';

--------------------------------------------------------------------------
-- Panko's storage API
--------------------------------------------------------------------------
CREATE FUNCTION panko.record_events(events jsonb)
    RETURNS TABLE(message_id text, status text, detail text)
    AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE STRICT SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION panko.record_events(jsonb) IS
    'Store a JSON array of events (Panko API or Ceilometer form); returns one row per event NOT stored: duplicate or rejected, with why';

CREATE FUNCTION panko.get_events(filter jsonb DEFAULT '{}', "limit" integer DEFAULT 100,
                                 sort text[] DEFAULT NULL, marker text DEFAULT NULL)
    RETURNS TABLE(message_id text, event_type text, generated timestamptz, traits panko.traits, raw jsonb)
LANGUAGE plpgsql STABLE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    f jsonb := coalesce(filter, '{}'::jsonb);
    lim integer := coalesce("limit", 100);
    k text;
    conds text[] := ARRAY['true'];
    orders text[] := '{}';
    keys text[] := '{}';
    dirs text[] := '{}';
    s text;
    key text;
    dir text;
    type_id integer;
    t_start timestamptz;
    t_end timestamptz;
    tq panko.traitquery;
    admin_scope panko.traits;
    member_scope panko.traits;
    m_generated timestamptz;
    m_id text;
    keyset text := NULL;
    ors text[] := '{}';
    ands text[];
    i integer;
    j integer;
BEGIN
    IF jsonb_typeof(f) <> 'object' THEN
        RAISE EXCEPTION 'filter must be a JSON object' USING ERRCODE = '22023';
    END IF;
    FOR k IN SELECT jsonb_object_keys(f) LOOP
        IF k NOT IN ('event_type', 'message_id', 'start_timestamp', 'end_timestamp',
                     'traits_filter', 'admin_proj') THEN
            RAISE EXCEPTION 'unknown filter key "%"', k USING ERRCODE = '22023',
                HINT = 'Filter keys are event_type, message_id, start_timestamp, end_timestamp, traits_filter, admin_proj.';
        END IF;
    END LOOP;
    IF lim < 0 THEN
        RAISE EXCEPTION 'limit must not be negative' USING ERRCODE = '22023';
    ELSIF lim = 0 THEN
        lim := 100;
    END IF;

    IF f ? 'event_type' AND jsonb_typeof(f->'event_type') <> 'null' THEN
        IF jsonb_typeof(f->'event_type') <> 'string' THEN
            RAISE EXCEPTION 'event_type must be a string' USING ERRCODE = '22023';
        END IF;
        SELECT t.id INTO type_id FROM panko.event_type t WHERE t.name = f->>'event_type';
        IF NOT FOUND THEN
            RETURN;
        END IF;
        conds := array_append(conds, 'e.event_type_id = $1');
    END IF;
    IF f ? 'message_id' AND jsonb_typeof(f->'message_id') <> 'null' THEN
        IF jsonb_typeof(f->'message_id') <> 'string' THEN
            RAISE EXCEPTION 'message_id must be a string' USING ERRCODE = '22023';
        END IF;
        conds := array_append(conds, 'e.message_id = $2');
    END IF;
    IF f ? 'start_timestamp' AND jsonb_typeof(f->'start_timestamp') <> 'null' THEN
        t_start := panko.parse_timestamp(f->>'start_timestamp', 'start_timestamp');
        conds := array_append(conds, 'e.generated >= $3');
    END IF;
    IF f ? 'end_timestamp' AND jsonb_typeof(f->'end_timestamp') <> 'null' THEN
        t_end := panko.parse_timestamp(f->>'end_timestamp', 'end_timestamp');
        conds := array_append(conds, 'e.generated <= $4');
    END IF;
    IF f ? 'traits_filter' AND jsonb_typeof(f->'traits_filter') <> 'null' THEN
        tq := panko.traitquery(f->'traits_filter');
        IF tq::text <> '{}' THEN
            conds := array_append(conds, 'e.traits OPERATOR(panko.@@) $5');
        END IF;
    END IF;
    IF f ? 'admin_proj' AND jsonb_typeof(f->'admin_proj') <> 'null' THEN
        admin_scope := panko.traits(jsonb_build_object('project_id', f->>'admin_proj'));
        conds := array_append(conds, '(e.traits OPERATOR(panko.@>) $6 OR NOT e.traits OPERATOR(panko.?) ''project_id'')');
    END IF;
    -- Row-level security decides visibility; for members, saying the same
    -- thing as an indexable condition lets the GIN index find their events.
    IF panko.caller_mode() = 'member' THEN
        member_scope := panko.caller_scope();
        conds := array_append(conds, 'e.traits OPERATOR(panko.@>) $7');
    END IF;

    -- Sort keys: given ones replace the default; message_id ends every order.
    FOREACH s IN ARRAY coalesce(sort, ARRAY['generated:asc', 'message_id:asc']) LOOP
        key := split_part(s, ':', 1);
        dir := CASE WHEN position(':' IN s) > 0 THEN split_part(s, ':', 2) ELSE 'asc' END;
        IF key NOT IN ('generated', 'message_id') OR dir NOT IN ('asc', 'desc')
           OR array_length(string_to_array(s, ':'), 1) > 2 THEN
            RAISE EXCEPTION 'invalid sort "%"', s USING ERRCODE = '22023',
                HINT = 'Sort keys are generated and message_id, each optionally followed by :asc or :desc.';
        END IF;
        IF key = ANY (keys) THEN
            RAISE EXCEPTION 'sort key "%" given twice', key USING ERRCODE = '22023';
        END IF;
        keys := keys || key;
        dirs := dirs || dir;
    END LOOP;
    IF NOT 'message_id' = ANY (keys) THEN
        keys := keys || 'message_id'::text;
        dirs := dirs || 'asc'::text;
    END IF;
    FOR i IN 1 .. array_length(keys, 1) LOOP
        orders := orders || format('e.%I %s', keys[i], dirs[i]);
    END LOOP;

    -- Keyset pagination: strictly after the marker under this order.
    IF marker IS NOT NULL THEN
        SELECT e.generated, e.message_id INTO m_generated, m_id
          FROM panko.event e WHERE e.message_id = marker;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'marker "%" is not an event you can see', marker USING ERRCODE = '22023',
                HINT = 'Pass the message_id of the last event of the previous page.';
        END IF;
        FOR i IN 1 .. array_length(keys, 1) LOOP
            ands := '{}';
            FOR j IN 1 .. i - 1 LOOP
                ands := ands || format('e.%I = %s', keys[j], CASE keys[j] WHEN 'generated' THEN '$8' ELSE '$9' END);
            END LOOP;
            ands := ands || format('e.%I %s %s', keys[i], CASE dirs[i] WHEN 'asc' THEN '>' ELSE '<' END,
                                   CASE keys[i] WHEN 'generated' THEN '$8' ELSE '$9' END);
            ors := ors || ('(' || array_to_string(ands, ' AND ') || ')');
        END LOOP;
        conds := array_append(conds, ('(' || array_to_string(ors, ' OR ') || ')'));
        -- and a bound on the leading key the index can use
        conds := array_append(conds, format('e.%I %s %s', keys[1], CASE dirs[1] WHEN 'asc' THEN '>=' ELSE '<=' END,
                                            CASE keys[1] WHEN 'generated' THEN '$8' ELSE '$9' END));
    END IF;

    RETURN QUERY EXECUTE
        'SELECT e.message_id::text, t.name::text, e.generated, e.traits, e.raw '
        'FROM panko.event e JOIN panko.event_type t ON t.id = e.event_type_id '
        'WHERE ' || array_to_string(conds, ' AND ') ||
        ' ORDER BY ' || array_to_string(orders, ', ') ||
        ' LIMIT $10'
    USING type_id, f->>'message_id', t_start, t_end, tq, admin_scope, member_scope,
          m_generated, m_id, lim;
END
$$;
COMMENT ON FUNCTION panko.get_events(jsonb, integer, text[], text) IS
    'Panko''s get_events: a page of events matching an EventFilter, sorted, after a marker (keyset)';

CREATE FUNCTION panko.event_types() RETURNS SETOF text
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT t.name::text FROM panko.event_type t
     WHERE EXISTS (SELECT 1 FROM panko.event e WHERE e.event_type_id OPERATOR(pg_catalog.=) t.id)
     ORDER BY t.name
$$;
COMMENT ON FUNCTION panko.event_types() IS 'Event types of the events the caller can see, sorted';

CREATE FUNCTION panko.trait_types(event_type text) RETURNS TABLE(name text, type text)
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT DISTINCT tr.name, tr.type
      FROM panko.events e, panko.each_trait(e.traits) tr
     WHERE e.event_type OPERATOR(pg_catalog.=) trait_types.event_type
     ORDER BY 1, 2
$$;
COMMENT ON FUNCTION panko.trait_types(text) IS 'Distinct (trait name, type) pairs of an event type';

CREATE FUNCTION panko.get_traits(event_type text, trait_name text DEFAULT NULL)
    RETURNS TABLE(name text, type text, value text)
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT tr.name, tr.type, tr.value
      FROM panko.events e, panko.each_trait(e.traits) tr
     WHERE e.event_type OPERATOR(pg_catalog.=) get_traits.event_type
       AND (get_traits.trait_name IS NULL
            OR (e.traits OPERATOR(panko.?) get_traits.trait_name
                AND tr.name OPERATOR(pg_catalog.=) get_traits.trait_name))
     ORDER BY e.generated, e.message_id, tr.name, tr.type
$$;
COMMENT ON FUNCTION panko.get_traits(text, text) IS
    'Every stored instance of the traits of an event type (one trait name, or all)';

CREATE FUNCTION panko.capabilities() RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT '{"api": {"events:query:simple": true}, "event_storage": {"storage:production_ready": true}}'::jsonb
$$;
COMMENT ON FUNCTION panko.capabilities() IS 'Panko''s capabilities document';

--------------------------------------------------------------------------
-- Privileges: nothing for PUBLIC but the type and operator support
--------------------------------------------------------------------------
REVOKE ALL ON ALL TABLES IN SCHEMA panko FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA panko FROM PUBLIC;
REVOKE ALL ON SCHEMA panko FROM PUBLIC;
GRANT USAGE ON SCHEMA panko TO PUBLIC;

-- Pure functions on the types (and what the RLS policy calls).
GRANT EXECUTE ON FUNCTION
    panko.traits_in(cstring), panko.traits_out(panko.traits), panko.traits_recv(internal), panko.traits_send(panko.traits),
    panko.traitquery_in(cstring), panko.traitquery_out(panko.traitquery), panko.traitquery_recv(internal),
    panko.traitquery_send(panko.traitquery), panko.traits(jsonb), panko.traits_to_jsonb(panko.traits),
    panko.traitquery(jsonb), panko.trait_text(panko.traits, text), panko.trait_int(panko.traits, text),
    panko.trait_float(panko.traits, text), panko.trait_datetime(panko.traits, text), panko.trait_count(panko.traits),
    panko.each_trait(panko.traits), panko.traits_exist(panko.traits, text),
    panko.traits_contains(panko.traits, panko.traits), panko.traits_contained(panko.traits, panko.traits),
    panko.traits_match(panko.traits, panko.traitquery), panko.traits_match_commutator(panko.traitquery, panko.traits),
    panko.traits_fetch_text(panko.traits, text), panko.traits_eq(panko.traits, panko.traits),
    panko.traits_ne(panko.traits, panko.traits),
    panko.traits_gin_extract_value(panko.traits, internal),
    panko.traits_gin_extract_query(panko.traits, internal, int2, internal, internal, internal, internal),
    panko.traits_gin_consistent(internal, int2, panko.traits, int4, internal, internal, internal, internal),
    panko.traits_gin_compare_partial(bytea, bytea, int2, internal),
    panko.traits_matchsel(internal, oid, internal, integer), panko.traits_containsel(internal, oid, internal, integer),
    panko.traits_existsel(internal, oid, internal, integer),
    panko.iso_timestamp(timestamptz), panko.parse_timestamp(text, text),
    panko.event_json(text, text, timestamptz, panko.traits, jsonb), panko.message_id_hash(text),
    panko.caller_mode(), panko.caller_scope(), panko.caller_has_role(text), panko.caller_project(),
    panko.enable_all_tenants(), panko.setting_seconds(text, bigint), panko.capabilities()
TO PUBLIC;

GRANT SELECT ON panko.event, panko.event_type, panko.events TO panko_reader;
GRANT EXECUTE ON FUNCTION panko.get_events(jsonb, integer, text[], text), panko.event_types(),
    panko.trait_types(text), panko.get_traits(text, text)
TO panko_reader;
GRANT EXECUTE ON FUNCTION panko.record_events(jsonb) TO panko_writer;
GRANT EXECUTE ON FUNCTION panko.clear_expired_data(bigint, bigint) TO panko_admin;
GRANT EXECUTE ON FUNCTION panko.set_identity(text, text, text, boolean) TO panko_api;
