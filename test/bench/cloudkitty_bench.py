#!/usr/bin/python3
"""CloudKitty's panko storage backend against a careful PostgreSQL user's
table, on one throwaway cluster, in one run.

    PYTHONPATH=... /usr/bin/python3 test/bench/cloudkitty_bench.py [--points 1000000]

Workload: one month (the 30 days before today's UTC midnight) of hourly
rated data, --points points (default 1,000,000), --types metric types (10),
--projects projects (500); each point has 5 groupby attributes (project_id,
id, user_id, region, zone) and 5 metadata attributes (flavor, image, os,
tier, az); qty and price are Decimals (prices of up to 7 decimals), and the
expected total per project is their Decimal sum.

panko: ``panko_drivers.cloudkitty.PankoStorage`` (what CloudKitty calls),
as a login with panko_writer and panko_auditor.  Baseline (a careful
PostgreSQL user): one table (begin, end, type, unit, qty numeric, price
numeric, groupby jsonb, metadata jsonb), a GIN index (jsonb_path_ops) on
groupby and a btree on begin, pushed one statement per batch
(jsonb_to_recordset) and queried with plain SQL through psycopg2.

Figures: push (points/s, one call per hour of data), and p50 of: the
month's total grouped by project_id; the total grouped by type and
project_id of one project and one day; a retrieve page of 100 (a project's
month, with the total count).  Ratios are baseline time / panko time.  The
baseline's queries are timed twice: as a CloudKitty backend over that table
returns them (JsonbBackend: BaseStorage's result dicts and DataFrames, the
ratio the targets are read against), and as its bare rows; the three run
in turns.  Also printed: bytes on disk and bytes of WAL per point (the WAL
each system's push wrote, full-page images after a checkpoint included).
Answers are compared: both systems' per-project totals must equal the
Decimal sums, and the other queries must agree, or the run fails.

Starts its own cluster (initdb, as the postgres user when run as root)
with the PostgreSQL of pg_config on PATH unless --dsn names a superuser
connection to an existing one.  JIT is off (a plan's compile time would
dominate 1M-row aggregates on both sides).
"""

import argparse
import datetime
import decimal
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import psycopg2

D = decimal.Decimal
decimal.getcontext().prec = 100
UTC = datetime.timezone.utc


def free_port():
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Cluster(object):
    """A throwaway cluster in a temp directory (test/lib.sh's settings)."""

    def __init__(self):
        bindir = subprocess.check_output(['pg_config', '--bindir'], text=True).strip()
        self.bindir = bindir
        self.dir = tempfile.mkdtemp(prefix='panko-ck-bench-')
        os.chmod(self.dir, 0o755)
        self.root = os.getuid() == 0
        if self.root:
            shutil.chown(self.dir, 'postgres', 'postgres')
        self.port = free_port()
        self.data = os.path.join(self.dir, 'data')
        self._run('initdb', '-D', self.data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8',
                  '--locale=C.UTF-8')
        conf = ("port = %d\nlisten_addresses = ''\nunix_socket_directories = '%s'\n"
                "shared_buffers = 1GB\nwork_mem = 64MB\nmax_wal_size = 4GB\njit = off\n"
                "max_parallel_workers_per_gather = 2\nlog_min_messages = warning\n"
                % (self.port, self.dir))
        with open(os.path.join(self.data, 'postgresql.conf'), 'a') as f:
            f.write(conf)
        self._run('pg_ctl', '-D', self.data, '-l', os.path.join(self.dir, 'server.log'), '-w', 'start')
        self.dsn = 'host=%s port=%d user=postgres' % (self.dir, self.port)

    def _run(self, prog, *args):
        cmd = [os.path.join(self.bindir, prog)] + list(args)
        if self.root:
            cmd = ['runuser', '-u', 'postgres', '--'] + cmd
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)

    def stop(self):
        self._run('pg_ctl', '-D', self.data, '-m', 'fast', '-w', 'stop')
        shutil.rmtree(self.dir, ignore_errors=True)


