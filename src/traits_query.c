/*
 * traits_query.c
 *		panko.traitquery: a conjunction of Panko trait filters, each "the event
 *		has a trait of this name and this type whose value compares true".
 *		Built from Panko's filter JSON here (from text in traits_io.c);
 *		matched by traits @@ q.
 */
#include "postgres.h"

#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "traits.h"
#include "isotime.h"
#include "numbers.h"

PG_FUNCTION_INFO_V1(traitquery_from_jsonb);
PG_FUNCTION_INFO_V1(traits_match);
PG_FUNCTION_INFO_V1(traits_match_commutator);

/* Operators as Panko's filters name them, numbered TQ_*. */
static const char *const op_names[] = {"", "eq", "ne", "lt", "le", "gt", "ge"};

/* traits @@ query: every predicate holds (a missing trait fails, even "ne"). */
Datum
traits_match(PG_FUNCTION_ARGS)
{
	TraitItems	items = TraitQueryItems(PG_GETARG_TRAITQUERY_P(1));

	PG_RETURN_BOOL(TraitsHoldAll(PG_GETARG_TRAITS_P(0), &items));
}

/* query @@ traits, so that either side can be the indexed column's */
Datum
traits_match_commutator(PG_FUNCTION_ARGS)
{
	TraitItems	items = TraitQueryItems(PG_GETARG_TRAITQUERY_P(0));

	PG_RETURN_BOOL(TraitsHoldAll(PG_GETARG_TRAITS_P(1), &items));
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

/*
 * The TQ_* number of a Panko operator name; any other name is Panko's
 * error (this file owns the operators: panko-api's q checks come here).
 */
int
TraitOperator(const char *name)
{
	for (int i = TQ_EQ; i <= TQ_GE; i++)
		if (strcmp(name, op_names[i]) == 0)
			return i;
	BadOperator(name, strlen(name));
}

/* (likewise) */
static void
pg_attribute_noreturn()
BadType(const char *type, int len)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("The data type %.*s is not supported. The supported data type list is: ['integer', 'float', 'string', 'datetime']",
					len, type)));
}

/* (likewise) */
static void
pg_attribute_noreturn()
BadValue(const char *value, int type)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("Unable to convert the value %s to the expected data type %s.",
					value, TraitTypeName(type))));
}

/*
 * The text of a filter value as Panko's Python saw it: a JSON string, a
 * number as written, True, False or None.  Messages quote it.
 */
static char *
FilterValueText(const JsonbValue *v)
{
	char	   *text = JsonbScalarText(v);

	if (text)
		return text;
	switch (v->type)
	{
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
FilterValue(const JsonbValue *v, TraitPair *p)
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
			break;
		case TRAIT_DATETIME:
			if (!PankoParseTimestamp(text, len, &ts, &problem))
				BadValue(text, p->type);
			p->i64 = ts;
			break;
	}
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
		if (JsonbKeyIs(&k, "key") || JsonbKeyIs(&k, "field"))
			name = v, have_name = true;
		else if (JsonbKeyIs(&k, "op"))
			op = v, have_op = true;
		else if (JsonbKeyIs(&k, "type"))
			type = v, have_type = true;
		else if (JsonbKeyIs(&k, "value"))
			value = v, have_value = true;
		else if (TraitTypeFromName(k.val.string.val, k.val.string.len) > 0 &&
				 !JsonbKeyIs(&k, "none"))
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

	/* A missing, null or empty op means eq (upstream: "if not i.op"). */
	p->op = TQ_EQ;
	if (have_op && op.type != jbvNull &&
		!(op.type == jbvString && op.val.string.len == 0))
	{
		p->op = TraitOperator(FilterValueText(&op));
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
	TraitCheckValue(p);
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
