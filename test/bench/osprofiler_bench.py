#!/usr/bin/python3
"""OSProfiler traces: panko's panko:// driver against OSProfiler's own
SQLAlchemy driver (postgresql://), same throwaway cluster, same run.

    /usr/bin/python3 test/bench/osprofiler_bench.py [--traces 100000] [--notify 20000] [--runs 15] [--keep]

Needs `make install` (the extension and panko_drivers) and Debian's
python3-sqlalchemy.  Not part of make test.

Workload (deterministic, seed 7): --traces other traces of 5 spans (10
notifications: wsgi -> rpc -> db, with realistic payloads) spread over 7
days, plus one trace of 1,000 spans (2,000 notifications), stored in both
systems: panko through panko.trace_notify in batches, SQLAlchemy's table
with COPY, encoded exactly as its notify() writes a row (untimed).  Then:

  notify        --notify notifications (traces of 20) through each driver's
                notify(), one call per notification as services make them,
                each a transaction of its own (fsync on)
  get_report    the 1,000-span trace, --runs times, alternating; both
                reports must have the same tree, names, offsets and stats
  list newest   panko: list_traces(limit=1000); SQLAlchemy has no limit:
                its list_traces reads every row (the figure is its full list)
  list all      list_traces(("base_id", "timestamp")) over all traces
  list errors   list_error_traces(); SQLAlchemy's driver does not implement
                it (NotImplementedError): its row shows the SQL a user would
                write over its table instead (a scan)

Prints a table, the plans of the trace functions (auto_explain, as a
panko_auditor role) and writes test/bench/results/osprofiler-<time>.json.
"""

import argparse
import datetime
import io
import json
import os
import platform
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

import psycopg2
from oslo_serialization import jsonutils
from osprofiler.drivers import base

import panko_drivers.osprofiler  # noqa: F401 (the .pth hook does it too)

HERE = os.path.dirname(os.path.abspath(__file__))
PGBIN = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True).stdout.strip() \
    or "/usr/lib/postgresql/15/bin"


# ---------------------------------------------------------------- cluster
class Cluster(object):
    """A throwaway cluster as test/lib.sh makes them: run as postgres, in a
    private directory, socket there, a free port on loopback."""

    def __init__(self, keep=False):
        self.keep = keep
        self.dir = tempfile.mkdtemp(prefix="panko-osprofiler-bench-")
        os.chmod(self.dir, 0o755)
        if os.getuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        self.data = os.path.join(self.dir, "data")
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.port = s.getsockname()[1]
        s.close()

    def _pg(self, *args):
        cmd = list(args)
        if os.getuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--"] + cmd
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)

    def start(self):
        self._pg(PGBIN + "/initdb", "-D", self.data, "-U", "postgres", "--auth=trust", "-E", "UTF8",
                 "--locale=C.UTF-8")
        conf = ["port = %d" % self.port, "listen_addresses = '127.0.0.1'",
                "unix_socket_directories = '%s'" % self.dir, "fsync = on", "max_connections = 50",
                "shared_buffers = 1GB", "max_wal_size = 8GB", "checkpoint_timeout = 30min",
                "jit = off", "log_min_messages = warning", "logging_collector = off"]
        with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
            f.write("\n".join(conf) + "\n")
        self._pg(PGBIN + "/pg_ctl", "-D", self.data, "-l", os.path.join(self.dir, "server.log"), "-w", "start")

    def stop(self):
        try:
            self._pg(PGBIN + "/pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop")
        finally:
            if not self.keep:
                shutil.rmtree(self.dir, ignore_errors=True)

    def uri(self, db, user="postgres", scheme="postgresql"):
        return "%s:///%s?host=%s&port=%d&user=%s" % (scheme, db, self.dir, self.port, user)

    def sql(self, db, statements):
        conn = psycopg2.connect(self.uri(db))
        conn.autocommit = True
        with conn.cursor() as cur:
            for s in statements:
                cur.execute(s)
        conn.close()


