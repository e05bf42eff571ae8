/*
 * http.h
 *		The per-request state and the reply shared by the HTTP layer.
 */
#ifndef PANKO_API_HTTP_H
#define PANKO_API_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <libpq-fe.h>
#include <microhttpd.h>

#include "route.h"
#include "strbuf.h"

/* What the server knows about one request, from request line to log line. */
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
	strbuf		body;
	size_t		body_seen;		/* bytes received, kept or not */
	bool		body_too_large;
} api_request;

/* A response to send: a JSON or text body, or a database result's value. */
typedef struct reply
{
	int			status;
	const char *content_type;	/* NULL: no body */
	char	   *body;			/* malloc'd, or NULL */
	size_t		len;
	PGresult   *res;			/* when set, body points into it */
	const char *allow;			/* Allow header */
	bool		preflight;		/* CORS preflight headers too */
} reply;

/* respond.c */
extern void reply_error(reply *r, int status, const char *fmt,...)
			__attribute__((format(printf, 3, 4)));
extern void reply_body(reply *r, int status, const char *content_type,
					   char *body, size_t len);
extern enum MHD_Result reply_send(struct MHD_Connection *conn,
								  api_request *req, reply *r);

/* negotiate.c */
extern bool accept_allows_json(const char *accept);
extern bool media_type_is_json(const char *content_type);
extern bool host_header_valid(const char *host);
extern bool host_is_loopback(const char *host);
extern bool origin_allowed(const char *origin);

/* handlers.c */
extern void handle_request(struct MHD_Connection *conn, api_request *req,
						   reply *r);

/* http.c */
extern struct MHD_Daemon *http_start(void);
extern int	http_in_flight(void);
extern void http_set_draining(void);
extern bool http_draining(void);

#endif
