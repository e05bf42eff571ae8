#!/usr/bin/python3
"""panko's benchmark: panko against three baselines, same run, same cluster.

Systems (one database each):
  panko     CREATE EXTENSION panko; ingest panko.record_events, queries
            panko.get_events, expiry panko.clear_expired_data; every call as
            bench_admin, a LOGIN member of panko_admin (not a superuser:
            superusers bypass row-level security)
  upstream  (a) upstream Panko's SQL schema and the SQL its driver issues
            (upstream.py)
  jsonb     (b) one table, traits as a jsonb object, GIN jsonb_path_ops on
            traits, btree on generated; queries as a careful user writes them
  heap      (c) the same rows as (b) into an unindexed heap: the ingest floor

Each system is loaded once per --days value D (the same N events spread
over D daily partitions), and every part runs on each of those datasets;
calls.py measures one transaction per call (pgbench) and the first call of
a new backend.

Run through test/bench/run.sh, which starts the cluster; see README.md.
"""

import argparse
import bisect
import itertools
import json
import math
import os
import platform
import re
import statistics
import subprocess
import sys
import time
import traceback

import psycopg2
import psycopg2.extensions
import psycopg2.extras

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import upstream  # noqa: E402
import workload  # noqa: E402

DAY = 86400
ALL_SYSTEMS = ["panko", "upstream", "jsonb", "heap"]
ALL_PARTS = ["ingest", "size", "queries", "calls", "expiry", "http"]

# Return timestamps and json as the server's text: the client-side decoding
# cost is then the same (and small) for every system.
_STR = psycopg2.extensions.new_type((1114, 1184, 114, 3802), "BENCH_STR", lambda v, c: v)
psycopg2.extensions.register_type(_STR)
psycopg2.extensions.register_type(psycopg2.extensions.new_array_type((1115, 1185, 199, 3807),
                                                                     "BENCH_STR_ARR", _STR))


# --------------------------------------------------------------------------
# small helpers

def log(msg):
    print(msg, flush=True)


