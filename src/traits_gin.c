/*
 * traits_gin.c
 *		GIN support for panko.traits.
 *
 * Each trait becomes one key whose bytes sort like (name, type, value):
 *
 *		name bytes, 0x00, type byte, value
 *
 * where the value is big-endian with the sign bit flipped (integers and
 * datetimes), IEEE bits made order-preserving (floats), or the string's
 * first TRAIT_GIN_MAX_STRING bytes.  Keys therefore compare with byteacmp,
 * equality is an exact key lookup, and every range filter (and "ne") is one
 * partial-match scan over the (name, type) prefix, as in btree_gin.  Only a
 * string bound longer than the kept prefix needs a recheck.
 */
#include "postgres.h"

#include "access/gin.h"
#include "access/stratnum.h"
#include "utils/builtins.h"

#include "traits.h"

#define GIN_STRATEGY_CONTAINS	7	/* traits @> traits */
#define GIN_STRATEGY_EXISTS		9	/* traits ? text */
#define GIN_STRATEGY_MATCH		15	/* traits @@ traitquery */

PG_FUNCTION_INFO_V1(traits_gin_extract_value);
PG_FUNCTION_INFO_V1(traits_gin_extract_query);
PG_FUNCTION_INFO_V1(traits_gin_consistent);
PG_FUNCTION_INFO_V1(traits_gin_compare_partial);

/* What comparePartial needs to know about one partial-match entry. */
typedef struct TraitGinPartial
{
	int			op;				/* TQ_*; 0 for "has name" */
	int			prefixlen;		/* bytes of name\0type (or name\0) */
	bool		lossy;			/* bound was truncated */
	bytea	   *bound;			/* the full query key */
} TraitGinPartial;

/* The order of index keys: bytewise, a prefix first (byteacmp's order). */
int
TraitKeyCompare(const char *a, int alen, const char *b, int blen)
{
	int			r = memcmp(a, b, Min(alen, blen));

	if (r != 0)
		return r;
	return (alen > blen) - (alen < blen);
}

/* Write v big-endian with the sign flipped, so memcmp orders it. */
static void
PutOrderedInt64(char *dst, uint64 u)
{
	for (int i = 7; i >= 0; i--)
	{
		dst[i] = (char) (u & 0xFF);
		u >>= 8;
	}
}

/* Build the index key of one trait; *truncated if a string was cut. */
bytea *
TraitGinKey(const char *name, int namelen, int type, const char *val, int vallen,
			bool *truncated)
{
	int			keep = (type == TRAIT_STRING) ? Min(vallen, TRAIT_GIN_MAX_STRING) : 8;
	Size		size = VARHDRSZ + namelen + 2 + keep;
	bytea	   *key = palloc(size);
	char	   *d = VARDATA(key);

	SET_VARSIZE(key, size);
	memcpy(d, name, namelen);
	d += namelen;
	*d++ = '\0';
	*d++ = (char) type;
	*truncated = false;
	switch (type)
	{
		case TRAIT_STRING:
			memcpy(d, val, keep);
			/* a bound of exactly the kept length cannot tell longer values apart */
			*truncated = (vallen >= TRAIT_GIN_MAX_STRING);
			break;
		case TRAIT_FLOAT:
			{
				float8		f = TraitReadFloat8(val);
				uint64		u;

				if (f == 0.0)
					f = 0.0;
				memcpy(&u, &f, sizeof(u));
				u = (u & UINT64CONST(0x8000000000000000)) ? ~u : (u ^ UINT64CONST(0x8000000000000000));
				PutOrderedInt64(d, u);
				break;
			}
		default:
			PutOrderedInt64(d, (uint64) TraitReadInt64(val) ^ UINT64CONST(0x8000000000000000));
			break;
	}
	return key;
}

/* A key of just name\0type (or name\0 when type < 0): where a scan starts. */
static bytea *
TraitGinPrefix(const char *name, int namelen, int type)
{
	Size		size = VARHDRSZ + namelen + 1 + (type >= 0 ? 1 : 0);
	bytea	   *key = palloc(size);
	char	   *d = VARDATA(key);

	SET_VARSIZE(key, size);
	memcpy(d, name, namelen);
	d[namelen] = '\0';
	if (type >= 0)
		d[namelen + 1] = (char) type;
	return key;
}

