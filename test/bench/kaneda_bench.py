#!/usr/bin/python3
"""Kaneda on panko against a plain PostgreSQL table, in one run on one
throwaway cluster (or --dsn): N reports over D days, 200 metric names, 3
apps, two tags each from a set of 20.

  plain: CREATE TABLE kaneda_plain (name text, generated timestamptz, payload jsonb)
         + btree (name, generated); the series is a GROUP BY over it.

Figures: report() calls per second from this one Python process
(PankoBackend as Kaneda's Metrics calls it: one transaction per call;
synchronous_commit=off; batches of 100); p50 of the 1-minute series of
one metric over one day, and of the 1-hour series over D days (panko's
metric_series, and the plain table's GROUP BY, answers compared); ratios.

    /usr/bin/python3 test/bench/kaneda_bench.py                    # 10,000,000 over 30 days
    /usr/bin/python3 test/bench/kaneda_bench.py --reports 300000   # development size
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import psycopg2

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
from panko_drivers.kaneda import PankoBackend  # noqa: E402

# One report g (0 <= g < N): deterministic, in time order.
GEN = """
    SELECT g, 'metric' || (g * 7919 %% 200) AS name, 'app' || (g %% 3) AS app,
           %(t0)s::timestamptz + make_interval(secs => g * %(step)s) AS generated,
           ((g * 13) %% 1000) / 10.0 AS value,
           jsonb_build_array('tag' || (g * 31 %% 20), 'tag' || ((g * 31 %% 20) + 1 + g %% 19) %% 20) AS tags
      FROM generate_series(%(lo)s::bigint, %(hi)s::bigint - 1) g
