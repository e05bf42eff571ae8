/*
 * trace_report.c
 *		panko.trace_report_json(base_id): the report of one OSProfiler trace,
 *		the tree osprofiler.drivers.base.Driver._parse_results builds, in
 *		one pass.
 *
 * One kept statement reads the trace's -start and -stop notifications from
 * the GIN index on traits (base_id); the spans are put together in memory
 * (a hash by trace_id), each span's children sorted as _build_tree sorts
 * them, and the JSON text is written once, with the keys in the order
 * osprofiler's dicts have them: no row becomes a text or a json of its own,
 * and the result is not parsed again.  panko.trace_report, SECURITY
 * DEFINER owned by panko_query, calls it, so row-level security judges the
 * caller.
 */
#include "postgres.h"

#include "common/hashfn.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "panko.h"
#include "traits.h"

PG_FUNCTION_INFO_V1(trace_report_json);

/* One notification: the -start or the -stop of a span. */
typedef struct TraceNote
{
	TimestampTz at;
	bool		stop;
	char	   *trace_id;
	char	   *parent_id;
	char	   *name;
	JsonbContainer *raw;
} TraceNote;

/* One span: what _append_results makes of its notifications. */
typedef struct TraceSpan
{
	TraceNote  *first;			/* the notification seen first */
	TraceNote  *second;			/* the other one, or NULL */
	TraceNote  *start;
	TraceNote  *stop;
	int			seen;			/* rank of its first notification */
	int64		started;		/* ms after the trace's first notification */
	int64		finished;
	char	   *op;				/* the name up to its first '-' */
	struct TraceSpan **children;
	int			nchildren;
	int			maxchildren;
} TraceSpan;

/* One operation's stats: its spans' count and summed duration. */
typedef struct TraceOp
{
	const char *op;
	int64		count;
	int64		duration;
} TraceOp;

/* A string-keyed hash entry: spans by trace_id, stats by operation. */
typedef struct NameEntry
{
	const char *key;
	void	   *value;
	uint32		hash;
	char		status;
} NameEntry;

#define SH_PREFIX			names
#define SH_ELEMENT_TYPE		NameEntry
#define SH_KEY_TYPE			const char *
#define SH_KEY				key
#define SH_HASH_KEY(tb, k)	hash_bytes((const unsigned char *) (k), strlen(k))
#define SH_EQUAL(tb, a, b)	(strcmp((a), (b)) == 0)
#define SH_STORE_HASH
#define SH_GET_HASH(tb, a)	((a)->hash)
#define SH_SCOPE			static inline
#define SH_DECLARE
#define SH_DEFINE
#include "lib/simplehash.h"

static SPIPlanPtr plan_notes = NULL;

/*
 * The trace's notifications: the same plan as the SQL version had (a
 * bitmap scan of each partition's GIN index on traits, the event type a
 * filter: "+ 0" keeps its own index out), the event type ids looked up
 * once per call (init plans).
 */
static const char notes_sql[] =
"SELECT e.generated, "
"       e.event_type_id OPERATOR(pg_catalog.=) "
"         (SELECT t.id FROM panko.event_type t WHERE t.name OPERATOR(pg_catalog.=) 'osprofiler.stop'), "
"       e.raw "
"  FROM panko.event e "
" WHERE e.traits OPERATOR(panko.@>) $1 "
"   AND (e.event_type_id OPERATOR(pg_catalog.+) 0) IN "
"       ((SELECT t.id FROM panko.event_type t WHERE t.name OPERATOR(pg_catalog.=) 'osprofiler.start'), "
"        (SELECT t.id FROM panko.event_type t WHERE t.name OPERATOR(pg_catalog.=) 'osprofiler.stop'))";

/* A member of a JSON object, or NULL (also when c is not an object). */
static JsonbValue *
Member(JsonbContainer *c, const char *key)
{
	if (c == NULL || !JsonContainerIsObject(c))
		return NULL;
	return getKeyJsonValueFromContainer(c, key, strlen(key), NULL);
}

/*
 * A string member of a stored notification, as a C string: trace_notify
 * requires these, so a row without one was stored some other way.
 */
static char *
NoteString(JsonbContainer *raw, const char *key, const char *base_id)
{
	JsonbValue *v = Member(raw, key);

	if (v == NULL || v->type != jbvString)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("a notification of trace %s has no %s string", base_id, key),
				 errdetail("Every OSProfiler notification carries base_id, trace_id, parent_id and name as strings."),
				 errhint("Store OSProfiler notifications with panko.trace_notify.")));
	return pnstrdup(v->val.string.val, v->val.string.len);
}

