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
#include "fmgr.h"
#include "nodes/nodeFuncs.h"
#include "utils/lsyscache.h"
#include "utils/selfuncs.h"

#include "traits.h"

PG_FUNCTION_INFO_V1(traits_matchsel);
PG_FUNCTION_INFO_V1(traits_containsel);
PG_FUNCTION_INFO_V1(traits_existsel);

#define TRAIT_NE_SEL		0.9
#define TRAIT_EXIST_SEL		0.5

/* Most-common-trait statistics of a column, when ANALYZE has made them. */
typedef struct TraitStats
{
	bool		valid;
	AttStatsSlot slot;
	float4		minfreq;
	float4		nonnull;
} TraitStats;

static void
LoadTraitStats(VariableStatData *vardata, TraitStats *ts)
{
	memset(ts, 0, sizeof(TraitStats));
	ts->nonnull = 1.0;
	if (!HeapTupleIsValid(vardata->statsTuple))
		return;
	ts->nonnull = 1.0 - ((Form_pg_statistic) GETSTRUCT(vardata->statsTuple))->stanullfrac;
	if (!get_attstatsslot(&ts->slot, vardata->statsTuple, STATISTIC_KIND_MCELEM, InvalidOid,
						  ATTSTATSSLOT_VALUES | ATTSTATSSLOT_NUMBERS))
		return;
	if (ts->slot.nnumbers != ts->slot.nvalues + 3)
	{
		free_attstatsslot(&ts->slot);
		return;
	}
	ts->minfreq = ts->slot.numbers[ts->slot.nvalues];
	ts->valid = true;
}

static void
FreeTraitStats(TraitStats *ts)
{
	if (ts->valid)
		free_attstatsslot(&ts->slot);
}

