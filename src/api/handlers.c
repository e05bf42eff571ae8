/*
 * handlers.c
 *		What each route does once the request has passed the HTTP checks.
 *
 * Every /v2 route is one call of an extension function; the handlers only
 * collect its arguments (path parameters, the params document, the body)
 * and the caller's identity.  Visibility, filters and RBAC are decided in
 * the database.
 */
#include "http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "db.h"
#include "json.h"
#include "query.h"
#include "urlcodec.h"

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
 * One identity header: NULL when absent or empty, false when it is not
 * valid UTF-8 (the reply is then set).  Repeated identity headers were
 * refused with the other header checks (http.c).
 */
static bool
identity_header(struct MHD_Connection *conn, const char *name,
				const char **out, reply *r)
{
	const char *v = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, name);

	*out = NULL;
	if (v == NULL || *v == '\0')
		return true;
	if (!utf8_valid(v, strlen(v)))
	{
		reply_error(r, 400, "Invalid %s header: invalid UTF-8", name);
		return false;
	}
	*out = v;
	return true;
}

/*
 * The caller's identity.  keystone-headers trusts what Keystone's
 * middleware (or a gateway) put in X-User-Id, X-Project-Id and X-Roles;
 * none makes everyone an admin over all projects (loopback only).
 */
static bool
get_identity(struct MHD_Connection *conn, db_identity *id, reply *r)
{
	memset(id, 0, sizeof(*id));
	if (config.auth == AUTH_NONE)
	{
		id->roles = "admin";
		id->all_tenants = true;
		return true;
	}
	return identity_header(conn, "X-User-Id", &id->user_id, r) &&
		identity_header(conn, "X-Project-Id", &id->project_id, r) &&
		identity_header(conn, "X-Roles", &id->roles, r);
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
call_api(struct MHD_Connection *conn, reply *r, db_stmt stmt,
		 const char *const *params, int nparams, int ok_status)
{
	db_identity id;
	db_result	res;

	if (!get_identity(conn, &id, r))
		return;
	db_call(stmt, &id, params, nparams, client_socket(conn), &res);
	reply_db(r, &res, ok_status);
}

/*
 * The versions document.  Its links use the URL the client reached us at:
 * scheme (X-Forwarded-Proto from a proxy, else http), Host and prefix.
 */
static void
versions(struct MHD_Connection *conn, reply *r)
{
	const char *host = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Host");
	const char *proto = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
													"X-Forwarded-Proto");
	strbuf		base;
	strbuf		sb;

	if (host == NULL)
		host = config.listen;
	else if (!host_header_valid(host))
	{
		reply_error(r, 400, "Invalid Host header");
		return;
	}
	if (proto == NULL || strcmp(proto, "https") != 0)
		proto = "http";
	sb_init(&base);
	sb_printf(&base, "%s://%s%s/v2", proto, host, config.prefix);
	sb_init(&sb);
	sb_puts(&sb, "{\"versions\": {\"values\": [{\"id\": \"v2\", \"links\": [{\"href\": ");
	sb_json_string(&sb, base.data ? base.data : "", base.len);
	sb_puts(&sb, ", \"rel\": \"self\"}, {\"href\": \"https://docs.openstack.org/\", "
			"\"rel\": \"describedby\", \"type\": \"text/html\"}], "
			"\"media-types\": [{\"base\": \"application/json\", "
			"\"type\": \"application/vnd.openstack.telemetry-v2+json\"}, "
			"{\"base\": \"application/xml\", "
			"\"type\": \"application/vnd.openstack.telemetry-v2+xml\"}], "
			"\"status\": \"stable\", \"updated\": \"2013-02-13T00:00:00Z\"}]}}");
	sb_free(&base);
	r->len = sb.len;
	reply_body(r, 200, "application/json", sb_steal(&sb), r->len);
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
get_events(struct MHD_Connection *conn, api_request *req, reply *r)
{
	qs_params	qp;
	strbuf		params;
	char		err[512];
	const char *q = req->query ? req->query : "";
	const char *argv[1];

	if (!qs_parse(q, strlen(q), config.max_filters, &qp, err, sizeof(err)))
	{
		reply_error(r, 400, "%s", err);
		return;
	}
	sb_init(&params);
	if (!params_build(&qp, req->body.data, req->body.len, config.max_limit,
					  config.max_filters, &params, err, sizeof(err)))
	{
		qs_params_free(&qp);
		sb_free(&params);
		reply_error(r, 400, "%s", err);
		return;
	}
	qs_params_free(&qp);
	argv[0] = params.data;
	call_api(conn, r, STMT_GET_EVENTS, argv, 1, 200);
	sb_free(&params);
}

/* POST /v2/events: the body, checked to be JSON, goes to the extension. */
static void
post_events(struct MHD_Connection *conn, api_request *req, reply *r)
{
	json_doc	doc;
	char		err[200];
	const char *argv[1];

	if (!json_scan(req->body.data ? req->body.data : "", req->body.len,
				   &doc, err, sizeof(err)))
	{
		reply_error(r, 400, "Invalid JSON body: %s", err);
		return;
	}
	json_doc_free(&doc);
	argv[0] = req->body.data;
	call_api(conn, r, STMT_POST_EVENTS, argv, 1, 201);
}

/* Dispatch a request that passed the HTTP-level checks. */
void
handle_request(struct MHD_Connection *conn, api_request *req, reply *r)
{
	const char *argv[2] = {req->route.arg[0], req->route.arg[1]};
	bool		post = strcmp(req->method, "POST") == 0;
	char		err[256];

	if (req->route.id != ROUTE_EVENTS || post)
	{
		const char *q = req->query ? req->query : "";

		if (!qs_check(q, strlen(q), err, sizeof(err)))
		{
			reply_error(r, 400, "%s", err);
			return;
		}
	}
	switch (req->route.id)
	{
		case ROUTE_ROOT:
			versions(conn, r);
			return;
		case ROUTE_HEALTH:
			healthcheck(conn, r);
			return;
		case ROUTE_CAPABILITIES:
			call_api(conn, r, STMT_CAPABILITIES, NULL, 0, 200);
			return;
		case ROUTE_EVENTS:
			if (post)
				post_events(conn, req, r);
			else
				get_events(conn, req, r);
			return;
		case ROUTE_EVENT:
			call_api(conn, r, STMT_GET_EVENT, argv, 1, 200);
			return;
		case ROUTE_EVENT_TYPES:
			call_api(conn, r, STMT_EVENT_TYPES, NULL, 0, 200);
			return;
		case ROUTE_TRAIT_TYPES:
			call_api(conn, r, STMT_TRAIT_TYPES, argv, 1, 200);
			return;
		case ROUTE_TRAITS:
			call_api(conn, r, STMT_TRAITS, argv, 2, 200);
			return;
		case ROUTE_EVENT_TYPE:
		case ROUTE_NONE:
			break;
	}
	reply_error(r, 404, "The resource could not be found.");
}
