/*
 * traits_query.c
 *		panko.traitquery: a conjunction of Panko trait filters, each "the event
 *		has a trait of this name and this type whose value compares true".
 *		Built from text or from Panko's filter JSON; matched by traits @@ q.
 */
#include "postgres.h"

#include "libpq/pqformat.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"

#include "traits.h"
#include "isotime.h"
#include "numbers.h"

PG_FUNCTION_INFO_V1(traitquery_in);
PG_FUNCTION_INFO_V1(traitquery_out);
PG_FUNCTION_INFO_V1(traitquery_recv);
PG_FUNCTION_INFO_V1(traitquery_send);
PG_FUNCTION_INFO_V1(traitquery_from_jsonb);
PG_FUNCTION_INFO_V1(traits_match);
PG_FUNCTION_INFO_V1(traits_match_commutator);

static const char *const op_symbols[] = {"", "=", "<>", "<", "<=", ">", ">="};
static const char *const op_names[] = {"", "eq", "ne", "lt", "le", "gt", "ge"};

const char *
TraitOpSymbol(int op)
{
	return (op >= TQ_EQ && op <= TQ_GE) ? op_symbols[op] : "?";
}

/* Pack predicates in the order given: a query may test one trait twice. */
TraitQuery *
TraitQueryBuild(TraitPair *pairs, int npairs)
{
	Size		datalen = 0;
	Size		total;
	TraitQuery *q;
	uint32	   *ents;
	char	   *data;
	Size		off = 0;

	for (int i = 0; i < npairs; i++)
		datalen += TraitPairDataSize(&pairs[i], 0);
	if (npairs > TRAITS_MAX_COUNT || datalen > TRAITQUERY_MAX_DATA)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("trait query is too large")));

	total = TRAITS_HDRSZ + sizeof(uint32) * npairs + datalen;
	q = (TraitQuery *) palloc0(total);
	SET_VARSIZE(q, total);
	TRAITS_SET_HEADER(q, npairs);
	ents = TRAITS_ENTRIES(q);
	data = TRAITS_DATA(q);
	for (int i = 0; i < npairs; i++)
	{
		off += TraitPackPair(data + off, &pairs[i], 0);
		ents[i] = TQE_MAKE(pairs[i].type, pairs[i].op, off);
	}
	return q;
}

/* Does one stored value satisfy (op, bound)? */
static inline bool
OpHolds(int op, int cmp)
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

/* Every predicate holds; a missing (name, type) fails, even for "ne". */
bool
TraitQueryMatch(Traits *t, TraitQuery *q)
{
	for (int i = 0; i < (int) TRAITS_COUNT(q); i++)
	{
		int			type = TQ_TYPE(q, i);
		int			j = TraitsFind(t, TQ_NAME(q, i), TQ_NAMELEN(q, i), type);

		if (j < 0)
			return false;
		if (!OpHolds(TQ_OP(q, i),
					 TraitCompareValue(type, TRAIT_VALUE(t, j), TRAIT_VALLEN(t, j),
									   TQ_VALUE(q, i), TQ_VALLEN(q, i))))
			return false;
	}
	return true;
}

Datum
traits_match(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(TraitQueryMatch(PG_GETARG_TRAITS_P(0), PG_GETARG_TRAITQUERY_P(1)));
}

Datum
traits_match_commutator(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(TraitQueryMatch(PG_GETARG_TRAITS_P(1), PG_GETARG_TRAITQUERY_P(0)));
}

Datum
traitquery_in(PG_FUNCTION_ARGS)
{
	char	   *str = PG_GETARG_CSTRING(0);
	int			n;
	TraitPair  *pairs = TraitsParseText(str, "panko.traitquery", true, &n);

	PG_RETURN_POINTER(TraitQueryBuild(pairs, n));
}

