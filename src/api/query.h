/*
 * query.h
 *		GET /v2/events parameters: query string and JSON body to one
 *		params document for panko.api_get_events.
 */
#ifndef PANKO_API_QUERY_H
#define PANKO_API_QUERY_H

#include <stdbool.h>
#include <stddef.h>

#include "pqexpbuffer.h"

/* limit when none (or 0) is given, as upstream */
#define LIMIT_DEFAULT 100
/* the largest limit the database takes (an int4) */
#define LIMIT_MAX 2147483647L

/* The query string's parameters, before a JSON body is merged in. */
typedef struct qs_params
{
	char	   *q;				/* the q list (or a bare q=) as JSON, or NULL */
	char	   *sort;			/* JSON list of strings, or NULL */
	char	   *marker;			/* JSON string, or NULL */
	char	   *limit;			/* decoded text, or NULL */
	char	   *unknown;		/* the first unknown parameter name, or NULL */
} qs_params;

/* What a limit is, as the one parser reads it. */
typedef enum limit_status
{
	LIMIT_OK,
	LIMIT_NEGATIVE,				/* "Limit must be positive" */
	LIMIT_INVALID				/* "... unable to convert to int" */
} limit_status;

extern bool qs_check(const char *qs, size_t len, char *err, size_t errlen);
extern bool qs_parse(const char *qs, size_t len, int max_filters,
					 qs_params *out, char *err, size_t errlen);
extern void qs_params_free(qs_params *qp);
extern bool params_build(const qs_params *qp, const char *body,
						 size_t body_len, long max_limit, int max_filters,
						 PQExpBuffer out, char *err, size_t errlen);
extern limit_status limit_parse(const char *s, size_t n, long *value);
extern long limit_effective(long given, long max_limit);

#endif
