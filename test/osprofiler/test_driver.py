"""The panko:// driver through OSProfiler's own entry points: get_driver,
every method of base.Driver, reports compared with OSProfiler's own
report builder, bad input, lost connections.  Run by run.sh."""

import json
import logging
import os
import random
import subprocess
import sys
import unittest
import uuid

import psycopg2
from osprofiler.drivers import base

import common
from panko_drivers import connection
from panko_drivers.osprofiler import PankoDriver

PY = "/usr/bin/python3"


def count_events(message_id_prefix="osprofiler:"):
    with common.admin_connection() as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM panko.event WHERE message_id LIKE %s", (message_id_prefix + "%",))
        return cur.fetchone()[0]


def notification(base_id, trace_id, parent_id, name, ts, **info):
    info.setdefault("host", "node-1")
    return {"name": name, "base_id": base_id, "trace_id": trace_id, "parent_id": parent_id,
            "timestamp": ts, "info": info}


class DriverTest(unittest.TestCase):

    def setUp(self):
        self.driver = base.get_driver(common.BOTH, project="nova", service="api", host="node-1")

    def test_get_driver_finds_panko(self):
        self.assertIsInstance(self.driver, PankoDriver)
        self.assertEqual("panko", PankoDriver.get_name())
        self.assertTrue(issubclass(PankoDriver, base.Driver))

    def test_every_method_of_base_driver_is_implemented(self):
        for name in ("notify", "get_report", "list_traces", "list_error_traces"):
            self.assertIsNot(getattr(PankoDriver, name), getattr(base.Driver, name), name)

    def test_reports_equal_osprofilers_own(self):
        # Random traces with every awkward shape, stored by two services;
        # the tree built in SQL must equal the one base.Driver builds.
        rng = random.Random(20261201)
        api = self.driver
        compute = base.get_driver(common.BOTH, project=None, service="compute", host="node-2")
        ref = common.ReferenceDriver("reference://")
        deep = ties = 0
        for i in range(150):
            base_id, notes = common.random_trace(rng, spans=rng.choice([1, 2, 5, 30, 120]))
            stored = []
            for n in notes:
                d = rng.choice([api, compute])
                self.assertTrue(d.notify(n))
                stored.append(common.stored_form(n, d.project, d.service))
            got = api.get_report(base_id)
            want = ref.report(stored)
            self.assertEqual(want, got, "trace %s (%d notifications)" % (base_id, len(notes)))
            deep += any(c["children"] for c in got["children"])
            starts = [c["info"]["started"] for c in got["children"]]
            ties += len(starts) != len(set(starts))
        # the shapes did occur
        self.assertGreater(deep, 50)
        self.assertGreater(ties, 5)

    def test_reports_with_strings_to_escape(self):
        # Names, ids, project, service, host, etype and payloads with what
        # JSON must escape (quotes, backslashes, control characters) and
        # what it need not (non-ASCII, U+2028): the report written in C
        # equals OSProfiler's own.
        odd = 'q"b\\s\t\n\x01\u00e9\u2028\U0001f600/'
        d = base.get_driver(common.BOTH, project="p" + odd, service="s" + odd, host="h")
        b = str(uuid.uuid4())
        t1, t2 = b + odd + "1", b + odd + "2"
        notes = [notification(b, t1, b, "wsgi" + odd + "-start", "2026-11-30T10:00:00.000100",
                              host="h" + odd, args={"k" + odd: [odd, 1.5, -7, None, True, {}]}),
                 notification(b, t2, t1, odd + "-start", "2026-11-30T10:00:00.002100"),
                 notification(b, t2, t1, odd + "-stop", "2026-11-30T10:00:00.005600", etype="E" + odd),
                 notification(b, t1, b, "wsgi" + odd + "-stop", "2026-11-30T10:00:00.010099")]
        for n in notes:
            self.assertTrue(d.notify(n))
        got = d.get_report(b)
        want = common.ReferenceDriver("reference://").report(
            [common.stored_form(n, d.project, d.service) for n in notes])
        self.assertEqual(want, got)
        self.assertEqual("wsgi" + odd, got["children"][0]["info"]["name"])
        self.assertEqual("E" + odd, got["children"][0]["children"][0]["info"]["exception"])

    def test_reports_with_parents_in_a_cycle_and_without_starts(self):
        # A span that is its own parent and two that are each other's:
        # OSProfiler's _build_tree reaches them from no root (it would make
        # a cyclic structure), so the report leaves them out of the tree;
        # its stats count them.  A trace of -stop notifications only (where
        # OSProfiler's own builder fails): no last_trace_started, each span
        # lasts 0 ms.
        b, root, own, x, y = (str(uuid.uuid4()) for _ in range(5))
        for trace_id, parent, name, ts in ((root, b, "wsgi", 1), (own, own, "rpc", 2), (x, y, "db", 3), (y, x, "db", 4)):
            self.driver.notify(notification(b, trace_id, parent, name + "-start", "2026-11-30T10:00:00.%06d" % ts))
            self.driver.notify(notification(b, trace_id, parent, name + "-stop", "2026-11-30T10:00:00.%06d" % (ts * 5000)))
        got = self.driver.get_report(b)
        self.assertEqual([root], [c["trace_id"] for c in got["children"]])
        self.assertEqual([], got["children"][0]["children"])
        self.assertEqual({"wsgi": {"count": 1, "duration": 4}, "rpc": {"count": 1, "duration": 9},
                          "db": {"count": 2, "duration": 14 + 19}}, got["stats"])
        self.assertEqual({"name": "total", "started": 0, "finished": 19, "last_trace_started": 0}, got["info"])

        b, t1, t2 = (str(uuid.uuid4()) for _ in range(3))
        self.driver.notify(notification(b, t1, b, "wsgi-stop", "2026-11-30T10:00:00.000100"))
        self.driver.notify(notification(b, t2, t1, "db-stop", "2026-11-30T10:00:00.003100"))
        got = self.driver.get_report(b)
        self.assertEqual({"name": "total", "started": 0, "finished": 3, "last_trace_started": None}, got["info"])
        top = got["children"][0]
        self.assertEqual((t1, 0, 0), (top["trace_id"], top["info"]["started"], top["info"]["finished"]))
        self.assertEqual((t2, 3, 3), (top["children"][0]["trace_id"], top["children"][0]["info"]["started"],
                                      top["children"][0]["info"]["finished"]))
        self.assertEqual({"wsgi": {"count": 1, "duration": 0}, "db": {"count": 1, "duration": 0}}, got["stats"])

    def test_report_of_a_simple_trace(self):
        b, t1, t2 = (str(uuid.uuid4()) for _ in range(3))
        self.driver.notify(notification(b, t1, b, "wsgi-start", "2026-11-30T10:00:00.000100", request={"path": "/"}))
        self.driver.notify(notification(b, t2, t1, "db-start", "2026-11-30T10:00:00.002100"))
        self.driver.notify(notification(b, t2, t1, "db-stop", "2026-11-30T10:00:00.005600"))
        self.driver.notify(notification(b, t1, b, "wsgi-stop", "2026-11-30T10:00:00.010099", etype="KeyError"))
        r = self.driver.get_report(b)
        self.assertEqual({"name": "total", "started": 0, "finished": 9, "last_trace_started": 2}, r["info"])
        self.assertEqual({"wsgi": {"count": 1, "duration": 9}, "db": {"count": 1, "duration": 3}}, r["stats"])
        (wsgi,) = r["children"]
        self.assertEqual((t1, b), (wsgi["trace_id"], wsgi["parent_id"]))
        self.assertEqual("KeyError", wsgi["info"]["exception"])
        self.assertEqual(("nova", "api", "node-1"),
                         (wsgi["info"]["project"], wsgi["info"]["service"], wsgi["info"]["host"]))
        self.assertEqual("/", wsgi["info"]["meta.raw_payload.wsgi-start"]["info"]["request"]["path"])
        (db,) = wsgi["children"]
        self.assertEqual(("db", 2, 5, "None", []),
                         (db["info"]["name"], db["info"]["started"], db["info"]["finished"],
                          db["info"]["exception"], db["children"]))

    def test_duplicates_are_ignored(self):
        b, t = str(uuid.uuid4()), str(uuid.uuid4())
        n = notification(b, t, b, "rpc-start", "2026-11-30T11:00:00.000000")
        before = count_events()
        self.assertTrue(self.driver.notify(n))
        self.assertFalse(self.driver.notify(n))
        self.assertFalse(self.driver.notify(dict(n, timestamp="2026-11-30T11:00:05.000000")))
        self.assertEqual(before + 2, count_events())     # the notification and the trace's entry
        self.assertEqual(0, self.driver.get_report(b)["info"]["finished"])

    def test_list_traces_newest_first_with_fields(self):
        ids = []
        for k in range(3):
            b, t = str(uuid.uuid4()), str(uuid.uuid4())
            ids.append(b)
            self.driver.notify(notification(b, t, b, "wsgi-start", "2026-12-02T0%d:00:00.000000" % k))
            self.driver.notify(notification(b, t, b, "wsgi-stop", "2026-12-02T0%d:00:01.000000" % k))
        traces = [t for t in self.driver.list_traces() if t["base_id"] in ids]
        self.assertEqual(ids[::-1], [t["base_id"] for t in traces])
        self.assertEqual({"base_id": ids[2], "timestamp": "2026-12-02T02:00:00.000000"}, traces[0])
        self.assertEqual(2, len(self.driver.list_traces(limit=2)))
        traces = [t for t in self.driver.list_traces(["base_id", "timestamp", "name", "host", "service", "info",
                                                      "nope"]) if t["base_id"] in ids]
        self.assertEqual({"base_id", "timestamp", "name", "host", "service", "info"}, set(traces[0]))
        self.assertEqual(("wsgi-start", "node-1", "api"),
                         (traces[0]["name"], traces[0]["host"], traces[0]["service"]))
        # what OSProfiler's CLI asks for
        self.assertEqual({"base_id", "timestamp"}, set(self.driver.list_traces(("base_id", "timestamp"))[0]))

    def test_list_error_traces(self):
        ok_b, bad_b = str(uuid.uuid4()), str(uuid.uuid4())
        for b, extra in ((ok_b, {}), (bad_b, {"etype": "ValueError", "message": "x"})):
            t = str(uuid.uuid4())
            self.driver.notify(notification(b, t, b, "rpc-start", "2026-12-03T00:00:00.000000"))
            self.driver.notify(notification(b, t, b, "rpc-stop", "2026-12-03T00:00:00.500000", **extra))
        errors = self.driver.list_error_traces()
        self.assertIn({"base_id": bad_b, "timestamp": "2026-12-03T00:00:00.500000"}, errors)
        self.assertNotIn(ok_b, [e["base_id"] for e in errors])
        # an etype of null is no error (OSProfiler's drivers test "is not None")
        b, t = str(uuid.uuid4()), str(uuid.uuid4())
        self.driver.notify(notification(b, t, b, "rpc-stop", "2026-12-03T00:00:01.000000", etype=None))
        self.assertNotIn(b, [e["base_id"] for e in self.driver.list_error_traces()])

    def test_unknown_base_id(self):
        # what every OSProfiler driver returns; the CLI then says "not found"
        self.assertEqual({"info": {"name": "total", "started": 0, "finished": None, "last_trace_started": None},
                          "children": [], "stats": {}},
                         self.driver.get_report(str(uuid.uuid4())))
        for bad in ("", None, 42):
            with self.assertRaises(connection.InvalidInput) as e:
                self.driver.get_report(bad)
            self.assertIn("base_id", e.exception.message)

    def test_notification_without_its_ids_stores_nothing(self):
        b, t = str(uuid.uuid4()), str(uuid.uuid4())
        good = notification(b, t, b, "rpc-start", "2026-12-04T00:00:00.000000")
        before = count_events()
        for field in ("base_id", "trace_id", "parent_id", "name", "timestamp"):
            for bad in (dict((k, v) for k, v in good.items() if k != field), dict(good, **{field: ""}),
                        dict(good, **{field: 7})):
                with self.assertRaises(connection.InvalidInput) as e:
                    self.driver.notify(bad)
                self.assertIn(field, e.exception.message)
                self.assertIsInstance(e.exception, ValueError)
        for bad, word in ((dict(good, timestamp="yesterday"), "timestamp"), (dict(good, info=[1]), "info"),
                          (dict(good, trace_id="x" * 201), "200 bytes"), ("not a dict", "dict")):
            with self.assertRaises(connection.InvalidInput) as e:
                self.driver.notify(bad)
            self.assertIn(word, e.exception.message)
        self.assertEqual(before, count_events())

    def test_a_bad_notification_in_a_batch_stores_nothing(self):
        b = str(uuid.uuid4())
        batch = [notification(b, str(uuid.uuid4()), b, "db-start", "2026-12-04T01:00:00.00000%d" % i) for i in range(3)]
        batch.append({"name": "db-stop", "base_id": b})
        before = count_events()
        with common.admin_connection() as conn, conn.cursor() as cur:
            with self.assertRaises(psycopg2.Error) as e:
                cur.execute("SELECT panko.trace_notify(%s::jsonb)", (json.dumps(batch),))
            self.assertEqual("22023", e.exception.pgcode)
            self.assertIn("(notification 4 of 4)", e.exception.pgerror)
            cur.execute("SELECT panko.trace_notify(%s::jsonb)", (json.dumps(batch[:3]),))
            self.assertEqual(3, cur.fetchone()[0])
        self.assertEqual(before + 4, count_events())

    def test_malformed_connection_strings(self):
        for bad, word in (("panko", "panko://"), ("postgresql://localhost/x", "panko://"),
                          ("panko://[::1/db", "IPv6"), ("panko://h/db?nonsense=1", "nonsense"),
                          ("panko://h:port/db", "port"), ("panko://h:99999/db", "port"),
                          ("panko://u:s3cret@h/db?bogus=1", "bogus"), ("panko://a%zz@h/db", "percent")):
            with self.assertRaises(connection.ConnectionStringError) as e:
                PankoDriver(bad)
            self.assertIn(word, e.exception.message)
            self.assertNotIn("s3cret", e.exception.message)
            self.assertIsInstance(e.exception, ValueError)
        # get_driver refuses it the same way (the CLI prints e.message)
        with self.assertRaises(connection.ConnectionStringError):
            base.get_driver("panko://h:port/db")

    def test_connection_string_forms(self):
        port = os.environ["PGPORT"]
        for s in ("panko://osp_both@127.0.0.1:%s/osprofiler_test" % port,
                  "PANKO:///osprofiler_test?host=%s&port=%s&user=osp_both" % (os.environ["PGHOST"], port)):
            self.assertIsInstance(base.get_driver(s).list_traces(limit=1), list, s)
        self.assertEqual(("postgresql://u:p@h:5432/d", {"user": "u", "password": "p", "host": "h", "port": "5432",
                                                         "dbname": "d"}),
                         connection.to_libpq("panko://u:p@h:5432/d"))
        self.assertEqual("postgresql:///d?host=/run/postgresql",
                         connection.to_libpq("panko:///d?host=/run/postgresql")[0])

    def test_roles(self):
        b, t = str(uuid.uuid4()), str(uuid.uuid4())
        writer = base.get_driver(common.WRITER, project="nova", service="api")
        self.assertTrue(writer.notify(notification(b, t, b, "rpc-start", "2026-12-05T00:00:00.000000")))
        with self.assertRaises(connection.PankoError) as e:
            writer.get_report(b)
        self.assertEqual("42501", e.exception.sqlstate)
        self.assertIn("panko_auditor", e.exception.message)
        reader = base.get_driver(common.READER)
        self.assertEqual(1, len(reader.get_report(b)["children"]))
        # a reader without a panko_auditor or admin identity sees no trace
        # (traces carry no project_id: row-level security)
        member = base.get_driver(common.MEMBER)
        self.assertEqual([], member.get_report(b)["children"])
        self.assertNotIn(b, [x["base_id"] for x in member.list_traces()])
        # the reader's notify is refused and logged, never raised
        with self.assertLogs("panko_drivers.osprofiler", logging.ERROR):
            self.assertIsNone(reader.notify(notification(b, str(uuid.uuid4()), b, "x-start",
                                                         "2026-12-05T00:00:01.000000")))

    def test_database_down_drops_notifications_without_raising(self):
        d = PankoDriver("panko://nobody@127.0.0.1:1/nothing?connect_timeout=2", project="p", service="s")
        n = notification("b", "t", "b", "rpc-start", "2026-12-06T00:00:00.000000")
        with self.assertLogs("panko_drivers.osprofiler", logging.ERROR):
            self.assertIsNone(d.notify(n))
        self.assertIsNone(d.notify(n))           # within the retry delay: no new attempt
        with self.assertRaises(connection.DatabaseUnavailable) as e:
            d.get_report("b")                    # readers do raise, with a clear message
        self.assertIn("127.0.0.1", e.exception.message)

    def test_reconnects_after_a_lost_connection(self):
        d = base.get_driver(common.BOTH, project="nova", service="api")
        d.list_traces(limit=1)
        with common.admin_connection() as conn, conn.cursor() as cur:
            cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE application_name = 'panko-osprofiler' AND pid <> pg_backend_pid()")
        b, t = str(uuid.uuid4()), str(uuid.uuid4())
        self.assertTrue(d.notify(notification(b, t, b, "rpc-start", "2026-12-07T00:00:00.000000")))
        self.assertEqual(1, len(d.get_report(b)["children"]))

    def test_a_forked_child_gets_its_own_connection(self):
        d = base.get_driver(common.BOTH, project="nova", service="api")
        d.list_traces(limit=1)
        b = str(uuid.uuid4())
        pid = os.fork()
        if pid == 0:
            code = 3
            try:
                stored = d.notify(notification(b, str(uuid.uuid4()), b, "rpc-start", "2026-12-08T00:00:00.000000"))
                code = 0 if stored else 2
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        self.assertEqual(0, os.waitstatus_to_exitcode(status))
        self.assertEqual(1, len(d.get_report(b)["children"]))   # the parent's connection still works