"""


def start_cluster():
    bindir = subprocess.check_output(["pg_config", "--bindir"], text=True).strip()
    tmp = tempfile.mkdtemp(prefix="panko-kaneda-bench-")
    os.chmod(tmp, 0o755)
    pre = ["runuser", "-u", "postgres", "--"] if os.getuid() == 0 else []
    if os.getuid() == 0:
        shutil.chown(tmp, "postgres", "postgres")
    data = os.path.join(tmp, "data")
    subprocess.check_call(pre + [bindir + "/initdb", "-D", data, "-U", "postgres", "--auth=trust",
                                 "-E", "UTF8", "--locale=C.UTF-8"], stdout=subprocess.DEVNULL)
    import socket
    s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
    conf = ("port = %d\nlisten_addresses = ''\nunix_socket_directories = '%s'\nshared_buffers = 512MB\n"
            "max_wal_size = 4GB\ncheckpoint_timeout = 30min\n" % (port, tmp))
    subprocess.run(pre + ["tee", "-a", data + "/postgresql.conf"], input=conf, text=True, stdout=subprocess.DEVNULL)
    subprocess.check_call(pre + [bindir + "/pg_ctl", "-D", data, "-l", tmp + "/server.log", "-w", "start"],
                          stdout=subprocess.DEVNULL)

    def stop():
        subprocess.call(pre + [bindir + "/pg_ctl", "-D", data, "-m", "fast", "-w", "stop"], stdout=subprocess.DEVNULL)
        shutil.rmtree(tmp, ignore_errors=True)
    return "host=%s port=%d user=postgres" % (tmp, port), stop


def pgbench_p50(dsn, text, secs, rounds):
    """p50 ms of one statement, one transaction per call, as a SQL client
    (psql, a dashboard) runs it: pgbench -n -M simple -c 1, the latencies of
    every transaction from its log (the first 10 of each round left out).
    The result rows reach pgbench but are not decoded into objects."""
    pgb = shutil.which("pgbench") or os.path.join(
        subprocess.check_output(["pg_config", "--bindir"], text=True).strip(), "pgbench")
    d = tempfile.mkdtemp(prefix="panko-kaneda-pgbench-")
    try:
        with open(os.path.join(d, "q.sql"), "w") as f:
            f.write(text.replace("\n", " ") + ";\n")
        lat = []
        for rnd in range(rounds):
            prefix = os.path.join(d, "log%d" % rnd)
            subprocess.run([pgb, "-n", "-M", "simple", "-c", "1", "-j", "1", "-T", str(max(1, int(secs))), "-l",
                            "--log-prefix", prefix, "-f", os.path.join(d, "q.sql"), dsn],
                           check=True, capture_output=True, cwd=d)
            for lf in sorted(os.listdir(d)):
                if lf.startswith("log%d." % rnd):
                    with open(os.path.join(d, lf)) as f:
                        lat += [int(line.split()[2]) / 1000.0 for line in f.readlines()[10:]]
        if not lat:
            raise RuntimeError("pgbench logged no transactions")
        return statistics.median(lat)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def p50(cur, sql, args, runs):
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        cur.execute(sql, args)
        rows = cur.fetchall()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times), rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reports", type=int, default=10_000_000)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--batch", type=int, default=10_000, help="reports per metric_report call while loading")
    ap.add_argument("--call-secs", type=float, default=5.0)
    ap.add_argument("--load-jobs", type=int, default=2, help="connections loading the reports in parallel")
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--pgbench-secs", type=int, default=3, help="pgbench -T of each round")
    ap.add_argument("--pgbench-rounds", type=int, default=3, help="rounds per query, panko and plain taking turns")
    ap.add_argument("--dsn", help="an existing server (a database kaneda_bench is created there)")
    args = ap.parse_args()
    stop = None
    base = args.dsn
    if base is None:
        base, stop = start_cluster()
    try:
        run(args, base)
    finally:
        if stop:
            stop()


def run(args, base):
    c = psycopg2.connect(base + " dbname=postgres")
    c.autocommit = True
    c.cursor().execute("DROP DATABASE IF EXISTS kaneda_bench")
    c.cursor().execute("CREATE DATABASE kaneda_bench")
    c.close()
    dsn = base + " dbname=kaneda_bench"
    c = psycopg2.connect(dsn)
    c.autocommit = True
    cur = c.cursor()
    cur.execute("SET client_min_messages = warning")
    cur.execute("CREATE EXTENSION panko")
    cur.execute("CREATE TABLE kaneda_plain (name text, generated timestamptz NOT NULL, payload jsonb NOT NULL)")
    cur.execute("CREATE INDEX ON kaneda_plain (name, generated)")
    cur.execute("SELECT date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' - make_interval(days => %s)",
                (args.days - 1,))
    t0 = cur.fetchone()[0]
    span = (args.days - 1) * 86400 + 3600 * 12   # ends today at noon (UTC)
    step = span / args.reports
    N = args.reports
    print("# %d reports over %d days from %s, batches of %d" % (N, args.days, t0, args.batch))

    load = {}

    def load_part(system, part):
        """Batches part, part + jobs, ... of the load, on a connection of its own."""
        lc = psycopg2.connect(dsn)
        lc.autocommit = True
        lcur = lc.cursor()
        for lo in range(part * args.batch, N, args.batch * args.load_jobs):
            p = {"t0": t0, "step": step, "lo": lo, "hi": min(N, lo + args.batch)}
            if system == "panko":
                lcur.execute("""SELECT count(*) FROM panko.metric_report((
                                   SELECT jsonb_agg(jsonb_build_object('app_name', x.app, 'name', x.name, 'metric', 'gauge',
                                                    'value', x.value, 'tags', x.tags, 'host', 'bench',
                                                    'time', x.generated::text, 'key', 'b' || x.g))
                                     FROM (""" + GEN + """) x))""", p)
                assert lcur.fetchone()[0] == 0
            else:
                lcur.execute("""INSERT INTO kaneda_plain
                               SELECT x.name, x.generated, jsonb_build_object('host', 'bench', 'name', x.name,
                                          'value', x.value, 'tags', x.tags, 'app_name', x.app, 'metric', 'gauge')
                                 FROM (""" + GEN + ") x", p)
        lc.close()

    import threading
    for system in ("panko", "plain"):
        t = time.perf_counter()
        errors = []

        def work(part, system=system):
            try:
                load_part(system, part)
            except Exception as e:  # reported below, the load fails
                errors.append(e)
        threads = [threading.Thread(target=work, args=(j,)) for j in range(args.load_jobs)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        if errors:
            raise errors[0]
        load[system] = N / (time.perf_counter() - t)
        print("# loaded %s: %.0f reports/s (%d connections)" % (system, load[system], args.load_jobs), flush=True)
    cur.execute("VACUUM ANALYZE")

    # report() from one process, as Metrics.gauge calls it.
    calls = {}
    for label, kw in (("one transaction per call", {}),
                      ("synchronous_commit=off", {"synchronous_commit": False}),
                      ("batches of 100", {"batch_size": 100})):
        b = PankoBackend("callapp", connection_url="postgresql://?" + dsn.replace(" ", "&"), timeout=5, **kw)
        n, t = 0, time.perf_counter()
        while time.perf_counter() - t < args.call_secs:
            b.report("call.metric%d" % (n % 200), "gauge", n % 100, ["tag%d" % (n % 20)], None)
            n += 1
        b.flush()
        calls[label] = n / (time.perf_counter() - t)
        assert b.dropped == 0, "reports dropped"
        b.close()

    name = "metric42"
    cur.execute("SELECT date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' - interval '1 day'")
    day = cur.fetchone()[0]
    import datetime
    queries = {
        "1-minute series of one metric over one day": ("1 minute", day, day + datetime.timedelta(days=1)),
        "1-hour series of one metric over %d days" % args.days: ("1 hour", t0, t0 + datetime.timedelta(days=args.days)),
    }
    plain_sql = """SELECT date_bin(%(b)s::interval, generated, %(f)s) AS s, count(*),
                          sum((payload->>'value')::float8), avg((payload->>'value')::float8),
                          min((payload->>'value')::float8), max((payload->>'value')::float8)
                     FROM kaneda_plain WHERE name = %(n)s AND generated >= %(f)s AND generated < %(t)s
                    GROUP BY 1 ORDER BY 1"""
    panko_sql = "SELECT bucket_start, count, sum, avg, min, max FROM panko.metric_series(%s, %s, %s, %s)"
    results, clients = {}, {}
    for label, (bucket, f, t) in queries.items():
        pargs = (name, bucket, f, t)
        qargs = {"b": bucket, "f": f, "t": t, "n": name}
        pm, prow = p50(cur, panko_sql, pargs, args.runs)
        qm, qrow = p50(cur, plain_sql, qargs, args.runs)
        assert [(r[0], r[1]) for r in prow] == [(r[0], r[1]) for r in qrow], "panko and plain disagree on %s" % label
        assert all(abs(a[2] - b[2]) < 1e-6 * max(1, abs(b[2])) for a, b in zip(prow, qrow))
        clients[label] = (pm, qm)
        # The same two statements, one transaction per call, from pgbench
        # (the rounds alternate, so a slow spell falls on both alike).
        pt = cur.mogrify(panko_sql, pargs).decode()
        qt = cur.mogrify(plain_sql, qargs).decode()
        pb, qb = [], []
        for _ in range(args.pgbench_rounds):
            pb.append(pgbench_p50(dsn, pt, args.pgbench_secs, 1))
            qb.append(pgbench_p50(dsn, qt, args.pgbench_secs, 1))
        results[label] = (statistics.median(pb), statistics.median(qb), sum(r[1] for r in prow))

    print()
    print("| figure (N = %s, %d days) | panko | plain | ratio | target |" % ("{:,}".format(N), args.days))
    print("|---|---:|---:|---:|---|")
    for label, (pm, qm, rows) in results.items():
        target = "3x%s" % (", < 200 ms" if "hour" in label else "")
        print("| %s (%d reports), p50 ms, one transaction per call (pgbench) | %.2f | %.2f | %.1fx | %s |"
              % (label, rows, pm, qm, qm / pm, target))
        cm, cq = clients[label]
        print("| the same from psycopg2, rows decoded into Python objects, p50 ms | %.2f | %.2f | %.1fx | |"
              % (cm, cq, cq / cm))
    for label, rate in calls.items():
        print("| report() calls/s from one process, %s | %.0f | | | >= 2,000 |" % (label, rate))
    print("| bulk load, reports/s (metric_report, batches of %d, %d connections; plain: INSERT) | %.0f | %.0f | %.2fx | |"
          % (args.batch, args.load_jobs, load["panko"], load["plain"], load["panko"] / load["plain"]))
    cur.execute("SELECT pg_total_relation_size('panko.metric_rollup'), pg_total_relation_size('kaneda_plain'),"
                " (SELECT sum(pg_total_relation_size(t.relid)) FROM pg_partition_tree('panko.event') t"
                "   JOIN pg_class c ON c.oid = t.relid WHERE t.isleaf AND c.relname LIKE '%\\_metric')")
    ru, pl, ev = cur.fetchone()
    print("| bytes on disk per report (panko: metric partitions + rollup) | %.0f (%.0f + %.0f) | %.0f | | |"
          % ((ev + ru) / N, ev / N, ru / N, pl / N))


if __name__ == "__main__":
    main()
