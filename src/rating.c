/*
 * rating.c
 *		CloudKitty's rated data in C: panko.rating_sum(traits, name), the
 *		exact sum of a decimal string trait (qty and price) for grouped
 *		totals, panko.rating_point(traits, begin, type) and
 *		panko.rating_point(traits, generated, event_type_id), a data point
 *		as retrieve returns it, panko.rating_check_points(points), push's
 *		checks of a whole array of points in one pass,
 *		panko.rating_store_frames(frames), the driver's push checked and
 *		stored in one pass, and panko.rating_keys(traits, names), a
 *		point's group key for total.
 *
 * CloudKitty counts money in Python's Decimal, so a total must equal the
 * Decimal sum of the same points, digit for digit.  Parsing every value
 * into numeric and adding numerics is exact but slow; most prices have few
 * digits.  So values with at most RATING_FAST_SCALE fractional digits and
 * RATING_FAST_DIGITS digits in all are added as 128-bit integers scaled by
 * 10^scale (the scale grows with the values seen), and anything longer, or
 * a sum that would overflow, goes into an exact numeric sum next to it.
 * The result is the two added together: always the exact sum.  The state
 * serialises, so the aggregate runs in parallel plans.
 */
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/array.h"
#include "utils/jsonb.h"
#include "libpq/pqformat.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"

#include "traits.h"
#include "isotime.h"
#include "numbers.h"
#include "panko.h"
#include "event_store.h"

PG_FUNCTION_INFO_V1(rating_sum_trans);
PG_FUNCTION_INFO_V1(rating_sum_combine);
PG_FUNCTION_INFO_V1(rating_sum_final);
PG_FUNCTION_INFO_V1(rating_sum_serialize);
PG_FUNCTION_INFO_V1(rating_sum_deserialize);
PG_FUNCTION_INFO_V1(rating_point);
PG_FUNCTION_INFO_V1(rating_point_stored);
PG_FUNCTION_INFO_V1(rating_check_points);
PG_FUNCTION_INFO_V1(rating_rollup_points);
PG_FUNCTION_INFO_V1(rating_store_frames);
PG_FUNCTION_INFO_V1(rating_keys);
PG_FUNCTION_INFO_V1(rating_rollup_request);

#define RATING_TYPE_PREFIX	"cloudkitty."	/* of a metric type's event type */
#define RATING_FAST_SCALE	18		/* fractional digits of the integer sum */
#define RATING_FAST_DIGITS	36		/* digits of one value on the fast path */

typedef struct RatingSum
{
	int128		acc;			/* sum of the fast values, times 10^scale */
	int32		scale;
	Numeric		slow;			/* exact sum of the rest, or NULL */
	MemoryContext agg;			/* where slow lives */
} RatingSum;

static int128 pow10_128[RATING_FAST_SCALE + 1];

/* 10^k as int128, for k <= RATING_FAST_SCALE. */
static inline int128
Pow10(int k)
{
	if (pow10_128[0] == 0)
	{
		pow10_128[0] = 1;
		for (int i = 1; i <= RATING_FAST_SCALE; i++)
			pow10_128[i] = pow10_128[i - 1] * 10;
	}
	return pow10_128[k];
}

/*
 * Add a numeric to the slow sum, kept in the aggregate's memory context
 * (the previous sum is freed: a group may see a million long values).
 */
static void
AddSlow(RatingSum *s, Numeric n)
{
	MemoryContext old = MemoryContextSwitchTo(s->agg);
	Numeric		prev = s->slow;

	if (prev == NULL)
	{
		s->slow = (Numeric) palloc(VARSIZE(n));
		memcpy(s->slow, n, VARSIZE(n));
	}
	else
	{
		s->slow = DatumGetNumeric(DirectFunctionCall2(numeric_add,
													  NumericGetDatum(prev),
													  NumericGetDatum(n)));
		pfree(prev);
	}
	MemoryContextSwitchTo(old);
}

/* The exact decimal value of v * 10^-scale, as numeric. */
static Numeric
Int128ToNumeric(int128 v, int scale)
{
	char		buf[64];
	char	   *p = buf + sizeof(buf) - 1;
	bool		neg = v < 0;
	uint128		u = neg ? -(uint128) v : (uint128) v;
	int			digits = 0;

	*p = '\0';
	do
	{
		*--p = '0' + (int) (u % 10);
		u /= 10;
		digits++;
		if (digits == scale)
			*--p = '.';
	} while (u != 0 || digits < scale);
	if (digits == scale)
		*--p = '0';
	if (neg)
		*--p = '-';
	return DatumGetNumeric(DirectFunctionCall3(numeric_in, CStringGetDatum(p),
											   ObjectIdGetDatum(InvalidOid),
											   Int32GetDatum(-1)));
}

/* Move the integer sum into the slow sum (before it would overflow). */
static void
SpillAcc(RatingSum *s)
{
	if (s->acc != 0)
		AddSlow(s, Int128ToNumeric(s->acc, s->scale));
	s->acc = 0;
}

/* Add v * 10^-scale to the integer sum, or to the slow sum if it cannot. */
static void
AddFast(RatingSum *s, int128 v, int scale)
{
	int128		sum;

	if (scale > s->scale)
	{
		int128		f = Pow10(scale - s->scale);
		int128		rescaled;

		if (__builtin_mul_overflow(s->acc, f, &rescaled))
			SpillAcc(s);
		else
			s->acc = rescaled;
		s->scale = scale;
	}
	else if (scale < s->scale)
	{
		int128		scaled;

		if (__builtin_mul_overflow(v, Pow10(s->scale - scale), &scaled))
		{
			AddSlow(s, Int128ToNumeric(v, scale));
			return;
		}
		v = scaled;
	}
	if (__builtin_add_overflow(s->acc, v, &sum))
	{
		SpillAcc(s);
		s->acc = v;
	}
	else
		s->acc = sum;
}

/*
 * Parse a plain decimal ([-]digits[.digits]) of up to RATING_FAST_DIGITS
 * digits and RATING_FAST_SCALE fractional digits (trailing zeros do not
 * count) into v * 10^-scale; false for anything else.
 */
static bool
ParseFast(const char *p, int len, int128 *v, int *scale)
{
	const char *end = p + len;
	bool		neg = false;
	int128		acc = 0;
	int			digits = 0;
	int			frac = -1;
	int			zeros = 0;		/* trailing zeros of the fraction */

	if (p < end && *p == '-')
	{
		neg = true;
		p++;
	}
	if (p == end || !(*p >= '0' && *p <= '9'))
		return false;
	for (; p < end; p++)
	{
		if (*p >= '0' && *p <= '9')
		{
			if (frac >= 0 && *p == '0')
			{
				zeros++;
				frac++;
				continue;
			}
			/* the zeros held back were inner digits after all */
			for (; zeros > 0; zeros--)
			{
				acc *= 10;
				if (++digits > RATING_FAST_DIGITS)
					return false;
			}
			if (acc != 0 || *p != '0')
			{
				acc = acc * 10 + (*p - '0');
				if (++digits > RATING_FAST_DIGITS)
					return false;
			}
			if (frac >= 0)
				frac++;
		}
		else if (*p == '.' && frac < 0 && p + 1 < end)
			frac = 0;
		else
			return false;
	}
	if (frac < 0)
		frac = 0;
	frac -= zeros;
	if (frac > RATING_FAST_SCALE)
		return false;
	*v = neg ? -acc : acc;
	*scale = frac;
	return true;
}

static RatingSum *
NewState(MemoryContext agg)
{
	RatingSum  *s = (RatingSum *) MemoryContextAllocZero(agg, sizeof(RatingSum));

	s->agg = agg;
	return s;
}

/*
 * Add a decimal's text to a sum: as an integer when it is short, else as
 * numeric (whose own error fails a value that is not a decimal).
 */
static void
SumAddText(RatingSum *s, const char *p, int len)
{
	int128		v;
	int			scale;

	if (ParseFast(p, len, &v, &scale))
		AddFast(s, v, scale);
	else
	{
		char	   *str = pnstrdup(p, len);
		Numeric		n = DatumGetNumeric(DirectFunctionCall3(numeric_in, CStringGetDatum(str),
															ObjectIdGetDatum(InvalidOid),
															Int32GetDatum(-1)));

		AddSlow(s, n);
		pfree(n);
		pfree(str);
	}
}

