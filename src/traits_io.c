/*
 * traits_io.c
 *		Text and binary I/O of panko.traits.
 *
 * Text form (documented in the README; output is always canonical):
 *
 *		{"host":string="compute-1", "memory_mb":integer=512,
 *		 "ratio":float=0.5, "launched_at":datetime="2024-01-02T03:04:05"}
 *
 * Names and string values are double-quoted with \" and \\ escapes (a bare
 * name of letters, digits, '_', '.', '-' is accepted on input); integers and
 * floats are bare; datetimes are quoted ISO 8601 (an offset is converted to
 * UTC on input, none is written on output).  The type "none" reads as
 * string.  The same grammar, with comparison operators in place of '=',
 * is panko.traitquery's.
 */
#include "postgres.h"

#include <ctype.h>

#include "libpq/pqformat.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"

#include "traits.h"
#include "isotime.h"
#include "numbers.h"

PG_FUNCTION_INFO_V1(traits_in);
PG_FUNCTION_INFO_V1(traits_out);
PG_FUNCTION_INFO_V1(traits_recv);
PG_FUNCTION_INFO_V1(traits_send);

typedef struct TraitParser
{
	const char *input;			/* whole literal, for messages */
	const char *typname;		/* panko.traits or panko.traitquery */
	const char *p;
	bool		allow_ops;
} TraitParser;

/* Report a syntax error at the parser's position, naming what was wanted. */
static void
pg_attribute_noreturn()
ParseError(TraitParser *ps, const char *want)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
			 errmsg("invalid input syntax for type %s: \"%s\"", ps->typname, ps->input),
			 errdetail("%s at character %d.", want, (int) (ps->p - ps->input) + 1)));
}

static void
SkipSpace(TraitParser *ps)
{
	while (*ps->p && isspace((unsigned char) *ps->p))
		ps->p++;
}

/* A double-quoted string with backslash escapes; result is palloc'd. */
static char *
ParseQuoted(TraitParser *ps, int *len, const char *what)
{
	StringInfoData buf;

	if (*ps->p != '"')
		ParseError(ps, what);
	ps->p++;
	initStringInfo(&buf);
	for (;;)
	{
		if (*ps->p == '\0')
			ParseError(ps, "Unterminated quoted string");
		if (*ps->p == '"')
			break;
		if (*ps->p == '\\')
		{
			ps->p++;
			if (*ps->p == '\0')
				ParseError(ps, "Unterminated quoted string");
		}
		appendStringInfoChar(&buf, *ps->p);
		ps->p++;
	}
	ps->p++;
	*len = buf.len;
	return buf.data;
}

static inline bool
IsBareChar(char c)
{
	return isalnum((unsigned char) c) || c == '_' || c == '.' || c == '-';
}

/* A trait name: quoted, or bare. */
static char *
ParseName(TraitParser *ps, int *len)
{
	const char *start = ps->p;

	if (*ps->p == '"')
		return ParseQuoted(ps, len, "Expected a trait name");
	while (IsBareChar(*ps->p))
		ps->p++;
	if (ps->p == start)
		ParseError(ps, "Expected a trait name");
	*len = (int) (ps->p - start);
	return pnstrdup(start, *len);
}

/* The operator between type and value: '=' for traits, any for queries. */
static int
ParseOp(TraitParser *ps)
{
	const char *p = ps->p;
	int			op;

	if (p[0] == '=' && p[1] == '=')
		op = TQ_EQ, ps->p += 2;
	else if (p[0] == '=')
		op = TQ_EQ, ps->p += 1;
	else if ((p[0] == '!' && p[1] == '=') || (p[0] == '<' && p[1] == '>'))
		op = TQ_NE, ps->p += 2;
	else if (p[0] == '<' && p[1] == '=')
		op = TQ_LE, ps->p += 2;
	else if (p[0] == '>' && p[1] == '=')
		op = TQ_GE, ps->p += 2;
	else if (p[0] == '<')
		op = TQ_LT, ps->p += 1;
	else if (p[0] == '>')
		op = TQ_GT, ps->p += 1;
	else
		ParseError(ps, ps->allow_ops ? "Expected one of = != <> < <= > >=" : "Expected \"=\"");
	if (op != TQ_EQ && !ps->allow_ops)
	{
		ps->p = p;
		ParseError(ps, "Expected \"=\"");
	}
	return op;
}

