/*
 * trace_notify.c
 *		panko.trace_notify(jsonb): OSProfiler's notifications (one object, or
 *		an array of them) checked, turned into events and stored through
 *		record_events' own path (PankoStoreEvents, event_input.c).
 *
 * The panko:// driver calls it once per notification, one transaction each,
 * so what it costs on top of the store is what a traced service waits for:
 * the events are built here as Jsonb, with no SQL of its own.
 *
 * A notification -start or -stop (OSProfiler's rule: a name ending in
 * "stop" stops a span) becomes an event of type osprofiler.<kind>,
 * message_id osprofiler:<kind>:<trace_id>, string traits base_id, trace_id,
 * parent_id, name, project, service, host (from info), and etype on a
 * -stop whose info carries one; raw is the notification.  The earliest
 * notification of the call for each base_id (by timestamp, then position)
 * also becomes the trace's entry, osprofiler.trace, message_id
 * osprofiler:trace:<base_id>, with the same traits but etype.
 *
 * Privileges: the SQL function is SECURITY DEFINER, owned by the extension's
 * owner and granted to panko_writer only, exactly as record_events is: a
 * writer can store through it nothing record_events would not store.
 */
#include "postgres.h"

#include <ctype.h>

#include "catalog/pg_collation.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"
#include "utils/varlena.h"

#include "event_store.h"

PG_FUNCTION_INFO_V1(trace_notify);

#define TRACE_FIELD_MAXLEN	200		/* ids, name and timestamp, in bytes */
#define TRACE_NFIELDS		5
#define TRACE_NTRAITS		8		/* the fields, project, service, host, etype */

static const char *const trace_fields[TRACE_NFIELDS] =
{"base_id", "trace_id", "parent_id", "name", "timestamp"};

enum
{
	F_BASE_ID, F_TRACE_ID, F_PARENT_ID, F_NAME, F_TIMESTAMP
};

typedef struct TraitText
{
	const char *name;
	char	   *value;			/* NULL: no such trait */
	int			len;
} TraitText;

typedef struct Notification
{
	JsonbValue	raw;			/* the notification (jbvBinary) */
	JsonbValue	field[TRACE_NFIELDS];	/* checked: non-empty strings */
	bool		stop;
	TraitText	traits[TRACE_NTRAITS];	/* the last is etype */
	bool		entry;			/* also the trace's entry */
} Notification;

typedef struct EntryChoice
{
	char		base_id[TRACE_FIELD_MAXLEN + 1];
	int			index;
} EntryChoice;

/* The text ->> gives for a JSON value; false for JSON null. */
static bool
ValueText(JsonbValue *v, char **text, int *len)
{
	switch (v->type)
	{
		case jbvNull:
			return false;
		case jbvString:
			*text = v->val.string.val;
			*len = v->val.string.len;
			return true;
		case jbvNumeric:
			*text = DatumGetCString(DirectFunctionCall1(numeric_out,
														NumericGetDatum(v->val.numeric)));
			break;
		case jbvBool:
			*text = v->val.boolean ? "true" : "false";
			break;
		default:
			{
				StringInfoData buf;

				initStringInfo(&buf);
				(void) JsonbToCString(&buf, v->val.binary.data, v->val.binary.len);
				*text = buf.data;
			}
			break;
	}
	*len = strlen(*text);
	return true;
}

/* A member of an object, or NULL. */
static JsonbValue *
Member(JsonbContainer *obj, const char *key)
{
	return getKeyJsonValueFromContainer(obj, key, strlen(key), NULL);
}

/* One trait from a member of obj (absent or JSON null: none). */
static void
TraitFrom(TraitText *t, const char *name, JsonbContainer *obj, const char *key)
{
	JsonbValue *v = obj ? Member(obj, key) : NULL;

	t->name = name;
	t->value = NULL;
	if (v && !ValueText(v, &t->value, &t->len))
		t->value = NULL;
}

/* " (notification <pos> of <total>)" for an array, else nothing. */
static const char *
Which(bool is_array, int pos, int total)
{
	return is_array ? psprintf(" (notification %d of %d)", pos, total) : "";
}

/*
 * Check one notification and read what its events need; a bad one fails
 * the call before anything is stored.
 */
