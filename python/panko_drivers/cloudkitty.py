"""CloudKitty's v2 storage backend on panko (``[storage] backend = panko``).

Rated data points are events of the panko store, of types
``cloudkitty.<metric type>``; every query is a SQL function of the
extension (``panko.rating_push_frames``, ``rating_retrieve``, ``rating_total``,
``rating_delete``, ``rating_init``), and this module only translates
CloudKitty's arguments and results.  Quantities and prices travel and are
stored as exact decimal strings, and come back as ``decimal.Decimal``.

Configuration::

    [storage]
    version = 2
    backend = panko

    [storage_panko]
    connection = postgresql://cloudkitty:secret@db.example.org/panko
"""

import datetime
import decimal
import json
import os

from oslo_config import cfg
from oslo_log import log

from cloudkitty import dataframe
from cloudkitty.storage import v2 as v2_storage
from cloudkitty.utils import tz as tzutils

from panko_drivers import connection

LOG = log.getLogger(__name__)

CONF = cfg.CONF

PANKO_STORAGE_GROUP = 'storage_panko'

panko_storage_opts = [
    cfg.StrOpt(
        'connection',
        secret=True,
        default='postgresql://',
        help='libpq URI of the PostgreSQL database with the panko extension '
             '(postgresql://user:password@host:5432/dbname, '
             'postgresql:///dbname?host=/run/postgresql, or the same with '
             'panko://).'),
]

CONF.register_opts(panko_storage_opts, PANKO_STORAGE_GROUP)

APPLICATION_NAME = 'cloudkitty'

# the value types a groupby or metadata is sent with unchanged
_STRINGS = frozenset((str,))

InvalidInput = connection.InvalidInput
PankoError = connection.PankoError


def _panko_uri(uri):
    """A libpq URI (postgresql:// or postgres://) or panko:// -> panko://."""
    if isinstance(uri, str):
        scheme, sep, rest = uri.partition('://')
        if sep and scheme.lower() in ('postgresql', 'postgres'):
            return 'panko://' + rest
    return uri


def _utc(dt, what):
    if not isinstance(dt, datetime.datetime):
        raise InvalidInput('%s must be a datetime, not %s'
                           % (what, type(dt).__name__))
    return tzutils.local_to_utc(dt)


def _decimal_text(value, what):
    """Plain notation of an exact Decimal (no exponent): what is stored."""
    if value.__class__ is decimal.Decimal and value.is_finite():
        return format(value, 'f')
    if isinstance(value, float):
        value = str(value)
    try:
        d = decimal.Decimal(value)
    except (decimal.InvalidOperation, TypeError, ValueError):
        raise InvalidInput('%s %r is not a decimal number' % (what, value))
    if not d.is_finite():
        raise InvalidInput('%s %r is not a finite decimal number' % (what, value))
    return format(d, 'f')


def _attributes(mapping, what):
    """A point's groupby or metadata as sent: names are non-empty strings,
    values strings (None is "", anything else its str())."""
    if mapping is None:
        return None
    if mapping.__class__ is not dict and not isinstance(mapping, dict):
        try:
            mapping = dict(mapping)
        except (TypeError, ValueError):
            raise InvalidInput('%s must be a mapping, not %s'
                               % (what, type(mapping).__name__))
    for k, v in mapping.items():
        if k.__class__ is not str or not k or v.__class__ is not str:
            break
    else:
        return mapping
    out = {}
    for k, v in mapping.items():
        if not isinstance(k, str) or not k:
            raise InvalidInput('%s keys must be non-empty strings: %r' % (what, k))
        out[k] = v if isinstance(v, str) else ('' if v is None else str(v))
    return out


def _filters(filters, what):
    if filters is None:
        return None
    if not isinstance(filters, dict):
        raise InvalidInput('%s must be a dict, not %s'
                           % (what, type(filters).__name__))
    return json.dumps(filters, default=str)


def _metric_types(metric_types):
    if metric_types is None or metric_types == []:
        return None
    if isinstance(metric_types, str):
        return [metric_types]
    if (not isinstance(metric_types, (list, tuple))
            or not all(isinstance(t, str) for t in metric_types)):
        raise InvalidInput('metric_types must be a string or a list of strings')
    return list(metric_types)


