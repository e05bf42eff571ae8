/*
 * event_json.c
 *		An event as Panko's API writes it, built as JSON text in one pass:
 *		the HTTP server sends what the database returns.
 */
#include "postgres.h"

#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

#include "traits.h"
#include "isotime.h"
#include "panko.h"
#include "event_store.h"

PG_FUNCTION_INFO_V1(event_json);
PG_FUNCTION_INFO_V1(iso_timestamp);
PG_FUNCTION_INFO_V1(parse_timestamp);

/*
 * One event as Panko's API writes it, appended to buf:
 * {"message_id", "event_type", "generated", "traits", "raw"}; raw is {}
 * when NULL, as upstream returned it.  event_json() and the walk of
 * get_events write events through here, so SQL and HTTP answers match.
 */
void
PankoAppendEventJson(StringInfo buf, const char *message_id, int idlen,
					 const char *event_type, int typelen, TimestampTz generated,
					 const Traits *traits, const struct varlena *raw)
{
	APPEND_LITERAL(buf, "{\"message_id\": ");
	AppendJsonString(buf, message_id, idlen);
	APPEND_LITERAL(buf, ", \"event_type\": ");
	AppendJsonString(buf, event_type, typelen);
	APPEND_LITERAL(buf, ", \"generated\": \"");
	PankoAppendTimestamp(buf, (Timestamp) generated);
	APPEND_LITERAL(buf, "\", \"traits\": ");
	TraitsAppendJson(buf, traits);
	APPEND_LITERAL(buf, ", \"raw\": ");
	if (raw == NULL)
		APPEND_LITERAL(buf, "{}");
	else
	{
		const Jsonb *jb = (const Jsonb *) raw;

		AppendJsonb(buf, (JsonbContainer *) &jb->root);
	}
	appendStringInfoChar(buf, '}');
}

/* panko.event_json(message_id, event_type, generated, traits, raw) */
Datum
event_json(PG_FUNCTION_ARGS)
{
	StringInfoData buf;
	text	   *mid;
	text	   *etype;

	/* Not STRICT because raw may be NULL; an event without the rest is not */
	for (int i = 0; i < 4; i++)
		if (PG_ARGISNULL(i))
			PG_RETURN_NULL();
	mid = PG_GETARG_TEXT_PP(0);
	etype = PG_GETARG_TEXT_PP(1);

	initStringInfo(&buf);
	PankoAppendEventJson(&buf, VARDATA_ANY(mid), VARSIZE_ANY_EXHDR(mid),
						 VARDATA_ANY(etype), VARSIZE_ANY_EXHDR(etype),
						 PG_GETARG_TIMESTAMPTZ(2), PG_GETARG_TRAITS_P(3),
						 PG_ARGISNULL(4) ? NULL : (struct varlena *) PG_GETARG_JSONB_P(4));
	PG_RETURN_TEXT_P(cstring_to_text_with_len(buf.data, buf.len));
}

/* A timestamptz as the API writes it: UTC, no zone, microseconds if any. */
Datum
iso_timestamp(PG_FUNCTION_ARGS)
{
	StringInfoData buf;

	initStringInfo(&buf);
	PankoAppendTimestamp(&buf, (Timestamp) PG_GETARG_TIMESTAMPTZ(0));
	PG_RETURN_TEXT_P(cstring_to_text_with_len(buf.data, buf.len));
}

/*
 * The ISO 8601 rules of the API (no zone is UTC, an offset is converted, a
 * bare date is midnight) with an error that names the parameter: for
 * panko.parse_timestamp(text, what) and api_get_events' time bounds.
 */
void
PankoCheckTimestamp(const char *value, int len, const char *what)
{
	Timestamp	ts;
	const char *problem;

	if (!PankoParseTimestamp(value, len, &ts, &problem))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_DATETIME_FORMAT),
				 errmsg("Invalid %s \"%.*s\": %s", what,
						PankoQuoteLen(value, len), value, problem)));
}

/* panko.parse_timestamp(text, what) */
Datum
parse_timestamp(PG_FUNCTION_ARGS)
{
	text	   *t;
	char	   *what;
	Timestamp	ts;
	const char *problem;

	/* Not STRICT because what may be NULL; no value parses to no time */
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	t = PG_GETARG_TEXT_PP(0);
	what = PG_ARGISNULL(1) ? "timestamp" : text_to_cstring(PG_GETARG_TEXT_PP(1));

	if (!PankoParseTimestamp(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t), &ts, &problem))
		PankoCheckTimestamp(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t), what);
	PG_RETURN_TIMESTAMPTZ((TimestampTz) ts);
}
