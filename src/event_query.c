/*
 * event_query.c
 *		panko.get_events(filter, limit, sort, marker): Panko's EventFilter,
 *		read partition by partition.
 *
 * When the sort starts with generated (the default, and every order Panko's
 * clients use), the partitions of panko.event are walked in that order,
 * newest or oldest first, and the walk stops when the page is full: a page
 * reads one or two partitions, whatever their number.  Each partition is
 * read with a statement of its own whose plan is kept for the backend's
 * life: it names the partition's own table, so a call locks and sets up
 * only the partitions it reads, and neither planning nor a new backend
 * ever builds the partition descriptor of panko.event (a parse of every
 * partition's bound).  Each partition carries the row-level security
 * policies of panko.event (panko.secure_partition copies them when the
 * partition is made), so the same policy judges the caller as for any
 * reader of panko.event; a partition without row-level security is an
 * error (event_cache.c), never a read.
 *
 * A marker or a message_id filter is first looked up in the registry of
 * message_ids (panko.event_message), which gives the partition to read; the
 * event is then read there like any other, through the policy, so a marker
 * the caller may not see gives the same error as a missing one.  When the
 * registry's partition does not hold it (a hash collision, a stale row, an
 * invisible event) the lookup falls back to all partitions.
 *
 * Partitions that cannot hold a match are skipped without being opened:
 * those outside the time window or on the wrong side of the marker, empty
 * ones (partitions made ahead of time), and sealed ones whose summary of
 * trait keys says a filter cannot match (traits_summary.c).
 *
 * Other orders (message_id first) read all partitions in one statement, as
 * one kept plan per query shape.  In both cases rows go straight from the
 * executor into the result (a tuplestore, or the API's JSON text when
 * api_get_events asks), with event type names from event_cache.c.
 */
#include "postgres.h"

#include "access/detoast.h"
#include "access/table.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "nodes/params.h"
#include "optimizer/cost.h"
#include "tcop/dest.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "common/hashfn.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#include "panko.h"
#include "traits.h"
#include "isotime.h"
#include "event_store.h"
#include "traits_summary.h"

PG_FUNCTION_INFO_V1(get_events);

#define DEFAULT_LIMIT		100
#define NPARAMS				10

/* Parameter numbers in the generated query. */
enum
{
	P_TYPE = 0, P_MESSAGE_ID, P_START, P_END, P_TRAITS, P_ADMIN, P_SCOPE,
	P_MARK_GENERATED, P_MARK_ID, P_LIMIT
};

/*
 * Set by api_get_events right before it calls get_events, which takes it
 * at once: the page is then written as the API's JSON into this buffer
 * instead of being returned as rows.
 */
StringInfo	panko_events_json_sink = NULL;

typedef struct PlanEntry
{
	uint64		key;			/* hash of the text */
	char	   *sql;			/* the text, to tell collisions apart */
	SPIPlanPtr	plan;
	uint64		used;			/* plan_clock when last used */
} PlanEntry;

static HTAB *plan_cache = NULL;
static uint64 plan_clock = 0;

/*
 * How a query with a trait filter is run.  Planning it for its values
 * costs more than running it, so when statistics say how common the filter
 * is, one of two kept plans is used instead: scan in time order and filter
 * (common values), or the GIN index and a sort (rare ones).
 */
typedef enum PlanKind
{
	PLAN_GENERIC,				/* no value-dependent condition */
	PLAN_CUSTOM,				/* planned for each call's values */
	PLAN_ORDERED,				/* kept plan: time order, then filter */
	PLAN_INDEXED				/* kept plan: GIN index, then sort */
} PlanKind;

/*
 * A page of results read in time order reads about limit / selectivity
 * rows: for 1% and more (a project, a state), that beats fetching every
 * match through the index and sorting them.
 */
#define ORDERED_MIN_SELECTIVITY 0.01

/* More trait filters than this are never looked up in the GIN index together. */
#define GIN_MAX_FILTERS		64

/* One call: the filter as parameters and conditions, the order, the page. */
typedef struct EventQuery
{
	int32		limit;
	int			nkeys;
	const char *keys[MAX_SORT_KEYS + 1];
	bool		desc[MAX_SORT_KEYS + 1];
	bool		nothing;		/* an unknown event type: matches nothing */
	Datum		values[NPARAMS];
	char		nulls[NPARAMS];
	Oid			types[NPARAMS];
	StringInfoData conds;		/* " AND ..." for the filter */
	uint32	   *skip_keys;		/* keys a sealed partition must have */
	int			nskip_keys;
	bool		probe;			/* the filter's keys count: unsealed partitions' GIN indexes are asked first */
	bool		sees_all;		/* the caller sees every event */
	bool		estimated;		/* selectivity is an estimate from statistics */
	double		gin_share;		/* of the events, what the GIN scan reads (summed) */
	char	   *marker;
	PlanKind	kind;
	double		selectivity;
} EventQuery;

/* Where the rows of a page go: a tuplestore, or JSON text. */
typedef struct EventSink
{
	DestReceiver pub;
	Tuplestorestate *store;
	TupleDesc	desc;
	StringInfo	json;
	uint64		count;
	MemoryContext rowcxt;
} EventSink;

/* A bad argument: 22023, as Panko's API answers 400. */
static void
pg_attribute_noreturn()
BadParameter(const char *msg, const char *hint)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("%s", msg),
			 hint ? errhint("%s", hint) : 0));
}

/* A string member of the filter, or NULL when absent or JSON null. */
static char *
FilterString(Jsonb *filter, const char *key)
{
	JsonbValue *v = getKeyJsonValueFromContainer(&filter->root, key, strlen(key), NULL);

	if (v == NULL || v->type == jbvNull)
		return NULL;
	if (v->type != jbvString)
		BadParameter(psprintf("%s must be a string", key), NULL);
	return pnstrdup(v->val.string.val, v->val.string.len);
}

