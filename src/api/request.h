/*
 * request.h
 *		What the server knows about one request, from request line to log
 *		line: filled by http.c, read by the handlers.
 */
#ifndef PANKO_API_REQUEST_H
#define PANKO_API_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "pqexpbuffer.h"
#include "route.h"

typedef struct api_request
{
	struct timespec start;
	char		request_id[48];	/* req-<uuid4> */
	char		method[16];
	char	   *target;			/* raw request target as received */
	size_t		path_len;		/* target[0..path_len) is the path */
	const char *query;			/* after '?', or NULL */
	bool		started;		/* the first handler call was seen */
	bool		is_head;
	bool		http10;			/* HTTP/1.0 (may omit Host) */
	int			status;			/* status queued, for the log */
	route_match route;
	PQExpBufferData body;
	size_t		body_seen;		/* bytes received, kept or not */
	bool		body_too_large;
} api_request;

#endif
