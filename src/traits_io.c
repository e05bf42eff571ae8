/*
 * traits_io.c
 *		Text and binary I/O of panko.traits and panko.traitquery.
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
 * is panko.traitquery's: both types share the parser and the writer.
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
PG_FUNCTION_INFO_V1(traitquery_in);
PG_FUNCTION_INFO_V1(traitquery_out);
PG_FUNCTION_INFO_V1(traitquery_recv);
PG_FUNCTION_INFO_V1(traitquery_send);

/* Operators as the text form writes them, numbered TQ_*. */
static const char *const op_symbols[] = {"", "=", "<>", "<", "<=", ">", ">="};

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

/* Blanks between tokens are insignificant. */
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

/* Characters a name may be written with, unquoted. */
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
	/* before anything else: later messages quote the name */
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
			break;
		case TRAIT_INTEGER:
		case TRAIT_FLOAT:
			{
				int			len;
				const char *tok = ParseNumberToken(ps, &len);
				bool		integer = (pair->type == TRAIT_INTEGER);

				if (integer ? !PankoParseInt64(tok, len, &pair->i64)
					: !PankoParseFloat8(tok, len, &pair->f8))
				{
					ps->p = vstart;
					ParseError(ps, integer ? "Expected an integer value (64-bit)"
							   : "Expected a finite float value");
				}
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
	TraitCheckValue(pair);
}

/* Parse a whole literal of either type into pairs, in the order written. */
static TraitPair *
ParseText(const char *str, const char *typname, bool allow_ops, int *npairs)
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
static void
AppendQuoted(StringInfo buf, const char *s, int len)
{
	const char *run = s;
	const char *end = s + len;

	enlargeStringInfo(buf, len + 2);
	buf->data[buf->len++] = '"';
	for (const char *p = s; p < end; p++)
	{
		if (*p != '"' && *p != '\\')
			continue;
		/* copy up to and including the character, after its backslash */
		appendBinaryStringInfo(buf, run, (int) (p - run));
		appendStringInfoChar(buf, '\\');
		run = p;
	}
	appendBinaryStringInfo(buf, run, (int) (end - run));
	appendStringInfoChar(buf, '"');
}

/* One item of the text form; a query's items show their operator. */
static void
AppendItem(StringInfo buf, const TraitItem *item, bool query)
{
	AppendQuoted(buf, item->name, item->namelen);
	appendStringInfoChar(buf, ':');
	appendStringInfoString(buf, TraitTypeName(item->type));
	if (query)
		appendStringInfo(buf, " %s ", (item->op >= TQ_EQ && item->op <= TQ_GE)
						 ? op_symbols[item->op] : "?");
	else
		appendStringInfoChar(buf, '=');
	switch (item->type)
	{
		case TRAIT_STRING:
			AppendQuoted(buf, item->value, item->vallen);
			break;
		case TRAIT_DATETIME:
			appendStringInfoChar(buf, '"');
			TraitValueToText(buf, item->type, item->value, item->vallen);
			appendStringInfoChar(buf, '"');
			break;
		default:
			TraitValueToText(buf, item->type, item->value, item->vallen);
			break;
	}
}

/*
 * The input function of either type: the two differ only in whether
 * operators other than '=' are allowed and in how the pairs are packed.
 */
static Pointer
TextIn(const char *str, bool query)
{
	int			n;
	TraitPair  *pairs = ParseText(str, query ? "panko.traitquery" : "panko.traits",
								  query, &n);

	return query ? (Pointer) TraitQueryBuild(pairs, n) : (Pointer) TraitsBuild(pairs, n);
}

/* The output function of either type: the canonical text form. */
static char *
TextOut(const TraitItems *items)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	for (int i = 0; i < items->count; i++)
	{
		TraitItem	item = TraitItemsGet(items, i);

		if (i > 0)
			appendStringInfoString(&buf, ", ");
		AppendItem(&buf, &item, items->query != NULL);
	}
	appendStringInfoChar(&buf, '}');
	return buf.data;
}

/* Input of panko.traits: sorted and deduplicated by TraitsBuild. */
Datum
traits_in(PG_FUNCTION_ARGS)
{
	PG_RETURN_POINTER(TextIn(PG_GETARG_CSTRING(0), false));
}

/* Output of panko.traits: canonical, in stored order. */
Datum
traits_out(PG_FUNCTION_ARGS)
{
	TraitItems	items = TraitsItems(PG_GETARG_TRAITS_P(0));

	PG_RETURN_CSTRING(TextOut(&items));
}

/* Input of panko.traitquery: predicates kept in the order written. */
Datum
traitquery_in(PG_FUNCTION_ARGS)
{
	PG_RETURN_POINTER(TextIn(PG_GETARG_CSTRING(0), true));
}

/* Output of panko.traitquery, with each predicate's operator. */
Datum
traitquery_out(PG_FUNCTION_ARGS)
{
	TraitItems	items = TraitQueryItems(PG_GETARG_TRAITQUERY_P(0));

	PG_RETURN_CSTRING(TextOut(&items));
}

/* Binary form of a query: its text form, which round-trips exactly. */
Datum
traitquery_send(PG_FUNCTION_ARGS)
{
	TraitItems	items = TraitQueryItems(PG_GETARG_TRAITQUERY_P(0));
	char	   *s = TextOut(&items);
	StringInfoData buf;

	pq_begintypsend(&buf);
	pq_sendtext(&buf, s, strlen(s));
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

/* (and reads it back through the text parser, with all its checks) */
Datum
traitquery_recv(PG_FUNCTION_ARGS)
{
	StringInfo	msg = (StringInfo) PG_GETARG_POINTER(0);
	int			nbytes;
	char	   *s = pq_getmsgtext(msg, msg->len - msg->cursor, &nbytes);

	PG_RETURN_POINTER(TextIn(s, true));
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
		/* (this also rejects a zero byte in the name) */
		pg_verify_mbstr(GetDatabaseEncoding(), p->name, p->namelen, false);
		TraitCheckName(p->name, p->namelen);
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
				break;
			default:
				if (msg->len - msg->cursor < 8)
					RecvError("An integer or datetime value is cut short.");
				p->i64 = pq_getmsgint64(msg);
				break;
		}
		TraitCheckValue(p);
	}
	if (msg->cursor != msg->len)
		RecvError("Bytes are left over after the last trait.");
	PG_RETURN_POINTER(TraitsBuild(pairs, count));
}

/* The binary form traits_recv reads (names always spelled out). */
Datum
traits_send(PG_FUNCTION_ARGS)
{
	Traits	   *t = PG_GETARG_TRAITS_P(0);
	StringInfoData buf;

	pq_begintypsend(&buf);
	pq_sendint32(&buf, TRAITS_FORMAT_V1);
	pq_sendint32(&buf, TraitsCount(t));
	for (int i = 0; i < TraitsCount(t); i++)
	{
		TraitItem	item = TraitsItem(t, i);

		pq_sendbyte(&buf, (uint8) item.type);
		pq_sendbyte(&buf, (uint8) item.namelen);
		pq_sendbytes(&buf, item.name, item.namelen);
		switch (item.type)
		{
			case TRAIT_STRING:
				pq_sendint32(&buf, item.vallen);
				pq_sendbytes(&buf, item.value, item.vallen);
				break;
			case TRAIT_FLOAT:
				pq_sendfloat8(&buf, TraitReadFloat8(item.value));
				break;
			default:
				pq_sendint64(&buf, TraitReadInt64(item.value));
				break;
		}
	}
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}
