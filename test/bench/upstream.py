"""Baseline (a): upstream OpenStack Panko's SQL storage, replayed.

Schema: panko/storage/sqlalchemy/models.py of Panko's last release (plus its
only alembic migration, trait_int.value -> BIGINT), as PostgreSQL DDL.  The
models also declare an index ix_trait_*_event_id_key on (event_id, key) that
duplicates each trait table's primary key; the reference
(panko-v2-api.md, "Upstream's SQL storage") lists only the primary keys, so
we leave that redundant index out.  That makes upstream smaller and faster to
write than the real thing: it can only flatter the baseline, not panko.

SQL: the statements that impl_sqlalchemy.py issues, written out by hand and
sent through psycopg2 (which, like SQLAlchemy over psycopg2, interpolates
parameters client side).  Our replay skips SQLAlchemy's ORM and Python-side
work entirely, so it too is faster than the real driver.
"""

SCHEMA = """
CREATE TABLE event_type (
    id serial PRIMARY KEY,
    "desc" varchar(255) UNIQUE
);
CREATE TABLE event (
    id serial PRIMARY KEY,
    message_id varchar(50) UNIQUE,
    generated timestamp without time zone,
    raw varchar,
    event_type_id integer REFERENCES event_type (id)
);
CREATE INDEX ix_event_message_id ON event (message_id);
CREATE INDEX ix_event_type_id ON event (event_type_id);
CREATE INDEX ix_event_generated ON event (generated);
CREATE TABLE trait_text (
    event_id integer NOT NULL REFERENCES event (id),
    key varchar(255) NOT NULL,
    value varchar(255),
    PRIMARY KEY (event_id, key)
);
CREATE TABLE trait_int (
    event_id integer NOT NULL REFERENCES event (id),
    key varchar(255) NOT NULL,
    value bigint,
    PRIMARY KEY (event_id, key)
);
CREATE TABLE trait_float (
    event_id integer NOT NULL REFERENCES event (id),
    key varchar(255) NOT NULL,
    value double precision,
    PRIMARY KEY (event_id, key)
);
CREATE TABLE trait_datetime (
    event_id integer NOT NULL REFERENCES event (id),
    key varchar(255) NOT NULL,
    value timestamp without time zone,
    PRIMARY KEY (event_id, key)
);
"""

TRAIT_TABLE = {0: "trait_text", 1: "trait_text", 2: "trait_int", 3: "trait_float", 4: "trait_datetime"}


def record_events(conn, events):
    """Replay impl_sqlalchemy.Connection.record_events: one transaction per
    event; get-or-create the event type inside a savepoint; INSERT INTO event
    ... RETURNING id; one multi-row INSERT per trait type (SQLAlchemy 1.4's
    psycopg2 executemany_mode='values_only')."""
    cur = conn.cursor()
    for ev in events:
        # psycopg2 opens the transaction (BEGIN) with the first statement.
        cur.execute("SAVEPOINT sa_savepoint_1")
        cur.execute('SELECT event_type.id AS event_type_id, event_type."desc" AS event_type_desc '
                    'FROM event_type WHERE event_type."desc" = %(desc_1)s LIMIT %(param_1)s',
                    {"desc_1": ev["event_type"], "param_1": 1})
        row = cur.fetchone()
        if row is None:
            cur.execute('INSERT INTO event_type ("desc") VALUES (%(desc)s) RETURNING event_type.id',
                        {"desc": ev["event_type"]})
            row = cur.fetchone()
        cur.execute("RELEASE SAVEPOINT sa_savepoint_1")
        et_id = row[0]
        cur.execute("INSERT INTO event (message_id, generated, raw, event_type_id) "
                    "VALUES (%(message_id)s, %(generated)s, %(raw)s, %(event_type_id)s) RETURNING event.id",
                    {"message_id": ev["message_id"], "generated": ev["generated"],
                     "raw": ev["_raw_text"], "event_type_id": et_id})
        event_id = cur.fetchone()[0]
        trait_map = {}
        for name, dtype, value in ev["traits"]:
            trait_map.setdefault(dtype, []).append((event_id, name, value))
        for dtype, rows in trait_map.items():
            table = TRAIT_TABLE[dtype]
            values = ", ".join(["(%s, %s, %s)"] * len(rows))
            flat = [x for r in rows for x in r]
            cur.execute("INSERT INTO %s (event_id, key, value) VALUES %s" % (table, values), flat)
        conn.commit()


