/*
 * traits_gin.c
 *		GIN support for panko.traits.
 *
 * Each trait becomes one key whose bytes sort like (name, type, value):
 *
 *		name bytes, 0x00, type byte, value		(any name)
 *		0x00, name code, type byte, value		(a common name: traits_names.c)
 *
 * The value is big-endian with the sign bit flipped (integers, datetimes),
 * IEEE bits made order-preserving (floats), or a string of up to 8 bytes
 * as it is; a longer string keeps its first 8 bytes and a 4-byte hash of
 * the whole.  Keys compare with byteacmp.  Equality is an exact key lookup
 * (a long string matches by prefix and hash, then a recheck); every range
 * filter and "ne" is one partial-match scan over the (name, type) prefix,
 * as in contrib/btree_gin.  In format 1 only a string bound longer than 8
 * bytes needs a recheck.  Compact keys keep the index small: most keys of an event
 * store are unique (request ids, instance ids, timestamps).
 *
 * Key format 2 (the index support functions of schema 0.13.0 on, the "_2"
 * symbols) keys a datetime by its minute: a batch of events holds as many
 * distinct times as events, and each distinct key is one descent of the
 * entry tree when the batch is stored (a quarter of the keys, and of the
 * GIN time, of a typical event).  Equality and ranges on a datetime then
 * match the bound's whole minute and are rechecked.  Format 1 (exact
 * datetimes) stays under the old symbols, for indexes built before the
 * update to 0.13.0, which rebuilds them; statistics keep exact keys.
 *
 * Key format 3 (schema 0.17.0 on, the "_3" symbols) also keys a string
 * trait named qty or price, a rated data point's amounts (TraitIsAmount),
 * by its first AMOUNT_KEY_PREFIX bytes and nothing more.  Amounts are
 * unique at nearly every point, so each was a new key, a random insert into
 * the entry tree, twice per point pushed; cut short, a push's amounts fall
 * into a few hundred keys.  Every filter on an amount is then rechecked
 * (the answers are the same, a filter on an amount reads more rows), and
 * its ranges keep their order: a key of a cut value is its prefix.
 */
#include "postgres.h"

#include "access/gin.h"
#include "access/stratnum.h"
#include "common/hashfn.h"
#include "utils/builtins.h"

#include "traits.h"

#define KEY_STRING_PREFIX		8	/* string bytes kept as they are */
#define KEY_STRING_HASH			4	/* then a hash of the whole string */

/* Index key formats (see above). */
#define KEY_FORMAT_EXACT		1
#define KEY_FORMAT_MINUTE		2
#define KEY_FORMAT_AMOUNT		3

#define AMOUNT_KEY_PREFIX		2	/* format 3: the bytes of an amount kept */

#define KEY_DATETIME_UNIT		INT64CONST(60000000)	/* format 2: a minute */

PG_FUNCTION_INFO_V1(traits_gin_consistent);
PG_FUNCTION_INFO_V1(traits_gin_compare_partial);

/* What comparePartial needs to know about one partial-match entry. */
typedef struct TraitGinPartial
{
	int			op;				/* TQ_*; 0 for "has name" */
	int			type;			/* trait type (strings compare specially) */
	int			prefixlen;		/* bytes of the name (and type) prefix */
	bool		lossy;			/* the bound's key stands for more values */
	bool		amount;			/* format 3's cut amount keys (a string) */
	bytea	   *bound;			/* the full query key */
} TraitGinPartial;

static int	TraitGinPrefixCoded(char *dst, const char *name, int namelen, int code, int type);
static bool KeyIsAmount(const char *name, int namelen, int type, int format);
static bytea *TraitGinKeyFormat(const TraitItem *item, bool *lossy, int format);
static bytea *TraitGinKeyCoded(const TraitItem *item, int code, bool *lossy, int format);

/*
 * Write the prefix of a key (the name, and the type when type >= 0) at dst;
 * returns its length.  dst may be NULL to measure.
 */
int
TraitGinPrefix(char *dst, const char *name, int namelen, int type)
{
	return TraitGinPrefixCoded(dst, name, namelen, TraitCodeForName(name, namelen), type);
}

