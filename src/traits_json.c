/*
 * traits_json.c
 *		panko.traits from and to JSON.  Three input forms are accepted, as
 *		clients send them:
 *
 *		Panko API:	[{"name": "n", "type": "integer", "value": "5"}, ...]
 *		Ceilometer: [["n", 2, 5], ...]			(type ids 0..4)
 *		plain:		{"n": 5, "host": "c1"}		(string, integer or float)
 *
 * Conversion never throws for bad data: it returns a message, so that
 * record_events can reject one event and store the rest.
 */
#include "postgres.h"

#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/numeric.h"

#include "traits.h"
#include "isotime.h"
#include "numbers.h"
#include "panko.h"

PG_FUNCTION_INFO_V1(traits_from_jsonb);
PG_FUNCTION_INFO_V1(traits_to_jsonb);

/* What kind of JSON value v is, for messages ("a string", "an array"). */
static const char *
TraitJsonTypeName(const JsonbValue *v)
{
	switch (v->type)
	{
		case jbvNull:
			return "null";
		case jbvString:
			return "a string";
		case jbvNumeric:
			return "a number";
		case jbvBool:
			return "a boolean";
		case jbvBinary:
			return JsonContainerIsArray(v->val.binary.data) ? "an array" : "an object";
		default:
			return "a composite";
	}
}

/*
 * Is this object key the given name?  Every reader of panko's JSON (traits,
 * filters, events, get_events' filter) matches its keys with this.
 */
bool
JsonbKeyIs(const JsonbValue *key, const char *name)
{
	return key->val.string.len == (int) strlen(name) &&
		memcmp(key->val.string.val, name, key->val.string.len) == 0;
}

/*
 * The text of a JSON string, or of a number as jsonb keeps it (never an
 * exponent); NULL for any other value, which each caller words in its own
 * way.  Numbers given as strings ("5") and as numbers (5) read the same.
 */
char *
JsonbScalarText(const JsonbValue *v)
{
	if (v->type == jbvString)
		return pnstrdup(v->val.string.val, v->val.string.len);
	if (v->type == jbvNumeric)
		return DatumGetCString(DirectFunctionCall1(numeric_out,
												   NumericGetDatum(v->val.numeric)));
	return NULL;
}

/* "512", "512.000" and "-3" are integral; "5.5" is not. */
static bool
IntegralText(const char *s, int64 *result)
{
	const char *dot = strchr(s, '.');

	if (dot)
	{
		for (const char *p = dot + 1; *p; p++)
			if (*p != '0')
				return false;
		return PankoParseInt64(s, (int) (dot - s), result);
	}
	return PankoParseInt64(s, (int) strlen(s), result);
}

/* The text a string trait gets from any JSON value (Python's str()). */
static void
JsonbValueAsString(const JsonbValue *v, TraitPair *p)
{
	switch (v->type)
	{
		case jbvString:
			/* no copy: the hot path of record_events */
			p->str = v->val.string.val;
			p->strlen = v->val.string.len;
			break;
		case jbvNumeric:
			p->str = JsonbScalarText(v);
			p->strlen = strlen(p->str);
			break;
		case jbvBool:
			p->str = v->val.boolean ? "True" : "False";
			p->strlen = strlen(p->str);
			break;
		case jbvNull:
			p->str = "";
			p->strlen = 0;
			break;
		default:
			{
				StringInfoData buf;

				initStringInfo(&buf);
				JsonbToCString(&buf, v->val.binary.data, v->val.binary.len);
				p->str = buf.data;
				p->strlen = buf.len;
				break;
			}
	}
}

/*
 * Convert one JSON value to a trait of the declared type.  Returns NULL or
 * a message naming the trait and the problem.
 */
