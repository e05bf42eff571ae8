/*
 * traits.c
 *		Building and searching panko.traits values.  Every constructor (text
 *		input, recv, jsonb, record_events) ends in TraitsBuild, so stored
 *		values are canonical: sorted by (name, type), one value per pair.
 */
#include "postgres.h"

#include <math.h>

#include "traits.h"
#include "isotime.h"
#include "numbers.h"
#include "utils/datetime.h"

static const char *const trait_type_names[] = {"none", "string", "integer", "float", "datetime"};

/* Order of names: bytewise, a prefix first, as the GIN keys order them. */
static inline int
NameCompare(const char *a, int alen, const char *b, int blen)
{
	int			r = memcmp(a, b, Min(alen, blen));

	if (r != 0)
		return r;
	return (alen > blen) - (alen < blen);
}

/* qsort order: (name, type), then input position so the last copy is last. */
static int
TraitPairCompare(const void *a, const void *b)
{
	const TraitPair *pa = (const TraitPair *) a;
	const TraitPair *pb = (const TraitPair *) b;
	int			r = NameCompare(pa->name, pa->namelen, pb->name, pb->namelen);

	if (r != 0)
		return r;
	if (pa->type != pb->type)
		return pa->type - pb->type;
	return pa->ord - pb->ord;
}

/* Bytes a pair takes in the data area: its name, coded or not, and value. */
int
TraitPairDataSize(const TraitPair *p, int code)
{
	return (code ? 2 : 1 + p->namelen) +
		(p->type == TRAIT_STRING ? p->strlen : (int) sizeof(int64));
}

/* Append one trait's data (name, value) at dst; returns bytes. */
int
TraitPackPair(char *dst, const TraitPair *p, int code)
{
	char	   *d = dst;

	if (code)
	{
		*d++ = (char) TRAIT_NAME_CODED;
		*d++ = (char) (uint8) code;
	}
	else
	{
		*d++ = (char) (uint8) p->namelen;
		memcpy(d, p->name, p->namelen);
		d += p->namelen;
	}
	switch (p->type)
	{
		case TRAIT_STRING:
			memcpy(d, p->str, p->strlen);
			d += p->strlen;
			break;
		case TRAIT_FLOAT:
			memcpy(d, &p->f8, sizeof(float8));
			d += sizeof(float8);
			break;
		default:
			memcpy(d, &p->i64, sizeof(int64));
			d += sizeof(int64);
			break;
	}
	return (int) (d - dst);
}

/*
 * Sort, drop all but the last of each (name, type), and pack.  The pairs
 * must already be checked (TraitCheckName and friends).
 */
Traits *
TraitsBuild(TraitPair *pairs, int npairs)
{
	Traits	   *t;
	int			nkeep = 0;
	Size		datalen = 0;
	Size		total;
	uint32	   *ents;
	char	   *data;
	Size		off = 0;
	int		   *codes;

	for (int i = 0; i < npairs; i++)
		pairs[i].ord = i;
	if (npairs > 1)
		qsort(pairs, npairs, sizeof(TraitPair), TraitPairCompare);

	/* Keep the last of each run of equal (name, type). */
	codes = palloc(sizeof(int) * Max(npairs, 1));
	for (int i = 0; i < npairs; i++)
	{
		if (i + 1 < npairs &&
			pairs[i].type == pairs[i + 1].type &&
			NameCompare(pairs[i].name, pairs[i].namelen,
						pairs[i + 1].name, pairs[i + 1].namelen) == 0)
			continue;
		pairs[nkeep] = pairs[i];
		codes[nkeep] = TraitCodeForName(pairs[i].name, pairs[i].namelen);
		datalen += TraitPairDataSize(&pairs[nkeep], codes[nkeep]);
		nkeep++;
	}

	if (nkeep > TRAITS_MAX_COUNT || datalen > TRAITS_MAX_DATA)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many or too large traits"),
				 errdetail("%d traits with %zu bytes of data; the limits are %d traits and %d bytes.",
						   nkeep, datalen, TRAITS_MAX_COUNT, TRAITS_MAX_DATA)));

	total = TRAITS_HDRSZ + sizeof(uint32) * nkeep + datalen;
	t = (Traits *) palloc0(total);
	SET_VARSIZE(t, total);
	TRAITS_SET_HEADER(t, nkeep);
	ents = TRAITS_ENTRIES(t);
	data = TRAITS_DATA(t);
	for (int i = 0; i < nkeep; i++)
	{
		off += TraitPackPair(data + off, &pairs[i], codes[i]);
		ents[i] = TE_MAKE(pairs[i].type, off);
	}
	pfree(codes);
	return t;
}