def wal_lsn(dsn):
    """The cluster's WAL insert position (the pushes run one at a time)."""
    conn = psycopg2.connect(dsn + ' dbname=postgres')
    with conn.cursor() as cur:
        cur.execute('SELECT pg_current_wal_insert_lsn()::text')
        lsn = cur.fetchone()[0]
    conn.close()
    return lsn


def wal_bytes(dsn, since, until):
    conn = psycopg2.connect(dsn + ' dbname=postgres')
    with conn.cursor() as cur:
        cur.execute('SELECT pg_wal_lsn_diff(%s::pg_lsn, %s::pg_lsn)', (until, since))
        n = float(cur.fetchone()[0])
    conn.close()
    return n


def sql(dsn, *statements, db='postgres'):
    conn = psycopg2.connect(dsn + ' dbname=' + db)
    conn.autocommit = True
    with conn.cursor() as cur:
        for s in statements:
            cur.execute(s)
    conn.close()


def workload(args):
    """[(hour start, [(type, unit, qty, price, groupby, metadata)])] and the
    expected Decimal totals per project."""
    rnd = random.Random(20261201)
    end = datetime.datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start = end - datetime.timedelta(days=args.days)
    hours = args.days * 24
    types = ['metric.%d' % i for i in range(args.types)]
    units = ['instance', 'GiB', 'MiB', 'ip', 'hour']
    projects = ['%032x' % rnd.getrandbits(128) for _ in range(args.projects)]
    users = ['%032x' % rnd.getrandbits(128) for _ in range(args.projects * 2)]
    rates = [D(rnd.randint(1, 99999)) / D(10000) for _ in range(50)]
    # each project has a fixed set of resources, each of one type
    per_hour = args.points // hours
    extra = args.points - per_hour * hours
    resources = []
    for i in range(max(per_hour + 1, 1)):
        p = projects[i % len(projects)]
        resources.append((types[i % len(types)], p, '%032x' % rnd.getrandbits(128),
                          users[i % len(users)], units[i % len(units)]))
    expected = {}
    batches = []
    for h in range(hours):
        n = per_hour + (1 if h < extra else 0)
        rows = []
        for r in range(n):
            type_, project, rid, user, unit = resources[r]
            qty = D(rnd.randint(1, 100000)) / D(1000)
            price = qty * rates[(r + h) % len(rates)]
            groupby = {'project_id': project, 'id': rid, 'user_id': user,
                       'region': 'region%d' % (r % 3), 'zone': 'zone%d' % (r % 7)}
            metadata = {'flavor': 'm1.f%d' % (r % 11), 'image': 'img%d' % (r % 13),
                        'os': 'os%d' % (r % 5), 'tier': 't%d' % (r % 4), 'az': 'az%d' % (r % 2)}
            rows.append((type_, unit, qty, price, groupby, metadata))
            q, p = expected.get(project, (D(0), D(0)))
            expected[project] = (q + qty, p + price)
        batches.append((start + datetime.timedelta(hours=h), rows))
    return start, end, projects, batches, expected


BASELINE_SCHEMA = """
CREATE TABLE rated (
    begin timestamptz NOT NULL, "end" timestamptz NOT NULL, type text NOT NULL, unit text NOT NULL,
    qty numeric NOT NULL, price numeric NOT NULL, groupby jsonb NOT NULL, metadata jsonb NOT NULL);
CREATE INDEX rated_groupby_idx ON rated USING gin (groupby jsonb_path_ops);
CREATE INDEX rated_begin_idx ON rated (begin);
"""

BASELINE_PUSH = """
INSERT INTO {table} SELECT * FROM jsonb_to_recordset(%s::jsonb)
    AS x(begin timestamptz, "end" timestamptz, type text, unit text, qty numeric, price numeric,
         groupby jsonb, metadata jsonb)
"""


