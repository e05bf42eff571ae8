\echo Use "CREATE EXTENSION panko" to load this file. \quit

/* panko: OpenStack Panko's event store as a PostgreSQL extension.
 *
 * The current schema: every object once, in its final form.  make copies
 * this file to sql/panko--<default_version>.sql (the version is
 * panko.control's), which CREATE EXTENSION panko runs.  Databases of an
 * earlier release reach the same schema through the upgrade scripts
 * sql/panko--<from>--<to>.sql; test/upgrade.sh checks that an upgraded
 * database and a fresh install have the same objects, definitions,
 * comments and privileges.  A schema change goes both here and into the
 * upgrade script of the next version. */

--------------------------------------------------------------------------
-- Roles.  They are cluster-wide, so they are created only when missing
-- and survive DROP EXTENSION.  None can log in: grant them to login roles.
--------------------------------------------------------------------------
DO $roles$
DECLARE
    r record;
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
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'panko_auditor') THEN
        CREATE ROLE panko_auditor NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'panko_query') THEN
        CREATE ROLE panko_query NOLOGIN;
    END IF;
    -- Roles are cluster-wide and may already exist: the role the read
    -- functions run as must be subject to row-level security.
    SELECT rolname, rolsuper, rolbypassrls, rolcanlogin INTO r
      FROM pg_catalog.pg_roles WHERE rolname = 'panko_query';
    IF r.rolsuper OR r.rolbypassrls OR r.rolcanlogin THEN
        RAISE EXCEPTION 'role panko_query must be NOLOGIN, NOSUPERUSER and NOBYPASSRLS'
            USING ERRCODE = '42501',
                  DETAIL = 'panko''s read functions run as panko_query; row-level security must apply to it.',
                  HINT = 'ALTER ROLE panko_query NOLOGIN NOSUPERUSER NOBYPASSRLS';
    END IF;
END
$roles$;

-- panko_reader, panko_writer: query, store.  panko_auditor: reads every
-- tenant's events directly.  panko_admin: all of that, and maintenance.
-- panko_api: a gateway that states callers' identities.  panko_query: the
-- role panko's read functions run as; no login is granted it.
GRANT panko_reader TO panko_auditor;
GRANT panko_reader, panko_writer, panko_auditor TO panko_admin;
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
CREATE FUNCTION panko.traits_typanalyze(internal) RETURNS boolean
    AS 'MODULE_PATHNAME' LANGUAGE C STRICT PARALLEL SAFE;

