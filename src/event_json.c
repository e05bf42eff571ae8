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

PG_FUNCTION_INFO_V1(event_json);
PG_FUNCTION_INFO_V1(iso_timestamp);
PG_FUNCTION_INFO_V1(parse_timestamp);

/*
 * panko.event_json(message_id, event_type, generated, traits, raw):
 * {"message_id", "event_type", "generated", "traits", "raw"}; raw is {}
 * when NULL, as upstream returned it.
 */
Datum
event_json(PG_FUNCTION_ARGS)
{
	StringInfoData buf;
	text	   *mid = PG_GETARG_TEXT_PP(0);
	text	   *etype = PG_GETARG_TEXT_PP(1);
	TimestampTz generated = PG_GETARG_TIMESTAMPTZ(2);
	Traits	   *traits = PG_GETARG_TRAITS_P(3);

	initStringInfo(&buf);
	appendStringInfoString(&buf, "{\"message_id\": ");
	AppendJsonString(&buf, VARDATA_ANY(mid), VARSIZE_ANY_EXHDR(mid));
	appendStringInfoString(&buf, ", \"event_type\": ");
	AppendJsonString(&buf, VARDATA_ANY(etype), VARSIZE_ANY_EXHDR(etype));
	appendStringInfoString(&buf, ", \"generated\": \"");
	PankoAppendTimestamp(&buf, (Timestamp) generated);
	appendStringInfoString(&buf, "\", \"traits\": ");
	TraitsAppendJson(&buf, traits);
	appendStringInfoString(&buf, ", \"raw\": ");
	if (PG_ARGISNULL(4))
		appendStringInfoString(&buf, "{}");
	else
	{
		Jsonb	   *raw = PG_GETARG_JSONB_P(4);

		(void) JsonbToCString(&buf, &raw->root, VARSIZE(raw));
	}
	appendStringInfoChar(&buf, '}');
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
 * panko.parse_timestamp(text, what): the ISO 8601 rules of the API (no zone
 * is UTC, an offset is converted, a bare date is midnight) with an error
 * that names the parameter.
 */
Datum
parse_timestamp(PG_FUNCTION_ARGS)
{
	text	   *t = PG_GETARG_TEXT_PP(0);
	char	   *what = PG_ARGISNULL(1) ? "timestamp" : text_to_cstring(PG_GETARG_TEXT_PP(1));
	Timestamp	ts;
	const char *problem;

	if (!PankoParseTimestamp(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t), &ts, &problem))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_DATETIME_FORMAT),
				 errmsg("Invalid %s \"%s\": %s", what, text_to_cstring(t), problem)));
	PG_RETURN_TIMESTAMPTZ((TimestampTz) ts);
}
