/*
 * handlers.c
 *		What each route does once the request has passed the HTTP checks.
 *
 * Every /v2 route is one call of an extension function; the handlers only
 * collect its arguments (path parameters, the params document, the body)
 * and the caller's identity (auth.c).  Visibility, filters and RBAC are decided in
 * the database.
 */
#include "postgres_fe.h"

#include "handlers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "json.h"
#include "negotiate.h"
#include "pqexpbuffer.h"
#include "query.h"

/* Turn a db_call outcome into the reply (success status given). */
static void
reply_db(reply *r, db_result *res, int ok_status)
{
	if (res->status == 200)
	{
		r->status = ok_status;
		r->content_type = "application/json";
		r->res = res->res;
		r->body = (char *) res->value;
		r->len = res->len;
		return;
	}
	reply_error(r, res->status, "%s", res->message);
}

/*
 * The client's socket, so that its query can be cancelled when it goes
 * away; -1 when libmicrohttpd does not say.
 */
static int
client_socket(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);

	if (ci == NULL || ci->connect_fd == MHD_INVALID_SOCKET)
		return -1;
	return ci->connect_fd;
}

/* Call one API function with the caller's identity. */
static void
call_api(struct MHD_Connection *conn, const db_identity *who, reply *r,
		 db_stmt stmt, const char *const *params, int nparams, int ok_status)
{
	db_result	res;

	db_call(stmt, who, params, nparams, client_socket(conn), &res);
	reply_db(r, &res, ok_status);
}

/*
 * The versions document.  Its links use the URL the client reached us at:
 * scheme (X-Forwarded-Proto from a proxy, else http), Host and prefix.
 */
static void
versions(struct MHD_Connection *conn, const handler_settings *hs, reply *r)
{
	const char *host = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Host");
	const char *proto = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
													"X-Forwarded-Proto");
	PQExpBufferData base;
	PQExpBufferData sb;

	if (host == NULL)
		host = hs->listen;
	else if (!host_header_valid(host))
	{
		reply_error(r, 400, "Invalid Host header");
		return;
	}
	if (proto == NULL || strcmp(proto, "https") != 0)
		proto = "http";
	initPQExpBuffer(&base);
	appendPQExpBuffer(&base, "%s://%s%s/v2", proto, host, hs->prefix);
	initPQExpBuffer(&sb);
	appendPQExpBufferStr(&sb, "{\"versions\": {\"values\": [{\"id\": \"v2\", \"links\": [{\"href\": ");
	/* Host was checked to be printable ASCII, the prefix too */
	json_quote(&sb, base.data, base.len);
	appendPQExpBufferStr(&sb, ", \"rel\": \"self\"}, {\"href\": \"https://docs.openstack.org/\", "
			"\"rel\": \"describedby\", \"type\": \"text/html\"}], "
			"\"media-types\": [{\"base\": \"application/json\", "
			"\"type\": \"application/vnd.openstack.telemetry-v2+json\"}, "
			"{\"base\": \"application/xml\", "
			"\"type\": \"application/vnd.openstack.telemetry-v2+xml\"}], "
			"\"status\": \"stable\", \"updated\": \"2013-02-13T00:00:00Z\"}]}}");
	termPQExpBuffer(&base);
	if (PQExpBufferBroken(&sb))
	{
		termPQExpBuffer(&sb);
		reply_error(r, 503, "Out of memory");
		return;
	}
	reply_body(r, 200, "application/json", sb.data, sb.len);
}

/* /healthcheck: OK once the database answers SELECT 1. */
static void
healthcheck(struct MHD_Connection *conn, reply *r)
{
	db_result	res;
	char	   *body;

	db_call(STMT_HEALTH, NULL, NULL, 0, client_socket(conn), &res);
	PQclear(res.res);
	body = strdup(res.status == 200 ? "OK" : "DATABASE UNAVAILABLE");
	reply_body(r, res.status == 200 ? 200 : 503, "text/plain", body,
			   body ? strlen(body) : 0);
}