/* Binary search for (name, type); index or -1. */
int
TraitsFind(Traits *t, const char *name, int namelen, int type)
{
	int			lo = 0,
				hi = (int) TRAITS_COUNT(t) - 1;

	while (lo <= hi)
	{
		int			mid = lo + (hi - lo) / 2;
		int			r = NameCompare(TRAIT_NAME(t, mid), TRAIT_NAMELEN(t, mid), name, namelen);

		if (r == 0)
			r = TRAIT_TYPE(t, mid) - type;
		if (r == 0)
			return mid;
		if (r < 0)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return -1;
}

/* Binary search for the first trait with this name, whatever its type. */
int
TraitsFindName(Traits *t, const char *name, int namelen)
{
	int			lo = 0,
				hi = (int) TRAITS_COUNT(t);

	while (lo < hi)
	{
		int			mid = lo + (hi - lo) / 2;

		if (NameCompare(TRAIT_NAME(t, mid), TRAIT_NAMELEN(t, mid), name, namelen) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < (int) TRAITS_COUNT(t) &&
		NameCompare(TRAIT_NAME(t, lo), TRAIT_NAMELEN(t, lo), name, namelen) == 0)
		return lo;
	return -1;
}

/* Compare two stored values of one type; strings compare bytewise. */
int
TraitCompareValue(int type, const char *a, int alen, const char *b, int blen)
{
	switch (type)
	{
		case TRAIT_STRING:
			return NameCompare(a, alen, b, blen);
		case TRAIT_FLOAT:
			{
				float8		x = TraitReadFloat8(a);
				float8		y = TraitReadFloat8(b);

				return (x > y) - (x < y);
			}
		default:
			{
				int64		x = TraitReadInt64(a);
				int64		y = TraitReadInt64(b);

				return (x > y) - (x < y);
			}
	}
}

/* Names: 1 to 255 bytes, no NUL (text cannot hold one anyway). */
void
TraitCheckName(const char *name, int namelen)
{
	if (namelen == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("trait name must not be empty")));
	if (namelen > TRAIT_NAME_MAXLEN)
		ereport(ERROR,
				(errcode(ERRCODE_STRING_DATA_RIGHT_TRUNCATION),
				 errmsg("trait name \"%.40s...\" is too long", name),
				 errdetail("A trait name is %d bytes; the limit is %d.",
						   namelen, TRAIT_NAME_MAXLEN)));
}

void
TraitCheckString(const char *name, int namelen, int len)
{
	if (len > TRAIT_STRING_MAXLEN)
		ereport(ERROR,
				(errcode(ERRCODE_STRING_DATA_RIGHT_TRUNCATION),
				 errmsg("value of string trait \"%.*s\" is too long", namelen, name),
				 errdetail("The value is %d bytes; the limit is %d.",
						   len, TRAIT_STRING_MAXLEN),
				 errhint("Keep long text in the event's raw document.")));
}

void
TraitCheckFloat(const char *name, int namelen, float8 v)
{
	if (!isfinite(v))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("value of float trait \"%.*s\" must be finite", namelen, name)));
}

const char *
TraitTypeName(int type)
{
	if (type < 0 || type > TRAIT_DATETIME)
		return "unknown";
	return trait_type_names[type];
}

/* Type id for a type name, or -1.  "none" is accepted and means string. */
int
TraitTypeFromName(const char *s, int len)
{
	for (int i = 0; i <= TRAIT_DATETIME; i++)
	{
		if ((int) strlen(trait_type_names[i]) == len &&
			memcmp(trait_type_names[i], s, len) == 0)
			return i == TRAIT_NONE ? TRAIT_STRING : i;
	}
	return -1;
}

/* The API's text of a value: what Panko's str()/isoformat() printed. */
void
TraitValueToText(StringInfo buf, int type, const char *val, int vallen)
{
	switch (type)
	{
		case TRAIT_STRING:
			appendBinaryStringInfo(buf, val, vallen);
			break;
		case TRAIT_INTEGER:
			appendStringInfo(buf, INT64_FORMAT, TraitReadInt64(val));
			break;
		case TRAIT_FLOAT:
			PankoAppendFloat(buf, TraitReadFloat8(val));
			break;
		case TRAIT_DATETIME:
			PankoAppendTimestamp(buf, (Timestamp) TraitReadInt64(val));
			break;
	}
}

/* Datetime traits hold years 1 to 9999, as Python's datetime does. */
void
TraitCheckDatetime(const char *name, int namelen, int64 ts)
{
	int64		lo = ((int64) date2j(PANKO_MIN_YEAR, 1, 1) - POSTGRES_EPOCH_JDATE) * USECS_PER_DAY;
	int64		hi = ((int64) date2j(PANKO_MAX_YEAR + 1, 1, 1) - POSTGRES_EPOCH_JDATE) * USECS_PER_DAY;

	if (ts < lo || ts >= hi)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("value of datetime trait \"%.*s\" is out of range", namelen, name),
				 errdetail("Datetime traits hold years 1 to 9999.")));
}

/*
 * The same checks as above, for callers that must not throw (record_events
 * rejects one event and goes on): a message, or NULL when the pair is fine.
 */
const char *
TraitPairProblem(const TraitPair *p)
{
	if (p->namelen == 0)
		return "trait name must not be empty";
	if (p->namelen > TRAIT_NAME_MAXLEN)
		return psprintf("trait name \"%.40s...\" is longer than %d bytes",
						p->name, TRAIT_NAME_MAXLEN);
	if (memchr(p->name, '\0', p->namelen))
		return "trait name contains a zero byte";
	if (p->type == TRAIT_STRING && p->strlen > TRAIT_STRING_MAXLEN)
		return psprintf("value of string trait \"%.*s\" is longer than %d bytes",
						p->namelen, p->name, TRAIT_STRING_MAXLEN);
	if (p->type == TRAIT_STRING && memchr(p->str, '\0', p->strlen))
		return psprintf("value of string trait \"%.*s\" contains a zero byte",
						p->namelen, p->name);
	if (p->type == TRAIT_FLOAT && !isfinite(p->f8))
		return psprintf("value of float trait \"%.*s\" must be finite",
						p->namelen, p->name);
	return NULL;
}