/* A bare number token (integer or float). */
static const char *
ParseNumberToken(TraitParser *ps, int *len)
{
	const char *start = ps->p;

	while (*ps->p && (isalnum((unsigned char) *ps->p) || *ps->p == '.' ||
					  *ps->p == '+' || *ps->p == '-'))
		ps->p++;
	*len = (int) (ps->p - start);
	return start;
}

/* One item: name ':' type op value. */
static void
ParseItem(TraitParser *ps, TraitPair *pair)
{
	const char *tstart;
	const char *vstart;
	int			tlen;

	memset(pair, 0, sizeof(TraitPair));
	pair->name = ParseName(ps, &pair->namelen);
	TraitCheckName(pair->name, pair->namelen);
	SkipSpace(ps);
	if (*ps->p != ':')
		ParseError(ps, "Expected \":\" after the trait name");
	ps->p++;
	SkipSpace(ps);
	tstart = ps->p;
	while (isalpha((unsigned char) *ps->p))
		ps->p++;
	tlen = (int) (ps->p - tstart);
	pair->type = TraitTypeFromName(tstart, tlen);
	if (pair->type < 0)
	{
		ps->p = tstart;
		ParseError(ps, "Expected a trait type (string, integer, float, datetime or none)");
	}
	SkipSpace(ps);
	pair->op = ParseOp(ps);
	SkipSpace(ps);
	vstart = ps->p;

	switch (pair->type)
	{
		case TRAIT_STRING:
			pair->str = ParseQuoted(ps, &pair->strlen, "Expected a double-quoted string value");
			TraitCheckString(pair->name, pair->namelen, pair->strlen);
			break;
		case TRAIT_INTEGER:
			{
				int			len;
				const char *tok = ParseNumberToken(ps, &len);

				if (!PankoParseInt64(tok, len, &pair->i64))
				{
					ps->p = vstart;
					ParseError(ps, "Expected an integer value (64-bit)");
				}
				break;
			}
		case TRAIT_FLOAT:
			{
				int			len;
				const char *tok = ParseNumberToken(ps, &len);

				if (!PankoParseFloat8(tok, len, &pair->f8))
				{
					ps->p = vstart;
					ParseError(ps, "Expected a finite float value");
				}
				if (pair->f8 == 0.0)
					pair->f8 = 0.0;		/* no negative zero */
				break;
			}
		case TRAIT_DATETIME:
			{
				int			len;
				char	   *s = ParseQuoted(ps, &len, "Expected a double-quoted ISO 8601 datetime");
				const char *problem;
				Timestamp	ts;

				if (!PankoParseTimestamp(s, len, &ts, &problem))
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_DATETIME_FORMAT),
							 errmsg("invalid datetime value \"%s\" for trait \"%.*s\"",
									s, pair->namelen, pair->name),
							 errdetail("%s.", problem)));
				pair->i64 = ts;
				break;
			}
	}
}

/*
 * Parse a whole literal into pairs (unsorted).  Used by traits_in and by
 * traitquery_in.
 */