/* The exact value of a sum. */
static Numeric
SumTotal(RatingSum *s)
{
	Numeric		n = Int128ToNumeric(s->acc, s->scale);

	if (s->slow)
		n = DatumGetNumeric(DirectFunctionCall2(numeric_add, NumericGetDatum(n),
												NumericGetDatum(s->slow)));
	return n;
}

/*
 * Transition: add the row's string trait of that name (rows without it add
 * nothing).  A value that is not a decimal fails the query (numeric's own
 * error), never a silent wrong total.
 */
Datum
rating_sum_trans(PG_FUNCTION_ARGS)
{
	MemoryContext agg;
	RatingSum  *s;
	Traits	   *t;
	text	   *name;
	int			i;
	TraitItem	item;

	if (!AggCheckCallContext(fcinfo, &agg))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("panko.rating_sum_trans called outside an aggregate")));
	s = PG_ARGISNULL(0) ? NewState(agg) : (RatingSum *) PG_GETARG_POINTER(0);
	if (PG_ARGISNULL(1) || PG_ARGISNULL(2))
		PG_RETURN_POINTER(s);
	t = (Traits *) PG_DETOAST_DATUM(PG_GETARG_DATUM(1));
	name = PG_GETARG_TEXT_PP(2);
	i = TraitsFind(t, VARDATA_ANY(name), VARSIZE_ANY_EXHDR(name), TRAIT_STRING);
	if (i < 0)
		PG_RETURN_POINTER(s);
	item = TraitsItem(t, i);
	SumAddText(s, item.value, item.vallen);
	PG_RETURN_POINTER(s);
}

/* Combine two partial sums (parallel workers). */
Datum
rating_sum_combine(PG_FUNCTION_ARGS)
{
	MemoryContext agg;
	RatingSum  *a;
	RatingSum  *b;

	if (!AggCheckCallContext(fcinfo, &agg))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("panko.rating_sum_combine called outside an aggregate")));
	if (PG_ARGISNULL(1))
	{
		if (PG_ARGISNULL(0))
			PG_RETURN_NULL();
		PG_RETURN_POINTER(PG_GETARG_POINTER(0));
	}
	b = (RatingSum *) PG_GETARG_POINTER(1);
	a = PG_ARGISNULL(0) ? NewState(agg) : (RatingSum *) PG_GETARG_POINTER(0);
	AddFast(a, b->acc, b->scale);
	if (b->slow)
		AddSlow(a, b->slow);
	PG_RETURN_POINTER(a);
}

/* The exact total; 0 for no rows (a total of nothing costs nothing). */
Datum
rating_sum_final(PG_FUNCTION_ARGS)
{
	RatingSum  *s = PG_ARGISNULL(0) ? NULL : (RatingSum *) PG_GETARG_POINTER(0);

	if (s == NULL)
		PG_RETURN_NUMERIC(Int128ToNumeric(0, 0));
	PG_RETURN_NUMERIC(SumTotal(s));
}

/* State -> bytea: scale, the integer sum in two halves, the slow numeric. */
Datum
rating_sum_serialize(PG_FUNCTION_ARGS)
{
	RatingSum  *s;
	StringInfoData buf;

	if (!AggCheckCallContext(fcinfo, NULL))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("panko.rating_sum_serialize called outside an aggregate")));
	s = (RatingSum *) PG_GETARG_POINTER(0);
	pq_begintypsend(&buf);
	pq_sendint32(&buf, s->scale);
	pq_sendint64(&buf, (int64) (s->acc >> 64));
	pq_sendint64(&buf, (int64) (uint64) s->acc);
	if (s->slow)
	{
		char	   *str = numeric_normalize(s->slow);

		pq_sendtext(&buf, str, strlen(str));
	}
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

/* bytea -> state. */
Datum
rating_sum_deserialize(PG_FUNCTION_ARGS)
{
	MemoryContext agg;
	bytea	   *b;
	StringInfoData buf;
	RatingSum  *s;
	int64		hi;
	uint64		lo;

	if (!AggCheckCallContext(fcinfo, &agg))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("panko.rating_sum_deserialize called outside an aggregate")));
	b = PG_GETARG_BYTEA_PP(0);
	buf.data = VARDATA_ANY(b);
	buf.len = VARSIZE_ANY_EXHDR(b);
	buf.maxlen = buf.len;
	buf.cursor = 0;
	s = NewState(agg);
	s->scale = pq_getmsgint(&buf, 4);
	hi = pq_getmsgint64(&buf);
	lo = (uint64) pq_getmsgint64(&buf);
	s->acc = (int128) (((uint128) (uint64) hi << 64) | lo);
	if (buf.cursor < buf.len)
	{
		int			len;
		char	   *str = pq_getmsgtext(&buf, buf.len - buf.cursor, &len);

		AddSlow(s, DatumGetNumeric(DirectFunctionCall3(numeric_in, CStringGetDatum(str),
													   ObjectIdGetDatum(InvalidOid),
													   Int32GetDatum(-1))));
	}
	PG_RETURN_POINTER(s);
}

/* Append a trait's value as JSON: a string quoted, an integer as a number. */
static void
AppendTraitJson(StringInfo buf, const Traits *t, const char *name, int type)
{
	int			i = TraitsFind(t, name, strlen(name), type);
	TraitItem	item;

	if (i < 0)
	{
		appendStringInfoString(buf, "null");
		return;
	}
	item = TraitsItem(t, i);
	if (type == TRAIT_INTEGER)
		appendStringInfo(buf, INT64_FORMAT, TraitReadInt64(item.value));
	else
	{
		char	   *str = pnstrdup(item.value, item.vallen);

		escape_json(buf, str);
		pfree(str);
	}
}

/* Append {name: value} of the string traits "<prefix>.<name>" as JSON. */
static void
AppendAttributesJson(StringInfo buf, const Traits *t, char prefix)
{
	int			n = TraitsCount(t);
	bool		first = true;

	appendStringInfoChar(buf, '{');
	for (int i = 0; i < n; i++)
	{
		TraitItem	item = TraitsItem(t, i);
		char	   *str;

		if (item.type != TRAIT_STRING || item.namelen < 3 ||
			item.name[0] != prefix || item.name[1] != '.')
			continue;
		if (!first)
			appendStringInfoChar(buf, ',');
		first = false;
		str = pnstrdup(item.name + 2, item.namelen - 2);
		escape_json(buf, str);
		pfree(str);
		appendStringInfoChar(buf, ':');
		str = pnstrdup(item.value, item.vallen);
		escape_json(buf, str);
		pfree(str);
	}
	appendStringInfoChar(buf, '}');
}

/*
 * [begin, period, type, unit, qty, price, groupby, metadata] of a point's
 * traits, as retrieve returns it; begin is written from at when given,
 * else taken as the text begin.
 */
static text *
PointJson(const Traits *t, const Timestamp *at, const char *begin, const char *type)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '[');
	if (at)
	{
		appendStringInfoChar(&buf, '"');
		PankoAppendTimestamp(&buf, *at);
		appendStringInfoChar(&buf, '"');
	}
	else
		escape_json(&buf, begin);
	appendStringInfoChar(&buf, ',');
	AppendTraitJson(&buf, t, "period", TRAIT_INTEGER);
	appendStringInfoChar(&buf, ',');
	escape_json(&buf, type);
	appendStringInfoChar(&buf, ',');
	AppendTraitJson(&buf, t, "unit", TRAIT_STRING);
	appendStringInfoChar(&buf, ',');
	AppendTraitJson(&buf, t, "qty", TRAIT_STRING);
	appendStringInfoChar(&buf, ',');
	AppendTraitJson(&buf, t, "price", TRAIT_STRING);
	appendStringInfoChar(&buf, ',');
	AppendAttributesJson(&buf, t, 'g');
	appendStringInfoChar(&buf, ',');
	AppendAttributesJson(&buf, t, 'm');
	appendStringInfoChar(&buf, ']');
	return cstring_to_text_with_len(buf.data, buf.len);
}

/*
 * panko.rating_point(traits, begin, type): a point from its traits, in one
 * pass over them (per-trait SQL for a page of points costs more than its
 * scan).
 */