/* (likewise, with the name's code known: 0 for none) */
static int
TraitGinPrefixCoded(char *dst, const char *name, int namelen, int code, int type)
{
	int			len = code ? 2 : namelen + 1;

	if (dst)
	{
		if (code)
		{
			dst[0] = '\0';
			dst[1] = (char) (uint8) code;
		}
		else
		{
			memcpy(dst, name, namelen);
			dst[namelen] = '\0';
		}
		if (type >= 0)
			dst[len] = (char) type;
	}
	return len + (type >= 0 ? 1 : 0);
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

/* Is a trait of this name and type keyed as an amount (format 3)? */
static bool
KeyIsAmount(const char *name, int namelen, int type, int format)
{
	return format >= KEY_FORMAT_AMOUNT && TraitIsAmount(name, namelen, type);
}

/* Bytes the value part of a key takes. */
static int
KeyValueLen(int type, int vallen, bool amount)
{
	if (type != TRAIT_STRING)
		return 8;
	if (amount)
		return Min(vallen, AMOUNT_KEY_PREFIX);
	return vallen <= KEY_STRING_PREFIX ? vallen : KEY_STRING_PREFIX + KEY_STRING_HASH;
}

/*
 * Build the index key of one trait (or of a predicate's bound).  *lossy is
 * set for a string longer than the kept prefix: other strings share the
 * key's prefix.  Values are canonical (no negative zero: TraitPackPair), so
 * equal values get equal keys.
 */
bytea *
TraitGinKey(const TraitItem *item, bool *lossy)
{
	return TraitGinKeyFormat(item, lossy, KEY_FORMAT_EXACT);
}

/* (the key of an item in one of the index key formats) */
static bytea *
TraitGinKeyFormat(const TraitItem *item, bool *lossy, int format)
{
	return TraitGinKeyCoded(item, item->code ? item->code : TraitCodeForName(item->name, item->namelen),
							lossy, format);
}

/* (likewise, with the name's code known: 0 for none) */
static bytea *
TraitGinKeyCoded(const TraitItem *item, int code, bool *lossy, int format)
{
	int			type = item->type;
	int			plen = TraitGinPrefixCoded(NULL, item->name, item->namelen, code, type);
	bool		amount = KeyIsAmount(item->name, item->namelen, type, format);
	int			vlen = KeyValueLen(type, item->vallen, amount);
	bytea	   *key = palloc(VARHDRSZ + plen + vlen);
	char	   *d = VARDATA(key);

	SET_VARSIZE(key, VARHDRSZ + plen + vlen);
	TraitGinPrefixCoded(d, item->name, item->namelen, code, type);
	d += plen;
	*lossy = false;
	switch (type)
	{
		case TRAIT_STRING:
			if (amount)
			{
				memcpy(d, item->value, vlen);
				*lossy = true;
			}
			else if (item->vallen <= KEY_STRING_PREFIX)
				memcpy(d, item->value, item->vallen);
			else
			{
				uint32		h = hash_bytes((const unsigned char *) item->value, item->vallen);

				memcpy(d, item->value, KEY_STRING_PREFIX);
				d[KEY_STRING_PREFIX] = (char) (h >> 24);
				d[KEY_STRING_PREFIX + 1] = (char) (h >> 16);
				d[KEY_STRING_PREFIX + 2] = (char) (h >> 8);
				d[KEY_STRING_PREFIX + 3] = (char) h;
				*lossy = true;
			}
			break;
		case TRAIT_FLOAT:
			{
				float8		f = TraitReadFloat8(item->value);
				uint64		u;

				memcpy(&u, &f, sizeof(u));
				u = (u & UINT64CONST(0x8000000000000000)) ? ~u : (u ^ UINT64CONST(0x8000000000000000));
				PutOrderedInt64(d, u);
				break;
			}
		case TRAIT_DATETIME:
			if (format >= KEY_FORMAT_MINUTE)
			{
				int64		v = TraitReadInt64(item->value);
				int64		m = v / KEY_DATETIME_UNIT;

				if (v < 0 && m * KEY_DATETIME_UNIT != v)
					m--;		/* the minute at or before, before 1970 too */
				PutOrderedInt64(d, (uint64) (m * KEY_DATETIME_UNIT) ^ UINT64CONST(0x8000000000000000));
				*lossy = true;
				break;
			}
			/* FALLTHROUGH */
		default:
			PutOrderedInt64(d, (uint64) TraitReadInt64(item->value) ^ UINT64CONST(0x8000000000000000));
			break;
	}
	return key;
}

/*
 * Compare the value parts of a key and a bound.  Strings: a long string's
 * key holds only its first bytes (and a hash), so two long strings with
 * the same first bytes cannot be ordered: *ambiguous is set, and the recheck
 * decides.  So does a key equal to a lossy bound of another type (a
 * datetime's minute, format 2): the minute holds times on both sides.
 */
static int
KeyValueCompare(int type, bool lossy, bool amount, const char *k, int klen, const char *b, int blen,
				bool *ambiguous)
{
	int			kp,
				bp,
				c;
	bool		klong,
				blong;

	*ambiguous = false;
	if (type != TRAIT_STRING)
	{
		c = memcmp(k, b, 8);
		if (c == 0 && lossy)
			*ambiguous = true;
		return c;
	}
	if (amount)
	{
		/*
		 * (format 3) A key shorter than the kept prefix is its whole value,
		 * so it orders as a prefix does; two keys of the whole prefix may
		 * stand for any values that start so.
		 */
		c = memcmp(k, b, Min(klen, blen));
		if (c != 0)
			return c;
		if (klen != blen)
			return klen < blen ? -1 : 1;
		*ambiguous = klen == AMOUNT_KEY_PREFIX;
		return 0;
	}
	klong = klen > KEY_STRING_PREFIX;
	blong = blen > KEY_STRING_PREFIX;
	kp = klong ? KEY_STRING_PREFIX : klen;
	bp = blong ? KEY_STRING_PREFIX : blen;
	c = memcmp(k, b, Min(kp, bp));
	if (c != 0)
		return c;
	/* the shorter one is a prefix of the other */
	if (kp != bp)
		return kp < bp ? -1 : 1;
	if (klong && blong)
	{
		*ambiguous = true;
		return 0;
	}
	return (klong > blong) - (klong < blong);
}

/*
 * extractValue: one key per trait of a stored value, in the given format,
 * in key order.  GIN sorts every row's keys (ginExtractEntries), 4.5% of a
 * CloudKitty push; given them in order, its sort only checks that they are.
 * Traits are sorted by name, and so are the keys of uncoded names; the keys
 * of coded names (0x00, code, ...) come first, by code.
 */
static Datum
ExtractValue(FunctionCallInfo fcinfo, int format)
{
	Traits	   *t = PG_GETARG_TRAITS_P(0);
	int32	   *nentries = (int32 *) PG_GETARG_POINTER(1);
	int			n = TraitsCount(t);
	Datum	   *entries = NULL;
	bool		lossy;

	*nentries = n;
	if (n > 0)
	{
		TraitItem  *coded = palloc(sizeof(TraitItem) * n);
		Datum	   *plain = palloc(sizeof(Datum) * n);
		int			ncoded = 0;
		int			nplain = 0;

		for (int i = 0; i < n; i++)
		{
			TraitItem	item = TraitsItem(t, i);

			if (item.code == 0)
				item.code = TraitCodeForName(item.name, item.namelen);
			if (item.code != 0)
			{
				/* (insertion by code: a row has few coded names) */
				int			j = ncoded++;

				while (j > 0 && coded[j - 1].code > item.code)
				{
					coded[j] = coded[j - 1];
					j--;
				}
				coded[j] = item;
			}
			else
				plain[nplain++] = PointerGetDatum(TraitGinKeyCoded(&item, 0, &lossy, format));
		}
		entries = palloc(sizeof(Datum) * n);
		for (int i = 0; i < ncoded; i++)
			entries[i] = PointerGetDatum(TraitGinKeyCoded(&coded[i], coded[i].code, &lossy, format));
		memcpy(entries + ncoded, plain, sizeof(Datum) * nplain);
		pfree(coded);
		pfree(plain);
	}
	PG_RETURN_POINTER(entries);
}

/*
 * A key of just the prefix (the name, and the type when type >= 0) and of a
 * string's kept bytes when val is given: where a scan starts, and the
 * prefix the statistics of a name are found under.
 */
bytea *
TraitGinStartKey(const char *name, int namelen, int type, const char *val, int vallen)
{
	int			plen = TraitGinPrefix(NULL, name, namelen, type);
	int			vlen = val ? Min(vallen, KEY_STRING_PREFIX) : 0;
	bytea	   *key = palloc(VARHDRSZ + plen + vlen);

	SET_VARSIZE(key, VARHDRSZ + plen + vlen);
	TraitGinPrefix(VARDATA(key), name, namelen, type);
	if (vlen)
		memcpy(VARDATA(key) + plen, val, vlen);
	return key;
}

/*
 * extractQuery: exact keys for @> and for equality filters, partial-match
 * scans over one (name, type) for ?, ranges and "ne"; in the format of the
 * index's keys.
 */
static Datum
ExtractQuery(FunctionCallInfo fcinfo, int format)
{
	int32	   *nentries = (int32 *) PG_GETARG_POINTER(1);
	StrategyNumber strategy = PG_GETARG_UINT16(2);
	bool	  **pmatch = (bool **) PG_GETARG_POINTER(3);
	Pointer   **extra_data = (Pointer **) PG_GETARG_POINTER(4);
	int32	   *searchMode = (int32 *) PG_GETARG_POINTER(6);
	Datum	   *entries = NULL;

	*nentries = 0;
	if (strategy == GIN_STRATEGY_CONTAINS)
	{
		Traits	   *t = PG_GETARG_TRAITS_P(0);
		int			n = TraitsCount(t);
		bool	   *lossy = palloc0(sizeof(bool) * Max(n, 1));

		entries = palloc(sizeof(Datum) * Max(n, 1));
		*extra_data = palloc0(sizeof(Pointer) * Max(n, 1));
		for (int i = 0; i < n; i++)
		{
			TraitItem	item = TraitsItem(t, i);

			entries[i] = PointerGetDatum(TraitGinKeyFormat(&item, &lossy[i], format));
			/* consistent() learns which keys were lossy through extra_data */
			(*extra_data)[i] = (Pointer) &lossy[i];
		}
		*nentries = n;
		if (n == 0)
			*searchMode = GIN_SEARCH_MODE_ALL;
	}
	else if (strategy == GIN_STRATEGY_EXISTS)
	{
		text	   *name = PG_GETARG_TEXT_PP(0);
		TraitGinPartial *part = palloc0(sizeof(TraitGinPartial));

		entries = palloc(sizeof(Datum));
		entries[0] = PointerGetDatum(TraitGinStartKey(VARDATA_ANY(name), VARSIZE_ANY_EXHDR(name),
													  -1, NULL, 0));
		part->op = 0;
		part->prefixlen = VARSIZE_ANY_EXHDR(DatumGetByteaPP(entries[0]));
		*pmatch = palloc(sizeof(bool));
		(*pmatch)[0] = true;
		*extra_data = palloc(sizeof(Pointer));
		(*extra_data)[0] = (Pointer) part;
		*nentries = 1;
	}
	else if (strategy == GIN_STRATEGY_MATCH)
	{
		TraitQuery *q = PG_GETARG_TRAITQUERY_P(0);
		int			n = TraitQueryCount(q);

		entries = palloc(sizeof(Datum) * Max(n, 1));
		*pmatch = palloc0(sizeof(bool) * Max(n, 1));
		*extra_data = palloc0(sizeof(Pointer) * Max(n, 1));
		for (int i = 0; i < n; i++)
		{
			TraitGinPartial *part = palloc0(sizeof(TraitGinPartial));
			TraitItem	item = TraitQueryItem(q, i);
			int			op = item.op;
			int			type = item.type;

			part->op = op;
			part->type = type;
			part->prefixlen = TraitGinPrefix(NULL, item.name, item.namelen, type);
			part->bound = TraitGinKeyFormat(&item, &part->lossy, format);
			part->amount = KeyIsAmount(item.name, item.namelen, type, format);
			(*extra_data)[i] = (Pointer) part;
			if (op == TQ_EQ)
				entries[i] = PointerGetDatum(part->bound);
			else
			{
				/*
				 * ne, lt and le scan the whole (name, type); gt and ge start
				 * at the bound (for a long string, at its kept prefix, so
				 * that strings sharing it are not skipped; a datetime's
				 * minute key and an amount's cut key are the first of
				 * theirs already).
				 */
				(*pmatch)[i] = true;
				if (op == TQ_GT || op == TQ_GE)
					entries[i] = part->lossy && type == TRAIT_STRING && !part->amount
						? PointerGetDatum(TraitGinStartKey(item.name, item.namelen, type,
														   item.value, item.vallen))
						: PointerGetDatum(part->bound);
				else
					entries[i] = PointerGetDatum(TraitGinStartKey(item.name, item.namelen,
																  type, NULL, 0));
			}
		}
		*nentries = n;
		if (n == 0)
			*searchMode = GIN_SEARCH_MODE_ALL;
	}
	else
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg_internal("traits_gin_extract_query: unknown strategy %d", strategy)));

	PG_RETURN_POINTER(entries);
}

