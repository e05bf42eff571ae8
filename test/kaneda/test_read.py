"""The read functions against values computed here from the same reports:
metric_series (buckets aligned on whole hours, minutes, neither; tags;
apps), metric_running_total, metric_latest, metric_events; row-level
security and bad arguments."""
import datetime as dt
import json
import math
import os
import random
import unittest

import psycopg2

from common import ADMIN, DSN, admin

READER = os.environ["PANKO_KN_READER"]    # panko_reader + admin identity? no: an auditor
MEMBER = os.environ["PANKO_KN_MEMBER"]    # panko_reader only: sees nothing
UTC = dt.timezone.utc
rnd = random.Random(14)
NAMES = ['cpu', 'req', 'mem']
APPS = ['web', 'api']
TAGS = ['t%d' % i for i in range(6)]
T0 = (dt.datetime.now(UTC) - dt.timedelta(days=3)).replace(hour=0, minute=0, second=0, microsecond=0)
REPORTS = []


def setUpModule():
    # Two days of reports at random times (sub-second), some in bursts in
    # one minute; list tags, dict tags, none; gauges, counters, timings.
    batch = []
    for i in range(6000):
        t = T0 + dt.timedelta(seconds=rnd.uniform(0, 2 * 86400))
        if i % 10 == 0:
            t = T0 + dt.timedelta(hours=10, minutes=7, seconds=rnd.uniform(0, 59.999))
        name = rnd.choice(NAMES)
        metric = {'cpu': 'gauge', 'req': 'counter', 'mem': 'timing'}[name]
        value = rnd.choice([1, -1]) if metric == 'counter' else (rnd.randint(0, 100) if i % 2 else round(rnd.uniform(0, 10), 3))
        k = rnd.random()
        tags = rnd.sample(TAGS, 2) if k < 0.5 else ({'zone': rnd.choice('ab')} if k < 0.8 else None)
        r = {'app_name': rnd.choice(APPS), 'name': name, 'metric': metric, 'value': value,
             'time': t.isoformat(), 'host': 'h', 'key': 'k%d' % i}
        if tags:
            r['tags'] = tags
        REPORTS.append(dict(r, t=t))
        batch.append(r)
    batch.append({'app_name': 'web', 'name': 'signup', 'metric': 'event', 'value': 'New user',
                  'tags': ['x'], 'time': (T0 + dt.timedelta(hours=1)).isoformat(), 'key': 'e1'})
    batch.append({'app_name': 'web', 'name': 'signup', 'metric': 'event', 'value': 'Other',
                  'time': (T0 + dt.timedelta(hours=2)).isoformat(), 'key': 'e2'})
    batch.append({'app_name': 'api', 'name': 'signup', 'metric': 'event', 'value': 'Api',
                  'time': (T0 + dt.timedelta(hours=2)).isoformat(), 'key': 'e3'})
    c = psycopg2.connect(DSN)
    c.autocommit = True
    with c.cursor() as cur:
        # in batches of several sizes, as a batching backend sends them
        i = 0
        for size in [1, 7, 500, 2000, 10000]:
            cur.execute("SELECT count(*) FROM panko.metric_report(%s::jsonb)", (json.dumps(batch[i:i + size]),))
            assert cur.fetchone()[0] == 0
            i += size
    c.close()


