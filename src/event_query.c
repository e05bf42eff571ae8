/*
 * event_query.c
 *		panko.get_events(filter, limit, sort, marker): Panko's EventFilter as
 *		one parameterised query.  The query's text depends only on which
 *		filters are present and on the sort, so its plan is prepared once per
 *		shape and kept for the backend's life: planning a query over a month
 *		of partitions costs more than running it.
 *
 * The function runs as the caller, so row-level security decides what is
 * visible, the marker lookup included.
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/syscache.h"

#include "panko.h"
#include "traits.h"
#include "isotime.h"

PG_FUNCTION_INFO_V1(get_events);

#define DEFAULT_LIMIT		100
#define MAX_SORT_KEYS		2
#define PLAN_SQL_MAXLEN		2048
#define NPARAMS				10
#define PLAN_CACHE_MAX		256

/* Parameter numbers in the generated query. */
enum
{
	P_TYPE = 0, P_MESSAGE_ID, P_START, P_END, P_TRAITS, P_ADMIN, P_SCOPE,
	P_MARK_GENERATED, P_MARK_ID, P_LIMIT
};

typedef struct PlanEntry
{
	char		sql[PLAN_SQL_MAXLEN];
	SPIPlanPtr	plan;
} PlanEntry;

static HTAB *plan_cache = NULL;
static SPIPlanPtr plan_type_id = NULL;
static SPIPlanPtr plan_marker = NULL;
static SPIPlanPtr plan_current_partition = NULL;
static SPIPlanPtr plan_type_count = NULL;

/*
 * How a query with a trait filter is run.  Planning it for its values
 * costs more than running it (a month of partitions), so when statistics
 * say how common the filter is, one of two kept plans is used instead:
 * scan in time order and filter (common values), or the GIN index and a
 * sort (rare ones).
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

/*
 * The plan for this query text, prepared on first use and kept.  Shapes
 * with no trait condition keep one generic plan, partitions pruned when it
 * starts; trait filters keep an ordered or an indexed plan (the kind is
 * part of the text), or are planned for each call's values (PLAN_CUSTOM).
 * The limit is part of the text, since a plan for an unknown limit is a
 * plan for a tenth of the table.
 */
static SPIPlanPtr
ShapePlan(const char *sql, Oid *types, PlanKind kind)
{
	PlanEntry  *entry;
	bool		found;

	if (plan_cache == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = PLAN_SQL_MAXLEN;
		ctl.entrysize = sizeof(PlanEntry);
		plan_cache = hash_create("panko get_events plans", 64, &ctl, HASH_ELEM | HASH_STRINGS);
	}
	if (strlen(sql) >= PLAN_SQL_MAXLEN)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("panko: query text too long for the plan cache")));
	if (hash_get_num_entries(plan_cache) >= PLAN_CACHE_MAX)
	{
		HASH_SEQ_STATUS seq;

		/* many distinct limits: start over rather than grow without end */
		hash_seq_init(&seq, plan_cache);
		while ((entry = hash_seq_search(&seq)) != NULL)
		{
			if (entry->plan)
				SPI_freeplan(entry->plan);
			hash_search(plan_cache, entry->sql, HASH_REMOVE, NULL);
		}
	}
	entry = hash_search(plan_cache, sql, HASH_ENTER, &found);
	if (!found)
	{
		entry->plan = NULL;
		PG_TRY();
		{
			PankoKeepPlan(&entry->plan, sql, NPARAMS, types,
						  kind == PLAN_CUSTOM ? CURSOR_OPT_CUSTOM_PLAN : CURSOR_OPT_GENERIC_PLAN);
		}
		PG_CATCH();
		{
			hash_search(plan_cache, sql, HASH_REMOVE, NULL);
			PG_RE_THROW();
		}
		PG_END_TRY();
	}
	return entry->plan;
}

/*
 * The share of events the trait query matches, estimated from the
 * statistics of the partition holding now (or of the newest one before it
 * that ANALYZE has seen); false when there are none.
 */
static bool
EstimateRecent(const TraitQuery *q, double *selectivity)
{
	Oid			nsp = get_namespace_oid("panko", false);

	PankoKeepPlan(&plan_current_partition,
				  "SELECT name FROM panko.partition WHERE lower_bound OPERATOR(pg_catalog.<=) now() "
				  "ORDER BY lower_bound DESC LIMIT 3", 0, NULL, 0);
	if (SPI_execute_plan(plan_current_partition, NULL, NULL, true, 3) != SPI_OK_SELECT)
		return false;
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		Oid			relid = get_relname_relid(SPI_getvalue(SPI_tuptable->vals[r],
														   SPI_tuptable->tupdesc, 1), nsp);

		if (OidIsValid(relid) &&
			TraitQueryEstimate(relid, get_attnum(relid, "traits"), q, selectivity))
			return true;
	}
	return false;
}

