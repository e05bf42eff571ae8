"""OSProfiler's ``panko://`` driver: traces in panko's event store.

    [profiler]
    enabled = true
    connection_string = panko://osprofiler:secret@db.example.org/panko

Every method is one call of a SQL function of the panko extension, which
holds the logic (psql users get the same answers):

    notify(info)          panko.trace_notify(notification)
    get_report(base_id)   panko.trace_report(base_id)     the tree, built in SQL
    list_traces(fields)   panko.trace_list(fields, limit)
    list_error_traces()   panko.trace_errors()

OSProfiler finds a driver among the subclasses of ``base.Driver``, so this
module must be imported before ``base.get_driver()`` runs: ``make install``
puts a ``.pth`` file next to the package that does it the moment
``osprofiler.drivers`` is imported (``panko_drivers._autoload``), so
services and the ``osprofiler`` CLI need no change.

The login role needs ``panko_writer`` to store notifications and
``panko_auditor`` (or ``panko_admin``) to read traces: traces carry no
project_id, so row-level security shows them to those roles and to admin
identities only.
"""

import logging
import re

from oslo_serialization import jsonutils
from osprofiler.drivers import base
from osprofiler import exc

from panko_drivers import connection

LOG = logging.getLogger(__name__)

# PostgreSQL's jsonb has no NUL character: a traced SQL parameter may hold
# one.  It is stored as U+FFFD (an escaped backslash before "u0000" is not
# a NUL and stays).
_NUL = re.compile(r"(?<!\\)((?:\\\\)*)\\u0000")

# What OSProfiler's drivers return for a trace they have no notification of
# (Driver._parse_results over nothing); the CLI then says "not found".
_EMPTY_REPORT = {
    "info": {"name": "total", "started": 0, "finished": None,
             "last_trace_started": None},
    "children": [],
    "stats": {},
}


_CLI_ERRORS = {}


def _for_cli(error):
    """The same error, also an osprofiler.exc.CommandError: OSProfiler's
    CLI prints those as a message (anything else as a traceback)."""
    cls = type(error)
    if cls not in _CLI_ERRORS:
        _CLI_ERRORS[cls] = type(cls.__name__, (cls, exc.CommandError), {"__module__": __name__})
    return _CLI_ERRORS[cls](error.message, error.sqlstate)


def _read(db, what, sql, params, fetch="all"):
    try:
        return db.call(what, sql, params, fetch=fetch)
    except connection.NotFound:
        raise
    except connection.PankoError as e:
        raise _for_cli(e) from None


class PankoDriver(base.Driver):
    """OSProfiler driver for panko:// connection strings."""

    def __init__(self, connection_str, project=None, service=None, host=None,
                 **kwargs):
        super(PankoDriver, self).__init__(connection_str, project=project,
                                          service=service, host=host, **kwargs)
        # A malformed string is refused here (ConnectionStringError); the
        # database is reached when first needed, and again after a failure.
        self._db = connection.Connection(connection_str, "panko-osprofiler")
        self._dropped = 0

    @classmethod
    def get_name(cls):
        return "panko"

    def notify(self, info, context=None, **kwargs):
        """Store one notification.

        The notification gets this driver's project and service, as
        OSProfiler's Redis and MongoDB drivers do.  A notification without
        its ids (base_id, trace_id, parent_id), name or timestamp raises
        InvalidInput (a ValueError) and nothing is stored.  When the
        database cannot be reached the notification is dropped and logged:
        a traced service never fails because of its tracer.

        Returns True when stored, False for a copy already stored, None
        when dropped.
        """
        if not isinstance(info, dict):
            raise connection.InvalidInput(
                "An OSProfiler notification is a dict, not %s"
                % type(info).__name__)
        data = dict(info)
        if self.project is not None or "project" not in data:
            data["project"] = self.project
        if self.service is not None or "service" not in data:
            data["service"] = self.service
        text = jsonutils.dumps(data)
        if "\\u0000" in text:
            text = _NUL.sub(r"\1\\ufffd", text)
        try:
            stored = self._db.call("storing an OSProfiler notification",
                                   "SELECT panko.trace_notify(%s::jsonb)",
                                   (text,), fetch="one",
                                   retry_later=True)
            return None if stored is None else stored > 0
        except connection.InvalidInput:
            raise
        except connection.PankoError as e:
            self._dropped += 1
            LOG.error("OSProfiler notification %s of trace %s dropped "
                      "(%d so far): %s", data.get("trace_id"),
                      data.get("base_id"), self._dropped, e.message)
            return None

    def get_report(self, base_id):
        """The trace's report, as osprofiler.drivers.base builds it; for a
        base_id with no visible notification, the empty report every
        OSProfiler driver returns."""
        if not isinstance(base_id, str) or not base_id:
            raise connection.InvalidInput(
                "A trace's base_id must be a non-empty string, not %r"
                % (base_id,))
        try:
            return _read(self._db, "reading OSProfiler trace %s" % base_id,
                         "SELECT panko.trace_report(%s)", (base_id,), fetch="one")
        except connection.NotFound:
            return {"info": dict(_EMPTY_REPORT["info"]), "children": [],
                    "stats": {}}

    def list_traces(self, fields=None, limit=None):
        """Traces, newest first: base_id and timestamp of each, and the
        fields asked for (of the trace's first notification: name,
        trace_id, parent_id, project, service, host, info).  limit: at
        most that many (all by default, as OSProfiler's interface says)."""
        if fields is None:
            fields = []
        elif isinstance(fields, str) or not all(isinstance(f, str) for f in fields):
            raise connection.InvalidInput(
                "fields must be a collection of field names, not %r" % (fields,))
        rows = _read(self._db, "listing OSProfiler traces",
                     "SELECT t.trace FROM panko.trace_list(%s::text[], %s) t",
                     (sorted(set(fields)), limit))
        return [r[0] for r in rows]

    def list_error_traces(self):
        """Traces in which some -stop notification carries an error
        (info.etype), newest first: base_id and timestamp (the first
        error's) of each."""
        rows = _read(self._db, "listing OSProfiler error traces",
                     "SELECT t.trace FROM panko.trace_errors() t", ())
        return [r[0] for r in rows]