Datum
rating_point(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(PointJson(PG_GETARG_TRAITS_P(0), NULL,
							   text_to_cstring(PG_GETARG_TEXT_PP(1)),
							   text_to_cstring(PG_GETARG_TEXT_PP(2))));
}

/*
 * panko.rating_point(traits, generated, event_type_id): the same, for a
 * stored point: its begin written and its metric type named here (the
 * event type without "cloudkitty."), so that a page of points needs no
 * lookup of panko.event_type per point.  The type cache is checked
 * against panko.event_type once per statement.
 */
Datum
rating_point_stored(PG_FUNCTION_ARGS)
{
	Traits	   *t = PG_GETARG_TRAITS_P(0);
	Timestamp	at = PG_GETARG_TIMESTAMPTZ(1);
	const char *type;

	if (fcinfo->flinfo->fn_extra == NULL)
	{
		PankoEventTypesBegin();
		fcinfo->flinfo->fn_extra = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, 1);
	}
	type = PankoEventTypeName(PG_GETARG_INT32(2), NULL);
	if (strncmp(type, RATING_TYPE_PREFIX, strlen(RATING_TYPE_PREFIX)) == 0)
		type += strlen(RATING_TYPE_PREFIX);
	PG_RETURN_TEXT_P(PointJson(t, &at, NULL, type));
}

/* Is v a JSON string? */
static inline bool
IsString(const JsonbValue *v)
{
	return v != NULL && v->type == jbvString;
}

/* Does the JSON string v start with prefix (and have more after it)? */
static bool
StringHasPrefix(const JsonbValue *v, const char *prefix, bool longer)
{
	int			n = strlen(prefix);

	return IsString(v) && v->val.string.len >= n + (longer ? 1 : 0) &&
		memcmp(v->val.string.val, prefix, n) == 0;
}

/* Is the JSON string v a plain decimal, -?[0-9]+(\.[0-9]+)? */
static bool
IsPlainDecimal(const JsonbValue *v)
{
	const char *p;
	const char *end;
	const char *digits;

	if (!IsString(v))
		return false;
	p = v->val.string.val;
	end = p + v->val.string.len;
	if (p < end && *p == '-')
		p++;
	digits = p;
	while (p < end && *p >= '0' && *p <= '9')
		p++;
	if (p == digits)
		return false;
	if (p == end)
		return true;
	if (*p++ != '.')
		return false;
	digits = p;
	while (p < end && *p >= '0' && *p <= '9')
		p++;
	return p == end && p > digits;
}

/* The member key of object container c, or NULL. */
static JsonbValue *
Member(JsonbContainer *c, const char *key)
{
	JsonbValue	k;

	k.type = jbvString;
	k.val.string.val = (char *) key;
	k.val.string.len = strlen(key);
	return findJsonbValueFromContainer(c, JB_FOBJECT, &k);
}

/* Two JSON strings with the same text? */
static bool
SameString(const JsonbValue *a, const JsonbValue *b)
{
	return a->val.string.len == b->val.string.len &&
		memcmp(a->val.string.val, b->val.string.val, a->val.string.len) == 0;
}

typedef struct PushNames
{
	List	   *groupby;		/* distinct groupby names (text *) */
	bool		g_alias;		/* a g.project_id other than the scope */
	bool		m_alias;		/* a m.project_id other than the scope */
} PushNames;

/* Remember a groupby attribute name (g.<name> without "g."), once. */
static void
AddGroupbyName(PushNames *names, const char *name, int len)
{
	ListCell   *lc;

	foreach(lc, names->groupby)
	{
		text	   *t = (text *) lfirst(lc);

		if ((int) VARSIZE_ANY_EXHDR(t) == len && memcmp(VARDATA_ANY(t), name, len) == 0)
			return;
	}
	names->groupby = lappend(names->groupby, cstring_to_text_with_len(name, len));
}

/* A push's groupby names as text[], or a null when it had none. */
static Datum
GroupbyArray(PushNames *names, bool *isnull)
{
	int			count = list_length(names->groupby);
	Datum	   *elems;
	ListCell   *lc;
	int			j = 0;

	*isnull = (count == 0);
	if (count == 0)
		return (Datum) 0;
	elems = palloc(sizeof(Datum) * count);
	foreach(lc, names->groupby)
		elems[j++] = PointerGetDatum(lfirst(lc));
	return PointerGetDatum(construct_array(elems, count, TEXTOID, -1, false, TYPALIGN_INT));
}

/*
 * Is point p a well-formed rated data point (see sql/rating.sql)?  Its
 * groupby names and whether its groupby or metadata project_id differs
 * from its scope go into names.
 */
static bool
PointIsGood(JsonbValue *p, PushNames *names)
{
	JsonbContainer *c;
	JsonbValue *traits;
	JsonbIterator *it;
	JsonbIteratorToken tok;
	JsonbValue	key;
	JsonbValue	val;
	JsonbValue	scope = {0};
	JsonbValue	gproj = {0};
	JsonbValue	mproj = {0};
	int			required = 0;

	if (p == NULL || p->type != jbvBinary || !JsonContainerIsObject(p->val.binary.data))
		return false;
	c = p->val.binary.data;
	if (!StringHasPrefix(Member(c, "event_type"), RATING_TYPE_PREFIX, true) ||
		!StringHasPrefix(Member(c, "message_id"), PANKO_RATING_ID_PREFIX, false) ||
		!IsString(Member(c, "generated")) ||
		Member(c, "raw") != NULL)
		return false;
	traits = Member(c, "traits");
	if (traits == NULL || traits->type != jbvBinary ||
		!JsonContainerIsObject(traits->val.binary.data))
		return false;

	it = JsonbIteratorInit(traits->val.binary.data);
	while ((tok = JsonbIteratorNext(&it, &key, true)) != WJB_DONE)
	{
		const char *k;
		int			klen;

		if (tok != WJB_KEY)
			continue;
		tok = JsonbIteratorNext(&it, &val, true);
		k = key.val.string.val;
		klen = key.val.string.len;
#define KEY_IS(s) (klen == (int) strlen(s) && memcmp(k, s, klen) == 0)
		if (KEY_IS("qty") || KEY_IS("price"))
		{
			if (!IsPlainDecimal(&val))
				return false;
			required++;
		}
		else if (KEY_IS("unit"))
		{
			if (!IsString(&val))
				return false;
			required++;
		}
		else if (KEY_IS("period"))
		{
			if (val.type != jbvNumeric)
				return false;
			required++;
		}
		else if (KEY_IS("project_id"))
		{
			if (!IsString(&val))
				return false;
			scope = val;
		}
		else if (klen > 2 && (k[0] == 'g' || k[0] == 'm') && k[1] == '.' && IsString(&val))
		{
			if (k[0] == 'g')
				AddGroupbyName(names, k + 2, klen - 2);
			if (KEY_IS("g.project_id"))
				gproj = val;
			else if (KEY_IS("m.project_id"))
				mproj = val;
		}
		else
			return false;
#undef KEY_IS
	}
	if (required != 4)
		return false;
	if (gproj.type == jbvString && (scope.type != jbvString || !SameString(&gproj, &scope)))
		names->g_alias = true;
	if (mproj.type == jbvString && (scope.type != jbvString || !SameString(&mproj, &scope)))
		names->m_alias = true;
	return true;
}

/* How many points a push holds; an error unless they are a JSON array. */
static int
PointsCount(Jsonb *points)
{
	if (!JB_ROOT_IS_ARRAY(points) || JB_ROOT_IS_SCALAR(points))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("rated data points must be a JSON array"),
				 errhint("panko_drivers.cloudkitty writes them; see the README, \"CloudKitty\".")));
	return JB_ROOT_COUNT(points);
}

/*
 * panko.rating_check_points(points jsonb): every check push makes, in one
 * pass over the array (per-point SQL cost as much as storing the points):
 * the position of the first malformed point (or NULL), the groupby names
 * the points have, and whether some groupby or metadata project_id differs
 * from its point's scope.
 */