/* The share of events of one event type, taking the types as equally common. */
static double
EventTypeShare(void)
{
	bool		isnull;
	int64		ntypes;

	PankoKeepPlan(&plan_type_count, "SELECT count(*) FROM panko.event_type", 0, NULL, 0);
	if (SPI_execute_plan(plan_type_count, NULL, NULL, true, 1) != SPI_OK_SELECT ||
		SPI_processed != 1)
		return 1.0;
	ntypes = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	return ntypes > 0 ? 1.0 / ntypes : 1.0;
}

/* Planner settings that make a kept plan the kind asked for. */
static void
SetPlanKind(PlanKind kind)
{
	if (kind == PLAN_ORDERED)
	{
		(void) set_config_option("enable_bitmapscan", "off", PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
		(void) set_config_option("enable_seqscan", "off", PGC_USERSET, PGC_S_SESSION,
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

/* The parameter holding the marker's value of a sort key. */
static const char *
ParamFor(const char *key)
{
	return strcmp(key, "generated") == 0 ? "$8" : "$9";
}

/*
 * panko.get_events(filter, limit, sort, marker): the filter becomes one
 * query text with parameters, whose plan is kept per shape (ShapePlan).
 */
Datum
get_events(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Jsonb	   *filter = PG_ARGISNULL(0) ? NULL : PG_GETARG_JSONB_P(0);
	int32		limit = PG_ARGISNULL(1) ? DEFAULT_LIMIT : PG_GETARG_INT32(1);
	ArrayType  *sort = PG_ARGISNULL(2) ? NULL : PG_GETARG_ARRAYTYPE_P(2);
	char	   *marker = PG_ARGISNULL(3) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(3));
	Datum		values[NPARAMS];
	char		nulls[NPARAMS];
	Oid			types[NPARAMS];
	StringInfoData sql;
	const char *keys[MAX_SORT_KEYS + 1];
	bool		desc[MAX_SORT_KEYS + 1];
	int			nkeys;
	char	   *s;
	Oid			traits_oid = PankoTypeOid("traits");
	PlanKind	kind;
	double		selectivity = 0;
	int			nestlevel;
	Oid			query_oid = PankoTypeOid("traitquery");

	InitMaterializedSRF(fcinfo, 0);
	memset(nulls, 'n', sizeof(nulls));
	memset(values, 0, sizeof(values));
	types[P_TYPE] = INT4OID;
	types[P_MESSAGE_ID] = TEXTOID;
	types[P_START] = TIMESTAMPTZOID;
	types[P_END] = TIMESTAMPTZOID;
	types[P_TRAITS] = query_oid;
	types[P_ADMIN] = traits_oid;
	types[P_SCOPE] = traits_oid;
	types[P_MARK_GENERATED] = TIMESTAMPTZOID;
	types[P_MARK_ID] = TEXTOID;
	types[P_LIMIT] = INT4OID;

	if (limit < 0)
		BadParameter("limit must not be negative", NULL);
	if (limit == 0)
		limit = DEFAULT_LIMIT;
	values[P_LIMIT] = Int32GetDatum(limit);
	nulls[P_LIMIT] = ' ';

	initStringInfo(&sql);
	appendStringInfoString(&sql,
						   "SELECT e.message_id::text, t.name::text, e.generated, e.traits, e.raw "
						   "FROM panko.event e JOIN panko.event_type t ON t.id OPERATOR(pg_catalog.=) e.event_type_id WHERE true");
	if (filter)
		CheckFilterKeys(filter);
	nkeys = ParseSort(sort, keys, desc);

	PankoSPIConnect();

	if (filter && (s = FilterString(filter, "event_type")) != NULL)
	{
		Datum		arg = CStringGetTextDatum(s);
		Oid			argtype = TEXTOID;
		bool		isnull;

		PankoKeepPlan(&plan_type_id, "SELECT id FROM panko.event_type WHERE name OPERATOR(pg_catalog.=) $1", 1, &argtype, 0);
		if (SPI_execute_plan(plan_type_id, &arg, NULL, true, 1) != SPI_OK_SELECT)
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("panko: event type lookup failed")));
		if (SPI_processed == 0)
		{
			SPI_finish();
			PG_RETURN_VOID();	/* an unknown event type matches nothing */
		}
		values[P_TYPE] = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		nulls[P_TYPE] = ' ';
		appendStringInfoString(&sql, " AND e.event_type_id OPERATOR(pg_catalog.=) $1");
	}
	if (filter && (s = FilterString(filter, "message_id")) != NULL)
	{
		values[P_MESSAGE_ID] = CStringGetTextDatum(s);
		nulls[P_MESSAGE_ID] = ' ';
		appendStringInfoString(&sql, " AND e.message_id OPERATOR(pg_catalog.=) $2");
	}
	if (filter && (s = FilterString(filter, "start_timestamp")) != NULL)
	{
		values[P_START] = TimestampTzGetDatum(FilterTimestamp(s, "start_timestamp"));
		nulls[P_START] = ' ';
		appendStringInfoString(&sql, " AND e.generated OPERATOR(pg_catalog.>=) $3");
	}
	if (filter && (s = FilterString(filter, "end_timestamp")) != NULL)
	{
		values[P_END] = TimestampTzGetDatum(FilterTimestamp(s, "end_timestamp"));
		nulls[P_END] = ' ';
		appendStringInfoString(&sql, " AND e.generated OPERATOR(pg_catalog.<=) $4");
	}
	if (filter)
	{
		JsonbValue *tf = getKeyJsonValueFromContainer(&filter->root, "traits_filter", 13, NULL);

		if (tf && tf->type != jbvNull)
		{
			Datum		q = DirectFunctionCall1(traitquery_from_jsonb,
												JsonbPGetDatum(JsonbValueToJsonb(tf)));

			if (TraitQueryCount((TraitQuery *) DatumGetPointer(q)) > 0)
			{
				values[P_TRAITS] = q;
				nulls[P_TRAITS] = ' ';
				appendStringInfoString(&sql, " AND e.traits OPERATOR(panko.@@) $5");
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
		values[P_ADMIN] = PointerGetDatum(TraitsBuild(&p, 1));
		nulls[P_ADMIN] = ' ';
		appendStringInfoString(&sql, " AND (e.traits OPERATOR(panko.@>) $6"
							   " OR NOT e.traits OPERATOR(panko.?) 'project_id')");
	}

	/*
	 * Row-level security decides visibility; for members, saying the same
	 * thing as an indexable condition lets the GIN index find their events.
	 */
	if (PankoCallerIsMember())
	{
		values[P_SCOPE] = PointerGetDatum(PankoCallerScope());
		nulls[P_SCOPE] = ' ';
		appendStringInfoString(&sql, " AND e.traits OPERATOR(panko.@>) $7");
	}

	/* Keyset pagination: strictly after the marker under this order. */
	if (marker)
	{
		Datum		arg = CStringGetTextDatum(marker);
		Oid			argtype = TEXTOID;
		bool		isnull;

		PankoKeepPlan(&plan_marker, "SELECT generated, message_id::text FROM panko.event WHERE message_id OPERATOR(pg_catalog.=) $1",
					  1, &argtype, 0);
		if (SPI_execute_plan(plan_marker, &arg, NULL, true, 1) != SPI_OK_SELECT)
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("panko: marker lookup failed")));
		if (SPI_processed == 0)
			BadParameter(psprintf("marker \"%s\" is not an event you can see", marker),
						 "Pass the message_id of the last event of the previous page.");
		values[P_MARK_GENERATED] = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		values[P_MARK_ID] = CStringGetTextDatum(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2));
		nulls[P_MARK_GENERATED] = nulls[P_MARK_ID] = ' ';

		appendStringInfoString(&sql, " AND (");
		for (int i = 0; i < nkeys; i++)
		{
			if (i > 0)
				appendStringInfoString(&sql, " OR ");
			appendStringInfoChar(&sql, '(');
			for (int j = 0; j < i; j++)
				appendStringInfo(&sql, "e.%s OPERATOR(pg_catalog.=) %s AND ", keys[j], ParamFor(keys[j]));
			appendStringInfo(&sql, "e.%s OPERATOR(pg_catalog.%s) %s)", keys[i], desc[i] ? "<" : ">", ParamFor(keys[i]));
		}
		/* and a bound on the leading key that an index can use */
		appendStringInfo(&sql, ") AND e.%s OPERATOR(pg_catalog.%s) %s", keys[0], desc[0] ? "<=" : ">=", ParamFor(keys[0]));
	}

	appendStringInfoString(&sql, " ORDER BY ");
	for (int i = 0; i < nkeys; i++)
		appendStringInfo(&sql, "%se.%s %s", i ? ", " : "", keys[i], desc[i] ? "DESC" : "ASC");
	appendStringInfo(&sql, " LIMIT %d", limit);

	if (nulls[P_TRAITS] == 'n' && nulls[P_ADMIN] == 'n' && nulls[P_SCOPE] == 'n')
		kind = PLAN_GENERIC;
	else if (nulls[P_ADMIN] == 'n' && nulls[P_SCOPE] == 'n' &&
			 EstimateRecent((TraitQuery *) DatumGetPointer(values[P_TRAITS]), &selectivity))
	{
		if (nulls[P_TYPE] == ' ')
			selectivity *= EventTypeShare();
		kind = selectivity >= ORDERED_MIN_SELECTIVITY ? PLAN_ORDERED : PLAN_INDEXED;
		appendStringInfoString(&sql, kind == PLAN_ORDERED ? " /* in time order */" : " /* by index */");
	}
	else
		kind = PLAN_CUSTOM;

	/* The kind's planner settings hold while the plan is made (or remade). */
	nestlevel = NewGUCNestLevel();
	SetPlanKind(kind);
	if (SPI_execute_plan(ShapePlan(sql.data, types, kind), values, nulls, true, 0) != SPI_OK_SELECT)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("panko: get_events query failed")));
	AtEOXact_GUC(true, nestlevel);

	for (uint64 r = 0; r < SPI_processed; r++)
		tuplestore_puttuple(rsinfo->setResult, SPI_tuptable->vals[r]);
	SPI_finish();
	PG_RETURN_VOID();
}