/* A JSON value as its text (JSON null when v is NULL), as jsonb writes it. */
static void
AppendValue(StringInfo buf, JsonbValue *v)
{
	if (v == NULL)
		APPEND_LITERAL(buf, "null");
	else
		AppendJsonbValue(buf, v);
}

/* An integer, without a format string. */
static void
AppendInt(StringInfo buf, int64 n)
{
	char		digits[MAXINT8LEN + 1];
	int			len = pg_lltoa(n, digits);

	appendBinaryStringInfo(buf, digits, len);
}

/* Notifications in the order they happened: time, a start first, trace_id. */
static int
CompareNotes(const void *a, const void *b)
{
	const TraceNote *x = (const TraceNote *) a;
	const TraceNote *y = (const TraceNote *) b;

	if (x->at != y->at)
		return x->at < y->at ? -1 : 1;
	if (x->stop != y->stop)
		return x->stop ? 1 : -1;
	return strcmp(x->trace_id, y->trace_id);
}

/* Siblings as _build_tree's stable sort leaves them: by start, then seen. */
static int
CompareSpans(const void *a, const void *b)
{
	const TraceSpan *x = *(TraceSpan *const *) a;
	const TraceSpan *y = *(TraceSpan *const *) b;

	if (x->started != y->started)
		return x->started < y->started ? -1 : 1;
	return x->seen < y->seen ? -1 : (x->seen > y->seen);
}

/* Append a child to a span's list (or to the roots'). */
static void
AddChild(TraceSpan ***list, int *n, int *max, TraceSpan *child)
{
	if (*n == *max)
	{
		*max = *max == 0 ? 4 : *max * 2;
		*list = *list == NULL ? palloc(sizeof(TraceSpan *) * *max)
			: repalloc(*list, sizeof(TraceSpan *) * *max);
	}
	(*list)[(*n)++] = child;
}

/*
 * What one notification adds to its span's info, in _append_results'
 * order: its raw payload, then started, or finished and exception.
 */
static void
AppendNote(StringInfo buf, TraceSpan *s, TraceNote *n)
{
	StringInfoData key;

	initStringInfo(&key);
	APPEND_LITERAL(&key, "meta.raw_payload.");
	appendStringInfoString(&key, n->name);
	APPEND_LITERAL(buf, ", ");
	AppendJsonString(buf, key.data, key.len);
	APPEND_LITERAL(buf, ": ");
	AppendJsonb(buf, n->raw);
	pfree(key.data);
	if (n->stop)
	{
		JsonbValue *info = Member(n->raw, "info");
		JsonbValue *etype = NULL;

		APPEND_LITERAL(buf, ", \"finished\": ");
		AppendInt(buf, s->finished);
		APPEND_LITERAL(buf, ", \"exception\": ");
		if (info != NULL && info->type == jbvBinary)
			etype = Member(info->val.binary.data, "etype");
		if (etype != NULL)
			AppendValue(buf, etype);
		else
			APPEND_LITERAL(buf, "\"None\"");
	}
	else
	{
		APPEND_LITERAL(buf, ", \"started\": ");
		AppendInt(buf, s->started);
	}
}

/* A span and, depth first, its children: a node of the report's tree. */
static void
AppendSpan(StringInfo buf, TraceSpan *s)
{
	JsonbValue *info = Member(s->first->raw, "info");

	check_stack_depth();
	CHECK_FOR_INTERRUPTS();
	APPEND_LITERAL(buf, "{\"info\": {\"name\": ");
	AppendJsonString(buf, s->op, strlen(s->op));
	APPEND_LITERAL(buf, ", \"project\": ");
	AppendValue(buf, Member(s->first->raw, "project"));
	APPEND_LITERAL(buf, ", \"service\": ");
	AppendValue(buf, Member(s->first->raw, "service"));
	APPEND_LITERAL(buf, ", \"host\": ");
	AppendValue(buf, info != NULL && info->type == jbvBinary
				? Member(info->val.binary.data, "host") : NULL);
	AppendNote(buf, s, s->first);
	if (s->second != NULL)
		AppendNote(buf, s, s->second);
	/* _parse_results: a span without its start or its stop lasts 0 ms */
	if (s->start == NULL)
	{
		APPEND_LITERAL(buf, ", \"started\": ");
		AppendInt(buf, s->started);
	}
	if (s->stop == NULL)
	{
		APPEND_LITERAL(buf, ", \"finished\": ");
		AppendInt(buf, s->finished);
	}
	APPEND_LITERAL(buf, "}, \"trace_id\": ");
	AppendJsonString(buf, s->first->trace_id, strlen(s->first->trace_id));
	APPEND_LITERAL(buf, ", \"parent_id\": ");
	AppendJsonString(buf, s->first->parent_id, strlen(s->first->parent_id));
	APPEND_LITERAL(buf, ", \"children\": [");
	for (int i = 0; i < s->nchildren; i++)
	{
		if (i > 0)
			APPEND_LITERAL(buf, ", ");
		AppendSpan(buf, s->children[i]);
	}
	APPEND_LITERAL(buf, "]}");
}

