/*
 * traits_sel.c
 *		Selectivity of the trait operators, from the most-common-trait
 *		statistics that ANALYZE keeps (traits_analyze.c).  A value among the
 *		most common traits has its measured frequency; one that is not is
 *		rarer than the rarest of them; a range sums the common values inside
 *		it.  Without statistics: equality like a btree equality, ranges like
 *		a btree range.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_statistic.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "nodes/nodeFuncs.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/syscache.h"
#include "utils/selfuncs.h"

#include "panko.h"
#include "traits.h"

PG_FUNCTION_INFO_V1(traits_matchsel);
PG_FUNCTION_INFO_V1(traits_containsel);
PG_FUNCTION_INFO_V1(traits_existsel);

#define TRAIT_NE_SEL		0.9
#define TRAIT_EXIST_SEL		0.5

/*
 * Most-common-trait statistics of a column, when ANALYZE has made them.
 * Decoded once per backend: the array is large enough to be stored
 * compressed, and a query over a month of partitions estimates each one.
 */
typedef struct TraitStatsKey
{
	Oid			relid;
	int16		attnum;
	bool		inherited;
} TraitStatsKey;

typedef struct TraitStats
{
	TraitStatsKey key;
	bool		valid;
	int			nvalues;
	bytea	  **values;			/* sorted keys */
	float4	   *numbers;		/* their frequencies */
	float4		minfreq;
	float4		nonnull;
} TraitStats;

static HTAB *stats_cache = NULL;
static MemoryContext stats_cxt = NULL;

/* Statistics changed somewhere: forget every decoded copy. */
static void
InvalidateTraitStats(Datum arg, int cacheid, uint32 hashvalue)
{
	if (stats_cxt)
		MemoryContextReset(stats_cxt);
	stats_cache = NULL;
}

/* Decode the statistics slot into ts, in the current memory context. */
static void
DecodeTraitStats(HeapTuple statsTuple, TraitStats *ts)
{
	AttStatsSlot slot;

	if (!get_attstatsslot(&slot, statsTuple, STATISTIC_KIND_MCELEM, InvalidOid,
						  ATTSTATSSLOT_VALUES | ATTSTATSSLOT_NUMBERS))
		return;
	if (slot.nnumbers == slot.nvalues + 3)
	{
		ts->nvalues = slot.nvalues;
		ts->values = palloc(sizeof(bytea *) * Max(slot.nvalues, 1));
		ts->numbers = palloc(sizeof(float4) * Max(slot.nvalues, 1));
		for (int i = 0; i < slot.nvalues; i++)
		{
			ts->values[i] = DatumGetByteaPCopy(slot.values[i]);
			ts->numbers[i] = slot.numbers[i];
		}
		ts->minfreq = slot.numbers[slot.nvalues];
		ts->valid = true;
	}
	free_attstatsslot(&slot);
}

/*
 * The decoded statistics of a pg_statistic row, from the cache or decoded
 * now; an entry that is not valid when there are none.
 */