/* An EventFilter names only Panko's keys: a typo must not match everything. */
static void
CheckFilterKeys(Jsonb *filter)
{
	static const char *const keys[] = {"event_type", "message_id", "start_timestamp",
	"end_timestamp", "traits_filter", "admin_proj"};
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;

	if (JB_ROOT_IS_SCALAR(filter) || JB_ROOT_IS_ARRAY(filter))
		BadParameter("filter must be a JSON object", NULL);
	it = JsonbIteratorInit(&filter->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		bool		known = false;

		if (tok != WJB_KEY)
			continue;
		for (int i = 0; i < (int) lengthof(keys); i++)
			if (JsonbKeyIs(&v, keys[i]))
				known = true;
		if (!known)
			BadParameter(psprintf("unknown filter key \"%.*s\"", v.val.string.len, v.val.string.val),
						 "Filter keys are event_type, message_id, start_timestamp, end_timestamp, traits_filter, admin_proj.");
	}
}

/* A timestamp bound of the filter, or 22007 naming it. */
static Timestamp
FilterTimestamp(const char *value, const char *what)
{
	Timestamp	ts;
	const char *problem;

	if (!PankoParseTimestamp(value, strlen(value), &ts, &problem))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_DATETIME_FORMAT),
				 errmsg("Invalid %s \"%s\": %s", what, value, problem)));
	return ts;
}

/* One sort item, "key[:asc|:desc]", or an error naming it. */
static void
ParseSortItem(const char *item, const char **key, bool *desc)
{
	const char *colon = strchr(item, ':');
	int			keylen = colon ? (int) (colon - item) : (int) strlen(item);
	const char *dir = colon ? colon + 1 : "asc";

	*key = NULL;
	if (keylen == 9 && strncmp(item, "generated", 9) == 0)
		*key = "generated";
	else if (keylen == 10 && strncmp(item, "message_id", 10) == 0)
		*key = "message_id";
	*desc = (strcmp(dir, "desc") == 0);
	if (*key == NULL || (!*desc && strcmp(dir, "asc") != 0))
		BadParameter(psprintf("invalid sort \"%s\"", item),
					 "Sort keys are generated and message_id, each optionally followed by :asc or :desc.");
}

/* Given keys replace the default order; message_id always ends it. */
static int
ParseSort(ArrayType *sort, const char **keys, bool *desc)
{
	int			nkeys = 0;
	Datum	   *items = NULL;
	bool	   *nulls = NULL;
	int			nitems = 0;
	bool		has_message_id = false;

	if (sort != NULL)
		deconstruct_array(sort, TEXTOID, -1, false, TYPALIGN_INT, &items, &nulls, &nitems);
	if (nitems == 0)
	{
		keys[nkeys] = "generated";
		desc[nkeys++] = false;
	}
	for (int i = 0; i < nitems; i++)
	{
		const char *key;
		bool		d;

		if (nulls[i])
			BadParameter("sort keys must not be null", NULL);
		ParseSortItem(TextDatumGetCString(items[i]), &key, &d);
		for (int j = 0; j < nkeys; j++)
			if (strcmp(keys[j], key) == 0)
				BadParameter(psprintf("sort key \"%s\" given twice", key), NULL);
		keys[nkeys] = key;
		desc[nkeys++] = d;
	}
	for (int j = 0; j < nkeys; j++)
		if (strcmp(keys[j], "message_id") == 0)
			has_message_id = true;
	if (!has_message_id)
	{
		keys[nkeys] = "message_id";
		desc[nkeys++] = false;
	}
	return nkeys;
}

/* ---------------------------------------------------------------- kept plans */

/* Forget one kept statement. */
static void
ForgetPlan(PlanEntry *entry)
{
	uint64		key = entry->key;

	if (entry->plan)
		SPI_freeplan(entry->plan);
	pfree(entry->sql);
	hash_search(plan_cache, &key, HASH_REMOVE, NULL);
}

/* For qsort: ages, oldest first. */
static int
CompareAges(const void *a, const void *b)
{
	uint64		x = *(const uint64 *) a;
	uint64		y = *(const uint64 *) b;

	return x < y ? -1 : (x > y ? 1 : 0);
}

/*
 * Make room in a full cache: forget the least recently used half, so that
 * the statements a backend keeps using (a year of partitions read by
 * trait filters is one statement each) stay planned, and the scan for the
 * oldest is paid once for every half of panko.plan_cache_size new texts.
 */
static void
ForgetOldPlans(void)
{
	long		n = hash_get_num_entries(plan_cache);
	uint64	   *ages = palloc(sizeof(uint64) * Max(n, 1));
	long		i = 0;
	uint64		cutoff;
	HASH_SEQ_STATUS seq;
	PlanEntry  *entry;

	hash_seq_init(&seq, plan_cache);
	while ((entry = hash_seq_search(&seq)) != NULL)
		ages[i++] = entry->used;
	/* the median age: a partial selection is not worth the code at this size */
	qsort(ages, i, sizeof(uint64), CompareAges);
	cutoff = ages[i / 2];
	pfree(ages);
	hash_seq_init(&seq, plan_cache);
	while ((entry = hash_seq_search(&seq)) != NULL)
		if (entry->used <= cutoff)
			ForgetPlan(entry);
}

/*
 * The plan for this query text, prepared on first use and kept.  Generic
 * plans for shapes without value-dependent conditions and for the kept
 * kinds; PLAN_CUSTOM is planned for each call's values.  The limit and,
 * for a partition's statement, its table are part of the text, so the
 * cache holds up to panko.plan_cache_size texts, and forgets the least
 * recently used half when it is full.
 */
