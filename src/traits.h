/*
 * traits.h
 *		Layout of panko.traits and panko.traitquery.  No other file computes
 *		an offset into either type: everything goes through these macros.
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
 * panko.traitquery (a conjunction of trait predicates) uses the same data
 * encoding; its entries also carry the operator (bits 26..28) and are kept
 * in the order written, since a query may name one trait twice.
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

/* Documented limits. */
#define TRAIT_NAME_MAXLEN	255		/* bytes; fits the uint8 length prefix */
#define TRAIT_STRING_MAXLEN 65535	/* bytes of one string value */
#define TRAITS_MAX_COUNT	0x00FFFFFF
#define TRAITS_MAX_DATA		0x1FFFFFFF

#define TRAITS_FORMAT_V1	1

typedef struct Traits
{
	int32		vl_len_;		/* varlena header (do not touch directly!) */
	uint32		header;
	/* uint32 entries[FLEXIBLE_ARRAY_MEMBER]; then data */
} Traits;

#define TRAITS_HDRSZ			(sizeof(Traits))
#define TRAITS_COUNT(t)			((t)->header & 0x00FFFFFF)
#define TRAITS_FORMAT(t)		((t)->header >> 24)
#define TRAITS_SET_HEADER(t, n) ((t)->header = ((uint32) TRAITS_FORMAT_V1 << 24) | (uint32) (n))

#define TRAITS_ENTRIES(t)		((uint32 *) ((char *) (t) + TRAITS_HDRSZ))
#define TRAITS_DATA(t)			((char *) (TRAITS_ENTRIES(t) + TRAITS_COUNT(t)))
#define TRAITS_DATALEN(t)		(TRAITS_COUNT(t) == 0 ? 0 : TE_END(TRAITS_ENTRIES(t)[TRAITS_COUNT(t) - 1]))

/* One entry word. */
#define TE_TYPE(e)				((int) ((e) >> 29))
#define TE_END(e)				((e) & TRAITS_MAX_DATA)
#define TE_MAKE(type, end)		(((uint32) (type) << 29) | (uint32) (end))

/*
 * A trait's data starts with its name: a length byte and the name's bytes,
 * or, for one of the common names of traits_names.c, a zero byte and the
 * name's one-byte code.  The value follows.
 */
extern const char *TraitNameForCode(int code);
extern int	TraitCodeForName(const char *name, int namelen);

#define TRAIT_NAME_CODED	0	/* length byte of a coded name */

static inline uint32
TraitStart(const uint32 *ents, int i)
{
	return i == 0 ? 0 : TE_END(ents[i - 1]);
}

static inline int
TraitNameHeaderLen(const char *data, uint32 start)
{
	uint8		len = (uint8) data[start];

	return len == TRAIT_NAME_CODED ? 2 : 1 + len;
}

static inline const char *
TraitNameAt(const char *data, uint32 start)
{
	uint8		len = (uint8) data[start];

	return len == TRAIT_NAME_CODED
		? TraitNameForCode((uint8) data[start + 1]) : data + start + 1;
}

static inline int
TraitNameLenAt(const char *data, uint32 start)
{
	uint8		len = (uint8) data[start];

	return len == TRAIT_NAME_CODED
		? (int) strlen(TraitNameForCode((uint8) data[start + 1])) : (int) len;
}

/* Trait i of a panko.traits value. */
#define TRAIT_START(t, i)		TraitStart(TRAITS_ENTRIES(t), i)
#define TRAIT_TYPE(t, i)		TE_TYPE(TRAITS_ENTRIES(t)[i])
#define TRAIT_NAMELEN(t, i)		TraitNameLenAt(TRAITS_DATA(t), TRAIT_START(t, i))
#define TRAIT_NAME(t, i)		TraitNameAt(TRAITS_DATA(t), TRAIT_START(t, i))
#define TRAIT_VALUE(t, i) \
	(TRAITS_DATA(t) + TRAIT_START(t, i) + TraitNameHeaderLen(TRAITS_DATA(t), TRAIT_START(t, i)))
#define TRAIT_VALLEN(t, i) \
	((int) (TE_END(TRAITS_ENTRIES(t)[i]) - TRAIT_START(t, i) - \
			TraitNameHeaderLen(TRAITS_DATA(t), TRAIT_START(t, i))))