TraitPair *
TraitsParseText(const char *str, const char *typname, bool allow_ops, int *npairs)
{
	TraitParser ps;
	int			cap = 8;
	int			n = 0;
	TraitPair  *pairs = palloc(sizeof(TraitPair) * cap);

	ps.input = str;
	ps.typname = typname;
	ps.p = str;
	ps.allow_ops = allow_ops;

	SkipSpace(&ps);
	if (*ps.p != '{')
		ParseError(&ps, "Expected \"{\"");
	ps.p++;
	SkipSpace(&ps);
	if (*ps.p != '}')
	{
		for (;;)
		{
			if (n == cap)
			{
				cap *= 2;
				pairs = repalloc(pairs, sizeof(TraitPair) * cap);
			}
			ParseItem(&ps, &pairs[n++]);
			SkipSpace(&ps);
			if (*ps.p == ',')
			{
				ps.p++;
				SkipSpace(&ps);
				continue;
			}
			if (*ps.p == '}')
				break;
			ParseError(&ps, "Expected \",\" or \"}\"");
		}
	}
	ps.p++;
	SkipSpace(&ps);
	if (*ps.p != '\0')
		ParseError(&ps, "Unexpected characters after \"}\"");
	*npairs = n;
	return pairs;
}

/* Append s in double quotes, escaping '"' and '\'. */
void
TraitsAppendQuoted(StringInfo buf, const char *s, int len)
{
	appendStringInfoChar(buf, '"');
	for (int i = 0; i < len; i++)
	{
		if (s[i] == '"' || s[i] == '\\')
			appendStringInfoChar(buf, '\\');
		appendStringInfoChar(buf, s[i]);
	}
	appendStringInfoChar(buf, '"');
}

/* One item of the text form; op is NULL for traits ('='). */
void
TraitsAppendItem(StringInfo buf, const char *name, int namelen, int type,
				 const char *op, const char *val, int vallen)
{
	TraitsAppendQuoted(buf, name, namelen);
	appendStringInfoChar(buf, ':');
	appendStringInfoString(buf, TraitTypeName(type));
	if (op)
	{
		appendStringInfoChar(buf, ' ');
		appendStringInfoString(buf, op);
		appendStringInfoChar(buf, ' ');
	}
	else
		appendStringInfoChar(buf, '=');
	switch (type)
	{
		case TRAIT_STRING:
			TraitsAppendQuoted(buf, val, vallen);
			break;
		case TRAIT_DATETIME:
			appendStringInfoChar(buf, '"');
			TraitValueToText(buf, type, val, vallen);
			appendStringInfoChar(buf, '"');
			break;
		default:
			TraitValueToText(buf, type, val, vallen);
			break;
	}
}

Datum
traits_in(PG_FUNCTION_ARGS)
{
	char	   *str = PG_GETARG_CSTRING(0);
	int			n;
	TraitPair  *pairs = TraitsParseText(str, "panko.traits", false, &n);

	PG_RETURN_POINTER(TraitsBuild(pairs, n));
}

Datum
traits_out(PG_FUNCTION_ARGS)
{
	Traits	   *t = PG_GETARG_TRAITS_P(0);
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	for (int i = 0; i < (int) TRAITS_COUNT(t); i++)
	{
		if (i > 0)
			appendStringInfoString(&buf, ", ");
		TraitsAppendItem(&buf, TRAIT_NAME(t, i), TRAIT_NAMELEN(t, i), TRAIT_TYPE(t, i),
						 NULL, TRAIT_VALUE(t, i), TRAIT_VALLEN(t, i));
	}
	appendStringInfoChar(&buf, '}');
	PG_RETURN_CSTRING(buf.data);
}

/* Fail recv with a message naming the problem. */
static void
pg_attribute_noreturn()
RecvError(const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
			 errmsg("invalid external panko.traits value"),
			 errdetail("%s", detail)));
}

/* Read n bytes from msg or fail: recv never trusts a length. */
static const char *
RecvBytes(StringInfo msg, int n)
{
	if (n < 0 || n > msg->len - msg->cursor)
		RecvError("A length runs past the end of the message.");
	return pq_getmsgbytes(msg, n);
}

/*
 * Binary form: uint32 format (1), uint32 count, then per trait: uint8 type,
 * uint8 name length, name, and the value (string: uint32 length + bytes;
 * integer and datetime: int64; float: float8).
 */
