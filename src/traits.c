/*
 * traits.c
 *		Building and searching panko.traits and panko.traitquery values.
 *		Every constructor (text input, recv, jsonb, record_events) ends in
 *		TraitsBuild, so stored values are canonical: sorted by (name, type),
 *		one value per pair.  The limits a trait must keep are checked here
 *		too, in a throwing and a message-returning form built on one set of
 *		rules.
 */
#include "postgres.h"

#include <math.h>

#include "utils/builtins.h"

#include "traits.h"
#include "isotime.h"
#include "numbers.h"

static const char *const trait_type_names[] = {"none", "string", "integer", "float", "datetime"};

/* PackPairs writes both types through one layout of header and entries. */
StaticAssertDecl(offsetof(Traits, header) == offsetof(TraitQuery, header) &&
				 offsetof(Traits, entries) == offsetof(TraitQuery, entries),
				 "panko.traits and panko.traitquery share their header");

/* Up to this many pairs are sorted by insertion. */
#define TRAITS_INSERTION_SORT	32

/* qsort order: (name, type), then input position so the last copy is last. */
static inline int
TraitPairCompare(const void *a, const void *b)
{
	const TraitPair *pa = (const TraitPair *) a;
	const TraitPair *pb = (const TraitPair *) b;
	int			r = TraitBytesCompare(pa->name, pa->namelen, pb->name, pb->namelen);

	if (r != 0)
		return r;
	if (pa->type != pb->type)
		return pa->type - pb->type;
	return pa->ord - pb->ord;
}

/* Bytes a pair takes in the data area: its name, coded or not, and value. */
static int
TraitPairDataSize(const TraitPair *p, int code)
{
	return (code ? 2 : 1 + p->namelen) +
		(p->type == TRAIT_STRING ? p->strlen : (int) sizeof(int64));
}

/*
 * Append one trait's data (name, value) at dst; returns bytes.  Every value
 * of both types is packed here, so this is where a float's negative zero
 * becomes zero: canonical values compare byte for byte (traits_eq) and
 * their GIN keys must be the same for 0 and -0.
 */
static int
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
			{
				float8		f = p->f8 == 0.0 ? 0.0 : p->f8;

				memcpy(d, &f, sizeof(float8));
				d += sizeof(float8);
				break;
			}
		default:
			memcpy(d, &p->i64, sizeof(int64));
			d += sizeof(int64);
			break;
	}
	return (int) (d - dst);
}

/*
 * Pack pairs, in the order given, into a value of either type: both have
 * the same header and data, and differ in their entry words.  codes[i] is
 * pair i's name code (0: none), or codes is NULL for no codes at all.
 */