Datum
rating_check_points(PG_FUNCTION_ARGS)
{
	Jsonb	   *points = PG_GETARG_JSONB_P(0);
	TupleDesc	desc;
	Datum		values[4];
	bool		nulls[4] = {false, false, false, false};
	PushNames	names = {NIL, false, false};
	int			n;
	int			bad = 0;

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("panko.rating_check_points must return a record")));
	n = PointsCount(points);
	for (int i = 0; i < n && bad == 0; i++)
	{
		JsonbValue *p = getIthJsonbValueFromContainer(&points->root, i);

		if (!PointIsGood(p, &names))
			bad = i + 1;
	}
	values[0] = Int32GetDatum(bad);
	nulls[0] = bad == 0;
	values[1] = GroupbyArray(&names, &nulls[1]);
	values[2] = BoolGetDatum(names.g_alias);
	values[3] = BoolGetDatum(names.m_alias);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls)));
}

/* A string of a point (into the push's jsonb), or none: s is NULL. */
typedef struct RatingText
{
	const char *s;
	int			len;
} RatingText;

/* One point of a push, as its rollup row groups it. */
typedef struct RollupPoint
{
	Timestamp	generated;
	RatingText	type;			/* the full event type, cloudkitty.<metric> */
	RatingText	scope;			/* traits' project_id */
	RatingText	gproject;		/* traits' g.project_id */
	RatingText	qty;
	RatingText	price;
} RollupPoint;

/* A JSON string's text, or none for anything else (or no value). */
static RatingText
JsonText(const JsonbValue *v)
{
	RatingText	t = {NULL, 0};

	if (IsString(v))
	{
		t.s = v->val.string.val;
		t.len = v->val.string.len;
	}
	return t;
}

/* Strings in byte order, an absent one first. */
static int
CompareOptString(RatingText a, RatingText b)
{
	int			c;

	if (a.s == NULL || b.s == NULL)
		return (a.s != NULL) - (b.s != NULL);
	c = memcmp(a.s, b.s, Min(a.len, b.len));
	return c != 0 ? c : (a.len > b.len) - (a.len < b.len);
}

/* Points in the order of their group: time, type, scope, groupby project. */
static int
RollupPointCompare(const void *x, const void *y)
{
	const RollupPoint *a = (const RollupPoint *) x;
	const RollupPoint *b = (const RollupPoint *) y;
	int			c;

	if (a->generated != b->generated)
		return a->generated < b->generated ? -1 : 1;
	if ((c = CompareOptString(a->type, b->type)) != 0)
		return c;
	if ((c = CompareOptString(a->scope, b->scope)) != 0)
		return c;
	return CompareOptString(a->gproject, b->gproject);
}

/* A string as text, or a null. */
static Datum
OptText(RatingText t, bool *isnull)
{
	*isnull = t.s == NULL;
	return t.s ? PointerGetDatum(cstring_to_text_with_len(t.s, t.len)) : (Datum) 0;
}

#define ROLLUP_COLUMNS 7

typedef void (*RollupEmit) (void *arg, Datum *values, bool *nulls);

/*
 * The rollup rows of a push's points, one per time, type, scope and groupby
 * project: the points' count and exact qty and price sums (generated,
 * event_type, scope, gproject, points, qty, price), each given to emit.
 */
static void
RollupGroups(RollupPoint *pts, int n, RollupEmit emit, void *arg)
{
	qsort(pts, n, sizeof(RollupPoint), RollupPointCompare);
	for (int i = 0; i < n;)
	{
		RatingSum	qty = {0, 0, NULL, CurrentMemoryContext};
		RatingSum	price = {0, 0, NULL, CurrentMemoryContext};
		Datum		values[ROLLUP_COLUMNS];
		bool		nulls[ROLLUP_COLUMNS] = {false, false, false, false, false, false, false};
		int			j = i;

		for (; j < n && RollupPointCompare(&pts[i], &pts[j]) == 0; j++)
		{
			SumAddText(&qty, pts[j].qty.s, pts[j].qty.len);
			SumAddText(&price, pts[j].price.s, pts[j].price.len);
		}
		values[0] = TimestampTzGetDatum(pts[i].generated);
		values[1] = OptText(pts[i].type, &nulls[1]);
		values[2] = OptText(pts[i].scope, &nulls[2]);
		values[3] = OptText(pts[i].gproject, &nulls[3]);
		values[4] = Int64GetDatum(j - i);
		values[5] = NumericGetDatum(SumTotal(&qty));
		values[6] = NumericGetDatum(SumTotal(&price));
		emit(arg, values, nulls);
		i = j;
	}
}

/* RollupGroups' rows into a set-returning function's tuplestore. */
static void
EmitRow(void *arg, Datum *values, bool *nulls)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) arg;

	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

/*
 * panko.rating_rollup_points(points jsonb): what a push adds to the daily
 * rollup, per time, type, scope and groupby project: the points' count
 * and their exact qty and price sums.  One pass in C (in SQL, reading each
 * point's fields again cost a fifth of the push).  The points are the ones
 * rating_check_points accepted; one that is not is an error.
 */
Datum
rating_rollup_points(PG_FUNCTION_ARGS)
{
	Jsonb	   *points = PG_GETARG_JSONB_P(0);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	RollupPoint *pts;
	int			n;

	InitMaterializedSRF(fcinfo, 0);
	n = PointsCount(points);
	pts = palloc(sizeof(RollupPoint) * Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		JsonbValue *p = getIthJsonbValueFromContainer(&points->root, i);
		JsonbValue *type = NULL;
		JsonbValue *generated = NULL;
		JsonbValue *traits = NULL;
		JsonbValue *scope = NULL;
		JsonbValue *gproject = NULL;
		JsonbValue *qty = NULL;
		JsonbValue *price = NULL;
		const char *why = NULL;
		RollupPoint *rp = &pts[i];

		memset(rp, 0, sizeof(RollupPoint));
		if (p != NULL && p->type == jbvBinary && JsonContainerIsObject(p->val.binary.data))
		{
			type = Member(p->val.binary.data, "event_type");
			generated = Member(p->val.binary.data, "generated");
			traits = Member(p->val.binary.data, "traits");
		}
		if (traits != NULL && traits->type == jbvBinary && JsonContainerIsObject(traits->val.binary.data))
		{
			scope = Member(traits->val.binary.data, "project_id");
			gproject = Member(traits->val.binary.data, "g.project_id");
			qty = Member(traits->val.binary.data, "qty");
			price = Member(traits->val.binary.data, "price");
		}
		rp->type = JsonText(type);
		rp->scope = JsonText(scope);
		rp->gproject = JsonText(gproject);
		rp->qty = JsonText(qty);
		rp->price = JsonText(price);
		if (!IsString(type) || !IsString(generated) ||
			!PankoParseTimestamp(generated->val.string.val, generated->val.string.len, &rp->generated, &why) ||
			!IsPlainDecimal(qty) || !IsPlainDecimal(price) ||
			(scope != NULL && !IsString(scope)) || (gproject != NULL && !IsString(gproject)))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("rated data point %d of %d is malformed", i + 1, n),
					 errhint("Check the points with panko.rating_check_points first.")));
	}
	RollupGroups(pts, n, EmitRow, rsinfo);
	return (Datum) 0;
}

/* RollupGroups' rows gathered as columns: rating_store_frames' arrays. */
typedef struct RollupColumns
{
	int			n;
	int			max;
	Datum	   *values[ROLLUP_COLUMNS];
	bool	   *nulls[ROLLUP_COLUMNS];
} RollupColumns;

static const Oid rollup_types[ROLLUP_COLUMNS] = {
	TIMESTAMPTZOID, TEXTOID, TEXTOID, TEXTOID, INT8OID, NUMERICOID, NUMERICOID
};

/* RollupGroups' rows into columns. */
static void
EmitColumns(void *arg, Datum *values, bool *nulls)
{
	RollupColumns *c = (RollupColumns *) arg;

	if (c->n == c->max)
	{
		c->max = c->max ? c->max * 2 : 64;
		for (int k = 0; k < ROLLUP_COLUMNS; k++)
		{
			c->values[k] = c->values[k] ? repalloc(c->values[k], sizeof(Datum) * c->max)
				: palloc(sizeof(Datum) * c->max);
			c->nulls[k] = c->nulls[k] ? repalloc(c->nulls[k], sizeof(bool) * c->max)
				: palloc(sizeof(bool) * c->max);
		}
	}
	for (int k = 0; k < ROLLUP_COLUMNS; k++)
	{
		c->values[k][c->n] = values[k];
		c->nulls[k][c->n] = nulls[k];
	}
	c->n++;
}