Datum
traits_gin_extract_value(PG_FUNCTION_ARGS)
{
	Traits	   *t = PG_GETARG_TRAITS_P(0);
	int32	   *nentries = (int32 *) PG_GETARG_POINTER(1);
	int			n = TRAITS_COUNT(t);
	Datum	   *entries = NULL;
	bool		truncated;

	*nentries = n;
	if (n > 0)
	{
		entries = palloc(sizeof(Datum) * n);
		for (int i = 0; i < n; i++)
			entries[i] = PointerGetDatum(TraitGinKey(TRAIT_NAME(t, i), TRAIT_NAMELEN(t, i),
													 TRAIT_TYPE(t, i), TRAIT_VALUE(t, i),
													 TRAIT_VALLEN(t, i), &truncated));
	}
	PG_RETURN_POINTER(entries);
}

Datum
traits_gin_extract_query(PG_FUNCTION_ARGS)
{
	int32	   *nentries = (int32 *) PG_GETARG_POINTER(1);
	StrategyNumber strategy = PG_GETARG_UINT16(2);
	bool	  **pmatch = (bool **) PG_GETARG_POINTER(3);
	Pointer   **extra_data = (Pointer **) PG_GETARG_POINTER(4);
	int32	   *searchMode = (int32 *) PG_GETARG_POINTER(6);
	Datum	   *entries = NULL;
	bool		truncated;

	*nentries = 0;
	if (strategy == GIN_STRATEGY_CONTAINS)
	{
		Traits	   *t = PG_GETARG_TRAITS_P(0);
		int			n = TRAITS_COUNT(t);
		bool	   *lossy = palloc0(sizeof(bool) * Max(n, 1));

		entries = palloc(sizeof(Datum) * Max(n, 1));
		for (int i = 0; i < n; i++)
			entries[i] = PointerGetDatum(TraitGinKey(TRAIT_NAME(t, i), TRAIT_NAMELEN(t, i),
													 TRAIT_TYPE(t, i), TRAIT_VALUE(t, i),
													 TRAIT_VALLEN(t, i), &lossy[i]));
		*nentries = n;
		/* Remember lossiness for consistent() through extra_data. */
		*extra_data = palloc0(sizeof(Pointer) * Max(n, 1));
		for (int i = 0; i < n; i++)
			(*extra_data)[i] = (Pointer) &lossy[i];
		if (n == 0)
			*searchMode = GIN_SEARCH_MODE_ALL;
	}
	else if (strategy == GIN_STRATEGY_EXISTS)
	{
		text	   *name = PG_GETARG_TEXT_PP(0);
		TraitGinPartial *part = palloc0(sizeof(TraitGinPartial));

		entries = palloc(sizeof(Datum));
		entries[0] = PointerGetDatum(TraitGinPrefix(VARDATA_ANY(name), VARSIZE_ANY_EXHDR(name), -1));
		part->op = 0;
		part->prefixlen = VARSIZE_ANY_EXHDR(name) + 1;
		*pmatch = palloc(sizeof(bool));
		(*pmatch)[0] = true;
		*extra_data = palloc(sizeof(Pointer));
		(*extra_data)[0] = (Pointer) part;
		*nentries = 1;
	}
	else if (strategy == GIN_STRATEGY_MATCH)
	{
		TraitQuery *q = PG_GETARG_TRAITQUERY_P(0);
		int			n = TRAITS_COUNT(q);

		entries = palloc(sizeof(Datum) * Max(n, 1));
		*pmatch = palloc0(sizeof(bool) * Max(n, 1));
		*extra_data = palloc0(sizeof(Pointer) * Max(n, 1));
		for (int i = 0; i < n; i++)
		{
			TraitGinPartial *part = palloc0(sizeof(TraitGinPartial));
			int			op = TQ_OP(q, i);

			part->op = op;
			part->prefixlen = TQ_NAMELEN(q, i) + 2;
			part->bound = TraitGinKey(TQ_NAME(q, i), TQ_NAMELEN(q, i), TQ_TYPE(q, i),
									  TQ_VALUE(q, i), TQ_VALLEN(q, i), &truncated);
			part->lossy = truncated;
			(*extra_data)[i] = (Pointer) part;
			if (op == TQ_EQ)
				entries[i] = PointerGetDatum(part->bound);
			else
			{
				/* ne, lt, le scan the whole (name, type); gt, ge start at the bound */
				(*pmatch)[i] = true;
				entries[i] = (op == TQ_GT || op == TQ_GE)
					? PointerGetDatum(part->bound)
					: PointerGetDatum(TraitGinPrefix(TQ_NAME(q, i), TQ_NAMELEN(q, i), TQ_TYPE(q, i)));
			}
		}
		*nentries = n;
		if (n == 0)
			*searchMode = GIN_SEARCH_MODE_ALL;
	}
	else
		elog(ERROR, "traits_gin_extract_query: unknown strategy %d", strategy);

	PG_RETURN_POINTER(entries);
}