static SPIPlanPtr
ShapePlan(const char *sql, Oid *types, int nargs, PlanKind kind)
{
	PlanEntry  *entry;
	bool		found;
	uint64		key = hash_bytes_extended((const unsigned char *) sql, strlen(sql), 0);

	if (plan_cache == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(uint64);
		ctl.entrysize = sizeof(PlanEntry);
		plan_cache = hash_create("panko get_events plans", 256, &ctl, HASH_ELEM | HASH_BLOBS);
	}
	entry = hash_search(plan_cache, &key, HASH_FIND, &found);
	if (entry != NULL && strcmp(entry->sql, sql) == 0)
	{
		entry->used = ++plan_clock;
		return entry->plan;
	}
	if (entry != NULL)
		ForgetPlan(entry);		/* another text with the same hash */
	if (hash_get_num_entries(plan_cache) >= panko_plan_cache_size)
		ForgetOldPlans();
	entry = hash_search(plan_cache, &key, HASH_ENTER, &found);
	entry->plan = NULL;
	entry->used = ++plan_clock;
	entry->sql = MemoryContextStrdup(TopMemoryContext, sql);
	PG_TRY();
	{
		PankoKeepPlan(&entry->plan, sql, nargs, types,
					  kind == PLAN_CUSTOM ? CURSOR_OPT_CUSTOM_PLAN : CURSOR_OPT_GENERIC_PLAN);
	}
	PG_CATCH();
	{
		pfree(entry->sql);
		hash_search(plan_cache, &key, HASH_REMOVE, NULL);
		PG_RE_THROW();
	}
	PG_END_TRY();
	return entry->plan;
}

/*
 * Planner settings that make a kept plan the kind asked for.  JIT is never
 * worth it for a page (and the cost of a path switched off would trigger
 * it).
 */