/* Column k as an array. */
static Datum
ColumnArray(RollupColumns *c, int k)
{
	int16		typlen;
	bool		typbyval;
	char		typalign;
	int			dims[1] = {c->n};
	int			lbs[1] = {1};

	if (c->n == 0)
		return PointerGetDatum(construct_empty_array(rollup_types[k]));
	get_typlenbyvalalign(rollup_types[k], &typlen, &typbyval, &typalign);
	return PointerGetDatum(construct_md_array(c->values[k], c->nulls[k], 1, dims, lbs,
											  rollup_types[k], typlen, typbyval, typalign));
}

/* A malformed push fails as a whole: nothing of it is stored. */
static void
PushError(int frame, int point, const char *why)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 point > 0 ? errmsg("rated data point %d of frame %d is malformed: %s", point, frame, why)
			 : frame > 0 ? errmsg("rated data frame %d is malformed: %s", frame, why)
			 : errmsg("a push of rated data is malformed: %s", why),
			 errhint("A push is {\"push\": \"<id>\", \"scope\": \"<project>\" or null, \"frames\": "
					 "[{\"start\": \"<ISO 8601>\", \"period\": <seconds>, \"points\": "
					 "[[\"<metric>\", \"<unit>\", \"<qty>\", \"<price>\", {groupby}, {metadata}], ...]}, ...], "
					 "\"shapes\": [[\"<name>\", ...], ...]}, where groupby and metadata may be [<shape>, \"<value>\", ...]; "
					 "panko_drivers.cloudkitty writes it (see the README, \"CloudKitty\").")));
}

#define RATING_PUSH_ID_MAX	64	/* bytes of a push's id */
#define RATING_EVENT_ID_MAX	255 /* event_type and message_id, as the store */

/*
 * The attribute names a push's points may refer to: a point's groupby or
 * metadata is an object, or [shape, value, ...], the values of the names
 * of the push's shape number <shape> (from 0) in their order.  The driver
 * sends shapes: a push of points with the same names then does not send,
 * parse and check each name once per point (jsonb_in of a push of objects
 * took 6.6 us a point, of shapes 3.2).
 */
typedef struct RatingShape
{
	int			n;				/* names */
	char	  **names[2];		/* "g.<name>" and "m.<name>", n each */
	int			project;		/* which name is project_id, or -1 */
	bool		noted;			/* its names are in PushNames' groupby */
} RatingShape;

typedef struct RatingShapes
{
	int			count;
	RatingShape *shape;
} RatingShapes;

/* An attribute's trait name, <prefix>.<name> ('g' or 'm'), NUL-terminated. */
static char *
AttributeName(char prefix, const char *name, int len)
{
	char	   *full = palloc(len + 3);

	full[0] = prefix;
	full[1] = '.';
	memcpy(full + 2, name, len);
	full[len + 2] = '\0';
	return full;
}

