/*
 * retention.c
 *		Retention classes: which event types keep a time to live of their
 *		own.  Traces (OSProfiler), rated data (CloudKitty) and metrics
 *		(Kaneda) live in tables of their own inside each partition of
 *		panko.event, so that each class is dropped by whole tables when its
 *		time to live passes, independently of the events'.
 *
 * This file is the only place the rule is written down: ingest calls
 * PankoRetentionClass, SQL calls panko.retention_class() and
 * panko.retention_classes().
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"

#include "panko.h"

PG_FUNCTION_INFO_V1(retention_class);
PG_FUNCTION_INFO_V1(retention_classes);

typedef struct RetentionRule
{
	const char *class;
	const char *prefix;			/* event types that start with it */
} RetentionRule;

/* The default class first; then each class by its event type prefix. */
static const RetentionRule rules[PANKO_RETENTION_CLASSES] = {
	{"event", NULL},
	{"metric", "kaneda."},
	{"rating", "cloudkitty."},
	{"trace", "osprofiler."},
};

/* The class of an event type, as its number (0: the default class). */
int
PankoRetentionClass(const char *event_type, int len)
{
	for (int i = 1; i < PANKO_RETENTION_CLASSES; i++)
	{
		int			plen = strlen(rules[i].prefix);

		if (len >= plen && memcmp(event_type, rules[i].prefix, plen) == 0)
			return i;
	}
	return 0;
}

/* The name of class number i (a static string). */
const char *
PankoRetentionClassName(int i)
{
	Assert(i >= 0 && i < PANKO_RETENTION_CLASSES);
	return rules[i].class;
}

/* panko.retention_class(event_type): the rule, for SQL. */
Datum
retention_class(PG_FUNCTION_ARGS)
{
	text	   *type = PG_GETARG_TEXT_PP(0);

	PG_RETURN_TEXT_P(cstring_to_text(PankoRetentionClassName(PankoRetentionClass(VARDATA_ANY(type),
																								   VARSIZE_ANY_EXHDR(type)))));
}

/* panko.retention_classes(): every class, the default first. */
Datum
retention_classes(PG_FUNCTION_ARGS)
{
	Datum		names[PANKO_RETENTION_CLASSES];

	for (int i = 0; i < PANKO_RETENTION_CLASSES; i++)
		names[i] = CStringGetTextDatum(rules[i].class);
	PG_RETURN_ARRAYTYPE_P(construct_array(names, PANKO_RETENTION_CLASSES, TEXTOID, -1, false, TYPALIGN_INT));
}
