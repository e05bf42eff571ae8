"""The connection every panko adapter shares: ``panko://`` strings, one
libpq connection per process, SQLSTATEs turned into Python exceptions.

A connection string is ``panko://`` followed by the rest of a libpq URI:

    panko://user:password@host:5432/dbname
    panko:///dbname?host=/run/postgresql
    panko://                     (libpq's defaults: PGHOST, PGDATABASE, ...)

It becomes ``postgresql://`` + the same rest, and libpq reads it (every
libpq parameter works, e.g. ``?sslmode=verify-full`` or
``?options=-csynchronous_commit%3Doff``).

Adapters call SQL functions of the panko extension and nothing else; this
module knows no query.
"""

import logging
import os
import re
import threading
import time

import psycopg2
import psycopg2.extensions

LOG = logging.getLogger(__name__)

SCHEME = "panko"

# How long a process waits, after failing to connect, before it tries again
# (writes in between are dropped: a service must not stall on its tracer).
RECONNECT_DELAY = 5.0


class PankoError(Exception):
    """Something panko refused or could not do; ``message`` says what.

    The attribute is what OSProfiler's CLI prints (it reads ``e.message``).
    """

    def __init__(self, message, sqlstate=None):
        super().__init__(message)
        self.message = message
        self.sqlstate = sqlstate


class ConnectionStringError(PankoError, ValueError):
    """A connection string that is not ``panko://`` + a libpq URI."""


class InvalidInput(PankoError, ValueError):
    """panko refused an argument (SQLSTATE class 22)."""


class NotFound(PankoError, LookupError):
    """What was asked for is not stored, or not visible (SQLSTATE P0002)."""


class DatabaseUnavailable(PankoError):
    """The database could not be reached."""


def redact(connection_string):
    """The connection string with its password hidden, for messages."""
    s = re.sub(r"(://[^/?#@]*?:)[^/?#@]*@", r"\1***@", connection_string)
    return re.sub(r"([?&]password=)[^&#]*", r"\1***", s)


def to_libpq(connection_string):
    """``panko://...`` -> ``postgresql://...``; ConnectionStringError otherwise."""
    if not isinstance(connection_string, str):
        raise ConnectionStringError(
            "A panko connection string is a string, not %s"
            % type(connection_string).__name__)
    scheme, sep, rest = connection_string.partition("://")
    if not sep or scheme.lower() != SCHEME:
        raise ConnectionStringError(
            "Malformed panko connection string %r: it must start with "
            "panko:// (e.g. panko://user:password@host:5432/dbname or "
            "panko:///dbname?host=/run/postgresql)" % redact(connection_string))
    uri = "postgresql://" + rest
    try:
        params = psycopg2.extensions.parse_dsn(uri)
    except psycopg2.ProgrammingError as e:
        detail = str(e).strip().replace(uri, redact(uri))
        raise ConnectionStringError(
            "Malformed panko connection string %r: %s"
            % (redact(connection_string), detail.replace("invalid dsn: ", "")))
    for port in params.get("port", "").split(","):
        if port and not (port.isdigit() and 0 < int(port) < 65536):
            raise ConnectionStringError(
                "Malformed panko connection string %r: port %r is not a "
                "number from 1 to 65535" % (redact(connection_string), port))
    return uri, params


def raise_for(error, what):
    """Turn a psycopg2 error into the PankoError an adapter raises."""
    state = getattr(error, "pgcode", None)
    text = (getattr(getattr(error, "diag", None), "message_primary", None)
            or str(error).strip())
    if state is None:
        raise DatabaseUnavailable("%s: %s" % (what, text)) from None
    if state.startswith("22"):
        raise InvalidInput(text, state) from None
    if state == "P0002":
        raise NotFound(text, state) from None
    if state == "42501":
        raise PankoError(
            "%s: %s (the login role needs panko_writer to store and "
            "panko_auditor or panko_admin to read)" % (what, text), state) from None
    if state in ("42883", "3F000"):
        raise PankoError(
            "%s: %s (is the panko extension, version 0.4.0 or later, installed "
            "in this database? CREATE EXTENSION panko, or ALTER EXTENSION "
            "panko UPDATE)" % (what, text), state) from None
    raise PankoError("%s: %s" % (what, text), state) from None


class Connection(object):
    """One libpq connection per process, made when first needed, made
    again after a fork or a lost connection; autocommit (every call is one
    statement, so one transaction)."""

    def __init__(self, connection_string, application_name):
        self.connection_string = connection_string
        self.uri, params = to_libpq(connection_string)
        self._kwargs = {"fallback_application_name": application_name}
        if "connect_timeout" not in params:
            self._kwargs["connect_timeout"] = 10
        self._conn = None
        self._pid = None
        self._lock = threading.Lock()
        self._failed_at = None
        self._inherited = []

    def _connect(self):
        if self._conn is not None and self._pid != os.getpid():
            # A forked child must not use (or close: that would end the
            # parent's session) the parent's connection.
            self._inherited.append(self._conn)
            self._conn = None
        if self._conn is not None and not self._conn.closed:
            return self._conn
        conn = psycopg2.connect(self.uri, **self._kwargs)
        conn.autocommit = True
        self._conn, self._pid, self._failed_at = conn, os.getpid(), None
        return conn

    def call(self, what, sql, params=(), fetch="all", retry_later=False):
        """Run one statement and return its rows (fetch="all") or its
        first value (fetch="one").  A connection lost before or during the
        call is made again once; panko's writes are idempotent (a
        notification stored twice is a duplicate), so repeating is safe.

        retry_later: after a failure to connect, return None at once for
        RECONNECT_DELAY seconds instead of trying again (for writers that
        must never stall their caller)."""
        with self._lock:
            if (retry_later and self._failed_at is not None
                    and time.monotonic() - self._failed_at < RECONNECT_DELAY):
                return None
            for attempt in (1, 2):
                try:
                    conn = self._connect()
                    with conn.cursor() as cur:
                        cur.execute(sql, params)
                        if fetch == "one":
                            row = cur.fetchone()
                            return row[0] if row else None
                        return cur.fetchall()
                except (psycopg2.OperationalError, psycopg2.InterfaceError) as e:
                    state = getattr(e, "pgcode", None) or ""
                    broken = (self._conn is None or self._conn.closed
                              or state.startswith(("08", "57P")))
                    if state and not broken:
                        raise_for(e, what)
                    self._drop()
                    if attempt == 2:
                        self._failed_at = time.monotonic()
                        raise_for(e, "%s (%s)" % (what, redact(self.connection_string)))
                except psycopg2.Error as e:
                    raise_for(e, what)

    def _drop(self):
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:  # noqa: the connection is gone anyway
                pass
        self._conn = None

    def close(self):
        with self._lock:
            if self._pid == os.getpid():
                self._drop()