/* qsort order of C strings (by pointer). */
static int
NameCompare(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

/*
 * A push's "shapes" (absent: none): arrays of distinct attribute names,
 * each valid as a trait name under either prefix.
 */
static RatingShapes
ReadShapes(JsonbValue *v)
{
	RatingShapes shapes = {0, NULL};

	if (v == NULL || v->type == jbvNull)
		return shapes;
	if (v->type != jbvBinary || !JsonContainerIsArray(v->val.binary.data))
		PushError(0, 0, "\"shapes\" must be an array of arrays of attribute names");
	shapes.count = JsonContainerSize(v->val.binary.data);
	shapes.shape = palloc0(sizeof(RatingShape) * Max(shapes.count, 1));
	for (int i = 0; i < shapes.count; i++)
	{
		JsonbValue *names = getIthJsonbValueFromContainer(v->val.binary.data, i);
		RatingShape *sh = &shapes.shape[i];

		if (names->type != jbvBinary || !JsonContainerIsArray(names->val.binary.data))
			PushError(0, 0, psprintf("shape %d must be an array of attribute names", i));
		sh->n = JsonContainerSize(names->val.binary.data);
		sh->project = -1;
		for (int p = 0; p < 2; p++)
			sh->names[p] = palloc(sizeof(char *) * Max(sh->n, 1));
		for (int j = 0; j < sh->n; j++)
		{
			JsonbValue *name = getIthJsonbValueFromContainer(names->val.binary.data, j);
			int			len;

			if (!IsString(name) || name->val.string.len == 0)
				PushError(0, 0, psprintf("shape %d: an attribute name must be a non-empty string", i));
			len = name->val.string.len;
			for (int p = 0; p < 2; p++)
			{
				char	   *full = AttributeName(p == 0 ? 'g' : 'm', name->val.string.val, len);
				const char *problem;

				if ((problem = TraitNameProblem(full, len + 2)) != NULL)
					PushError(0, 0, psprintf("shape %d: %s", i, problem));
				sh->names[p][j] = full;
			}
			if (len == 10 && memcmp(name->val.string.val, "project_id", 10) == 0)
				sh->project = j;
		}
		/* a name twice: sorted, in O(n log n) (a shape may be long) */
		if (sh->n > 1)
		{
			char	  **sorted = palloc(sizeof(char *) * sh->n);

			memcpy(sorted, sh->names[0], sizeof(char *) * sh->n);
			qsort(sorted, sh->n, sizeof(char *), NameCompare);
			for (int j = 1; j < sh->n; j++)
				if (strcmp(sorted[j - 1], sorted[j]) == 0)
					PushError(0, 0, psprintf("shape %d names \"%s\" twice", i, sorted[j] + 2));
			pfree(sorted);
		}
		CHECK_FOR_INTERRUPTS();
	}
	return shapes;
}

/* A string trait of a point's attribute; NULL, or what is wrong. */
static const char *
AttributePair(TraitPair *pairs, int *npairs, const char *name, int namelen, JsonbValue *val)
{
	TraitPair  *tp = &pairs[(*npairs)++];

	tp->name = name;
	tp->namelen = namelen;
	tp->type = TRAIT_STRING;
	tp->ord = *npairs;
	tp->str = val->val.string.val;
	tp->strlen = val->val.string.len;
	return TraitPairProblem(tp);
}

/*
 * A point's groupby or metadata as [shape, value, ...] (see RatingShape):
 * as AttributePairs.
 */
static const char *
ShapedPairs(JsonbContainer *c, char prefix, RatingShapes *shapes, TraitPair *pairs, int *npairs,
			RatingText *project, PushNames *names, MemoryContext keep)
{
	const char *what = prefix == 'g' ? "groupby" : "metadata";
	JsonbValue *first = JsonContainerSize(c) > 0 ? getIthJsonbValueFromContainer(c, 0) : NULL;
	char	   *text = (first != NULL && first->type == jbvNumeric) ? JsonbScalarText(first) : NULL;
	int64		which;
	RatingShape *sh;

	if (shapes->count == 0)
		return psprintf("%s [shape, value, ...] needs the push's \"shapes\"", what);
	if (text == NULL || !PankoParseInt64(text, strlen(text), &which) ||
		which < 0 || which >= shapes->count)
		return psprintf("%s [shape, value, ...] must begin with a shape of the push (0 to %d)",
						what, shapes->count - 1);
	sh = &shapes->shape[which];
	if ((int) JsonContainerSize(c) - 1 != sh->n)
		return psprintf("%s has %d values for the %d names of shape " INT64_FORMAT,
						what, (int) JsonContainerSize(c) - 1, sh->n, which);
	for (int j = 0; j < sh->n; j++)
	{
		JsonbValue *val = getIthJsonbValueFromContainer(c, j + 1);
		const char *name = sh->names[prefix == 'g' ? 0 : 1][j];
		const char *problem;

		if (val->type != jbvString)
			return psprintf("%s \"%s\" is not a string", what, name + 2);
		if ((problem = AttributePair(pairs, npairs, name, strlen(name), val)) != NULL)
			return problem;
		if (j == sh->project)
			*project = JsonText(val);
	}
	if (prefix == 'g' && !sh->noted)
	{
		/* the names outlive the point's scratch memory */
		MemoryContext old = MemoryContextSwitchTo(keep);

		for (int j = 0; j < sh->n; j++)
			AddGroupbyName(names, sh->names[0][j] + 2, strlen(sh->names[0][j]) - 2);
		MemoryContextSwitchTo(old);
		sh->noted = true;
	}
	return NULL;
}

/*
 * A point's groupby (prefix 'g') or metadata ('m'), an object or shaped
 * (ShapedPairs): its attributes as string traits <prefix>.<name>, appended
 * to pairs; its project_id into *project; groupby names into names, in
 * memory context keep.  NULL, or what is wrong.
 */
static const char *
AttributePairs(JsonbValue *v, char prefix, RatingShapes *shapes, TraitPair *pairs, int *npairs,
			   RatingText *project, PushNames *names, MemoryContext keep)
{
	JsonbIterator *it;
	JsonbIteratorToken tok;
	JsonbValue	k;
	JsonbValue	val;

	project->s = NULL;
	if (v->type == jbvNull)
		return NULL;
	if (v->type == jbvBinary && JsonContainerIsArray(v->val.binary.data))
		return ShapedPairs(v->val.binary.data, prefix, shapes, pairs, npairs, project, names, keep);
	if (v->type != jbvBinary || !JsonContainerIsObject(v->val.binary.data))
		return prefix == 'g' ? "groupby must be an object or [shape, value, ...]"
			: "metadata must be an object or [shape, value, ...]";
	it = JsonbIteratorInit(v->val.binary.data);
	while ((tok = JsonbIteratorNext(&it, &k, true)) != WJB_DONE)
	{
		char	   *name;
		const char *problem;

		if (tok != WJB_KEY)
			continue;
		JsonbIteratorNext(&it, &val, true);
		if (k.val.string.len == 0)
			return prefix == 'g' ? "a groupby name is empty" : "a metadata name is empty";
		if (val.type != jbvString)
			return psprintf("%s \"%.*s\" is not a string",
							prefix == 'g' ? "groupby" : "metadata",
							PankoQuoteLen(k.val.string.val, k.val.string.len), k.val.string.val);
		name = AttributeName(prefix, k.val.string.val, k.val.string.len);
		if ((problem = AttributePair(pairs, npairs, name, k.val.string.len + 2, &val)) != NULL)
			return problem;
		if (prefix == 'g')
		{
			/* the names outlive the point's scratch memory */
			MemoryContext old = MemoryContextSwitchTo(keep);

			AddGroupbyName(names, k.val.string.val, k.val.string.len);
			MemoryContextSwitchTo(old);
		}
		if (k.val.string.len == 10 && memcmp(k.val.string.val, "project_id", 10) == 0)
			*project = JsonText(&val);
	}
	return NULL;
}

/* A string trait, for the point's fixed fields. */
static void
StringPair(TraitPair *tp, const char *name, RatingText value, int ord)
{
	tp->name = name;
	tp->namelen = strlen(name);
	tp->type = TRAIT_STRING;
	tp->ord = ord;
	tp->str = value.s;
	tp->strlen = value.len;
}

static bool
SameText(RatingText a, RatingText b)
{
	return a.len == b.len && memcmp(a.s, b.s, a.len) == 0;
}

/*
 * panko.rating_store_frames(frames jsonb): CloudKitty's push in the form
 * panko_drivers.cloudkitty sends (see PushError's hint): every point is
 * checked, then all are stored as events with one call of the store, so
 * that no per-point object is written in JSON, parsed and read again (the
 * JSON of the events, record_events' form, was a third of the driver's and
 * a sixth of the server's time).  A point's message_id is the push's id and
 * its place, so a push sent again finds its copies.  Returns the counts,
 * the groupby names and project aliases rating_push_frames records, and the
 * rollup's rows as arrays (when no point was a copy).
 */
Datum
rating_store_frames(PG_FUNCTION_ARGS)
{
	Jsonb	   *doc = PG_GETARG_JSONB_P(0);
	TupleDesc	desc;
	Datum		values[7 + ROLLUP_COLUMNS];
	bool		nulls[7 + ROLLUP_COLUMNS];
	JsonbValue *push;
	JsonbValue *scope_v;
	JsonbValue *frames;
	RatingShapes shapes;
	RatingText	scope = {NULL, 0};
	PushNames	names = {NIL, false, false};
	PankoNewEvent *evs = NULL;
	RollupPoint *pts = NULL;
	PankoEventOutcome *out;
	int			nframes;
	int			n = 0;
	int			max = 0;
	int64		copies = 0;
	Timestamp	lo = 0;
	Timestamp	hi = 0;
	MemoryContext scratch;
	MemoryContext batch = CurrentMemoryContext;

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("panko.rating_store_frames must return a record")));
	if (!JB_ROOT_IS_OBJECT(doc))
		PushError(0, 0, "it must be a JSON object");
	push = Member(&doc->root, "push");
	scope_v = Member(&doc->root, "scope");
	frames = Member(&doc->root, "frames");
	shapes = ReadShapes(Member(&doc->root, "shapes"));
	if (!IsString(push) || push->val.string.len == 0 || push->val.string.len > RATING_PUSH_ID_MAX)
		PushError(0, 0, "\"push\" must be an id of 1 to 64 characters");
	for (int i = 0; i < push->val.string.len; i++)
	{
		char		c = push->val.string.val[i];

		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-'))
			PushError(0, 0, "\"push\" must be letters, digits and dashes");
	}
	if (scope_v != NULL && scope_v->type != jbvNull)
	{
		if (!IsString(scope_v) || scope_v->val.string.len == 0)
			PushError(0, 0, "\"scope\" must be a project id or null");
		scope = JsonText(scope_v);
	}
	if (frames == NULL || frames->type != jbvBinary || !JsonContainerIsArray(frames->val.binary.data))
		PushError(0, 0, "\"frames\" must be an array");

	scratch = AllocSetContextCreate(CurrentMemoryContext, "panko rated data point",
									ALLOCSET_DEFAULT_SIZES);
	nframes = JsonContainerSize(frames->val.binary.data);
	for (int f = 0; f < nframes; f++)
	{
		JsonbValue *frame = getIthJsonbValueFromContainer(frames->val.binary.data, f);
		JsonbValue *start;
		JsonbValue *period;
		JsonbValue *points;
		JsonbContainer *fc;
		Timestamp	at;
		int64		seconds;
		const char *why;
		char	   *periodtext;
		int			npoints;

		if (frame->type != jbvBinary || !JsonContainerIsObject(frame->val.binary.data))
			PushError(f + 1, 0, "a frame must be an object");
		fc = frame->val.binary.data;
		start = Member(fc, "start");
		period = Member(fc, "period");
		points = Member(fc, "points");
		if (!IsString(start) ||
			!PankoParseTimestamp(start->val.string.val, start->val.string.len, &at, &why))
			PushError(f + 1, 0, "\"start\" must be an ISO 8601 time");
		periodtext = (period != NULL && period->type == jbvNumeric) ? JsonbScalarText(period) : NULL;
		if (periodtext == NULL ||
			!PankoParseInt64(periodtext, strlen(periodtext), &seconds) ||
			seconds <= 0 || seconds > INT32_MAX)
			PushError(f + 1, 0, "\"period\" must be a positive number of seconds");
		if (points == NULL || points->type != jbvBinary || !JsonContainerIsArray(points->val.binary.data))
			PushError(f + 1, 0, "\"points\" must be an array");
		if (n == 0 || at < lo)
			lo = at;
		if (n == 0 || at > hi)
			hi = at;

		npoints = JsonContainerSize(points->val.binary.data);
		if (n + npoints > max)
		{
			max = Max(n + npoints, max * 2);
			if ((Size) max > MaxAllocSize / sizeof(RollupPoint))
				PushError(f + 1, 0, "too many points in one push");
			evs = evs ? repalloc(evs, sizeof(PankoNewEvent) * max) : palloc(sizeof(PankoNewEvent) * max);
			pts = pts ? repalloc(pts, sizeof(RollupPoint) * max) : palloc(sizeof(RollupPoint) * max);
		}
		for (int j = 0; j < npoints; j++)
		{
			MemoryContext old = MemoryContextSwitchTo(scratch);
			JsonbValue *p = getIthJsonbValueFromContainer(points->val.binary.data, j);
			JsonbContainer *pc;
			JsonbValue *metric;
			JsonbValue *unit;
			JsonbValue *qty;
			JsonbValue *price;
			JsonbValue *groupby;
			JsonbValue *metadata;
			TraitPair  *pairs;
			int			npairs = 0;
			RatingText	gproject;
			RatingText	mproject;
			RatingText	project;
			const char *problem = NULL;
			Traits	   *traits;
			RollupPoint *rp = &pts[n];
			PankoNewEvent *ev = &evs[n];

			if (p->type != jbvBinary || !JsonContainerIsArray(p->val.binary.data) ||
				JsonContainerSize(p->val.binary.data) != 6)
				PushError(f + 1, j + 1, "a point is [metric, unit, qty, price, groupby, metadata]");
			pc = p->val.binary.data;
			metric = getIthJsonbValueFromContainer(pc, 0);
			unit = getIthJsonbValueFromContainer(pc, 1);
			qty = getIthJsonbValueFromContainer(pc, 2);
			price = getIthJsonbValueFromContainer(pc, 3);
			groupby = getIthJsonbValueFromContainer(pc, 4);
			metadata = getIthJsonbValueFromContainer(pc, 5);
			if (!IsString(metric) || metric->val.string.len == 0 ||
				metric->val.string.len > RATING_EVENT_ID_MAX - (int) strlen(RATING_TYPE_PREFIX))
				PushError(f + 1, j + 1, "the metric type must be a string of 1 to 244 bytes");
			if (!IsString(unit))
				PushError(f + 1, j + 1, "the unit must be a string");
			if (!IsPlainDecimal(qty) || !IsPlainDecimal(price))
				PushError(f + 1, j + 1, "qty and price must be decimal strings, such as \"12.5\"");

			pairs = palloc0(sizeof(TraitPair) *
							(5 + (groupby->type == jbvBinary ? JsonContainerSize(groupby->val.binary.data) : 0) +
							 (metadata->type == jbvBinary ? JsonContainerSize(metadata->val.binary.data) : 0)));
			StringPair(&pairs[npairs++], "qty", JsonText(qty), 0);
			StringPair(&pairs[npairs++], "price", JsonText(price), 1);
			StringPair(&pairs[npairs++], "unit", JsonText(unit), 2);
			pairs[npairs].name = "period";
			pairs[npairs].namelen = 6;
			pairs[npairs].type = TRAIT_INTEGER;
			pairs[npairs].ord = 3;
			pairs[npairs++].i64 = seconds;
			for (int k = 0; k < npairs && problem == NULL; k++)
				problem = TraitPairProblem(&pairs[k]);
			if (problem != NULL ||
				(problem = AttributePairs(groupby, 'g', &shapes, pairs, &npairs, &gproject, &names, batch)) != NULL ||
				(problem = AttributePairs(metadata, 'm', &shapes, pairs, &npairs, &mproject, &names, batch)) != NULL)
				PushError(f + 1, j + 1, problem);
			/* the scope: the push's, else the groupby's project */
			project = scope.s ? scope : gproject;
			if (project.s)
			{
				StringPair(&pairs[npairs], "project_id", project, 4);
				if ((problem = TraitPairProblem(&pairs[npairs++])) != NULL)
					PushError(f + 1, j + 1, problem);
			}
			if (gproject.s && (project.s == NULL || !SameText(gproject, project)))
				names.g_alias = true;
			if (mproject.s && (project.s == NULL || !SameText(mproject, project)))
				names.m_alias = true;
			traits = TraitsBuild(pairs, npairs);

			MemoryContextSwitchTo(batch);
			ev->traits = (Traits *) palloc(VARSIZE(traits));
			memcpy(ev->traits, traits, VARSIZE(traits));
			ev->event_type = psprintf(RATING_TYPE_PREFIX "%.*s", metric->val.string.len, metric->val.string.val);
			ev->message_id = psprintf(PANKO_RATING_ID_PREFIX "%.*s:%d", push->val.string.len, push->val.string.val, n + 1);
			ev->generated = at;
			rp->generated = at;
			rp->type.s = ev->event_type;
			rp->type.len = strlen(ev->event_type);
			rp->scope = project;
			rp->gproject = gproject;
			rp->qty = JsonText(qty);
			rp->price = JsonText(price);
			n++;
			MemoryContextSwitchTo(old);
			MemoryContextReset(scratch);
			CHECK_FOR_INTERRUPTS();
		}
	}
	MemoryContextDelete(scratch);

	out = n > 0 ? PankoStoreNewEvents(evs, n) : NULL;
	for (int i = 0; i < n; i++)
	{
		if (out[i].status == NULL)
			continue;
		if (strcmp(out[i].status, "duplicate") != 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("rated data point not stored: %s %s", out[i].status, out[i].detail ? out[i].detail : ""),
					 errdetail("message_id %s", out[i].message_id)));
		copies++;
	}

	memset(nulls, 0, sizeof(nulls));
	values[0] = Int64GetDatum(n);
	values[1] = Int64GetDatum(copies);
	values[2] = GroupbyArray(&names, &nulls[2]);
	values[3] = BoolGetDatum(names.g_alias);
	values[4] = BoolGetDatum(names.m_alias);
	values[5] = TimestampTzGetDatum(lo);
	values[6] = TimestampTzGetDatum(hi);
	nulls[5] = nulls[6] = (n == 0);
	{
		RollupColumns cols;

		memset(&cols, 0, sizeof(cols));
		/* the rollup adds the points only when every one is new */
		if (copies == 0)
			RollupGroups(pts, n, EmitColumns, &cols);
		for (int k = 0; k < ROLLUP_COLUMNS; k++)
			values[7 + k] = ColumnArray(&cols, k);
	}
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls)));
}

