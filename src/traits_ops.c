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
PG_FUNCTION_INFO_V1(each_trait);

/* traits ? name: has a trait of that name, of any type. */
Datum
traits_exist(PG_FUNCTION_ARGS)
{
	Traits	   *t = PG_GETARG_TRAITS_P(0);
	text	   *name = PG_GETARG_TEXT_PP(1);

	PG_RETURN_BOOL(TraitsFindName(t, VARDATA_ANY(name), VARSIZE_ANY_EXHDR(name)) >= 0);
}

/*
 * traits @> traits: every (name, type, value) of the right is on the left,
 * with an equal value (each trait a predicate "=").
 */
Datum
traits_contains(PG_FUNCTION_ARGS)
{
	TraitItems	items = TraitsItems(PG_GETARG_TRAITS_P(1));

	PG_RETURN_BOOL(TraitsHoldAll(PG_GETARG_TRAITS_P(0), &items));
}

/* traits <@ traits, the commutator of @> */
Datum
traits_contained(PG_FUNCTION_ARGS)
{
	TraitItems	items = TraitsItems(PG_GETARG_TRAITS_P(0));

	PG_RETURN_BOOL(TraitsHoldAll(PG_GETARG_TRAITS_P(1), &items));
}

/* Canonical form makes equality a byte comparison. */
static bool
TraitsEqual(const Traits *a, const Traits *b)
{
	return VARSIZE(a) == VARSIZE(b) && memcmp(a, b, VARSIZE(a)) == 0;
}

/* traits = traits */
Datum
traits_eq(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(TraitsEqual(PG_GETARG_TRAITS_P(0), PG_GETARG_TRAITS_P(1)));
}

/* traits <> traits */
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
	TraitItem	item;
	StringInfoData buf;

	if (i < 0)
		PG_RETURN_NULL();
	item = TraitsItem(t, i);
	initStringInfo(&buf);
	TraitValueToText(&buf, item.type, item.value, item.vallen);
	PG_RETURN_TEXT_P(cstring_to_text_with_len(buf.data, buf.len));
}

/*
 * The trait (name, type) of the typed accessors' arguments (traits, name),
 * or false when there is none: they return NULL then.
 */
static bool
FindTyped(FunctionCallInfo fcinfo, int type, TraitItem *item)
{
	Traits	   *t = PG_GETARG_TRAITS_P(0);
	text	   *name = PG_GETARG_TEXT_PP(1);
	int			i = TraitsFind(t, VARDATA_ANY(name), VARSIZE_ANY_EXHDR(name), type);

	if (i < 0)
		return false;
	*item = TraitsItem(t, i);
	return true;
}

/* panko.trait_text(traits, name) */
Datum
trait_text(PG_FUNCTION_ARGS)
{
	TraitItem	item;

	if (!FindTyped(fcinfo, TRAIT_STRING, &item))
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text_with_len(item.value, item.vallen));
}

/* panko.trait_int(traits, name) */
Datum
trait_int(PG_FUNCTION_ARGS)
{
	TraitItem	item;

	if (!FindTyped(fcinfo, TRAIT_INTEGER, &item))
		PG_RETURN_NULL();
	PG_RETURN_INT64(TraitReadInt64(item.value));
}

/* panko.trait_float(traits, name) */
Datum
trait_float(PG_FUNCTION_ARGS)
{
	TraitItem	item;

	if (!FindTyped(fcinfo, TRAIT_FLOAT, &item))
		PG_RETURN_NULL();
	PG_RETURN_FLOAT8(TraitReadFloat8(item.value));
}

/* Datetime traits are UTC, so they come back as timestamptz. */
Datum
trait_datetime(PG_FUNCTION_ARGS)
{
	TraitItem	item;

	if (!FindTyped(fcinfo, TRAIT_DATETIME, &item))
		PG_RETURN_NULL();
	PG_RETURN_TIMESTAMPTZ((TimestampTz) TraitReadInt64(item.value));
}

/* panko.trait_count(traits) */
Datum
trait_count(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT32((int32) TraitsCount(PG_GETARG_TRAITS_P(0)));
}

/* panko.each_trait(traits): one row (name, type, value) per trait, as hstore's each(). */
Datum
each_trait(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Traits	   *t = PG_GETARG_TRAITS_P(0);
	StringInfoData buf;

	InitMaterializedSRF(fcinfo, 0);
	initStringInfo(&buf);
	for (int i = 0; i < TraitsCount(t); i++)
	{
		TraitItem	item = TraitsItem(t, i);
		Datum		values[3];
		bool		nulls[3] = {false, false, false};

		resetStringInfo(&buf);
		TraitValueToText(&buf, item.type, item.value, item.vallen);
		values[0] = PointerGetDatum(cstring_to_text_with_len(item.name, item.namelen));
		values[1] = CStringGetTextDatum(TraitTypeName(item.type));
		values[2] = PointerGetDatum(cstring_to_text_with_len(buf.data, buf.len));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	PG_RETURN_VOID();
}