static const char *
JsonbValueToPair(const JsonbValue *v, TraitPair *p)
{
	const char *problem;

	switch (p->type)
	{
		case TRAIT_STRING:
			JsonbValueAsString(v, p);
			break;
		case TRAIT_INTEGER:
		case TRAIT_FLOAT:
			{
				/* a number, or a string holding one */
				char	   *text = JsonbScalarText(v);
				bool		integer = (p->type == TRAIT_INTEGER);

				if (text == NULL)
					return psprintf("trait \"%.*s\": %s value cannot be %s",
									p->namelen, p->name, integer ? "an integer" : "a float",
									TraitJsonTypeName(v));
				if (integer ? !IntegralText(text, &p->i64)
					: !PankoParseFloat8(text, strlen(text), &p->f8))
					return psprintf("trait \"%.*s\": value \"%s\" is not %s",
									p->namelen, p->name, text,
									integer ? "an integer (64-bit)" : "a finite float");
				break;
			}
		case TRAIT_DATETIME:
			{
				Timestamp	ts;

				if (v->type != jbvString)
					return psprintf("trait \"%.*s\": a datetime value must be an ISO 8601 string, not %s",
									p->namelen, p->name, TraitJsonTypeName(v));
				if (!PankoParseTimestamp(v->val.string.val, v->val.string.len, &ts, &problem))
					return psprintf("trait \"%.*s\": bad datetime \"%.*s\": %s",
									p->namelen, p->name,
									PankoQuoteLen(v->val.string.val, v->val.string.len), v->val.string.val, problem);
				p->i64 = ts;
				break;
			}
	}
	return TraitPairProblem(p);
}

/* A type given as a name ("integer") or as Panko's id (2). */
static int
JsonbValueToType(const JsonbValue *v)
{
	if (v->type == jbvString)
		return TraitTypeFromName(v->val.string.val, v->val.string.len);
	if (v->type == jbvNumeric)
	{
		int64		id;

		if (IntegralText(JsonbScalarText(v), &id) && id >= TRAIT_NONE && id <= TRAIT_DATETIME)
			return id == TRAIT_NONE ? TRAIT_STRING : (int) id;
	}
	return -1;
}

/* A JSON value quoted in a message: its text, or what kind of value it is. */
static const char *
JsonbValueText(const JsonbValue *v)
{
	char	   *text = JsonbScalarText(v);

	return text ? text : TraitJsonTypeName(v);
}

/* One element of an array form: {"name","type","value"} or [n, type, v]. */
static const char *
ArrayItemToPair(const JsonbValue *item, int index, TraitPair *p)
{
	JsonbValue *name = NULL;
	JsonbValue *type = NULL;
	JsonbValue *value = NULL;
	JsonbContainer *c;
	const char *problem;

	if (item->type != jbvBinary)
		return psprintf("trait %d: expected {\"name\", \"type\", \"value\"} or [name, type, value], got %s",
						index + 1, TraitJsonTypeName(item));
	c = item->val.binary.data;
	if (JsonContainerIsArray(c))
	{
		if (JsonContainerSize(c) != 3)
			return psprintf("trait %d: expected [name, type, value], got %d elements",
							index + 1, (int) JsonContainerSize(c));
		name = getIthJsonbValueFromContainer(c, 0);
		type = getIthJsonbValueFromContainer(c, 1);
		value = getIthJsonbValueFromContainer(c, 2);
	}
	else
	{
		JsonbIterator *it = JsonbIteratorInit(c);
		JsonbValue	k;
		JsonbValue	v;
		JsonbIteratorToken tok;

		/* Walk the object so that unknown keys are reported. */
		while ((tok = JsonbIteratorNext(&it, &k, true)) != WJB_DONE)
		{
			if (tok != WJB_KEY)
				continue;
			tok = JsonbIteratorNext(&it, &v, true);
			if (JsonbKeyIs(&k, "name"))
				name = palloc(sizeof(JsonbValue)), *name = v;
			else if (JsonbKeyIs(&k, "type"))
				type = palloc(sizeof(JsonbValue)), *type = v;
			else if (JsonbKeyIs(&k, "value"))
				value = palloc(sizeof(JsonbValue)), *value = v;
			else
				return psprintf("trait %d: unknown key \"%.*s\" (expected name, type, value)",
								index + 1, PankoQuoteLen(k.val.string.val, k.val.string.len), k.val.string.val);
		}
		if (!name || !value)
			return psprintf("trait %d: \"name\" and \"value\" are required", index + 1);
	}

	if (name->type != jbvString)
		return psprintf("trait %d: the name must be a string, not %s",
						index + 1, TraitJsonTypeName(name));
	p->name = name->val.string.val;
	p->namelen = name->val.string.len;
	if ((problem = TraitNameProblem(p->name, p->namelen)) != NULL)
		return problem;
	p->type = type ? JsonbValueToType(type) : TRAIT_STRING;
	if (p->type < 0)
		return psprintf("trait \"%.*s\": unknown trait type \"%s\" (expected string, integer, float, datetime or none, or 0..4)",
						p->namelen, p->name, JsonbValueText(type));
	return JsonbValueToPair(value, p);
}