Datum
traits_recv(PG_FUNCTION_ARGS)
{
	StringInfo	msg = (StringInfo) PG_GETARG_POINTER(0);
	uint32		format;
	uint32		count;
	TraitPair  *pairs;

	if (msg->len - msg->cursor < 8)
		RecvError("The message is shorter than its header.");
	format = pq_getmsgint(msg, 4);
	if (format != TRAITS_FORMAT_V1)
		RecvError("Unknown format version.");
	count = pq_getmsgint(msg, 4);
	/* Every trait takes at least 2 + 1 + 4 bytes. */
	if (count > TRAITS_MAX_COUNT || count > (uint32) (msg->len - msg->cursor) / 7)
		RecvError("The trait count does not fit the message.");

	pairs = palloc0(sizeof(TraitPair) * Max(count, 1));
	for (uint32 i = 0; i < count; i++)
	{
		TraitPair  *p = &pairs[i];

		if (msg->len - msg->cursor < 2)
			RecvError("A trait is cut short.");
		p->type = pq_getmsgbyte(msg);
		if (!TRAIT_TYPE_VALID(p->type))
			RecvError("Unknown trait type.");
		p->namelen = pq_getmsgbyte(msg);
		p->name = RecvBytes(msg, p->namelen);
		TraitCheckName(p->name, p->namelen);
		pg_verify_mbstr(GetDatabaseEncoding(), p->name, p->namelen, false);
		switch (p->type)
		{
			case TRAIT_STRING:
				if (msg->len - msg->cursor < 4)
					RecvError("A string value is cut short.");
				p->strlen = pq_getmsgint(msg, 4);
				if (p->strlen < 0 || p->strlen > TRAIT_STRING_MAXLEN)
					RecvError("A string value is longer than the limit.");
				p->str = RecvBytes(msg, p->strlen);
				if (memchr(p->str, '\0', p->strlen))
					RecvError("A string value contains a zero byte.");
				pg_verify_mbstr(GetDatabaseEncoding(), p->str, p->strlen, false);
				break;
			case TRAIT_FLOAT:
				if (msg->len - msg->cursor < 8)
					RecvError("A float value is cut short.");
				p->f8 = pq_getmsgfloat8(msg);
				TraitCheckFloat(p->name, p->namelen, p->f8);
				if (p->f8 == 0.0)
					p->f8 = 0.0;
				break;
			default:
				if (msg->len - msg->cursor < 8)
					RecvError("An integer or datetime value is cut short.");
				p->i64 = pq_getmsgint64(msg);
				if (p->type == TRAIT_DATETIME)
					TraitCheckDatetime(p->name, p->namelen, p->i64);
				break;
		}
		if (memchr(p->name, '\0', p->namelen))
			RecvError("A trait name contains a zero byte.");
	}
	if (msg->cursor != msg->len)
		RecvError("Bytes are left over after the last trait.");
	PG_RETURN_POINTER(TraitsBuild(pairs, count));
}

Datum
traits_send(PG_FUNCTION_ARGS)
{
	Traits	   *t = PG_GETARG_TRAITS_P(0);
	StringInfoData buf;

	pq_begintypsend(&buf);
	pq_sendint32(&buf, TRAITS_FORMAT_V1);
	pq_sendint32(&buf, TRAITS_COUNT(t));
	for (int i = 0; i < (int) TRAITS_COUNT(t); i++)
	{
		int			type = TRAIT_TYPE(t, i);
		const char *val = TRAIT_VALUE(t, i);

		pq_sendbyte(&buf, (uint8) type);
		pq_sendbyte(&buf, (uint8) TRAIT_NAMELEN(t, i));
		pq_sendbytes(&buf, TRAIT_NAME(t, i), TRAIT_NAMELEN(t, i));
		switch (type)
		{
			case TRAIT_STRING:
				pq_sendint32(&buf, TRAIT_VALLEN(t, i));
				pq_sendbytes(&buf, val, TRAIT_VALLEN(t, i));
				break;
			case TRAIT_FLOAT:
				pq_sendfloat8(&buf, TraitReadFloat8(val));
				break;
			default:
				pq_sendint64(&buf, TraitReadInt64(val));
				break;
		}
	}
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}
