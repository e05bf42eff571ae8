/*
 * metric.c
 *		Kaneda's metrics in C: panko.metric_series, a metric's buckets, from
 *		panko.metric_rollup alone where whole minutes and hours allow.
 *
 * A dashboard's series has whole-minute (or whole-hour) buckets, so every
 * bucket is a sum of rollup rows.  In SQL that is a GROUP BY over the rows
 * (hash, then sort) whose cost is several times that of reading them.  The
 * rows come out of the rollup's primary key in time order, hours before
 * minutes, so the buckets are added up here as the rows stream past: one
 * kept statement per level, a receiver of our own, and no hash and no
 * sort.  metric_series is SECURITY DEFINER owned by panko_query, as the
 * other read functions, so row-level security on the rollup applies.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "tcop/dest.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "panko.h"

PG_FUNCTION_INFO_V1(metric_series);

/* The rollup's levels (panko.metric_rollup.width), in seconds. */
#define METRIC_MINUTE	60
#define METRIC_HOUR		3600

/* The series being added up, and where its buckets go. */
typedef struct MetricSeries
{
	DestReceiver pub;			/* must be first */
	TimestampTz from;			/* bucket k is [from + k*width, ...+width) */
	TimestampTz to;
	int64		width;			/* microseconds */
	Tuplestorestate *out;
	TupleDesc	outdesc;
	int64		k;				/* the bucket being added up, or -1 */
	int64		count;
	double		sum;
	double		min;
	double		max;
} MetricSeries;

/* Write the bucket being added up, if there is one. */
static void
EmitBucket(MetricSeries *s)
{
	Datum		values[7];
	bool		nulls[7] = {false};
	TimestampTz start;

	if (s->k < 0)
		return;
	start = s->from + s->k * s->width;
	values[0] = TimestampTzGetDatum(start);
	values[1] = TimestampTzGetDatum(Min(start + s->width, s->to));
	values[2] = Int64GetDatum(s->count);
	values[3] = Float8GetDatum(s->sum);
	values[4] = Float8GetDatum(s->sum / (double) s->count);
	values[5] = Float8GetDatum(s->min);
	values[6] = Float8GetDatum(s->max);
	tuplestore_putvalues(s->out, s->outdesc, values, nulls);
	s->k = -1;
}

/* One rollup row (bucket, n, total, low, high), in time order. */
static bool
SeriesReceive(TupleTableSlot *slot, DestReceiver *self)
{
	MetricSeries *s = (MetricSeries *) self;
	TimestampTz bucket;
	int64		k,
				n;
	double		total,
				low,
				high;

	slot_getallattrs(slot);
	if (slot->tts_isnull[0] || slot->tts_isnull[1] || slot->tts_isnull[2] ||
		slot->tts_isnull[3] || slot->tts_isnull[4])
		return true;			/* (the columns are NOT NULL) */
	bucket = DatumGetTimestampTz(slot->tts_values[0]);
	n = DatumGetInt64(slot->tts_values[1]);
	total = DatumGetFloat8(slot->tts_values[2]);
	low = DatumGetFloat8(slot->tts_values[3]);
	high = DatumGetFloat8(slot->tts_values[4]);
	if (bucket < s->from || bucket >= s->to || n <= 0)
		return true;
	k = (bucket - s->from) / s->width;
	if (k < s->k)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("panko: rollup rows out of time order")));
	if (k != s->k)
	{
		EmitBucket(s);
		s->k = k;
		s->count = n;
		s->sum = total;
		s->min = low;
		s->max = high;
		return true;
	}
	s->count += n;
	s->sum += total;
	s->min = Min(s->min, low);
	s->max = Max(s->max, high);
	return true;
}

static void
SeriesStartup(DestReceiver *self, int operation, TupleDesc typeinfo)
{
}

static void
SeriesShutdown(DestReceiver *self)
{
}

static void
SeriesDestroy(DestReceiver *self)
{
}

/* The rows of one level in [lo, hi), streamed into the series. */
static void
ReadLevel(MetricSeries *s, text *name, int width, TimestampTz lo,
		  TimestampTz hi, text *app)
{
	static SPIPlanPtr plan = NULL;
	Oid			types[5] = {TEXTOID, INT4OID, TIMESTAMPTZOID, TIMESTAMPTZOID, TEXTOID};
	Datum		values[5];
	char		nulls[5] = {' ', ' ', ' ', ' ', ' '};

	if (lo >= hi)
		return;
	PankoKeepPlan(&plan,
				  "SELECT r.bucket, r.n, r.total, r.low, r.high"
				  "  FROM panko.metric_rollup r"
				  " WHERE r.name = $1 AND r.width = $2"
				  "   AND r.bucket >= $3 AND r.bucket < $4"
				  "   AND ($5 IS NULL OR r.app_name = $5)"
				  " ORDER BY r.bucket",
				  5, types, 0);
	values[0] = PointerGetDatum(name);
	values[1] = Int32GetDatum(width);
	values[2] = TimestampTzGetDatum(lo);
	values[3] = TimestampTzGetDatum(hi);
	values[4] = PointerGetDatum(app);
	nulls[4] = (app == NULL) ? 'n' : ' ';
	PankoRunPlan(plan, PankoParams(values, nulls, types, 5), 0, &s->pub, "metric rollup");
}

