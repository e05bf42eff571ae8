/*
 * traits_sel.c
 *		Selectivity of the trait operators.  Without an estimate the planner
 *		assumes 1% of the events match any trait filter and often prefers a
 *		sequential scan; Panko's filters are mostly far more selective than
 *		that (an instance, a request, a project), so estimate from the query
 *		itself: equality like a btree equality, ranges like a btree range.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_statistic.h"
#include "fmgr.h"
#include "nodes/nodeFuncs.h"
#include "utils/selfuncs.h"

#include "traits.h"

PG_FUNCTION_INFO_V1(traits_matchsel);
PG_FUNCTION_INFO_V1(traits_containsel);
PG_FUNCTION_INFO_V1(traits_existsel);

#define TRAIT_NE_SEL 0.9

/* Fraction of non-null rows, from the column's statistics when there are any. */
static double
NonNullFraction(VariableStatData *vardata)
{
	if (HeapTupleIsValid(vardata->statsTuple))
	{
		Form_pg_statistic stats = (Form_pg_statistic) GETSTRUCT(vardata->statsTuple);

		return 1.0 - stats->stanullfrac;
	}
	return 1.0;
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
	TraitQuery *q;
	double		s = 1.0;

	if (c == NULL)
		PG_RETURN_FLOAT8(DEFAULT_EQ_SEL);
	if (c->constisnull || c->consttype == InvalidOid)
	{
		ReleaseVariableStats(vardata);
		PG_RETURN_FLOAT8(0.0);
	}
	q = (TraitQuery *) PG_DETOAST_DATUM(c->constvalue);
	for (int i = 0; i < (int) TRAITS_COUNT(q); i++)
	{
		switch (TQ_OP(q, i))
		{
			case TQ_EQ:
				s *= DEFAULT_EQ_SEL;
				break;
			case TQ_NE:
				s *= TRAIT_NE_SEL;
				break;
			default:
				s *= DEFAULT_INEQ_SEL;
				break;
		}
	}
	s *= NonNullFraction(&vardata);
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
	Traits	   *t;
	double		s = 1.0;

	if (c == NULL)
		PG_RETURN_FLOAT8(DEFAULT_EQ_SEL);
	if (c->constisnull)
	{
		ReleaseVariableStats(vardata);
		PG_RETURN_FLOAT8(0.0);
	}
	t = DatumGetTraitsP(c->constvalue);
	for (int i = 0; i < (int) TRAITS_COUNT(t); i++)
		s *= DEFAULT_EQ_SEL;
	s *= NonNullFraction(&vardata);
	ReleaseVariableStats(vardata);
	PG_RETURN_FLOAT8(Clamp(s));
}

/* traits ? name: most events carry the common trait names. */
Datum
traits_existsel(PG_FUNCTION_ARGS)
{
	PlannerInfo *root = (PlannerInfo *) PG_GETARG_POINTER(0);
	List	   *args = (List *) PG_GETARG_POINTER(2);
	int			varRelid = PG_GETARG_INT32(3);
	VariableStatData vardata;
	Const	   *c = ConstantArgument(root, args, varRelid, &vardata);
	double		s = DEFAULT_MATCHING_SEL * 10;

	if (c == NULL)
		PG_RETURN_FLOAT8(s);
	s *= NonNullFraction(&vardata);
	ReleaseVariableStats(vardata);
	PG_RETURN_FLOAT8(Clamp(s));
}