static TraitStats *
LoadTraitStatsTuple(HeapTuple statsTuple)
{
	static TraitStats none;
	Form_pg_statistic form;
	TraitStatsKey key;
	TraitStats	decoded;
	TraitStats *ts;
	bool		found;

	memset(&none, 0, sizeof(none));
	none.nonnull = 1.0;
	if (!HeapTupleIsValid(statsTuple))
		return &none;
	form = (Form_pg_statistic) GETSTRUCT(statsTuple);
	memset(&key, 0, sizeof(key));
	key.relid = form->starelid;
	key.attnum = form->staattnum;
	key.inherited = form->stainherit;

	if (stats_cache != NULL &&
		(ts = hash_search(stats_cache, &key, HASH_FIND, &found)) != NULL)
		return ts;

	/* Decode first: catalog lookups may run the invalidation callback. */
	memset(&decoded, 0, sizeof(decoded));
	decoded.key = key;
	decoded.nonnull = 1.0 - form->stanullfrac;
	DecodeTraitStats(statsTuple, &decoded);

	if (stats_cxt == NULL)
	{
		stats_cxt = AllocSetContextCreate(TopMemoryContext, "panko trait statistics",
										  ALLOCSET_DEFAULT_SIZES);
		CacheRegisterSyscacheCallback(STATRELATTINH, InvalidateTraitStats, (Datum) 0);
	}
	if (stats_cache == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(TraitStatsKey);
		ctl.entrysize = sizeof(TraitStats);
		ctl.hcxt = stats_cxt;
		stats_cache = hash_create("panko trait statistics", 64, &ctl,
								  HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	ts = hash_search(stats_cache, &key, HASH_ENTER, &found);
	*ts = decoded;
	if (decoded.valid)
	{
		ts->values = MemoryContextAlloc(stats_cxt, sizeof(bytea *) * Max(decoded.nvalues, 1));
		ts->numbers = MemoryContextAlloc(stats_cxt, sizeof(float4) * Max(decoded.nvalues, 1));
		for (int i = 0; i < decoded.nvalues; i++)
		{
			ts->values[i] = MemoryContextAlloc(stats_cxt, VARSIZE(decoded.values[i]));
			memcpy(ts->values[i], decoded.values[i], VARSIZE(decoded.values[i]));
			ts->numbers[i] = decoded.numbers[i];
		}
	}
	return ts;
}

/* The statistics of the column the planner asks about. */
static TraitStats *
LoadTraitStats(VariableStatData *vardata)
{
	return LoadTraitStatsTuple(vardata->statsTuple);
}

/* First statistics element not below (key, keylen). */
static int
LowerBound(TraitStats *ts, const char *key, int keylen)
{
	int			lo = 0,
				hi = ts->nvalues;

	while (lo < hi)
	{
		int			mid = lo + (hi - lo) / 2;
		bytea	   *v = ts->values[mid];

		if (TraitBytesCompare(VARDATA_ANY(v), VARSIZE_ANY_EXHDR(v), key, keylen) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/*
 * Fraction of rows matching one filter (op on the key "bound", whose first
 * prefixlen bytes are name\0type); op 0 means "has the name".
 */
static double
FilterSelectivity(TraitStats *ts, int op, bytea *bound, int prefixlen)
{
	const char *b = VARDATA_ANY(bound);
	int			blen = VARSIZE_ANY_EXHDR(bound);
	double		in_prefix = 0,
				matching = 0,
				equal = -1;

	if (!ts->valid)
	{
		switch (op)
		{
			case 0:
				return TRAIT_EXIST_SEL;
			case TQ_EQ:
				return DEFAULT_EQ_SEL;
			case TQ_NE:
				return TRAIT_NE_SEL;
			default:
				return DEFAULT_INEQ_SEL;
		}
	}

	for (int i = LowerBound(ts, b, prefixlen); i < ts->nvalues; i++)
	{
		bytea	   *v = ts->values[i];
		const char *k = VARDATA_ANY(v);
		int			klen = VARSIZE_ANY_EXHDR(v);
		double		f = ts->numbers[i];
		int			cmp;

		if (klen < prefixlen || memcmp(k, b, prefixlen) != 0)
			break;
		in_prefix += f;
		cmp = TraitBytesCompare(k + prefixlen, klen - prefixlen, b + prefixlen, blen - prefixlen);
		if (cmp == 0)
			equal = f;
		if (op == 0 || TraitOpHolds(op, cmp))
			matching += f;
	}

	if (op == TQ_EQ)
		return equal >= 0 ? equal : ts->minfreq / 2;
	if (in_prefix == 0)
		return op == 0 ? TRAIT_EXIST_SEL : (op == TQ_NE ? TRAIT_NE_SEL : DEFAULT_INEQ_SEL);
	return Max(matching, ts->minfreq / 2);
}

/* The constant side of "traits OP constant", or NULL. */
static Const *
ConstantArgument(PlannerInfo *root, List *args, int varRelid, VariableStatData *vardata)
{
	Node	   *other;
	bool		varonleft;

	if (!get_restriction_variable(root, args, varRelid, vardata, &other, &varonleft))
		return NULL;
	if (!IsA(other, Const))
	{
		ReleaseVariableStats(*vardata);
		return NULL;
	}
	return (Const *) other;
}

/* A product of estimates is still a probability. */
static Selectivity
Clamp(double s)
{
	CLAMP_PROBABILITY(s);
	return (Selectivity) s;
}

/* The selectivity of one filter on (name, type): a trait is an "=" filter. */
static double
TraitSelectivity(TraitStats *ts, const TraitItem *item)
{
	bool		lossy;
	bytea	   *key = TraitGinKey(item, &lossy);

	return FilterSelectivity(ts, item->op, key,
							 TraitGinPrefix(NULL, item->name, item->namelen, item->type));
}

/*
 * traits @@ query and traits @> traits: the product of each filter's
 * selectivity.
 */
static double
ItemsSelectivity(TraitStats *ts, const TraitItems *items)
{
	double		s = 1.0;

	for (int i = 0; i < items->count; i++)
	{
		TraitItem	item = TraitItemsGet(items, i);

		s *= TraitSelectivity(ts, &item);
	}
	return s;
}

/* traits @@ query */
static double
QuerySelectivity(TraitStats *ts, Datum value)
{
	TraitItems	items = TraitQueryItems(DatumGetTraitQueryP(value));

	return ItemsSelectivity(ts, &items);
}

/* traits @> traits: every listed trait equal. */
static double
ContainSelectivity(TraitStats *ts, Datum value)
{
	TraitItems	items = TraitsItems(DatumGetTraitsP(value));

	return ItemsSelectivity(ts, &items);
}

/* traits ? name: how common the name is among the common traits. */
static double
ExistSelectivity(TraitStats *ts, Datum value)
{
	text	   *name = DatumGetTextPP(value);
	bytea	   *prefix = TraitGinStartKey(VARDATA_ANY(name), VARSIZE_ANY_EXHDR(name), -1, NULL, 0);

	return FilterSelectivity(ts, 0, prefix, VARSIZE(prefix) - VARHDRSZ);
}

/*
 * A restriction estimator: "traits OP constant" gets what the given
 * function says of the constant, times the non-null fraction; anything
 * else gets the default.  The types are checked, not assumed: an operator
 * of other types could name these estimators, and reading an integer as
 * traits would crash the backend.
 */
static Datum
Restriction(FunctionCallInfo fcinfo, double (*estimate) (TraitStats *, Datum),
			Oid consttype, double unknown)
{
	PlannerInfo *root = (PlannerInfo *) PG_GETARG_POINTER(0);
	List	   *args = (List *) PG_GETARG_POINTER(2);
	int			varRelid = PG_GETARG_INT32(3);
	VariableStatData vardata;
	Const	   *c = ConstantArgument(root, args, varRelid, &vardata);
	TraitStats *ts;
	double		s;

	if (c == NULL)
		PG_RETURN_FLOAT8(unknown);
	if (vardata.vartype != PankoTypeOid("traits") || c->consttype != consttype)
	{
		ReleaseVariableStats(vardata);
		PG_RETURN_FLOAT8(unknown);
	}
	if (c->constisnull)
	{
		ReleaseVariableStats(vardata);
		PG_RETURN_FLOAT8(0.0);
	}
	ts = LoadTraitStats(&vardata);
	s = estimate(ts, c->constvalue) * ts->nonnull;
	ReleaseVariableStats(vardata);
	PG_RETURN_FLOAT8(Clamp(s));
}

/* The restriction estimators of @@, @> (and <@) and ?. */
Datum
traits_matchsel(PG_FUNCTION_ARGS)
{
	return Restriction(fcinfo, QuerySelectivity, PankoTypeOid("traitquery"), DEFAULT_EQ_SEL);
}

Datum
traits_containsel(PG_FUNCTION_ARGS)
{
	return Restriction(fcinfo, ContainSelectivity, PankoTypeOid("traits"), DEFAULT_EQ_SEL);
}

Datum
traits_existsel(PG_FUNCTION_ARGS)
{
	return Restriction(fcinfo, ExistSelectivity, TEXTOID, TRAIT_EXIST_SEL);
}

/*
 * The fraction of one table's events that match a query, from the table's
 * statistics; false when it has none yet.
 */
bool
TraitQueryEstimate(Oid relid, AttrNumber attnum, const TraitQuery *q, double *selectivity)
{
	HeapTuple	tuple = SearchSysCache3(STATRELATTINH, ObjectIdGetDatum(relid),
										Int16GetDatum(attnum), BoolGetDatum(false));
	TraitStats *ts;

	if (!HeapTupleIsValid(tuple))
		return false;
	ts = LoadTraitStatsTuple(tuple);
	if (ts->valid)
	{
		TraitItems	items = TraitQueryItems(q);

		*selectivity = ItemsSelectivity(ts, &items) * ts->nonnull;
	}
	ReleaseSysCache(tuple);
	return ts->valid;
}