/*
 * panko.rating_keys(traits, names text[]): the string traits of these
 * names (NULL where absent), as one array: total's group key of any number
 * of groupby attributes, so that one kept plan groups by any of them.
 */
Datum
rating_keys(PG_FUNCTION_ARGS)
{
	Traits	   *t = PG_GETARG_TRAITS_P(0);
	ArrayType  *names = PG_GETARG_ARRAYTYPE_P(1);
	Datum	   *elems;
	bool	   *isnull;
	int			n;
	int			dims[1];
	int			lbs[1] = {1};

	if (ARR_NDIM(names) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("panko.rating_keys takes a one-dimensional array of names")));
	deconstruct_array(names, TEXTOID, -1, false, TYPALIGN_INT, &elems, &isnull, &n);
	for (int i = 0; i < n; i++)
	{
		int			j;

		if (isnull[i])
			continue;
		j = TraitsFind(t, VARDATA_ANY(DatumGetPointer(elems[i])),
					   VARSIZE_ANY_EXHDR(DatumGetPointer(elems[i])), TRAIT_STRING);
		if (j < 0)
			isnull[i] = true;
		else
		{
			TraitItem	item = TraitsItem(t, j);

			elems[i] = PointerGetDatum(cstring_to_text_with_len(item.value, item.vallen));
		}
	}
	dims[0] = n;
	if (n == 0)
		PG_RETURN_ARRAYTYPE_P(construct_empty_array(TEXTOID));
	PG_RETURN_ARRAYTYPE_P(construct_md_array(elems, isnull, 1, dims, lbs, TEXTOID, -1, false, TYPALIGN_INT));
}

/* ---------------------------------------------------------------- the rollup's request */

static SPIPlanPtr plan_rollup_attribute = NULL;
static SPIPlanPtr plan_rollup_alias = NULL;
static SPIPlanPtr plan_rollup_type_ids = NULL;

/* The one boolean of a kept statement without parameters. */
static bool
RollupAsk(SPIPlanPtr *slot, const char *sql)
{
	bool		isnull;
	Datum		d;

	PankoKeepPlan(slot, sql, 0, NULL, CURSOR_OPT_GENERIC_PLAN);
	if (SPI_execute_plan(*slot, NULL, NULL, true, 1) != SPI_OK_SELECT || SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("panko: a lookup of the rollup's request returned no row")));
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	return !isnull && DatumGetBool(d);
}

/*
 * A filter value as the rollup takes it: a string, or an array of
 * strings, as a list of C strings; false for anything else (rating_total's
 * full path then reads it, and refuses what is malformed).
 */
static bool
RollupValues(JsonbValue *v, List **vals)
{
	*vals = NIL;
	if (v->type == jbvString)
	{
		*vals = list_make1(pnstrdup(v->val.string.val, v->val.string.len));
		return true;
	}
	if (v->type != jbvBinary || !JsonContainerIsArray(v->val.binary.data))
		return false;
	for (int i = 0; i < (int) JsonContainerSize(v->val.binary.data); i++)
	{
		JsonbValue *x = getIthJsonbValueFromContainer(v->val.binary.data, i);

		if (x->type != jbvString)
			return false;
		*vals = lappend(*vals, pnstrdup(x->val.string.val, x->val.string.len));
	}
	return true;
}