Datum
traitquery_out(PG_FUNCTION_ARGS)
{
	TraitQuery *q = PG_GETARG_TRAITQUERY_P(0);
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	for (int i = 0; i < (int) TRAITS_COUNT(q); i++)
	{
		if (i > 0)
			appendStringInfoString(&buf, ", ");
		TraitsAppendItem(&buf, TQ_NAME(q, i), TQ_NAMELEN(q, i), TQ_TYPE(q, i),
						 TraitOpSymbol(TQ_OP(q, i)), TQ_VALUE(q, i), TQ_VALLEN(q, i));
	}
	appendStringInfoChar(&buf, '}');
	PG_RETURN_CSTRING(buf.data);
}

/* Binary form: the query's text form, which round-trips exactly. */
Datum
traitquery_send(PG_FUNCTION_ARGS)
{
	char	   *s = DatumGetCString(DirectFunctionCall1(traitquery_out, PG_GETARG_DATUM(0)));
	StringInfoData buf;

	pq_begintypsend(&buf);
	pq_sendtext(&buf, s, strlen(s));
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

Datum
traitquery_recv(PG_FUNCTION_ARGS)
{
	StringInfo	msg = (StringInfo) PG_GETARG_POINTER(0);
	int			nbytes;
	char	   *s = pq_getmsgtext(msg, msg->len - msg->cursor, &nbytes);

	PG_RETURN_DATUM(DirectFunctionCall1(traitquery_in, CStringGetDatum(s)));
}

/* Panko's messages for a bad filter, word for word (HTTP clients match them). */
static void
pg_attribute_noreturn()
BadOperator(const char *op, int len)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("Operator %.*s is not supported. The supported operators are: ('lt', 'le', 'eq', 'ne', 'ge', 'gt')",
					len, op)));
}

static void
pg_attribute_noreturn()
BadType(const char *type, int len)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("The data type %.*s is not supported. The supported data type list is: ['integer', 'float', 'string', 'datetime']",
					len, type)));
}

static void
pg_attribute_noreturn()
BadValue(const char *value, int type)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("Unable to convert the value %s to the expected data type %s.",
					value, TraitTypeName(type))));
}

/* The text of a filter value: a JSON string, or a number as written. */
static char *
FilterValueText(JsonbValue *v)
{
	switch (v->type)
	{
		case jbvString:
			return pnstrdup(v->val.string.val, v->val.string.len);
		case jbvNumeric:
			return DatumGetCString(DirectFunctionCall1(numeric_out,
													   NumericGetDatum(v->val.numeric)));
		case jbvBool:
			return pstrdup(v->val.boolean ? "True" : "False");
		case jbvNull:
			return pstrdup("None");
		default:
			return pstrdup("(a JSON container)");
	}
}

/* Convert a filter value to the filter's type, or fail as Panko did. */
static void
FilterValue(JsonbValue *v, TraitPair *p)
{
	char	   *text = FilterValueText(v);
	int			len = strlen(text);
	const char *problem;
	Timestamp	ts;

	if (v->type == jbvBinary || (v->type != jbvString && v->type != jbvNumeric &&
								 p->type != TRAIT_STRING))
		BadValue(text, p->type);
	switch (p->type)
	{
		case TRAIT_STRING:
			if (v->type == jbvBinary)
				BadValue(text, p->type);
			p->str = text;
			p->strlen = len;
			break;
		case TRAIT_INTEGER:
			if (!PankoParseInt64(text, len, &p->i64))
				BadValue(text, p->type);
			break;
		case TRAIT_FLOAT:
			if (!PankoParseFloat8(text, len, &p->f8))
				BadValue(text, p->type);
			if (p->f8 == 0.0)
				p->f8 = 0.0;
			break;
		case TRAIT_DATETIME:
			if (!PankoParseTimestamp(text, len, &ts, &problem))
				BadValue(text, p->type);
			p->i64 = ts;
			break;
	}
}

static bool
KeyIs(JsonbValue *k, const char *name)
{
	return k->val.string.len == (int) strlen(name) &&
		memcmp(k->val.string.val, name, k->val.string.len) == 0;
}

