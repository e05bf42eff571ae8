/*
 * traits.h
 *		Layout of panko.traits and panko.traitquery.  No other file computes
 *		an offset into either type: everything goes through the functions
 *		below.
 *
 * panko.traits is a varlena:
 *
 *		int32	vl_len_;
 *		uint32	header;			format version in the top 8 bits, count below
 *		uint32	entries[count];	per trait: type (top 3 bits) and the end
 *								offset of its data (low 29 bits)
 *		char	data[];			per trait: the name (uint8 length and bytes,
 *								or 0 and a one-byte code for a common name,
 *								see traits_names.c), then the value: the
 *								string's bytes, or 8 bytes of int64 / float8
 *								/ Timestamp (unaligned)
 *
 * Entries are sorted by (name bytes, type) with no duplicate (name, type),
 * so lookups binary-search and equal trait sets are byte-equal.
 *
 * panko.traitquery (a conjunction of trait predicates) has the same header
 * and data encoding (its names are never coded); its entries also carry
 * the operator (bits 26..28), so the end offset has 26 bits, and they are
 * kept in the order written, since a query may name one trait twice.
 *
 * The two are distinct structs, so that the compiler rejects an accessor
 * of one used on the other: their entries differ.
 */
#ifndef PANKO_TRAITS_H
#define PANKO_TRAITS_H

#include "postgres.h"
#include "access/attnum.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "utils/timestamp.h"

/* Panko's trait type ids; "none" (0) is stored as a string. */
#define TRAIT_NONE			0
#define TRAIT_STRING		1
#define TRAIT_INTEGER		2
#define TRAIT_FLOAT			3
#define TRAIT_DATETIME		4

#define TRAIT_TYPE_VALID(t) ((t) >= TRAIT_STRING && (t) <= TRAIT_DATETIME)

/*
 * Is this trait an amount: a rated data point's qty or price, which
 * rating.c stores as decimal strings under these names?  Amounts are
 * unique at nearly every point and nobody looks one up exactly, so the
 * index keys them coarsely (traits_gin.c, key format 3) and the partition
 * summaries by name only (traits_summary.c).  The one owner of which
 * traits are amounts.
 */
static inline bool
TraitIsAmount(const char *name, int namelen, int type)
{
	return type == TRAIT_STRING &&
		((namelen == 3 && memcmp(name, "qty", 3) == 0) ||
		 (namelen == 5 && memcmp(name, "price", 5) == 0));
}

/* Documented limits. */
#define TRAIT_NAME_MAXLEN	255		/* bytes; fits the uint8 length prefix */
#define TRAIT_STRING_MAXLEN 65535	/* bytes of one string value */
#define TRAITS_MAX_COUNT	0x00FFFFFF
#define TRAITS_MAX_DATA		0x1FFFFFFF
#define TRAITQUERY_MAX_DATA 0x03FFFFFF

#define TRAITS_FORMAT_V1	1

/* The header word of both types. */
#define TRAITS_HEADER(n)	(((uint32) TRAITS_FORMAT_V1 << 24) | (uint32) (n))
#define TRAITS_HEADER_COUNT(h)	((int) ((h) & TRAITS_MAX_COUNT))

typedef struct Traits
{
	int32		vl_len_;		/* varlena header (do not touch directly!) */
	uint32		header;
	/* TE_MAKE(type, end) per trait, then the data */
	uint32		entries[FLEXIBLE_ARRAY_MEMBER];
} Traits;

/*
 * panko.traitquery: header, entries with the operator folded in, then
 * data.  Operators are numbered as the GIN strategies of @@ use them.
 */
typedef struct TraitQuery
{
	int32		vl_len_;		/* varlena header (do not touch directly!) */
	uint32		header;
	/* TQE_MAKE(type, op, end) per predicate, then the data */
	uint32		entries[FLEXIBLE_ARRAY_MEMBER];
} TraitQuery;

/* Both headers are this long: the entries start at the same offset. */
#define TRAITS_HDRSZ		offsetof(Traits, entries)

#define TQ_EQ	1
#define TQ_NE	2
#define TQ_LT	3
#define TQ_LE	4
#define TQ_GT	5
#define TQ_GE	6

/* One entry word of panko.traits. */
#define TE_TYPE(e)				((int) ((e) >> 29))
#define TE_END(e)				((e) & TRAITS_MAX_DATA)
#define TE_MAKE(type, end)		(((uint32) (type) << 29) | (uint32) (end))

/* One entry word of panko.traitquery. */
#define TQE_TYPE(e)				((int) ((e) >> 29))
#define TQE_OP(e)				((int) (((e) >> 26) & 0x7))
#define TQE_END(e)				((e) & TRAITQUERY_MAX_DATA)
#define TQE_MAKE(type, op, end) (((uint32) (type) << 29) | ((uint32) (op) << 26) | (uint32) (end))