/* First statistics element not below (key, keylen). */
static int
LowerBound(TraitStats *ts, const char *key, int keylen)
{
	int			lo = 0,
				hi = ts->slot.nvalues;

	while (lo < hi)
	{
		int			mid = lo + (hi - lo) / 2;
		bytea	   *v = DatumGetByteaPP(ts->slot.values[mid]);

		if (TraitKeyCompare(VARDATA_ANY(v), VARSIZE_ANY_EXHDR(v), key, keylen) < 0)
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

	for (int i = LowerBound(ts, b, prefixlen); i < ts->slot.nvalues; i++)
	{
		bytea	   *v = DatumGetByteaPP(ts->slot.values[i]);
		const char *k = VARDATA_ANY(v);
		int			klen = VARSIZE_ANY_EXHDR(v);
		double		f = ts->slot.numbers[i];
		int			cmp;

		if (klen < prefixlen || memcmp(k, b, prefixlen) != 0)
			break;
		in_prefix += f;
		cmp = TraitKeyCompare(k + prefixlen, klen - prefixlen, b + prefixlen, blen - prefixlen);
		if (cmp == 0)
			equal = f;
		if ((op == 0) ||
			(op == TQ_EQ && cmp == 0) || (op == TQ_NE && cmp != 0) ||
			(op == TQ_LT && cmp < 0) || (op == TQ_LE && cmp <= 0) ||
			(op == TQ_GT && cmp > 0) || (op == TQ_GE && cmp >= 0))
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

static Selectivity
Clamp(double s)
{
	CLAMP_PROBABILITY(s);
	return (Selectivity) s;
}

/* traits @@ query: the product of each filter's selectivity. */
Datum
traits_matchsel(PG_FUNCTION_ARGS)
{
	PlannerInfo *root = (PlannerInfo *) PG_GETARG_POINTER(0);
	List	   *args = (List *) PG_GETARG_POINTER(2);
	int			varRelid = PG_GETARG_INT32(3);
	VariableStatData vardata;
	Const	   *c = ConstantArgument(root, args, varRelid, &vardata);
	TraitStats	ts;
	TraitQuery *q;
	double		s = 1.0;

	if (c == NULL)
		PG_RETURN_FLOAT8(DEFAULT_EQ_SEL);
	if (c->constisnull)
	{
		ReleaseVariableStats(vardata);
		PG_RETURN_FLOAT8(0.0);
	}
	LoadTraitStats(&vardata, &ts);
	q = (TraitQuery *) PG_DETOAST_DATUM(c->constvalue);
	for (int i = 0; i < (int) TRAITS_COUNT(q); i++)
	{
		bool		truncated;
		bytea	   *key = TraitGinKey(TQ_NAME(q, i), TQ_NAMELEN(q, i), TQ_TYPE(q, i),
									  TQ_VALUE(q, i), TQ_VALLEN(q, i), &truncated);

		s *= FilterSelectivity(&ts, TQ_OP(q, i), key,
							  TraitGinPrefix(NULL, TQ_NAME(q, i), TQ_NAMELEN(q, i), TQ_TYPE(q, i)));
	}
	s *= ts.nonnull;
	FreeTraitStats(&ts);
	ReleaseVariableStats(vardata);
	PG_RETURN_FLOAT8(Clamp(s));
}

/* traits @> traits: every listed trait equal. */
Datum
traits_containsel(PG_FUNCTION_ARGS)
{
	PlannerInfo *root = (PlannerInfo *) PG_GETARG_POINTER(0);
	List	   *args = (List *) PG_GETARG_POINTER(2);
	int			varRelid = PG_GETARG_INT32(3);
	VariableStatData vardata;
	Const	   *c = ConstantArgument(root, args, varRelid, &vardata);
	TraitStats	ts;
	Traits	   *t;
	double		s = 1.0;

	if (c == NULL)
		PG_RETURN_FLOAT8(DEFAULT_EQ_SEL);
	if (c->constisnull)
	{
		ReleaseVariableStats(vardata);
		PG_RETURN_FLOAT8(0.0);
	}
	LoadTraitStats(&vardata, &ts);
	t = DatumGetTraitsP(c->constvalue);
	for (int i = 0; i < (int) TRAITS_COUNT(t); i++)
	{
		bool		truncated;
		bytea	   *key = TraitGinKey(TRAIT_NAME(t, i), TRAIT_NAMELEN(t, i), TRAIT_TYPE(t, i),
									  TRAIT_VALUE(t, i), TRAIT_VALLEN(t, i), &truncated);

		s *= FilterSelectivity(&ts, TQ_EQ, key,
							  TraitGinPrefix(NULL, TRAIT_NAME(t, i), TRAIT_NAMELEN(t, i), TRAIT_TYPE(t, i)));
	}
	s *= ts.nonnull;
	FreeTraitStats(&ts);
	ReleaseVariableStats(vardata);
	PG_RETURN_FLOAT8(Clamp(s));
}

/* traits ? name: how common the name is among the common traits. */
Datum
traits_existsel(PG_FUNCTION_ARGS)
{
	PlannerInfo *root = (PlannerInfo *) PG_GETARG_POINTER(0);
	List	   *args = (List *) PG_GETARG_POINTER(2);
	int			varRelid = PG_GETARG_INT32(3);
	VariableStatData vardata;
	Const	   *c = ConstantArgument(root, args, varRelid, &vardata);
	TraitStats	ts;
	text	   *name;
	bytea	   *prefix;
	int			plen;
	double		s;

	if (c == NULL)
		PG_RETURN_FLOAT8(TRAIT_EXIST_SEL);
	if (c->constisnull)
	{
		ReleaseVariableStats(vardata);
		PG_RETURN_FLOAT8(0.0);
	}
	LoadTraitStats(&vardata, &ts);
	name = DatumGetTextPP(c->constvalue);
	plen = TraitGinPrefix(NULL, VARDATA_ANY(name), VARSIZE_ANY_EXHDR(name), -1);
	prefix = (bytea *) palloc(VARHDRSZ + plen);
	SET_VARSIZE(prefix, VARHDRSZ + plen);
	TraitGinPrefix(VARDATA(prefix), VARDATA_ANY(name), VARSIZE_ANY_EXHDR(name), -1);
	s = FilterSelectivity(&ts, 0, prefix, plen) * ts.nonnull;
	FreeTraitStats(&ts);
	ReleaseVariableStats(vardata);
	PG_RETURN_FLOAT8(Clamp(s));
}
