"""Kaneda's panko backend: an application's metrics and events in panko.

    from kaneda import Metrics
    from panko_drivers.kaneda import PankoBackend

    backend = PankoBackend('myapp', connection_url='postgresql://kaneda@db/panko')
    metrics = Metrics(backend=backend)
    metrics.gauge('answer_of_life', 42)

or, from a Kaneda settings module (kanedasettings.py, or Django's
settings with the KANEDA_ prefix):

    BACKEND = 'panko_drivers.kaneda.PankoBackend'
    PANKO_APP_NAME = 'myapp'
    PANKO_CONNECTION_URL = 'postgresql://kaneda@db.example.org/panko'

Each report() is one call of panko.metric_report(jsonb), which stores the
report as an event of type kaneda.<metric> and keeps the rollup the series
functions read (panko.metric_series, metric_running_total, metric_latest,
metric_events).  This module only builds the JSON and bounds the call.

Like Kaneda's own backends, report() never raises into the application: a
report that cannot be stored (database down, timeout, a value JSON cannot
carry, a report panko rejects) is logged and dropped, and the call returns
within ``timeout`` seconds (connecting included: the connection is libpq's
asynchronous one, polled against a deadline).  The login role needs
panko_writer.

Durability is the caller's choice:
  batch_size=1 (default)   every report is one transaction, committed
                           before report() returns;
  batch_size=N             reports are kept in this process and stored N at
                           a time (or after flush_interval seconds, at
                           flush(), close() and interpreter exit): a crash
                           of the process loses the reports not yet sent;
  synchronous_commit=False the server acknowledges a commit before it is
                           on disk: a crash of the database server loses
                           the last few hundred milliseconds of reports
                           (never half a report; the store stays
                           consistent).
"""

import atexit
import datetime
import decimal
import json
import logging
import os
import re
import select
import socket
import threading
import time
import uuid
import weakref

import psycopg2
import psycopg2.extensions

from panko_drivers import connection

try:  # Kaneda is not in Debian; its interface is small enough to stand in.
    from kaneda.backends import BaseBackend as _BaseBackend
except ImportError:
    class _BaseBackend(object):
        """Kaneda's kaneda.backends.BaseBackend, when kaneda is absent."""

        def _get_payload(self, name, value, tags):
            payload = {"host": socket.gethostname(), "name": name}
            if isinstance(value, dict):
                payload.update(value)
            else:
                payload["value"] = value
            if tags:
                payload["tags"] = tags
            return payload

        def report(self, name, metric, value, tags, id_):
            raise NotImplementedError()

LOG = logging.getLogger(__name__)

# After a failure to reach the database, reports are dropped without a
# try for this long (so a dead database costs the application nothing).
RETRY_DELAY = 1.0

_SQL = "SELECT ord, status, detail FROM panko.metric_report(%s::jsonb)"
_NUL = re.compile(r"(?<!\\)((?:\\\\)*)\\u0000")


class ReportTimeout(Exception):
    """The database did not answer within the backend's timeout."""


def _json_default(o):
    if isinstance(o, (datetime.datetime, datetime.date, datetime.time)):
        return o.isoformat()
    if isinstance(o, decimal.Decimal):
        return float(o)
    if isinstance(o, (set, frozenset, tuple)):
        return list(o)
    raise TypeError("a %s is not a value panko can store" % type(o).__name__)


def _wait(conn, deadline):
    """Poll an asynchronous psycopg2 connection until it is done, or raise
    ReportTimeout at the deadline."""
    while True:
        state = conn.poll()
        if state == psycopg2.extensions.POLL_OK:
            return
        left = deadline - time.monotonic()
        if left <= 0:
            raise ReportTimeout("no answer within the timeout (a report sent may still be stored)")
        if state == psycopg2.extensions.POLL_READ:
            select.select([conn.fileno()], [], [], left)
        elif state == psycopg2.extensions.POLL_WRITE:
            select.select([], [conn.fileno()], [], left)
        else:
            raise psycopg2.OperationalError("bad poll state %r" % state)


