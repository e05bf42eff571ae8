"""Helpers of the panko:// driver's tests: connection strings from the
environment run.sh sets, OSProfiler's own report builder as the reference,
and random traces with every awkward shape the report has to handle."""

import contextlib
import datetime
import json
import os
import random
import uuid

import psycopg2
from osprofiler.drivers import base

# run.sh exports these (a throwaway cluster, database osprofiler_test):
#   PANKO_OSP_WRITER   panko:// as a login role with panko_writer only
#   PANKO_OSP_READER   panko:// as a login role with panko_auditor only
#   PANKO_OSP_BOTH     panko:// as a login role with both (what the tests use)
#   PANKO_OSP_MEMBER   panko:// as a login role with panko_reader only
#   PANKO_OSP_API      panko:// as a login role with panko_api (states identities)
#   PANKO_OSP_EXPLAIN  panko:// as a panko_auditor and panko_writer role whose sessions log
#                      every nested statement's plan as a NOTICE (auto_explain)
#   PANKO_OSP_ADMIN_DSN  libpq URI of the superuser, for setup
BOTH = os.environ.get("PANKO_OSP_BOTH", "")
WRITER = os.environ.get("PANKO_OSP_WRITER", "")
READER = os.environ.get("PANKO_OSP_READER", "")
MEMBER = os.environ.get("PANKO_OSP_MEMBER", "")
API = os.environ.get("PANKO_OSP_API", "")
EXPLAIN = os.environ.get("PANKO_OSP_EXPLAIN", "")
ADMIN_DSN = os.environ.get("PANKO_OSP_ADMIN_DSN", "")


@contextlib.contextmanager
def admin_connection():
    """An autocommit superuser connection, closed after the block."""
    conn = psycopg2.connect(ADMIN_DSN)
    conn.autocommit = True
    try:
        yield conn
    finally:
        conn.close()


class ReferenceDriver(base.Driver):
    """OSProfiler's own report builder over notifications kept in memory,
    processed in the order panko's report assumes they were stored: by
    timestamp, a span's start before its stop, then by trace_id (the
    order in which OSProfiler's SQL driver reads a trace back)."""

    @classmethod
    def get_name(cls):
        return "panko-test-reference"

    def report(self, notifications):
        self.result = {}
        self.started_at = self.finished_at = self.last_started_at = None

        def key(n):
            ts = datetime.datetime.strptime(n["timestamp"], "%Y-%m-%dT%H:%M:%S.%f")
            return (ts, n["name"].endswith("stop"), n["trace_id"])

        for n in sorted(notifications, key=key):
            self._append_results(n["trace_id"], n["parent_id"], n["name"],
                                 n.get("project"), n.get("service"),
                                 n.get("info", {}).get("host"), n["timestamp"], n)
        return self._parse_results()


def stored_form(notification, project, service):
    """What the panko driver stores: the notification with the driver's
    project and service, through JSON."""
    data = dict(notification)
    data["project"] = project
    data["service"] = service
    return json.loads(json.dumps(data))


def ts(t0, us):
    return (t0 + datetime.timedelta(microseconds=us)).strftime("%Y-%m-%dT%H:%M:%S.%f")


def random_trace(rng, spans=30, t0=None, shapes=True):
    """Notifications of one trace (as OSProfiler's profiler sends them) with
    random nesting.  With shapes: spans that start or stop in the same
    millisecond or microsecond, several roots, a parent that was never
    stored (an orphan becomes a root), spans without their start or stop,
    errors (info.etype, also null), names with dashes, and
    project/service/host that differ along the trace."""
    t0 = t0 or datetime.datetime(2026, 11, 30, 12, 0, 0) + datetime.timedelta(
        seconds=rng.randrange(0, 86400))
    base_id = str(uuid.UUID(int=rng.getrandbits(128)))
    names = ["wsgi", "rpc", "db", "compute_api", "neutron-api", "a-b-c"]
    out = []
    ids = [base_id]
    clock = 0
    for i in range(spans):
        trace_id = str(uuid.UUID(int=rng.getrandbits(128)))
        parent = rng.choice(ids) if ids else base_id
        if shapes and rng.random() < 0.05:
            parent = str(uuid.UUID(int=rng.getrandbits(128)))  # never stored
        name = rng.choice(names)
        step = rng.choice([0, 0, 1, 7, 400, 999, 1000, 1001, 25000]) if shapes else rng.randrange(1, 5000)
        clock += step
        start = clock
        stop = start + (rng.choice([0, 1, 999, 1000, 5123, 80000]) if shapes else rng.randrange(1, 50000))
        host = rng.choice(["node-1", "node-2"])
        common = {"base_id": base_id, "trace_id": trace_id, "parent_id": parent}
        stop_info = {"host": host}
        if shapes and rng.random() < 0.1:
            stop_info["etype"] = rng.choice(["ValueError", "oslo_db.exception.DBError", None])
            stop_info["message"] = "boom"
        kinds = ["start", "stop"]
        if shapes and rng.random() < 0.07:
            kinds = [rng.choice(["start", "stop"])]
        for kind in kinds:
            n = dict(common, name="%s-%s" % (name, kind),
                     timestamp=ts(t0, start if kind == "start" else stop))
            n["info"] = ({"host": host, "function": {"name": "m.f%d" % i, "args": "(1,)"}}
                         if kind == "start" else stop_info)
            out.append(n)
        ids.append(trace_id)
    rng.shuffle(out)
    if shapes:
        # at least one start, as osprofiler's report needs one
        if not any(n["name"].endswith("start") for n in out):
            out[0] = dict(out[0], name="wsgi-start")
    return base_id, out