class AutoloadTest(unittest.TestCase):
    """A fresh /usr/bin/python3 finds the driver with no import of ours."""

    def run_python(self, code):
        env = dict(os.environ)
        env.pop("PYTHONPATH", None)
        out = subprocess.run([PY, "-c", code], env=env, capture_output=True, text=True, cwd="/")
        self.assertEqual(0, out.returncode, out.stderr)
        return out.stdout.strip()

    def test_get_driver_in_a_fresh_interpreter(self):
        out = self.run_python(
            "from osprofiler.drivers import base\n"
            "d = base.get_driver(%r, project='p', service='s')\n"
            "print(type(d).__module__, type(d).__name__, d.list_traces(limit=1) is not None)" % common.BOTH)
        self.assertEqual("panko_drivers.osprofiler PankoDriver True", out)

    def test_processes_without_osprofiler_load_nothing(self):
        out = self.run_python("import sys, json, osprofiler\n"
                              "print('panko_drivers.osprofiler' in sys.modules, 'psycopg2' in sys.modules)")
        self.assertEqual("False False", out)

    def test_the_hook_leaves_once_used(self):
        out = self.run_python("import sys\n"
                              "import osprofiler.drivers.base\n"
                              "from panko_drivers import _autoload\n"
                              "print('panko_drivers.osprofiler' in sys.modules, "
                              "any(isinstance(f, _autoload._Finder) for f in sys.meta_path))")
        self.assertEqual("True False", out)


if __name__ == "__main__":
    unittest.main()