/*
 * A trait's data starts with its name: a length byte and the name's bytes,
 * or, for one of the common names of traits_names.c, a zero byte and the
 * name's one-byte code.  The value follows.
 */
extern const char *TraitNameForCode(int code);
extern int	TraitCodeForName(const char *name, int namelen);

#define TRAIT_NAME_CODED	0	/* length byte of a coded name */

/*
 * One trait of panko.traits, or one predicate of panko.traitquery, as
 * callers see it: the accessors below decode an entry into this.
 */
typedef struct TraitItem
{
	const char *name;
	int			namelen;
	int			code;			/* the name's one-byte code as stored, or 0 */
	int			type;			/* TRAIT_STRING .. TRAIT_DATETIME */
	int			op;				/* TQ_*; TQ_EQ for a trait */
	const char *value;			/* string bytes, or 8 bytes (unaligned) */
	int			vallen;
} TraitItem;

/* Decode the item whose data is data[start, end). */
static inline TraitItem
TraitItemAt(const char *data, uint32 start, uint32 end, int type, int op)
{
	uint8		len = (uint8) data[start];
	int			headerlen = len == TRAIT_NAME_CODED ? 2 : 1 + len;
	TraitItem	item;

	if (len == TRAIT_NAME_CODED)
	{
		item.code = (uint8) data[start + 1];
		item.name = TraitNameForCode(item.code);
		item.namelen = (int) strlen(item.name);
	}
	else
	{
		item.code = 0;
		item.name = data + start + 1;
		item.namelen = len;
	}
	item.type = type;
	item.op = op;
	item.value = data + start + headerlen;
	item.vallen = (int) (end - start) - headerlen;
	return item;
}

/* Number of traits. */
static inline int
TraitsCount(const Traits *t)
{
	return TRAITS_HEADER_COUNT(t->header);
}

/* The data area, after the entries. */
static inline char *
TraitsData(const Traits *t)
{
	return (char *) (t->entries + TraitsCount(t));
}

/* Trait i of a panko.traits value. */
static inline TraitItem
TraitsItem(const Traits *t, int i)
{
	uint32		start = i == 0 ? 0 : TE_END(t->entries[i - 1]);

	return TraitItemAt(TraitsData(t), start, TE_END(t->entries[i]),
					   TE_TYPE(t->entries[i]), TQ_EQ);
}

/* Number of predicates. */
static inline int
TraitQueryCount(const TraitQuery *q)
{
	return TRAITS_HEADER_COUNT(q->header);
}

/* Predicate i of a panko.traitquery value. */
static inline TraitItem
TraitQueryItem(const TraitQuery *q, int i)
{
	const char *data = (const char *) (q->entries + TraitQueryCount(q));
	uint32		start = i == 0 ? 0 : TQE_END(q->entries[i - 1]);

	return TraitItemAt(data, start, TQE_END(q->entries[i]),
					   TQE_TYPE(q->entries[i]), TQE_OP(q->entries[i]));
}

/*
 * The items of a value of either type, for code that treats both alike: a
 * trait is a predicate "=" on its own value (so @> is a conjunction like @@,
 * and both print, match and are estimated the same way).
 */
typedef struct TraitItems
{
	const Traits *traits;		/* one of the two is set */
	const TraitQuery *query;
	int			count;
} TraitItems;

/* The traits of t, as items. */
static inline TraitItems
TraitsItems(const Traits *t)
{
	TraitItems	items = {t, NULL, TraitsCount(t)};

	return items;
}

/* The predicates of q, as items. */
static inline TraitItems
TraitQueryItems(const TraitQuery *q)
{
	TraitItems	items = {NULL, q, TraitQueryCount(q)};

	return items;
}

/* Item i, decoded by its own type's accessor. */
static inline TraitItem
TraitItemsGet(const TraitItems *items, int i)
{
	return items->query ? TraitQueryItem(items->query, i) : TraitsItem(items->traits, i);
}

/* Fixed-width values are stored unaligned: always read them through these. */
static inline int64
TraitReadInt64(const char *p)
{
	int64		v;

	memcpy(&v, p, sizeof(v));
	return v;
}

/* (likewise) */
static inline float8
TraitReadFloat8(const char *p)
{
	float8		v;

	memcpy(&v, p, sizeof(v));
	return v;
}

/*
 * The one order of names, string values and index keys: bytewise, a
 * prefix first (byteacmp's order, so the GIN keys sort the same way).
 */
static inline int
TraitBytesCompare(const char *a, int alen, const char *b, int blen)
{
	int			r = memcmp(a, b, Min(alen, blen));

	if (r != 0)
		return r;
	return (alen > blen) - (alen < blen);
}