class JsonbBackend(object):
    """The careful PostgreSQL user's CloudKitty backend over the rated
    table: plain SQL, and the results in the shapes BaseStorage returns
    (result dicts of Decimals; DataFrames of DataPoints), built from the
    rows as panko_drivers.cloudkitty builds them from its JSON.  The bench
    times this (the interface CloudKitty calls) and the bare rows."""

    def __init__(self, cur, period=3600):
        self.cur = cur
        self.period = period

    def push(self, dataframes, table='rated'):
        for frame in dataframes:
            begin, end = frame.start.isoformat(), frame.end.isoformat()
            doc = [{'begin': begin, 'end': end, 'type': t, 'unit': p.unit, 'qty': str(p.qty),
                    'price': str(p.price), 'groupby': dict(p.groupby), 'metadata': dict(p.metadata)}
                   for t, p in frame.iterpoints()]
            self.cur.execute(BASELINE_PUSH.format(table=table), (json.dumps(doc),))

    def total_rows(self, groupby, begin, end, project=None):
        cols = {'project_id': "groupby->>'project_id'", 'type': 'type'}
        keys = ', '.join(cols[g] for g in groupby)
        where = 'begin >= %s AND begin < %s'
        args = [begin, end]
        if project is not None:
            where = 'groupby @> %s AND ' + where
            args.insert(0, json.dumps({'project_id': project}))
        self.cur.execute('SELECT %s, sum(qty), sum(price) FROM rated WHERE %s GROUP BY %s ORDER BY %s'
                         % (keys, where, keys, keys), args)
        return self.cur.fetchall()

    def total(self, groupby, begin, end, project=None):
        from cloudkitty.utils import tz as tzutils
        local_begin, local_end = tzutils.utc_to_local(begin), tzutils.utc_to_local(end)
        results = []
        for row in self.total_rows(groupby, begin, end, project):
            r = {'begin': local_begin, 'end': local_end, 'qty': row[-2], 'rate': row[-1]}
            r.update(zip(groupby, row))
            results.append(r)
        return {'total': len(results), 'results': results}

    def retrieve_rows(self, begin, end, project, limit):
        cond = json.dumps({'project_id': project})
        self.cur.execute("SELECT count(*) FROM rated WHERE groupby @> %s AND begin >= %s AND begin < %s",
                         (cond, begin, end))
        total = self.cur.fetchone()[0]
        self.cur.execute("SELECT begin, \"end\", type, unit, qty, price, groupby, metadata FROM rated"
                         " WHERE groupby @> %s AND begin >= %s AND begin < %s ORDER BY begin LIMIT %s",
                         (cond, begin, end, limit))
        return total, self.cur.fetchall()

    def retrieve(self, begin, end, project, limit):
        from cloudkitty import dataframe
        total, rows = self.retrieve_rows(begin, end, project, limit)
        frames = {}
        for start, stop, type_, unit, qty, price, groupby, metadata in rows:
            frame = frames.get((start, stop))
            if frame is None:
                frame = frames[(start, stop)] = dataframe.DataFrame(start=start, end=stop)
            frame.add_point(dataframe.DataPoint(unit, qty, price, groupby, metadata), type_)
        return {'total': total, 'dataframes': sorted(frames.values(), key=lambda f: (f.start, f.end))}


