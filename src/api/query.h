/*
 * query.h
 *		GET /v2/events parameters: query string and JSON body to one
 *		params document for panko.api_get_events.
 */
#ifndef PANKO_API_QUERY_H
#define PANKO_API_QUERY_H

#include <stdbool.h>
#include <stddef.h>

#include "strbuf.h"

/* One top-level key of the params document, its value as JSON text. */
typedef struct qs_param
{
	char	   *key;
	char	   *json;
} qs_param;

typedef struct qs_params
{
	qs_param   *items;
	int			n;
} qs_params;

extern bool qs_check(const char *qs, size_t len, char *err, size_t errlen);
extern bool qs_parse(const char *qs, size_t len, long max_limit,
					 qs_params *out, char *err, size_t errlen);
extern void qs_params_free(qs_params *qp);
extern bool params_build(const qs_params *qp, const char *body,
						 size_t body_len, long max_limit, strbuf *out,
						 char *err, size_t errlen);
extern bool limit_needs_cap(const char *s, size_t n, long max_limit);

#endif