/* A plain object member: strings stay strings, numbers become numbers. */
static const char *
PlainMemberToPair(const JsonbValue *k, const JsonbValue *v, TraitPair *p)
{
	const char *problem;

	p->name = k->val.string.val;
	p->namelen = k->val.string.len;
	if ((problem = TraitNameProblem(p->name, p->namelen)) != NULL)
		return problem;
	if (v->type == jbvString)
		p->type = TRAIT_STRING;
	else if (v->type == jbvNumeric)
	{
		char	   *text = JsonbScalarText(v);

		p->type = (strchr(text, '.') == NULL && PankoParseInt64(text, strlen(text), &p->i64))
			? TRAIT_INTEGER : TRAIT_FLOAT;
		if (p->type == TRAIT_INTEGER)
			return NULL;
	}
	else
		return psprintf("trait \"%.*s\": a plain object takes strings and numbers, not %s",
						p->namelen, p->name, TraitJsonTypeName(v));
	return JsonbValueToPair(v, p);
}

/*
 * Collect the traits of c (an array or object container).  False, with
 * *problem set, when any trait is bad.
 */
bool
TraitPairsFromJsonb(JsonbContainer *c, TraitPair **pairs, int *npairs, char **problem)
{
	int			n = JsonContainerSize(c);
	TraitPair  *ps = palloc0(sizeof(TraitPair) * Max(n, 1));
	const char *msg = NULL;
	int			count = 0;

	*problem = NULL;
	if (JsonContainerIsArray(c))
	{
		for (int i = 0; i < n && msg == NULL; i++)
			msg = ArrayItemToPair(getIthJsonbValueFromContainer(c, i), i, &ps[count++]);
	}
	else
	{
		JsonbIterator *it = JsonbIteratorInit(c);
		JsonbValue	k;
		JsonbValue	v;
		JsonbIteratorToken tok;

		while (msg == NULL && (tok = JsonbIteratorNext(&it, &k, true)) != WJB_DONE)
		{
			if (tok != WJB_KEY)
				continue;
			JsonbIteratorNext(&it, &v, true);
			msg = PlainMemberToPair(&k, &v, &ps[count++]);
		}
	}
	if (msg)
	{
		*problem = (char *) msg;
		return false;
	}
	*pairs = ps;
	*npairs = count;
	return true;
}

/* panko.traits(jsonb): the JSON forms, failing as a whole on any bad trait. */
Datum
traits_from_jsonb(PG_FUNCTION_ARGS)
{
	Jsonb	   *jb = PG_GETARG_JSONB_P(0);
	TraitPair  *pairs;
	int			n;
	char	   *problem;

	if (JB_ROOT_IS_SCALAR(jb))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cannot build panko.traits from a JSON scalar"),
				 errhint("Pass [{\"name\": ..., \"type\": ..., \"value\": ...}], [[name, type_id, value]] or {\"name\": value}.")));
	if (!TraitPairsFromJsonb(&jb->root, &pairs, &n, &problem))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid traits: %s", problem)));
	PG_RETURN_POINTER(TraitsBuild(pairs, n));
}

/*
 * Append a JSON string literal for len bytes of s, escaped as escape_json()
 * does (the same bytes json and jsonb print), in runs: most trait names and
 * values need no escape at all.
 */
#define SWAR_ONES	UINT64CONST(0x0101010101010101)
#define SWAR_HIGHS	UINT64CONST(0x8080808080808080)
#define SWAR_ZERO(w)	(((w) - SWAR_ONES) & ~(w) & SWAR_HIGHS)

/* Does any of these 8 bytes need an escape (< 0x20, '"' or '\\')? */
static inline bool
NeedsEscape8(const char *p)
{
	uint64		w;

	memcpy(&w, p, 8);
	return (((w - SWAR_ONES * 0x20) & ~w & SWAR_HIGHS) |
			SWAR_ZERO(w ^ (SWAR_ONES * '"')) |
			SWAR_ZERO(w ^ (SWAR_ONES * '\\'))) != 0;
}