/* The strings of a that are also in b; b itself while a is not set (no list yet). */
static List *
RollupIntersect(List *a, bool a_set, List *b)
{
	List	   *out = NIL;
	ListCell   *x;
	ListCell   *y;

	if (!a_set)
		return b;
	foreach(x, a)
		foreach(y, b)
			if (strcmp(lfirst(x), lfirst(y)) == 0)
			{
				out = lappend(out, lfirst(x));
				break;
			}
	return out;
}

/* A list of C strings as text[]. */
static Datum
RollupTextArray(List *vals)
{
	Datum	   *elems = palloc(sizeof(Datum) * Max(list_length(vals), 1));
	int			n = 0;
	ListCell   *lc;

	foreach(lc, vals)
		elems[n++] = CStringGetTextDatum(lfirst(lc));
	return PointerGetDatum(construct_array(elems, n, TEXTOID, -1, false, TYPALIGN_INT));
}

/*
 * Read filters or group_filters for the rollup: "type" (metric types) and
 * "project_id" only.  false: the rollup does not answer them.
 */
static bool
RollupFilters(Jsonb *doc, bool group, List **types, bool *types_set, List **scopes, bool *scopes_set,
			  List **gprojects, bool *gprojects_set)
{
	JsonbIterator *it;
	JsonbIteratorToken tok;
	JsonbValue	v;

	if (doc == NULL)
		return true;
	if (!JB_ROOT_IS_OBJECT(doc))
		return false;
	it = JsonbIteratorInit(&doc->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		char	   *key;
		List	   *vals;

		if (tok != WJB_KEY)
			continue;
		key = pnstrdup(v.val.string.val, v.val.string.len);
		if (JsonbIteratorNext(&it, &v, true) != WJB_VALUE || !RollupValues(&v, &vals))
			return false;
		if (strcmp(key, "type") == 0)
		{
			*types = RollupIntersect(*types, *types_set, vals);
			*types_set = true;
		}
		else if (strcmp(key, "project_id") == 0 && group)
		{
			*gprojects = vals;
			*gprojects_set = true;
		}
		else if (strcmp(key, "project_id") == 0 &&
				 !RollupAsk(&plan_rollup_alias, "SELECT EXISTS (SELECT FROM panko.rating_project_alias)"))
		{
			/* the scope, while no point had another project_id */
			*scopes = vals;
			*scopes_set = true;
		}
		else
			return false;
	}
	return true;
}

/*
 * panko.rating_rollup_request(begin, end, groupby, metric_types, filters,
 * group_filters, custom_fields): whether the daily rollup answers this
 * total, and rating_rollup_total's arguments when it does.  CloudKitty's
 * common report (whole UTC days, the default fields, grouped by type and
 * project, filtered by them) then costs no PL/pgSQL walk of its filters:
 * that walk was three fifths of a one-day, one-project total.  Anything
 * else, malformed input included, is "not covered", and rating_total's
 * full path answers it or names what is wrong.  The rules are those of
 * rating_total and rating_rollup_covers, which the tests compare.
 */
Datum
rating_rollup_request(PG_FUNCTION_ARGS)
{
	TupleDesc	desc;
	Datum		values[5];
	bool		nulls[5] = {false, false, true, true, true};
	ArrayType  *groupby = PG_ARGISNULL(2) ? NULL : PG_GETARG_ARRAYTYPE_P(2);
	Jsonb	   *filters = PG_ARGISNULL(4) ? NULL : PG_GETARG_JSONB_P(4);
	Jsonb	   *group_filters = PG_ARGISNULL(5) ? NULL : PG_GETARG_JSONB_P(5);
	Datum	   *kinds = NULL;
	int			nkinds = 0;
	bool		by_project = false;
	bool		covered = false;
	List	   *types = NIL;
	List	   *scopes = NIL;
	List	   *gprojects = NIL;
	bool		types_set = false;
	bool		scopes_set = false;
	bool		gprojects_set = false;
	MemoryContext outer = CurrentMemoryContext;

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("panko.rating_rollup_request must return a record")));
	PankoSPIConnect();
	/* (what is built here outlives SPI_finish: the caller's context) */
	MemoryContextSwitchTo(outer);
	if (!PG_ARGISNULL(0) && !PG_ARGISNULL(1) && PG_ARGISNULL(6) && panko_rating_rollup)
	{
		TimestampTz begin = PG_GETARG_TIMESTAMPTZ(0);
		TimestampTz end = PG_GETARG_TIMESTAMPTZ(1);

		covered = !TIMESTAMP_NOT_FINITE(begin) && !TIMESTAMP_NOT_FINITE(end) &&
			begin % USECS_PER_DAY == 0 && end % USECS_PER_DAY == 0;
	}
	if (covered && groupby != NULL)
	{
		Datum	   *elems;
		bool	   *elem_nulls;
		int			n;
		bool		by_type = false;

		deconstruct_array(groupby, TEXTOID, -1, false, TYPALIGN_INT, &elems, &elem_nulls, &n);
		kinds = palloc(sizeof(Datum) * Max(n, 1));
		for (int i = 0; i < n && covered; i++)
		{
			char	   *g = elem_nulls[i] ? NULL : TextDatumGetCString(elems[i]);

			if (g != NULL && strcmp(g, "type") == 0 && !by_type)
				by_type = true, kinds[nkinds++] = Int32GetDatum(0);
			else if (g != NULL && strcmp(g, "project_id") == 0 && !by_project)
				by_project = true, kinds[nkinds++] = Int32GetDatum(1);
			else
				covered = false;
		}
	}
	/* (a groupby no point has is an error of the full path) */
	if (covered && by_project)
		covered = RollupAsk(&plan_rollup_attribute,
							"SELECT EXISTS (SELECT 1 FROM panko.rating_attribute a"
							" WHERE a.name OPERATOR(pg_catalog.=) 'project_id')");
	if (covered && !PG_ARGISNULL(3))
	{
		Datum	   *elems;
		bool	   *elem_nulls;
		int			n;

		deconstruct_array(PG_GETARG_ARRAYTYPE_P(3), TEXTOID, -1, false, TYPALIGN_INT, &elems, &elem_nulls, &n);
		for (int i = 0; i < n; i++)
			if (!elem_nulls[i])
				types = lappend(types, TextDatumGetCString(elems[i]));
		types_set = true;
	}
	covered = covered &&
		RollupFilters(filters, false, &types, &types_set, &scopes, &scopes_set, &gprojects, &gprojects_set) &&
		RollupFilters(group_filters, true, &types, &types_set, &scopes, &scopes_set, &gprojects, &gprojects_set);

	values[0] = BoolGetDatum(covered);
	values[1] = PointerGetDatum(construct_array(kinds, covered ? nkinds : 0, INT4OID, 4, true, TYPALIGN_INT));
	if (covered && types_set)
	{
		Datum		arg = RollupTextArray(types);
		Oid			argtype = TEXTARRAYOID;
		bool		isnull;

		PankoKeepPlan(&plan_rollup_type_ids,
					  "SELECT coalesce(array_agg(t.id), '{}') FROM panko.event_type t"
					  " WHERE left(t.name, 11) OPERATOR(pg_catalog.=) 'cloudkitty.'"
					  " AND substr(t.name, 12) OPERATOR(pg_catalog.=) ANY ($1)",
					  1, &argtype, CURSOR_OPT_GENERIC_PLAN);
		if (SPI_execute_plan(plan_rollup_type_ids, &arg, NULL, true, 1) != SPI_OK_SELECT || SPI_processed != 1)
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("panko: the lookup of rated event types returned no row")));
		values[2] = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		values[2] = isnull ? (Datum) 0 : datumCopy(values[2], false, -1);
		nulls[2] = isnull;
	}
	SPI_finish();
	if (covered && scopes_set)
		values[3] = RollupTextArray(scopes), nulls[3] = false;
	if (covered && gprojects_set)
		values[4] = RollupTextArray(gprojects), nulls[4] = false;
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls)));
}
