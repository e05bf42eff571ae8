"""panko's own tests of its CloudKitty backend: exact money, bad input that
stores nothing, filters, delete, custom fields, scopes under row-level
security, retention, and the entry point CloudKitty's loader uses."""

import datetime
import decimal
import json
import os
import random
import time
import unittest

import psycopg2
from oslo_config import cfg
from oslo_config import fixture as config_fixture

import common
from cloudkitty import dataframe
from cloudkitty import storage
from cloudkitty.utils import tz as tzutils
from dateutil import tz
from panko_drivers import cloudkitty as backend
from panko_drivers import connection

D = decimal.Decimal
# Python's default context rounds to 28 digits; the exact sum needs more.
decimal.getcontext().prec = 200
UTC = datetime.timezone.utc
DAY0 = datetime.datetime(2026, 11, 2, tzinfo=UTC)


def point(qty, price, project, flavor='m1.small', rid=None, unit='instance', **meta):
    meta.setdefault('flavor', flavor)
    return dataframe.DataPoint(unit, qty, price,
                               {'project_id': project, 'id': rid or project + '-vm'}, meta)


def frame(start, points, hours=1):
    """points: [(type, DataPoint)]"""
    f = dataframe.DataFrame(start=start, end=start + datetime.timedelta(hours=hours))
    for type_, p in points:
        f.add_point(p, type_)
    return f