/*
 * One filter item, in Panko's storage form {"key", "op", "<type>": value}
 * or its API form {"field", "op", "type", "value"}.
 */
static void
FilterItemToPair(JsonbValue *item, int index, TraitPair *p)
{
	JsonbIterator *it;
	JsonbValue	k,
				v;
	JsonbIteratorToken tok;
	JsonbValue	name = {0},
				op = {0},
				type = {0},
				value = {0};
	bool		have_name = false,
				have_op = false,
				have_type = false,
				have_value = false;
	int			typed_keys = 0;

	if (item->type != jbvBinary || JsonContainerIsArray(item->val.binary.data))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("trait filter %d must be a JSON object", index + 1),
				 errhint("Use {\"key\": \"name\", \"op\": \"eq\", \"string\": \"value\"}.")));

	it = JsonbIteratorInit(item->val.binary.data);
	while ((tok = JsonbIteratorNext(&it, &k, true)) != WJB_DONE)
	{
		if (tok != WJB_KEY)
			continue;
		JsonbIteratorNext(&it, &v, true);
		if (KeyIs(&k, "key") || KeyIs(&k, "field"))
			name = v, have_name = true;
		else if (KeyIs(&k, "op"))
			op = v, have_op = true;
		else if (KeyIs(&k, "type"))
			type = v, have_type = true;
		else if (KeyIs(&k, "value"))
			value = v, have_value = true;
		else if (TraitTypeFromName(k.val.string.val, k.val.string.len) > 0 &&
				 !KeyIs(&k, "none"))
		{
			type.type = jbvString;
			type.val.string = k.val.string;
			value = v;
			have_type = have_value = true;
			typed_keys++;
		}
		else
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("trait filter %d has an unknown key \"%.*s\"",
							index + 1, k.val.string.len, k.val.string.val),
					 errhint("A trait filter has \"key\", \"op\" and one of \"string\", \"integer\", \"float\", \"datetime\".")));
	}
	if (!have_name || name.type != jbvString || name.val.string.len == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("trait filter %d needs a trait name in \"key\"", index + 1)));
	if (!have_value || typed_keys > 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("trait filter %d needs exactly one value", index + 1)));

	p->name = name.val.string.val;
	p->namelen = name.val.string.len;
	TraitCheckName(p->name, p->namelen);

	p->op = TQ_EQ;
	if (have_op && op.type != jbvNull)
	{
		char	   *o = FilterValueText(&op);

		p->op = 0;
		for (int i = TQ_EQ; i <= TQ_GE; i++)
			if (strcmp(o, op_names[i]) == 0)
				p->op = i;
		if (p->op == 0)
			BadOperator(o, strlen(o));
	}

	p->type = TRAIT_STRING;
	if (have_type && type.type != jbvNull)
	{
		char	   *t = FilterValueText(&type);

		p->type = TraitTypeFromName(t, strlen(t));
		if (p->type < 0 || strcmp(t, "none") == 0)
			BadType(t, strlen(t));
	}
	FilterValue(&value, p);
	if (p->type == TRAIT_STRING)
		TraitCheckString(p->name, p->namelen, p->strlen);
}

/* panko.traitquery(jsonb): Panko's traits_filter list as a query. */
Datum
traitquery_from_jsonb(PG_FUNCTION_ARGS)
{
	Jsonb	   *jb = PG_GETARG_JSONB_P(0);
	int			n;
	TraitPair  *pairs;

	if (JB_ROOT_IS_SCALAR(jb) || !JB_ROOT_IS_ARRAY(jb))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("traits_filter must be a JSON array of trait filters")));
	n = JB_ROOT_COUNT(jb);
	pairs = palloc0(sizeof(TraitPair) * Max(n, 1));
	for (int i = 0; i < n; i++)
		FilterItemToPair(getIthJsonbValueFromContainer(&jb->root, i), i, &pairs[i]);
	PG_RETURN_POINTER(TraitQueryBuild(pairs, n));
}
