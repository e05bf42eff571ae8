"""OSProfiler's CLI (/usr/bin/osprofiler, Debian's) against panko://, with
no change to it: trace show --json, trace list, trace list --error-trace,
and its errors.  Run by run.sh."""

import json
import os
import subprocess
import unittest
import uuid

from osprofiler.drivers import base

import common

CLI = "/usr/bin/osprofiler"


def osprofiler(*args, env=None):
    e = dict(os.environ)
    e.pop("PYTHONPATH", None)
    e.pop("OSPROFILER_CONNECTION_STRING", None)
    e.update(env or {})
    return subprocess.run([CLI] + list(args), capture_output=True, text=True, env=e, cwd="/")


class CliTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        d = base.get_driver(common.BOTH, project="keystone", service="public", host="node-7")
        cls.base_id, cls.error_id = str(uuid.uuid4()), str(uuid.uuid4())
        for b, etype in ((cls.base_id, None), (cls.error_id, "Forbidden")):
            t1, t2 = str(uuid.uuid4()), str(uuid.uuid4())
            ts = "2026-12-09T10:00:00.%06d"
            d.notify({"name": "wsgi-start", "base_id": b, "trace_id": t1, "parent_id": b, "timestamp": ts % 1,
                      "info": {"host": "node-7", "request": {"path": "/v3/auth/tokens", "method": "POST"}}})
            d.notify({"name": "db-start", "base_id": b, "trace_id": t2, "parent_id": t1, "timestamp": ts % 1500,
                      "info": {"host": "node-7", "db": {"statement": "SELECT 1", "params": {}}}})
            d.notify({"name": "db-stop", "base_id": b, "trace_id": t2, "parent_id": t1, "timestamp": ts % 4000,
                      "info": {"host": "node-7"}})
            stop = {"host": "node-7"}
            if etype:
                stop.update(etype=etype, message="no")
            d.notify({"name": "wsgi-stop", "base_id": b, "trace_id": t1, "parent_id": b, "timestamp": ts % 9000,
                      "info": stop})
        cls.driver = d

    def test_trace_show_json(self):
        out = osprofiler("trace", "show", "--json", self.base_id, "--connection-string", common.BOTH)
        self.assertEqual(0, out.returncode, out.stdout + out.stderr)
        self.assertEqual(self.driver.get_report(self.base_id), json.loads(out.stdout))
        self.assertEqual({"wsgi": {"count": 1, "duration": 8}, "db": {"count": 1, "duration": 2}},
                         json.loads(out.stdout)["stats"])

    def test_trace_show_from_the_environment(self):
        out = osprofiler("trace", "show", "--json", self.base_id, env={"OSPROFILER_CONNECTION_STRING": common.READER})
        self.assertEqual(0, out.returncode, out.stdout + out.stderr)
        self.assertEqual(self.base_id, json.loads(out.stdout)["children"][0]["parent_id"])

    def test_trace_list(self):
        out = osprofiler("trace", "list", "--connection-string", common.READER)
        self.assertEqual(0, out.returncode, out.stdout + out.stderr)
        self.assertIn("base_id", out.stdout)
        self.assertIn(self.base_id, out.stdout)
        self.assertIn("2026-12-09T10:00:00.000001", out.stdout)

    def test_trace_list_error_traces(self):
        out = osprofiler("trace", "list", "--error-trace", "True", "--connection-string", common.READER)
        self.assertEqual(0, out.returncode, out.stdout + out.stderr)
        self.assertIn(self.error_id, out.stdout)
        self.assertNotIn(self.base_id, out.stdout)

    def test_unknown_trace(self):
        unknown = str(uuid.uuid4())
        out = osprofiler("trace", "show", "--json", unknown, "--connection-string", common.READER)
        self.assertEqual(1, out.returncode, out.stdout + out.stderr)
        self.assertIn("Trace with UUID %s not found" % unknown, out.stdout)
        self.assertNotIn("Traceback", out.stderr)

    def test_malformed_connection_string(self):
        out = osprofiler("trace", "list", "--connection-string", "panko://db.example.org:port/panko")
        self.assertEqual(1, out.returncode, out.stdout + out.stderr)
        self.assertIn("Malformed panko connection string", out.stdout)
        self.assertIn("port", out.stdout)
        self.assertNotIn("Traceback", out.stderr)

    def test_unreachable_database(self):
        out = osprofiler("trace", "show", "--json", self.base_id,
                         "--connection-string", "panko://nobody@127.0.0.1:1/panko")
        self.assertNotEqual(0, out.returncode)
        self.assertIn("127.0.0.1", out.stdout + out.stderr)


if __name__ == "__main__":
    unittest.main()
