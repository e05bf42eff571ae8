/*
 * api_events.c
 *		panko.api_get_events(params): GET /v2/events for panko-api.
 *
 * The checks of the query string's parameters, in upstream Panko's order
 * and words, turn params into get_events' filter, limit, sort and marker;
 * then panko.get_events runs, called through SQL like any caller's call
 * (it is SECURITY DEFINER, so it reads as panko_query and row-level
 * security judges the caller), and writes the page as the API's JSON text
 * straight into the answer (panko_events_json_sink): no row of the page is
 * made into a tuple, a jsonb or a text of its own.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"

#include "panko.h"
#include "traits.h"
#include "event_store.h"

PG_FUNCTION_INFO_V1(api_get_events);

static SPIPlanPtr plan_get_events = NULL;

/* 22023, as panko-api answers 400. */
static void
pg_attribute_noreturn()
Bad(const char *msg)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("%s", msg)));
}

/* v->>key: the text of a member, NULL when missing or JSON null. */
static char *
MemberText(JsonbContainer *c, const char *key)
{
	JsonbValue *v = getKeyJsonValueFromContainer(c, key, strlen(key), NULL);
	StringInfoData buf;

	if (v == NULL || v->type == jbvNull)
		return NULL;
	switch (v->type)
	{
		case jbvString:
			return pnstrdup(v->val.string.val, v->val.string.len);
		case jbvNumeric:
			return DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(v->val.numeric)));
		case jbvBool:
			return pstrdup(v->val.boolean ? "true" : "false");
		default:
			initStringInfo(&buf);
			(void) JsonbToCString(&buf, v->val.binary.data, v->val.binary.len);
			return buf.data;
	}
}

/* A member of an object, or NULL. */
static JsonbValue *
Member(JsonbContainer *c, const char *key)
{
	return getKeyJsonValueFromContainer(c, key, strlen(key), NULL);
}

/* '^-?[0-9]{1,10}$' */
static bool
LimitShaped(const char *s)
{
	int			digits = 0;

	if (*s == '-')
		s++;
	for (; *s; s++)
	{
		if (*s < '0' || *s > '9')
			return false;
		digits++;
	}
	return digits >= 1 && digits <= 10;
}

/* Append "key": "value" to the object being built. */
static void
PushString(JsonbParseState **state, const char *key, const char *value)
{
	JsonbValue	k,
				v;

	k.type = jbvString;
	k.val.string.val = (char *) key;
	k.val.string.len = strlen(key);
	(void) pushJsonbValue(state, WJB_KEY, &k);
	v.type = jbvString;
	v.val.string.val = (char *) value;
	v.val.string.len = strlen(value);
	(void) pushJsonbValue(state, WJB_VALUE, &v);
}

/*
 * The page as JSON, from panko.get_events through SQL, appended to buf
 * (which holds the result's varlena header already: the page becomes the
 * text datum in place, not a copy of 100 kB).
 */
static void
CallGetEvents(StringInfo buf, Jsonb *filter, bool has_limit, int32 limit, ArrayType *sort,
			  const char *marker)
{
	Oid			types[4] = {JSONBOID, INT4OID, TEXTARRAYOID, TEXTOID};
	Datum		values[4];
	char		nulls[4] = {' ', has_limit ? ' ' : 'n', sort ? ' ' : 'n', marker ? ' ' : 'n'};
	int			rc;

	values[0] = JsonbPGetDatum(filter);
	values[1] = Int32GetDatum(limit);
	values[2] = sort ? PointerGetDatum(sort) : (Datum) 0;
	values[3] = marker ? CStringGetTextDatum(marker) : (Datum) 0;

	PankoSPIConnect();
	PankoKeepPlan(&plan_get_events,
				  "SELECT FROM panko.get_events($1, $2, $3, $4)", 4, types, 0);
	PG_TRY();
	{
		panko_events_json_sink = buf;
		rc = SPI_execute_plan(plan_get_events, values, nulls, false, 0);
	}
	PG_FINALLY();
	{
		panko_events_json_sink = NULL;
	}
	PG_END_TRY();
	if (rc != SPI_OK_SELECT || buf->len <= VARHDRSZ)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("panko: get_events did not write the page")));
	SPI_finish();
}

/*
 * panko.api_get_events(params): {"q": [{"field", "op", "type", "value"}],
 * "limit", "sort", "marker"} -> a JSON list of events.
 */