/* GET /v2/events: query string and/or JSON body -> params document. */
static void
get_events(struct MHD_Connection *conn, api_request *req,
		   const handler_settings *hs, const db_identity *who, reply *r)
{
	qs_params	qp;
	PQExpBufferData params;
	char		err[512];
	const char *q = req->query ? req->query : "";
	const char *argv[1];

	if (!qs_parse(q, strlen(q), hs->max_filters, &qp, err, sizeof(err)))
	{
		reply_error(r, 400, "%s", err);
		return;
	}
	initPQExpBuffer(&params);
	if (!params_build(&qp, req->body.data, req->body.len, hs->max_limit,
					  hs->max_filters, &params, err, sizeof(err)))
	{
		qs_params_free(&qp);
		termPQExpBuffer(&params);
		reply_error(r, 400, "%s", err);
		return;
	}
	qs_params_free(&qp);
	argv[0] = params.data;
	call_api(conn, who, r, STMT_GET_EVENTS, argv, 1, 200);
	termPQExpBuffer(&params);
}

/* POST /v2/events: the body, checked to be JSON, goes to the extension. */
static void
post_events(struct MHD_Connection *conn, api_request *req,
			const db_identity *who, reply *r)
{
	json_doc	doc;
	char		err[JSON_ERROR_TEXT_LENGTH + 32];
	const char *argv[1];

	if (!json_check(req->body.data, req->body.len, &doc, false, err,
					sizeof(err)))
	{
		reply_error(r, 400, "Invalid JSON body: %s", err);
		return;
	}
	json_doc_free(&doc);
	/* the text as received goes to the database, which reads it as jsonb */
	argv[0] = req->body.data;
	call_api(conn, who, r, STMT_POST_EVENTS, argv, 1, 201);
}

/* The routes that are one call with the path parameters as arguments. */
static const struct
{
	db_stmt		stmt;
	int			nargs;
}			route_calls[] =
{
	[ROUTE_CAPABILITIES] = {STMT_CAPABILITIES, 0},
	[ROUTE_EVENT] = {STMT_GET_EVENT, 1},
	[ROUTE_EVENT_TYPES] = {STMT_EVENT_TYPES, 0},
	[ROUTE_TRAIT_TYPES] = {STMT_TRAIT_TYPES, 1},
	[ROUTE_TRAITS] = {STMT_TRAITS, 2},
};

/* Dispatch a request that passed the HTTP-level checks. */
void
handle_request(struct MHD_Connection *conn, api_request *req, reply *r,
			   const handler_settings *hs)
{
	const char *argv[2] = {req->route.arg[0], req->route.arg[1]};
	bool		post = strcmp(req->method, "POST") == 0;
	char		err[256];
	auth_identity who = {0};

	/* who is asking comes first: / and /healthcheck need no identity */
	if (req->route.id != ROUTE_ROOT && req->route.id != ROUTE_HEALTH &&
		!auth_identify(conn, hs->auth, &who, r))
		return;
	if (req->route.id != ROUTE_EVENTS || post)
	{
		const char *q = req->query ? req->query : "";

		if (!qs_check(q, strlen(q), err, sizeof(err)))
		{
			reply_error(r, 400, "%s", err);
			goto done;
		}
	}
	switch (req->route.id)
	{
		case ROUTE_ROOT:
			versions(conn, hs, r);
			return;
		case ROUTE_HEALTH:
			healthcheck(conn, r);
			return;
		case ROUTE_EVENTS:
			if (post)
				post_events(conn, req, &who.id, r);
			else
				get_events(conn, req, hs, &who.id, r);
			break;
		case ROUTE_CAPABILITIES:
		case ROUTE_EVENT:
		case ROUTE_EVENT_TYPES:
		case ROUTE_TRAIT_TYPES:
		case ROUTE_TRAITS:
			/* one function, its arguments the decoded path parameters */
			call_api(conn, &who.id, r, route_calls[req->route.id].stmt, argv,
					 route_calls[req->route.id].nargs, 200);
			break;
		case ROUTE_EVENT_TYPE:
		case ROUTE_NONE:
			reply_error(r, 404, "The resource could not be found.");
			break;
	}
done:
	auth_identity_free(&who);
}