void
AppendJsonString(StringInfo buf, const char *s, int len)
{
	const char *run = s;
	const char *end = s + len;
	const char *p = s;

	enlargeStringInfo(buf, len + 2);
	buf->data[buf->len++] = '"';
	/* eight bytes at a time while none needs an escape */
	while (end - p >= 8 && !NeedsEscape8(p))
		p += 8;
	for (; p < end; p++)
	{
		unsigned char c = (unsigned char) *p;
		const char *esc;

		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		if (p > run)
			appendBinaryStringInfo(buf, run, (int) (p - run));
		run = p + 1;
		switch (c)
		{
			case '\b':
				esc = "\\b";
				break;
			case '\f':
				esc = "\\f";
				break;
			case '\n':
				esc = "\\n";
				break;
			case '\r':
				esc = "\\r";
				break;
			case '\t':
				esc = "\\t";
				break;
			case '"':
				esc = "\\\"";
				break;
			case '\\':
				esc = "\\\\";
				break;
			default:
				appendStringInfo(buf, "\\u%04x", (int) c);
				continue;
		}
		appendBinaryStringInfo(buf, esc, 2);
	}
	if (end > run)
		appendBinaryStringInfo(buf, run, (int) (end - run));
	appendStringInfoChar(buf, '"');
}

/*
 * Append a jsonb scalar (or a container, through AppendJsonb) as jsonb's
 * output function writes it, strings through AppendJsonString.
 */
void
AppendJsonbValue(StringInfo buf, const JsonbValue *v)
{
	switch (v->type)
	{
		case jbvNull:
			APPEND_LITERAL(buf, "null");
			break;
		case jbvString:
			AppendJsonString(buf, v->val.string.val, v->val.string.len);
			break;
		case jbvNumeric:
			appendStringInfoString(buf, DatumGetCString(DirectFunctionCall1(numeric_out,
																			NumericGetDatum(v->val.numeric))));
			break;
		case jbvBool:
			if (v->val.boolean)
				APPEND_LITERAL(buf, "true");
			else
				APPEND_LITERAL(buf, "false");
			break;
		case jbvBinary:
			AppendJsonb(buf, v->val.binary.data);
			break;
		default:
			elog(ERROR, "unexpected jsonb value type: %d", (int) v->type);
	}
}

/*
 * Append a jsonb container as JsonbToCString writes it, byte for byte
 * (", " and ": " between members, a raw scalar bare), but with strings
 * escaped in runs: escape_json's byte at a time was a fifth of a trace
 * report, whose notifications are mostly strings.
 */
void
AppendJsonb(StringInfo buf, JsonbContainer *c)
{
	JsonbIterator *it = JsonbIteratorInit(c);
	JsonbValue	v;
	JsonbIteratorToken type;
	bool		first = true;
	bool		raw_scalar = false;

	while ((type = JsonbIteratorNext(&it, &v, false)) != WJB_DONE)
	{
		/* ", " before a member or an element that is not a container's first */
		if (!first && type != WJB_VALUE && type != WJB_END_ARRAY && type != WJB_END_OBJECT)
			APPEND_LITERAL(buf, ", ");
		switch (type)
		{
			case WJB_BEGIN_ARRAY:
				if (v.val.array.rawScalar)
					raw_scalar = true;
				else
					appendStringInfoCharMacro(buf, '[');
				break;
			case WJB_BEGIN_OBJECT:
				appendStringInfoCharMacro(buf, '{');
				break;
			case WJB_KEY:
				AppendJsonString(buf, v.val.string.val, v.val.string.len);
				APPEND_LITERAL(buf, ": ");
				break;
			case WJB_VALUE:
			case WJB_ELEM:
				AppendJsonbValue(buf, &v);
				break;
			case WJB_END_ARRAY:
				if (!raw_scalar)
					appendStringInfoCharMacro(buf, ']');
				break;
			case WJB_END_OBJECT:
				appendStringInfoCharMacro(buf, '}');
				break;
			default:
				elog(ERROR, "unexpected jsonb iterator token: %d", (int) type);
		}
		/* what comes next is a container's first (a key's value counts so) */
		first = type == WJB_BEGIN_ARRAY || type == WJB_BEGIN_OBJECT || type == WJB_KEY;
	}
}

/*
 * What every trait of the API form starts with, {"name": "...", "type":
 * "...", "value": , for the coded names (by code and type), written once
 * per backend: most traits of most events have one of those names.
 */