/* Fixed-width values are stored unaligned: always read them through these. */
static inline int64
TraitReadInt64(const char *p)
{
	int64		v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static inline float8
TraitReadFloat8(const char *p)
{
	float8		v;

	memcpy(&v, p, sizeof(v));
	return v;
}

#define PG_GETARG_TRAITS_P(n)	((Traits *) PG_DETOAST_DATUM(PG_GETARG_DATUM(n)))
#define DatumGetTraitsP(d)		((Traits *) PG_DETOAST_DATUM(d))

/*
 * panko.traitquery: header, entries as above with the operator folded in,
 * then data.  Operators are numbered as the GIN strategies of @@ use them.
 */
typedef Traits TraitQuery;

#define TQ_EQ	1
#define TQ_NE	2
#define TQ_LT	3
#define TQ_LE	4
#define TQ_GT	5
#define TQ_GE	6

#define TQE_TYPE(e)				((int) ((e) >> 29))
#define TQE_OP(e)				((int) (((e) >> 26) & 0x7))
#define TQE_END(e)				((e) & 0x03FFFFFF)
#define TQE_MAKE(type, op, end) (((uint32) (type) << 29) | ((uint32) (op) << 26) | (uint32) (end))
#define TRAITQUERY_MAX_DATA		0x03FFFFFF

#define TQ_START(q, i)			((i) == 0 ? 0 : TQE_END(TRAITS_ENTRIES(q)[(i) - 1]))
#define TQ_TYPE(q, i)			TQE_TYPE(TRAITS_ENTRIES(q)[i])
#define TQ_OP(q, i)				TQE_OP(TRAITS_ENTRIES(q)[i])
#define TQ_NAMELEN(q, i)		((int) (uint8) TRAITS_DATA(q)[TQ_START(q, i)])
#define TQ_NAME(q, i)			(TRAITS_DATA(q) + TQ_START(q, i) + 1)
#define TQ_VALUE(q, i)			(TQ_NAME(q, i) + TQ_NAMELEN(q, i))
#define TQ_VALLEN(q, i) \
	((int) (TQE_END(TRAITS_ENTRIES(q)[i]) - TQ_START(q, i) - 1 - TQ_NAMELEN(q, i)))

#define PG_GETARG_TRAITQUERY_P(n)	((TraitQuery *) PG_DETOAST_DATUM(PG_GETARG_DATUM(n)))

/*
 * A trait being built, before it is packed.  Constructors collect these and
 * hand them to TraitsBuild, which sorts and removes duplicates.
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
extern int	TraitPairDataSize(const TraitPair *p, int code);
extern int	TraitPackPair(char *dst, const TraitPair *p, int code);
extern int	TraitsFind(Traits *t, const char *name, int namelen, int type);
extern int	TraitsFindName(Traits *t, const char *name, int namelen);
extern int	TraitCompareValue(int type, const char *a, int alen, const char *b, int blen);
extern void TraitCheckName(const char *name, int namelen);
extern void TraitCheckString(const char *name, int namelen, int len);
extern void TraitCheckFloat(const char *name, int namelen, float8 v);
extern const char *TraitTypeName(int type);
extern int	TraitTypeFromName(const char *s, int len);
extern void TraitValueToText(StringInfo buf, int type, const char *val, int vallen);

extern void TraitCheckDatetime(const char *name, int namelen, int64 ts);
extern const char *TraitPairProblem(const TraitPair *p);

/* traits_io.c */
extern TraitPair *TraitsParseText(const char *str, const char *typname,
								  bool allow_ops, int *npairs);
extern void TraitsAppendQuoted(StringInfo buf, const char *s, int len);
extern void TraitsAppendItem(StringInfo buf, const char *name, int namelen,
							 int type, const char *op, const char *val, int vallen);

/* traits_json.c */
struct JsonbContainer;
extern bool TraitPairsFromJsonb(struct JsonbContainer *c, TraitPair **pairs,
								int *npairs, char **problem);
extern void TraitsAppendJson(StringInfo buf, Traits *t);
extern void AppendJsonString(StringInfo buf, const char *s, int len);

/* traits_query.c */
extern TraitQuery *TraitQueryBuild(TraitPair *pairs, int npairs);
extern bool TraitQueryMatch(Traits *t, TraitQuery *q);
extern const char *TraitOpSymbol(int op);

extern Datum traitquery_from_jsonb(PG_FUNCTION_ARGS);

/* traits_sel.c */
extern bool TraitQueryEstimate(Oid relid, AttrNumber attnum, TraitQuery *q,
							   double *selectivity);

/* identity.c */
extern bool PankoCallerIsMember(void);
extern Traits *PankoCallerScope(void);

/* traits_gin.c */
extern int	TraitKeyCompare(const char *a, int alen, const char *b, int blen);
extern int	TraitGinPrefix(char *dst, const char *name, int namelen, int type);
extern bytea *TraitGinKey(const char *name, int namelen, int type,
						  const char *val, int vallen, bool *truncated);

#endif							/* PANKO_TRAITS_H */