static void
ReadNotification(JsonbValue *item, Notification *n, bool is_array, int pos, int total)
{
	JsonbContainer *obj;
	JsonbValue *info;
	JsonbContainer *info_obj = NULL;

	if (item == NULL || item->type != jbvBinary || !JsonContainerIsObject(item->val.binary.data))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("An OSProfiler notification must be a JSON object%s", Which(is_array, pos, total)),
				 errhint("Pass one notification as a JSON object, or a JSON array of them.")));
	obj = item->val.binary.data;
	n->raw = *item;

	for (int f = 0; f < TRACE_NFIELDS; f++)
	{
		JsonbValue *v = Member(obj, trace_fields[f]);

		if (v == NULL || v->type != jbvString || v->val.string.len == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("OSProfiler notification without %s%s", trace_fields[f], Which(is_array, pos, total)),
					 errdetail("Every notification carries base_id, trace_id, parent_id, name and timestamp as non-empty strings.")));
		if (v->val.string.len > TRACE_FIELD_MAXLEN)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("The %s of an OSProfiler notification is longer than %d bytes%s",
							trace_fields[f], TRACE_FIELD_MAXLEN, Which(is_array, pos, total)),
					 errdetail("It is %d bytes long.", v->val.string.len)));
		n->field[f] = *v;
	}

	info = Member(obj, "info");
	if (info)
	{
		if (info->type != jbvBinary || !JsonContainerIsObject(info->val.binary.data))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("The info of an OSProfiler notification must be a JSON object%s",
							Which(is_array, pos, total)),
					 errhint("Leave info out, or make it a JSON object.")));
		info_obj = info->val.binary.data;
	}

	n->stop = n->field[F_NAME].val.string.len >= 4 &&
		memcmp(n->field[F_NAME].val.string.val + n->field[F_NAME].val.string.len - 4, "stop", 4) == 0;
	for (int f = 0; f < F_TIMESTAMP; f++)
	{
		n->traits[f].name = trace_fields[f];
		n->traits[f].value = n->field[f].val.string.val;
		n->traits[f].len = n->field[f].val.string.len;
	}
	TraitFrom(&n->traits[4], "project", obj, "project");
	TraitFrom(&n->traits[5], "service", obj, "service");
	TraitFrom(&n->traits[6], "host", info_obj, "host");
	n->traits[7].name = "etype";
	n->traits[7].value = NULL;
	if (n->stop)
		TraitFrom(&n->traits[7], "etype", info_obj, "etype");
}

/* Push a string, as a key or a value. */
static void
PushString(JsonbParseState **st, JsonbIteratorToken tok, const char *s, int len)
{
	JsonbValue	v;

	v.type = jbvString;
	v.val.string.val = (char *) s;
	v.val.string.len = len;
	pushJsonbValue(st, tok, &v);
}

/* Push key: "value". */
static void
PushMember(JsonbParseState **st, const char *key, const char *s, int len)
{
	PushString(st, WJB_KEY, key, strlen(key));
	PushString(st, WJB_VALUE, s, len);
}

/* Push one event object of the batch given to the store. */
static void
PushEvent(JsonbParseState **st, Notification *n, const char *kind, const JsonbValue *id, bool etype)
{
	char	   *message_id = psprintf("osprofiler:%s:%.*s", kind, id->val.string.len, id->val.string.val);
	char	   *event_type = psprintf("osprofiler.%s", kind);

	pushJsonbValue(st, WJB_BEGIN_OBJECT, NULL);
	PushMember(st, "message_id", message_id, strlen(message_id));
	PushMember(st, "event_type", event_type, strlen(event_type));
	PushMember(st, "generated", n->field[F_TIMESTAMP].val.string.val, n->field[F_TIMESTAMP].val.string.len);
	PushString(st, WJB_KEY, "traits", 6);
	pushJsonbValue(st, WJB_BEGIN_ARRAY, NULL);
	for (int t = 0; t < TRACE_NTRAITS; t++)
	{
		if (n->traits[t].value == NULL || (t == TRACE_NTRAITS - 1 && !etype))
			continue;
		pushJsonbValue(st, WJB_BEGIN_OBJECT, NULL);
		PushMember(st, "name", n->traits[t].name, strlen(n->traits[t].name));
		PushMember(st, "type", "string", 6);
		PushMember(st, "value", n->traits[t].value, n->traits[t].len);
		pushJsonbValue(st, WJB_END_OBJECT, NULL);
	}
	pushJsonbValue(st, WJB_END_ARRAY, NULL);
	PushString(st, WJB_KEY, "raw", 3);
	pushJsonbValue(st, WJB_VALUE, &n->raw);
	pushJsonbValue(st, WJB_END_OBJECT, NULL);
}

/*
 * Mark each trace's entry: its earliest notification by timestamp (text
 * order, as ORDER BY would compare them), then by position.
 */
