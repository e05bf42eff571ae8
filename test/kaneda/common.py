"""What the Kaneda tests share: connection strings from run.sh, an admin
connection, and Kaneda's Metrics calls as the manual documents them.

Metrics (kaneda.base.Metrics) turns each method into one backend call,
backend.report(name, metric, value, tags, id_):
    event(name, text, tags)           report(name, 'event', text, tags, None)
    gauge(name, value, tags)          report(name, 'gauge', value, tags, None)
    increment(name, tags)             report(name, 'counter', 1, tags, None)
    decrement(name, tags)             report(name, 'counter', -1, tags, None)
    timing(name, value, tags)         report(name, 'timing', value, tags, None)
    custom(name, metric, value, tags, id_)  report(name, metric, value, tags, id_)
    timed(name, tags, use_ms)         timing(name, elapsed, tags): elapsed
                                      seconds (float), or int(round(ms))
                                      with use_ms; name defaults to
                                      module.function
Kaneda is not in Debian, so this is the caller the tests use."""
import functools
import os
import time

import psycopg2

DSN = os.environ["PANKO_KN_WRITER"]        # postgresql://...user=kn_writer
ADMIN = os.environ["PANKO_KN_ADMIN_DSN"]   # superuser


def admin():
    c = psycopg2.connect(ADMIN)
    c.autocommit = True
    return c


class Metrics(object):
    def __init__(self, backend):
        self.backend = backend

    def _report(self, name, metric, value, tags, id_=None):
        return self.backend.report(name, metric, value, tags, id_)

    def event(self, name, text, tags=None):
        return self._report(name, 'event', text, tags)

    def gauge(self, name, value, tags=None):
        return self._report(name, 'gauge', value, tags)

    def increment(self, name, tags=None):
        return self._report(name, 'counter', 1, tags)

    def decrement(self, name, tags=None):
        return self._report(name, 'counter', -1, tags)

    def timing(self, name, value, tags=None):
        return self._report(name, 'timing', value, tags)

    def custom(self, name, metric, value, tags=None, id_=None):
        return self._report(name, metric, value, tags, id_)

    def timed(self, name=None, tags=None, use_ms=None):
        metrics = self

        class _Timed(object):
            def __call__(self, f):
                @functools.wraps(f)
                def wrapped(*a, **kw):
                    n = name or '%s.%s' % (f.__module__, f.__name__)
                    start = time.time()
                    try:
                        return f(*a, **kw)
                    finally:
                        elapsed = time.time() - start
                        if use_ms:
                            elapsed = int(round(1000 * elapsed))
                        metrics.timing(n, elapsed, tags)
                return wrapped

            def __enter__(self):
                self.start = time.time()

            def __exit__(self, *exc):
                elapsed = time.time() - self.start
                if use_ms:
                    elapsed = int(round(1000 * elapsed))
                metrics.timing(name, elapsed, tags)
        return _Timed()


def backend_from_settings(settings, prefix=''):
    """Kaneda's kaneda.utils: BACKEND names the class; every setting that
    starts with its settings_namespace + '_' becomes a keyword argument,
    lower-cased, without the prefix (Django: the same with KANEDA_)."""
    import importlib
    path = getattr(settings, prefix + 'BACKEND')
    module, cls = path.rsplit('.', 1)
    backend_cls = getattr(importlib.import_module(module), cls)
    ns = prefix + backend_cls.settings_namespace + '_'
    kwargs = {k[len(ns):].lower(): getattr(settings, k) for k in dir(settings) if k.startswith(ns)}
    return backend_cls(**kwargs)
