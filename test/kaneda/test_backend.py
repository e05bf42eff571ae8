"""PankoBackend called exactly as Kaneda's Metrics calls it, against a real
cluster: what each method stores, settings modules, duplicate ids, a
database that is down or silent, batching."""
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
import types
import unittest
import uuid

from panko_drivers import kaneda as pk
from common import ADMIN, DSN, Metrics, admin, backend_from_settings

HERE = os.path.dirname(os.path.abspath(__file__))


def stored(app):
    """Every report of an app: event type, traits as a dict, raw."""
    with admin() as c, c.cursor() as cur:
        cur.execute("""SELECT t.name, panko.traits_to_jsonb(e.traits)::text, e.raw, e.message_id,
                              (SELECT jsonb_object_agg(x.name, x.type) FROM panko.each_trait(e.traits) x)
                         FROM panko.event e JOIN panko.event_type t ON t.id = e.event_type_id
                        WHERE panko.trait_text(e.traits, 'app_name') = %s ORDER BY e.generated, e.message_id""", (app,))
        out = []
        for etype, traits, raw, mid, typesmap in cur.fetchall():
            d = {x["name"]: x["value"] for x in json.loads(traits)}
            out.append((etype, d, raw, mid, typesmap))
        return out


class TestMetrics(unittest.TestCase):
    def setUp(self):
        self.app = 'app-' + uuid.uuid4().hex[:8]
        self.backend = pk.PankoBackend(self.app, connection_url=DSN)
        self.m = Metrics(self.backend)

    def tearDown(self):
        self.backend.close()

    def test_gauge_list_tags(self):
        self.assertTrue(self.m.gauge('users.notifications', 13, tags=['new_message', 'follow_request']))
        [(etype, t, raw, mid, ty)] = stored(self.app)
        self.assertEqual(etype, 'kaneda.gauge')
        self.assertEqual(t['name'], 'users.notifications')
        self.assertEqual((t['value'], ty['value']), ('13', 'integer'))
        self.assertEqual((t['tag.new_message'], t['tag.follow_request']), ('new_message', 'follow_request'))
        self.assertEqual(t['host'], socket.gethostname())
        self.assertEqual(t['app_name'], self.app)
        self.assertIsNone(raw)

    def test_increment_decrement_dict_tags(self):
        self.assertTrue(self.m.increment('user.profile.views', tags={'from': 'login', 'n': 2}))
        self.assertTrue(self.m.decrement('hotel.occupation'))
        rows = stored(self.app)
        self.assertEqual([r[0] for r in rows], ['kaneda.counter', 'kaneda.counter'])
        self.assertEqual((rows[0][1]['value'], rows[0][4]['value']), ('1', 'integer'))
        self.assertEqual((rows[0][1]['tags.from'], rows[0][1]['tags.n'], rows[0][4]['tags.n']), ('login', '2', 'integer'))
        self.assertEqual(rows[1][1]['value'], '-1')
        self.assertFalse(any(k.startswith('tag') for k in rows[1][1]))

    def test_timing_float(self):
        self.assertTrue(self.m.timing('hotel.availability.request_time', 4.25, tags=['x']))
        [(etype, t, raw, mid, ty)] = stored(self.app)
        self.assertEqual((etype, t['value'], ty['value']), ('kaneda.timing', '4.25', 'float'))

    def test_event(self):
        self.assertTrue(self.m.event('user.signup', 'New user registered', tags=['web']))
        [(etype, t, raw, mid, ty)] = stored(self.app)
        self.assertEqual((etype, t['value'], ty['value'], t['tag.web']), ('kaneda.event', 'New user registered', 'string', 'web'))

    def test_custom_dict_value_with_id(self):
        v = {'status': 'ok', 'code': 200, 'ratio': 0.5, 'xml': '<a/>', 'flag': True}
        self.assertTrue(self.m.custom('hotel.response_data', metric='xml', value=v, tags={'env': 'prod'}, id_='r-1'))
        [(etype, t, raw, mid, ty)] = stored(self.app)
        self.assertEqual(etype, 'kaneda.custom')
        self.assertEqual(t['metric'], 'xml')
        self.assertEqual(t['id'], 'r-1')
        self.assertEqual((t['value.status'], t['value.code'], ty['value.code'], t['value.ratio'], ty['value.ratio']),
                         ('ok', '200', 'integer', '0.5', 'float'))
        self.assertEqual((t['value.flag'], ty['value.flag']), ('1', 'integer'))
        self.assertNotIn('value', t)
        self.assertIsNone(raw)
        self.assertIn(self.app, mid)

    def test_custom_nested_value_kept_in_raw(self):
        v = {'times': [120, 230], 'start': {'a': 1}, 'n': 3}
        self.assertTrue(self.m.custom('zone.search', metric='query_time', value=v, id_=7))
        [(etype, t, raw, mid, ty)] = stored(self.app)
        self.assertEqual(raw, {'value': v})
        self.assertEqual(t['value.n'], '3')
        with admin() as c, c.cursor() as cur:
            cur.execute("SELECT panko.metric_value(e.traits, e.raw) FROM panko.event e WHERE e.message_id = %s", (mid,))
            self.assertEqual(cur.fetchone()[0], v)

    def test_duplicate_id(self):
        self.assertTrue(self.m.custom('dup', metric='score', value=5, id_='same'))
        self.assertFalse(self.m.custom('dup', metric='score', value=6, id_='same'))
        rows = stored(self.app)
        self.assertEqual(len(rows), 1)
        self.assertEqual(rows[0][1]['value'], '5')
        with admin() as c, c.cursor() as cur:
            cur.execute("SELECT sum(n), sum(total) FROM panko.metric_rollup WHERE app_name = %s AND width = 60", (self.app,))
            self.assertEqual(cur.fetchone(), (1, 5.0))
        # another app may use the same id
        other = pk.PankoBackend(self.app + 'b', connection_url=DSN)
        self.assertTrue(other.report('dup', 'score', 1, None, 'same'))
        other.close()

    def test_timed_decorator_ms_and_seconds(self):
        @self.m.timed('f.ms', use_ms=True)
        def f_ms():
            time.sleep(0.02)

        @self.m.timed(tags=['s'])
        def f_s():
            time.sleep(0.01)
        f_ms()
        f_s()
        with self.m.timed('block.s'):
            time.sleep(0.01)
        rows = stored(self.app)
        self.assertEqual([r[0] for r in rows], ['kaneda.timing'] * 3)
        by = {r[1]['name']: r for r in rows}
        ms = by['f.ms']
        self.assertEqual(ms[4]['value'], 'integer')
        self.assertTrue(18 <= int(ms[1]['value']) <= 500, ms[1])
        sec = by['test_backend.f_s']
        self.assertEqual(sec[4]['value'], 'float')
        self.assertTrue(0.009 <= float(sec[1]['value']) < 0.5)
        self.assertEqual(sec[1]['tag.s'], 's')
        self.assertEqual(by['block.s'][4]['value'], 'float')

    def test_bad_values_logged_not_raised(self):
        with self.assertLogs('panko_drivers.kaneda', 'ERROR') as logs:
            self.assertIsNone(self.m.gauge('g', float('nan')))
            self.assertIsNone(self.m.gauge('g', object()))
            self.assertIsNone(self.m.gauge('', 1))           # panko rejects an empty name
            self.assertIsNone(self.m.gauge('g', 1, tags=[3]))  # a list of tags holds strings
        self.assertEqual(len(logs.output), 4, logs.output)
        self.assertIn('rejected', logs.output[2])
        self.assertEqual(stored(self.app), [])
        self.assertTrue(self.m.gauge('g', 'text\x00with nul'))

    def test_settings_module(self):
        s = types.ModuleType('kanedasettings')
        s.BACKEND = 'panko_drivers.kaneda.PankoBackend'
        s.PANKO_APP_NAME = self.app
        s.PANKO_CONNECTION_URL = DSN
        s.PANKO_TIMEOUT = 0.5
        s.ELASTIC_HOST = 'ignored'
        b = backend_from_settings(s)
        self.assertIsInstance(b, pk.PankoBackend)
        self.assertEqual((b.app_name, b.timeout), (self.app, 0.5))
        self.assertTrue(Metrics(b).gauge('from.settings', 1))
        b.close()
        # Django: the same settings with KANEDA_
        d = types.ModuleType('settings')
        d.KANEDA_BACKEND = s.BACKEND
        d.KANEDA_PANKO_APP_NAME = self.app
        params = dict(x.split('=', 1) for x in DSN.split('?', 1)[1].split('&'))
        d.KANEDA_PANKO_HOST, d.KANEDA_PANKO_PORT = params['host'], int(params['port'])
        d.KANEDA_PANKO_USER, d.KANEDA_PANKO_DB_NAME = params['user'], DSN.split('/')[3].split('?')[0]
        b = backend_from_settings(d, 'KANEDA_')
        self.assertTrue(Metrics(b).gauge('from.django', 2))
        b.close()
        self.assertEqual(sorted(r[1]['name'] for r in stored(self.app)), ['from.django', 'from.settings'])

    def test_client_connection(self):
        import psycopg2
        conn = psycopg2.connect(DSN)
        b = pk.PankoBackend(self.app, client=conn)
        self.assertTrue(Metrics(b).gauge('client.gauge', 3))
        self.assertEqual(len(stored(self.app)), 1)
        conn.close()

    def test_database_down(self):
        s = socket.socket()
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
        s.close()   # nothing listens there
        b = pk.PankoBackend(self.app, connection_url='postgresql://kn@127.0.0.1:%d/x' % port, timeout=0.3)
        with self.assertLogs('panko_drivers.kaneda', 'ERROR') as logs:
            t = time.monotonic()
            self.assertIsNone(Metrics(b).gauge('down', 1))
            self.assertIsNone(Metrics(b).increment('down'))
            self.assertLess(time.monotonic() - t, 0.3)
        self.assertEqual(len(logs.output), 2)
        self.assertIn('dropped', logs.output[0])

    def test_database_silent(self):
        # Accepts the TCP connection and never answers: the call must end
        # at the timeout.
        s = socket.socket()
        s.bind(('127.0.0.1', 0))
        s.listen(8)
        port = s.getsockname()[1]
        try:
            b = pk.PankoBackend(self.app, connection_url='postgresql://kn@127.0.0.1:%d/x' % port, timeout=0.3)
            with self.assertLogs('panko_drivers.kaneda', 'ERROR') as logs:
                t = time.monotonic()
                self.assertIsNone(Metrics(b).timing('silent', 5))
                took = time.monotonic() - t
            self.assertGreaterEqual(took, 0.29)
            self.assertLess(took, 0.45)
            self.assertIn('ReportTimeout', logs.output[0])
        finally:
            s.close()

    def test_statement_bounded(self):
        # The database holds the call (a lock on the rollup): the call
        # ends at the timeout, logs, and the server stops the statement.
        lock = admin()
        cur = lock.cursor()
        cur.execute("BEGIN; LOCK TABLE panko.metric_rollup IN EXCLUSIVE MODE")
        try:
            b = pk.PankoBackend(self.app, connection_url=DSN, timeout=0.3)
            with self.assertLogs('panko_drivers.kaneda', 'ERROR'):
                t = time.monotonic()
                self.assertIsNone(Metrics(b).gauge('locked', 1))
                self.assertLess(time.monotonic() - t, 0.45)
            time.sleep(0.3)
        finally:
            cur.execute("ROLLBACK")
            lock.close()
        time.sleep(0.3)
        self.assertEqual(stored(self.app), [])
        b._failed_at = None   # (not wait out the retry delay)
        self.assertTrue(Metrics(b).gauge('unlocked', 1))

    def test_reconnects_after_restart_of_session(self):
        b = pk.PankoBackend(self.app, connection_url=DSN)
        self.assertTrue(Metrics(b).gauge('a', 1))
        with admin() as c, c.cursor() as cur:
            cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'panko-kaneda'")
        time.sleep(0.1)
        self.assertTrue(Metrics(b).gauge('b', 2))
        self.assertEqual(len(stored(self.app)), 2)

    def test_batching(self):
        b = pk.PankoBackend(self.app, connection_url=DSN, batch_size=50, flush_interval=0.3)
        m = Metrics(b)
        for i in range(120):
            self.assertIsNone(m.gauge('batched', i))
        self.assertEqual(len(stored(self.app)), 100)
        # the timer sends the rest (0.3 s; up to 10 s on a loaded machine)
        deadline = time.monotonic() + 10
        while len(stored(self.app)) < 120 and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertEqual(len(stored(self.app)), 120)
        m.increment('last')
        b.close()
        self.assertEqual(len(stored(self.app)), 121)

    def test_subclasses_kaneda_base_backend(self):
        code = ("import kaneda.backends, panko_drivers.kaneda as k; "
                "assert issubclass(k.PankoBackend, kaneda.backends.BaseBackend); print('ok')")
        env = dict(os.environ, PYTHONPATH=os.path.join(HERE, 'fixtures') + os.pathsep + os.environ.get('PYTHONPATH', ''))
        out = subprocess.run([sys.executable, '-c', code], env=env, capture_output=True, text=True)
        self.assertEqual(out.stdout.strip(), 'ok', out.stderr)
        # without kaneda: a plain class with the same methods
        self.assertTrue(hasattr(pk.PankoBackend, '_get_payload'))
        self.assertEqual(pk.PankoBackend.settings_namespace, 'PANKO')

    def test_bad_construction(self):
        with self.assertRaises(ValueError):
            pk.PankoBackend('', connection_url=DSN)
        with self.assertRaises(ValueError):
            pk.PankoBackend('a', connection_url='not a conninfo')
        with self.assertRaises(ValueError):
            pk.PankoBackend('a', connection_url=DSN, timeout=0)


if __name__ == '__main__':
    unittest.main()
