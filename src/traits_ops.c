/*
 * traits_ops.c
 *		Operators and accessors on panko.traits.  The operators used in index
 *		conditions never raise an error for any stored value, so they can be
 *		declared LEAKPROOF and used under row-level security.
 */
#include "postgres.h"

#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "traits.h"

PG_FUNCTION_INFO_V1(traits_exist);
PG_FUNCTION_INFO_V1(traits_contains);
PG_FUNCTION_INFO_V1(traits_contained);
PG_FUNCTION_INFO_V1(traits_fetch_text);
PG_FUNCTION_INFO_V1(traits_eq);
PG_FUNCTION_INFO_V1(traits_ne);
PG_FUNCTION_INFO_V1(trait_text);
PG_FUNCTION_INFO_V1(trait_int);
PG_FUNCTION_INFO_V1(trait_float);
PG_FUNCTION_INFO_V1(trait_datetime);
PG_FUNCTION_INFO_V1(trait_count);

/* traits ? name: has a trait of that name, of any type. */
Datum
traits_exist(PG_FUNCTION_ARGS)
{
	Traits	   *t = PG_GETARG_TRAITS_P(0);
	text	   *name = PG_GETARG_TEXT_PP(1);

	PG_RETURN_BOOL(TraitsFindName(t, VARDATA_ANY(name), VARSIZE_ANY_EXHDR(name)) >= 0);
}

/* Every (name, type, value) of b is in a, with an equal value. */
static bool
TraitsContain(Traits *a, Traits *b)
{
	for (int i = 0; i < (int) TRAITS_COUNT(b); i++)
	{
		int			j = TraitsFind(a, TRAIT_NAME(b, i), TRAIT_NAMELEN(b, i), TRAIT_TYPE(b, i));

		if (j < 0 ||
			TraitCompareValue(TRAIT_TYPE(b, i), TRAIT_VALUE(a, j), TRAIT_VALLEN(a, j),
							  TRAIT_VALUE(b, i), TRAIT_VALLEN(b, i)) != 0)
			return false;
	}
	return true;
}

Datum
traits_contains(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(TraitsContain(PG_GETARG_TRAITS_P(0), PG_GETARG_TRAITS_P(1)));
}

Datum
traits_contained(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(TraitsContain(PG_GETARG_TRAITS_P(1), PG_GETARG_TRAITS_P(0)));
}

/* Canonical form makes equality a byte comparison. */
static bool
TraitsEqual(Traits *a, Traits *b)
{
	return VARSIZE(a) == VARSIZE(b) && memcmp(a, b, VARSIZE(a)) == 0;
}

Datum
traits_eq(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(TraitsEqual(PG_GETARG_TRAITS_P(0), PG_GETARG_TRAITS_P(1)));
}

Datum
traits_ne(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(!TraitsEqual(PG_GETARG_TRAITS_P(0), PG_GETARG_TRAITS_P(1)));
}

/*
 * traits -> name: the value as the API prints it.  When the name is present
 * with several types, the first in type order (string, integer, float,
 * datetime) wins.
 */
Datum
traits_fetch_text(PG_FUNCTION_ARGS)
{
	Traits	   *t = PG_GETARG_TRAITS_P(0);
	text	   *name = PG_GETARG_TEXT_PP(1);
	int			i = TraitsFindName(t, VARDATA_ANY(name), VARSIZE_ANY_EXHDR(name));
	StringInfoData buf;

	if (i < 0)
		PG_RETURN_NULL();
	initStringInfo(&buf);
	TraitValueToText(&buf, TRAIT_TYPE(t, i), TRAIT_VALUE(t, i), TRAIT_VALLEN(t, i));
	PG_RETURN_TEXT_P(cstring_to_text_with_len(buf.data, buf.len));
}

/* Index of the trait (name, type), or -1; for the typed accessors. */
static int
FindTyped(FunctionCallInfo fcinfo, int type, Traits **tp)
{
	Traits	   *t = PG_GETARG_TRAITS_P(0);
	text	   *name = PG_GETARG_TEXT_PP(1);

	*tp = t;
	return TraitsFind(t, VARDATA_ANY(name), VARSIZE_ANY_EXHDR(name), type);
}

Datum
trait_text(PG_FUNCTION_ARGS)
{
	Traits	   *t;
	int			i = FindTyped(fcinfo, TRAIT_STRING, &t);

	if (i < 0)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text_with_len(TRAIT_VALUE(t, i), TRAIT_VALLEN(t, i)));
}

Datum
trait_int(PG_FUNCTION_ARGS)
{
	Traits	   *t;
	int			i = FindTyped(fcinfo, TRAIT_INTEGER, &t);

	if (i < 0)
		PG_RETURN_NULL();
	PG_RETURN_INT64(TraitReadInt64(TRAIT_VALUE(t, i)));
}

Datum
trait_float(PG_FUNCTION_ARGS)
{
	Traits	   *t;
	int			i = FindTyped(fcinfo, TRAIT_FLOAT, &t);

	if (i < 0)
		PG_RETURN_NULL();
	PG_RETURN_FLOAT8(TraitReadFloat8(TRAIT_VALUE(t, i)));
}

/* Datetime traits are UTC, so they come back as timestamptz. */
Datum
trait_datetime(PG_FUNCTION_ARGS)
{
	Traits	   *t;
	int			i = FindTyped(fcinfo, TRAIT_DATETIME, &t);

	if (i < 0)
		PG_RETURN_NULL();
	PG_RETURN_TIMESTAMPTZ((TimestampTz) TraitReadInt64(TRAIT_VALUE(t, i)));
}

Datum
trait_count(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT32((int32) TRAITS_COUNT(PG_GETARG_TRAITS_P(0)));
}

PG_FUNCTION_INFO_V1(each_trait);

/* panko.each_trait(traits): one row (name, type, value) per trait, as hstore's each(). */
Datum
each_trait(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Traits	   *t = PG_GETARG_TRAITS_P(0);
	StringInfoData buf;

	InitMaterializedSRF(fcinfo, 0);
	initStringInfo(&buf);
	for (int i = 0; i < (int) TRAITS_COUNT(t); i++)
	{
		Datum		values[3];
		bool		nulls[3] = {false, false, false};

		resetStringInfo(&buf);
		TraitValueToText(&buf, TRAIT_TYPE(t, i), TRAIT_VALUE(t, i), TRAIT_VALLEN(t, i));
		values[0] = PointerGetDatum(cstring_to_text_with_len(TRAIT_NAME(t, i), TRAIT_NAMELEN(t, i)));
		values[1] = CStringGetTextDatum(TraitTypeName(TRAIT_TYPE(t, i)));
		values[2] = PointerGetDatum(cstring_to_text_with_len(buf.data, buf.len));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	PG_RETURN_VOID();
}