def expected(name, bucket, f, t, tags=None, app=None):
    out = {}
    for r in REPORTS:
        if r['name'] != name or not (f <= r['t'] < t) or (app and r['app_name'] != app):
            continue
        rt = r.get('tags')
        if isinstance(tags, list) and not (isinstance(rt, list) and set(tags) <= set(rt)):
            continue
        if isinstance(tags, dict) and not (isinstance(rt, dict) and all(rt.get(k) == v for k, v in tags.items())):
            continue
        k = int((r['t'] - f) // bucket)
        out.setdefault(k, []).append(float(r['value']))
    return out


def query(dsn, sql, args):
    c = psycopg2.connect(dsn)
    try:
        with c.cursor() as cur:
            cur.execute(sql, args)
            return cur.fetchall()
    finally:
        c.close()


class TestSeries(unittest.TestCase):
    def check(self, name, bucket, f, t, tags=None, app=None):
        rows = query(READER, "SELECT * FROM panko.metric_series(%s, %s, %s, %s, %s::jsonb, %s)",
                     (name, bucket, f, t, None if tags is None else json.dumps(tags), app))
        exp = expected(name, bucket, f, t, tags, app)
        self.assertEqual(len(rows), len(exp), (bucket, f, t, tags, app))
        self.assertTrue(exp, 'the case must have data')
        for start, end, count, s, avg, lo, hi in rows:
            k = int((start - f) // bucket)
            self.assertEqual(start, f + k * bucket)
            self.assertEqual(end, min(f + (k + 1) * bucket, t))
            v = exp[k]
            self.assertEqual(count, len(v), (bucket, start))
            self.assertTrue(math.isclose(s, sum(v), rel_tol=1e-9, abs_tol=1e-9), (s, sum(v)))
            self.assertTrue(math.isclose(avg, sum(v) / len(v), rel_tol=1e-9, abs_tol=1e-9))
            self.assertEqual((lo, hi), (min(v), max(v)))
        return rows

    def test_hours_aligned(self):
        self.check('cpu', dt.timedelta(hours=1), T0, T0 + dt.timedelta(days=2))

    def test_minutes_one_day(self):
        self.check('mem', dt.timedelta(minutes=1), T0 + dt.timedelta(days=1), T0 + dt.timedelta(days=2))

    def test_unaligned_window_and_buckets(self):
        f = T0 + dt.timedelta(hours=3, seconds=17.25)
        t = T0 + dt.timedelta(hours=40, minutes=3, seconds=1.5)
        for b in [dt.timedelta(minutes=7), dt.timedelta(seconds=90), dt.timedelta(hours=5, seconds=1),
                  dt.timedelta(days=1), dt.timedelta(minutes=1)]:
            self.check('cpu', b, f, t)
            self.check('req', b, f, t, app='api')

    def test_whole_minutes_and_ragged_ends(self):
        # The rollup-only statements (whole minutes and hours), with the
        # reports of a ragged end, and one bucket over a ragged window.
        h = dt.timedelta(hours=1)
        m = dt.timedelta(minutes=1)
        self.check('cpu', h, T0 + 2 * h, T0 + 30 * h + 17 * m + dt.timedelta(seconds=42.5))
        self.check('req', h, T0 + 2 * h, T0 + 30 * h + 17 * m, app='api')
        self.check('mem', 5 * m, T0 + 3 * h + 4 * m, T0 + 20 * h + dt.timedelta(seconds=1.25))
        self.check('cpu', 2 * h, T0 + 1 * h, T0 + 41 * h)
        # (a bucket made of the last hours and then the minutes after them,
        # added up across the two levels; and hour-long buckets of minutes)
        self.check('cpu', 2 * h, T0 + 1 * h, T0 + 20 * h + 17 * m)
        self.check('req', 3 * h, T0 + 2 * h, T0 + 21 * h + 59 * m, app='web')
        self.check('mem', h, T0 + 23 * m, T0 + 23 * h + 23 * m)
        f = T0 + 3 * h + dt.timedelta(seconds=17.25)
        t = T0 + 23 * h + 3 * m + dt.timedelta(seconds=1.5)
        self.check('cpu', t - f, f, t)
        self.check('req', t - f, f, t, app='web')
        self.check('cpu', dt.timedelta(seconds=20), T0 + 10 * h + 7 * m + dt.timedelta(seconds=3), T0 + 10 * h + 7 * m + dt.timedelta(seconds=23))

    def test_seconds_in_a_burst(self):
        f = T0 + dt.timedelta(hours=10, minutes=7)
        self.check('cpu', dt.timedelta(seconds=1), f, f + dt.timedelta(minutes=1))
        self.check('cpu', dt.timedelta(seconds=7), f - dt.timedelta(seconds=3.5), f + dt.timedelta(minutes=1))

    def test_tags(self):
        f, t = T0, T0 + dt.timedelta(days=2)
        self.check('cpu', dt.timedelta(hours=1), f, t, tags=['t1'])
        self.check('mem', dt.timedelta(hours=6), f, t, tags=['t1', 't2'])
        self.check('req', dt.timedelta(hours=2), f, t, tags={'zone': 'a'}, app='web')

    def test_running_total(self):
        f = T0 + dt.timedelta(hours=20, seconds=30)
        t = T0 + dt.timedelta(hours=44)
        b = dt.timedelta(hours=1)
        for tags, app in [(None, None), (None, 'web'), (['t3'], None)]:
            rows = query(READER, "SELECT * FROM panko.metric_running_total('req', %s, %s, %s, %s::jsonb, %s)",
                         (b, f, t, None if tags is None else json.dumps(tags), app))
            exp = expected('req', b, f, t, tags, app)
            before = sum(sum(v) for v in expected('req', t - T0 + b, T0 - b, f, tags, app).values())
            self.assertEqual(len(rows), len(exp))
            total = before
            for start, end, count, s, tot in rows:
                k = int((start - f) // b)
                total += sum(exp[k])
                self.assertEqual((count, s), (len(exp[k]), sum(exp[k])))
                self.assertEqual(tot, total)

    def test_latest(self):
        rows = query(READER, "SELECT * FROM panko.metric_latest()", ())
        exp = {}
        for r in REPORTS:
            if r['metric'] == 'gauge':
                key = (r['app_name'], r['name'])
                if key not in exp or r['t'] >= exp[key]['t']:
                    exp[key] = r
        rows = [r for r in rows if r[0] in APPS]
        self.assertEqual(sorted((a, n) for a, n, _, _ in rows), sorted(exp))
        for a, n, when, value in rows:
            self.assertEqual((when, value), (exp[(a, n)]['t'], float(exp[(a, n)]['value'])))
        self.assertEqual(len(query(READER, "SELECT * FROM panko.metric_latest('web')", ())), 1)
        self.assertEqual(query(READER, "SELECT * FROM panko.metric_latest(NULL, 'req')", ()), [])

    def test_events(self):
        rows = query(READER, "SELECT generated, event_name, value, tags FROM panko.metric_events('web', %s, %s)",
                     (T0, T0 + dt.timedelta(days=1)))
        self.assertEqual([(r[1], r[2], r[3]) for r in rows], [('signup', 'New user', ['x']), ('signup', 'Other', None)])
        self.assertEqual(rows[0][0], T0 + dt.timedelta(hours=1))
        rows = query(READER, "SELECT value FROM panko.metric_events('api', %s, %s, 'signup', 5)",
                     (T0, T0 + dt.timedelta(days=1)))
        self.assertEqual(rows, [('Api',)])

    # (named to run last: it drops the second day, which the others read)
    def test_zz_rows_from_the_rollup_go_with_their_partition(self):
        # Dropping a day's partition (what expiry does) removes its rollup
        # rows; the series then matches the reports left.
        with admin() as c, c.cursor() as cur:
            cur.execute("SELECT count(*) FROM panko.metric_rollup")
            before = cur.fetchone()[0]
            cur.execute("""SELECT DISTINCT e.tableoid::regclass::text FROM panko.event e
                            WHERE e.generated >= %s AND e.generated < %s""", (T0 + dt.timedelta(hours=40), T0 + dt.timedelta(hours=41)))
            parts = [r[0] for r in cur.fetchall()]
            self.assertTrue(parts)
            cur.execute("CREATE TABLE public.kept AS SELECT * FROM panko.event WHERE false")
            cur.execute("DROP TABLE public.kept")   # not panko's: nothing happens
            cur.execute("SELECT count(*) FROM panko.metric_rollup")
            self.assertEqual(cur.fetchone()[0], before)
            for p in parts:
                cur.execute("SELECT inhparent::regclass::text FROM pg_inherits WHERE inhrelid = %s::regclass", (p,))
                parent = cur.fetchone()[0]
                cur.execute('ALTER TABLE %s DETACH PARTITION %s' % (parent, p))
                cur.execute('DROP TABLE %s' % p)
                cur.execute("DELETE FROM panko.partition WHERE 'panko.' || name = %s", (p,))
            cur.execute("SELECT count(*) FROM panko.metric_rollup")
            self.assertLess(cur.fetchone()[0], before)
        global REPORTS
        lo = T0 + dt.timedelta(days=1)
        REPORTS = [r for r in REPORTS if r['t'] < lo]
        TestSeries.check(self, 'cpu', dt.timedelta(hours=1), T0, T0 + dt.timedelta(days=2))

    def test_security_and_errors(self):
        self.assertEqual(query(MEMBER, "SELECT count(*) FROM panko.metric_series('cpu', '1 hour', %s, %s)",
                               (T0, T0 + dt.timedelta(days=2))), [(0,)])
        self.assertEqual(query(MEMBER, "SELECT count(*) FROM panko.metric_latest()", ()), [(0,)])
        for sql, args, state in [
                ("SELECT * FROM panko.metric_series('cpu', '0.5 s', now(), now() + '1h')", (), '22023'),
                ("SELECT * FROM panko.metric_series('cpu', '2 days', now(), now() + '1h')", (), '22023'),
                ("SELECT * FROM panko.metric_series('cpu', '1 month', now(), now() + '1h')", (), '22023'),
                ("SELECT * FROM panko.metric_series('cpu', '1 s', now(), now() + '30 days')", (), '22023'),
                ("SELECT * FROM panko.metric_series('cpu', '1 s', now(), now() - interval '1h')", (), '22023'),
                ("SELECT * FROM panko.metric_series('cpu', '1 h', now(), now() + '1h', '5')", (), '22023'),
                ("SELECT * FROM panko.metric_series(NULL, '1 h', now(), now() + '1h')", (), '22004'),
                ("SELECT * FROM panko.metric_events('web', now(), now(), NULL, -1)", (), '22023')]:
            with self.assertRaises(psycopg2.Error) as cm:
                query(READER, sql, args)
            self.assertEqual(cm.exception.pgcode, state, sql)
        with self.assertRaises(psycopg2.Error) as cm:
            query(MEMBER, "SELECT * FROM panko.metric_report('[]')", ())
        self.assertEqual(cm.exception.pgcode, '42501')


if __name__ == '__main__':
    unittest.main()