Datum
api_get_events(PG_FUNCTION_ARGS)
{
	Jsonb	   *params = PG_ARGISNULL(0) ? NULL : PG_GETARG_JSONB_P(0);
	bool		admin = PankoCallerIsAdmin();
	JsonbContainer *root;
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	JsonbValue *jv;
	bool		has_limit = false;
	int32		limit = 0;
	ArrayType  *sort = NULL;
	char	   *marker = NULL;
	JsonbParseState *state = NULL;
	JsonbValue *items = NULL;
	int			nitems = 0;
	bool		seen[4] = {false, false, false, false};
	static const char *const single[4] = {"event_type", "message_id", "start_timestamp", "end_timestamp"};
	StringInfoData page;

	PankoRequireIdentity();
	if (params == NULL || !JB_ROOT_IS_OBJECT(params))
		Bad("Request must be a JSON dict");
	root = &params->root;
	it = JsonbIteratorInit(root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok != WJB_KEY)
			continue;
		if (!JsonbKeyIs(&v, "q") && !JsonbKeyIs(&v, "limit") && !JsonbKeyIs(&v, "sort") &&
			!JsonbKeyIs(&v, "marker"))
			Bad(psprintf("Unknown argument: \"%.*s\"", v.val.string.len, v.val.string.val));
	}

	/*
	 * panko-api decides what a limit is and caps it; here it is a JSON
	 * integer, and 0 means the default.
	 */
	if ((jv = Member(root, "limit")) != NULL && jv->type != jbvNull)
	{
		char	   *text = MemberText(root, "limit");
		int64		n;

		if (jv->type != jbvNumeric || !LimitShaped(text) ||
			(n = DatumGetInt64(DirectFunctionCall1(int8in, CStringGetDatum(text)))) > PG_INT32_MAX)
			Bad(psprintf("Invalid input for field/attribute limit. Value: '%s'. unable to convert to int", text));
		if (n < PG_INT32_MIN)
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("integer out of range")));
		if (n < 0)
			Bad("Limit must be positive");
		if (n != 0)
		{
			has_limit = true;
			limit = (int32) n;
		}
	}

	jv = Member(root, "sort");
	if (jv != NULL && jv->type == jbvString)
	{
		Datum		d = PointerGetDatum(cstring_to_text_with_len(jv->val.string.val, jv->val.string.len));

		sort = construct_array(&d, 1, TEXTOID, -1, false, TYPALIGN_INT);
	}
	else if (jv != NULL && jv->type == jbvBinary && JsonContainerIsArray(jv->val.binary.data))
	{
		JsonbContainer *c = jv->val.binary.data;
		int			n = JsonContainerSize(c);
		Datum	   *d = palloc(sizeof(Datum) * Max(n, 1));

		for (int i = 0; i < n; i++)
		{
			JsonbValue *e = getIthJsonbValueFromContainer(c, i);

			if (e->type != jbvString)
				Bad("sort must be a list of strings");
			d[i] = PointerGetDatum(cstring_to_text_with_len(e->val.string.val, e->val.string.len));
		}
		if (n > 0)
			sort = construct_array(d, n, TEXTOID, -1, false, TYPALIGN_INT);
	}
	else if (jv != NULL && jv->type != jbvNull)
		Bad("sort must be a list of strings");

	jv = Member(root, "marker");
	if (jv != NULL && jv->type == jbvString)
		marker = pnstrdup(jv->val.string.val, jv->val.string.len);
	else if (jv != NULL && jv->type != jbvNull)
		Bad("marker must be a string");

	(void) pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	if ((jv = Member(root, "q")) != NULL && jv->type != jbvNull)
	{
		JsonbContainer *qc;

		if (jv->type != jbvBinary || !JsonContainerIsArray(jv->val.binary.data))
			Bad("q must be a list of queries");
		qc = jv->val.binary.data;
		nitems = JsonContainerSize(qc);
		items = palloc(sizeof(JsonbValue) * Max(nitems, 1));

		/* Check every item in order (the first bad one is reported) ... */
		for (int pos = 1; pos <= nitems; pos++)
		{
			JsonbValue *item = getIthJsonbValueFromContainer(qc, pos - 1);
			JsonbContainer *ic;
			char	   *field;
			char	   *op;
			char	   *value;

			items[pos - 1] = *item;
			if (item->type != jbvBinary || JsonContainerIsArray(item->val.binary.data))
				Bad(psprintf("query %d must be an object with field, op, type and value", pos));
			ic = item->val.binary.data;
			it = JsonbIteratorInit(ic);
			while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
			{
				if (tok != WJB_KEY)
					continue;
				if (!JsonbKeyIs(&v, "field") && !JsonbKeyIs(&v, "op") && !JsonbKeyIs(&v, "type") &&
					!JsonbKeyIs(&v, "value"))
					Bad(psprintf("Unknown attribute for argument q: %.*s", v.val.string.len, v.val.string.val));
			}
			field = MemberText(ic, "field");
			op = MemberText(ic, "op");
			if (op == NULL)
				op = "";
			value = MemberText(ic, "value");
			if (field == NULL || field[0] == '\0')
				Bad(psprintf("query %d has no field", pos));
			if (value == NULL)
				Bad(psprintf("query %d (field %s) has no value", pos, field));
			if (op[0] != '\0')
				(void) TraitOperator(op);

			for (int k = 0; k < 4; k++)
			{
				if (strcmp(field, single[k]) != 0)
					continue;
				if (k < 2 && op[0] != '\0' && strcmp(op, "eq") != 0)
					Bad(psprintf("Only 'eq' operator is available for field %s", field));
				if (k >= 2)
				{
					/*
					 * A missing op means eq, which these fields do not take
					 * (upstream's rule and message).
					 */
					const char *want = k == 2 ? "ge" : "le";
					const char *given = op[0] ? op : "eq";

					if (strcmp(given, want) != 0)
						Bad(psprintf("Operator %s is not supported. Only `%s' operator is available for field %s",
									 given, want, field));
				}
				if (seen[k])
					Bad(psprintf("field %s is given twice", field));
				seen[k] = true;
				if (k >= 2)
					PankoCheckTimestamp(value, strlen(value), field);
				PushString(&state, field, value);
			}
			if (strcmp(field, "all_tenants") == 0 && admin)
			{
				/*
				 * an admin's all_tenants is never a trait filter; read as
				 * oslo's bool_from_string does
				 */
				char	   *s = value;
				int			len;

				while (*s == ' ')
					s++;
				len = strlen(s);
				while (len > 0 && s[len - 1] == ' ')
					len--;
				if ((len == 1 && (s[0] == '1' || pg_strncasecmp(s, "t", 1) == 0 || pg_strncasecmp(s, "y", 1) == 0)) ||
					(len == 4 && pg_strncasecmp(s, "true", 4) == 0) ||
					(len == 2 && pg_strncasecmp(s, "on", 2) == 0) ||
					(len == 3 && pg_strncasecmp(s, "yes", 3) == 0))
					PankoEnableAllTenants();
			}
		}

		/* ... then build the trait filters in one pass. */
		{
			bool		any = false;

			for (int i = 0; i < nitems; i++)
			{
				JsonbContainer *ic = items[i].val.binary.data;
				char	   *field = MemberText(ic, "field");
				char	   *op = MemberText(ic, "op");
				char	   *type = MemberText(ic, "type");
				bool		skip = (admin && strcmp(field, "all_tenants") == 0);

				for (int k = 0; k < 4; k++)
					if (strcmp(field, single[k]) == 0)
						skip = true;
				if (skip)
					continue;
				if (!any)
				{
					JsonbValue	k;

					k.type = jbvString;
					k.val.string.val = "traits_filter";
					k.val.string.len = 13;
					(void) pushJsonbValue(&state, WJB_KEY, &k);
					(void) pushJsonbValue(&state, WJB_BEGIN_ARRAY, NULL);
					any = true;
				}
				(void) pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
				PushString(&state, "field", field);
				PushString(&state, "op", (op == NULL || op[0] == '\0') ? "eq" : op);
				PushString(&state, "type", type == NULL ? "string" : type);
				PushString(&state, "value", MemberText(ic, "value"));
				(void) pushJsonbValue(&state, WJB_END_OBJECT, NULL);
			}
			if (any)
				(void) pushJsonbValue(&state, WJB_END_ARRAY, NULL);
		}
	}
	jv = pushJsonbValue(&state, WJB_END_OBJECT, NULL);

	initStringInfo(&page);
	appendStringInfoSpaces(&page, VARHDRSZ);
	CallGetEvents(&page, JsonbValueToJsonb(jv), has_limit, limit, sort, marker);
	SET_VARSIZE(page.data, page.len);
	PG_RETURN_TEXT_P((text *) page.data);
}