/*
 * Does a predicate with operator op (TQ_*) hold, given how the value
 * compares to the bound (< 0, 0, > 0)?  Matching, selectivity and the GIN
 * scan all ask this.
 */
static inline bool
TraitOpHolds(int op, int cmp)
{
	switch (op)
	{
		case TQ_EQ:
			return cmp == 0;
		case TQ_NE:
			return cmp != 0;
		case TQ_LT:
			return cmp < 0;
		case TQ_LE:
			return cmp <= 0;
		case TQ_GT:
			return cmp > 0;
		case TQ_GE:
			return cmp >= 0;
	}
	return false;
}

#define PG_GETARG_TRAITS_P(n)	((Traits *) PG_DETOAST_DATUM(PG_GETARG_DATUM(n)))
#define DatumGetTraitsP(d)		((Traits *) PG_DETOAST_DATUM(d))
#define PG_GETARG_TRAITQUERY_P(n)	((TraitQuery *) PG_DETOAST_DATUM(PG_GETARG_DATUM(n)))
#define DatumGetTraitQueryP(d)	((TraitQuery *) PG_DETOAST_DATUM(d))

/*
 * A trait being built, before it is packed.  Constructors collect these and
 * hand them to TraitsBuild, which sorts and removes duplicates, or to
 * TraitQueryBuild.
 */
typedef struct TraitPair
{
	const char *name;
	int			namelen;
	int			type;			/* TRAIT_STRING .. TRAIT_DATETIME */
	int			op;				/* traitquery only */
	int			ord;			/* input position: the last copy wins */
	const char *str;			/* TRAIT_STRING */
	int			strlen;
	int64		i64;			/* TRAIT_INTEGER, TRAIT_DATETIME */
	float8		f8;				/* TRAIT_FLOAT */
} TraitPair;

/* traits.c */
extern Traits *TraitsBuild(TraitPair *pairs, int npairs);
extern TraitQuery *TraitQueryBuild(TraitPair *pairs, int npairs);
extern int	TraitsFind(const Traits *t, const char *name, int namelen, int type);
extern int	TraitsFindName(const Traits *t, const char *name, int namelen);
extern bool TraitsHold(const Traits *t, const TraitItem *item);
extern bool TraitsHoldAll(const Traits *t, const TraitItems *items);
extern int	TraitCompareValue(int type, const char *a, int alen, const char *b, int blen);
extern void TraitCheckName(const char *name, int namelen);
extern void TraitCheckValue(const TraitPair *p);
extern const char *TraitNameProblem(const char *name, int namelen);
extern const char *TraitPairProblem(const TraitPair *p);
extern const char *TraitTypeName(int type);
extern int	TraitTypeFromName(const char *s, int len);
extern void TraitValueToText(StringInfo buf, int type, const char *val, int vallen);

/* Append a string literal (its length known at compile time). */
#define APPEND_LITERAL(buf, lit)	appendBinaryStringInfo((buf), (lit), sizeof(lit) - 1)

/* The GIN operator class's strategies (panko.traits_ops, sql/panko.sql). */
#define GIN_STRATEGY_CONTAINS	7	/* traits @> traits */
#define GIN_STRATEGY_EXISTS		9	/* traits ? text */
#define GIN_STRATEGY_MATCH		15	/* traits @@ traitquery */

/* traits_json.c */
struct JsonbContainer;
struct JsonbValue;
extern bool TraitPairsFromJsonb(struct JsonbContainer *c, TraitPair **pairs,
								int *npairs, char **problem);
extern void TraitsAppendJson(StringInfo buf, const Traits *t);
extern void AppendJsonString(StringInfo buf, const char *s, int len);
extern void AppendJsonb(StringInfo buf, struct JsonbContainer *c);
extern void AppendJsonbValue(StringInfo buf, const struct JsonbValue *v);
extern bool JsonbKeyIs(const struct JsonbValue *key, const char *name);
extern char *JsonbScalarText(const struct JsonbValue *v);

/* traits_query.c */
extern Datum traitquery_from_jsonb(PG_FUNCTION_ARGS);
extern int	TraitOperator(const char *name);

/* traits_sel.c */
extern bool TraitQueryEstimate(Oid relid, AttrNumber attnum, const TraitQuery *q,
							   double *selectivity);

/* identity.c */
extern bool PankoCallerIsMember(void);
extern Traits *PankoCallerScope(void);

/* traits_gin.c */
extern int	TraitGinPrefix(char *dst, const char *name, int namelen, int type);
extern bytea *TraitGinKey(const TraitItem *item, bool *lossy);
extern bytea *TraitGinStartKey(const char *name, int namelen, int type,
							   const char *val, int vallen);

#endif							/* PANKO_TRAITS_H */