static void
SetPlanKind(PlanKind kind)
{
	(void) set_config_option("jit", "off", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	if (kind == PLAN_ORDERED)
	{
		/* an index scan in time order, ties sorted as they come (incremental sort) */
		(void) set_config_option("enable_bitmapscan", "off", PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
		(void) set_config_option("enable_seqscan", "off", PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
		(void) set_config_option("enable_sort", "off", PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
	}
	else if (kind == PLAN_INDEXED)
	{
		(void) set_config_option("enable_indexscan", "off", PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
		(void) set_config_option("enable_seqscan", "off", PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
	}
}

/* The call's parameters, for SPI_execute_plan_extended. */
static ParamListInfo
QueryParams(EventQuery *q)
{
	return PankoParams(q->values, q->nulls, q->types, NPARAMS);
}

/*
 * Run a kept plan for at most tcount rows into dest; the caller has the
 * planner settings of the plan's kind in force, since the plan may be
 * remade on the way.
 */
static void
RunPlan(SPIPlanPtr plan, ParamListInfo params, uint64 tcount, DestReceiver *dest)
{
	PankoRunPlan(plan, params, tcount, dest, "get_events");
}

/* ---------------------------------------------------------------- the sink */

/* A value kept in a tuplestore must not point into TOAST. */
static Datum
Flatten(Datum d)
{
	struct varlena *v = (struct varlena *) DatumGetPointer(d);

	if (VARATT_IS_EXTERNAL(v))
		return PointerGetDatum(detoast_external_attr(v));
	return d;
}

/* One row of a page: into the tuplestore, or as JSON. */
static bool
SinkReceive(TupleTableSlot *slot, DestReceiver *self)
{
	EventSink  *sink = (EventSink *) self;
	MemoryContext old = MemoryContextSwitchTo(sink->rowcxt);
	Datum	   *v;
	bool	   *isnull;
	text	   *type_text;
	const char *type_name;

	slot_getallattrs(slot);
	v = slot->tts_values;
	isnull = slot->tts_isnull;
	type_name = PankoEventTypeName(DatumGetInt32(v[1]), &type_text);
	if (sink->json)
	{
		text	   *mid = DatumGetTextPP(v[0]);

		if (sink->count > 0)
			APPEND_LITERAL(sink->json, ", ");
		PankoAppendEventJson(sink->json, VARDATA_ANY(mid), VARSIZE_ANY_EXHDR(mid),
							 type_name, VARSIZE(type_text) - VARHDRSZ,
							 DatumGetTimestampTz(v[2]), DatumGetTraitsP(v[3]),
							 isnull[4] ? NULL : (struct varlena *) PG_DETOAST_DATUM(v[4]));
	}
	else
	{
		Datum		out[5];
		bool		outnull[5] = {false, false, false, false, isnull[4]};

		out[0] = Flatten(v[0]);
		out[1] = PointerGetDatum(type_text);
		out[2] = v[2];
		out[3] = Flatten(v[3]);
		out[4] = isnull[4] ? (Datum) 0 : Flatten(v[4]);
		tuplestore_putvalues(sink->store, sink->desc, out, outnull);
	}
	MemoryContextSwitchTo(old);
	MemoryContextReset(sink->rowcxt);
	sink->count++;
	return true;
}

static void
SinkStartup(DestReceiver *self, int operation, TupleDesc typeinfo)
{
}

static void
SinkShutdown(DestReceiver *self)
{
}

static void
SinkDestroy(DestReceiver *self)
{
}

/* A sink writing to store (rows) or json (the API's text). */
static void
SinkInit(EventSink *sink, Tuplestorestate *store, TupleDesc desc, StringInfo json)
{
	memset(sink, 0, sizeof(EventSink));
	sink->pub.receiveSlot = SinkReceive;
	sink->pub.rStartup = SinkStartup;
	sink->pub.rShutdown = SinkShutdown;
	sink->pub.rDestroy = SinkDestroy;
	sink->pub.mydest = DestNone;
	sink->store = store;
	sink->desc = desc;
	sink->json = json;
	sink->rowcxt = AllocSetContextCreate(CurrentMemoryContext, "panko get_events row",
										 ALLOCSET_DEFAULT_SIZES);
}

/* ---------------------------------------------------------------- statements */

#define SELECT_LIST \
	"SELECT e.message_id, e.event_type_id, e.generated, e.traits, e.raw FROM "

/* The parameter holding the marker's value of a sort key. */
static const char *
ParamFor(const char *key)
{
	return strcmp(key, "generated") == 0 ? "$8" : "$9";
}

/* Keyset pagination: strictly after the marker under this order. */
static void
AppendMarkerConds(StringInfo sql, EventQuery *q)
{
	appendStringInfoString(sql, " AND (");
	for (int i = 0; i < q->nkeys; i++)
	{
		if (i > 0)
			appendStringInfoString(sql, " OR ");
		appendStringInfoChar(sql, '(');
		for (int j = 0; j < i; j++)
			appendStringInfo(sql, "e.%s OPERATOR(pg_catalog.=) %s AND ", q->keys[j], ParamFor(q->keys[j]));
		appendStringInfo(sql, "e.%s OPERATOR(pg_catalog.%s) %s)", q->keys[i],
						 q->desc[i] ? "<" : ">", ParamFor(q->keys[i]));
	}
	/* and a bound on the leading key that an index can use */
	appendStringInfo(sql, ") AND e.%s OPERATOR(pg_catalog.%s) %s", q->keys[0],
					 q->desc[0] ? "<=" : ">=", ParamFor(q->keys[0]));
}

/*
 * ORDER BY, LIMIT and the kind of plan, which is part of the text.  The
 * kept kinds over one partition have their shape from the kind, whatever
 * the limit: their text leaves it out (the executor stops when the page is
 * full), so pages of every size share the plan.
 */
static void
AppendOrder(StringInfo sql, EventQuery *q, PlanKind kind, bool one_partition)
{
	appendStringInfoString(sql, " ORDER BY ");
	for (int i = 0; i < q->nkeys; i++)
		appendStringInfo(sql, "%se.%s %s", i ? ", " : "", q->keys[i], q->desc[i] ? "DESC" : "ASC");
	if (!one_partition || (kind != PLAN_ORDERED && kind != PLAN_INDEXED))
		appendStringInfo(sql, " LIMIT %d", q->limit);
	if (kind == PLAN_ORDERED)
		appendStringInfoString(sql, " /* in time order */");
	else if (kind == PLAN_INDEXED)
		appendStringInfoString(sql, " /* by index */");
}

/*
 * What a statement reads, as "<table> e WHERE ": one partition's own table
 * (its row-level security is panko.event's, see panko.secure_partition),
 * or panko.event for every partition.
 */
static void
AppendFrom(StringInfo sql, const char *table)
{
	appendStringInfo(sql, "panko.%s e WHERE ", table ? quote_identifier(table) : "event");
}

/*
 * The statement for a page: over every partition (table NULL) or over one
 * partition's table (PankoSpanTable), with the marker's conditions or not.
 */
static SPIPlanPtr
PagePlan(EventQuery *q, const char *table, bool with_marker, PlanKind kind)
{
	StringInfoData sql;
	SPIPlanPtr	plan;

	initStringInfo(&sql);
	appendStringInfoString(&sql, SELECT_LIST);
	AppendFrom(&sql, table);
	appendStringInfoString(&sql, "true");
	appendStringInfoString(&sql, q->conds.data);
	if (with_marker)
		AppendMarkerConds(&sql, q);
	AppendOrder(&sql, q, kind, table != NULL);
	plan = ShapePlan(sql.data, q->types, NPARAMS, kind);
	pfree(sql.data);
	return plan;
}

/*
 * Find the marker event (through the policy, as the caller): its generated;
 * false when there is none the caller may see.  The registry names the
 * partition; anywhere else is a rare case read over all partitions.
 */
static bool
ResolveMarker(EventQuery *q, PartitionSpan *spans, int nspans, TimestampTz *generated)
{
	TimestampTz hint = 0;
	bool		have_hint;
	Datum		arg = CStringGetTextDatum(q->marker);
	Oid			argtype = TEXTOID;
	int			i;
	bool		isnull;
	char		table[NAMEDATALEN];

	/*
	 * No registry row: no such event.  A caller who does not see everything
	 * then does what an invisible event costs (the read of every
	 * partition), so that a missing and an invisible marker look the same.
	 */
	have_hint = PankoRegistryLookup(PankoMessageIdHash(q->marker, strlen(q->marker)), &hint);
	if (!have_hint && q->sees_all)
		return false;
	for (int pass = 0; pass < 2; pass++)
	{
		StringInfoData sql;
		SPIPlanPtr	plan;

		if (pass == 0 && (!have_hint || (i = PankoSpanFor(spans, nspans, hint)) < 0 ||
						  !OidIsValid(PankoSpanRelid(&spans[i]))))
			continue;
		if (pass == 0)
			PankoSpanTable(&spans[i], table);
		initStringInfo(&sql);
		appendStringInfoString(&sql, "SELECT e.generated FROM ");
		AppendFrom(&sql, pass == 0 ? table : NULL);
		appendStringInfoString(&sql, "e.message_id OPERATOR(pg_catalog.=) $1");
		plan = ShapePlan(sql.data, &argtype, 1, PLAN_GENERIC);
		pfree(sql.data);
		if (SPI_execute_plan(plan, &arg, NULL, true, 1) != SPI_OK_SELECT)
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("panko: marker lookup failed")));
		if (SPI_processed > 0)
		{
			*generated = DatumGetTimestampTz(SPI_getbinval(SPI_tuptable->vals[0],
														   SPI_tuptable->tupdesc, 1, &isnull));
			return true;
		}
	}
	return false;
}

/* ---------------------------------------------------------------- the filter */

/* A trait query's items and the scope's equalities, as one query for estimates. */
static TraitQuery *
EstimationQuery(TraitQuery *tq, Traits *scope)
{
	int			n = (tq ? TraitQueryCount(tq) : 0) + (scope ? TraitsCount(scope) : 0);
	TraitPair  *pairs = palloc0(sizeof(TraitPair) * Max(n, 1));
	int			m = 0;
	TraitItems	lists[2];

	lists[0] = tq ? TraitQueryItems(tq) : (TraitItems) {NULL, NULL, 0};
	lists[1] = scope ? TraitsItems(scope) : (TraitItems) {NULL, NULL, 0};
	for (int l = 0; l < 2; l++)
	{
		for (int i = 0; i < lists[l].count; i++)
		{
			TraitItem	item = TraitItemsGet(&lists[l], i);
			TraitPair  *p = &pairs[m++];

			p->name = item.name;
			p->namelen = item.namelen;
			p->type = item.type;
			p->op = item.op;
			p->ord = m;
			if (item.type == TRAIT_STRING)
			{
				p->str = item.value;
				p->strlen = item.vallen;
			}
			else if (item.type == TRAIT_FLOAT)
				p->f8 = TraitReadFloat8(item.value);
			else
				p->i64 = TraitReadInt64(item.value);
		}
	}
	return TraitQueryBuild(pairs, m);
}

/*
 * The share of events the trait query matches, estimated from the
 * statistics of the partition holding now (or of the newest one before it
 * that ANALYZE has seen); false when there are none.
 */
static bool
EstimateRecent(const TraitQuery *tq, PartitionSpan *spans, int nspans, double *selectivity,
			   double *gin_share)
{
	TimestampTz now = GetCurrentTransactionStartTimestamp();
	int			last = nspans - 1;

	while (last >= 0 && spans[last].lower > now)
		last--;
	for (int i = last, tries = 0; i >= 0 && tries < 3; i--, tries++)
	{
		Oid			relid;
		AttrNumber	attnum;

		/* (a partition's largest table stands for it) */
		if (!OidIsValid(PankoSpanRelid(&spans[i])))
			continue;
		(void) PankoPartitionTuples(spans[i].relid, &relid);
		attnum = get_attnum(relid, "traits");
		if (attnum != InvalidAttrNumber &&
			TraitQueryEstimate(relid, attnum, tq, selectivity))
		{
			/* and what the GIN index reads: each filter's share, summed */
			*gin_share = 0;
			for (int k = 0; k < TraitQueryCount(tq); k++)
			{
				TraitItem	item = TraitQueryItem(tq, k);
				TraitPair	p = {0};
				double		one = 1.0;

				p.name = item.name;
				p.namelen = item.namelen;
				p.type = item.type;
				p.op = item.op;
				if (item.type == TRAIT_STRING)
				{
					p.str = item.value;
					p.strlen = item.vallen;
				}
				else if (item.type == TRAIT_FLOAT)
					p.f8 = TraitReadFloat8(item.value);
				else
					p.i64 = TraitReadInt64(item.value);
				(void) TraitQueryEstimate(relid, attnum, TraitQueryBuild(&p, 1), &one);
				*gin_share += one;
			}
			return true;
		}
	}
	return false;
}

/*
 * Parse the filter into q: parameters and conditions, in the order (and
 * with the errors) of Panko's checks.  An unknown event type sets
 * q->nothing and stops there, as it always did.
 */
static void
ParseFilter(EventQuery *q, Jsonb *filter)
{
	char	   *s;

	if (filter && (s = FilterString(filter, "event_type")) != NULL)
	{
		int32		id;

		if (!PankoEventTypeId(s, &id))
		{
			q->nothing = true;	/* an unknown event type matches nothing */
			return;
		}
		q->values[P_TYPE] = Int32GetDatum(id);
		q->nulls[P_TYPE] = ' ';
		appendStringInfoString(&q->conds, " AND e.event_type_id OPERATOR(pg_catalog.=) $1");
	}
	if (filter && (s = FilterString(filter, "message_id")) != NULL)
	{
		q->values[P_MESSAGE_ID] = CStringGetTextDatum(s);
		q->nulls[P_MESSAGE_ID] = ' ';
		appendStringInfoString(&q->conds, " AND e.message_id OPERATOR(pg_catalog.=) $2");
	}
	if (filter && (s = FilterString(filter, "start_timestamp")) != NULL)
	{
		q->values[P_START] = TimestampTzGetDatum(FilterTimestamp(s, "start_timestamp"));
		q->nulls[P_START] = ' ';
		appendStringInfoString(&q->conds, " AND e.generated OPERATOR(pg_catalog.>=) $3");
	}
	if (filter && (s = FilterString(filter, "end_timestamp")) != NULL)
	{
		q->values[P_END] = TimestampTzGetDatum(FilterTimestamp(s, "end_timestamp"));
		q->nulls[P_END] = ' ';
		appendStringInfoString(&q->conds, " AND e.generated OPERATOR(pg_catalog.<=) $4");
	}
	if (filter)
	{
		JsonbValue *tf = getKeyJsonValueFromContainer(&filter->root, "traits_filter", 13, NULL);

		if (tf && tf->type != jbvNull)
		{
			Datum		tq = DirectFunctionCall1(traitquery_from_jsonb,
												 JsonbPGetDatum(JsonbValueToJsonb(tf)));

			if (TraitQueryCount((TraitQuery *) DatumGetPointer(tq)) > 0)
			{
				q->values[P_TRAITS] = tq;
				q->nulls[P_TRAITS] = ' ';
				appendStringInfoString(&q->conds, " AND e.traits OPERATOR(panko.@@) $5");
			}
		}
	}
	if (filter && (s = FilterString(filter, "admin_proj")) != NULL)
	{
		TraitPair	p = {0};

		p.name = "project_id";
		p.namelen = strlen(p.name);
		p.type = TRAIT_STRING;
		p.str = s;
		p.strlen = strlen(s);
		q->values[P_ADMIN] = PointerGetDatum(TraitsBuild(&p, 1));
		q->nulls[P_ADMIN] = ' ';
		appendStringInfoString(&q->conds, " AND (e.traits OPERATOR(panko.@>) $6"
							   " OR NOT e.traits OPERATOR(panko.?) 'project_id')");
	}

	/*
	 * Row-level security decides visibility; for members, saying the same
	 * thing as an indexable condition lets the GIN index find their events.
	 */
	if (PankoCallerIsMember())
	{
		q->values[P_SCOPE] = PointerGetDatum(PankoCallerScope());
		q->nulls[P_SCOPE] = ' ';
		appendStringInfoString(&q->conds, " AND e.traits OPERATOR(panko.@>) $7");
	}
}

/*
 * A kind of plan as the call may use it.  GIN deduplicates the keys of a
 * scan pairwise: for a long list of filters, reading in time order (the
 * first failing filter decides each row) is the linear plan.  A session
 * that switched the kind's scan off gets the other, or its own plan.
 */
static PlanKind
KindAllowed(EventQuery *q, PlanKind kind)
{
	TraitQuery *tq = q->nulls[P_TRAITS] == ' ' ? (TraitQuery *) DatumGetPointer(q->values[P_TRAITS]) : NULL;

	if (kind == PLAN_INDEXED && tq != NULL && TraitQueryCount(tq) > GIN_MAX_FILTERS)
		kind = PLAN_ORDERED;
	if (kind == PLAN_ORDERED && !enable_indexscan)
		kind = enable_bitmapscan ? PLAN_INDEXED : PLAN_CUSTOM;
	else if (kind == PLAN_INDEXED && !enable_bitmapscan)
		kind = enable_indexscan ? PLAN_ORDERED : PLAN_CUSTOM;
	return kind;
}

/*
 * The kind of plan: generic without value-dependent conditions; otherwise
 * one of the two kept kinds when statistics tell how common the filter is
 * (the member's scope counted in), planned for the values when they do not.
 */
static void
ChooseKind(EventQuery *q, PartitionSpan *spans, int nspans)
{
	TraitQuery *tq = q->nulls[P_TRAITS] == ' ' ? (TraitQuery *) DatumGetPointer(q->values[P_TRAITS]) : NULL;
	Traits	   *scope = q->nulls[P_SCOPE] == ' ' ? (Traits *) DatumGetPointer(q->values[P_SCOPE]) : NULL;
	bool		admin = q->nulls[P_ADMIN] == ' ';

	q->selectivity = 1.0;
	if ((tq == NULL && scope == NULL && !admin) || q->nulls[P_MESSAGE_ID] == ' ')
		q->kind = PLAN_GENERIC; /* (one message_id: its index, whatever else) */
	else if (tq == NULL && scope == NULL)
		q->kind = PLAN_ORDERED; /* an admin's project, or no project: common */
	else if (EstimateRecent(EstimationQuery(tq, scope), spans, nspans, &q->selectivity, &q->gin_share))
	{
		if (q->nulls[P_TYPE] == ' ')
			q->selectivity *= PankoEventTypeShare();
		q->kind = q->selectivity >= ORDERED_MIN_SELECTIVITY ? PLAN_ORDERED : PLAN_INDEXED;
		q->estimated = true;
	}
	else
		q->kind = PLAN_CUSTOM;
	q->kind = KindAllowed(q, q->kind);
}

/*
 * The kind for one partition of the walk, when the selectivity is known.
 * In time order, a page reads about remaining / selectivity rows (at most
 * the partition).  Through the index: the posting lists of every filter
 * (a quarter of a row each), every match of the partition, and the cost of
 * the probe (counted as 20 rows).  Small partitions favour the index even
 * for common values; filters that each match much favour time order.
 */
static PlanKind
SpanKind(EventQuery *q, PartitionSpan *span, PlanKind kind, uint64 remaining)
{
	double		tuples;
	double		sel = Max(q->selectivity, 1e-9);
	Oid			largest;

	if (!q->estimated)
		return kind;
	tuples = PankoPartitionTuples(span->relid, &largest);
	if (tuples <= 0)
		return kind;
	return KindAllowed(q, 0.25 * q->gin_share * tuples + sel * tuples + 20 < Min(tuples, remaining / sel)
					   ? PLAN_INDEXED : PLAN_ORDERED);
}



/* ---------------------------------------------------------------- reading */

/*
 * Every partition at once, in one statement: for orders that do not start
 * with generated, and a message_id the registry could not place.
 */
static void
ReadFlat(EventQuery *q, ParamListInfo params, EventSink *sink)
{
	int			nestlevel = NewGUCNestLevel();

	SetPlanKind(q->kind);
	RunPlan(PagePlan(q, NULL, q->marker != NULL, q->kind), params, q->limit, (DestReceiver *) sink);
	AtEOXact_GUC(true, nestlevel);
}

/*
 * Is the partition outside the call's time window, or on the wrong side of
 * the marker?  Known from its bounds alone.
 */
static bool
SpanOutside(EventQuery *q, const PartitionSpan *span, bool has_mark, TimestampTz mark)
{
	bool		desc = q->desc[0];

	if (q->nulls[P_START] == ' ' && span->upper <= DatumGetTimestampTz(q->values[P_START]))
		return true;
	if (q->nulls[P_END] == ' ' && span->lower > DatumGetTimestampTz(q->values[P_END]))
		return true;
	if (has_mark && (desc ? span->lower > mark : span->upper <= mark))
		return true;
	return false;
}

/* How many partitions, in the walk's order, have their summaries asked at once. */
#define SKIP_CHUNK 32

/* The span a walk reads k-th: newest first for a descending order. */
static inline int
WalkSpan(EventQuery *q, int nspans, int k)
{
	return q->desc[0] ? nspans - 1 - k : k;
}

/*
 * Which partitions the summaries rule out, asked for SKIP_CHUNK partitions
 * of the walk at a time (from its k-th on), so that their reads from
 * memory overlap (PankoSummarySkipMany), and a walk that stops early asks
 * for few.
 */
static void
SkipChunk(EventQuery *q, PartitionSpan *spans, int nspans, int k, bool has_mark, TimestampTz mark,
		  int only, bool *skip)
{
	Oid			relids[SKIP_CHUNK];
	bool		out[SKIP_CHUNK];
	int			n = Min(SKIP_CHUNK, nspans - k);

	for (int j = 0; j < n; j++)
	{
		int			i = WalkSpan(q, nspans, k + j);
		PartitionSpan *span = &spans[i];

		relids[j] = ((only >= 0 && i != only) || SpanOutside(q, span, has_mark, mark))
			? InvalidOid : PankoSpanRelid(span);
	}
	PankoSummarySkipMany(relids, n, q->skip_keys, q->nskip_keys, out);
	for (int j = 0; j < n; j++)
		skip[WalkSpan(q, nspans, k + j)] = out[j];
}

/*
 * Can this partition hold a row of the page?  The time window, the marker
 * and the message_id's partition say no without reading; so do the
 * summaries (skipped) and an empty heap.
 */
static bool
SpanMayMatch(EventQuery *q, PartitionSpan *span, bool has_mark, TimestampTz mark, bool skipped)
{
	if (SpanOutside(q, span, has_mark, mark))
		return false;
	if (!OidIsValid(PankoSpanRelid(span)))
		return false;			/* dropped before the caller's lock */
	if (skipped)
		return false;
	return !PankoPartitionIsEmpty(span->relid);
}

/*
 * Can a partition of this call be read through its GIN index without a
 * plan (event_scan.c)?  When every condition is one that PankoScanIndexed
 * checks: a trait filter, and perhaps a type, a time window and the
 * member's scope.
 */
static bool
IndexedScanFits(EventQuery *q)
{
	return panko_indexed_scan && q->nulls[P_TRAITS] == ' ' && q->nulls[P_ADMIN] == 'n' &&
		q->nulls[P_MESSAGE_ID] == 'n';
}

/* The call's conditions and order, for PankoScanIndexed. */
static void
IndexedScanSetup(EventQuery *q, EventScan *es)
{
	memset(es, 0, sizeof(EventScan));
	es->query = q->values[P_TRAITS];
	es->query_type = q->types[P_TRAITS];
	es->scope = q->nulls[P_SCOPE] == ' ' ? (Traits *) DatumGetPointer(q->values[P_SCOPE]) : NULL;
	es->has_type = q->nulls[P_TYPE] == ' ';
	es->type_id = es->has_type ? DatumGetInt32(q->values[P_TYPE]) : 0;
	es->has_start = q->nulls[P_START] == ' ';
	es->start = es->has_start ? DatumGetTimestampTz(q->values[P_START]) : 0;
	es->has_end = q->nulls[P_END] == ' ';
	es->end = es->has_end ? DatumGetTimestampTz(q->values[P_END]) : 0;
	es->nkeys = q->nkeys;
	for (int k = 0; k < q->nkeys; k++)
	{
		es->by_generated[k] = strcmp(q->keys[k], "generated") == 0;
		es->desc[k] = q->desc[k];
	}
	PankoScanBegin(es);
}

/*
 * Walk the partitions in the order of generated, reading each with its own
 * kept plan until the page is full.  only >= 0 restricts the walk to one
 * partition (a message_id's).
 */
static void
Walk(EventQuery *q, ParamListInfo params, EventSink *sink, PartitionSpan *spans, int nspans,
	 bool has_mark, TimestampTz mark, int only)
{
	/*
	 * A page from one partition is read in time order unless the filter says
	 * otherwise (or names one message_id).
	 */
	PlanKind	kind = (q->kind == PLAN_GENERIC && q->nulls[P_MESSAGE_ID] == 'n') ? PLAN_ORDERED : q->kind;
	PlanKind	set = PLAN_GENERIC;
	int			nestlevel = -1;
	bool	   *skip = palloc0(sizeof(bool) * Max(nspans, 1));
	bool		indexed_fits = IndexedScanFits(q);
	bool		indexed_ready = false;
	EventScan	es;

	if (kind == PLAN_ORDERED && !enable_indexscan)
		kind = q->kind;
	for (int k = 0; k < nspans && sink->count < (uint64) q->limit; k++)
	{
		int			i = WalkSpan(q, nspans, k);
		PartitionSpan *span = &spans[i];
		bool		marker_here;
		uint64		remaining = (uint64) q->limit - sink->count;
		PlanKind	span_kind;
		char		table[NAMEDATALEN];
		Oid			relid;

		if (q->nskip_keys > 0 && k % SKIP_CHUNK == 0)
			SkipChunk(q, spans, nspans, k, has_mark, mark, only, skip);
		if (only >= 0 && i != only)
			continue;
		if (!SpanMayMatch(q, span, has_mark, mark, skip[i]))
			continue;
		marker_here = has_mark && span->lower <= mark && mark < span->upper;
		span_kind = SpanKind(q, span, kind, remaining);
		/* the kind's planner settings hold while its plan is made (or remade) */
		if (nestlevel < 0 || span_kind != set)
		{
			if (nestlevel >= 0)
				AtEOXact_GUC(true, nestlevel);
			nestlevel = NewGUCNestLevel();
			SetPlanKind(span_kind);
			set = span_kind;
		}
		relid = PankoSpanTable(span, table);
		/* a rare filter's matches, without a plan when the table allows */
		if (span_kind == PLAN_INDEXED && indexed_fits && !marker_here)
		{
			if (!indexed_ready)
			{
				IndexedScanSetup(q, &es);
				indexed_ready = true;
			}
			if (PankoScanIndexed(relid, &es, (DestReceiver *) sink, remaining))
			{
				CHECK_FOR_INTERRUPTS();
				continue;
			}
		}
		/*
		 * A partition the summaries do not know (the open day): its GIN
		 * indexes first, unless the filter is known to be common there.
		 */
		if (q->probe && span_kind != PLAN_ORDERED && !PankoSummaryHolds(span->relid) &&
			!PankoPartitionMayMatch(span->relid, q->values[P_TRAITS], q->types[P_TRAITS]))
			continue;
		RunPlan(PagePlan(q, table, marker_here, span_kind), params, remaining, (DestReceiver *) sink);
		CHECK_FOR_INTERRUPTS();
	}
	if (nestlevel >= 0)
		AtEOXact_GUC(true, nestlevel);
	if (indexed_ready)
		PankoScanEnd(&es);
	pfree(skip);
}

/* Is there an event with this message_id (that the caller may see) in the partition? */
static bool
MessageIdIn(const char *message_id, PartitionSpan *span)
{
	StringInfoData sql;
	SPIPlanPtr	plan;
	Oid			argtype = TEXTOID;
	Datum		arg = CStringGetTextDatum(message_id);
	char		table[NAMEDATALEN];

	if (!OidIsValid(PankoSpanRelid(span)))
		return false;
	PankoSpanTable(span, table);
	initStringInfo(&sql);
	appendStringInfoString(&sql, "SELECT 1 FROM ");
	AppendFrom(&sql, table);
	appendStringInfoString(&sql, "e.message_id OPERATOR(pg_catalog.=) $1");
	plan = ShapePlan(sql.data, &argtype, 1, PLAN_GENERIC);
	pfree(sql.data);
	if (SPI_execute_plan(plan, &arg, NULL, true, 1) != SPI_OK_SELECT)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("panko: message_id lookup failed")));
	return SPI_processed > 0;
}

/* Read the page into sink. */
static void
ReadPage(EventQuery *q, EventSink *sink)
{
	Oid			events = PankoLockEvents();
	int			nspans;
	bool		complete;
	PartitionSpan *spans = PankoPartitionSpans(events, &nspans, &complete);
	bool		has_mark = false;
	TimestampTz mark = 0;
	ParamListInfo params;
	bool		walk = complete && strcmp(q->keys[0], "generated") == 0;

	q->sees_all = PankoCallerSeesAll();
	ChooseKind(q, spans, nspans);
	if (q->marker)
	{
		if (!ResolveMarker(q, spans, nspans, &mark))
			BadParameter(psprintf("marker \"%s\" is not an event you can see", q->marker),
						 "Pass the message_id of the last event of the previous page.");
		has_mark = true;
		q->values[P_MARK_GENERATED] = TimestampTzGetDatum(mark);
		q->values[P_MARK_ID] = CStringGetTextDatum(q->marker);
		q->nulls[P_MARK_GENERATED] = q->nulls[P_MARK_ID] = ' ';
	}
	params = QueryParams(q);

	/*
	 * The summaries let trait filters skip partitions.  Which partitions a
	 * call reads must depend only on events the caller may see (a SQL login
	 * sees its own locks): the filters' keys count for a caller who sees
	 * everything; for a member, its scope's keys (its project and user).
	 */
	if (walk && q->nulls[P_MESSAGE_ID] == 'n' &&
		((q->nulls[P_TRAITS] == ' ' && q->sees_all) || q->nulls[P_SCOPE] == ' ') &&
		PankoSummariesReady())
	{
		TraitQuery *tq = (q->nulls[P_TRAITS] == ' ' && q->sees_all) ? (TraitQuery *) DatumGetPointer(q->values[P_TRAITS]) : NULL;
		Traits	   *scope = q->nulls[P_SCOPE] == ' ' ? (Traits *) DatumGetPointer(q->values[P_SCOPE]) : NULL;

		q->skip_keys = palloc(sizeof(uint32) * ((tq ? TraitQueryCount(tq) : 0) + (scope ? TraitsCount(scope) : 0) + 1));
		q->nskip_keys = PankoSummaryQueryKeys(tq, scope, q->skip_keys);
		q->probe = tq != NULL;
	}

	if (!walk)
		ReadFlat(q, params, sink);
	else if (q->nulls[P_MESSAGE_ID] == ' ')
	{
		/*
		 * One event at most, in the partition the registry names; when it is
		 * not there (a collision, a stale row, or one the caller may not
		 * see), every partition is read.  No registry row: no such event.
		 */
		char	   *mid = TextDatumGetCString(q->values[P_MESSAGE_ID]);
		TimestampTz hint;

		if (PankoRegistryLookup(PankoMessageIdHash(mid, strlen(mid)), &hint))
		{
			int			only = PankoSpanFor(spans, nspans, hint);

			if (only >= 0)
				Walk(q, params, sink, spans, nspans, has_mark, mark, only);
			if (only < 0 || (sink->count == 0 && !MessageIdIn(mid, &spans[only])))
				ReadFlat(q, params, sink);
		}
		else if (!q->sees_all)
			ReadFlat(q, params, sink);	/* as for an invisible one (see ResolveMarker) */
	}
	else
		Walk(q, params, sink, spans, nspans, has_mark, mark, -1);
}

/*
 * panko.get_events(filter, limit, sort, marker): the checks of Panko's
 * API, then the page (see the top of this file).
 */
Datum
get_events(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	StringInfo	json = panko_events_json_sink;
	Jsonb	   *filter;
	int32		limit;
	ArrayType  *sort;
	EventQuery	q;
	EventSink	sink;
	Oid			traits_oid;

	panko_events_json_sink = NULL;
	filter = PG_ARGISNULL(0) ? NULL : PG_GETARG_JSONB_P(0);
	limit = PG_ARGISNULL(1) ? DEFAULT_LIMIT : PG_GETARG_INT32(1);
	sort = PG_ARGISNULL(2) ? NULL : PG_GETARG_ARRAYTYPE_P(2);

	InitMaterializedSRF(fcinfo, 0);
	memset(&q, 0, sizeof(q));
	memset(q.nulls, 'n', sizeof(q.nulls));
	q.marker = PG_ARGISNULL(3) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(3));
	traits_oid = PankoTypeOid("traits");
	q.types[P_TYPE] = INT4OID;
	q.types[P_MESSAGE_ID] = TEXTOID;
	q.types[P_START] = TIMESTAMPTZOID;
	q.types[P_END] = TIMESTAMPTZOID;
	q.types[P_TRAITS] = PankoTypeOid("traitquery");
	q.types[P_ADMIN] = traits_oid;
	q.types[P_SCOPE] = traits_oid;
	q.types[P_MARK_GENERATED] = TIMESTAMPTZOID;
	q.types[P_MARK_ID] = TEXTOID;
	q.types[P_LIMIT] = INT4OID;

	if (limit < 0)
		BadParameter("limit must not be negative", NULL);
	if (limit == 0)
		limit = DEFAULT_LIMIT;
	q.limit = limit;
	q.values[P_LIMIT] = Int32GetDatum(limit);
	q.nulls[P_LIMIT] = ' ';
	initStringInfo(&q.conds);

	if (filter)
		CheckFilterKeys(filter);
	q.nkeys = ParseSort(sort, q.keys, q.desc);

	SinkInit(&sink, rsinfo->setResult, rsinfo->setDesc, json);
	if (json)
		appendStringInfoChar(json, '[');

	PankoSPIConnect();
	PankoEventTypesBegin();
	ParseFilter(&q, filter);
	if (!q.nothing)
		ReadPage(&q, &sink);
	SPI_finish();

	if (json)
		appendStringInfoChar(json, ']');
	PG_RETURN_VOID();
}
