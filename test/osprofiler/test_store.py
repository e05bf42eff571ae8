"""The trace functions as psql users call them: the same answers as the
driver, the plans inside them on a realistic volume (every operation
answered from an index; none reads all the notifications), row-level
security, the event types and message_ids.  Run by run.sh (the roles and
auto_explain settings are its)."""

import datetime
import json
import random
import re
import unittest
import uuid

import psycopg2
from osprofiler.drivers import base

import common

TRACES = 3000          # loaded once, over 5 days (several partitions)
SPANS = 5              # per trace: 10 notifications
BIG = 500              # spans of the trace whose report is explained


def connect(conn_str, **kw):
    conn = psycopg2.connect("postgresql://" + conn_str.split("://", 1)[1], **kw)
    conn.autocommit = True
    return conn


def plans(conn, sql, params=()):
    """The plans auto_explain logs for the statements run inside a call
    (role osp_explain has auto_explain at log_level notice)."""
    del conn.notices[:]
    with conn.cursor() as cur:
        cur.execute(sql, params)
        cur.fetchall()
    return "\n".join(conn.notices)


class StoreTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        rng = random.Random(4)
        t0 = datetime.datetime.utcnow() - datetime.timedelta(days=5)
        batch = []
        writer = connect(common.WRITER)
        with writer.cursor() as cur:
            for i in range(TRACES):
                start = t0 + datetime.timedelta(seconds=i * 5 * 86400 / TRACES)
                _, notes = common.random_trace(rng, spans=SPANS, t0=start, shapes=False)
                batch += [dict(n, project="nova", service="api") for n in notes]
                if len(batch) >= 3000:
                    cur.execute("SELECT panko.trace_notify(%s::jsonb)", (json.dumps(batch),))
                    batch = []
            cls.big_id, notes = common.random_trace(rng, spans=BIG, t0=datetime.datetime.utcnow()
                                                    - datetime.timedelta(hours=2), shapes=False)
            batch += [dict(n, project="nova", service="api") for n in notes]
            # one error trace
            cls.error_id = str(uuid.uuid4())
            t = str(uuid.uuid4())
            ts = (datetime.datetime.utcnow() - datetime.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S.%f")
            batch.append({"name": "rpc-stop", "base_id": cls.error_id, "trace_id": t, "parent_id": cls.error_id,
                          "timestamp": ts, "info": {"host": "h", "etype": "ValueError"}})
            cur.execute("SELECT panko.trace_notify(%s::jsonb)", (json.dumps(batch),))
        writer.close()
        with common.admin_connection() as conn, conn.cursor() as cur:
            cur.execute("ANALYZE panko.event")
            cur.execute("SELECT count(*) FROM panko.partition")
            cls.partitions = cur.fetchone()[0]
        cls.explain = connect(common.EXPLAIN)
        cls.reader = connect(common.READER)

    def assert_no_full_read(self, plan):
        self.assertNotRegex(plan, r"Seq Scan on event_", plan)
        self.assertNotIn("Seq Scan on event ", plan)

    def test_setup_spans_partitions(self):
        self.assertGreaterEqual(self.partitions, 5)

    def test_report_from_the_gin_index(self):
        plan = plans(self.explain, "SELECT panko.trace_report(%s)", (self.big_id,))
        self.assertRegex(plan, r"Bitmap Index Scan on event_\w+_traits_idx", plan)
        self.assert_no_full_read(plan)
        self.assertNotIn("event_type_id_idx", plan)     # the GIN alone, no BitmapAnd with the type

    def test_list_from_the_partial_index(self):
        plan = plans(self.explain, "SELECT * FROM panko.trace_list(NULL, 1000)")
        self.assertRegex(plan, r"Index Scan Backward using event_\w+_generated_idx1 on event_", plan)
        self.assert_no_full_read(plan)
        self.assertNotRegex(plan, r"Sort Key", plan)   # in index order, stopped at the limit
        # the partition's own index is the list's (a child of event_trace_list_idx)
        with common.admin_connection() as conn, conn.cursor() as cur:
            cur.execute("""SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                            WHERE i.inhparent = 'panko.event_trace_list_idx'::regclass
                              AND c.relname ~ '_generated_idx1$'""")
            self.assertEqual(self.partitions, cur.fetchone()[0])

    def test_errors_from_the_gin_index(self):
        plan = plans(self.explain, "SELECT * FROM panko.trace_errors()")
        self.assertRegex(plan, r"Bitmap Index Scan on event_\w+_traits_idx", plan)
        self.assert_no_full_read(plan)

    def test_notify_reads_no_partition(self):
        b = str(uuid.uuid4())
        n = {"name": "x-start", "base_id": b, "trace_id": b + "t", "parent_id": b,
             "timestamp": datetime.datetime.utcnow().strftime("%Y-%m-%dT%H:%M:%S.%f")}
        plan = plans(self.explain, "SELECT panko.trace_notify(%s::jsonb)", (json.dumps(n),))
        self.assert_no_full_read(plan)

    def test_psql_answers_are_the_drivers(self):
        d = base.get_driver(common.READER)
        with self.reader.cursor() as cur:
            cur.execute("SELECT panko.trace_report(%s)", (self.big_id,))
            self.assertEqual(d.get_report(self.big_id), cur.fetchone()[0])
            cur.execute("SELECT trace FROM panko.trace_list(ARRAY['name', 'host'], 50)")
            self.assertEqual(d.list_traces(["name", "host"], limit=50), [r[0] for r in cur.fetchall()])
            cur.execute("SELECT trace FROM panko.trace_errors()")
            self.assertEqual(d.list_error_traces(), [r[0] for r in cur.fetchall()])
            cur.execute("SELECT base_id, etype FROM panko.trace_errors() WHERE base_id = %s", (self.error_id,))
            self.assertEqual([(self.error_id, "ValueError")], cur.fetchall())
        self.assertEqual(BIG, sum(s["count"] for s in d.get_report(self.big_id)["stats"].values()))

    def test_the_list_has_one_entry_per_trace(self):
        with self.reader.cursor() as cur:
            cur.execute("SELECT count(*), count(DISTINCT base_id) FROM panko.trace_list()")
            n, distinct = cur.fetchone()
            self.assertEqual(n, distinct)
            self.assertGreaterEqual(n, TRACES + 2)
            cur.execute("SELECT generated FROM panko.trace_list(NULL, 100)")
            times = [r[0] for r in cur.fetchall()]
            self.assertEqual(sorted(times, reverse=True), times)

    def test_events_of_their_own_types(self):
        with self.reader.cursor() as cur:
            cur.execute("""SELECT event_type, min(message_id), count(*) FROM panko.events
                            WHERE traits OPERATOR(panko.@>) panko.traits(jsonb_build_object('base_id', %s::text))
                            GROUP BY 1 ORDER BY 1""", (self.error_id,))
            rows = cur.fetchall()
        self.assertEqual(["osprofiler.stop", "osprofiler.trace"], [r[0] for r in rows])
        self.assertTrue(rows[0][1].startswith("osprofiler:stop:"))
        self.assertEqual("osprofiler:trace:" + self.error_id, rows[1][1])
        with self.reader.cursor() as cur:
            cur.execute("""SELECT panko.trait_text(traits, 'etype'), panko.trait_text(traits, 'host'), raw->>'name'
                             FROM panko.events WHERE event_type = 'osprofiler.stop'
                              AND traits OPERATOR(panko.@>) panko.traits(jsonb_build_object('base_id', %s::text))""",
                        (self.error_id,))
            self.assertEqual([("ValueError", "h", "rpc-stop")], cur.fetchall())

    def test_row_level_security_with_identities(self):
        api = connect(common.API)
        try:
            with api.cursor() as cur:
                for roles, visible in (("admin", True), ("member,reader", False)):
                    cur.execute("BEGIN")
                    cur.execute("SELECT panko.set_identity('u1', 'p1', %s)", (roles,))
                    cur.execute("SELECT count(*) FROM panko.trace_list(NULL, 10)")
                    self.assertEqual(visible, cur.fetchone()[0] > 0, roles)
                    cur.execute("SELECT count(*) FROM panko.trace_errors() WHERE base_id = %s", (self.error_id,))
                    self.assertEqual(visible, cur.fetchone()[0] == 1, roles)
                    cur.execute("ROLLBACK")
        finally:
            api.close()

    def test_privileges(self):
        for conn_str, sql, state in ((common.MEMBER, "SELECT panko.trace_notify('{}')", "42501"),
                                     (common.WRITER, "SELECT * FROM panko.trace_list()", "42501"),
                                     (common.WRITER, "SELECT * FROM panko.event LIMIT 1", "42501")):
            conn = connect(conn_str)
            try:
                with conn.cursor() as cur, self.assertRaises(psycopg2.Error) as e:
                    cur.execute(sql)
                self.assertEqual(state, e.exception.pgcode, sql)
            finally:
                conn.close()

    def test_a_store_without_stop_notifications(self):
        # (the event type osprofiler.stop does not exist there yet)
        with common.admin_connection() as conn, conn.cursor() as cur:
            cur.execute("DROP DATABASE IF EXISTS osprofiler_fresh")
            cur.execute("CREATE DATABASE osprofiler_fresh")
        dsn = common.ADMIN_DSN.replace("/osprofiler_test?", "/osprofiler_fresh?")
        conn = psycopg2.connect(dsn)
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute("SET client_min_messages = warning")
                cur.execute("CREATE EXTENSION panko")
                b = str(uuid.uuid4())
                cur.execute("SELECT panko.trace_notify(%s::jsonb)", (json.dumps(
                    {"name": "wsgi-start", "base_id": b, "trace_id": b + "-1", "parent_id": b,
                     "timestamp": "2026-12-10T00:00:00.000000", "info": {"host": "h"}}),))
                cur.execute("SELECT panko.trace_report(%s)", (b,))
                report = cur.fetchone()[0]
                self.assertEqual({"wsgi": {"count": 1, "duration": 0}}, report["stats"])
                self.assertEqual(b + "-1", report["children"][0]["trace_id"])
                self.assertNotIn("exception", report["children"][0]["info"])
                cur.execute("SELECT count(*) FROM panko.trace_errors()")
                self.assertEqual(0, cur.fetchone()[0])
        finally:
            conn.close()
            with common.admin_connection() as admin, admin.cursor() as cur:
                cur.execute("DROP DATABASE osprofiler_fresh")

    def test_notify_stores_what_its_sql_definition_stored(self):
        # The events of the SQL definition trace_notify had before it was
        # written in C (0.4.0), stored by record_events in a transaction
        # rolled back, against what trace_notify stores: the entry from
        # the earliest timestamp (then position), etype only on a -stop
        # with a non-null info.etype, ->> text of non-string values.
        t0 = datetime.datetime.utcnow() - datetime.timedelta(minutes=10)

        def ts(s):
            return (t0 + datetime.timedelta(seconds=s)).strftime("%Y-%m-%dT%H:%M:%S.%f")
        b1, b2 = str(uuid.uuid4()), str(uuid.uuid4())
        batch = [
            {"name": "wsgi-start", "base_id": b1, "trace_id": b1 + "-1", "parent_id": b1, "timestamp": ts(5),
             "project": "nova", "service": "api", "info": {"host": "h1"}},
            {"name": "wsgi-stop", "base_id": b1, "trace_id": b1 + "-1", "parent_id": b1, "timestamp": ts(3),
             "project": 7, "info": {"host": "h1", "etype": "ValueError"}},
            {"name": "db-start", "base_id": b2, "trace_id": b2 + "-1", "parent_id": b2, "timestamp": ts(2)},
            {"name": "dbstop", "base_id": b2, "trace_id": b2 + "-2", "parent_id": b2, "timestamp": ts(2),
             "info": {"etype": None, "host": {"a": [1, "x"]}}},
            {"name": "x-start", "base_id": b2, "trace_id": b2 + "-3", "parent_id": b2 + "-1", "timestamp": ts(9),
             "service": True, "info": {"etype": "KeyError"}},
            {"name": "wsgi-start", "base_id": b1, "trace_id": b1 + "-1", "parent_id": b1, "timestamp": ts(1)},
        ]
        reference = """
            WITH b AS (SELECT %s::jsonb AS batch), n AS (
                SELECT x.n, x.ord,
                       CASE WHEN x.n->>'name' LIKE '%%stop' THEN 'stop' ELSE 'start' END AS kind,
                       (SELECT jsonb_agg(jsonb_build_object('name', t.name, 'type', 'string', 'value', t.value))
                          FROM (VALUES ('base_id', x.n->>'base_id'), ('trace_id', x.n->>'trace_id'),
                                       ('parent_id', x.n->>'parent_id'), ('name', x.n->>'name'),
                                       ('project', x.n->>'project'), ('service', x.n->>'service'),
                                       ('host', x.n->'info'->>'host')) AS t(name, value)
                         WHERE t.value IS NOT NULL) AS traits
                  FROM b, jsonb_array_elements(b.batch) WITH ORDINALITY AS x(n, ord)
            ), event AS (
                SELECT n.ord, jsonb_build_object(
                           'message_id', 'osprofiler:' || n.kind || ':' || (n.n->>'trace_id'),
                           'event_type', 'osprofiler.' || n.kind, 'generated', n.n->'timestamp',
                           'traits', CASE WHEN n.kind = 'stop' AND jsonb_typeof(n.n->'info'->'etype') <> 'null'
                                          THEN n.traits || jsonb_build_array(jsonb_build_object(
                                                   'name', 'etype', 'type', 'string', 'value', n.n->'info'->>'etype'))
                                          ELSE n.traits END,
                           'raw', n.n) AS e
                  FROM n
                UNION ALL
                SELECT 1000 + h.ord, jsonb_build_object(
                           'message_id', 'osprofiler:trace:' || (h.n->>'base_id'), 'event_type', 'osprofiler.trace',
                           'generated', h.n->'timestamp', 'traits', h.traits, 'raw', h.n)
                  FROM (SELECT DISTINCT ON (n.n->>'base_id') n.*
                          FROM n ORDER BY n.n->>'base_id', n.n->>'timestamp', n.ord) h
            )
            SELECT count(*) FILTER (WHERE r.message_id NOT LIKE 'osprofiler:trace:%%')
              FROM panko.record_events((SELECT jsonb_agg(e ORDER BY ord) FROM event)) r"""
        stored = """
            SELECT e.message_id, t.name, e.generated, e.traits::text, e.raw
              FROM panko.event e JOIN panko.event_type t ON t.id = e.event_type_id
             WHERE e.traits OPERATOR(panko.@>) panko.traits(jsonb_build_object('base_id', %s))
                OR e.traits OPERATOR(panko.@>) panko.traits(jsonb_build_object('base_id', %s))
             ORDER BY 1"""
        with common.admin_connection() as conn, conn.cursor() as cur:
            cur.execute("BEGIN")
            cur.execute(reference, (json.dumps(batch),))
            want_new = len(batch) - cur.fetchone()[0]
            cur.execute(stored, (b1, b2))
            want = cur.fetchall()
            cur.execute("ROLLBACK")
        self.assertEqual(7, len(want), want)
        writer = connect(common.WRITER)
        try:
            with writer.cursor() as cur:
                cur.execute("SELECT panko.trace_notify(%s::jsonb)", (json.dumps(batch),))
                self.assertEqual((want_new,), cur.fetchone())
                self.assertEqual(5, want_new)
                cur.execute("SELECT panko.trace_notify(%s::jsonb)", (json.dumps(batch),))
                self.assertEqual((0,), cur.fetchone())
        finally:
            writer.close()
        with common.admin_connection() as conn, conn.cursor() as cur:
            cur.execute(stored, (b1, b2))
            self.assertEqual(want, cur.fetchall())

    def test_sql_errors(self):
        with self.reader.cursor() as cur:
            for sql, state, words in (("SELECT panko.trace_report(%s)", "P0002", "not found"),
                                      ("SELECT panko.trace_report('')", "22023", "base_id"),
                                      ("SELECT panko.trace_report(NULL)", "22023", "base_id"),
                                      ("SELECT * FROM panko.trace_list(NULL, -1)", "2201W", "LIMIT")):
                with self.assertRaises(psycopg2.Error) as e:
                    cur.execute(sql, (str(uuid.uuid4()),) if "%s" in sql else ())
                self.assertEqual(state, e.exception.pgcode, sql)
                self.assertRegex(e.exception.pgerror, re.compile(words, re.I))
        writer = connect(common.WRITER)
        try:
            with writer.cursor() as cur:
                for arg, words in (("null", "JSON object"), ("[1]", "notification 1 of 1"),
                                   ('{"name": "a-start"}', "without base_id"),
                                   ('{"name": "a-start", "base_id": "b", "trace_id": "t", "parent_id": "b", '
                                    '"timestamp": "2026-02-30T00:00:00"}', "timestamp")):
                    with self.assertRaises(psycopg2.Error) as e:
                        cur.execute("SELECT panko.trace_notify(%s::jsonb)", (arg,))
                    self.assertEqual("22023", e.exception.pgcode, arg)
                    self.assertIn(words, e.exception.pgerror)
                cur.execute("SELECT panko.trace_notify('[]')")
                self.assertEqual(0, cur.fetchone()[0])
        finally:
            writer.close()


if __name__ == "__main__":
    unittest.main()
