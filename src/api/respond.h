/*
 * respond.h
 *		Building a reply and queueing it with the headers every one carries.
 */
#ifndef PANKO_API_RESPOND_H
#define PANKO_API_RESPOND_H

#include <stdbool.h>
#include <stddef.h>

#include <libpq-fe.h>
#include <microhttpd.h>

/* A response to send: a JSON or text body, or a database result's value. */
typedef struct reply
{
	int			status;
	const char *content_type;	/* NULL: no body */
	char	   *body;			/* malloc'd, or NULL */
	size_t		len;
	PGresult   *res;			/* when set, body points into it */
	const char *allow;			/* Allow header */
	const char *www_authenticate;	/* WWW-Authenticate header (static) */
	bool		preflight;		/* CORS preflight headers too */
} reply;

/* What reply_send needs to know beyond the reply. */
typedef struct reply_opts
{
	const char *const *cors_origins;	/* allowed Origin values ("*": any) */
	int			ncors;
	bool		close;			/* ask the client to close (draining) */
} reply_opts;

extern void reply_error(reply *r, int status, const char *fmt,...)
			__attribute__((format(printf, 3, 4)));
extern void reply_body(reply *r, int status, const char *content_type,
					   char *body, size_t len);
extern enum MHD_Result reply_send(struct MHD_Connection *conn,
								  const char *request_id, reply *r,
								  const reply_opts *opts);

#endif