/*
 * The support functions of each key format: format 1 for indexes built
 * before 0.13.0, format 2 ("_2") for those built before 0.17.0, format 3
 * ("_3", what sql/panko.sql names) since.
 */
#define KEY_FORMAT_FUNCTION(fn, impl, format) \
	PG_FUNCTION_INFO_V1(fn); \
	Datum \
	fn(PG_FUNCTION_ARGS) \
	{ \
		return impl(fcinfo, format); \
	}

KEY_FORMAT_FUNCTION(traits_gin_extract_value, ExtractValue, KEY_FORMAT_EXACT)
KEY_FORMAT_FUNCTION(traits_gin_extract_value_2, ExtractValue, KEY_FORMAT_MINUTE)
KEY_FORMAT_FUNCTION(traits_gin_extract_query, ExtractQuery, KEY_FORMAT_EXACT)
KEY_FORMAT_FUNCTION(traits_gin_extract_query_2, ExtractQuery, KEY_FORMAT_MINUTE)
KEY_FORMAT_FUNCTION(traits_gin_extract_value_3, ExtractValue, KEY_FORMAT_AMOUNT)
KEY_FORMAT_FUNCTION(traits_gin_extract_query_3, ExtractQuery, KEY_FORMAT_AMOUNT)

/*
 * Every strategy is a conjunction of its entries.  A recheck is needed only
 * where a bound's key stands for more values: a long string's kept prefix,
 * a datetime's minute (format 2).
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
	bytea	   *start = PG_GETARG_BYTEA_PP(0);
	bytea	   *key = PG_GETARG_BYTEA_PP(1);
	TraitGinPartial *part = (TraitGinPartial *) PG_GETARG_POINTER(3);
	const char *k = VARDATA_ANY(key);
	int			klen = VARSIZE_ANY_EXHDR(key);
	const char *b;
	int			blen;
	int			cmp;
	bool		ambiguous;

	/* Left the (name, type) prefix: nothing further can match. */
	if (klen < part->prefixlen || memcmp(k, VARDATA_ANY(start), part->prefixlen) != 0)
		PG_RETURN_INT32(1);
	if (part->op == 0)
		PG_RETURN_INT32(0);

	b = VARDATA_ANY(part->bound);
	blen = VARSIZE_ANY_EXHDR(part->bound);
	cmp = KeyValueCompare(part->type, part->lossy, part->amount, k + part->prefixlen,
						  klen - part->prefixlen, b + part->prefixlen, blen - part->prefixlen,
						  &ambiguous);
	if (ambiguous)
		PG_RETURN_INT32(0);		/* either way: the recheck decides */
	if (TraitOpHolds(part->op, cmp))
		PG_RETURN_INT32(0);
	/* Keys ascend: past the bound of lt and le, nothing further matches. */
	PG_RETURN_INT32(part->op == TQ_LT || part->op == TQ_LE ? 1 : -1);
}