def ts(epoch):
    """epoch seconds -> ISO string without zone (UTC)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch))


def connect(db, user=None, autocommit=True):
    kw = {"dbname": db, "options": "-c TimeZone=UTC"}
    if user:
        kw["user"] = user
    conn = psycopg2.connect(**kw)
    conn.autocommit = autocommit
    return conn


def q1(conn, sql, args=None):
    cur = conn.cursor()
    cur.execute(sql, args)
    r = cur.fetchone()
    cur.close()
    return r[0] if r is not None else None


def percentile(xs, p):
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = (len(xs) - 1) * p / 100.0
    lo, hi = math.floor(k), math.ceil(k)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def read_batches(path):
    with open(path) as f:
        for line in f:
            yield line.rstrip("\n")


class Failure(Exception):
    pass


JSONB_COLS = "message_id, event_type, generated, traits, raw"


def jsonb_page_sql(f):
    """The jsonb table's page query for a filter, as a careful user writes
    it: (sql, args) for cursor.execute/mogrify.  Keys _marker and _limit
    (default 100) as in Bench.query_specs."""
    f = dict(f)
    marker = f.pop("_marker", None)
    limit = int(f.pop("_limit", 100))
    if marker is not None:
        # keyset: the marker's (generated, message_id) via the primary key,
        # then the btree on generated
        return ("SELECT %s FROM ev "
                "WHERE generated >= (SELECT generated FROM ev WHERE message_id = %%(m)s) "
                "AND (generated, message_id) > "
                "(SELECT generated, message_id FROM ev WHERE message_id = %%(m)s) "
                "ORDER BY generated, message_id LIMIT %d" % (JSONB_COLS, limit), {"m": marker})
    where, args = [], []
    contains = {}
    if f.get("event_type"):
        where.append("event_type = %s")
        args.append(f["event_type"])
    for t in f.get("traits_filter", []):
        if t["op"] == "eq" and "string" in t:
            contains[t["key"]] = t["string"]
        elif t["op"] == "ge" and "integer" in t:
            where.append("(traits->>%s)::int >= %s")
            args += [t["key"], t["integer"]]
        else:
            raise Failure("jsonb baseline: unsupported filter %r" % t)
    if contains:
        where.insert(0, "traits @> %s::jsonb")
        args.insert(0, json.dumps(contains))
    if f.get("admin_proj"):
        where.append("(traits @> %s::jsonb OR NOT traits ? 'project_id')")
        args.append(json.dumps({"project_id": f["admin_proj"]}))
    if f.get("start_timestamp"):
        where.append("generated >= %s")
        args.append(f["start_timestamp"])
    if f.get("end_timestamp"):
        where.append("generated <= %s")
        args.append(f["end_timestamp"])
    sql = "SELECT %s FROM ev" % JSONB_COLS
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY generated, message_id LIMIT %d" % limit
    return sql, args


# --------------------------------------------------------------------------
# the benchmark

class Bench:
    def __init__(self, a):
        self.a = a
        self.systems = a.systems
        self.parts = a.parts
        self.res = {"n": a.n, "days": a.days, "datasets": {}, "notes": [], "problems": [],
                    "plans": []}
        # per dataset (one per --days value): set by start_dataset
        self.D = None
        self.cur = None
        self.dbs = None
        self.workfile = None
        self.meta = None

    def start_dataset(self, days, end):
        """The next --days value: its databases, workload and results."""
        self.D = days
        self.dbs = {s: "bench_%s_d%d" % (s, days) for s in ALL_SYSTEMS}
        self.cur = self.res["datasets"].setdefault(str(days), {"days": days, "figures": {}})
        self.workfile, self.meta = self.make_workload(self.a.n, end, days)
        self.cur["anchor"] = {"d0": ts(self.meta["d0"]), "end": ts(self.meta["end"]),
                              "days": round(self.meta["days"], 2), "partitions": days}
        log("workload spans %s .. %s UTC (%.2f days: %d daily partitions, ~%.0f events a day)"
            % (ts(self.meta["d0"]), ts(self.meta["end"]), self.meta["days"], days,
               self.a.n / self.meta["days"]))

    # ---- bookkeeping
    def fig(self, key, system, value, **extra):
        d = self.cur["figures"].setdefault(key, {})
        d[system] = value
        for k, v in extra.items():
            d["%s.%s" % (system, k)] = v

    def note(self, msg):
        self.res["notes"].append(msg)
        log("  note: " + msg)

    def problem(self, msg):
        self.res["problems"].append(msg)
        log("  PROBLEM: " + msg)

    # ---- setup
    def admin(self, db="postgres"):
        return connect(db)

    def create_db(self, name):
        c = self.admin()
        cur = c.cursor()
        cur.execute("DROP DATABASE IF EXISTS %s" % name)
        cur.execute("CREATE DATABASE %s" % name)
        c.close()

    def drop_db(self, name):
        c = self.admin()
        c.cursor().execute("DROP DATABASE IF EXISTS %s" % name)
        c.close()

    def setup_panko(self, db):
        self.create_db(db)
        c = self.admin(db)
        cur = c.cursor()
        try:
            cur.execute("CREATE EXTENSION panko")
        except psycopg2.Error as e:
            raise Failure("CREATE EXTENSION panko failed (%s); run `make install` first, or "
                          "--systems upstream,jsonb,heap for the baselines only" % str(e).strip())
        # bench_admin: every panko call of the bench that is not HTTP's;
        # panko_http: panko-api's login, and the API form of calls.py.  The
        # *_pl twins have panko.so loaded when their backend starts, as with
        # panko in shared_preload_libraries (calls.py: the first call).
        for role, member in [("bench_admin", "panko_admin"), ("panko_http", "panko_api"),
                             ("bench_admin_pl", "panko_admin"), ("panko_http_pl", "panko_api")]:
            cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,))
            if cur.fetchone() is None:
                cur.execute("CREATE ROLE %s LOGIN IN ROLE %s" % (role, member))
                if role.endswith("_pl"):
                    cur.execute("ALTER ROLE %s SET session_preload_libraries = 'panko'" % role)
        cur.execute("SELECT extversion FROM pg_extension WHERE extname = 'panko'")
        self.res["panko_version"] = cur.fetchone()[0]
        c.close()

    def setup_upstream(self, db):
        self.create_db(db)
        c = self.admin(db)
        c.cursor().execute(upstream.SCHEMA)
        c.close()

    def setup_jsonb(self, db):
        self.create_db(db)
        c = self.admin(db)
        c.cursor().execute("""
            CREATE TABLE ev (message_id text PRIMARY KEY, event_type text, generated timestamptz,
                             traits jsonb, raw jsonb);
            CREATE INDEX ev_traits ON ev USING gin (traits jsonb_path_ops);
            CREATE INDEX ev_generated ON ev (generated);""")
        c.close()

    def setup_heap(self, db):
        self.create_db(db)
        c = self.admin(db)
        c.cursor().execute("""CREATE TABLE ev (message_id text, event_type text, generated timestamptz,
                                               traits jsonb, raw jsonb)""")
        c.close()

    # ---- workload
    def make_workload(self, n, end, days):
        path = os.path.join(self.a.workdir, "events-%d-d%d.jsonl" % (n, days))
        t0 = time.perf_counter()
        w = workload.write(n, path, seed=self.a.seed, batch=self.a.batch, end=end, days=days)
        log("workload: %d events over %d days in %d batches of <= %d, %.1f s to generate -> %s"
            % (n, days, math.ceil(n / self.a.batch), self.a.batch, time.perf_counter() - t0, path))
        return path, w.meta()

    # ---- ingest
    JSONB_INSERT = """
        INSERT INTO ev (message_id, event_type, generated, traits, raw)
        SELECT e->>'message_id', e->>'event_type', (e->>'generated')::timestamptz,
               (SELECT jsonb_object_agg(t->>0, t->2) FROM jsonb_array_elements(e->'traits') t),
               e->'raw'
        FROM jsonb_array_elements(%s::jsonb) e"""

    def build_loader(self):
        """Compile loader.c (the libpq ingest client) into the work dir."""
        out = os.path.join(self.a.workdir, "loader")
        inc = os.environ.get("BENCH_PG_INCLUDEDIR") or subprocess.run(
            ["pg_config", "--includedir"], capture_output=True, text=True).stdout.strip()
        libdir = os.environ.get("BENCH_PG_LIBDIR") or subprocess.run(
            ["pg_config", "--libdir"], capture_output=True, text=True).stdout.strip()
        r = subprocess.run(["cc", "-O2", "-Wall", "-o", out, os.path.join(HERE, "loader.c"),
                            "-I" + inc, "-L" + libdir, "-lpq"], capture_output=True, text=True)
        if r.returncode != 0:
            raise Failure("cannot build loader.c: %s" % r.stderr)
        self.loader = out

    def ingest_set_based(self, system, db, path, n, label):
        """Every batch through one prepared statement with the batch as its
        parameter $1 (loader.c, libpq), one transaction per batch.  Timed:
        the execution of each batch (generation and file reading excluded,
        the same for every system)."""
        if system == "panko":
            user = "bench_admin"
            # the text form: the same outcomes as record_events($1::jsonb),
            # without jsonb_in building the whole batch first
            sql = "SELECT count(*) FROM panko.record_events_text($1)"
        else:
            user = "postgres"
            sql = self.JSONB_INSERT.replace("%s", "$1")
        self.checkpoint(db)
        conninfo = "dbname=%s user=%s options='-c TimeZone=UTC'" % (db, user)
        r = subprocess.run([self.loader, conninfo, sql, path], capture_output=True, text=True)
        if r.returncode != 0:
            raise Failure("%s %s failed: %s" % (system, label, r.stderr.strip()))
        kv = dict(x.split("=") for x in r.stdout.split())
        total, rows = float(kv["seconds"]), int(kv["rows"])
        if system == "panko":
            if rows != 0:
                raise Failure("panko.record_events did not store %d of the %d events" % (rows, n))
            c = self.admin(db)
            stored = q1(c, "SELECT count(*) FROM panko.event")
            parts = q1(c, "SELECT count(*) FROM panko.partition")
            c.close()
            log("  %-8s %d partitions of panko.event after the ingest" % (system, parts))
            if label == "ingest":
                self.cur["anchor"]["panko_partitions"] = parts
                if parts != self.D:
                    self.note("the %d-day dataset made %d partitions of panko.event, not %d"
                              % (self.D, parts, self.D))
            if stored != n:
                raise Failure("panko: %d events stored, expected %d" % (stored, n))
        elif rows != n:
            raise Failure("%s: ingested %d events, expected %d" % (system, rows, n))
        rate = n / total if total > 0 else float("nan")
        log("  %-8s %s: %d events in %.2f s = %.0f events/s" % (system, label, n, total, rate))
        return rate, total

    def parse_floor(self, db):
        """For information: what sending each batch as $1 and parsing it
        into jsonb alone costs (every system pays it)."""
        conninfo = "dbname=%s options='-c TimeZone=UTC'" % db
        r = subprocess.run([self.loader, conninfo, "SELECT ($1::jsonb) IS NULL", self.workfile],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise Failure("parse floor: %s" % r.stderr.strip())
        secs = float(dict(x.split("=") for x in r.stdout.split())["seconds"])
        rate = self.a.n / secs
        log("  (info) receiving + parsing $1::jsonb alone: %.2f s = %.0f events/s" % (secs, rate))
        first = "parse_floor_events_per_s" not in self.res
        self.res["parse_floor_events_per_s"] = rate
        self.cur["parse_floor_events_per_s"] = rate
        if first:
            self.note("receiving a batch as $1 and parsing it into jsonb, nothing else, runs at %.0f events/s "
                      "on this machine (%d-day dataset): no ingest through record_events($1::jsonb) "
                      "can be faster" % (rate, self.D))

    def ingest_upstream(self, db, path, n, sample):
        """Upstream's driver: one transaction per event, on the first
        `sample` events; the rest bulk-loaded set-based (not timed as
        upstream's ingest)."""
        conn = connect(db, autocommit=False)
        sample = min(sample, n)
        events = []
        rest_first_batch = None
        it = read_batches(path)
        consumed = 0
        for b in it:
            evs = json.loads(b)
            consumed += 1
            for ev in evs:
                if len(events) < sample:
                    ev["_raw_text"] = json.dumps(ev.get("raw"))
                    events.append(ev)
            if len(events) >= sample:
                rest_first_batch = evs[sample - (consumed - 1) * self.a.batch:]
                break
        rate = None
        if sample > 0:
            self.checkpoint(db)
            t0 = time.perf_counter()
            upstream.record_events(conn, events)
            dt = time.perf_counter() - t0
            rate = sample / dt
            log("  upstream per-event driver replay: %d events in %.2f s = %.0f events/s"
                % (sample, dt, rate))
        conn.commit()
        conn.autocommit = True
        cur = conn.cursor()
        t0 = time.perf_counter()
        loaded = 0
        pending = [json.dumps(rest_first_batch)] if rest_first_batch else []
        for b in itertools.chain(pending, it):
            cur.execute(upstream.BULK_EVENT_TYPES, {"b": b})
            cur.execute(upstream.BULK_LOAD, {"b": b})
            loaded += cur.fetchone()[0]
        dt = time.perf_counter() - t0
        conn.close()
        if sample + loaded != n:
            raise Failure("upstream: loaded %d + %d events, expected %d" % (sample, loaded, n))
        if loaded:
            log("  upstream bulk load (set-based SQL, NOT upstream's driver) of the other %d events: "
                "%.1f s" % (loaded, dt))
        return rate

    def checkpoint(self, db):
        c = self.admin(db)
        c.cursor().execute("CHECKPOINT")
        c.close()

    def maintain(self, db):
        """One maintenance run, as the worker (or pg_cron) makes every few
        minutes in a real deployment: it seals the past partitions' trait
        summaries that the load left unsealed.  Untimed."""
        c = self.admin(db)
        t0 = time.perf_counter()
        cur = c.cursor()
        cur.execute("SELECT panko.run_maintenance()::text")
        report = cur.fetchone()[0]
        c.commit()
        c.close()
        log("  panko    run_maintenance %.1f s: %s" % (time.perf_counter() - t0, report))

    def vacuum(self, system, db):
        c = self.admin(db)
        t0 = time.perf_counter()
        c.cursor().execute("VACUUM (ANALYZE)")
        c.close()
        log("  %-8s VACUUM ANALYZE %.1f s" % (system, time.perf_counter() - t0))

    def load_all(self, first):
        """Load every system with this dataset.  Upstream's per-event
        driver replay (slow) is timed on the first dataset only."""
        a = self.a
        n = a.n
        need_heap = "heap" in self.systems and ("ingest" in self.parts or "size" in self.parts)
        log("\n== ingest (N = %d over %d days, batches of %d)" % (n, self.D, a.batch))
        for s in ["heap", "jsonb", "panko", "upstream"]:
            if s not in self.systems or (s == "heap" and not need_heap):
                continue
            db = self.dbs[s]
            getattr(self, "setup_" + s)(db)
            if s == "upstream":
                sample = a.upstream_sample if "ingest" in self.parts and first else 0
                rate = self.ingest_upstream(db, self.workfile, n, sample)
                if rate is not None:
                    self.fig("ingest", s, rate, sample=sample)
            else:
                rate, total = self.ingest_set_based(s, db, self.workfile, n, "ingest")
                self.fig("ingest", s, rate, seconds=total)
            if s == "panko":
                self.maintain(db)
            self.vacuum(s, db)
            if s == "heap" and "ingest" in self.parts:
                self.parse_floor(db)
        if "upstream" in self.systems and "ingest" in self.parts and first:
            self.note("upstream's ingest rate is its driver's SQL (one transaction per event) replayed "
                      "on the first %d events of the %d-day dataset; the rest of its N, and every "
                      "other dataset, was bulk-loaded with set-based SQL" % (min(a.upstream_sample, n), self.D))

    # ---- size
    def size(self):
        log("\n== size on disk (pg_total_relation_size of every table, indexes and TOAST included)")
        for s in self.systems:
            db = self.dbs[s]
            c = self.admin(db)
            cur = c.cursor()
            cur.execute("""
                SELECT n.nspname, c.relname, c.relkind, pg_total_relation_size(c.oid),
                       coalesce(pi.inhparent::regclass::text, '')
                FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                LEFT JOIN pg_inherits pi ON pi.inhrelid = c.oid
                WHERE c.relkind IN ('r', 'm', 'p')
                  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
                  AND n.nspname NOT LIKE 'pg_toast%%'""")
            rows = cur.fetchall()
            c.close()
            total = sum(r[3] for r in rows)
            groups = {}
            for nsp, rel, kind, sz, parent in rows:
                key = parent or "%s.%s" % (nsp, rel)
                groups[key] = groups.get(key, 0) + sz
            detail = ", ".join("%s %.1f MB" % (k, v / 1e6) for k, v in sorted(groups.items(), key=lambda x: -x[1]))
            log("  %-8s %8.1f MB = %6.1f bytes/event  (%s)" % (s, total / 1e6, total / self.a.n, detail))
            self.fig("size", s, total / self.a.n, total_bytes=total, tables=len(rows))
            self.res.setdefault("size_detail", {})[s] = groups

    # ---- queries
    def query_specs(self):
        """Q1..Q5 (+Q4a admin-scoped) as lists of per-run parameter sets."""
        m = self.meta
        runs = self.a.runs + self.a.warmup
        d0 = m["d0"]
        inst = m["instances_sample"]
        days = int(m["days"])
        mid = max(1, days // 2 - 5)

        def day_window(i):
            d = mid + i % 10 if days > 12 else (i % max(1, days - 1)) + 1
            return ts(d0 + d * DAY), ts(d0 + (d + 1) * DAY)

        specs = []
        specs.append(("Q1", "instance_id eq", [
            {"traits_filter": [{"key": "instance_id", "op": "eq", "string": inst[(i * 37) % len(inst)]}]}
            for i in range(runs)]))
        q2 = []
        for i in range(runs):
            s, e = day_window(i)
            q2.append({"event_type": m["event_types"][i % len(m["event_types"])],
                       "start_timestamp": s, "end_timestamp": e,
                       "traits_filter": [{"key": "project_id", "op": "eq",
                                          "string": m["projects"][(i * 7) % len(m["projects"])]}]})
        specs.append(("Q2", "event_type + project_id + 1 day", q2))
        q3 = []
        for i in range(runs):
            s, e = day_window(i)
            q3.append({"start_timestamp": s, "end_timestamp": e,
                       "traits_filter": [{"key": "memory_mb", "op": "ge", "integer": 4096},
                                         {"key": "state", "op": "eq", "string": "error"}]})
        specs.append(("Q3", "memory_mb ge 4096 + state eq error + 1 day", q3))
        specs.append(("Q4", "no filter, first page", [{} for _ in range(runs)]))
        specs.append(("Q5", "page after a marker at ~%d" % self.marker_pos,
                      [{"_marker": mk} for mk in self.markers]))
        specs.append(("Qh", "project_id eq, limit 10, no window (the SQL of the HTTP filter route)",
                      [{"_limit": 10, "traits_filter": [{"key": "project_id", "op": "eq",
                                                         "string": m["projects"][i % len(m["projects"])]}]}
                       for i in range(runs)]))
        if self.a.admin_q4:
            specs.append(("Q4a", "admin-scoped (own project or no project_id), first page",
                          [{"admin_proj": m["projects"][i % len(m["projects"])]} for i in range(runs)]))
        return specs

    def find_markers(self):
        """Markers: the message_ids at positions ~50,000 (default order:
        generated, message_id) and a little after, from the workload file."""
        keys = []
        for b in read_batches(self.workfile):
            for ev in json.loads(b):
                keys.append((ev["generated"], ev["message_id"]))
        keys.sort()
        n = len(keys)
        runs = self.a.runs + self.a.warmup
        pos = min(self.a.marker_pos, n // 2)
        step = max(1, min(997, (n - pos - 200) // max(1, runs)))
        self.marker_pos = pos
        self.markers_days = self.D
        self.markers = [keys[min(n - 1, pos - 1 + i * step)][1] for i in range(runs)]
        self.expected_after_marker = {keys[min(n - 1, pos - 1 + i * step)][1]:
                                      [k[1] for k in keys[pos + i * step: pos + i * step + 100]]
                                      for i in range(runs)}

    def runner(self, system):
        if system == "panko":
            conn = connect(self.dbs["panko"], "bench_admin")
            cur = conn.cursor()

            def run(f):
                f = dict(f)
                marker = f.pop("_marker", None)
                limit = f.pop("_limit", 100)
                cur.execute("SELECT message_id, event_type, generated, traits, raw "
                            "FROM panko.get_events(%s::jsonb, %s, NULL, %s)", (json.dumps(f), limit, marker))
                rows = cur.fetchall()
                return [r[0] for r in rows], None
            return conn, run
        if system == "upstream":
            conn = connect(self.dbs["upstream"])
            cur = conn.cursor()
            cur.execute("SET statement_timeout = '600s'")

            def run(f):
                f = dict(f)
                marker = f.pop("_marker", None)
                limit = f.pop("_limit", 100)
                rows, ntraits = upstream.get_events(cur, f, marker, limit)
                return [r[1] for r in rows], ntraits
            return conn, run
        if system == "jsonb":
            conn = connect(self.dbs["jsonb"])
            cur = conn.cursor()

            def run(f):
                sql, args = jsonb_page_sql(f)
                cur.execute(sql, args)
                return [r[0] for r in cur.fetchall()], None
            return conn, run
        raise ValueError(system)

    def queries(self):
        a = self.a
        self.find_markers()
        specs = self.query_specs()
        qsys = [s for s in ["panko", "upstream", "jsonb"] if s in self.systems]
        log("\n== queries: a page of 100 events with all their traits; %d warm-up + up to %d timed runs "
            "each (budget %d s per query and system), client-side time of execute + fetchall"
            % (a.warmup, a.runs, a.budget))
        runners = {s: self.runner(s) for s in qsys}
        for qname, desc, params in specs:
            answers = {}
            for s in qsys:
                conn, run = runners[s]
                first = {}
                for i in range(a.warmup):
                    ids, nt = run(params[i])
                    first[i] = (ids, nt)
                times = []
                t_start = time.perf_counter()
                for i in range(a.warmup, a.warmup + a.runs):
                    t0 = time.perf_counter()
                    ids, nt = run(params[i])
                    times.append(time.perf_counter() - t0)
                    if i not in first:
                        first[i] = (ids, nt)
                    if time.perf_counter() - t_start > a.budget and len(times) >= a.min_runs:
                        break
                answers[s] = first
                p50 = percentile(times, 50) * 1000
                p95 = percentile(times, 95) * 1000
                self.fig(qname, s, p50, p95=p95, runs=len(times), min=min(times) * 1000,
                         max=max(times) * 1000)
                rows = statistics.mean(len(v[0]) for v in first.values())
                log("  %-3s %-8s p50 %9.2f ms  p95 %9.2f ms  (%d runs, %.0f events/page avg)  %s"
                    % (qname, s, p50, p95, len(times), rows, desc))
            self.check_answers(qname, params, answers)
        for conn, _ in runners.values():
            conn.close()
        if a.explain:
            self.explain(specs)

    def check_answers(self, qname, params, answers):
        """Every system must return the same events in the same order."""
        systems = list(answers)
        for i in sorted(set.intersection(*[set(v) for v in answers.values()])):
            ref = None
            for s in systems:
                ids, nt = answers[s][i]
                if nt is not None and nt != 12 * len(ids):
                    self.problem("%s %s run %d: %d trait rows for %d events (expected 12 each)"
                                 % (qname, s, i, nt, len(ids)))
                if "_marker" in params[i]:
                    exp = self.expected_after_marker[params[i]["_marker"]]
                    if ids != exp:
                        self.problem("%s %s run %d: page after marker differs from the workload's order "
                                     "(%d events, first %s, expected %s)"
                                     % (qname, s, i, len(ids), ids[:1], exp[:1]))
                if ref is None:
                    ref = (s, ids)
                elif ids != ref[1]:
                    self.problem("%s run %d: %s returned %d events, %s returned %d (or another order); "
                                 "filter %s" % (qname, i, s, len(ids), ref[0], len(ref[1]),
                                                json.dumps(params[i])))
            if qname in ("Q1", "Q2", "Q3") and ref is not None and not ref[1] and i == 0:
                self.note("%s: the first parameter set matched no events" % qname)

    def explain(self, specs):
        """EXPLAIN ANALYZE of the first timed run of each query, per system
        (panko: the statements inside get_events through auto_explain's
        nested-statement logging, when it runs SQL inside)."""
        out = []
        for qname, desc, params in specs:
            f = dict(params[self.a.warmup])
            marker = f.pop("_marker", None)
            limit = f.pop("_limit", 100)
            # panko
            if "panko" in self.systems:
                c = self.admin(self.dbs["panko"])
                cur = c.cursor()
                try:
                    # warm this session first (function and plan caches), so
                    # the nested durations below are those of a warm call
                    cur.execute("SET ROLE bench_admin")
                    for _ in range(3):
                        cur.execute("SELECT count(*) FROM panko.get_events(%s::jsonb, %s, NULL, %s)",
                                    (json.dumps(f), limit, marker))
                    cur.execute("RESET ROLE")
                    cur.execute("LOAD 'auto_explain'")
                    cur.execute("SET auto_explain.log_min_duration = 0; SET auto_explain.log_analyze = on; "
                                "SET auto_explain.log_buffers = on; SET auto_explain.log_nested_statements = on; "
                                "SET auto_explain.log_level = NOTICE; SET client_min_messages = notice; "
                                "SET ROLE bench_admin")
                    del c.notices[:]
                    cur.execute("EXPLAIN (ANALYZE, BUFFERS) SELECT message_id, event_type, generated, traits, raw "
                                "FROM panko.get_events(%s::jsonb, %s, NULL, %s)", (json.dumps(f), limit, marker))
                    plan = "\n".join(r[0] for r in cur.fetchall())
                    nested = "".join(c.notices)
                    out.append("---- %s panko: %s\nfilter=%s marker=%s\n%s\n%s"
                               % (qname, desc, json.dumps(f), marker, plan, nested))
                except psycopg2.Error as e:
                    out.append("---- %s panko: EXPLAIN failed: %s" % (qname, e))
                c.close()
            if "upstream" in self.systems:
                c = self.admin(self.dbs["upstream"])
                cur = c.cursor()
                mk = None
                if marker:
                    found, _ = upstream.get_events(cur, {"message_id": marker}, None, None)
                    mk = found[0]
                params_ = {}
                sql = upstream.page_query(f, params_, mk, limit)
                cur.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params_)
                plan = "\n".join(r[0] for r in cur.fetchall())
                params_ = {}
                sql2 = upstream.traits_query(f, params_, mk, limit)
                cur.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql2, params_)
                plan2 = "\n".join(r[0] for r in cur.fetchall())
                out.append("---- %s upstream page query\n%s\n---- %s upstream traits query\n%s"
                           % (qname, plan, qname, plan2))
                c.close()
        self.res["plans"].append("==== %d-day dataset (%d partitions): EXPLAIN ANALYZE of each query\n\n%s"
                                 % (self.D, self.D, "\n\n".join(out)))

    # ---- expiry
    def expiry_possible(self):
        """Expiring --expiry-days days, then 6 hours more and (diagnostic)
        the rest of the next day, needs that many whole days before today."""
        return self.D >= self.a.expiry_days + 2

    def expiry(self, scales):
        a = self.a
        log("\n== expiry: one day out of ~%d (ttl chosen so that exactly the oldest day expires)" % self.D)
        self.expire_days(self.dbs, a.n, self.meta, self.workfile, "expiry")
        for n in scales:
            if n == a.n:
                continue
            log("\n== expiry at N = %d over %d days (fresh panko and upstream databases)" % (n, self.D))
            path, meta = self.make_workload(n, self.meta["end"], self.D)
            dbs = {"panko": "bench_panko_%d_d%d" % (n, self.D), "upstream": "bench_upstream_%d_d%d" % (n, self.D)}
            for s in ["panko", "upstream"]:
                if s not in self.systems:
                    continue
                getattr(self, "setup_" + s)(dbs[s])
                if s == "panko":
                    rate, total = self.ingest_set_based(s, dbs[s], path, n, "ingest (info)")
                    self.fig("ingest@%d" % n, s, rate)
                else:
                    self.ingest_upstream(dbs[s], path, n, 0)
                self.vacuum(s, dbs[s])
            self.expire_days(dbs, n, meta, path, "expiry@%d" % n)
            for d in dbs.values():
                self.drop_db(d)
            os.unlink(path)

    def expire_days(self, dbs, n, meta, path, key):
        a = self.a
        d0 = meta["d0"]
        systems = [s for s in ["panko", "upstream", "jsonb"] if s in self.systems and s in dbs]
        counts = {s: [] for s in systems}
        times = {s: [] for s in systems}
        cum = {s: 0 for s in systems}
        cuts = [d0 + d * DAY for d in range(1, a.expiry_days + 1)]
        extra_cut = d0 + a.expiry_days * DAY + 6 * 3600
        # how many events lie before each cutoff, and before cutoff + 1 s:
        # a ttl in whole seconds puts the real cutoff in [cut, cut + 1 s),
        # where there are no events at a midnight (see workload.py) but may
        # be some at 06:00
        bounds = self.cumulative_counts(path, cuts + [extra_cut])
        for di, cutoff in enumerate(cuts + [extra_cut]):
            label = "day %d" % (di + 1) if di < len(cuts) else "+6 h inside a day"
            lo, hi = bounds[di]
            for s in systems:
                t, deleted = self.expire_one(s, dbs[s], cutoff)
                cum[s] += deleted
                if not lo <= cum[s] <= hi:
                    self.problem("%s %s %s: %d events expired so far, expected %s"
                                 % (key, s, label, cum[s], lo if lo == hi else "%d..%d" % (lo, hi)))
                if di < len(cuts):
                    counts[s].append(deleted)
                    times[s].append(t)
                else:
                    self.fig(key + "+6h", s, t * 1000, deleted=deleted)
                log("  %-8s expire %-18s %9.1f ms  (%d events deleted)" % (s, label, t * 1000, deleted))
        for s in systems:
            self.fig(key, s, statistics.median(times[s]) * 1000, days=len(times[s]),
                     deleted_per_day=statistics.mean(counts[s]),
                     all_ms=[round(x * 1000, 1) for x in times[s]])
        if a.explain and "panko" in systems:
            self.expiry_diag(dbs["panko"], d0 + (a.expiry_days + 1) * DAY, key)

    def expiry_diag(self, db, cutoff, key):
        """Not timed: expire the rest of the next day once more with
        auto_explain logging every statement inside clear_expired_data, so
        the plans file shows where panko's expiry spends its time."""
        c = self.admin(db)
        cur = c.cursor()
        try:
            cur.execute("LOAD 'auto_explain'")
            cur.execute("SET auto_explain.log_min_duration = 0; SET auto_explain.log_analyze = on; "
                        "SET auto_explain.log_nested_statements = on; SET auto_explain.log_level = NOTICE; "
                        "SET client_min_messages = notice; SET ROLE bench_admin")
            del c.notices[:]
            t0 = time.perf_counter()
            cur.execute("SELECT panko.clear_expired_data(floor(extract(epoch FROM now()) - %s)::bigint)",
                        (cutoff,))
            deleted = cur.fetchone()[0]
            t = time.perf_counter() - t0
            notices = "".join(c.notices)
            stmts = re.findall(r"duration: ([\d.]+) ms\s+plan:\s*\nQuery Text: ([^\n]*)", notices)
            top = sorted(((float(d), q) for d, q in stmts), reverse=True)[:6]
            self.res["plans"].append(
                "---- %s [%d-day dataset] panko clear_expired_data diagnostic (cutoff %s UTC, %d deleted, %.1f ms with auto_explain "
                "on). Slowest nested statements (they nest: a function's time includes its statements'; utility "
                "statements such as DROP/DETACH are not logged):\n%s\n%s"
                % (key, self.D, ts(cutoff), deleted, t * 1000,
                   "\n".join("  %9.1f ms  %s" % (d, q[:160]) for d, q in top), notices))
        except psycopg2.Error as e:
            self.res["plans"].append("---- %s [%d-day dataset] panko expiry diagnostic failed: %s"
                                     % (key, self.D, e))
        c.close()

    def cumulative_counts(self, path, cuts):
        gens = []
        for b in read_batches(path):
            for ev in json.loads(b):
                gens.append(ev["generated"])
        gens.sort()
        return [(bisect.bisect_left(gens, ts(c) + ".000000"), bisect.bisect_left(gens, ts(c + 1) + ".000000"))
                for c in cuts]

    def expire_one(self, system, db, cutoff):
        if system == "panko":
            conn = connect(db, "bench_admin")
            cur = conn.cursor()
            # ttl in whole seconds, computed from the same now() the function
            # uses; now() - ttl lands in [cutoff, cutoff + 1 s), where the
            # workload has no events.
            t0 = time.perf_counter()
            cur.execute("SELECT panko.clear_expired_data(floor(extract(epoch FROM now()) - %s)::bigint)",
                        (cutoff,))
            deleted = cur.fetchone()[0]
            t = time.perf_counter() - t0
            conn.close()
            return t, deleted
        if system == "upstream":
            conn = connect(db, autocommit=False)
            now = time.time()
            ttl = math.floor(now - cutoff)
            end = now - ttl
            end_s = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(end)) + ".%06d" % int((end % 1) * 1e6)
            t0 = time.perf_counter()
            deleted = upstream.expirer(conn, end_s, self.a.upstream_expiry_batch)
            t = time.perf_counter() - t0
            conn.close()
            return t, deleted
        if system == "jsonb":
            conn = connect(db)
            cur = conn.cursor()
            t0 = time.perf_counter()
            cur.execute("DELETE FROM ev WHERE generated < to_timestamp(%s)", (cutoff,))
            deleted = cur.rowcount
            t = time.perf_counter() - t0
            conn.close()
            return t, deleted
        raise ValueError(system)

    # ---- http
    def http(self):
        import http_bench
        http_bench.run(self)

    # ---- calls
    def calls(self):
        import calls
        calls.run(self)

    def drop_dataset(self):
        for s in ALL_SYSTEMS:
            self.drop_db(self.dbs[s])

    # ---- main
    def run(self):
        a = self.a
        os.makedirs(a.workdir, exist_ok=True)
        self.build_loader()
        end = int(time.time())
        scales_done = False
        for i, days in enumerate(a.days):
            log("\n" + "#" * 100 + "\n# dataset %d of %d: N = %d over %d days (%d daily partitions)\n"
                % (i + 1, len(a.days), a.n, days, days) + "#" * 100)
            self.start_dataset(days, end)
            if any(p in self.parts for p in ALL_PARTS):
                self.load_all(first=(i == 0))
            if "size" in self.parts:
                self.size()
            if "queries" in self.parts:
                self.queries()
            if "calls" in self.parts:
                self.calls()
            if "http" in self.parts:
                self.http()
            if "expiry" in self.parts:
                if self.expiry_possible():
                    self.expiry([] if scales_done else a.expiry_scales)
                    scales_done = True
                else:
                    self.note("expiry skipped on the %d-day dataset: it needs --expiry-days + 2 = %d days"
                              % (days, a.expiry_days + 2))
            if not a.keep:
                os.unlink(self.workfile)
                if i < len(a.days) - 1:
                    self.drop_dataset()


# --------------------------------------------------------------------------
# report

TARGETS = {
    # key: (description, kind, threshold)
    "ingest": "ingest >= 50,000 events/s and >= 0.4x the heap floor",
    "size": "<= 0.5x upstream's bytes/event",
    "Q": "p50 <= 5 ms and >= 10x faster than upstream",
    "expiry": "<= 100 ms",
}


def fmt_num(v, unit):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if unit == "ev/s":
        return "{:,.0f}".format(v)
    if unit == "B/ev":
        return "{:,.1f}".format(v)
    if unit == "ms":
        return "{:,.2f}".format(v) if v < 100 else "{:,.0f}".format(v)
    return str(v)


def report(res, settings):
    import calls
    lines = []
    w = lines.append
    verdicts = []
    w("")
    w("=" * 124)
    w("panko benchmark  N = {:,} events   --days {}   {}".format(
        res["n"], ",".join(str(d) for d in res["days"]), res.get("when", "")))
    w("host: %s" % res.get("host", ""))
    w("cluster: %s" % settings)
    w("panko %s, git %s, installed %s" % (res.get("panko_version", "-"), res.get("git", "-"),
                                          res.get("installed", "-")))
    for d in res["days"]:
        ds = res["datasets"].get(str(d))
        if ds and ds.get("anchor"):
            report_dataset(ds, w, verdicts)
    calls.report(res, w, verdicts)
    if res["notes"]:
        w("")
        for n in res["notes"]:
            w("note: " + n)
    if res["problems"]:
        w("")
        for p in res["problems"]:
            w("PROBLEM: " + p)
    w("")
    passed = sum(1 for _, v in verdicts if v.startswith("PASS"))
    w("targets: %d PASS, %d MISS" % (passed, len(verdicts) - passed))
    return "\n".join(lines)


def report_dataset(ds, w, verdicts):
    """The table of one dataset (one --days value)."""
    F = ds["figures"]
    D = ds["days"]
    w("")
    w("=" * 124)
    w("%d-day dataset: %s .. %s UTC (%s days, %d daily partitions), 20 event types, 12 traits/event"
      % (D, ds["anchor"]["d0"], ds["anchor"]["end"], ds["anchor"]["days"], D))
    w("=" * 124)
    hdr = "%-40s %12s %12s %12s %12s  %-22s %s" % ("figure", "panko", "(a) upstream", "(b) jsonb",
                                                    "(c) heap", "panko vs a / b / c", "target")
    w(hdr)
    w("-" * 124)

    def row(label, key, unit, better, target_fn=None):
        d = F.get(key)
        if not d:
            return
        vals = [d.get(s) for s in ["panko", "upstream", "jsonb", "heap"]]
        p = vals[0]
        ratios = []
        for v in vals[1:]:
            if p is None or v is None or p == 0:
                ratios.append("-")
            elif better == "higher":
                ratios.append("%.2fx" % (p / v))
            elif better == "lower_size":
                ratios.append("%.2fx" % (p / v))
            else:  # latency: speed-up
                ratios.append("%.1fx" % (v / p))
        verdict = target_fn(d) if target_fn and p is not None else ""
        if verdict:
            verdicts.append(("%s [%d days]" % (label, D), verdict))
        w("%-40s %12s %12s %12s %12s  %-22s %s" % (
            label, fmt_num(vals[0], unit), fmt_num(vals[1], unit), fmt_num(vals[2], unit),
            fmt_num(vals[3], unit), " / ".join(ratios), verdict))

    def t_ingest(d):
        p, h = d.get("panko"), d.get("heap")
        ok = p >= 50000 and (h is None or p >= 0.4 * h)
        return "%s (>=50,000/s, >=0.4x heap%s)" % ("PASS" if ok else "MISS",
                                                    ": %.2fx" % (p / h) if h else " n/a")

    def t_size(d):
        p, u = d.get("panko"), d.get("upstream")
        if u is None:
            return "n/a (no upstream)"
        return "%s (<=0.5x upstream: %.2fx)" % ("PASS" if p <= 0.5 * u else "MISS", p / u)

    def t_q(d):
        p, u = d.get("panko"), d.get("upstream")
        ok = p <= 5.0 and (u is not None and u >= 10 * p)
        return "%s (p50<=5 ms, >=10x: %s)" % ("PASS" if ok else "MISS",
                                               "%.1fx" % (u / p) if u else "n/a")

    def t_exp(d):
        p = d.get("panko")
        return "%s (<=100 ms)" % ("PASS" if p <= 100 else "MISS")

    row("ingest events/s (batches 10k)", "ingest", "ev/s", "higher", t_ingest)
    if "ingest" in F and "upstream.sample" in F["ingest"]:
        w("%-40s %s" % ("", "(upstream: per-event driver SQL on a %d-event sample)" % F["ingest"]["upstream.sample"]))
    row("bytes on disk per event", "size", "B/ev", "lower_size", t_size)
    for q in ["Q1", "Q2", "Q3", "Q4", "Q5", "Q4a", "Qh"]:
        if q in F:
            row("%s p50 ms%s" % (q, " (info)" if q in ("Q4a", "Qh") else ""), q, "ms", "latency",
                t_q if q not in ("Q4a", "Qh") else None)
            row("%s p95 ms" % q, q + ".p95", "ms", "latency")
    for k in sorted(k for k in F if k.startswith("expiry")):
        if k.endswith("+6h"):
            row("%s: +6 h inside a day ms (info)" % k[:-3], k, "ms", "latency")
        else:
            row("%s: expire 1 day, median ms" % k, k, "ms", "latency", t_exp)
    for k in sorted(k for k in F if k.startswith("ingest@")):
        row("%s events/s (info)" % k, k, "ev/s", "higher")
    w("-" * 124)
    # p95 rows were read from the nested keys
    http = ds.get("http")
    if http:
        w("")
        w("HTTP (panko-api --threads %s; wrk -t2 -c32 -d%ss --latency on loopback)" % (http["threads"], http["duration"]))
        w("%-40s %12s %10s %10s %10s %12s  %s" % ("route", "req/s", "p50 ms", "p99 ms", "non-2xx", "events/s", "target"))
        for r in http["rows"]:
            w("%-40s %12s %10s %10s %10s %12s  %s" % (
                r["name"], "{:,.0f}".format(r["rps"]), "%.2f" % r["p50"], "%.2f" % r["p99"],
                r["non2xx"], "{:,.0f}".format(r["events_per_s"]) if r.get("events_per_s") else "-",
                r.get("verdict", "")))
            if r.get("verdict"):
                verdicts.append(("%s [%d days]" % (r["name"], D), r["verdict"]))
        if http.get("log_statuses"):
            w("statuses in panko-api's request log (all routes, sanity requests included): %s"
              % ", ".join("%s: %d" % kv for kv in sorted(http["log_statuses"].items())))


def fix_p95(res):
    """Expose the p95 of each query as its own figure row."""
    for ds in res["datasets"].values():
        F = ds["figures"]
        for q in list(F):
            if q.startswith("Q") and "." not in q:
                d = F[q]
                F[q + ".p95"] = {s: d.get(s + ".p95") for s in ["panko", "upstream", "jsonb"] if s + ".p95" in d}


def rereport(path):
    """bench.py --report FILE.json: print the report of a saved run again."""
    with open(path) as f:
        res = json.load(f)
    print(report(res, res.get("settings", "")))
    return 0


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--report":
        return rereport(sys.argv[2])
    ap = argparse.ArgumentParser(epilog="bench.py --report FILE.json prints a saved run's report again")
    ap.add_argument("--n", type=int, default=1000000)
    ap.add_argument("--days", default="31", help="comma-separated spans in days, e.g. 31,365")
    ap.add_argument("--parts", default=",".join(ALL_PARTS))
    ap.add_argument("--systems", default=",".join(ALL_SYSTEMS))
    ap.add_argument("--seed", type=int, default=workload.SEED)
    ap.add_argument("--batch", type=int, default=10000)
    ap.add_argument("--upstream-sample", type=int, default=20000)
    ap.add_argument("--upstream-expiry-batch", type=int, default=100)
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--min-runs", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--budget", type=float, default=60.0, help="seconds per query and system")
    ap.add_argument("--marker-pos", type=int, default=50000)
    ap.add_argument("--admin-q4", type=int, default=1)
    ap.add_argument("--expiry-days", type=int, default=3)
    ap.add_argument("--expiry-scales", default="5000000")
    ap.add_argument("--http-duration", type=int, default=20)
    ap.add_argument("--http-threads", type=int, default=2)
    ap.add_argument("--explain", type=int, default=1)
    ap.add_argument("--call-secs", type=int, default=3,
                    help="pgbench -T per query, form, dataset and round")
    ap.add_argument("--call-rounds", type=int, default=2,
                    help="pgbench runs per query, form and dataset, the forms taking turns")
    ap.add_argument("--call-txns", type=int, default=0, help="pgbench -t instead of -T (0: use --call-secs)")
    ap.add_argument("--call-warmup", type=int, default=20, help="first transactions of each pgbench run not counted")
    ap.add_argument("--first-calls", type=int, default=20, help="new backends per first-call figure")
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--results", required=True)
    ap.add_argument("--settings", default="")
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    a.parts = [p for p in a.parts.split(",") if p]
    a.systems = [s for s in a.systems.split(",") if s]
    a.expiry_scales = [int(x) for x in a.expiry_scales.replace(",", " ").split() if x]
    try:
        a.days = [int(x) for x in a.days.replace(",", " ").split() if x]
    except ValueError:
        ap.error("--days takes a comma-separated list of integers, e.g. 31,365")
    if not a.days or len(set(a.days)) != len(a.days) or any(not 1 <= d <= workload.MAX_DAYS for d in a.days):
        ap.error("--days: distinct values in 1..%d (panko makes daily partitions within 400 days of now)"
                 % workload.MAX_DAYS)
    for p in a.parts:
        if p not in ALL_PARTS:
            ap.error("unknown part %s (parts: %s)" % (p, ",".join(ALL_PARTS)))
    for s in a.systems:
        if s not in ALL_SYSTEMS:
            ap.error("unknown system %s" % s)
    os.makedirs(a.results, exist_ok=True)

    b = Bench(a)
    b.res["settings"] = a.settings
    b.res["when"] = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    b.res["host"] = "%s, %d cores, %.0f GB RAM, %s" % (
        platform.node(), os.cpu_count(),
        os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, platform.platform())
    try:
        b.res["git"] = subprocess.run(["git", "-C", HERE, "rev-parse", "--short", "HEAD"],
                                      capture_output=True, text=True).stdout.strip()
    except OSError:
        pass
    try:
        libdir = subprocess.run(["pg_config", "--pkglibdir"], capture_output=True, text=True).stdout.strip()
        so = os.path.join(libdir, "panko.so")
        b.res["installed"] = "%s (%s)" % (so, time.strftime("%Y-%m-%d %H:%M:%S UTC",
                                                             time.gmtime(os.stat(so).st_mtime)))
    except OSError:
        pass
    rc = 0
    try:
        b.run()
    except Exception as e:  # report what we have, then fail
        traceback.print_exc()
        b.res["problems"].append("benchmark step failed: %s: %s" % (type(e).__name__, e))
        rc = 1
    try:
        if b.res.get("installed") and "(%s)" % time.strftime(
                "%Y-%m-%d %H:%M:%S UTC", time.gmtime(os.stat(so).st_mtime)) not in b.res["installed"]:
            b.res["problems"].append("panko.so was reinstalled during the run: figures mix two builds")
    except OSError:
        pass
    fix_p95(b.res)
    text = report(b.res, a.settings)
    print(text, flush=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = os.path.join(a.results, "bench-%s-n%d-d%s" % (stamp, a.n, "-".join(str(d) for d in a.days)))
    with open(base + ".txt", "w") as f:
        f.write(text + "\n")
    with open(base + ".json", "w") as f:
        json.dump(b.res, f, indent=1, default=str)
    if b.res.get("plans"):
        with open(base + ".plans.txt", "w") as f:
            f.write("\n\n".join(b.res["plans"]) + "\n")
    for ext in (".txt", ".json"):
        link = os.path.join(a.results, "latest" + ext)
        if os.path.lexists(link):
            os.unlink(link)
        os.symlink(os.path.basename(base + ext), link)
    print("results: %s.{txt,json%s}" % (base, ",plans.txt" if b.res.get("plans") else ""))
    if b.res["problems"]:
        rc = 1
    return rc


if __name__ == "__main__":
    sys.exit(main())