# ---------------------------------------------------------------- workload
class Workload(object):
    def __init__(self, seed=7):
        self.rng = random.Random(seed)

    def uid(self):
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def trace(self, spans, start, error_rate=0.01):
        """One trace as OSProfiler's profiler sends it: a wsgi root, rpc
        calls under it, db calls under those (depth <= 3)."""
        rng = self.rng
        base_id = self.uid()
        out = []
        t = start
        root = rpc = None
        for i in range(spans):
            tid = self.uid()
            if root is None:
                kind, parent = "wsgi", base_id
            elif rpc is None or rng.random() < 0.2:
                kind, parent = "rpc", root
            else:
                kind, parent = "db", rpc
            host = "node-%d" % rng.randrange(20)
            if kind == "wsgi":
                info = {"request": {"path": "/v2.1/servers", "query": "", "method": "POST", "scheme": "http"}}
            elif kind == "rpc":
                info = {"function": {"name": "nova.compute.manager.ComputeManager.build_and_run_instance",
                                     "args": "(<nova.context.RequestContext object at 0x7f>,)", "kwargs": "{}"}}
            else:
                info = {"db": {"statement": "SELECT instances.uuid, instances.host FROM instances "
                                            "WHERE instances.uuid = %(uuid_1)s", "params": {"uuid_1": tid}}}
            info["host"] = host
            t += datetime.timedelta(microseconds=rng.randrange(50, 2000))
            span = {"base_id": base_id, "trace_id": tid, "parent_id": parent}
            out.append(dict(span, name=kind + "-start", timestamp=_ts(t), info=info))
            stop = {"host": host}
            if kind == "db" and rng.random() < error_rate:
                stop.update(etype="oslo_db.exception.DBDeadlock", message="Deadlock found")
            out.append(dict(span, name=kind + "-stop",
                            timestamp=_ts(t + datetime.timedelta(microseconds=rng.randrange(100, 8000))), info=stop))
            if kind == "wsgi":
                root = tid
            elif kind == "rpc":
                rpc = tid
        return base_id, out


def _ts(t):
    return t.strftime("%Y-%m-%dT%H:%M:%S.%f")