BULK_EVENT_TYPES = """
INSERT INTO event_type ("desc")
SELECT DISTINCT e->>'event_type' FROM jsonb_array_elements(%(b)s::jsonb) e
ON CONFLICT DO NOTHING
"""

# Set-based bulk load of a batch into upstream's schema (NOT how upstream
# writes: used only to bring its table to the same N as the other systems
# after its per-event ingest rate was measured on a sample).
BULK_LOAD = """
WITH src AS MATERIALIZED (
    SELECT e, ord FROM jsonb_array_elements(%(b)s::jsonb) WITH ORDINALITY AS x(e, ord)
), ev AS (
    INSERT INTO event (message_id, generated, raw, event_type_id)
    SELECT s.e->>'message_id', (s.e->>'generated')::timestamp, (s.e->'raw')::text, et.id
    FROM src s JOIN event_type et ON et."desc" = s.e->>'event_type'
    ORDER BY s.ord
    RETURNING id, message_id
), tr AS MATERIALIZED (
    SELECT ev.id, t->>0 AS key, (t->>1)::int AS ty, t->>2 AS val
    FROM ev JOIN src s ON s.e->>'message_id' = ev.message_id,
         jsonb_array_elements(s.e->'traits') t
), a AS (
    INSERT INTO trait_text (event_id, key, value) SELECT id, key, val FROM tr WHERE ty IN (0, 1)
), b AS (
    INSERT INTO trait_int (event_id, key, value) SELECT id, key, val::bigint FROM tr WHERE ty = 2
), c AS (
    INSERT INTO trait_float (event_id, key, value) SELECT id, key, val::float8 FROM tr WHERE ty = 3
), d AS (
    INSERT INTO trait_datetime (event_id, key, value) SELECT id, key, val::timestamp FROM tr WHERE ty = 4
)
SELECT count(*) FROM ev
"""

