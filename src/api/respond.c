/*
 * respond.c
 *		Building and queueing responses with the headers every one carries.
 */
#include "postgres_fe.h"

#include "respond.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "log.h"
#include "negotiate.h"
#include "pqexpbuffer.h"
#include "urlcodec.h"

#define CORS_ALLOW_HEADERS \
	"Content-Type, X-Auth-Token, X-Identity-Status, X-Roles, " \
	"X-Service-Catalog, X-User-Id, X-Project-Id, X-Tenant-Id, " \
	"X-Openstack-Request-Id"

/*
 * A Panko error body.  faultcode is "Client" for 4xx and "Server" for 5xx.
 * A long message is cut between characters, never inside one, and bytes
 * that are not UTF-8 (from headers quoted in a message) become '?', so the
 * body is always valid JSON in UTF-8.
 */
void
reply_error(reply *r, int status, const char *fmt,...)
{
	char		msg[1024];
	va_list		ap;
	PQExpBufferData sb;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	utf8_clip(msg);
	utf8_sanitize(msg);
	initPQExpBuffer(&sb);
	appendPQExpBuffer(&sb, "{\"error_message\": {\"faultcode\": \"%s\", \"faultstring\": ",
					  status >= 500 ? "Server" : "Client");
	json_quote(&sb, msg, strlen(msg));
	appendPQExpBufferStr(&sb, ", \"debuginfo\": null}}");
	if (PQExpBufferBroken(&sb))
	{
		/* out of memory: the status alone */
		termPQExpBuffer(&sb);
		reply_body(r, status, NULL, NULL, 0);
		return;
	}
	reply_body(r, status, "application/json", sb.data, sb.len);
}

/* A reply with a malloc'd body (ownership passes to the reply). */
void
reply_body(reply *r, int status, const char *content_type, char *body,
		   size_t len)
{
	free(r->body);
	r->status = status;
	r->content_type = content_type;
	r->body = body;
	r->len = body ? len : 0;
}

/* Free callback for a response whose body lives in a PGresult. */
static void
free_result(void *cls)
{
	PQclear((PGresult *) cls);
}

/* CORS headers, only for a configured Origin. */
static void
add_cors(struct MHD_Connection *conn, struct MHD_Response *resp,
		 const reply *r, const reply_opts *opts)
{
	const char *origin = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
													 "Origin");

	if (!origin_allowed(origin, opts->cors_origins, opts->ncors))
		return;
	MHD_add_response_header(resp, "Access-Control-Allow-Origin", origin);
	MHD_add_response_header(resp, "Vary", "Origin");
	if (r->preflight)
	{
		MHD_add_response_header(resp, "Access-Control-Allow-Methods",
								r->allow ? r->allow : "GET, HEAD, OPTIONS");
		MHD_add_response_header(resp, "Access-Control-Allow-Headers",
								CORS_ALLOW_HEADERS);
		MHD_add_response_header(resp, "Access-Control-Max-Age", "3600");
	}
	else
		MHD_add_response_header(resp, "Access-Control-Expose-Headers",
								"X-Openstack-Request-Id");
}

/*
 * Queue the reply with the request id, Allow, WWW-Authenticate, CORS and
 * (when opts->close) Connection: close headers.  Releases everything the
 * reply owns; r->status is the status queued.
 */
enum MHD_Result
reply_send(struct MHD_Connection *conn, const char *request_id, reply *r,
		   const reply_opts *opts)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;

	if (r->status == 0)
		reply_error(r, 500, "Internal error: no reply was produced");
	if (r->res && !utf8_valid(r->body, r->len))
	{
		/* client_encoding is forced to UTF8; a SQL_ASCII database can still
		 * hold other bytes, and a response is never anything but UTF-8 */
		log_msg("the database returned text that is not valid UTF-8");
		PQclear(r->res);
		r->res = NULL;
		r->body = NULL;
		reply_error(r, 500, "The database returned text that is not valid UTF-8");
	}
	if (r->res)
		resp = MHD_create_response_from_buffer_with_free_callback_cls(
			r->len, r->body, free_result, r->res);
	else
		resp = MHD_create_response_from_buffer(r->len, r->body ? r->body : (void *) "",
											   r->body ? MHD_RESPMEM_MUST_FREE
											   : MHD_RESPMEM_PERSISTENT);
	if (resp == NULL)
	{
		if (r->res)
			PQclear(r->res);
		else
			free(r->body);
		log_msg("cannot create a response");
		return MHD_NO;
	}
	r->body = NULL;
	r->res = NULL;
	if (r->content_type)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
								r->content_type);
	MHD_add_response_header(resp, "x-openstack-request-id", request_id);
	if (r->allow)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, r->allow);
	if (r->www_authenticate)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
								r->www_authenticate);
	add_cors(conn, resp, r, opts);
	if (opts->close)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
	ret = MHD_queue_response(conn, (unsigned) r->status, resp);
	MHD_destroy_response(resp);
	return ret;
}