CREATE TYPE panko.traits (
    INPUT = panko.traits_in,
    OUTPUT = panko.traits_out,
    RECEIVE = panko.traits_recv,
    SEND = panko.traits_send,
    ANALYZE = panko.traits_typanalyze,
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
COMMENT ON FUNCTION panko.traits_typanalyze(internal) IS
    'ANALYZE support: the most common traits and their frequencies, for the planner';

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
    'Selectivity of @@: per filter from the most common traits ANALYZE keeps (a listed trait''s frequency, half the rarest''s for others, ranges summed), multiplied; btree-like defaults without statistics';
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
-- (key format 3, the "_3" symbols: a datetime is keyed by its minute, a
-- rated data point's qty and price by their first two bytes)
CREATE FUNCTION panko.traits_gin_extract_value(panko.traits, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'traits_gin_extract_value_3' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION panko.traits_gin_extract_value(panko.traits, internal) IS
    'GIN support: one ordered key per trait (a datetime by its minute, an amount, qty or price, by its first bytes)';
CREATE FUNCTION panko.traits_gin_extract_query(panko.traits, internal, int2, internal, internal, internal, internal)
    RETURNS internal
    AS 'MODULE_PATHNAME', 'traits_gin_extract_query_3' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION panko.traits_gin_extract_query(panko.traits, internal, int2, internal, internal, internal, internal) IS
    'GIN support: exact keys for equality, partial-match scans for ranges';
CREATE FUNCTION panko.traits_gin_consistent(internal, int2, panko.traits, int4, internal, internal, internal, internal)
    RETURNS boolean
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION panko.traits_gin_consistent(internal, int2, panko.traits, int4, internal, internal, internal, internal) IS
    'GIN support: all keys must match; recheck for long string, datetime and amount bounds';
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
COMMENT ON OPERATOR FAMILY panko.traits_ops USING gin IS
    'GIN operator family of panko.traits_ops';

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
COMMENT ON FUNCTION panko.message_id_hash(text) IS
    'The registry key of a message_id (64-bit hash; of a CloudKitty point''s id cloudkitty:<push>:<n>, of its push''s cloudkitty:<push>)';

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
CREATE FUNCTION panko.event_visible(traits panko.traits) RETURNS boolean
    AS 'MODULE_PATHNAME' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION panko.event_visible(panko.traits) IS
    'The row-level security policy of panko.event: may the caller see an event with these traits (the caller resolved once per statement)';
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
COMMENT ON SEQUENCE panko.event_type_id_seq IS 'Ids of event types';

CREATE TABLE panko.event (
    generated timestamptz NOT NULL,
    event_type_id integer NOT NULL,
    message_id text COLLATE "C" NOT NULL,
    traits panko.traits NOT NULL,
    raw jsonb,
    retention text COLLATE "C" NOT NULL DEFAULT 'event'
) PARTITION BY RANGE (generated);
COMMENT ON TABLE panko.event IS
    'Events, partitioned by generated (panko.partition_interval wide), each partition by retention class; read them through panko.events or panko.get_events';
COMMENT ON COLUMN panko.event.generated IS 'When the event happened (UTC, microseconds)';
COMMENT ON COLUMN panko.event.message_id IS 'Unique id of the event (unique across partitions through panko.event_message)';
COMMENT ON COLUMN panko.event.traits IS 'Typed traits';
COMMENT ON COLUMN panko.event.raw IS 'The original notification, when stored';
COMMENT ON COLUMN panko.event.retention IS
    'Retention class, from the event type (panko.retention_class): event, trace, rating or metric; each has partitions of its own';

CREATE INDEX event_generated_idx ON panko.event (generated);
CREATE INDEX event_message_id_idx ON panko.event USING hash (message_id);
CREATE INDEX event_type_idx ON panko.event (event_type_id);
-- A small pending list: fast inserts without leaving megabytes of emptied
-- pending pages in every partition's index, or slowing queries of the
-- current partition.
CREATE INDEX event_traits_idx ON panko.event USING gin (traits) WITH (gin_pending_list_limit = 512);
COMMENT ON INDEX panko.event_generated_idx IS 'Time windows and the default order';
COMMENT ON INDEX panko.event_message_id_idx IS 'Lookup by message_id and markers (hash: a quarter of a btree on random ids)';
COMMENT ON INDEX panko.event_type_idx IS 'Event type filters (btree deduplication keeps it tiny)';
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
    classes text[] COLLATE "C",
    CHECK (lower_bound < upper_bound)
);
COMMENT ON TABLE panko.partition IS 'Partitions of panko.event and their bounds [lower_bound, upper_bound)';
COMMENT ON COLUMN panko.partition.classes IS
    'Retention classes with a table in this partition (<name>_<class>, a list partition); NULL: a partition made before 0.5.0, one table for every class';

-- Retention classes: traces, rated data and metrics keep their own time to
-- live.  Which class an event type belongs to is the library's rule
-- (panko.retention_class); this table holds the classes' times to live.
CREATE TABLE panko.retention (
    class text COLLATE "C" PRIMARY KEY,
    ttl_seconds bigint NOT NULL CHECK (ttl_seconds >= -1)
);
COMMENT ON TABLE panko.retention IS
    'Time to live of each retention class that has its own (set by panko.set_retention); a class without a row expires with the events';
COMMENT ON COLUMN panko.retention.class IS 'trace, rating or metric (events follow panko.event_time_to_live)';
COMMENT ON COLUMN panko.retention.ttl_seconds IS 'Seconds; -1 keeps the class forever';

-- Events per partition, as deltas written by ingest and expiry.
CREATE TABLE panko.partition_rows (
    partition text COLLATE "C" NOT NULL,
    n bigint NOT NULL
);
CREATE INDEX partition_rows_partition_idx ON panko.partition_rows (partition);
COMMENT ON TABLE panko.partition_rows IS
    'Events stored in (or deleted from) each partition, as deltas: expiry knows a partition''s size without counting it';
COMMENT ON INDEX panko.partition_rows_partition_idx IS 'Deltas of one partition';

-- Summaries of the trait keys of each partition, so that get_events skips
-- the partitions a trait filter cannot match (src/traits_summary.c), and
-- the epoch that tells a backend its copy of them is current.
CREATE TABLE panko.partition_summary (
    relid oid NOT NULL,
    partition text COLLATE "C" NOT NULL,
    kind "char" NOT NULL CHECK (kind IN ('b', 's', 'd')),
    epoch bigint,
    events bigint NOT NULL,
    keys bytea NOT NULL
);
ALTER TABLE panko.partition_summary ALTER COLUMN keys SET STORAGE EXTERNAL;
-- A writer's statements each read a bounded number of rows through these:
-- a partition's rows of one kind and merge level (src/traits_summary.c
-- merges them); whether a partition is sealed, and which are not yet.
CREATE INDEX partition_summary_relid_kind_idx ON panko.partition_summary (relid, kind, events);
CREATE INDEX partition_summary_seal_idx ON panko.partition_summary (partition) WHERE kind = 's';
COMMENT ON TABLE panko.partition_summary IS
    'Trait keys of partitions: b = one batch''s (not sealed yet), s = the seal of a past partition (a Bloom filter), d = a later batch''s into a sealed one';
COMMENT ON COLUMN panko.partition_summary.relid IS 'The partition (with its name: a row never outlives its partition)';
COMMENT ON COLUMN panko.partition_summary.epoch IS 'panko.summary_epoch when a seal or delta was written; NULL for a batch row';
COMMENT ON COLUMN panko.partition_summary.events IS 'Events whose keys it holds (b and d rows of fewer than 4096 are merged by floor(log16(events)))';
COMMENT ON COLUMN panko.partition_summary.keys IS 'Sorted distinct 32-bit key hashes (b, d) or a Bloom filter (s)';
COMMENT ON INDEX panko.partition_summary_relid_kind_idx IS
    'Summaries of one partition by kind and size: the merge of a level''s rows and the seal read only their own';
COMMENT ON INDEX panko.partition_summary_seal_idx IS 'Seals by partition name: is a partition sealed, which past partitions are not yet';

CREATE TABLE panko.summary_epoch (
    epoch bigint NOT NULL
);
INSERT INTO panko.summary_epoch VALUES (0);
COMMENT ON TABLE panko.summary_epoch IS
    'One row, bumped by every seal, delta and drop of a partition: a backend reads the summaries again when it sees another epoch';

SELECT pg_catalog.pg_extension_config_dump('panko.event_type', '');
SELECT pg_catalog.pg_extension_config_dump('panko.event_message', '');
SELECT pg_catalog.pg_extension_config_dump('panko.partition', '');
SELECT pg_catalog.pg_extension_config_dump('panko.partition_rows', '');
SELECT pg_catalog.pg_extension_config_dump('panko.retention', '');

--------------------------------------------------------------------------
-- Row-level security: Panko's RBAC rules, whoever asks (psql or HTTP)
--------------------------------------------------------------------------
ALTER TABLE panko.event ENABLE ROW LEVEL SECURITY;

CREATE POLICY event_visibility ON panko.event FOR SELECT
USING (panko.event_visible(traits));
COMMENT ON POLICY event_visibility ON panko.event IS
    'Members see their project''s and user''s events; admins their project''s and events without project_id; all_tenants admins and panko_admin everything';

CREATE VIEW panko.events WITH (security_invoker = true) AS
SELECT e.message_id, t.name AS event_type, e.generated, e.traits, e.raw
FROM panko.event e
JOIN panko.event_type t ON t.id OPERATOR(pg_catalog.=) e.event_type_id;
COMMENT ON VIEW panko.events IS
    'Events for ad-hoc SQL; row-level security applies, trait operators use the GIN index';

--------------------------------------------------------------------------
-- Settings and advisory locks, as the library defines them: SQL names
-- them, the library holds their defaults and keys
--------------------------------------------------------------------------
CREATE FUNCTION panko.setting_value(name text) RETURNS bigint
    AS 'MODULE_PATHNAME' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION panko.setting_value(text) IS
    'An integer panko.* setting as the library has it (its default when not set), in seconds for durations';
CREATE FUNCTION panko.advisory_lock(what text, shared boolean DEFAULT false) RETURNS void
    AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
COMMENT ON FUNCTION panko.advisory_lock(text, boolean) IS
    'Wait for one of panko''s transaction-level advisory locks: maintenance (ingest shared, expiry exclusive), partition (creators), maintenance_run (one run at a time)';
CREATE FUNCTION panko.try_advisory_lock(what text, shared boolean DEFAULT false) RETURNS boolean
    AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
COMMENT ON FUNCTION panko.try_advisory_lock(text, boolean) IS
    'Take one of panko''s transaction-level advisory locks if it is free; whether it was taken';

--------------------------------------------------------------------------
-- Partitions
--------------------------------------------------------------------------

CREATE FUNCTION panko.retention_class(event_type text) RETURNS text
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION panko.retention_class(text) IS
    'The retention class of an event type: trace (osprofiler.*), rating (cloudkitty.*), metric (kaneda.*), else event';
CREATE FUNCTION panko.retention_classes() RETURNS text[]
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION panko.retention_classes() IS 'Every retention class, event first';

-- get_events reads a day's events from the day's table itself, so that a
-- call never builds the partition descriptor of panko.event (365 bounds
-- parsed by every new backend).  Row-level security then needs the
-- policies of panko.event on each day's table too: a query that names a
-- partition is judged by the partition's policies, not the parent's.
-- Every table under panko.event (a day's, and each class table in it)
-- gets them, so that all tables that hold events look alike.
-- panko.event's policies and grants stay the one source; this copies them,
-- and every change to them must call it for every partition (pgTAP checks
-- that each table under panko.event has exactly the parent's).
CREATE FUNCTION panko.secure_partition(pname text) RETURNS void
LANGUAGE plpgsql VOLATILE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    parent oid := 'panko.event'::regclass;
    child oid := format('panko.%I', pname)::regclass;
    pol record;
    acl record;
BEGIN
    -- (its ancestors, not the whole tree: a check that read every partition
    -- made creating the 365th day's table a third slower than the first's)
    IF child = parent OR NOT EXISTS (SELECT FROM pg_partition_ancestors(child) a WHERE a.relid = parent) THEN
        RAISE EXCEPTION 'panko.% is not a partition of panko.event', pname
            USING ERRCODE = '22023', HINT = 'Pass the name of a row of panko.partition.';
    END IF;
    EXECUTE format('ALTER TABLE panko.%I ENABLE ROW LEVEL SECURITY', pname);
    FOR pol IN SELECT p.polname FROM pg_policy p WHERE p.polrelid = child LOOP
        EXECUTE format('DROP POLICY %I ON panko.%I', pol.polname, pname);
    END LOOP;
    FOR pol IN
        SELECT p.polname, p.polpermissive,
               CASE p.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT' WHEN 'w' THEN 'UPDATE'
                             WHEN 'd' THEN 'DELETE' ELSE 'ALL' END AS cmd,
               (SELECT string_agg(CASE WHEN r.r = 0 THEN 'PUBLIC' ELSE quote_ident(a.rolname) END, ', ')
                  FROM unnest(p.polroles) r(r) LEFT JOIN pg_roles a ON a.oid = r.r) AS roles,
               pg_get_expr(p.polqual, p.polrelid) AS qual,
               pg_get_expr(p.polwithcheck, p.polrelid) AS withcheck
          FROM pg_policy p WHERE p.polrelid = parent ORDER BY p.polname
    LOOP
        EXECUTE format('CREATE POLICY %I ON panko.%I AS %s FOR %s TO %s%s%s', pol.polname, pname,
                       CASE WHEN pol.polpermissive THEN 'PERMISSIVE' ELSE 'RESTRICTIVE' END, pol.cmd, pol.roles,
                       CASE WHEN pol.qual IS NULL THEN '' ELSE ' USING (' || pol.qual || ')' END,
                       CASE WHEN pol.withcheck IS NULL THEN '' ELSE ' WITH CHECK (' || pol.withcheck || ')' END);
    END LOOP;
    EXECUTE format('REVOKE ALL ON panko.%I FROM PUBLIC', pname);
    FOR acl IN
        SELECT a.privilege_type, CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(r.rolname) END AS grantee
          FROM pg_class c, aclexplode(c.relacl) a LEFT JOIN pg_roles r ON r.oid = a.grantee
         WHERE c.oid = parent AND a.grantee <> c.relowner
    LOOP
        EXECUTE format('GRANT %s ON panko.%I TO %s', acl.privilege_type, pname, acl.grantee);
    END LOOP;
END
$$;
COMMENT ON FUNCTION panko.secure_partition(text) IS
    'Give a table under panko.event (a day''s, or a class table in it) the row-level security policies and grants of panko.event (get_events reads a day''s table directly)';

CREATE FUNCTION panko.create_partition_for(ts timestamptz, class text DEFAULT 'event') RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC'
SET default_tablespace = ''
SET default_table_access_method = 'heap'
AS $$
DECLARE
    width bigint := panko.setting_value('panko.partition_interval');
    lo timestamptz;
    hi timestamptz;
    prev_hi timestamptz;
    next_lo timestamptz;
    pname text;
    pclasses text[];
    near_lo timestamptz := to_timestamp(floor(extract(epoch FROM now() - interval '400 days') / width) * width);
    near_hi timestamptz := to_timestamp(floor(extract(epoch FROM now() + interval '400 days') / width) * width);
BEGIN
    IF class IS NULL OR NOT class = ANY (panko.retention_classes()) THEN
        RAISE EXCEPTION 'unknown retention class "%"', class
            USING ERRCODE = '22023', HINT = format('The classes are %s.', array_to_string(panko.retention_classes(), ', '));
    END IF;
    -- Serialise creators; then another session may already have made it.
    PERFORM panko.advisory_lock('partition');
    SELECT p.name, p.classes INTO pname, pclasses FROM panko.partition p
     WHERE ts >= p.lower_bound AND ts < p.upper_bound;
    IF NOT FOUND THEN
        IF ts >= near_lo AND ts < near_hi THEN
            lo := to_timestamp(floor(extract(epoch FROM ts) / width) * width);
            hi := lo + make_interval(secs => width);
        ELSIF ts < near_lo THEN
            -- More than 400 days old: one partition fills the whole gap below,
            -- so stray timestamps cannot make thousands of partitions.
            lo := '-infinity';
            hi := near_lo;
        ELSE
            -- More than 400 days ahead (a wrong clock): likewise, above.
            lo := near_hi;
            hi := 'infinity';
        END IF;

        -- Fit into the gap between existing partitions.
        SELECT max(p.upper_bound) INTO prev_hi FROM panko.partition p WHERE p.upper_bound <= ts;
        SELECT min(p.lower_bound) INTO next_lo FROM panko.partition p WHERE p.lower_bound > ts;
        lo := greatest(lo, prev_hi);
        hi := least(hi, next_lo);

        -- A partition of the time range, itself partitioned by class.
        pname := CASE WHEN lo = '-infinity' THEN 'event_before_' || to_char(hi, 'YYYYMMDD"t"HH24MISS')
                      ELSE 'event_' || to_char(lo, 'YYYYMMDD"t"HH24MISS') END;
        pclasses := '{}';
        EXECUTE format('CREATE TABLE panko.%I (LIKE panko.event INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE) '
                       'PARTITION BY LIST (retention)', pname);
        EXECUTE format('ALTER TABLE panko.event ATTACH PARTITION panko.%I FOR VALUES FROM (%L) TO (%L)', pname, lo, hi);
        PERFORM panko.secure_partition(pname);
        INSERT INTO panko.partition (name, lower_bound, upper_bound, classes) VALUES (pname, lo, hi, pclasses);
    END IF;

    -- A partition made before 0.5.0 holds every class.
    IF pclasses IS NULL THEN
        RETURN pname;
    END IF;
    IF NOT class = ANY (pclasses) THEN
        EXECUTE format('CREATE TABLE panko.%I (LIKE panko.event INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE)',
                       pname || '_' || class);
        EXECUTE format('ALTER TABLE panko.%I ATTACH PARTITION panko.%I FOR VALUES IN (%L)', pname, pname || '_' || class, class);
        PERFORM panko.secure_partition(pname || '_' || class);
        UPDATE panko.partition p SET classes = ARRAY(SELECT c FROM unnest(p.classes || class) c ORDER BY c)
         WHERE p.name = pname;
    END IF;
    RETURN pname || '_' || class;
END
$$;
COMMENT ON FUNCTION panko.create_partition_for(timestamptz, text) IS
    'Create the partition that will hold this timestamp (interval-aligned within 400 days of now, one catch-all below and above, fitted between existing ones) and its table for the class; returns the table';

-- The tables of a partition that hold these classes (all of them: NULL).
CREATE FUNCTION panko.partition_tables(p panko.partition, wanted text[] DEFAULT NULL) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN p.classes IS NULL THEN ARRAY[p.name]
                ELSE ARRAY(SELECT p.name || '_' || c FROM unnest(p.classes) c
                            WHERE wanted IS NULL OR c = ANY (wanted) ORDER BY c) END
$$;
COMMENT ON FUNCTION panko.partition_tables(panko.partition, text[]) IS
    'The tables that hold a partition''s events of these classes (NULL: every class): <name>_<class>, or the partition itself when it was made before 0.5.0';

-- Drop a partition's tables of these classes, and the partition itself
-- when no class is left in it (one made before 0.5.0 holds every class,
-- so it goes whole).  A long reader of a table must not stall ingest
-- behind us: after a second the drop gives up (NULL) and is tried again
-- by the next run.
CREATE FUNCTION panko.drop_partition_tables(pname text, doomed_classes text[]) RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p panko.partition;
    doomed text[];
    everything text[];
    whole boolean;
    n bigint;
    t text;
    saved_lock_timeout text := current_setting('lock_timeout');
BEGIN
    SELECT * INTO p FROM panko.partition WHERE name = pname FOR UPDATE;
    IF NOT FOUND THEN
        RETURN 0;
    END IF;
    doomed := panko.partition_tables(p, doomed_classes);
    everything := panko.partition_tables(p);
    whole := p.classes IS NULL OR p.classes <@ doomed_classes;
    SELECT coalesce(sum(r.n), 0) INTO n FROM panko.partition_rows r WHERE r.partition = ANY (doomed);
    BEGIN
        PERFORM set_config('lock_timeout', '1s', true);
        IF whole THEN
            EXECUTE format('DROP TABLE panko.%I', p.name);
        ELSE
            FOREACH t IN ARRAY doomed LOOP
                EXECUTE format('DROP TABLE panko.%I', t);
            END LOOP;
        END IF;
        PERFORM set_config('lock_timeout', saved_lock_timeout, true);
    EXCEPTION WHEN lock_not_available THEN
        RAISE LOG 'panko: partition % is in use; it is dropped next run', p.name;
        RETURN NULL;
    END;
    IF whole THEN
        DELETE FROM panko.partition WHERE name = p.name;
        DELETE FROM panko.partition_rows WHERE partition = ANY (everything || p.name);
        DELETE FROM panko.partition_summary WHERE partition = p.name;
        UPDATE panko.summary_epoch SET epoch = epoch + 1;
    ELSE
        UPDATE panko.partition SET classes = ARRAY(SELECT c FROM unnest(p.classes) c WHERE NOT c = ANY (doomed_classes) ORDER BY c)
         WHERE name = p.name;
        DELETE FROM panko.partition_rows WHERE partition = ANY (doomed);
    END IF;
    RETURN n;
END
$$;
COMMENT ON FUNCTION panko.drop_partition_tables(text, text[]) IS
    'Drop a partition''s tables of these classes, and the partition when none is left; events dropped, or NULL when a reader held a table for a second';

-- The rollups (CloudKitty's rating_rollup, Kaneda's metric_rollup) name
-- the table of panko.event their rows count (relid): those rows go with
-- it, whoever drops it (expiry by class, clear_expired_data, an
-- operator).  And what panko keeps of a table dropped by an operator
-- goes too (expiry does that itself): its counts and summaries, its
-- partition's row (a whole day dropped) or its class in the partition's
-- classes, so that the next event of that day makes its table again
-- instead of failing to find it.  Anyone's DROP TABLE fires this: only a
-- drop of panko's own tables, which only their owner can do, touches them.
-- (not SECURITY DEFINER: only the owner of a partition, panko's, can drop it)
CREATE FUNCTION panko.rollup_drop() RETURNS event_trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    dropped oid[];
    names text[];
    rollup text;
BEGIN
    SELECT array_agg(d.objid), array_agg(d.object_name) INTO dropped, names FROM pg_event_trigger_dropped_objects() d
     WHERE d.classid = 'pg_class'::regclass AND d.object_type = 'table' AND d.schema_name = 'panko';
    IF dropped IS NULL THEN
        RETURN;
    END IF;
    IF to_regclass('panko.partition') IS NOT NULL AND to_regclass('panko.partition_rows') IS NOT NULL
       AND to_regclass('panko.partition_summary') IS NOT NULL THEN
        -- (what expiry's drop_partition_tables also does itself)
        DELETE FROM panko.partition_rows r WHERE r.partition OPERATOR(pg_catalog.=) ANY (names);
        DELETE FROM panko.partition_summary s
         WHERE s.relid OPERATOR(pg_catalog.=) ANY (dropped) OR s.partition OPERATOR(pg_catalog.=) ANY (names);
        IF FOUND THEN
            UPDATE panko.summary_epoch SET epoch = epoch + 1;
        END IF;
        DELETE FROM panko.partition p WHERE p.name OPERATOR(pg_catalog.=) ANY (names);
        UPDATE panko.partition p
           SET classes = ARRAY(SELECT c FROM unnest(p.classes) c
                                WHERE NOT (p.name || '_' || c) OPERATOR(pg_catalog.=) ANY (names) ORDER BY c)
         WHERE p.classes IS NOT NULL
           AND EXISTS (SELECT FROM unnest(p.classes) c WHERE (p.name || '_' || c) OPERATOR(pg_catalog.=) ANY (names));
    END IF;
    FOREACH rollup IN ARRAY ARRAY['rating_rollup', 'metric_rollup'] LOOP
        -- (gone when the extension itself is being dropped)
        IF to_regclass('panko.' || rollup) IS NOT NULL THEN
            EXECUTE format('DELETE FROM panko.%I r WHERE r.relid OPERATOR(pg_catalog.=) ANY ($1)', rollup) USING dropped;
        END IF;
    END LOOP;
END
$$;
COMMENT ON FUNCTION panko.rollup_drop() IS
    'Event trigger: deletes the rollups'' rows (rating_rollup, metric_rollup) of a dropped table of panko.event, and panko''s bookkeeping of it: its counts, summaries, and its partition''s row or class';
CREATE EVENT TRIGGER rollup_drop ON sql_drop WHEN TAG IN ('DROP TABLE')
    EXECUTE FUNCTION panko.rollup_drop();

-- The classes that expire with the events: event, and every class without
-- a time to live of its own.
CREATE FUNCTION panko.event_ttl_classes() RETURNS text[]
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT ARRAY(SELECT c FROM unnest(panko.retention_classes()) c
                  WHERE NOT EXISTS (SELECT 1 FROM panko.retention r WHERE r.class = c) ORDER BY c)
$$;
COMMENT ON FUNCTION panko.event_ttl_classes() IS 'The retention classes that expire with the events (no time to live of their own)';

CREATE FUNCTION panko.drop_expired_partitions(cutoff timestamptz, max_count bigint,
                                              OUT partitions_dropped bigint, OUT rows_deleted bigint)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p panko.partition;
    n bigint;
    budget bigint := max_count;
    lim bigint;
    t timestamptz;
    following text[] := panko.event_ttl_classes();
    by_row bigint := 0;
BEGIN
    partitions_dropped := 0;
    rows_deleted := 0;
    FOR p IN SELECT * FROM panko.partition WHERE upper_bound <= cutoff
                AND (classes IS NULL OR classes && following) ORDER BY lower_bound LOOP
        SELECT coalesce(sum(r.n), 0) INTO n FROM panko.partition_rows r
         WHERE r.partition = ANY (panko.partition_tables(p, following));
        EXIT WHEN budget IS NOT NULL AND n > budget;
        n := panko.drop_partition_tables(p.name, following);
        IF n IS NULL THEN
            RETURN;
        END IF;
        partitions_dropped := partitions_dropped + 1;
        rows_deleted := rows_deleted + n;
        budget := budget - n;
    END LOOP;

    -- What is left below the cutoff: rows of the boundary partition (or of
    -- a partition too big for the budget), deleted oldest first in batches
    -- of at most 10,000, each found through the generated index.  Classes
    -- with a time to live of their own are never deleted row by row.
    LOOP
        EXIT WHEN budget IS NOT NULL AND budget <= 0;
        lim := least(coalesce(budget, 10000), 10000);
        t := NULL;
        SELECT e.generated INTO t FROM panko.event e
         WHERE e.generated < cutoff AND e.retention = ANY (following) ORDER BY e.generated OFFSET lim - 1 LIMIT 1;
        -- (each batch also takes its rows off the partitions' counts)
        IF t IS NULL THEN
            -- fewer than a batch left: all of them
            WITH gone AS (
                DELETE FROM panko.event e WHERE e.generated < cutoff AND e.retention = ANY (following) RETURNING e.tableoid
            ), counted AS (
                INSERT INTO panko.partition_rows (partition, n)
                SELECT c.relname, -count(*) FROM gone g JOIN pg_class c ON c.oid = g.tableoid GROUP BY c.relname
                RETURNING partition_rows.n AS delta
            )
            SELECT coalesce(-sum(counted.delta), 0) INTO n FROM counted;
        ELSIF budget IS NULL THEN
            WITH gone AS (
                DELETE FROM panko.event e WHERE e.generated <= t AND e.generated < cutoff AND e.retention = ANY (following)
                RETURNING e.tableoid
            ), counted AS (
                INSERT INTO panko.partition_rows (partition, n)
                SELECT c.relname, -count(*) FROM gone g JOIN pg_class c ON c.oid = g.tableoid GROUP BY c.relname
                RETURNING partition_rows.n AS delta
            )
            SELECT coalesce(-sum(counted.delta), 0) INTO n FROM counted;
        ELSE
            -- exactly lim rows, oldest first
            WITH doomed AS (
                SELECT e.generated, e.message_id FROM panko.event e
                 WHERE e.generated <= t AND e.retention = ANY (following) ORDER BY e.generated, e.message_id LIMIT lim
            ), gone AS (
                DELETE FROM panko.event e USING doomed d
                 WHERE e.generated = d.generated AND e.message_id = d.message_id
                RETURNING e.tableoid
            ), counted AS (
                INSERT INTO panko.partition_rows (partition, n)
                SELECT c.relname, -count(*) FROM gone g JOIN pg_class c ON c.oid = g.tableoid GROUP BY c.relname
                RETURNING partition_rows.n AS delta
            )
            SELECT coalesce(-sum(counted.delta), 0) INTO n FROM counted;
        END IF;
        rows_deleted := rows_deleted + n;
        by_row := by_row + n;
        budget := budget - n;
        EXIT WHEN t IS NULL OR n = 0;
    END LOOP;
    -- Rated data that follows the events' time to live, deleted row by
    -- row: its daily rollup (sql/rating.sql) counted again up to the cutoff.
    IF by_row > 0 AND 'rating' = ANY (following) THEN
        PERFORM panko.rating_rollup_refresh('-infinity', cutoff);
    END IF;
END
$$;
COMMENT ON FUNCTION panko.drop_expired_partitions(timestamptz, bigint) IS
    'Events'' expiry: drop the tables of partitions wholly older than cutoff (within max_count events) of every class without a time to live of its own, then delete older rows of those classes in the boundary partition';

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
    t record;
    p record;
    used boolean;
    n bigint := 0;
BEGIN
    -- One index probe per type, in the newest partition first, where a type
    -- still in use almost always is: never a scan of the events, and no
    -- query over every partition at once.
    FOR t IN SELECT id FROM panko.event_type LOOP
        used := false;
        FOR p IN SELECT name FROM panko.partition ORDER BY lower_bound > now(), lower_bound DESC LOOP
            EXECUTE format('SELECT EXISTS (SELECT 1 FROM panko.%I WHERE event_type_id = $1)', p.name)
               INTO used USING t.id;
            EXIT WHEN used;
        END LOOP;
        IF NOT used THEN
            DELETE FROM panko.event_type WHERE id = t.id;
            n := n + 1;
        END IF;
    END LOOP;
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
    PERFORM panko.advisory_lock('maintenance');
    r := panko.drop_expired_partitions(now() - make_interval(secs => ttl_seconds), max_count);
    PERFORM panko.remove_unused_event_types();
    -- (the registry of message_ids is purged by panko.run_maintenance())
    RETURN r.rows_deleted;
END
$$;
COMMENT ON FUNCTION panko.clear_expired_data(bigint, bigint) IS
    'Upstream''s expiry: delete events older than ttl_seconds (at most max_count), drop unused event types; returns events deleted';

CREATE FUNCTION panko.seal_partitions(max_count integer DEFAULT 1000) RETURNS integer
    AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION panko.seal_partitions(integer) IS
    'Seal past partitions that have no summary of their trait keys yet (at most max_count, newest first), so that trait filters skip them; run by maintenance; returns how many';

CREATE FUNCTION panko.set_retention(class text, ttl_seconds bigint) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF class IS NULL OR NOT class = ANY (panko.retention_classes()) OR class = 'event' THEN
        RAISE EXCEPTION 'unknown retention class "%"', class
            USING ERRCODE = '22023',
                  DETAIL = 'Events expire by panko.event_time_to_live (or panko.clear_expired_data); the other classes can have a time to live of their own.',
                  HINT = 'The classes are trace, rating and metric.';
    END IF;
    IF ttl_seconds IS NULL THEN
        DELETE FROM panko.retention r WHERE r.class = set_retention.class;
    ELSIF ttl_seconds < -1 THEN
        RAISE EXCEPTION 'a time to live must be -1 (forever) or at least 0 seconds, not %', ttl_seconds
            USING ERRCODE = '22023';
    ELSE
        INSERT INTO panko.retention AS r (class, ttl_seconds) VALUES (set_retention.class, ttl_seconds)
        ON CONFLICT ON CONSTRAINT retention_pkey DO UPDATE SET ttl_seconds = excluded.ttl_seconds;
    END IF;
END
$$;
COMMENT ON FUNCTION panko.set_retention(text, bigint) IS
    'Give a retention class (trace, rating, metric) its own time to live in seconds (-1: forever), or NULL: it expires with the events again';

CREATE FUNCTION panko.expire_class(class text) RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    ttl bigint;
    p panko.partition;
    n bigint;
    total bigint := 0;
BEGIN
    SELECT r.ttl_seconds INTO ttl FROM panko.retention r WHERE r.class = expire_class.class;
    IF NOT FOUND OR ttl < 0 THEN
        RETURN 0;                       -- expires with the events, or never
    END IF;
    -- Exclusive against ingest (which holds it shared) and other runs.
    PERFORM panko.advisory_lock('maintenance');
    -- Whole tables only: the class's table in every partition wholly older
    -- than the cutoff.  (Partitions made before 0.5.0 hold every class in
    -- one table and expire with the events.)
    FOR p IN SELECT * FROM panko.partition pp
              WHERE pp.upper_bound <= now() - make_interval(secs => ttl)
                AND expire_class.class = ANY (pp.classes) ORDER BY pp.lower_bound LOOP
        n := panko.drop_partition_tables(p.name, ARRAY[class]);
        EXIT WHEN n IS NULL;
        total := total + n;
    END LOOP;
    RETURN total;
END
$$;
COMMENT ON FUNCTION panko.expire_class(text) IS
    'Drop a retention class''s tables of the partitions wholly older than its time to live (panko.set_retention); events dropped';

--------------------------------------------------------------------------
-- Panko's storage API
--------------------------------------------------------------------------
CREATE FUNCTION panko.record_events(events jsonb)
    RETURNS TABLE(message_id text, status text, detail text)
    AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE STRICT SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    -- partitions are created under panko's storage settings, not the caller's
    SET default_tablespace = '' SET default_table_access_method = 'heap';
COMMENT ON FUNCTION panko.record_events(jsonb) IS
    'Store a JSON array of events (Panko API or Ceilometer form); returns one row per event NOT stored: duplicate or rejected, with why';

CREATE FUNCTION panko.record_events_text(events text)
    RETURNS TABLE(message_id text, status text, detail text)
    AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE STRICT SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    -- partitions are created under panko's storage settings, not the caller's
    SET default_tablespace = '' SET default_table_access_method = 'heap';
COMMENT ON FUNCTION panko.record_events_text(text) IS
    'record_events for a batch sent as JSON text: the same outcomes, read without building a jsonb of the batch (malformed JSON fails with 22P02 as the jsonb argument would)';

CREATE FUNCTION panko.get_events(filter jsonb DEFAULT '{}', "limit" integer DEFAULT 100,
                                 sort text[] DEFAULT NULL, marker text DEFAULT NULL)
    RETURNS TABLE(message_id text, event_type text, generated timestamptz, traits panko.traits, raw jsonb)
    AS 'MODULE_PATHNAME' LANGUAGE C STABLE PARALLEL UNSAFE ROWS 100 SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION panko.get_events(jsonb, integer, text[], text) IS
    'Panko''s get_events: a page of events matching an EventFilter, sorted, after a marker (keyset)';

CREATE FUNCTION panko.event_types() RETURNS SETOF text
LANGUAGE sql STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT t.name::text FROM panko.event_type t
     WHERE EXISTS (SELECT 1 FROM panko.event e WHERE e.event_type_id OPERATOR(pg_catalog.=) t.id)
     ORDER BY t.name
$$;
COMMENT ON FUNCTION panko.event_types() IS 'Event types of the events the caller can see, sorted';

CREATE FUNCTION panko.trait_types(event_type text) RETURNS TABLE(name text, type text)
LANGUAGE sql STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    -- Upstream's order: its trait tables one by one (string, integer,
    -- float, datetime), the names sorted within each.
    SELECT d.name, d.type
      FROM (SELECT DISTINCT tr.name, tr.type
              FROM panko.events e, panko.each_trait(e.traits) tr
             WHERE e.event_type OPERATOR(pg_catalog.=) trait_types.event_type) d
     ORDER BY pg_catalog.array_position(ARRAY['string', 'integer', 'float', 'datetime'], d.type), d.name COLLATE "C"
$$;
COMMENT ON FUNCTION panko.trait_types(text) IS 'Distinct (trait name, type) pairs of an event type, in upstream''s order: string, integer, float, datetime, then by name';

CREATE FUNCTION panko.get_traits(event_type text, trait_name text DEFAULT NULL)
    RETURNS TABLE(name text, type text, value text)
LANGUAGE sql STABLE PARALLEL SAFE SECURITY DEFINER
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
-- Maintenance: what the expiry worker, pg_cron or an operator runs
--------------------------------------------------------------------------
CREATE FUNCTION panko.run_maintenance() RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC'
AS $$
DECLARE
    t0 timestamptz := clock_timestamp();
    ttl bigint := panko.setting_value('panko.event_time_to_live');
    max_count bigint := nullif(panko.setting_value('panko.expiry_max_count'), 0);
    width bigint := panko.setting_value('panko.partition_interval');
    premake integer := panko.setting_value('panko.partition_premake');
    created integer := 0;
    dropped bigint := 0;
    deleted bigint := 0;
    types_removed bigint;
    purged bigint;
    r record;
    ts timestamptz;
    c text;
    expired bigint;
    sealed integer;
    classes jsonb := '{}';
BEGIN
    -- One run at a time: the worker, pg_cron and manual calls skip when
    -- another run is under way.
    IF NOT panko.try_advisory_lock('maintenance_run') THEN
        RETURN jsonb_build_object('skipped', true, 'partitions_created', 0, 'partitions_dropped', 0,
                                  'rows_deleted', 0, 'classes_expired', '{}'::jsonb, 'partitions_sealed', 0, 'event_types_removed', 0, 'registry_rows_purged', 0,
                                  'duration_ms', round((extract(epoch FROM clock_timestamp() - t0) * 1000)::numeric, 3));
    END IF;
    -- Exclusive against ingest, which holds this lock shared per batch.
    PERFORM panko.advisory_lock('maintenance');

    FOR k IN 0 .. premake LOOP
        ts := now() + make_interval(secs => width * k);
        IF NOT EXISTS (SELECT 1 FROM panko.partition p WHERE ts >= p.lower_bound AND ts < p.upper_bound) THEN
            PERFORM panko.create_partition_for(ts);
            created := created + 1;
        END IF;
    END LOOP;

    IF ttl >= 0 THEN
        r := panko.drop_expired_partitions(now() - make_interval(secs => ttl), max_count);
        dropped := r.partitions_dropped;
        deleted := r.rows_deleted;
    END IF;
    -- Classes with a time to live of their own: whole tables only.
    FOR c IN SELECT rr.class FROM panko.retention rr ORDER BY rr.class LOOP
        expired := panko.expire_class(c);
        classes := classes || jsonb_build_object(c, expired);
        deleted := deleted + expired;
    END LOOP;
    -- Summaries of past partitions that writers have not sealed.
    sealed := panko.seal_partitions(1000);
    types_removed := panko.remove_unused_event_types();
    purged := panko.purge_registry(50000);
    -- one row per partition in the counts (ingest adds one per batch)
    WITH d AS (DELETE FROM panko.partition_rows RETURNING partition, n)
    INSERT INTO panko.partition_rows (partition, n) SELECT partition, sum(n) FROM d GROUP BY partition;

    RETURN jsonb_build_object(
        'skipped', false,
        'partitions_created', created,
        'partitions_dropped', dropped,
        'rows_deleted', deleted,
        'classes_expired', classes,
        'partitions_sealed', sealed,
        'event_types_removed', types_removed,
        'registry_rows_purged', purged,
        'duration_ms', round((extract(epoch FROM clock_timestamp() - t0) * 1000)::numeric, 3));
END
$$;
COMMENT ON FUNCTION panko.run_maintenance() IS
    'One maintenance run: partitions ahead, expiry by panko.event_time_to_live and by each retention class''s own time to live (whole partitions dropped), seals of past partitions, unused event types, registry; reports what it did';

--------------------------------------------------------------------------
-- Panko's v2 HTTP API, as SQL: every rule lives here, panko-api only
-- translates HTTP.  SQLSTATEs map to statuses: class 22 -> 400,
-- 28000 -> 401, 42501 -> 403, P0002 -> 404.
--------------------------------------------------------------------------
CREATE FUNCTION panko.api_require_identity() RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF panko.caller_mode() = 'all' THEN
        RETURN;
    END IF;
    IF coalesce(current_setting('panko.request_user_id', true), '') = ''
       OR coalesce(current_setting('panko.request_project_id', true), '') = '' THEN
        RAISE EXCEPTION 'The request needs a user and a project (X-User-Id and X-Project-Id)'
            USING ERRCODE = '42501';
    END IF;
END
$$;
COMMENT ON FUNCTION panko.api_require_identity() IS
    'Upstream''s rule for /v2/events: a caller without user and project is refused (403)';

CREATE FUNCTION panko.api_require_admin() RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    project text := panko.caller_project();
BEGIN
    IF panko.caller_mode() NOT IN ('admin', 'all') THEN
        IF project IS NULL THEN
            RAISE EXCEPTION 'Not Authorized' USING ERRCODE = '28000';
        END IF;
        RAISE EXCEPTION 'Not Authorized to access project %', project USING ERRCODE = '28000';
    END IF;
    -- Event type routes are admin-wide upstream: they see every project.
    PERFORM panko.enable_all_tenants();
END
$$;
COMMENT ON FUNCTION panko.api_require_admin() IS
    'The /v2/event_types routes are admin-only (401 otherwise) and see every project';

CREATE FUNCTION panko.api_get_events(params jsonb) RETURNS json
    AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION panko.api_get_events(jsonb) IS
    'GET /v2/events: {"q": [{"field","op","type","value"}], "limit", "sort", "marker"} -> a JSON list of events';

CREATE FUNCTION panko.api_get_event(message_id text) RETURNS json
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    result json;
BEGIN
    PERFORM panko.api_require_identity();
    IF message_id IS NOT NULL THEN
        SELECT panko.event_json(g.message_id, g.event_type, g.generated, g.traits, g.raw) INTO result
          FROM panko.get_events(jsonb_build_object('message_id', message_id), 1) g;
    END IF;
    IF result IS NULL THEN
        RAISE EXCEPTION 'Event % Not Found', message_id USING ERRCODE = 'P0002';
    END IF;
    RETURN result;
END
$$;
COMMENT ON FUNCTION panko.api_get_event(text) IS 'GET /v2/events/{message_id}: one visible event, or P0002 (404)';

CREATE FUNCTION panko.api_event_types() RETURNS json
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM panko.api_require_admin();
    -- Upstream listed its dictionary of event types (maintenance removes
    -- the types no event uses any more).
    RETURN (SELECT coalesce(json_agg(t.name ORDER BY t.name), '[]'::json) FROM panko.event_type t);
END
$$;
COMMENT ON FUNCTION panko.api_event_types() IS 'GET /v2/event_types: sorted event type names (admin)';

CREATE FUNCTION panko.api_trait_types(event_type text) RETURNS json
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM panko.api_require_admin();
    RETURN (SELECT coalesce(json_agg(json_build_object('name', t.name, 'type', t.type) ORDER BY t.n), '[]'::json)
              FROM panko.trait_types(event_type) WITH ORDINALITY AS t(name, type, n));
END
$$;
COMMENT ON FUNCTION panko.api_trait_types(text) IS 'GET /v2/event_types/{type}/traits: distinct (name, type) pairs (admin)';

CREATE FUNCTION panko.api_traits(event_type text, trait_name text) RETURNS json
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM panko.api_require_admin();
    RETURN (SELECT coalesce(json_agg(json_build_object('name', t.name, 'value', t.value, 'type', t.type)), '[]'::json)
              FROM panko.get_traits(event_type, trait_name) t);
END
$$;
COMMENT ON FUNCTION panko.api_traits(text, text) IS
    'GET /v2/event_types/{type}/traits/{name}: every stored instance of that trait (admin)';

CREATE FUNCTION panko.api_capabilities() RETURNS json
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT panko.capabilities()::json
$$;
COMMENT ON FUNCTION panko.api_capabilities() IS 'GET /v2/capabilities';

CREATE FUNCTION panko.api_post_events(events jsonb) RETURNS json
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    result json;
BEGIN
    -- An admin (panko.admin_roles) or a service such as Ceilometer.
    IF NOT (panko.caller_mode() IN ('admin', 'all') OR panko.caller_has_role('service')) THEN
        RAISE EXCEPTION 'Storing events needs the admin or service role' USING ERRCODE = '42501';
    END IF;
    IF events IS NULL OR jsonb_typeof(events) <> 'array' THEN
        RAISE EXCEPTION 'The request body must be a JSON list of events' USING ERRCODE = '22023';
    END IF;
    WITH r AS (SELECT * FROM panko.record_events(events))
    SELECT json_build_object(
               'stored', jsonb_array_length(events) - count(*),
               'duplicates', count(*) FILTER (WHERE r.status = 'duplicate'),
               'rejected', count(*) FILTER (WHERE r.status = 'rejected'),
               'problems', coalesce(json_agg(json_build_object('message_id', r.message_id, 'status', r.status,
                                                               'detail', r.detail)), '[]'::json))
      INTO result FROM r;
    RETURN result;
END
$$;
COMMENT ON FUNCTION panko.api_post_events(jsonb) IS
    'POST /v2/events: store Ceilometer''s (or Panko''s) event list; counts of stored, duplicate and rejected events';

--------------------------------------------------------------------------
-- Privileges: PUBLIC gets the types and their operators, nothing else
--------------------------------------------------------------------------
REVOKE ALL ON ALL TABLES IN SCHEMA panko FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA panko FROM PUBLIC;
REVOKE ALL ON SCHEMA panko FROM PUBLIC;
GRANT USAGE ON SCHEMA panko TO PUBLIC;

-- The types' own functions, for everyone.  Support functions (GIN,
-- selectivity, ANALYZE) are called by PostgreSQL without a privilege
-- check, so nobody needs EXECUTE on them.
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
    panko.traits_ne(panko.traits, panko.traits)
TO PUBLIC;

-- Direct reads: only roles that see every tenant.  A role that can read
-- the table can EXPLAIN ANALYZE it, and the LEAKPROOF trait operators run
-- before the policy: the plan would count rows the policy hides.
GRANT SELECT ON panko.event, panko.events, panko.event_type, panko.partition TO panko_auditor, panko_query;
GRANT SELECT ON panko.retention TO panko_auditor;

-- The read functions run as panko_query (SECURITY DEFINER), which row-level
-- security applies to; the policy judges the role that called them.
ALTER FUNCTION panko.get_events(jsonb, integer, text[], text) OWNER TO panko_query;
ALTER FUNCTION panko.event_types() OWNER TO panko_query;
ALTER FUNCTION panko.trait_types(text) OWNER TO panko_query;
ALTER FUNCTION panko.get_traits(text, text) OWNER TO panko_query;
ALTER FUNCTION panko.api_event_types() OWNER TO panko_query;
GRANT EXECUTE ON FUNCTION panko.get_events(jsonb, integer, text[], text), panko.event_types(),
    panko.trait_types(text), panko.get_traits(text, text)
TO panko_reader;

-- For the users of the store, and for the row-level security policy
-- (evaluated as the role that reads: panko_query or a direct reader).
GRANT EXECUTE ON FUNCTION
    panko.iso_timestamp(timestamptz), panko.parse_timestamp(text, text),
    panko.event_json(text, text, timestamptz, panko.traits, jsonb), panko.capabilities(),
    panko.caller_mode(), panko.caller_scope(), panko.caller_has_role(text), panko.caller_project(),
    panko.event_visible(panko.traits)
TO panko_reader, panko_query;

GRANT EXECUTE ON FUNCTION panko.record_events(jsonb) TO panko_writer;
GRANT EXECUTE ON FUNCTION panko.record_events_text(text) TO panko_writer;
GRANT EXECUTE ON FUNCTION panko.clear_expired_data(bigint, bigint), panko.run_maintenance(),
    panko.message_id_hash(text), panko.set_retention(text, bigint), panko.expire_class(text),
    panko.seal_partitions(integer)
TO panko_admin;
GRANT EXECUTE ON FUNCTION panko.retention_class(text), panko.retention_classes() TO panko_reader, panko_writer;

-- The HTTP functions are panko-api's.
GRANT EXECUTE ON FUNCTION panko.set_identity(text, text, text, boolean), panko.api_require_identity(),
    panko.api_require_admin(), panko.api_get_events(jsonb), panko.api_get_event(text), panko.api_event_types(),
    panko.api_trait_types(text), panko.api_traits(text, text), panko.api_capabilities(), panko.api_post_events(jsonb),
    panko.enable_all_tenants()
TO panko_api;
-- api_event_types runs as panko_query and asks for an admin itself.
GRANT EXECUTE ON FUNCTION panko.api_require_admin(), panko.enable_all_tenants() TO panko_query;

--------------------------------------------------------------------------
-- OSProfiler traces: the store and the queries of the panko:// driver
-- (python/panko_drivers/osprofiler.py, which only calls these functions)
--
-- A notification (the -start or -stop of a span) is an event of type
-- osprofiler.start or osprofiler.stop (OSProfiler's rule: a name ending in
-- "stop" stops a span), message_id osprofiler:<start|stop>:<trace_id> (so
-- a copy sent twice is a duplicate), string traits base_id, trace_id,
-- parent_id, name, project, service, host, and etype on a -stop whose info
-- carries an error; raw is the notification.  The earliest notification
-- of a trace in the first call that stores one also becomes the trace's
-- entry: type osprofiler.trace, message_id osprofiler:trace:<base_id>, the
-- same traits.  The GIN index finds a trace's notifications (base_id) and
-- the errors (etype); a partial index lists the entries, newest first.
-- Row-level security applies: traces carry no project_id, so auditors,
-- admins and admin identities see them, members do not.  Their event types
-- (osprofiler.*) are the retention class trace: they have tables of their
-- own in each partition, and expire with the events unless
-- panko.set_retention('trace', seconds) gives them a time to live of their
-- own (whole tables dropped).
--------------------------------------------------------------------------
CREATE INDEX event_trace_list_idx ON panko.event (generated)
    WHERE message_id LIKE 'osprofiler:trace:%';
COMMENT ON INDEX panko.event_trace_list_idx IS
    'The list of OSProfiler traces, newest first: one entry per trace (message_id osprofiler:trace:<base_id>)';

-- (C, src/trace_notify.c: the driver calls it once per notification.)  It
-- stores through record_events' own path, so it runs as record_events does:
-- SECURITY DEFINER as the extension's owner, granted to panko_writer only.
CREATE FUNCTION panko.trace_notify(notifications jsonb) RETURNS integer
    AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    -- partitions are created under panko's storage settings, not the caller's
    SET default_tablespace = '' SET default_table_access_method = 'heap';
COMMENT ON FUNCTION panko.trace_notify(jsonb) IS
    'Store OSProfiler notifications (a JSON object, or an array of them): the panko:// driver''s notify; returns how many were new (copies already stored are ignored); a notification without its ids, name or timestamp fails the call and nothing is stored';

CREATE FUNCTION panko.trace_report_json(base_id text) RETURNS json
    AS 'MODULE_PATHNAME' LANGUAGE C STABLE
    SET search_path = pg_catalog, pg_temp
    -- the GIN index even when the trace is a large part of its partition (a
    -- scan tests every row's traits and costs far more than the planner
    -- thinks), and no JIT for a plan whose cost that inflates
    SET enable_seqscan = off
    SET jit = off;
COMMENT ON FUNCTION panko.trace_report_json(text) IS
    'The body of panko.trace_report (C, one pass: the trace''s notifications from the GIN index, the tree in memory, the JSON written once); runs with the caller''s rights, so only panko_query (trace_report''s owner) may call it';

CREATE FUNCTION panko.trace_report(base_id text) RETURNS json
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- osprofiler.drivers.base.Driver: _append_results over the trace's
    -- notifications in the order they happened (a span's start before its
    -- stop, then by trace_id), then _parse_results and _build_tree, in C
    -- (src/trace_report.c), reading as panko_query: row-level security
    -- judges the caller.
    RETURN panko.trace_report_json(base_id);
END
$$;
COMMENT ON FUNCTION panko.trace_report(text) IS
    'The report of one OSProfiler trace, the tree osprofiler''s Driver._parse_results builds (info, children, stats); P0002 when no notification of it is visible';

CREATE FUNCTION panko.trace_list(fields text[] DEFAULT NULL, "limit" integer DEFAULT NULL)
    RETURNS TABLE(base_id text, generated timestamptz, trace jsonb)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
-- from the index, whatever the estimates say (as trace_report)
SET enable_seqscan = off
SET jit = off
AS $$
    SELECT e.raw->>'base_id', e.generated,
           CASE WHEN coalesce(cardinality(trace_list.fields), 0) = 0
                THEN jsonb_build_object('base_id', e.raw->'base_id', 'timestamp', e.raw->'timestamp')
                ELSE coalesce((SELECT jsonb_object_agg(f.f, CASE WHEN f.f OPERATOR(pg_catalog.=) 'host' AND NOT e.raw ? 'host'
                                                                 THEN e.raw->'info'->'host' ELSE e.raw->f.f END)
                                 FROM unnest(trace_list.fields) AS f(f)
                                WHERE e.raw ? f.f OR (f.f OPERATOR(pg_catalog.=) 'host' AND e.raw->'info' ? 'host')), '{}')
                     || jsonb_build_object('base_id', e.raw->'base_id', 'timestamp', e.raw->'timestamp')
           END
      FROM panko.event e
     WHERE e.message_id LIKE 'osprofiler:trace:%'
     ORDER BY e.generated DESC
     LIMIT trace_list."limit"
$$;
COMMENT ON FUNCTION panko.trace_list(text[], integer) IS
    'OSProfiler traces, newest first (at most limit): base_id, when it started, and as trace the driver''s answer: base_id, timestamp and the fields asked for (of the trace''s first notification; host is info.host)';

CREATE FUNCTION panko.trace_errors("limit" integer DEFAULT NULL)
    RETURNS TABLE(base_id text, generated timestamptz, etype text, trace jsonb)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
-- from the index, whatever the estimates say (as trace_report)
SET enable_seqscan = off
SET jit = off
AS $$
    SELECT f.base_id, f.generated, f.etype, jsonb_build_object('base_id', f.base_id, 'timestamp', f.ts)
      FROM (SELECT DISTINCT ON (e.raw->>'base_id') e.raw->>'base_id' AS base_id, e.generated,
                   e.raw->'info'->>'etype' AS etype, e.raw->'timestamp' AS ts
              FROM panko.event e
             WHERE e.traits OPERATOR(panko.?) 'etype'
               AND (e.event_type_id OPERATOR(pg_catalog.+) 0) IN
                   (SELECT t.id FROM panko.event_type t WHERE t.name OPERATOR(pg_catalog.=) 'osprofiler.stop')
             ORDER BY e.raw->>'base_id', e.generated) f
     ORDER BY f.generated DESC
     LIMIT trace_errors."limit"
$$;
COMMENT ON FUNCTION panko.trace_errors(integer) IS
    'OSProfiler traces with an error (a -stop notification whose info carries etype), newest first: base_id, the first error''s time and type, and as trace the driver''s answer (base_id and timestamp)';

-- Writers store traces (trace_notify, as record_events); the queries
-- run as panko_query, so row-level security judges the caller, and readers
-- call them.
REVOKE ALL ON FUNCTION panko.trace_notify(jsonb), panko.trace_report(text), panko.trace_report_json(text),
    panko.trace_list(text[], integer), panko.trace_errors(integer) FROM PUBLIC;
ALTER FUNCTION panko.trace_report(text) OWNER TO panko_query;
ALTER FUNCTION panko.trace_list(text[], integer) OWNER TO panko_query;
ALTER FUNCTION panko.trace_errors(integer) OWNER TO panko_query;
GRANT EXECUTE ON FUNCTION panko.trace_notify(jsonb) TO panko_writer;
-- trace_report's body: only its owner calls it.
GRANT EXECUTE ON FUNCTION panko.trace_report_json(text) TO panko_query;
GRANT EXECUTE ON FUNCTION panko.trace_report(text), panko.trace_list(text[], integer), panko.trace_errors(integer)
TO panko_reader;

--------------------------------------------------------------------------
-- Tell the operator how expiry will run.
--------------------------------------------------------------------------
-- Extension scripts run with client_min_messages raised to warning.
SET LOCAL client_min_messages = notice;
DO $notice$
BEGIN
    IF NOT (',' || replace(current_setting('shared_preload_libraries'), ' ', '') || ',') LIKE '%,panko,%' THEN
        RAISE NOTICE 'panko: the expiry worker is not running (panko is not in shared_preload_libraries)'
            USING HINT = 'Add panko to shared_preload_libraries and restart, or schedule SELECT panko.run_maintenance() with pg_cron.';
    END IF;
END
$notice$;