class BackendTest(unittest.TestCase):

    def setUp(self):
        common.empty_store()
        self.conf = self.useFixture_conf()
        common.configure()
        self.storage = backend.PankoStorage(period=3600)

    def useFixture_conf(self):
        fix = config_fixture.Config(cfg.CONF)
        fix.setUp()
        self.addCleanup(fix.cleanUp)
        return fix.conf

    def month(self):
        return dict(begin=DAY0, end=DAY0 + datetime.timedelta(days=28))

    # exact money

    def test_totals_equal_decimal_sums(self):
        rnd = random.Random(7)
        projects = ['p%d' % i for i in range(5)]
        frames, expected = [], {}
        for h in range(24):
            pts = []
            for i in range(40):
                p = rnd.choice(projects)
                # short prices (the integer path), long ones (numeric), and
                # float-born Decimals of 50+ digits, as CloudKitty's samples
                price = rnd.choice([D('0.1'), D('0.01') * rnd.randint(1, 999),
                                    D(rnd.random()), D('-0.3'),
                                    D('12345678901234567890.123456789012345678901'),
                                    D('1E-7'), D('1.50E+3')])
                qty = D(rnd.randint(0, 10 ** 6)) / D(1000)
                pts.append(('instance', point(qty, price, p, rid='%s-%d' % (p, i))))
                q, r = expected.get(p, (D(0), D(0)))
                expected[p] = (q + qty, r + price)
            frames.append(frame(DAY0 + datetime.timedelta(hours=h), pts))
        self.storage.push(frames)
        total = self.storage.total(groupby=['project_id'], paginate=False, **self.month())
        self.assertEqual(total['total'], len(expected))
        got = {r['project_id']: (r['qty'], r['rate']) for r in total['results']}
        self.assertEqual(got, expected)          # Decimal ==, digit for digit
        for r in total['results']:
            self.assertIsInstance(r['rate'], D)
        whole = self.storage.total(**self.month())
        self.assertEqual(whole['total'], 1)
        self.assertEqual(whole['results'][0]['rate'], sum(v[1] for v in expected.values()))
        self.assertEqual(whole['results'][0]['qty'], sum(v[0] for v in expected.values()))
        # floats would not be equal: the sum of the float values differs
        self.assertNotEqual(
            D(sum(float(v[1]) for v in expected.values())),
            whole['results'][0]['rate'])

    def test_rating_sum_in_sql_matches_numeric_sum(self):
        # parallel plans combine partial sums: force them on a larger set
        rnd = random.Random(3)
        pts = [('instance', point(D(1), D(rnd.randint(-10 ** 9, 10 ** 9)) / D(10 ** rnd.randint(0, 25)), 'p1',
                                  rid='r%d' % i)) for i in range(20000)]
        self.storage.push([frame(DAY0, pts)])
        with common.admin() as cur:
            cur.execute("SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0;"
                        " SET min_parallel_table_scan_size = 0; SET max_parallel_workers_per_gather = 2")
            cur.execute("SELECT panko.rating_sum(traits, 'price'),"
                        " sum(panko.trait_text(traits, 'price')::numeric)"
                        " FROM panko.event WHERE message_id LIKE 'cloudkitty:%'")
            a, b = cur.fetchone()
        self.assertEqual(a, b)
        self.assertEqual(a, sum(p.price for _, p in pts))

    # bad input

    def assertStoresNothing(self, call, exc=backend.InvalidInput, text=None):
        before = common.count_points()
        with self.assertRaises(exc) as cm:
            call()
        if text:
            self.assertIn(text, str(cm.exception))
        self.assertEqual(common.count_points(), before)
        return cm.exception

    def test_unknown_groupby(self):
        self.storage.push([frame(DAY0, [('instance', point(1, 1, 'p1'))])])
        e = self.assertStoresNothing(lambda: self.storage.total(groupby=['colour'], **self.month()),
                                     text='unknown groupby attribute "colour"')
        self.assertEqual(e.sqlstate, '22023')
        self.assertStoresNothing(lambda: self.storage.total(groupby='project_id', **self.month()))
        self.assertStoresNothing(lambda: self.storage.total(groupby=['id', 'id'], **self.month()))
        # flavor is metadata, not groupby
        self.assertStoresNothing(lambda: self.storage.total(groupby=['flavor'], **self.month()))

    def test_bad_custom_fields(self):
        self.storage.push([frame(DAY0, [('instance', point(2, 3, 'p1'))])])
        for bad in ['SUM(qty); DROP TABLE panko.event', 'SUM(foo) AS x', 'qty', 'SUM(qty) AS 1x',
                    'SUM(qty) AS qty, SUM(price) AS qty', 'MEDIAN(price)', 'SUM(*)', '', 'SUM(qty) AS begin']:
            self.assertStoresNothing(lambda: self.storage.total(custom_fields=bad, **self.month()),
                                     text='custom field')
        self.assertStoresNothing(lambda: self.storage.total(custom_fields=['SUM(qty)'], **self.month()))
        r = self.storage.total(custom_fields='sum(qty) as q, COUNT(*) AS n, MAX(price) AS top, avg(qty)',
                               **self.month())['results'][0]
        self.assertEqual((r['q'], r['n'], r['top'], r['avg']), (D(2), D(1), D(3), D(2)))
        self.assertEqual(list(r)[:2], ['begin', 'end'])

    def test_begin_after_end(self):
        b, e = DAY0 + datetime.timedelta(days=1), DAY0
        for call in (lambda: self.storage.total(begin=b, end=e),
                     lambda: self.storage.retrieve(begin=b, end=e),
                     lambda: self.storage.delete(begin=b, end=e)):
            self.assertStoresNothing(call, text='is after end')

    def test_malformed_dataframes_store_nothing(self):
        good = frame(DAY0, [('instance', point(1, 1, 'p1'))])
        nan = frame(DAY0, [('instance', point(1, 'NaN', 'p1'))])
        backwards = dataframe.DataFrame(start=DAY0, end=DAY0 - datetime.timedelta(hours=1))
        backwards.add_point(point(1, 1, 'p1'), 'instance')
        not_a_point = frame(DAY0, [])
        not_a_point.add_point({'vol': {'qty': 1}}, 'instance')
        for bad in ([good, nan], [good, backwards], [good, not_a_point], [good, {'usage': {}}], good,
                    [good, frame(DAY0, [('', point(1, 1, 'p1'))])]):
            self.assertStoresNothing(lambda: self.storage.push(bad))
        self.assertEqual(common.count_points(), 0)

    def test_sql_push_refuses_a_bad_point_and_stores_nothing(self):
        good = {'message_id': 'cloudkitty:1', 'event_type': 'cloudkitty.instance',
                'generated': '2026-11-02T00:00:00', 'traits': {'qty': '1', 'price': '2.5', 'unit': 'u',
                                                                'period': 3600, 'g.id': 'a'}}
        bads = [dict(good, message_id='x:2'), dict(good, event_type='instance'),
                dict(good, traits=dict(good['traits'], price='1e5')),
                dict(good, traits=dict(good['traits'], qty=1)),
                dict(good, traits=dict(good['traits'], colour='red')),
                dict(good, generated='yesterday'), dict(good, event_type='cloudkitty.'),
                dict(good, traits=dict(good['traits'], price='.5')),
                dict(good, traits=dict(good['traits'], qty='1.')),
                dict(good, traits={k: v for k, v in good['traits'].items() if k != 'unit'}),
                dict(good, traits=dict(good['traits'], period='3600')),
                dict(good, traits=dict(good['traits'], project_id=7)),
                dict(good, traits=dict(good['traits'], **{'g.': 'x'})),
                dict(good, traits=dict(good['traits'], **{'m.size': 3})),
                dict(good, raw={}), dict(good, traits=[])]
        import json
        with common.admin() as cur:
            for bad in bads:
                with self.assertRaises(Exception) as cm:
                    cur.execute("SELECT panko.rating_push(%s::jsonb)",
                                (json.dumps([good, dict(bad, message_id=bad['message_id'] + 'b')]),))
                self.assertEqual(cm.exception.pgcode, '22023', bad)
                if bad['generated'] != 'yesterday':     # (that one record_events refuses)
                    self.assertIn('point 2 of 2', str(cm.exception), bad)
            for bad in (['not a point'], {'a': 'object'}):
                with self.assertRaises(Exception) as cm:
                    cur.execute("SELECT panko.rating_push(%s::jsonb)", (json.dumps(bad),))
                self.assertEqual(cm.exception.pgcode, '22023', bad)
        self.assertEqual(common.count_points(), 0)

    def test_frames_push_refuses_a_bad_point_and_stores_nothing(self):
        """panko.rating_push_frames, the driver's form: every malformed
        part is 22023 naming the frame and point, and nothing is stored."""
        import json
        pt = ['instance', 'u', '1', '2.5', {'id': 'a', 'project_id': 'p1'}, {'flavor': 'm1'}]
        fr = {'start': '2026-11-02T00:00:00+00:00', 'period': 3600, 'points': [pt]}
        good = {'push': 'abc123', 'scope': None, 'frames': [fr]}

        def with_point(bad):
            return dict(good, frames=[fr, dict(fr, points=[pt, bad])])

        bads = [(with_point(['instance', 'u', '1', '2.5', {'id': 'a'}]), 'point 2 of frame 2'),
                (with_point(['', 'u', '1', '2.5', None, None]), 'point 2 of frame 2'),
                (with_point(['instance', 'u', '1e5', '2.5', None, None]), 'point 2 of frame 2'),
                (with_point(['instance', 'u', 1, '2.5', None, None]), 'point 2 of frame 2'),
                (with_point(['instance', 7, '1', '2.5', None, None]), 'point 2 of frame 2'),
                (with_point(['instance', 'u', '1', '.5', None, None]), 'point 2 of frame 2'),
                (with_point(['instance', 'u', '1', '2.5', {'': 'x'}, None]), 'point 2 of frame 2'),
                (with_point(['instance', 'u', '1', '2.5', {'size': 3}, None]), 'point 2 of frame 2'),
                (with_point(['instance', 'u', '1', '2.5', None, {'a': {'b': 'c'}}]), 'point 2 of frame 2'),
                (with_point(['instance', 'u', '1', '2.5', ['id'], None]), 'point 2 of frame 2'),
                (with_point(['x' * 300, 'u', '1', '2.5', None, None]), 'point 2 of frame 2'),
                (with_point('not a point'), 'point 2 of frame 2'),
                (with_point(['instance', 'u', '1' * 70000, '2.5', None, None]), 'point 2 of frame 2'),
                (with_point(['instance', 'u' * 70000, '1', '2.5', None, None]), 'point 2 of frame 2'),
                (with_point(['instance', 'u', '1', '2.5', {'id': 'x' * 70000}, None]), 'point 2 of frame 2'),
                (dict(good, scope='p' * 70000), 'point 1 of frame 1'),
                (dict(good, frames=[fr, dict(fr, start='yesterday')]), 'frame 2'),
                (dict(good, frames=[fr, dict(fr, period=0)]), 'frame 2'),
                (dict(good, frames=[fr, dict(fr, period=1.5)]), 'frame 2'),
                (dict(good, frames=[fr, dict(fr, points={})]), 'frame 2'),
                (dict(good, frames=[fr, 'frame']), 'frame 2'),
                (dict(good, push=''), 'push'), (dict(good, push="a'b"), 'push'),
                ({k: v for k, v in good.items() if k != 'push'}, 'push'),
                (dict(good, scope=7), 'scope'), (dict(good, frames={}), 'frames'),
                # the shaped form: [shape, value, ...] of the push's shapes
                (dict(with_point(['instance', 'u', '1', '2.5', [1, 'a'], None]), shapes=[['id']]), 'point 2 of frame 2'),
                (dict(with_point(['instance', 'u', '1', '2.5', [-1, 'a'], None]), shapes=[['id']]), 'point 2 of frame 2'),
                (dict(with_point(['instance', 'u', '1', '2.5', [0.5, 'a'], None]), shapes=[['id']]), 'point 2 of frame 2'),
                (dict(with_point(['instance', 'u', '1', '2.5', ['0', 'a'], None]), shapes=[['id']]), 'point 2 of frame 2'),
                (dict(with_point(['instance', 'u', '1', '2.5', [0], None]), shapes=[['id']]), 'point 2 of frame 2'),
                (dict(with_point(['instance', 'u', '1', '2.5', [0, 'a', 'b'], None]), shapes=[['id']]), 'point 2 of frame 2'),
                (dict(with_point(['instance', 'u', '1', '2.5', None, [0, 3]]), shapes=[['id']]), 'point 2 of frame 2'),
                (dict(with_point(['instance', 'u', '1', '2.5', [0, 'x' * 70000], None]), shapes=[['id']]), 'point 2 of frame 2'),
                (dict(with_point(['instance', 'u', '1', '2.5', [0, 'a'], None])), 'point 2 of frame 2'),
                (dict(good, shapes=[['id', 'id']]), 'shape 0'), (dict(good, shapes=[['']]), 'shape 0'),
                (dict(good, shapes=[['a%d' % i for i in range(50000)] + ['a0']]), 'shape 0'),
                (dict(good, shapes=[['id'], 'id']), 'shape 1'), (dict(good, shapes=[[7]]), 'shape 0'),
                (dict(good, shapes=[['x' * 70000]]), 'shape 0'), (dict(good, shapes={}), 'shapes')]
        with common.admin() as cur:
            for bad, where in bads:
                with self.assertRaises(Exception) as cm:
                    cur.execute("SELECT panko.rating_push_frames(%s::jsonb)", (json.dumps(bad),))
                self.assertEqual(cm.exception.pgcode, '22023', bad)
                self.assertIn(where, str(cm.exception), bad)
            for bad in (['not a push'], 'text'):
                with self.assertRaises(Exception) as cm:
                    cur.execute("SELECT panko.rating_push_frames(%s::jsonb)", (json.dumps(bad),))
                self.assertEqual(cm.exception.pgcode, '22023', bad)
        self.assertEqual(common.count_points(), 0)

    def test_frames_push_stores_what_the_points_form_stores(self):
        """The same point through rating_push_frames and rating_push: the
        same traits, and the same rollup; a frames push sent again stores
        nothing twice."""
        import json
        with common.admin() as cur:
            cur.execute("SET ROLE ck_storage")
            doc = {'push': 'same-1', 'scope': 'p9', 'frames': [
                {'start': DAY0.isoformat(), 'period': 3600,
                 'points': [['instance', 'inst', '1.25', '0.5', {'project_id': 'p1', 'id': 'r1'},
                             {'flavor': 'm1', 'project_id': 'p2'}]]}]}
            for _ in range(2):
                cur.execute("SELECT panko.rating_push_frames(%s::jsonb)", (json.dumps(doc),))
                self.assertEqual(cur.fetchone()[0], 1)
            # the shaped form of the same point (the driver's)
            shaped = dict(doc, push='same-2', shapes=[['flavor', 'project_id'], ['project_id', 'id']])
            shaped['frames'] = [dict(doc['frames'][0], points=[
                ['instance', 'inst', '1.25', '0.5', [1, 'p1', 'r1'], [0, 'm1', 'p2']]])]
            cur.execute("SELECT panko.rating_push_frames(%s::jsonb)", (json.dumps(shaped),))
            self.assertEqual(cur.fetchone()[0], 1)
            cur.execute("SELECT panko.rating_push(%s::jsonb)", (json.dumps([{
                'message_id': 'cloudkitty:points-1', 'event_type': 'cloudkitty.instance',
                'generated': DAY0.isoformat(),
                'traits': {'qty': '1.25', 'price': '0.5', 'unit': 'inst', 'period': 3600, 'project_id': 'p9',
                           'g.project_id': 'p1', 'g.id': 'r1', 'm.flavor': 'm1', 'm.project_id': 'p2'}}]),))
            cur.execute("RESET ROLE")
            cur.execute("SELECT message_id, traits::text FROM panko.event WHERE retention = 'rating'"
                        " ORDER BY message_id")
            rows = cur.fetchall()
            self.assertEqual([r[0] for r in rows], ['cloudkitty:points-1', 'cloudkitty:same-1:1', 'cloudkitty:same-2:1'])
            self.assertEqual(rows[0][1], rows[1][1])
            self.assertEqual(rows[0][1], rows[2][1])
            cur.execute("SELECT points, qty, price FROM panko.rating_rollup")
            self.assertEqual(cur.fetchall(), [(3, D('3.75'), D('1.5'))])
            cur.execute("SELECT array_agg(attribute ORDER BY attribute) FROM panko.rating_project_alias")
            self.assertEqual(cur.fetchone()[0], ['g.project_id', 'm.project_id'])
            # the parts run only inside rating_push_frames
            cur.execute("SET ROLE ck_storage")
            for sql in ("SELECT panko.rating_store_frames('{}')",
                        "SELECT panko.rating_note_names(ARRAY['x'], true, true)",
                        "SELECT panko.rating_rollup_add_groups('{}', '{}', '{}', '{}', '{}', '{}', '{}')"):
                with self.assertRaises(Exception) as cm:
                    cur.execute(sql)
                self.assertEqual(cm.exception.pgcode, '42501', sql)

    def test_registry_keeps_one_row_per_push(self):
        """The registry of message_ids keys a point's id cloudkitty:<push>:<n>
        by its push: a push of two days' frames adds one row, with the newest
        time; every point is still found by its message_id, and the push sent
        again stores nothing twice."""
        import json
        pts = lambda day: [['instance', 'inst', '%d.5' % i, '0.25', {'project_id': 'p1', 'id': 'r%d' % i},
                            {'day': day}] for i in range(3)]
        doc = {'push': 'reg-1', 'scope': None, 'frames': [
            {'start': DAY0.isoformat(), 'period': 3600, 'points': pts('0')},
            {'start': (DAY0 + datetime.timedelta(days=1)).isoformat(), 'period': 3600, 'points': pts('1')}]}
        with common.admin() as cur:
            cur.execute("SELECT panko.message_id_hash('cloudkitty:reg-1:12') = panko.message_id_hash('cloudkitty:reg-1'),"
                        " panko.message_id_hash('cloudkitty:reg-1:1x') = panko.message_id_hash('cloudkitty:reg-1'),"
                        " panko.message_id_hash('other:reg-1:1') = panko.message_id_hash('other:reg-1'),"
                        " panko.message_id_hash('cloudkitty::1') = panko.message_id_hash('cloudkitty:')")
            self.assertEqual(cur.fetchone(), (True, False, False, False))
            cur.execute("SELECT count(*) FROM panko.event_message")
            before = cur.fetchone()[0]
            cur.execute("SET ROLE ck_storage")
            for _ in range(2):
                cur.execute("SELECT panko.rating_push_frames(%s::jsonb)", (json.dumps(doc),))
                self.assertEqual(cur.fetchone()[0], 6)
                for n in range(1, 7):
                    cur.execute("SELECT generated FROM panko.get_events(%s::jsonb)",
                                (json.dumps({'message_id': 'cloudkitty:reg-1:%d' % n}),))
                    self.assertEqual(cur.fetchall(), [(DAY0 + datetime.timedelta(days=(n - 1) // 3),)],
                                     'point %d' % n)
            cur.execute("RESET ROLE")
            cur.execute("SELECT count(*) FROM panko.event_message")
            self.assertEqual(cur.fetchone()[0], before + 1)
            cur.execute("SELECT generated FROM panko.event_message WHERE id_hash = panko.message_id_hash('cloudkitty:reg-1')")
            self.assertEqual(cur.fetchall(), [(DAY0 + datetime.timedelta(days=1),)])
            cur.execute("SELECT count(*) FROM panko.event WHERE message_id LIKE 'cloudkitty:reg-1:%%'")
            self.assertEqual(cur.fetchone()[0], 6)
            cur.execute("SELECT sum(points) FROM panko.rating_rollup")
            self.assertEqual(cur.fetchone()[0], 6)

    # filters, delete, pagination

    def _two_projects(self):
        pts = [('instance', point(1, D('1.1'), 'p1', flavor='big')),
               ('instance', point(2, D('2.2'), 'p2', flavor='small')),
               ('volume', point(3, D('3.3'), 'p1', flavor='small', unit='GiB'))]
        self.storage.push([frame(DAY0, pts), frame(DAY0 + datetime.timedelta(days=1), pts)])

    def test_filters_and_group_filters(self):
        self._two_projects()
        t = self.storage.total(filters={'flavor': 'small'}, **self.month())['results'][0]
        self.assertEqual(t['rate'], D('11.0'))
        t = self.storage.total(group_filters={'flavor': 'small'}, **self.month())['results'][0]
        self.assertEqual(t['rate'], D(0))       # flavor is metadata: no groupby matches
        t = self.storage.total(group_filters={'project_id': 'p1', 'id': 'p1-vm'}, **self.month())
        self.assertEqual(t['results'][0]['rate'], D('8.8'))
        t = self.storage.total(filters={'project_id': ['p1', 'p2']}, metric_types='instance',
                               **self.month())
        self.assertEqual(t['results'][0]['rate'], D('6.6'))
        t = self.storage.total(filters={'type': 'volume'}, groupby=['type', 'project_id'], **self.month())
        self.assertEqual([(r['type'], r['project_id'], r['rate']) for r in t['results']],
                         [('volume', 'p1', D('6.6'))])
        t = self.storage.total(groupby=['time', 'type'], **self.month())
        self.assertEqual([(r['begin'], r['end'] - r['begin'], r['type'], r['rate']) for r in t['results']],
                         [(DAY0, datetime.timedelta(hours=1), 'instance', D('3.3')),
                          (DAY0, datetime.timedelta(hours=1), 'volume', D('3.3')),
                          (DAY0 + datetime.timedelta(days=1), datetime.timedelta(hours=1), 'instance', D('3.3')),
                          (DAY0 + datetime.timedelta(days=1), datetime.timedelta(hours=1), 'volume', D('3.3'))])
        r = self.storage.retrieve(filters={'flavor': 'small'}, metric_types=['volume'], **self.month())
        self.assertEqual(r['total'], 2)
        pts = [p for f in r['dataframes'] for p in f.iterpoints()]
        self.assertEqual([(t, p.unit, p.qty, p.price, dict(p.groupby), dict(p.metadata)) for t, p in pts],
                         [('volume', 'GiB', D(3), D('3.3'), {'project_id': 'p1', 'id': 'p1-vm'},
                           {'flavor': 'small'})] * 2)
        self.assertEqual([f.start for f in r['dataframes']], [DAY0, DAY0 + datetime.timedelta(days=1)])

    def test_kept_and_built_queries_agree(self):
        # the default fields take the static queries, explicit ones the
        # built query: same groups, same order, same pages
        self._two_projects()
        self.storage.push([frame(DAY0, [('image', dataframe.DataPoint('GiB', 5, D('0.5'), {'id': 'x'}, {}))])])
        explicit = 'SUM(qty) AS qty, SUM(price) AS rate'
        for groupby in ([], ['project_id'], ['type', 'project_id'], ['id', 'type'], ['time'],
                        ['project_id', 'time', 'type']):
            for kw in ({}, {'filters': {'project_id': 'p1'}}, {'filters': {'flavor': 'small'}},
                       {'offset': 1, 'limit': 2}, {'metric_types': ['volume']}):
                a = self.storage.total(groupby=groupby, **dict(self.month(), **kw))
                b = self.storage.total(groupby=groupby, custom_fields=explicit, **dict(self.month(), **kw))
                self.assertEqual(a, b, (groupby, kw))
                self.assertEqual(bool(a['results']), bool(groupby) or 'offset' not in kw, (groupby, kw))
        t = self.storage.total(groupby=['project_id', 'type'], **self.month())['results']
        self.assertEqual([(r['project_id'], r['type']) for r in t],
                         [('p1', 'instance'), ('p1', 'volume'), ('p2', 'instance'), (None, 'image')])

    def test_attribute_values_are_stored_as_strings(self):
        # a value that is not a string is stored as its str() (None as ''),
        # also after points of the same names whose values were strings
        # (the driver sends those names once a push)
        pts = [('instance', dataframe.DataPoint('instance', 1, 1, {'project_id': 'p1', 'id': v},
                                                {'flavor': f}))
               for v, f in (('vm-a', 'm1'), (7, 'm1'), (None, 2.5))]
        self.storage.push([frame(DAY0, pts)])
        r = self.storage.retrieve(**self.month())
        got = sorted((p.groupby['id'], p.metadata['flavor'])
                     for f in r['dataframes'] for _, p in f.iterpoints())
        self.assertEqual(got, [('', '2.5'), ('7', 'm1'), ('vm-a', 'm1')])

    def test_pagination(self):
        pts = [('instance', point(1, 1, 'p%02d' % i)) for i in range(25)]
        self.storage.push([frame(DAY0, pts)])
        pages = [self.storage.total(groupby=['project_id'], offset=o, limit=10, **self.month())
                 for o in (0, 10, 20, 30)]
        self.assertEqual([p['total'] for p in pages], [25] * 4)
        self.assertEqual([len(p['results']) for p in pages], [10, 10, 5, 0])
        allr = self.storage.total(groupby=['project_id'], offset=20, limit=1, paginate=False, **self.month())
        self.assertEqual([r['project_id'] for r in allr['results']], ['p%02d' % i for i in range(25)])
        self.assertEqual(sum((p['results'] for p in pages), []), allr['results'])
        r = self.storage.retrieve(offset=20, limit=10, **self.month())
        self.assertEqual((r['total'], sum(len(list(f.iterpoints())) for f in r['dataframes'])), (25, 5))
        self.assertStoresNothing(lambda: self.storage.retrieve(offset=-1, **self.month()))

    def test_retrieve_names_types_and_leaves_the_callers_settings(self):
        # retrieve names each point's metric type from its event type, and
        # plans its reads of the events for each call's values without
        # leaving that setting to the rest of the caller's transaction
        self.storage.push([frame(DAY0, [('instance', point(1, 2, 'p1')), ('volume', point(3, 4, 'p1'))]),
                           frame(DAY0 + datetime.timedelta(hours=1), [('image', point(5, 6, 'p2'))])])
        r = self.storage.retrieve(**self.month())
        got = sorted((f.start, t, p.qty, p.price) for f in r['dataframes'] for t, p in f.iterpoints())
        self.assertEqual(got, [(DAY0, 'instance', D(1), D(2)), (DAY0, 'volume', D(3), D(4)),
                               (DAY0 + datetime.timedelta(hours=1), 'image', D(5), D(6))])
        conn = psycopg2.connect(common.ADMIN_DSN)
        try:
            with conn.cursor() as cur:
                for mode in ('force_generic_plan', 'auto'):
                    cur.execute("SELECT set_config('plan_cache_mode', %s, true)", (mode,))
                    for filters in (None, '{"project_id": "p1"}', '{"flavor": "m1.small"}'):
                        cur.execute("SELECT panko.rating_retrieve(%s, %s, NULL, %s::jsonb)::text",
                                    (DAY0, DAY0 + datetime.timedelta(days=28), filters))
                        cur.execute("SHOW plan_cache_mode")
                        self.assertEqual(cur.fetchone()[0], mode, filters)
                    conn.rollback()
        finally:
            conn.close()

    def test_retrieve_frames_are_local_as_dt_from_iso_makes_them(self):
        # the frames' begin and end are in the local timezone, as the
        # Elasticsearch backend makes them (tzutils.dt_from_iso, and
        # tzutils.add_delta for the end), in zones with summer time too and
        # for periods across a change of offset
        starts = [DAY0, datetime.datetime(2026, 3, 29, 0, 30, tzinfo=UTC),
                  datetime.datetime(2026, 10, 25, 0, 59, 59, tzinfo=UTC),
                  datetime.datetime(2026, 3, 8, 6, 30, tzinfo=UTC)]
        self.storage.push([frame(s, [('instance', point(1, 2, 'p1'))], hours=2) for s in starts])
        saved_tz, saved_local = os.environ.get('TZ'), tzutils._LOCAL_TZ
        try:
            for zone in ('UTC', 'Europe/Paris', 'America/New_York', 'Asia/Kolkata'):
                os.environ['TZ'] = zone
                time.tzset()
                tzutils._LOCAL_TZ = tz.tzlocal()
                r = self.storage.retrieve(begin=datetime.datetime(2026, 1, 1, tzinfo=UTC),
                                          end=datetime.datetime(2027, 1, 1, tzinfo=UTC))
                got = [(f.start.isoformat(), f.end.isoformat()) for f in r['dataframes']]
                want = []
                for s in sorted(starts):
                    b = tzutils.dt_from_iso(s.strftime('%Y-%m-%dT%H:%M:%S+00:00'))
                    want.append((b.isoformat(), tzutils.add_delta(b, datetime.timedelta(hours=2)).isoformat()))
                self.assertEqual(got, want, zone)
                self.assertTrue(all(f.start.tzinfo is tzutils._LOCAL_TZ for f in r['dataframes']), zone)
        finally:
            if saved_tz is None:
                os.environ.pop('TZ', None)
            else:
                os.environ['TZ'] = saved_tz
            time.tzset()
            tzutils._LOCAL_TZ = saved_local

    def test_delete_with_and_without_filters(self):
        self._two_projects()
        self.assertEqual(common.count_points(), 6)
        self.storage.delete(begin=DAY0 + datetime.timedelta(days=1), filters={'project_id': 'p1'})
        self.assertEqual(common.count_points(), 4)
        left = self.storage.total(groupby=['project_id'], **self.month())['results']
        self.assertEqual([(r['project_id'], r['rate']) for r in left],
                         [('p1', D('4.4')), ('p2', D('4.4'))])
        self.storage.delete(filters={'flavor': 'big'})
        self.assertEqual(common.count_points(), 3)
        self.storage.delete(end=DAY0 + datetime.timedelta(days=1))
        self.assertEqual(common.count_points(), 1)
        self.storage.delete()
        self.assertEqual(common.count_points(), 0)
        # the partitions' counts follow
        with common.admin() as cur:
            cur.execute("SELECT coalesce(sum(n), 0) FROM panko.partition_rows")
            self.assertEqual(cur.fetchone()[0], 0)

    # the daily rollup (panko.rating_rollup): whole-day totals and
    # retrieve's counts read it; it must always say what the points say

    def _rollup_data(self):
        """Three days of points: 6 projects (one also as another scope),
        3 types, points without a groupby project_id, and prices of the
        integer and the numeric path."""
        rnd = random.Random(11)
        frames = []
        for h in range(0, 72, 3):
            pts = []
            for i in range(rnd.randint(3, 9)):
                p = 'p%d' % rnd.randint(0, 5)
                price = rnd.choice([D('0.25'), D(rnd.randint(1, 999)) / D(100), D(rnd.random())])
                type_ = rnd.choice(['instance', 'volume', 'image'])
                if type_ == 'image':
                    pts.append((type_, dataframe.DataPoint('GiB', D(rnd.randint(1, 9)), price,
                                                           {'id': 'img-%d' % i}, {'owner': p})))
                else:
                    pts.append((type_, point(D(rnd.randint(1, 40)) / D(4), price, p, rid='%s-%d' % (p, i))))
            frames.append(frame(DAY0 + datetime.timedelta(hours=h), pts))
        self.storage.push(frames)
        self.storage.push([frame(DAY0 + datetime.timedelta(hours=30), [('instance', point(2, D('1.5'), 'p1'))])],
                          scope_id='p1')

    def _without_rollup(self):
        self.conf.set_override('connection', common.CONNECTION + '&options=-c%20panko.rating_rollup%3Doff',
                               'storage_panko')
        return backend.PankoStorage(period=3600)

    @staticmethod
    def _points(r):
        return (r['total'], [(f.start, t, p) for f in r['dataframes'] for t, p in f.iterpoints()])

    def _rollup_queries(self, storage):
        """Answers of the shapes the rollup takes, on whole days (and a few
        it does not: hours, other filters, MIN, time)."""
        out = []
        days = [dict(begin=DAY0, end=DAY0 + datetime.timedelta(days=3)),
                dict(begin=DAY0 + datetime.timedelta(days=1), end=DAY0 + datetime.timedelta(days=2)),
                dict(begin=DAY0 + datetime.timedelta(hours=5), end=DAY0 + datetime.timedelta(days=2))]
        for window in days:
            for groupby in ([], ['project_id'], ['type'], ['type', 'project_id'], ['project_id', 'type'],
                            ['id'], ['time']):
                for kw in ({}, {'filters': {'project_id': 'p1'}}, {'filters': {'project_id': ['p2', 'p3']}},
                           {'group_filters': {'project_id': 'p4'}}, {'filters': {'type': 'volume'}},
                           {'metric_types': ['image', 'volume']}, {'offset': 2, 'limit': 3},
                           {'custom_fields': 'COUNT(*) AS n, SUM(price) AS rate'},
                           {'custom_fields': 'MIN(price) AS low'}, {'filters': {'flavor': 'm1.small'}},
                           {'filters': {'project_id': 'nobody'}}):
                    out.append(('total', groupby, kw, storage.total(groupby=groupby, **dict(window, **kw))))
            for kw in ({}, {'filters': {'project_id': 'p1'}}, {'filters': {'project_id': ['p0', 'p5']}},
                       {'group_filters': {'project_id': 'p2'}}, {'metric_types': ['volume']},
                       {'offset': 7, 'limit': 9}, {'offset': 40, 'limit': 30}, {'offset': 500, 'limit': 5},
                       {'limit': 0}, {'filters': {'project_id': 'p3'}, 'offset': 3, 'limit': 4}):
                out.append(('retrieve', kw, self._points(storage.retrieve(**dict(window, **kw)))))
        return out

    def _rollup_is_exact(self):
        """The rollup holds exactly the sums of the stored points."""
        with common.admin() as cur:
            cur.execute("""
                WITH truth AS (
                    SELECT date_bin('1 day', e.generated, timestamptz '1970-01-01 00:00+00') AS day, e.event_type_id,
                           panko.trait_text(e.traits, 'project_id') AS scope,
                           panko.trait_text(e.traits, 'g.project_id') AS gproject, e.tableoid::oid AS relid,
                           count(*) AS points, sum(panko.trait_text(e.traits, 'qty')::numeric) AS qty,
                           sum(panko.trait_text(e.traits, 'price')::numeric) AS price
                      FROM panko.event e WHERE e.retention = 'rating' GROUP BY 1, 2, 3, 4, 5),
                kept AS (SELECT day, event_type_id, scope, gproject, relid, points, qty, price FROM panko.rating_rollup)
                SELECT (SELECT count(*) FROM (SELECT * FROM truth EXCEPT ALL SELECT * FROM kept) a),
                       (SELECT count(*) FROM (SELECT * FROM kept EXCEPT ALL SELECT * FROM truth) b),
                       (SELECT count(*) FROM kept)""")
            return cur.fetchone()

    def test_rollup_answers_as_the_points_do(self):
        self._rollup_data()
        missing, extra, rows = self._rollup_is_exact()
        self.assertEqual((missing, extra), (0, 0))
        self.assertGreater(rows, 20)
        off = self._without_rollup()
        with_rollup = self._rollup_queries(self.storage)
        self.assertEqual(with_rollup, self._rollup_queries(off))
        # not vacuous: the answers have groups and points
        self.assertGreater(sum(1 for q in with_rollup if q[0] == 'total' and q[-1]['results']), 100)
        self.assertGreater(sum(1 for q in with_rollup if q[0] == 'retrieve' and q[-1][1]), 20)
        # and the rollup is what answers the whole days: spoil it, and those
        # answers change (the others do not), count it again, and they agree
        with common.admin() as cur:
            cur.execute("UPDATE panko.rating_rollup SET price = price + 1, points = points + 1")
        spoiled = self._rollup_queries(self.storage)
        changed = [a for a, b in zip(with_rollup, spoiled) if a != b]
        self.assertTrue(any(q[0] == 'total' for q in changed))
        self.assertTrue(any(q[0] == 'retrieve' for q in changed))
        self.assertTrue(all(q[2].get('custom_fields') != 'MIN(price) AS low' for q in changed if q[0] == 'total'))
        with common.admin() as cur:
            cur.execute("SELECT panko.rating_rollup_refresh('-infinity', 'infinity')")
        self.assertEqual(self._rollup_is_exact()[:2], (0, 0))
        self.assertEqual(self._rollup_queries(self.storage), with_rollup)

    def test_rollup_request_takes_the_common_total_only(self):
        """panko.rating_rollup_request (C) says which totals the rollup
        answers at once, and with which arguments; everything else goes
        to rating_total's full path (whose answers the test above checks)."""
        self._rollup_data()
        d0, d1 = DAY0, DAY0 + datetime.timedelta(days=1)
        hour = DAY0 + datetime.timedelta(hours=1)

        def ask(groupby=None, types=None, filters=None, group_filters=None, custom=None, begin=d0, end=d1):
            with common.admin() as cur:
                cur.execute("SELECT covered, kinds, ids IS NULL, cardinality(ids), scopes, gprojects"
                            " FROM panko.rating_rollup_request(%s, %s, %s::text[], %s::text[], %s::jsonb,"
                            " %s::jsonb, %s)",
                            (begin, end, groupby, types, None if filters is None else json.dumps(filters),
                             None if group_filters is None else json.dumps(group_filters), custom))
                return cur.fetchone()

        self.assertEqual(ask(), (True, [], True, None, None, None))
        self.assertEqual(ask(['type', 'project_id'], filters={'project_id': 'p1'}),
                         (True, [0, 1], True, None, ['p1'], None))
        self.assertEqual(ask(['project_id'], group_filters={'project_id': ['p2', 'p3']}),
                         (True, [1], True, None, None, ['p2', 'p3']))
        # metric types and type filters intersect; ids of the types stored
        self.assertEqual(ask(['type'], types=['volume', 'image', 'nothing'], filters={'type': ['image', 'nothing']}),
                         (True, [0], False, 1, None, None))
        self.assertEqual(ask(types=['nothing']), (True, [], False, 0, None, None))
        # not the rollup's: hours, custom fields, other groupbys and filters,
        # values it does not read, the setting off
        for kw in (dict(begin=hour), dict(end=DAY0 + datetime.timedelta(hours=25)),
                   dict(custom='SUM(qty) AS qty, SUM(price) AS rate'), dict(groupby=['time']),
                   dict(groupby=['id']), dict(groupby=['type', 'type']), dict(groupby=['qty']),
                   dict(filters={'id': 'x'}), dict(filters={'project_id': 5}), dict(filters=['p1']),
                   dict(group_filters={'user_id': 'u'}), dict(filters={'project_id': [None]}),
                   dict(begin='-infinity'), dict(end='infinity')):
            self.assertFalse(ask(**kw)[0], kw)
        with common.admin() as cur:
            cur.execute("SET panko.rating_rollup = off")
            cur.execute("SELECT covered FROM panko.rating_rollup_request(%s, %s, NULL, NULL, NULL, NULL, NULL)",
                        (d0, d1))
            self.assertFalse(cur.fetchone()[0])
        # a project_id that differs from a point's scope: the scope alone
        # no longer tells a project_id filter
        self.storage.push([frame(DAY0, [('instance', point(1, D('1'), 'p9'))])], scope_id='p8')
        self.assertFalse(ask(filters={'project_id': 'p1'})[0])
        self.assertTrue(ask(group_filters={'project_id': 'p1'})[0])

    def test_rollup_follows_copies_delete_and_expiry(self):
        self._rollup_data()
        # a push sent again (the same message_ids): nothing is counted twice
        with common.admin() as cur:
            cur.execute("SET ROLE ck_storage")
            doc = ('[{"message_id": "cloudkitty:copy-1", "event_type": "cloudkitty.instance", "generated": "%s",'
                   ' "traits": {"qty": "1", "price": "0.5", "unit": "instance", "period": 3600,'
                   ' "project_id": "p1", "g.project_id": "p1"}}]') % DAY0.strftime('%Y-%m-%dT%H:%M:%S')
            cur.execute("SELECT panko.rating_push(%s::jsonb)", (doc,))
            cur.execute("SELECT panko.rating_push(%s::jsonb)", (doc,))
            cur.execute("SELECT panko.rating_push(%s::jsonb)",
                        (doc[:-1] + ', ' + doc[1:].replace('copy-1', 'copy-2'),))
            # a writer writes the rollup through rating_push only
            for sql in ("INSERT INTO panko.rating_rollup VALUES (now(), 1, 'p1', 'p1', 1, 1, 1, 1)",
                        "UPDATE panko.rating_rollup SET price = 0",
                        "SELECT panko.rating_rollup_add('[]')", "SELECT * FROM panko.rating_rollup_points('[]')",
                        "SELECT panko.rating_rollup_refresh(now(), now())"):
                with self.assertRaises(Exception) as cm:
                    cur.execute(sql)
                self.assertEqual(cm.exception.pgcode, '42501', sql)
        self.assertEqual(self._rollup_is_exact()[:2], (0, 0))
        copies = self.storage.total(filters={'project_id': 'p1'}, custom_fields='COUNT(*) AS n',
                                    begin=DAY0, end=DAY0 + datetime.timedelta(days=1))
        with common.admin() as cur:
            cur.execute("SELECT count(*) FROM panko.event WHERE retention = 'rating' AND generated < %s"
                        " AND panko.trait_text(traits, 'project_id') = 'p1'", (DAY0 + datetime.timedelta(days=1),))
            self.assertEqual(copies['results'][0]['n'], cur.fetchone()[0])
        # delete: with a project filter, another filter, a window of hours
        self.storage.delete(begin=DAY0 + datetime.timedelta(hours=20), filters={'project_id': 'p2'})
        self.assertEqual(self._rollup_is_exact()[:2], (0, 0))
        self.storage.delete(filters={'flavor': 'm1.small'}, end=DAY0 + datetime.timedelta(hours=7))
        self.assertEqual(self._rollup_is_exact()[:2], (0, 0))
        off = self._without_rollup()
        self.assertEqual(self._rollup_queries(self.storage), self._rollup_queries(off))
        # expiry: rated data that follows the events' time to live is
        # deleted row by row below the cutoff; a dropped table takes its rows
        with common.admin() as cur:
            cur.execute("DELETE FROM panko.retention WHERE class = 'rating'")   # (init() of another test)
            cur.execute("SELECT panko.drop_expired_partitions(%s, NULL)", (DAY0 + datetime.timedelta(hours=40),))
            self.assertEqual(self._rollup_is_exact()[:2], (0, 0))
            cur.execute("SELECT count(*) FROM panko.rating_rollup WHERE day < %s", (DAY0 + datetime.timedelta(days=1),))
            self.assertEqual(cur.fetchone()[0], 0)
            cur.execute("SELECT p.name || '_rating' FROM panko.partition p WHERE p.lower_bound = %s",
                        (DAY0 + datetime.timedelta(days=2),))
            table = cur.fetchone()[0]
            cur.execute("SELECT count(*) FROM panko.rating_rollup WHERE relid = ('panko.' || %s)::regclass", (table,))
            self.assertGreater(cur.fetchone()[0], 0)
            cur.execute("DROP TABLE panko.%s" % table)
        self.assertEqual(self._rollup_is_exact()[:2], (0, 0))
        self.assertEqual(self._rollup_queries(self.storage), self._rollup_queries(off))
        # that day takes points again: its table is made anew
        self.storage.push([frame(DAY0 + datetime.timedelta(days=2, hours=1), [('instance', point(1, D('2'), 'p1'))])])
        self.assertEqual(self._rollup_is_exact()[:2], (0, 0))
        with common.admin() as cur:
            cur.execute("SELECT count(*) FROM panko.%s" % table)
            self.assertEqual(cur.fetchone()[0], 1)
        self.storage.delete()
        self.assertEqual(self._rollup_is_exact(), (0, 0, 0))

    # scopes and row-level security

    def test_scope_is_the_project_id_trait(self):
        self.storage.push([frame(DAY0, [('instance', point(1, 5, 'g-proj'))])], scope_id='scope-1')
        with common.admin() as cur:
            cur.execute("SELECT panko.trait_text(traits, 'project_id') FROM panko.event WHERE message_id LIKE 'cloudkitty:%'")
            self.assertEqual(cur.fetchall(), [('scope-1',)])
            # a gateway's admin identity sees its own project's rated data
            # only; a member identity none (rated data has no user_id)
            cur.execute("SET ROLE ck_api")
            for project, roles, rate in (('scope-1', 'admin', '5'), ('other', 'admin', '0'),
                                         ('scope-1', 'member', '0')):
                cur.execute("BEGIN; SELECT panko.set_identity('u', %s, %s);"
                            " SELECT panko.rating_total('2026-11-01', '2026-12-01')::text", (project, roles))
                doc = cur.fetchone()[0]
                cur.execute("COMMIT")
                self.assertIn('["1", "%s"]' % rate if rate != '0' else '["0", "0"]', doc)
            cur.execute("RESET ROLE; SET ROLE ck_reader")
            cur.execute("SELECT panko.rating_total('2026-11-01', '2026-12-01')::text")
            self.assertIn('["0"', cur.fetchone()[0])   # no identity: nothing visible
            with self.assertRaises(Exception) as cm:
                cur.execute("SELECT panko.rating_delete()")
            self.assertEqual(cm.exception.pgcode, '42501')
        self.assertEqual(common.count_points(), 1)

    def test_project_id_filter_matches_the_scope_groupby_and_metadata(self):
        def rates(project):
            return (self.storage.total(filters={'project_id': project}, **self.month())['results'][0]['rate'],
                    self.storage.retrieve(filters={'project_id': project}, **self.month())['total'])
        # scopes equal to the groupby's project_id: the filter reads the scope
        self._two_projects()
        self.assertEqual(rates('p1'), (D('8.8'), 4))
        with common.admin() as cur:
            cur.execute("SELECT count(*) FROM panko.rating_project_alias")
            self.assertEqual(cur.fetchone()[0], 0)
        # a scope other than the groupby's project_id, a metadata project_id
        self.storage.push([frame(DAY0, [('instance', point(1, 5, 'g-proj'))])], scope_id='scope-1')
        self.storage.push([frame(DAY0, [('instance', point(1, 7, 'p9', project_id='m-proj'))])])
        with common.admin() as cur:
            cur.execute("SELECT array_agg(attribute ORDER BY 1) FROM panko.rating_project_alias")
            self.assertEqual(cur.fetchone()[0], ['g.project_id', 'm.project_id'])
        self.assertEqual(rates('g-proj'), (D(5), 1))
        self.assertEqual(rates('scope-1'), (D(5), 1))
        self.assertEqual(rates('m-proj'), (D(7), 1))
        self.assertEqual(rates('p9'), (D(7), 1))
        self.assertEqual(rates('p1'), (D('8.8'), 4))
        self.assertEqual(rates('nobody'), (D(0), 0))

    # retention (needs the core's retention classes: panko.set_retention,
    # panko.expire_class)

    def test_retention_drops_old_rated_data_only(self):
        now = datetime.datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        old = now - datetime.timedelta(days=5)
        self.conf.set_override('retention_period', 48, 'storage')
        self.storage.init()
        self.storage.push([frame(old, [('instance', point(1, 1, 'p1'))]),
                           frame(now, [('instance', point(1, 2, 'p1'))])])
        with common.admin() as cur:
            cur.execute("SELECT count(*) FROM panko.record_events(%s::jsonb)",
                        ('[{"message_id": "plain-old", "event_type": "compute.instance.exists",'
                         ' "generated": "%s", "traits": []}]' % old.strftime('%Y-%m-%dT%H:%M:%S'),))
            cur.execute("SELECT panko.expire_class('rating')")
            self.assertEqual(cur.fetchone()[0], 1)
            cur.execute("SELECT message_id FROM panko.events WHERE generated = %s", (old,))
            self.assertEqual(cur.fetchall(), [('plain-old',)])
        r = self.storage.total(begin=old - datetime.timedelta(days=1), end=now + datetime.timedelta(days=1))
        self.assertEqual(r['results'][0]['rate'], D(2))

    # CloudKitty's loader

    def test_entry_point_and_options(self):
        self.conf.set_override('backend', 'panko', 'storage')
        self.conf.set_override('version', 2, 'storage')
        s = storage.get_storage()
        self.assertIsInstance(s, backend.PankoStorage)
        self.assertIn('connection', cfg.CONF.storage_panko)
        self.assertTrue([o for o in backend.panko_storage_opts if o.name == 'connection'][0].secret)
        self.conf.set_override('connection', 'mysql://x', 'storage_panko')
        with self.assertRaises(connection.ConnectionStringError):
            backend.PankoStorage()

    def test_defaults_are_the_current_month(self):
        start = tzutils.get_month_start()
        self.storage.push([frame(start, [('instance', point(1, 7, 'p1'))]),
                           frame(start - datetime.timedelta(hours=2), [('instance', point(1, 100, 'p1'))])])
        self.assertEqual(self.storage.total()['results'][0]['rate'], D(7))
        self.assertEqual(self.storage.retrieve()['total'], 1)


if __name__ == '__main__':
    unittest.main()
