#!/usr/bin/python3
"""One-event record_events calls, one transaction each, as writers that
store an event per call make them (OSProfiler's notify through
panko.trace_notify, a service posting one event): does the cost of a call
stay flat as a day's partition fills?

    /usr/bin/python3 test/bench/ingest_calls.py [--calls 10000] [--window 1000]
        [--system NAME=BINDIR ...] [--modes current,late] [--past-days 31] [--block 100] [--keep]

Each --system is a PostgreSQL bin directory with panko installed (default:
`pg_config --bindir`'s, named "panko"); give two to compare builds side by
side, e.g. the old one in a copy of the installation:

    --system old=/tmp/pg_old/usr/lib/postgresql/15/bin --system new=/tmp/pg_new/usr/lib/postgresql/15/bin

Every system gets its own throwaway cluster (fsync on), all running at
once; the systems take turns every --block calls, so a slow spell of the
machine falls on each alike.  Modes:

  current   every event is generated now: today's partition, not sealed,
            each call adds a batch summary
  late      every event is generated yesterday, in a partition that the
            first call seals: each call adds a delta to a sealed partition

Before the calls, --past-days older days get one event each, and are sealed
(a store that has run for a while: the search for partitions to seal reads
them all).  Per system and mode: ms/call (mean and p50) over the first and the last
--window calls, their ratio, and the rows of panko.partition_summary left at
the end; then the ratio between systems.  Every call must store its event
(count of events not stored = 0), else the script fails.
"""

import argparse
import datetime
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

import psycopg2


class Cluster(object):
    """A throwaway cluster as test/lib.sh makes them, from one bin directory."""

    def __init__(self, name, bindir, keep=False, stats=False):
        self.stats = stats
        self.name = name
        self.bindir = bindir
        self.keep = keep
        self.dir = tempfile.mkdtemp(prefix="panko-ingest-calls-%s-" % name)
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
        self._pg(os.path.join(self.bindir, "initdb"), "-D", self.data, "-U", "postgres", "--auth=trust",
                 "-E", "UTF8", "--locale=C.UTF-8")
        conf = ["port = %d" % self.port, "listen_addresses = '127.0.0.1'",
                "unix_socket_directories = '%s'" % self.dir, "fsync = on", "max_connections = 20",
                "shared_buffers = 128MB", "jit = off", "log_min_messages = warning",
                "logging_collector = off"]
        if self.stats:
            conf += ["shared_preload_libraries = 'pg_stat_statements'", "pg_stat_statements.track = all"]
        with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
            f.write("\n".join(conf) + "\n")
        self._pg(os.path.join(self.bindir, "pg_ctl"), "-D", self.data, "-l",
                 os.path.join(self.dir, "server.log"), "-w", "start")

    def stop(self):
        try:
            self._pg(os.path.join(self.bindir, "pg_ctl"), "-D", self.data, "-m", "fast", "-w", "stop")
        finally:
            if not self.keep:
                shutil.rmtree(self.dir, ignore_errors=True)

    def connect(self, db):
        return psycopg2.connect(host=self.dir, port=self.port, user="postgres", dbname=db)