typedef struct JsonPrefix
{
	int			len;			/* 0: not made yet */
	char	   *text;
} JsonPrefix;

static JsonPrefix coded_prefixes[256][TRAIT_DATETIME + 1];

/* Append {"name": <name>, "type": "<type>", "value": */
static void
AppendTraitPrefix(StringInfo buf, const char *name, int namelen, int type)
{
	APPEND_LITERAL(buf, "{\"name\": ");
	AppendJsonString(buf, name, namelen);
	APPEND_LITERAL(buf, ", \"type\": \"");
	appendStringInfoString(buf, TraitTypeName(type));
	APPEND_LITERAL(buf, "\", \"value\": ");
}

/* The prefix of a trait with a coded name, made on first use. */
static const JsonPrefix *
CodedPrefix(int code, int type)
{
	JsonPrefix *jp = &coded_prefixes[code][type];

	if (jp->len == 0)
	{
		StringInfoData tmp;
		const char *name = TraitNameForCode(code);

		initStringInfo(&tmp);
		AppendTraitPrefix(&tmp, name, strlen(name), type);
		jp->text = MemoryContextStrdup(TopMemoryContext, tmp.data);
		jp->len = tmp.len;
		pfree(tmp.data);
	}
	return jp;
}

/* A trait's value as the API writes it: always a JSON string. */
static void
AppendTraitValueJson(StringInfo buf, int type, const char *val, int vallen)
{
	char		num[MAXINT8LEN + 3];
	int			n;

	switch (type)
	{
		case TRAIT_STRING:
			AppendJsonString(buf, val, vallen);
			return;
		case TRAIT_INTEGER:
			num[0] = '"';
			n = pg_lltoa(TraitReadInt64(val), num + 1);
			num[n + 1] = '"';
			appendBinaryStringInfo(buf, num, n + 2);
			return;
		case TRAIT_FLOAT:
			/* digits, signs, '.', 'e', "nan" and "inf": nothing to escape */
			appendStringInfoChar(buf, '"');
			PankoAppendFloat(buf, TraitReadFloat8(val));
			appendStringInfoChar(buf, '"');
			return;
		case TRAIT_DATETIME:
			appendStringInfoChar(buf, '"');
			PankoAppendTimestamp(buf, (Timestamp) TraitReadInt64(val));
			appendStringInfoChar(buf, '"');
			return;
	}
}

/*
 * The Panko API form, as JSON text: [{"name": .., "type": .., "value": ..}]
 * sorted by name, every value a string.  Written straight from the binary
 * traits into buf, once: the SQL functions and the HTTP answers share it.
 */
void
TraitsAppendJson(StringInfo buf, const Traits *t)
{
	int			n = TraitsCount(t);
	const char *data = TraitsData(t);
	uint32		start = 0;

	appendStringInfoChar(buf, '[');
	for (int i = 0; i < n; i++)
	{
		uint32		e = t->entries[i];
		uint32		end = TE_END(e);
		int			type = TE_TYPE(e);
		uint8		len = (uint8) data[start];
		int			headerlen;

		if (i > 0)
			APPEND_LITERAL(buf, ", ");
		if (len == TRAIT_NAME_CODED && TRAIT_TYPE_VALID(type))
		{
			const JsonPrefix *jp = CodedPrefix((uint8) data[start + 1], type);

			appendBinaryStringInfo(buf, jp->text, jp->len);
			headerlen = 2;
		}
		else
		{
			TraitItem	item = TraitsItem(t, i);

			AppendTraitPrefix(buf, item.name, item.namelen, item.type);
			headerlen = len == TRAIT_NAME_CODED ? 2 : 1 + len;
		}
		AppendTraitValueJson(buf, type, data + start + headerlen, (int) (end - start) - headerlen);
		appendStringInfoChar(buf, '}');
		start = end;
	}
	appendStringInfoChar(buf, ']');
}

/* panko.traits_to_jsonb(traits): the API form as jsonb. */
Datum
traits_to_jsonb(PG_FUNCTION_ARGS)
{
	Traits	   *t = PG_GETARG_TRAITS_P(0);
	StringInfoData buf;

	initStringInfo(&buf);
	TraitsAppendJson(&buf, t);
	PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum(buf.data)));
}