def page_points(frames):
    """A retrieve page's points but its last hour's (ties in the order
    may pick different points there), comparable across backends."""
    out = []
    for f in frames[:-1]:
        for type_, p in f.iterpoints():
            out.append((f.start.timestamp(), type_, p.unit, p.qty, p.price,
                        json.dumps(dict(p.groupby), sort_keys=True), json.dumps(dict(p.metadata), sort_keys=True)))
    return sorted(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--points', type=int, default=1000000)
    ap.add_argument('--types', type=int, default=10)
    ap.add_argument('--projects', type=int, default=500)
    ap.add_argument('--days', type=int, default=30)
    ap.add_argument('--runs', type=int, default=15)
    ap.add_argument('--dsn', help='superuser libpq conninfo of a running cluster (default: start one)')
    args = ap.parse_args()

    t0 = time.time()
    start, end, projects, batches, expected = workload(args)
    print('# workload: %d points, %d hours, %d types, %d projects (%.1f s to generate)'
          % (args.points, len(batches), args.types, args.projects, time.time() - t0))

    cluster = None if args.dsn else Cluster()
    dsn = args.dsn or cluster.dsn
    failed = []
    try:
        sql(dsn, 'DROP DATABASE IF EXISTS bench_ck_panko', 'DROP DATABASE IF EXISTS bench_ck_jsonb',
            'CREATE DATABASE bench_ck_panko', 'CREATE DATABASE bench_ck_jsonb')
        sql(dsn, 'CREATE EXTENSION panko',
            "DO $$BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ck_bench') THEN"
            " CREATE ROLE ck_bench LOGIN IN ROLE panko_writer, panko_auditor; END IF; END$$",
            db='bench_ck_panko')
        sql(dsn, BASELINE_SCHEMA, db='bench_ck_jsonb')

        from oslo_config import cfg
        from cloudkitty import dataframe
        from panko_drivers import cloudkitty as backend
        params = dict(p.split('=', 1) for p in dsn.split())
        cfg.CONF([], project='cloudkitty', default_config_files=[])
        cfg.CONF.set_override('connection', 'postgresql:///bench_ck_panko?host=%s&port=%s&user=ck_bench'
                              % (params['host'], params['port']), 'storage_panko')
        store = backend.PankoStorage(period=3600)

        frames = []
        for hour, rows in batches:
            f = dataframe.DataFrame(start=hour, end=hour + datetime.timedelta(hours=1))
            for type_, unit, qty, price, groupby, metadata in rows:
                f.add_point(dataframe.DataPoint(unit, qty, price, groupby, metadata), type_)
            frames.append(f)

        # push: one call per hour of data, both systems
        w0 = wal_lsn(dsn)
        t0 = time.perf_counter()
        for f in frames:
            store.push([f])
        panko_push = args.points / (time.perf_counter() - t0)
        panko_wal = wal_bytes(dsn, w0, wal_lsn(dsn)) / args.points
        base = psycopg2.connect(dsn + ' dbname=bench_ck_jsonb')
        base.autocommit = True
        bcur = base.cursor()
        jb = JsonbBackend(bcur)
        w0 = wal_lsn(dsn)
        t0 = time.perf_counter()
        for f in frames:
            jb.push([f])
        base_push = args.points / (time.perf_counter() - t0)
        base_wal = wal_bytes(dsn, w0, wal_lsn(dsn)) / args.points
        # the bare rows, into a copy of the table that is dropped again
        bcur.execute('CREATE TABLE rated_rows (LIKE rated INCLUDING INDEXES)')
        t0 = time.perf_counter()
        for hour, rows in batches:
            doc = [{'begin': hour.isoformat(), 'end': (hour + datetime.timedelta(hours=1)).isoformat(),
                    'type': t, 'unit': u, 'qty': str(q), 'price': str(p), 'groupby': g, 'metadata': m}
                   for t, u, q, p, g, m in rows]
            bcur.execute(BASELINE_PUSH.format(table='rated_rows'), (json.dumps(doc),))
        rows_push = args.points / (time.perf_counter() - t0)
        bcur.execute('DROP TABLE rated_rows')
        sql(dsn, 'VACUUM ANALYZE', db='bench_ck_panko')
        sql(dsn, 'VACUUM ANALYZE', db='bench_ck_jsonb')

        # Q1: the month, grouped by project_id
        def q1_panko():
            return store.total(groupby=['project_id'], begin=start, end=end, paginate=False)

        def q1_base():
            return jb.total(['project_id'], start, end)

        def q1_rows():
            return jb.total_rows(['project_id'], start, end)

        got = {r['project_id']: (r['qty'], r['rate']) for r in q1_panko()['results']}
        if got != expected:
            failed.append('Q1 panko totals differ from the Decimal sums')
        if {r['project_id']: (r['qty'], r['rate']) for r in q1_base()['results']} != expected:
            failed.append('Q1 baseline totals differ from the Decimal sums')
        floats = {}
        for hour, rows in batches:
            for t, u, q, p, g, m in rows:
                floats[g['project_id']] = floats.get(g['project_id'], 0.0) + float(p)
        inexact = sum(1 for k, v in floats.items() if D(v) != expected[k][1])

        # Q2: one project, one day, grouped by type and project_id
        proj = sorted(expected)[len(expected) // 3]
        day = start + datetime.timedelta(days=args.days // 2)
        day_end = day + datetime.timedelta(days=1)

        def q2_panko():
            return store.total(groupby=['type', 'project_id'], begin=day, end=day_end,
                               filters={'project_id': proj}, paginate=False)

        def q2_base():
            return jb.total(['type', 'project_id'], day, day_end, proj)

        def q2_rows():
            return jb.total_rows(['type', 'project_id'], day, day_end, proj)

        a = [(r['type'], r['project_id'], r['qty'], r['rate']) for r in q2_panko()['results']]
        if a != [(r['type'], r['project_id'], r['qty'], r['rate']) for r in q2_base()['results']] or not a:
            failed.append('Q2 answers differ (or are empty)')

        # Q3: a retrieve page of 100: a project's month, with the count
        def q3_panko():
            return store.retrieve(begin=start, end=end, filters={'project_id': proj}, limit=100)

        def q3_base():
            return jb.retrieve(start, end, proj, 100)

        def q3_rows():
            return jb.retrieve_rows(start, end, proj, 100)

        r3, b3 = q3_panko(), q3_base()
        if (r3['total'] != b3['total']
                or sum(len(list(f.iterpoints())) for f in r3['dataframes']) != min(100, b3['total'])
                or sum(len(list(f.iterpoints())) for f in b3['dataframes']) != min(100, b3['total'])
                or page_points(r3['dataframes']) != page_points(b3['dataframes'])
                or not page_points(r3['dataframes'])):
            failed.append('Q3 answers differ')

        figures = [
            ('push, points/s (one call per hour of data)', panko_push, base_push, panko_push / base_push,
             rows_push, panko_push / rows_push, '>= 50,000/s'),
        ]
        for name, fp, fb, fr, target in (
                ('total by project_id, the month, p50 ms', q1_panko, q1_base, q1_rows, '< 500 ms, >= 2x'),
                ('total by type, project_id: 1 project, 1 day, p50 ms', q2_panko, q2_base, q2_rows, '>= 2x'),
                ('retrieve page of 100 (a project, the month), p50 ms', q3_panko, q3_base, q3_rows, '>= 2x')):
            # (in turns, so that a slow spell of the machine falls on all three)
            tp, tb, tr = [], [], []
            for fn in (fp, fb, fr):
                fn()  # warm
            for _ in range(args.runs):
                for fn, acc in ((fp, tp), (fb, tb), (fr, tr)):
                    t0 = time.perf_counter()
                    fn()
                    acc.append((time.perf_counter() - t0) * 1000)
            tp, tb, tr = statistics.median(tp), statistics.median(tb), statistics.median(tr)
            figures.append((name, tp, tb, tb / tp, tr, tr / tp, target))
        sizes = {}
        for db, q in (('bench_ck_panko', "SELECT sum(pg_total_relation_size(relid))"
                                         " FROM pg_partition_tree('panko.event')"),
                      ('bench_ck_jsonb', "SELECT pg_total_relation_size('rated')")):
            c = psycopg2.connect(dsn + ' dbname=' + db)
            with c.cursor() as cur:
                cur.execute(q)
                sizes[db] = cur.fetchone()[0]
            c.close()

        print()
        print('%-58s %12s %12s %8s %12s %8s  %s' % ('figure (N = %d)' % args.points, 'panko', 'jsonb',
                                                     'ratio', 'jsonb rows', 'ratio', 'target'))
        for name, p, b, ratio, r, rratio, target in figures:
            print('%-58s %12.2f %12.2f %7.2fx %12s %8s  %s'
                  % (name, p, b, ratio, '-' if r is None else '%.2f' % r,
                     '-' if rratio is None else '%.2fx' % rratio, target))
        print('%-58s %12.0f %12.0f' % ('bytes on disk per point', sizes['bench_ck_panko'] / args.points,
                                        sizes['bench_ck_jsonb'] / args.points))
        print('%-58s %12.0f %12.0f' % ('WAL bytes per point written by push', panko_wal, base_wal))
        print('# totals per project equal the Decimal sums on both systems: %s; summing the prices'
              ' as floats gives a different total for %d of %d projects'
              % ('no' if [f for f in failed if f.startswith('Q1')] else 'yes', inexact, len(expected)))
    finally:
        if cluster:
            cluster.stop()
    if failed:
        print('FAILED: ' + '; '.join(failed))
        sys.exit(1)


if __name__ == '__main__':
    main()