static void
ChooseEntries(Notification *ns, int total)
{
	HASHCTL		ctl;
	HTAB	   *seen;

	ctl.keysize = TRACE_FIELD_MAXLEN + 1;
	ctl.entrysize = sizeof(EntryChoice);
	ctl.hcxt = CurrentMemoryContext;
	seen = hash_create("panko trace entries", Max(total, 16), &ctl, HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	for (int i = 0; i < total; i++)
	{
		JsonbValue *b = &ns[i].field[F_BASE_ID];
		char	   *key = pnstrdup(b->val.string.val, b->val.string.len);
		bool		found;
		EntryChoice *e = hash_search(seen, key, HASH_ENTER, &found);

		if (found)
		{
			JsonbValue *mine = &ns[i].field[F_TIMESTAMP];
			JsonbValue *best = &ns[e->index].field[F_TIMESTAMP];

			if (varstr_cmp(mine->val.string.val, mine->val.string.len,
						   best->val.string.val, best->val.string.len, DEFAULT_COLLATION_OID) >= 0)
				continue;
			ns[e->index].entry = false;
		}
		e->index = i;
		ns[i].entry = true;
	}
	hash_destroy(seen);
}

/* The store's reason, in the words of a notification (timestamp, not generated). */
static char *
RejectionText(const char *detail, int *event)
{
	const char *p = detail;
	StringInfoData buf;

	*event = 0;
	if (strncmp(p, "event ", 6) == 0 && isdigit((unsigned char) p[6]))
	{
		const char *q = p + 6;
		int			k = 0;

		while (isdigit((unsigned char) *q))
			k = k * 10 + (*q++ - '0');
		if (strncmp(q, ": ", 2) == 0)
		{
			*event = k;
			p = q + 2;
		}
	}
	initStringInfo(&buf);
	for (;;)
	{
		const char *hit = strstr(p, " in generated");

		if (hit == NULL)
			break;
		appendBinaryStringInfo(&buf, p, hit - p);
		appendStringInfoString(&buf, " in timestamp");
		p = hit + strlen(" in generated");
	}
	appendStringInfoString(&buf, p);
	return buf.data;
}

/*
 * panko.trace_notify(notifications): how many notifications were new
 * (copies already stored are ignored); a bad one fails the call.
 */
Datum
trace_notify(PG_FUNCTION_ARGS)
{
	Jsonb	   *batch = PG_ARGISNULL(0) ? NULL : PG_GETARG_JSONB_P(0);
	bool		is_array = batch && JB_ROOT_IS_ARRAY(batch) && !JB_ROOT_IS_SCALAR(batch);
	int			total = is_array ? JB_ROOT_COUNT(batch) : 1;
	Notification *ns = palloc0(sizeof(Notification) * Max(total, 1));
	JsonbParseState *st = NULL;
	JsonbValue *events;
	PankoEventOutcome *outcomes;
	int			nevents;
	int			stored = total;

	for (int i = 0; i < total; i++)
	{
		JsonbValue *item;
		JsonbValue	root;

		if (is_array)
			item = getIthJsonbValueFromContainer(&batch->root, i);
		else if (batch && JB_ROOT_IS_OBJECT(batch))
		{
			root.type = jbvBinary;
			root.val.binary.data = &batch->root;
			root.val.binary.len = VARSIZE(batch) - VARHDRSZ;
			item = &root;
		}
		else
			item = NULL;
		ReadNotification(item, &ns[i], is_array, i + 1, total);
		CHECK_FOR_INTERRUPTS();
	}
	if (total == 0)
		PG_RETURN_INT32(0);
	ChooseEntries(ns, total);

	/* The notifications, then the entries, in the order of their notifications. */
	pushJsonbValue(&st, WJB_BEGIN_ARRAY, NULL);
	for (int i = 0; i < total; i++)
		PushEvent(&st, &ns[i], ns[i].stop ? "stop" : "start", &ns[i].field[F_TRACE_ID], true);
	for (int i = 0; i < total; i++)
		if (ns[i].entry)
			PushEvent(&st, &ns[i], "trace", &ns[i].field[F_BASE_ID], false);
	events = pushJsonbValue(&st, WJB_END_ARRAY, NULL);

	outcomes = PankoStoreEvents(JsonbValueToJsonb(events), &nevents);
	for (int i = 0; i < nevents; i++)
	{
		if (outcomes[i].status == NULL)
			continue;
		if (strcmp(outcomes[i].status, "rejected") == 0)
		{
			int			k;
			char	   *why = RejectionText(outcomes[i].detail, &k);

			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("OSProfiler notification rejected: %s%s", why,
							is_array && k >= 1 && k <= total ? Which(true, k, total) : ""),
					 errdetail("Nothing of this call is stored.")));
		}
		if (i < total)
			stored--;
	}
	PG_RETURN_INT32(stored);
}