def sqla_row(n, project, service, host):
    """The row OSProfiler's SQLAlchemyDriver.notify() writes, as COPY text."""
    data = dict(n)
    cols = [data.pop("timestamp", None), data.pop("base_id", None), data.pop("parent_id", None),
            data.pop("trace_id", None), data.pop("project", project), data.pop("host", host),
            data.pop("service", service), data.pop("name", None)]
    # data=jsonutils.dumps(data) into a JSON column: SQLAlchemy encodes it once more
    cols.append(json.dumps(jsonutils.dumps(data)))
    return "\t".join(c.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n") for c in cols) + "\n"


# ---------------------------------------------------------------- helpers
def timed(fn, *args, **kw):
    t = time.perf_counter()
    r = fn(*args, **kw)
    return (time.perf_counter() - t) * 1000.0, r


def shape(report):
    """A report without the raw payloads and the host (SQLAlchemy's driver
    stores the payloads stripped of the ids, and reports its own host where
    the Redis, MongoDB and panko drivers report the notification's
    info.host): tree, names, offsets, exceptions, stats."""
    def node(n):
        info = {k: v for k, v in n["info"].items() if not k.startswith("meta.raw_payload.") and k != "host"}
        return {"info": info, "trace_id": n.get("trace_id"), "parent_id": n.get("parent_id"),
                "children": [node(c) for c in n.get("children", [])]}
    return {"info": report["info"], "stats": report["stats"], "children": [node(c) for c in report["children"]]}


def p50(xs):
    return statistics.median(xs) if xs else None


# ---------------------------------------------------------------- main
def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--traces", type=int, default=100000)
    ap.add_argument("--notify", type=int, default=20000, help="notifications through each driver's notify()")
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()

    started = time.time()
    results = {"traces": args.traces, "notify": args.notify, "runs": args.runs, "host": platform.node(),
               "cpus": os.cpu_count(), "when": datetime.datetime.utcnow().isoformat(timespec="seconds")}
    try:
        results["git"] = subprocess.run(["git", "-C", HERE, "rev-parse", "--short", "HEAD"],
                                        capture_output=True, text=True).stdout.strip()
    except OSError:
        pass
    cluster = Cluster(keep=args.keep)
    cluster.start()
    print("# cluster in %s, port %d" % (cluster.dir, cluster.port))
    try:
        run(cluster, args, results)
    finally:
        cluster.stop()
    results["seconds"] = round(time.time() - started)
    report(results)
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    path = os.path.join(HERE, "results", "osprofiler-%s.json" % time.strftime("%Y%m%d-%H%M%S"))
    with open(path, "w") as f:
        json.dump(results, f, indent=1)
    print("\n# results in %s (%d s)" % (path, results["seconds"]))


def run(cluster, args, results):
    cluster.sql("postgres", ["CREATE DATABASE panko", "CREATE DATABASE sqla"])
    cluster.sql("panko", ["SET client_min_messages = warning", "CREATE EXTENSION panko",
                          "CREATE ROLE bench_osp LOGIN IN ROLE panko_writer, panko_auditor",
                          "CREATE ROLE bench_explain LOGIN IN ROLE panko_auditor",
                          "ALTER ROLE bench_explain SET session_preload_libraries = 'auto_explain'",
                          "ALTER ROLE bench_explain SET auto_explain.log_min_duration = 0",
                          "ALTER ROLE bench_explain SET auto_explain.log_nested_statements = on",
                          "ALTER ROLE bench_explain SET auto_explain.log_analyze = on",
                          "ALTER ROLE bench_explain SET auto_explain.log_level = notice"])
    panko_cs = cluster.uri("panko", "bench_osp", scheme="panko")
    sqla_cs = cluster.uri("sqla")
    meta = dict(project="nova", service="api", host="node-0")
    p = base.get_driver(panko_cs, **meta)
    s = base.get_driver(sqla_cs, **meta)         # creates its table
    assert type(p).__name__ == "PankoDriver" and type(s).__name__ == "SQLAlchemyDriver"

    # ---- the stored traces (untimed bulk load, the same in both)
    w = Workload()
    t0 = datetime.datetime.utcnow() - datetime.timedelta(days=7)
    pconn = psycopg2.connect(cluster.uri("panko", "bench_osp"))
    pconn.autocommit = True
    sconn = psycopg2.connect(sqla_cs)
    sconn.autocommit = True
    t = time.perf_counter()
    batch, rows, stored = [], io.StringIO(), 0
    error_ids = set()

    def flush():
        nonlocal batch, rows, stored
        if batch:
            with pconn.cursor() as cur:
                cur.execute("SELECT panko.trace_notify(%s::jsonb)", (json.dumps(batch),))
                stored += cur.fetchone()[0]
            rows.seek(0)
            with sconn.cursor() as cur:
                cur.copy_expert("COPY data (timestamp, base_id, parent_id, trace_id, project, host, service, "
                                "name, data) FROM STDIN", rows)
        batch, rows = [], io.StringIO()

    big_at = args.traces * 2 // 3
    big_id = None
    for i in range(args.traces + 1):
        start = t0 + datetime.timedelta(seconds=i * 7 * 86400.0 / (args.traces + 1))
        if i == big_at:
            big_id, notes = w.trace(1000, start, error_rate=0.0)
        else:
            b, notes = w.trace(5, start)
            if any("etype" in n["info"] for n in notes):
                error_ids.add(b)
        for n in notes:
            n = dict(n, **{k: meta[k] for k in ("project", "service")})
            batch.append(n)
            rows.write(sqla_row(n, meta["project"], meta["service"], meta["host"]))
        if len(batch) >= 5000:
            flush()
        if i and i % 20000 == 0:
            print("# loaded %d traces (%.0f s)" % (i, time.perf_counter() - t))
    flush()
    load_s = time.perf_counter() - t
    cluster.sql("panko", ["VACUUM ANALYZE"])
    cluster.sql("sqla", ["VACUUM ANALYZE"])
    with pconn.cursor() as cur:
        cur.execute("SELECT count(*), pg_size_pretty(pg_database_size('panko')) FROM panko.event")
        pev, psize = cur.fetchone()
        cur.execute("SELECT count(*) FROM panko.partition")
        parts = cur.fetchone()[0]
    with sconn.cursor() as cur:
        cur.execute("SELECT count(*), pg_size_pretty(pg_database_size('sqla')) FROM data")
        srows, ssize = cur.fetchone()
    results["load"] = {"seconds": round(load_s), "notifications": stored, "panko_events": pev,
                       "panko_partitions": parts, "panko_db": psize, "sqla_rows": srows, "sqla_db": ssize,
                       "error_traces": len(error_ids)}
    print("# stored %d notifications (+%d trace entries) in %d partitions, %d rows in SQLAlchemy's table (%.0f s)"
          % (stored, pev - stored, parts, srows, load_s))

    # ---- get_report of the 1,000-span trace
    ptimes, stimes = [], []
    pr = sr = None
    # Where panko's get_report time goes, as the driver's role, in the same
    # turns: the server building the report (only its length sent back),
    # the same with the report's text sent, and Python's json.loads of that
    # text alone: the dict the interface returns cannot cost less than that
    # parse.
    parts = {"server_ms": [], "server_and_wire_ms": [], "json_loads_ms": []}
    rconn = psycopg2.connect(cluster.uri("panko", "bench_osp"))
    rconn.autocommit = True
    rcur = rconn.cursor()
    for r in range(args.runs):
        ms, pr = timed(p.get_report, big_id)
        ptimes.append(ms)
        sd = base.get_driver(sqla_cs, **meta)      # its report accumulates: one driver per call
        ms, sr = timed(sd.get_report, big_id)
        stimes.append(ms)
        sd._conn.close()
        ms, _ = timed(rcur.execute, "SELECT length(panko.trace_report(%s)::text)", (big_id,))
        parts["server_ms"].append(ms)
        t = time.perf_counter()
        rcur.execute("SELECT panko.trace_report(%s)::text", (big_id,))
        text = rcur.fetchone()[0]
        parts["server_and_wire_ms"].append((time.perf_counter() - t) * 1000.0)
        ms, _ = timed(json.loads, text)
        parts["json_loads_ms"].append(ms)
    rconn.close()
    same = shape(pr) == shape(sr)
    results["get_report"] = {"panko_ms": ptimes, "sqla_ms": stimes, "same_tree": same,
                             "spans": sum(x["count"] for x in pr["stats"].values()),
                             "report_bytes": len(json.dumps(pr)), "panko_parts": parts}
    print("# get_report: panko p50 %.1f ms, SQLAlchemy p50 %.1f ms, same tree: %s"
          % (p50(ptimes), p50(stimes), same))
    if not same:
        raise SystemExit("FAIL: the two reports differ")

    # ---- list newest 1,000, list all, errors
    newest = [timed(p.list_traces, ("base_id", "timestamp"), limit=1000)[0] for _ in range(args.runs)]
    n_newest = len(p.list_traces(limit=1000))
    pall, sall = [], []
    for r in range(3):
        ms, plist = timed(p.list_traces, ("base_id", "timestamp"))
        pall.append(ms)
        ms, slist = timed(s.list_traces, ("base_id", "timestamp"))
        sall.append(ms)
    same_set = {x["base_id"] for x in plist} == {x["base_id"] for x in slist}
    perr = [timed(p.list_error_traces)[0] for _ in range(args.runs)]
    perrors = p.list_error_traces()
    try:
        s.list_error_traces()
        sqla_errors = "implemented"
    except NotImplementedError:
        sqla_errors = "NotImplementedError"
    serr = []
    for r in range(3):
        # what a user of SQLAlchemy's table writes: decode data, look for info.etype
        ms, rows = timed(_sql_errors, sconn)
        serr.append(ms)
    results["list"] = {"panko_newest_1000_ms": newest, "newest_returned": n_newest, "panko_all_ms": pall,
                       "sqla_all_ms": sall, "traces_listed": len(plist), "sqla_listed": len(slist),
                       "same_traces": same_set, "panko_errors_ms": perr, "panko_error_traces": len(perrors),
                       "sqla_list_error_traces": sqla_errors, "sqla_errors_sql_ms": serr,
                       "sqla_errors_sql_traces": rows, "expected_error_traces": len(error_ids)}
    print("# list: newest 1000 p50 %.1f ms; all %d traces: panko %.0f ms, SQLAlchemy %.0f ms (same traces: %s); "
          "errors: panko %.1f ms (%d traces), SQLAlchemy %s, SQL over its table %.0f ms (%d)"
          % (p50(newest), len(plist), p50(pall), p50(sall), same_set, p50(perr), len(perrors), sqla_errors,
             p50(serr), rows))
    if not same_set or len(perrors) != len(error_ids) or {e["base_id"] for e in perrors} != error_ids:
        raise SystemExit("FAIL: the lists differ")

    # ---- plans inside the trace functions, as a panko_auditor role
    results["plans"] = plans(cluster, big_id)

    # ---- notify throughput (last: it adds to both stores)
    w2 = Workload(seed=11)
    notes = []
    now = datetime.datetime.utcnow()
    while len(notes) < args.notify:
        notes += w2.trace(10, now + datetime.timedelta(milliseconds=len(notes)))[1]
    notes = notes[:args.notify]
    rates = {}
    for name, driver in (("panko", p), ("sqla", s), ("panko", p), ("sqla", s)):
        half = notes[:len(notes) // 2] if name not in rates else notes[len(notes) // 2:]
        t = time.perf_counter()
        for n in half:
            driver.notify(n)
        rates.setdefault(name, []).append(len(half) / (time.perf_counter() - t))
    # the same, panko with synchronous_commit off (a libpq option in the connection string)
    async_cs = panko_cs + "&options=-csynchronous_commit%3Doff"
    pa = base.get_driver(async_cs, **meta)
    extra = [dict(n, trace_id=n["trace_id"] + "-a", base_id=n["base_id"] + "-a",
                  parent_id=n["parent_id"] + "-a") for n in notes[:min(len(notes), 5000)]]
    t = time.perf_counter()
    for n in extra:
        pa.notify(n)
    async_rate = len(extra) / (time.perf_counter() - t)
    admin = psycopg2.connect(cluster.uri("panko"))
    with admin.cursor() as cur:
        cur.execute("SELECT count(*) FROM panko.partition_summary")
        summaries = cur.fetchone()[0]
    admin.close()
    results["notify_rates"] = {"panko_per_s": rates["panko"], "sqla_per_s": rates["sqla"],
                         "panko_async_commit_per_s": async_rate, "partition_summary_rows_after": summaries}
    print("# notify: panko %s/s, SQLAlchemy %s/s; panko with synchronous_commit=off %.0f/s"
          % ([round(x) for x in rates["panko"]], [round(x) for x in rates["sqla"]], async_rate))
    pconn.close()
    sconn.close()


def _sql_errors(conn):
    with conn.cursor() as cur:
        cur.execute("""SELECT count(DISTINCT base_id) FROM data
                        WHERE name LIKE '%%stop' AND (data #>> '{}')::jsonb -> 'info' ->> 'etype' IS NOT NULL""")
        return cur.fetchone()[0]


def plans(cluster, big_id):
    conn = psycopg2.connect(cluster.uri("panko", "bench_explain"))
    conn.autocommit = True
    out = {}
    for name, sql, arg in (("trace_report", "SELECT panko.trace_report(%s)", (big_id,)),
                           ("trace_list newest 1000", "SELECT * FROM panko.trace_list(NULL, 1000)", ()),
                           ("trace_errors", "SELECT * FROM panko.trace_errors()", ())):
        for attempt in (1, 2):             # the second: the plan as cached
            del conn.notices[:]
            with conn.cursor() as cur:
                cur.execute(sql, arg)
                cur.fetchall()
        out[name] = "".join(conn.notices)
    conn.close()
    return out


def report(r):
    g, li, no = r["get_report"], r["list"], r["notify_rates"]
    pr, sr = p50(g["panko_ms"]), p50(g["sqla_ms"])
    pn, sn = statistics.mean(no["panko_per_s"]), statistics.mean(no["sqla_per_s"])
    rows = [
        ("notify, notifications/s (%d each)" % r["notify"], "%.0f" % pn, "%.0f" % sn, pn / sn,
         ">= SQLAlchemy", pn >= sn),
        ("get_report, 1,000 spans, p50 ms", "%.1f" % pr, "%.1f" % sr, sr / pr,
         ">= 10x and <= 20 ms", sr / pr >= 10 and pr <= 20),
        ("list_traces newest 1,000, p50 ms", "%.1f" % p50(li["panko_newest_1000_ms"]),
         "%.0f (all)" % p50(li["sqla_all_ms"]), p50(li["sqla_all_ms"]) / p50(li["panko_newest_1000_ms"]),
         "<= 50 ms", p50(li["panko_newest_1000_ms"]) <= 50),
        ("list_traces all %d traces, p50 ms" % li["traces_listed"], "%.0f" % p50(li["panko_all_ms"]),
         "%.0f" % p50(li["sqla_all_ms"]), p50(li["sqla_all_ms"]) / p50(li["panko_all_ms"]), "(info)", None),
        ("list_error_traces (%d traces), p50 ms" % li["panko_error_traces"], "%.1f" % p50(li["panko_errors_ms"]),
         "n/a (%s); SQL over its table %.0f" % (li["sqla_list_error_traces"], p50(li["sqla_errors_sql_ms"])),
         p50(li["sqla_errors_sql_ms"]) / p50(li["panko_errors_ms"]), "(info)", None),
    ]
    print("\n| figure | panko | SQLAlchemy | ratio (panko's advantage) | target | |")
    print("|---|---:|---:|---:|---|---|")
    for name, a, b, ratio, target, ok in rows:
        print("| %s | %s | %s | %.1fx | %s | %s |" % (name, a, b, ratio, target,
                                                      "" if ok is None else ("pass" if ok else "**miss**")))
    print("\nnotify with synchronous_commit=off (panko:// ...&options=-csynchronous_commit%%3Doff): %.0f/s"
          % no["panko_async_commit_per_s"])
    print("stored: %(notifications)d notifications in %(panko_partitions)d partitions (%(panko_db)s) vs "
          "%(sqla_rows)d rows (%(sqla_db)s)" % r["load"])
    print("report: %d spans, %d bytes of JSON; get_report runs (ms): panko %s, SQLAlchemy %s"
          % (g["spans"], g["report_bytes"], [round(x, 1) for x in g["panko_ms"]], [round(x) for x in g["sqla_ms"]]))
    parts = g["panko_parts"]
    print("get_report's parts, p50 ms: the server building it %.1f; with its text sent %.1f; json.loads of"
          " that text alone %.1f, against SQLAlchemy's whole call / 10 = %.1f"
          % (p50(parts["server_ms"]), p50(parts["server_and_wire_ms"]), p50(parts["json_loads_ms"]), sr / 10))
    for name, plan in r.get("plans", {}).items():
        print("\n---- plans inside %s\n%s" % (name, plan.strip()))


if __name__ == "__main__":
    main()