static void *
PackPairs(const TraitPair *pairs, int npairs, const int *codes, Size datalen,
		  bool query)
{
	Size		total = TRAITS_HDRSZ + sizeof(uint32) * npairs + datalen;
	char	   *v = palloc0(total);
	uint32	   *entries = (uint32 *) (v + TRAITS_HDRSZ);
	char	   *data = (char *) (entries + npairs);
	Size		off = 0;

	SET_VARSIZE(v, total);
	((Traits *) v)->header = TRAITS_HEADER(npairs);
	for (int i = 0; i < npairs; i++)
	{
		const TraitPair *p = &pairs[i];

		off += TraitPackPair(data + off, p, codes ? codes[i] : 0);
		entries[i] = query ? TQE_MAKE(p->type, p->op, off) : TE_MAKE(p->type, off);
	}
	return v;
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
	int		   *codes;

	for (int i = 0; i < npairs; i++)
		pairs[i].ord = i;
	if (npairs > TRAITS_INSERTION_SORT)
		qsort(pairs, npairs, sizeof(TraitPair), TraitPairCompare);
	else
	{
		/*
		 * An event's dozen traits: insertion sort with the comparison
		 * inlined (qsort's calls were 3% of record_events), and one pass
		 * when they come sorted.
		 */
		for (int i = 1; i < npairs; i++)
		{
			TraitPair	p = pairs[i];
			int			j = i;

			while (j > 0 && TraitPairCompare(&pairs[j - 1], &p) > 0)
			{
				pairs[j] = pairs[j - 1];
				j--;
			}
			pairs[j] = p;
		}
	}

	/* Keep the last of each run of equal (name, type). */
	codes = palloc(sizeof(int) * Max(npairs, 1));
	for (int i = 0; i < npairs; i++)
	{
		if (i + 1 < npairs &&
			pairs[i].type == pairs[i + 1].type &&
			TraitBytesCompare(pairs[i].name, pairs[i].namelen,
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

	t = (Traits *) PackPairs(pairs, nkeep, codes, datalen, false);
	pfree(codes);
	return t;
}

/*
 * Pack predicates in the order given, names uncoded: a query may test one
 * trait twice, and is matched in the order written.
 */
TraitQuery *
TraitQueryBuild(TraitPair *pairs, int npairs)
{
	Size		datalen = 0;

	for (int i = 0; i < npairs; i++)
		datalen += TraitPairDataSize(&pairs[i], 0);
	if (npairs > TRAITS_MAX_COUNT || datalen > TRAITQUERY_MAX_DATA)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("trait query is too large")));
	return (TraitQuery *) PackPairs(pairs, npairs, NULL, datalen, true);
}

/* Binary search for (name, type), as every lookup by name does; index or -1. */
int
TraitsFind(const Traits *t, const char *name, int namelen, int type)
{
	int			lo = 0,
				hi = TraitsCount(t) - 1;

	while (lo <= hi)
	{
		int			mid = lo + (hi - lo) / 2;
		TraitItem	item = TraitsItem(t, mid);
		int			r = TraitBytesCompare(item.name, item.namelen, name, namelen);

		if (r == 0)
			r = item.type - type;
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
TraitsFindName(const Traits *t, const char *name, int namelen)
{
	int			lo = 0,
				hi = TraitsCount(t);
	TraitItem	item;

	while (lo < hi)
	{
		int			mid = lo + (hi - lo) / 2;

		item = TraitsItem(t, mid);
		if (TraitBytesCompare(item.name, item.namelen, name, namelen) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == TraitsCount(t))
		return -1;
	item = TraitsItem(t, lo);
	return TraitBytesCompare(item.name, item.namelen, name, namelen) == 0 ? lo : -1;
}

/*
 * Does t have a trait of the item's name and type whose value compares true
 * under the item's operator?  A missing trait fails, even for "ne".  Both
 * @> (a trait is an item with "=") and @@ are conjunctions of this.
 */
bool
TraitsHold(const Traits *t, const TraitItem *item)
{
	int			j = TraitsFind(t, item->name, item->namelen, item->type);
	TraitItem	found;

	if (j < 0)
		return false;
	found = TraitsItem(t, j);
	return TraitOpHolds(item->op, TraitCompareValue(item->type, found.value, found.vallen,
													item->value, item->vallen));
}

/* Every item holds in t: traits @@ query, and traits @> traits. */
bool
TraitsHoldAll(const Traits *t, const TraitItems *items)
{
	for (int i = 0; i < items->count; i++)
	{
		TraitItem	item = TraitItemsGet(items, i);

		if (!TraitsHold(t, &item))
			return false;
	}
	return true;
}

/* Compare two stored values of one type; strings compare bytewise. */
int
TraitCompareValue(int type, const char *a, int alen, const char *b, int blen)
{
	switch (type)
	{
		case TRAIT_STRING:
			return TraitBytesCompare(a, alen, b, blen);
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

/* What can be wrong with a trait: the documented limits. */
typedef enum TraitFault
{
	TRAIT_FAULT_NONE = 0,
	TRAIT_FAULT_NAME_EMPTY,
	TRAIT_FAULT_NAME_LONG,
	TRAIT_FAULT_NAME_NUL,
	TRAIT_FAULT_STRING_LONG,
	TRAIT_FAULT_STRING_NUL,
	TRAIT_FAULT_FLOAT,
	TRAIT_FAULT_DATETIME
} TraitFault;

/* Names: 1 to 255 bytes, no NUL (text cannot hold one). */
static TraitFault
NameFault(const char *name, int namelen)
{
	if (namelen == 0)
		return TRAIT_FAULT_NAME_EMPTY;
	if (namelen > TRAIT_NAME_MAXLEN)
		return TRAIT_FAULT_NAME_LONG;
	if (memchr(name, '\0', namelen))
		return TRAIT_FAULT_NAME_NUL;
	return TRAIT_FAULT_NONE;
}

/*
 * Values: strings of at most 65,535 bytes without NUL, finite floats, and
 * datetimes in years 1 to 9999 (as Python's datetime).
 */
static TraitFault
ValueFault(const TraitPair *p)
{
	switch (p->type)
	{
		case TRAIT_STRING:
			if (p->strlen > TRAIT_STRING_MAXLEN)
				return TRAIT_FAULT_STRING_LONG;
			if (memchr(p->str, '\0', p->strlen))
				return TRAIT_FAULT_STRING_NUL;
			break;
		case TRAIT_FLOAT:
			if (!isfinite(p->f8))
				return TRAIT_FAULT_FLOAT;
			break;
		case TRAIT_DATETIME:
			if (!PankoTimestampInRange((Timestamp) p->i64))
				return TRAIT_FAULT_DATETIME;
			break;
	}
	return TRAIT_FAULT_NONE;
}

/* Raise the error for a fault of pair p, if there is one. */
static void
ThrowFault(TraitFault fault, const TraitPair *p)
{
	switch (fault)
	{
		case TRAIT_FAULT_NONE:
			return;
		case TRAIT_FAULT_NAME_EMPTY:
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("trait name must not be empty")));
			break;
		case TRAIT_FAULT_NAME_LONG:
			ereport(ERROR,
					(errcode(ERRCODE_STRING_DATA_RIGHT_TRUNCATION),
					 errmsg("trait name \"%.40s...\" is too long", p->name),
					 errdetail("A trait name is %d bytes; the limit is %d.",
							   p->namelen, TRAIT_NAME_MAXLEN)));
			break;
		case TRAIT_FAULT_NAME_NUL:
			ereport(ERROR,
					(errcode(ERRCODE_CHARACTER_NOT_IN_REPERTOIRE),
					 errmsg("trait name contains a zero byte")));
			break;
		case TRAIT_FAULT_STRING_LONG:
			ereport(ERROR,
					(errcode(ERRCODE_STRING_DATA_RIGHT_TRUNCATION),
					 errmsg("value of string trait \"%.*s\" is too long", p->namelen, p->name),
					 errdetail("The value is %d bytes; the limit is %d.",
							   p->strlen, TRAIT_STRING_MAXLEN),
					 errhint("Keep long text in the event's raw document.")));
			break;
		case TRAIT_FAULT_STRING_NUL:
			ereport(ERROR,
					(errcode(ERRCODE_CHARACTER_NOT_IN_REPERTOIRE),
					 errmsg("value of string trait \"%.*s\" contains a zero byte",
							p->namelen, p->name)));
			break;
		case TRAIT_FAULT_FLOAT:
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("value of float trait \"%.*s\" must be finite", p->namelen, p->name)));
			break;
		case TRAIT_FAULT_DATETIME:
			ereport(ERROR,
					(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
					 errmsg("value of datetime trait \"%.*s\" is out of range", p->namelen, p->name),
					 errdetail("Datetime traits hold years 1 to 9999.")));
			break;
	}
}

/*
 * The message for a fault of pair p, or NULL: record_events reports it as
 * the reason an event is rejected.
 */
static const char *
FaultMessage(TraitFault fault, const TraitPair *p)
{
	switch (fault)
	{
		case TRAIT_FAULT_NONE:
			break;
		case TRAIT_FAULT_NAME_EMPTY:
			return "trait name must not be empty";
		case TRAIT_FAULT_NAME_LONG:
			return psprintf("trait name \"%.40s...\" is longer than %d bytes",
							p->name, TRAIT_NAME_MAXLEN);
		case TRAIT_FAULT_NAME_NUL:
			return "trait name contains a zero byte";
		case TRAIT_FAULT_STRING_LONG:
			return psprintf("value of string trait \"%.*s\" is longer than %d bytes",
							p->namelen, p->name, TRAIT_STRING_MAXLEN);
		case TRAIT_FAULT_STRING_NUL:
			return psprintf("value of string trait \"%.*s\" contains a zero byte",
							p->namelen, p->name);
		case TRAIT_FAULT_FLOAT:
			return psprintf("value of float trait \"%.*s\" must be finite",
							p->namelen, p->name);
		case TRAIT_FAULT_DATETIME:
			return psprintf("value of datetime trait \"%.*s\" is out of range",
							p->namelen, p->name);
	}
	return NULL;
}

/* A pair of just a name, to word a fault of the name. */
static TraitPair
NamePair(const char *name, int namelen)
{
	TraitPair	p = {0};

	p.name = name;
	p.namelen = namelen;
	return p;
}

/* Input that fails as a whole (text, binary, filters): a bad name throws. */
void
TraitCheckName(const char *name, int namelen)
{
	TraitPair	p = NamePair(name, namelen);

	ThrowFault(NameFault(name, namelen), &p);
}

/* Likewise for the value of a pair whose name was checked. */
void
TraitCheckValue(const TraitPair *p)
{
	ThrowFault(ValueFault(p), p);
}

/*
 * For callers that must not throw (record_events rejects one event and goes
 * on): what is wrong with a name, or NULL.  Checked before the name is
 * quoted in any other message.
 */
const char *
TraitNameProblem(const char *name, int namelen)
{
	TraitPair	p = NamePair(name, namelen);

	return FaultMessage(NameFault(name, namelen), &p);
}

/* Likewise for a whole pair: its name, then its value. */
const char *
TraitPairProblem(const TraitPair *p)
{
	TraitFault	fault = NameFault(p->name, p->namelen);

	if (fault == TRAIT_FAULT_NONE)
		fault = ValueFault(p);
	return FaultMessage(fault, p);
}

/* The name of a type id, as the API and the text form write it. */
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
			{
				char		num[MAXINT8LEN + 1];

				appendBinaryStringInfo(buf, num, pg_lltoa(TraitReadInt64(val), num));
				break;
			}
		case TRAIT_FLOAT:
			PankoAppendFloat(buf, TraitReadFloat8(val));
			break;
		case TRAIT_DATETIME:
			PankoAppendTimestamp(buf, (Timestamp) TraitReadInt64(val));
			break;
	}
}