/* panko.metric_check_window(bucket, from, to): the bucket in microseconds. */
static int64
CheckWindow(FunctionCallInfo fcinfo)
{
	static SPIPlanPtr plan = NULL;
	Oid			types[3] = {INTERVALOID, TIMESTAMPTZOID, TIMESTAMPTZOID};
	Datum		values[3];
	char		nulls[3];
	bool		isnull;
	Datum		w;

	for (int i = 0; i < 3; i++)
	{
		values[i] = PG_GETARG_DATUM(i + 1);
		nulls[i] = PG_ARGISNULL(i + 1) ? 'n' : ' ';
	}
	PankoKeepPlan(&plan, "SELECT panko.metric_check_window($1, $2, $3)", 3, types, 0);
	if (SPI_execute_plan(plan, values, nulls, true, 1) != SPI_OK_SELECT || SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("panko: metric_check_window failed")));
	w = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (isnull)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("a bucket and a window are required"),
				 errhint("e.g. panko.metric_series('requests', '1 minute', now() - interval '1 hour', now())")));
	return DatumGetInt64(w);
}

/* No tag filter: NULL, JSON null, [] or {}. */
static bool
NoTags(FunctionCallInfo fcinfo, int arg)
{
	Jsonb	   *tags;

	if (PG_ARGISNULL(arg))
		return true;
	tags = PG_GETARG_JSONB_P(arg);
	if (JB_ROOT_COUNT(tags) == 0 && !JB_ROOT_IS_SCALAR(tags))
		return true;			/* [] or {} */
	if (JB_ROOT_IS_SCALAR(tags))
	{
		JsonbValue	v;

		if (JsonbExtractScalar(&tags->root, &v) && v.type == jbvNull)
			return true;
	}
	return false;
}

/* The general case: metric_buckets reads the reports where it must. */
static void
SeriesFromBuckets(FunctionCallInfo fcinfo, Tuplestorestate *out, int64 w)
{
	static SPIPlanPtr plan = NULL;
	Oid			types[6] = {TEXTOID, TIMESTAMPTZOID, TIMESTAMPTZOID, INT8OID, JSONBOID, TEXTOID};
	/* $1 name, $2 from, $3 to, $4 the width, $5 tags, $6 app */
	int			arg[6] = {0, 2, 3, -1, 4, 5};
	Datum		values[6];
	char		nulls[6];

	PankoKeepPlan(&plan,
				  "SELECT timestamptz 'epoch' + (panko.metric_us($2) + b.k * $4) * interval '1 microsecond',"
				  "       least(timestamptz 'epoch' + (panko.metric_us($2) + (b.k + 1) * $4)"
				  "             * interval '1 microsecond', $3),"
				  "       b.n, b.total, b.total / b.n, b.low, b.high"
				  "  FROM panko.metric_buckets($1, $2, $3, $4, $5, $6) b"
				  " ORDER BY b.k",
				  6, types, 0);
	for (int i = 0; i < 6; i++)
	{
		values[i] = arg[i] < 0 ? Int64GetDatum(w) : PG_GETARG_DATUM(arg[i]);
		nulls[i] = (arg[i] >= 0 && PG_ARGISNULL(arg[i])) ? 'n' : ' ';
	}
	if (SPI_execute_plan(plan, values, nulls, true, 0) != SPI_OK_SELECT)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("panko: metric_buckets failed")));
	for (uint64 i = 0; i < SPI_processed; i++)
		tuplestore_puttuple(out, SPI_tuptable->vals[i]);
}

/*
 * panko.metric_series(name, bucket, from, to, tags, app): a metric's
 * numeric reports per bucket.  The dashboard's case (no tag filter, every
 * boundary a whole minute, and whole hours or at most a day) is answered
 * from the rollup alone: its hours in [from, hx), its minutes in [hx, to).
 * Anything else goes to metric_buckets, which reads the reports where the
 * rollup cannot answer.  SECURITY DEFINER owned by panko_query: row-level
 * security judges the caller.
 */
Datum
metric_series(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	MetricSeries s;
	TimestampTz hx;
	int64		minute = METRIC_MINUTE * USECS_PER_SEC;
	int64		hour = METRIC_HOUR * USECS_PER_SEC;

	InitMaterializedSRF(fcinfo, 0);
	PankoSPIConnect();
	memset(&s, 0, sizeof(s));
	s.width = CheckWindow(fcinfo);
	if (PG_ARGISNULL(2) || PG_ARGISNULL(3))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("a window [from, to) is required")));
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("A metric name is required")));
	s.from = PG_GETARG_TIMESTAMPTZ(2);
	s.to = PG_GETARG_TIMESTAMPTZ(3);
	s.out = rsinfo->setResult;
	s.outdesc = rsinfo->setDesc;

	/* (TimestampTz counts from 2000-01-01, a whole hour, like the epoch) */
	if (!NoTags(fcinfo, 4) || s.width % minute != 0 || s.from % minute != 0 ||
		s.to % minute != 0 ||
		!(s.to - s.from <= USECS_PER_DAY ||
		  (s.width % hour == 0 && s.from % hour == 0)))
	{
		SeriesFromBuckets(fcinfo, s.out, s.width);
		SPI_finish();
		return (Datum) 0;
	}

	hx = s.from;
	if (s.width % hour == 0 && s.from % hour == 0)
		hx = s.from + ((s.to - s.from) / hour) * hour;
	s.k = -1;
	s.pub.receiveSlot = SeriesReceive;
	s.pub.rStartup = SeriesStartup;
	s.pub.rShutdown = SeriesShutdown;
	s.pub.rDestroy = SeriesDestroy;
	s.pub.mydest = DestNone;
	ReadLevel(&s, PG_GETARG_TEXT_PP(0), METRIC_HOUR, s.from, hx,
			  PG_ARGISNULL(5) ? NULL : PG_GETARG_TEXT_PP(5));
	ReadLevel(&s, PG_GETARG_TEXT_PP(0), METRIC_MINUTE, hx, s.to,
			  PG_ARGISNULL(5) ? NULL : PG_GETARG_TEXT_PP(5));
	EmitBucket(&s);
	SPI_finish();
	return (Datum) 0;
}