/*
 * panko.trace_report_json(base_id) -> json: the report of the trace, as
 * text written once; P0002 when no notification of it is visible.
 */
Datum
trace_report_json(PG_FUNCTION_ARGS)
{
	char	   *base_id;
	TraitPair	pair;
	Traits	   *key;
	Oid			argtypes[1];
	Datum		values[1];
	StringInfoData buf;
	int			rc;
	uint64		nnotes;
	TraceNote  *notes;
	TraceSpan  *spans;
	int			nspans = 0;
	names_hash *by_trace;
	names_hash *by_op;
	TraceOp    *ops;
	int			nops = 0;
	TraceSpan **roots = NULL;
	int			nroots = 0;
	int			maxroots = 0;
	TimestampTz t0 = 0;
	TimestampTz t1 = 0;
	TimestampTz last_start = 0;
	bool		any_start = false;
	Size		raw_bytes = 0;

	if (PG_ARGISNULL(0) || VARSIZE_ANY_EXHDR(PG_GETARG_TEXT_PP(0)) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("A trace's base_id must be a non-empty string")));
	base_id = text_to_cstring(PG_GETARG_TEXT_PP(0));

	/* the filter's value, built once (not per partition or per row) */
	memset(&pair, 0, sizeof(pair));
	pair.name = "base_id";
	pair.namelen = 7;
	pair.type = TRAIT_STRING;
	pair.str = base_id;
	pair.strlen = strlen(base_id);
	TraitCheckValue(&pair);
	key = TraitsBuild(&pair, 1);

	/*
	 * The answer is written here, in the caller's context, with room for the
	 * varlena header: it becomes the result as it is.
	 */
	initStringInfo(&buf);
	appendStringInfoSpaces(&buf, VARHDRSZ);

	PankoSPIConnect();
	argtypes[0] = PankoTypeOid("traits");
	PankoKeepPlan(&plan_notes, notes_sql, 1, argtypes, CURSOR_OPT_GENERIC_PLAN);
	values[0] = PointerGetDatum(key);
	rc = SPI_execute_plan(plan_notes, values, NULL, true, 0);
	if (rc != SPI_OK_SELECT)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("panko: reading trace %s failed: %s", base_id, SPI_result_code_string(rc))));
	nnotes = SPI_processed;
	if (nnotes == 0)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("Trace %s not found", base_id),
				 errhint("No notification of this trace is stored, or none is visible to this role.")));
	if (nnotes > (uint64) (MaxAllocSize / sizeof(TraceSpan)))
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("trace %s has too many notifications to report: " UINT64_FORMAT, base_id, nnotes)));

	notes = palloc(sizeof(TraceNote) * nnotes);
	for (uint64 r = 0; r < nnotes; r++)
	{
		HeapTuple	row = SPI_tuptable->vals[r];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		Datum		d;
		Jsonb	   *raw;
		TraceNote  *n = &notes[r];

		n->at = DatumGetTimestampTz(SPI_getbinval(row, desc, 1, &isnull));
		d = SPI_getbinval(row, desc, 2, &isnull);
		n->stop = !isnull && DatumGetBool(d);
		d = SPI_getbinval(row, desc, 3, &isnull);
		raw = isnull ? NULL : DatumGetJsonbP(d);
		if (raw == NULL || !JB_ROOT_IS_OBJECT(raw))
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("a notification of trace %s is not a JSON object", base_id),
					 errhint("Store OSProfiler notifications with panko.trace_notify.")));
		n->raw = &raw->root;
		raw_bytes += VARSIZE(raw);
		n->trace_id = NoteString(n->raw, "trace_id", base_id);
		n->parent_id = NoteString(n->raw, "parent_id", base_id);
		n->name = NoteString(n->raw, "name", base_id);
	}
	qsort(notes, nnotes, sizeof(TraceNote), CompareNotes);

	/*
	 * The report is about as long as the notifications it holds, plus each
	 * span's own keys: room for it at once, so the buffer is not copied and
	 * faulted in again at every doubling.
	 */
	if (raw_bytes < MaxAllocSize / 4 && nnotes < MaxAllocSize / 1024)
		enlargeStringInfo(&buf, (int) (raw_bytes + raw_bytes / 4 + nnotes * 160));

	/*
	 * _append_results, in that order: a span per trace_id, its name and
	 * parent from its first notification.  A span has one start and one stop
	 * (their message_ids); another copy, stored some other way, is not the
	 * span's.
	 */
	spans = palloc0(sizeof(TraceSpan) * nnotes);
	by_trace = names_create(CurrentMemoryContext, nnotes, NULL);
	t0 = notes[0].at;
	t1 = notes[nnotes - 1].at;
	for (uint64 r = 0; r < nnotes; r++)
	{
		TraceNote  *n = &notes[r];
		bool		found;
		NameEntry  *e = names_insert(by_trace, n->trace_id, &found);
		TraceSpan  *s;

		if (!found)
		{
			s = &spans[nspans];
			s->seen = nspans++;
			s->first = n;
			e->value = s;
		}
		s = (TraceSpan *) e->value;
		if (!n->stop)
		{
			last_start = n->at;
			any_start = true;
		}
		if (n->stop ? s->stop != NULL : s->start != NULL)
			continue;
		if (n != s->first)
			s->second = n;
		if (n->stop)
			s->stop = n;
		else
			s->start = n;
	}

	/* _parse_results: offsets in ms, the stats by operation as first seen */
	ops = palloc(sizeof(TraceOp) * nspans);
	by_op = names_create(CurrentMemoryContext, 64, NULL);
	for (int i = 0; i < nspans; i++)
	{
		TraceSpan  *s = &spans[i];
		TimestampTz from = s->start ? s->start->at : s->stop->at;
		TimestampTz to = s->stop ? s->stop->at : s->start->at;
		const char *dash = strchr(s->first->name, '-');
		bool		found;
		NameEntry  *e;
		TraceOp    *op;

		s->started = (from - t0) / 1000;
		s->finished = (to - t0) / 1000;
		s->op = dash ? pnstrdup(s->first->name, dash - s->first->name) : s->first->name;
		e = names_insert(by_op, s->op, &found);
		if (!found)
		{
			op = &ops[nops++];
			op->op = s->op;
			op->count = 0;
			op->duration = 0;
			e->value = op;
		}
		op = (TraceOp *) e->value;
		op->count++;
		op->duration += s->finished - s->started;
	}

	/*
	 * _build_tree: a span whose parent is in the trace is its child, the
	 * others are roots; spans on a cycle of parents are reached from no root
	 * and are not in the tree (their stats count).
	 */
	for (int i = 0; i < nspans; i++)
	{
		TraceSpan  *s = &spans[i];
		NameEntry  *e = names_lookup(by_trace, s->first->parent_id);

		if (e != NULL)
		{
			TraceSpan  *p = (TraceSpan *) e->value;

			AddChild(&p->children, &p->nchildren, &p->maxchildren, s);
		}
		else
			AddChild(&roots, &nroots, &maxroots, s);
	}
	for (int i = 0; i < nspans; i++)
		if (spans[i].nchildren > 1)
			qsort(spans[i].children, spans[i].nchildren, sizeof(TraceSpan *), CompareSpans);
	if (nroots > 1)
		qsort(roots, nroots, sizeof(TraceSpan *), CompareSpans);

	APPEND_LITERAL(&buf, "{\"info\": {\"name\": \"total\", \"started\": 0, \"finished\": ");
	AppendInt(&buf, (t1 - t0) / 1000);
	APPEND_LITERAL(&buf, ", \"last_trace_started\": ");
	if (any_start)
		AppendInt(&buf, (last_start - t0) / 1000);
	else
		APPEND_LITERAL(&buf, "null");
	APPEND_LITERAL(&buf, "}, \"children\": [");
	for (int i = 0; i < nroots; i++)
	{
		if (i > 0)
			APPEND_LITERAL(&buf, ", ");
		AppendSpan(&buf, roots[i]);
	}
	APPEND_LITERAL(&buf, "], \"stats\": {");
	for (int i = 0; i < nops; i++)
	{
		if (i > 0)
			APPEND_LITERAL(&buf, ", ");
		AppendJsonString(&buf, ops[i].op, strlen(ops[i].op));
		APPEND_LITERAL(&buf, ": {\"count\": ");
		AppendInt(&buf, ops[i].count);
		APPEND_LITERAL(&buf, ", \"duration\": ");
		AppendInt(&buf, ops[i].duration);
		APPEND_LITERAL(&buf, "}");
	}
	APPEND_LITERAL(&buf, "}}");
	SPI_finish();

	SET_VARSIZE(buf.data, buf.len);
	PG_RETURN_POINTER(buf.data);
}