def event(i, when):
    """One Ceilometer-style event with 12 traits; request_id is unique."""
    u = uuid.UUID(int=(i * 2654435761 + 12345) % (1 << 128), version=4)
    return {
        "message_id": str(u),
        "event_type": "compute.instance.update",
        "generated": when.strftime("%Y-%m-%dT%H:%M:%S.%f"),
        "traits": [
            ["instance_id", 1, "inst-%d" % (i // 7)],
            ["project_id", 1, "proj-%d" % (i % 50)],
            ["tenant_id", 1, "proj-%d" % (i % 50)],
            ["user_id", 1, "user-%d" % (i % 200)],
            ["state", 1, ["active", "building", "error", "deleted", "paused"][i % 5]],
            ["host", 1, "host-%d" % (i % 100)],
            ["display_name", 1, "vm-%d" % (i // 7)],
            ["request_id", 1, "req-%s" % u],
            ["memory_mb", 2, [512, 1024, 2048, 4096, 8192][i % 5]],
            ["vcpus", 2, 1 + i % 4],
            ["disk_gb", 2, [10, 20, 40, 80, 160][i % 5]],
            ["launched_at", 4, when.strftime("%Y-%m-%dT%H:%M:%S")],
        ],
        "raw": {},
    }


class Run(object):
    """One system's database for one mode, and its call times."""

    def __init__(self, cluster, mode, calls, past_days=0):
        self.cluster = cluster
        self.mode = mode
        self.db = "calls_%s" % mode
        admin = cluster.connect("postgres")
        admin.autocommit = True
        with admin.cursor() as cur:
            cur.execute("CREATE DATABASE %s" % self.db)
        admin.close()
        self.conn = cluster.connect(self.db)
        self.conn.autocommit = True
        with self.conn.cursor() as cur:
            cur.execute("CREATE EXTENSION panko")
            if cluster.stats:
                cur.execute("CREATE EXTENSION pg_stat_statements")
        self.conn.autocommit = False
        self.cur = self.conn.cursor()
        if past_days:
            # a store that has run for a while: one event in each of the past
            # days' partitions (3 days ago and older), all sealed before the
            # timed calls (each call seals at most 32)
            now = datetime.datetime.utcnow()
            past = [event(10 ** 9 + d, now - datetime.timedelta(days=3 + d)) for d in range(past_days)]
            self.cur.execute("SELECT count(*) FROM panko.record_events(%s::jsonb)", (json.dumps(past),))
            self.conn.commit()
            for k in range(past_days // 32 + 2):
                e = event(2 * 10 ** 9 + k, now)
                self.cur.execute("SELECT count(*) FROM panko.record_events(%s::jsonb)", (json.dumps([e]),))
                self.conn.commit()
            self.cur.execute("SELECT count(*) FROM panko.partition_summary WHERE kind = 's'")
            if self.cur.fetchone()[0] < past_days:
                raise SystemExit("%s/%s: the past partitions were not all sealed" % (cluster.name, mode))
            self.conn.commit()
        self.times = []
        self.next = 0
        self.calls = calls
        now = datetime.datetime.utcnow()
        if mode == "late":
            # yesterday, noon: a past partition; the next call seals it
            self.base = datetime.datetime(now.year, now.month, now.day, 12) - datetime.timedelta(days=1)
            self.call(untimed=True)
            self.call(untimed=True)
            self.cur.execute("SELECT count(*) FROM panko.partition_summary WHERE kind = 's'")
            if self.cur.fetchone()[0] < 1:
                raise SystemExit("%s/%s: yesterday's partition was not sealed" % (cluster.name, mode))
            self.conn.commit()
        else:
            self.base = now

    def call(self, untimed=False):
        i = self.next
        self.next += 1
        when = self.base + datetime.timedelta(microseconds=i) if self.mode == "late" else datetime.datetime.utcnow()
        body = json.dumps([event(i, when)], separators=(",", ":"))
        t0 = time.perf_counter()
        self.cur.execute("SELECT count(*) FROM panko.record_events(%s::jsonb)", (body,))
        not_stored = self.cur.fetchone()[0]
        self.conn.commit()
        t1 = time.perf_counter()
        if not_stored != 0:
            raise SystemExit("%s/%s: call %d did not store its event" % (self.cluster.name, self.mode, i))
        if not untimed:
            self.times.append((t1 - t0) * 1000.0)

    def rows(self):
        self.cur.execute("SELECT kind, count(*) FROM panko.partition_summary GROUP BY kind ORDER BY kind")
        r = dict(self.cur.fetchall())
        self.cur.execute("SELECT count(*) FROM panko.event")
        n = self.cur.fetchone()[0]
        self.conn.commit()
        return r, n

    def top_statements(self, n=8):
        """The statements inside the calls that took the most time (--stats)."""
        self.cur.execute("SELECT round(total_exec_time::numeric, 1), calls, round(mean_exec_time::numeric, 4), "
                         "left(regexp_replace(query, '\\s+', ' ', 'g'), 110) FROM pg_stat_statements "
                         "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) "
                         "ORDER BY total_exec_time DESC LIMIT %s", (n,))
        rows = self.cur.fetchall()
        self.conn.commit()
        return rows

    def close(self):
        self.conn.close()


def summary(times, window):
    first, last = times[:window], times[-window:]
    return {"first_mean": statistics.mean(first), "first_p50": statistics.median(first),
            "last_mean": statistics.mean(last), "last_p50": statistics.median(last)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=10000)
    ap.add_argument("--window", type=int, default=1000)
    ap.add_argument("--block", type=int, default=100)
    ap.add_argument("--modes", default="current,late")
    ap.add_argument("--system", action="append", default=[],
                    help="NAME=BINDIR (repeatable); default panko=`pg_config --bindir`")
    ap.add_argument("--past-days", type=int, default=31,
                    help="sealed past partitions (one event each) stored before the calls")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--json", help="write the figures here too")
    ap.add_argument("--stats", action="store_true",
                    help="load pg_stat_statements and print each run's costliest statements")
    a = ap.parse_args()
    if a.window > a.calls:
        a.window = a.calls
    systems = []
    for s in a.system or ["panko=" + subprocess.run(["pg_config", "--bindir"], capture_output=True,
                                                     text=True).stdout.strip()]:
        name, _, bindir = s.partition("=")
        systems.append((name, bindir))
    modes = [m for m in a.modes.split(",") if m]
    for m in modes:
        if m not in ("current", "late"):
            ap.error("unknown mode %s" % m)

    clusters = []
    results = {}
    try:
        for name, bindir in systems:
            c = Cluster(name, bindir, a.keep, a.stats)
            clusters.append(c)
            c.start()
        for mode in modes:
            runs = [Run(c, mode, a.calls, a.past_days) for c in clusters]
            done = 0
            while done < a.calls:
                step = min(a.block, a.calls - done)
                for r in runs:
                    for _ in range(step):
                        r.call()
                done += step
            for r in runs:
                rows, events = r.rows()
                fig = summary(r.times, a.window)
                fig["summary_rows"] = rows
                fig["events"] = events
                results.setdefault(mode, {})[r.cluster.name] = fig
                if a.stats:
                    print("# %s/%s: total ms, calls, mean ms, statement" % (r.cluster.name, mode))
                    for row in r.top_statements():
                        print("#   %10s %7d %9s  %s" % row)
                r.close()
    finally:
        for c in clusters:
            c.stop()

    w = a.window
    print("record_events, one event per call, one transaction each: %d calls per system and mode" % a.calls)
    print("%-8s %-8s %12s %12s %12s %12s %9s  %s" % ("mode", "system", "first%d mean" % w, "p50",
                                                     "last%d mean" % w, "p50", "last/first", "summary rows left"))
    for mode in modes:
        for name, _ in systems:
            f = results[mode][name]
            print("%-8s %-8s %12.3f %12.3f %12.3f %12.3f %9.2fx  %s" % (
                mode, name, f["first_mean"], f["first_p50"], f["last_mean"], f["last_p50"],
                f["last_mean"] / f["first_mean"], json.dumps(f["summary_rows"], sort_keys=True)))
    if len(systems) >= 2:
        base = systems[0][0]
        print("\nratios to %s (ms/call, mean; < 1 is faster):" % base)
        for mode in modes:
            for name, _ in systems[1:]:
                f, b = results[mode][name], results[mode][base]
                print("  %-8s %s/%s: first %d %.2fx, last %d %.2fx" % (
                    mode, name, base, w, f["first_mean"] / b["first_mean"], w, f["last_mean"] / b["last_mean"]))
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"calls": a.calls, "window": w, "systems": dict(systems), "results": results}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