def _int(value, what):
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput('%s must be an integer, not %r' % (what, value))
    return value


class PankoStorage(v2_storage.BaseStorage):
    """CloudKitty's v2 storage in panko's PostgreSQL event store."""

    def __init__(self, *args, **kwargs):
        super(PankoStorage, self).__init__(*args, **kwargs)
        self._default_period = kwargs.get('period') or CONF.collect.period
        self._conn = connection.Connection(
            _panko_uri(CONF.storage_panko.connection), APPLICATION_NAME)

    def _call(self, what, sql, params):
        return self._conn.call(what, sql, params, fetch='one')

    def init(self):
        """Rated data is kept for [storage] retention_period hours."""
        seconds = int(self.get_retention().total_seconds())
        self._call('init', 'SELECT panko.rating_init(%s)', (seconds,))

    # push

    @staticmethod
    def _shaped(mapping, what, shapes):
        """A groupby or metadata as [shape, value, ...]: the values of the
        names of the push's shape number <shape>, so that a push of points
        with the same names sends (and the server parses) each name once."""
        if mapping is None:
            return None
        if isinstance(mapping, dict):
            # names seen before were checked then; string values are sent
            # as they are (a fifth of a push's time was these checks)
            shape = shapes.get(tuple(mapping))
            if shape is not None:
                values = list(mapping.values())
                if set(map(type, values)) <= _STRINGS:
                    return [shape, *values]
        mapping = _attributes(mapping, what)
        names = tuple(mapping)
        shape = shapes.get(names)
        if shape is None:
            shape = shapes[names] = len(shapes)
        return [shape, *mapping.values()]

    @classmethod
    def _point(cls, type_, point, shapes):
        """[metric, unit, qty, price, groupby, metadata]: the server checks
        and stores it (panko.rating_push_frames)."""
        return [type_, point.unit if point.unit.__class__ is str else str(point.unit),
                _decimal_text(point.qty, 'qty'), _decimal_text(point.price, 'price'),
                cls._shaped(point.groupby, 'groupby', shapes),
                cls._shaped(point.metadata, 'metadata', shapes)]

    def push(self, dataframes, scope_id=None):
        """Store every point of the dataframes in one transaction."""
        if dataframes is None:
            return
        if not isinstance(dataframes, (list, tuple)):
            raise InvalidInput('dataframes must be a list of DataFrame, not %s'
                               % type(dataframes).__name__)
        frames = []
        shapes = {}
        count = 0
        for frame in dataframes:
            if not isinstance(frame, dataframe.DataFrame):
                raise InvalidInput('dataframes must hold DataFrame objects, not %s'
                                   % type(frame).__name__)
            start = _utc(frame.start, 'a dataframe\'s start')
            end = _utc(frame.end, 'a dataframe\'s end')
            period = int((end - start).total_seconds())
            if period <= 0:
                raise InvalidInput('a dataframe ends (%s) before it starts (%s)'
                                   % (frame.end, frame.start))
            points = []
            for type_, point in frame.iterpoints():
                if not type_ or not (type_.__class__ is str or isinstance(type_, str)):
                    raise InvalidInput('a metric type must be a non-empty string')
                if point.__class__ is not dataframe.DataPoint and not isinstance(point, dataframe.DataPoint):
                    raise InvalidInput('a dataframe holds DataPoint objects, not %s'
                                       % type(point).__name__)
                points.append(self._point(type_, point, shapes))
            count += len(points)
            frames.append({'start': start.isoformat(), 'period': period, 'points': points})
        if count:
            # the push's id names its points' message_ids: the same push
            # sent again finds its copies
            doc = {'push': os.urandom(16).hex(),
                   'scope': None if scope_id is None else str(scope_id),
                   'shapes': list(shapes),
                   'frames': frames}
            self._call('push', 'SELECT panko.rating_push_frames(%s::jsonb)',
                       (json.dumps(doc, separators=(',', ':')),))

    # retrieve

    @staticmethod
    def _check_begin_end(begin, end):
        begin = begin or tzutils.get_month_start()
        end = end or tzutils.get_next_month()
        return _utc(begin, 'begin'), _utc(end, 'end')

    @staticmethod
    def _paging(offset, limit, paginate):
        if not paginate:
            return 0, None
        return _int(offset, 'offset'), _int(limit, 'limit')

    def _frame(self, start, period, local):
        """An empty DataFrame for a period the server wrote as naive UTC
        ISO text: begin and end in the local timezone, as tzutils.dt_from_iso
        and tzutils.add_delta make them (whole seconds; the end a period
        later in UTC), without their pure-Python ISO parser and their two
        conversions of the end.  A retrieve page has a frame per hour, whose
        end is the next one's begin: local keeps the call's conversions."""
        begin = datetime.datetime.fromisoformat(start).replace(
            tzinfo=datetime.timezone.utc, microsecond=0)
        end = begin + datetime.timedelta(seconds=period or self._default_period)
        for t in (begin, end):
            if t not in local:
                local[t] = tzutils.utc_to_local(t)
        return dataframe.DataFrame(start=local[begin], end=local[end])

    def retrieve(self, begin=None, end=None, filters=None, group_filters=None,
                 metric_types=None, offset=0, limit=1000, paginate=True):
        begin, end = self._check_begin_end(begin, end)
        offset, limit = self._paging(offset, limit, paginate)
        doc = self._call(
            'retrieve',
            'SELECT panko.rating_retrieve(%s, %s, %s, %s::jsonb, %s::jsonb, %s, %s)::text',
            (begin, end, _metric_types(metric_types), _filters(filters, 'filters'),
             _filters(group_filters, 'group_filters'), offset, limit))
        doc = json.loads(doc)
        frames = {}
        local = {}
        for start, period, type_, unit, qty, price, groupby, metadata in doc['points']:
            key = (start, period)
            frame = frames.get(key)
            if frame is None:
                frame = frames[key] = self._frame(start, period, local)
            frame.add_point(dataframe.DataPoint(
                unit, decimal.Decimal(qty), decimal.Decimal(price),
                groupby, metadata), type_)
        output = list(frames.values())
        output.sort(key=lambda f: (f.start, f.end))
        return {'total': doc['total'], 'dataframes': output}

    # total

    def total(self, groupby=None, begin=None, end=None, metric_types=None,
              filters=None, group_filters=None, custom_fields=None,
              offset=0, limit=1000, paginate=True):
        begin, end = self._check_begin_end(begin, end)
        offset, limit = self._paging(offset, limit, paginate)
        if groupby is not None and (
                not isinstance(groupby, (list, tuple))
                or not all(isinstance(g, str) for g in groupby)):
            raise InvalidInput('groupby must be a list of strings')
        if custom_fields is not None and not isinstance(custom_fields, str):
            raise InvalidInput('custom_fields must be a string such as '
                               '"SUM(qty) AS qty, SUM(price) AS rate"')
        groupby = list(groupby or [])
        doc = json.loads(self._call(
            'total',
            'SELECT panko.rating_total(%s, %s, %s::text[], %s, %s::jsonb, %s::jsonb, %s, %s, %s)::text',
            (begin, end, groupby, _metric_types(metric_types),
             _filters(filters, 'filters'), _filters(group_filters, 'group_filters'),
             custom_fields, offset, limit)))
        local_begin = tzutils.utc_to_local(begin)
        local_end = tzutils.utc_to_local(end)
        results = []
        for keys, values in doc['results']:
            result = {'begin': local_begin, 'end': local_end}
            if 'time' in groupby:
                # keys: one per groupby entry, then the period's length
                start = tzutils.dt_from_iso(keys[groupby.index('time')] + '+00:00')
                result['begin'] = start
                result['end'] = tzutils.add_delta(start, datetime.timedelta(
                    seconds=keys[-1] or self._default_period))
            for name, value in zip(doc['fields'], values):
                result[name] = None if value is None else decimal.Decimal(value)
            for name, key in zip(groupby, keys):
                if name != 'time':
                    result[name] = key
            results.append(result)
        return {'total': doc['total'], 'results': results}

    # delete

    def delete(self, begin=None, end=None, filters=None):
        self._call('delete', 'SELECT panko.rating_delete(%s, %s, %s::jsonb)',
                   (_utc(begin, 'begin') if begin else None,
                    _utc(end, 'end') if end else None,
                    _filters(filters, 'filters')))