/*
 * Every strategy is a conjunction of its entries.  A recheck is needed only
 * where a key kept a prefix of a long string bound.
 */
Datum
traits_gin_consistent(PG_FUNCTION_ARGS)
{
	bool	   *check = (bool *) PG_GETARG_POINTER(0);
	StrategyNumber strategy = PG_GETARG_UINT16(1);
	int32		nkeys = PG_GETARG_INT32(3);
	Pointer    *extra_data = (Pointer *) PG_GETARG_POINTER(4);
	bool	   *recheck = (bool *) PG_GETARG_POINTER(5);

	*recheck = false;
	for (int i = 0; i < nkeys; i++)
	{
		if (!check[i])
			return BoolGetDatum(false);
		if (strategy == GIN_STRATEGY_CONTAINS && *(bool *) extra_data[i])
			*recheck = true;
		if (strategy == GIN_STRATEGY_MATCH && ((TraitGinPartial *) extra_data[i])->lossy)
			*recheck = true;
	}
	return BoolGetDatum(true);
}

/*
 * Partial match, as btree_gin's comparePartial: 0 matches, < 0 skips this
 * key and goes on, > 0 ends the scan.
 */
Datum
traits_gin_compare_partial(PG_FUNCTION_ARGS)
{
	bytea	   *key = PG_GETARG_BYTEA_PP(1);
	TraitGinPartial *part = (TraitGinPartial *) PG_GETARG_POINTER(3);
	const char *k = VARDATA_ANY(key);
	int			klen = VARSIZE_ANY_EXHDR(key);
	const char *b;
	int			blen;
	int			cmp;

	/* Left the (name, type) prefix: nothing further can match. */
	if (part->op == 0)
	{
		bytea	   *start = PG_GETARG_BYTEA_PP(0);

		if (klen < part->prefixlen || memcmp(k, VARDATA_ANY(start), part->prefixlen) != 0)
			PG_RETURN_INT32(1);
		PG_RETURN_INT32(0);
	}
	b = VARDATA_ANY(part->bound);
	blen = VARSIZE_ANY_EXHDR(part->bound);
	if (klen < part->prefixlen || memcmp(k, b, part->prefixlen) != 0)
		PG_RETURN_INT32(1);

	cmp = memcmp(k + part->prefixlen, b + part->prefixlen,
				 Min(klen, blen) - part->prefixlen);
	if (cmp == 0)
		cmp = (klen > blen) - (klen < blen);

	switch (part->op)
	{
		case TQ_NE:
			PG_RETURN_INT32((cmp == 0 && !part->lossy) ? -1 : 0);
		case TQ_LT:
			PG_RETURN_INT32((cmp < 0 || (cmp == 0 && part->lossy)) ? 0 : 1);
		case TQ_LE:
			PG_RETURN_INT32(cmp <= 0 ? 0 : 1);
		case TQ_GT:
			PG_RETURN_INT32((cmp > 0 || (cmp == 0 && part->lossy)) ? 0 : -1);
		case TQ_GE:
			PG_RETURN_INT32(cmp >= 0 ? 0 : -1);
	}
	PG_RETURN_INT32(1);
}