def _dsn(connection_url, host, port, user, password, db_name):
    """A libpq connection string from Kaneda's arguments."""
    if connection_url is not None:
        if not isinstance(connection_url, str):
            raise connection.ConnectionStringError(
                "connection_url must be a string, not %s" % type(connection_url).__name__)
        if connection_url.lower().startswith(connection.SCHEME + "://"):
            return connection.to_libpq(connection_url)[0]
        try:
            psycopg2.extensions.parse_dsn(connection_url)
        except psycopg2.ProgrammingError as e:
            raise connection.ConnectionStringError(
                "Malformed connection_url %r: %s" % (connection.redact(connection_url),
                                                     str(e).strip())) from None
        return connection_url
    parts = {"host": host, "port": port, "user": user, "password": password, "dbname": db_name}
    return psycopg2.extensions.make_dsn(**{k: str(v) for k, v in parts.items() if v is not None})


class PankoBackend(_BaseBackend):
    """Kaneda backend storing reports in panko (see the module's doc)."""

    settings_namespace = "PANKO"

    def __init__(self, app_name, client=None, connection_url=None, host=None,
                 port=None, user=None, password=None, db_name=None, timeout=0.3,
                 batch_size=1, flush_interval=1.0, synchronous_commit=True):
        if not isinstance(app_name, str) or not app_name:
            raise connection.InvalidInput("app_name must be a non-empty string, not %r" % (app_name,))
        try:
            timeout = float(timeout)
            batch_size = int(batch_size)
            flush_interval = float(flush_interval)
        except (TypeError, ValueError):
            raise connection.InvalidInput(
                "timeout and flush_interval are seconds and batch_size a count") from None
        if not timeout > 0 or batch_size < 1 or not flush_interval > 0:
            raise connection.InvalidInput(
                "timeout and flush_interval must be positive and batch_size at least 1")
        self.app_name = app_name
        self.timeout = timeout
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.client = client
        self.host = socket.gethostname()
        self._dsn = None
        if client is None:
            dsn = _dsn(connection_url, host, port, user, password, db_name)
            options = psycopg2.extensions.parse_dsn(dsn).get("options", "")
            # The server stops the statement before the client gives up on
            # it (a client that closes its socket does not stop a statement
            # waiting for a lock), so a report logged as dropped is not
            # stored afterwards.
            options += " -c statement_timeout=%d" % max(1, int(timeout * 800))
            if not synchronous_commit:
                options += " -c synchronous_commit=off"
            self._dsn = psycopg2.extensions.make_dsn(
                dsn, options=options.strip(), fallback_application_name="panko-kaneda")
        self._conn = None
        self._pid = os.getpid()
        self._lock = threading.RLock()
        self._buffer = []
        self._timer = None
        self._failed_at = None
        self.dropped = 0
        ref = weakref.ref(self)
        atexit.register(lambda: ref() is not None and ref().flush())

    # -- Kaneda's interface -------------------------------------------------

    def report(self, name, metric, value, tags, id_=None):
        """Store one report (what every Metrics method calls).

        Returns True when stored, False for a report whose id_ was stored
        before, None when it is buffered (batch_size > 1) or dropped
        (logged).  Never raises."""
        try:
            item = {"app_name": self.app_name, "name": name, "metric": metric,
                    "value": value, "host": self.host,
                    "time": datetime.datetime.now(datetime.timezone.utc).isoformat()}
            if tags:
                item["tags"] = sorted(tags) if isinstance(tags, (set, frozenset)) else tags
            if id_ is not None:
                item["id"] = id_ if isinstance(id_, (str, int)) and not isinstance(id_, bool) else str(id_)
            else:
                item["key"] = uuid.uuid4().hex
            text = json.dumps(item, default=_json_default, allow_nan=False, separators=(",", ":"))
            if "\\u0000" in text:
                text = _NUL.sub(r"\1\\ufffd", text)
        except Exception as e:  # noqa: nothing may reach the application
            self._log_drop(1, "%s %r: %s" % (metric, name, e))
            return None
        with self._lock:
            self._after_fork()
            self._buffer.append(text)
            if len(self._buffer) >= self.batch_size:
                return self._flush_locked()
            if self._timer is None:
                self._timer = threading.Timer(self.flush_interval, self.flush)
                self._timer.daemon = True
                self._timer.start()
            return None

    # -- batching -----------------------------------------------------------

    def flush(self):
        """Send the buffered reports now (one transaction); never raises."""
        try:
            with self._lock:
                self._after_fork()
                if self._buffer:
                    self._flush_locked()
        except Exception as e:  # noqa: e.g. at interpreter exit
            LOG.error("panko: flushing Kaneda reports failed: %s", e)

    def close(self):
        """Flush, then close the connection this backend made."""
        self.flush()
        with self._lock:
            if self._pid == os.getpid():
                self._drop_conn()

    def _after_fork(self):
        if self._pid != os.getpid():
            # A child neither sends its parent's buffered reports (the
            # parent does) nor uses (or closes) its connection.
            self._pid, self._conn, self._buffer, self._timer = os.getpid(), None, [], None

    def _flush_locked(self):
        items, self._buffer = self._buffer, []
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if (self._failed_at is not None
                and time.monotonic() - self._failed_at < RETRY_DELAY):
            self._log_drop(len(items), "the database was unreachable %.1f s ago"
                           % (time.monotonic() - self._failed_at))
            return None
        payload = "[" + ",".join(items) + "]"
        deadline = time.monotonic() + self.timeout
        try:
            rows = self._execute(payload, deadline)
        except Exception as e:  # noqa: logged, never raised
            self._failed_at = time.monotonic()
            self._log_drop(len(items), "%s: %s" % (type(e).__name__, str(e).strip()))
            return None
        self._failed_at = None
        result = True
        for ord_, status, detail in rows:
            if status == "duplicate":
                result = False
                LOG.debug("panko: Kaneda report %s already stored", ord_)
            else:
                result = None
                self._log_drop(1, "report %s of %d rejected: %s" % (ord_, len(items), detail))
        return result if len(items) == 1 else None

    def _execute(self, payload, deadline):
        if self.client is not None:
            return self._execute_client(payload, deadline)
        for attempt in (1, 2):
            fresh = self._conn is None or self._conn.closed
            try:
                if fresh:
                    self._conn = None
                    conn = psycopg2.connect(self._dsn, async_=True)
                    self._conn = conn
                    _wait(conn, deadline)
                cur = self._conn.cursor()
                cur.execute(_SQL, (payload,))
                _wait(self._conn, deadline)
                rows = cur.fetchall()
                cur.close()
                return rows
            except (psycopg2.OperationalError, psycopg2.InterfaceError, OSError) as e:
                # A connection lost since the last call: once more on a new
                # one, if time is left (reports carry keys, so a report the
                # lost call stored is not stored twice).
                self._drop_conn()
                if fresh or attempt == 2 or time.monotonic() >= deadline:
                    raise
                LOG.info("panko: Kaneda connection lost (%s), reconnecting", str(e).strip())
            except ReportTimeout:
                self._drop_conn()
                raise
            except psycopg2.Error as e:
                connection.raise_for(e, "storing Kaneda reports")

    def _execute_client(self, payload, deadline):
        """On the application's own connection; a timer cancels a
        statement still running at the deadline."""
        conn = self.client
        if getattr(conn, "async_", False):
            cur = conn.cursor()
            cur.execute(_SQL, (payload,))
            _wait(conn, deadline)
            return cur.fetchall()
        timer = threading.Timer(max(0.0, deadline - time.monotonic()), conn.cancel)
        timer.daemon = True
        timer.start()
        try:
            with conn.cursor() as cur:
                cur.execute(_SQL, (payload,))
                rows = cur.fetchall()
            if not conn.autocommit:
                conn.commit()
            return rows
        except psycopg2.Error:
            if not conn.closed and not conn.autocommit:
                conn.rollback()
            raise
        finally:
            timer.cancel()

    def _drop_conn(self):
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # noqa: it is gone anyway
                pass

    def _log_drop(self, n, why):
        self.dropped += n
        LOG.error("panko: %d Kaneda report(s) of app %s dropped (%d so far): %s",
                  n, self.app_name, self.dropped, why)