TRAIT_MODEL = {"string": "trait_text", "integer": "trait_int", "float": "trait_float", "datetime": "trait_datetime"}
OPS = {"eq": "=", "ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}


def page_query(f, params, marker=None, limit=100, ids_only=False, tag=""):
    """The page query of impl_sqlalchemy.get_events for EventFilter f (a dict
    with event_type, message_id, start_timestamp, end_timestamp,
    traits_filter, admin_proj), with oslo.db's paginate_query ORDER BY /
    marker / LIMIT.  Parameters are added to `params` (named)."""
    def p(name, value):
        key = "%s%s" % (tag, name)
        params[key] = value
        return "%%(%s)s" % key

    et_join = "event_type.id = event.event_type_id"
    if f.get("event_type"):
        et_join += ' AND event_type."desc" = %s' % p("desc_1", f["event_type"])
    sql_from = "FROM event JOIN event_type ON %s" % et_join
    tf = list(f.get("traits_filter") or [])
    if tf:
        base = tf.pop()
        (bt, bv), = [(k, v) for k, v in base.items() if k not in ("key", "op")]
        cols = ["t1.event_id AS ev_id"]
        tables = ["%s t1" % TRAIT_MODEL[bt]]
        conds = ["t1.key = %s" % p("k1", base["key"]),
                 "t1.value %s %s" % (OPS[base.get("op", "eq")], p("v1", bv))]
        for n, flt in enumerate(tf):
            a = "t%d" % (n + 2)
            (ft, fv), = [(k, v) for k, v in flt.items() if k not in ("key", "op")]
            cols.append("%s.event_id AS l%d" % (a, n))
            tables.append("%s %s" % (TRAIT_MODEL[ft], a))
            conds += ["t1.event_id = %s.event_id" % a,
                      "%s.key = %s" % (a, p("k%d" % (n + 2), flt["key"])),
                      "%s.value %s %s" % (a, OPS[flt.get("op", "eq")], p("v%d" % (n + 2), fv))]
        sql_from += " JOIN (SELECT %s FROM %s WHERE %s) f ON f.ev_id = event.id" % (
            ", ".join(cols), ", ".join(tables), " AND ".join(conds))
    where = []
    if f.get("admin_proj"):
        where.append(
            "EXISTS (SELECT 1 FROM ("
            " SELECT trait_text.event_id FROM trait_text"
            " WHERE NOT EXISTS (SELECT 1 FROM trait_text p WHERE p.key = 'project_id'"
            " AND p.event_id = trait_text.event_id)"
            " UNION"
            " SELECT trait_text.event_id FROM trait_text, event ev2"
            " WHERE trait_text.key = 'project_id' AND trait_text.value = %s"
            " AND ev2.id = trait_text.event_id) a WHERE event.id = a.event_id)" % p("proj", f["admin_proj"]))
    if f.get("message_id"):
        where.append("event.message_id = %s" % p("mid", f["message_id"]))
    if f.get("start_timestamp"):
        where.append("event.generated >= %s" % p("start", f["start_timestamp"]))
    if f.get("end_timestamp"):
        where.append("event.generated <= %s" % p("end", f["end_timestamp"]))
    if marker is not None:
        mg, mm = marker
        where.append("(event.generated > %s OR (event.generated = %s AND event.message_id > %s))"
                     % (p("mg", mg), p("mg", mg), p("mm", mm)))
    cols = "event.id" if ids_only else \
        'event.id, event.generated, event.message_id, event_type."desc", event.raw'
    sql = "SELECT %s %s" % (cols, sql_from)
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY event.generated ASC, event.message_id ASC"
    if limit:
        sql += " LIMIT %s" % p("limit", limit)
    return sql


def traits_query(f, params, marker=None, limit=100):
    """The second statement: every trait of the page, UNION ALL over the four
    trait tables, each branch repeating the page query."""
    branches = []
    cols = {
        "trait_datetime": "key, value, NULL::int, NULL::float8, NULL::varchar",
        "trait_int": "key, NULL, value, NULL, NULL",
        "trait_float": "key, NULL, NULL, value, NULL",
        "trait_text": "key, NULL, NULL, NULL, value",
    }
    for i, table in enumerate(["trait_datetime", "trait_int", "trait_float", "trait_text"]):
        sub = page_query(f, params, marker, limit, ids_only=True)
        branches.append("SELECT event_id, %s FROM %s WHERE EXISTS (SELECT 1 FROM (%s) p WHERE %s.event_id = p.id)"
                        % (cols[table], table, sub, table))
    return " UNION ALL ".join(branches) + " ORDER BY key"


def get_events(cur, f, marker_id=None, limit=100):
    """Upstream's get_events: for a marker, first a full get_events on the
    marker's message_id (page query + traits query) to locate it, then the
    page query with oslo.db's keyset condition, then the traits query.
    Returns (list of (generated, message_id), number of trait rows)."""
    marker = None
    if marker_id is not None:
        found, _ = get_events(cur, {"message_id": marker_id}, None, None)
        if not found:
            raise RuntimeError("Marker %s not found." % marker_id)
        marker = found[0]
    params = {}
    cur.execute(page_query(f, params, marker, limit), params)
    rows = cur.fetchall()
    params = {}
    cur.execute(traits_query(f, params, marker, limit), params)
    traits = cur.fetchall()
    return [(r[1], r[2]) for r in rows], len(traits)


def clear_expired_data(conn, end, max_count):
    """impl_sqlalchemy.clear_expired_data(ttl, max_count) as one transaction:
    select the ids older than `end` (LIMIT max_count), delete them from the
    four trait tables and from event, then delete unused event types.
    Returns the number of events deleted."""
    cur = conn.cursor()
    cur.execute("SELECT event.id AS event_id FROM event WHERE event.generated < %(generated_1)s "
                "LIMIT %(param_1)s", {"generated_1": end, "param_1": max_count})
    ids = tuple(r[0] for r in cur.fetchall())
    cond = "IN %(ids)s" if ids else "IN (NULL)"
    for table in ("trait_text", "trait_int", "trait_float", "trait_datetime"):
        cur.execute("DELETE FROM %s WHERE %s.event_id %s" % (table, table, cond), {"ids": ids})
    cur.execute("DELETE FROM event WHERE event.id %s" % cond, {"ids": ids})
    n = cur.rowcount
    cur.execute("DELETE FROM event_type WHERE NOT (EXISTS (SELECT 1 FROM event "
                "WHERE event_type.id = event.event_type_id))")
    conn.commit()
    return n


def expirer(conn, end, batch=100):
    """panko-expirer with events_delete_batch_size = 0 (the default): call
    clear_expired_data(ttl, 100) until it deletes nothing."""
    total = 0
    while True:
        n = clear_expired_data(conn, end, batch)
        total += n
        if n <= 0:
            return total
