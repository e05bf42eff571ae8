/*
 * http.c
 *		libmicrohttpd glue: request lifecycle, HTTP-level checks, the daemon.
 *
 * A request's state is created by the URI log callback (the only place
 * that sees the raw, undecoded request target), checked when its headers
 * are complete, fed its body, dispatched when the body is complete, and
 * logged and freed by the completion callback.
 */
#include "postgres_fe.h"

#include "http.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include "handlers.h"
#include "log.h"
#include "negotiate.h"
#include "request.h"
#include "respond.h"
#include "route.h"
#include "urlcodec.h"

/* Headers plus request line must fit in this per-connection pool. */
#define CONNECTION_MEMORY_LIMIT (64 * 1024)

static atomic_int in_flight;
static atomic_bool draining;
static const http_settings *settings;	/* set once, by http_start */

/* Requests between their request line and their completion. */
int
http_in_flight(void)
{
	return atomic_load(&in_flight);
}

/* From now on, ask clients to close their connections. */
void
http_set_draining(void)
{
	atomic_store(&draining, true);
}

/* Queue a reply; while draining, clients are asked to close. */
static enum MHD_Result
send_reply(struct MHD_Connection *conn, api_request *req, reply *r)
{
	reply_opts	opts = {
		.cors_origins = settings->cors_origins,
		.ncors = settings->ncors,
		.close = atomic_load(&draining),
	};
	enum MHD_Result ret = reply_send(conn, req->request_id, r, &opts);

	req->status = r->status;
	return ret;
}

/* req-<uuid4>, from the kernel's CSPRNG, buffered per thread. */
static void
make_request_id(char *buf, size_t len)
{
	static __thread unsigned char pool[512];
	static __thread size_t avail;
	unsigned char b[16];

	if (avail < 16)
	{
		if (getrandom(pool, sizeof(pool), 0) != (ssize_t) sizeof(pool))
		{
			/* practically impossible; still produce a well-formed id */
			for (size_t i = 0; i < sizeof(pool); i++)
				pool[i] = (unsigned char) rand();
		}
		avail = sizeof(pool);
	}
	avail -= 16;
	memcpy(b, pool + avail, 16);
	b[6] = (b[6] & 0x0f) | 0x40;
	b[8] = (b[8] & 0x3f) | 0x80;
	snprintf(buf, len,
			 "req-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
			 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9],
			 b[10], b[11], b[12], b[13], b[14], b[15]);
}

/* Start a request's state from its raw target (before MHD unescapes it). */
static void *
on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
	api_request *req = calloc(1, sizeof(api_request));
	const char *q;

	if (req == NULL)
		return NULL;
	clock_gettime(CLOCK_MONOTONIC, &req->start);
	make_request_id(req->request_id, sizeof(req->request_id));
	req->target = strdup(uri ? uri : "");
	if (req->target == NULL)
	{
		free(req);
		return NULL;
	}
	q = strchr(req->target, '?');
	req->path_len = q ? (size_t) (q - req->target) : strlen(req->target);
	req->query = q ? q + 1 : NULL;
	initPQExpBuffer(&req->body);
	atomic_fetch_add(&in_flight, 1);
	return req;
}

/* Log and free a finished (or abandoned) request. */
static void
on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
			 enum MHD_RequestTerminationCode toe)
{
	api_request *req = *req_cls;
	struct timespec now;
	double		ms;
	char		saved;

	if (req == NULL)
		return;
	*req_cls = NULL;
	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (double) (now.tv_sec - req->start.tv_sec) * 1000.0 +
		(double) (now.tv_nsec - req->start.tv_nsec) / 1e6;
	saved = req->target[req->path_len];
	req->target[req->path_len] = '\0';
	log_request(req->method[0] ? req->method : "-", req->target,
				req->status, ms, req->request_id);
	req->target[req->path_len] = saved;
	route_match_free(&req->route);
	termPQExpBuffer(&req->body);
	free(req->target);
	free(req);
	atomic_fetch_sub(&in_flight, 1);
}

/* A request target with control characters or spaces is refused. */
static bool
target_clean(const char *t)
{
	for (const unsigned char *p = (const unsigned char *) t; *p; p++)
		if (*p <= ' ' || *p == 0x7f)
			return false;
	return true;
}

/*
 * Headers that must appear at most once, and what was seen of them.  The
 * identity headers (the first N_IDENTITY_HEADERS) are not even looked at
 * when the identity comes from a token.
 */
static const char *const single_headers[] = {
	"X-User-Id", "X-Project-Id", "X-Roles", "Host", "X-Auth-Token"
};
#define N_SINGLE_HEADERS (sizeof(single_headers) / sizeof(single_headers[0]))
#define N_IDENTITY_HEADERS 3

typedef struct header_count
{
	int			n[N_SINGLE_HEADERS];
} header_count;

/* Count one request header if it is one of single_headers. */
static enum MHD_Result
count_header(void *cls, enum MHD_ValueKind kind, const char *key,
			 const char *value)
{
	header_count *hc = cls;

	for (size_t i = 0; key && i < N_SINGLE_HEADERS; i++)
		if (strcasecmp(key, single_headers[i]) == 0)
			hc->n[i]++;
	return MHD_YES;
}

/*
 * The name of an identity, Host or X-Auth-Token header given more than
 * once, or NULL.
 * Only the first copy would be read, and a proxy that appends its header
 * instead of replacing the client's would let the client's copy win.
 */
static const char *
repeated_header(struct MHD_Connection *conn)
{
	header_count hc;

	memset(&hc, 0, sizeof(hc));
	MHD_get_connection_values(conn, MHD_HEADER_KIND, count_header, &hc);
	for (size_t i = settings->identity_headers ? 0 : N_IDENTITY_HEADERS;
		 i < N_SINGLE_HEADERS; i++)
		if (hc.n[i] > 1)
			return single_headers[i];
	return NULL;
}

/*
 * With --auth none, answer only requests addressed to this machine by a
 * loopback name: a web page that rebinds its own DNS name to 127.0.0.1
 * would otherwise read and write every event through the visitor's browser.
 * HTTP/1.0 clients may leave Host out; browsers always send it.
 */
static bool
host_allowed(struct MHD_Connection *conn, api_request *req)
{
	const char *host = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
												   MHD_HTTP_HEADER_HOST);

	if (!settings->loopback_hosts_only)
		return true;
	if (host == NULL)
		return req->http10;
	return host_is_loopback(host);
}

/* Is a body announced (Content-Length > 0 or chunked)? */
static bool
announced_body_length(struct MHD_Connection *conn, unsigned long long *len)
{
	const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
												 MHD_HTTP_HEADER_CONTENT_LENGTH);

	*len = 0;
	if (cl == NULL)
		return false;
	*len = strtoull(cl, NULL, 10);
	return true;
}

/*
 * Checks that need only the request line and headers.  Returns true when
 * a reply was decided (an error, or an OPTIONS answer).
 */
static bool
check_headers(struct MHD_Connection *conn, api_request *req, reply *r)
{
	char		err[256];
	unsigned	methods;
	bool		is_get,
				is_post;
	unsigned long long clen;
	const char *repeated;

	if (req->target[0] != '/' || !target_clean(req->target))
	{
		reply_error(r, 400, "Invalid request target");
		return true;
	}
	if ((repeated = repeated_header(conn)) != NULL)
	{
		reply_error(r, 400, "The %s header was given several times", repeated);
		return true;
	}
	if (!host_allowed(conn, req))
	{
		reply_error(r, 400, "With --auth none, only requests addressed to "
					"localhost, 127.0.0.0/8 or [::1] are answered");
		return true;
	}
	switch (route_find(req->target, req->path_len, settings->prefix,
					   &req->route, err, sizeof(err)))
	{
		case ROUTE_OK:
			break;
		case ROUTE_BAD_PATH:
			reply_error(r, 400, "%s", err);
			return true;
		case ROUTE_NOT_FOUND:
			reply_error(r, 404, "The resource could not be found.");
			return true;
	}
	methods = route_methods(req->route.id);
	if (strcmp(req->method, "OPTIONS") == 0)
	{
		const char *acrm = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
													   "Access-Control-Request-Method");

		reply_body(r, 200, NULL, NULL, 0);
		r->allow = route_allow(req->route.id);
		r->preflight = (acrm != NULL);
		return true;
	}
	is_get = strcmp(req->method, "GET") == 0 || req->is_head;
	is_post = strcmp(req->method, "POST") == 0;
	if (!((is_get && (methods & ROUTE_GET)) || (is_post && (methods & ROUTE_POST))))
	{
		reply_error(r, 405, "The method %s is not allowed for this resource.",
					req->method);
		r->allow = route_allow(req->route.id);
		return true;
	}
	if (req->route.id != ROUTE_HEALTH &&
		!accept_allows_json(MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
														MHD_HTTP_HEADER_ACCEPT)))
	{
		reply_error(r, 406, "The requested media type is not acceptable: "
					"this API answers application/json");
		return true;
	}
	if (announced_body_length(conn, &clen) && clen > settings->max_body)
	{
		reply_error(r, 413, "Request body is larger than the limit of %zu bytes",
					settings->max_body);
		return true;
	}
	if (is_post)
	{
		const char *ct = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
													 MHD_HTTP_HEADER_CONTENT_TYPE);

		if (!media_type_is_json(ct))
		{
			reply_error(r, 415, "Unknown mimetype: %s", ct ? ct : "None");
			return true;
		}
	}
	return false;
}

/* Checks that need the whole body, then the route's handler. */
static void
finish_request(struct MHD_Connection *conn, api_request *req, reply *r)
{
	if (req->body_too_large)
	{
		reply_error(r, 413, "Request body is larger than the limit of %zu bytes",
					settings->max_body);
		return;
	}
	if (PQExpBufferBroken(&req->body))
	{
		reply_error(r, 503, "Out of memory");
		return;
	}
	if (strcmp(req->method, "POST") != 0 && req->body.len > 0)
	{
		const char *ct = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
													 MHD_HTTP_HEADER_CONTENT_TYPE);

		if (!media_type_is_json(ct))
		{
			reply_error(r, 415, "Unknown mimetype: %s", ct ? ct : "None");
			return;
		}
	}
	handle_request(conn, req, r, settings->handlers);
}

/* The access handler: called for headers, each body chunk, and the end. */
static enum MHD_Result
on_access(void *cls, struct MHD_Connection *conn, const char *url,
		  const char *method, const char *version, const char *upload_data,
		  size_t *upload_data_size, void **req_cls)
{
	api_request *req = *req_cls;
	reply		r;

	if (req == NULL)
		return MHD_NO;			/* out of memory in on_uri */
	memset(&r, 0, sizeof(r));
	if (!req->started)
	{
		req->started = true;
		snprintf(req->method, sizeof(req->method), "%s", method);
		utf8_clip(req->method);
		req->is_head = strcmp(method, "HEAD") == 0;
		req->http10 = version && strcmp(version, MHD_HTTP_VERSION_1_0) == 0;
		if (check_headers(conn, req, &r))
			return send_reply(conn, req, &r);
		return MHD_YES;
	}
	if (*upload_data_size > 0)
	{
		size_t		n = *upload_data_size;

		*upload_data_size = 0;
		req->body_seen += n;
		if (req->body_seen > settings->max_body)
		{
			/* keep reading to answer 413, but give up on a flood */
			req->body_too_large = true;
			termPQExpBuffer(&req->body);
			return req->body_seen / 4 > settings->max_body ? MHD_NO : MHD_YES;
		}
		appendBinaryPQExpBuffer(&req->body, upload_data, n);
		return MHD_YES;
	}
	finish_request(conn, req, &r);
	return send_reply(conn, req, &r);
}

/* libmicrohttpd's own messages go to our log. */
static void
on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char		msg[512];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	log_msg("libmicrohttpd: %s", msg);
}

/* Leave the path as received; panko-api decodes it strictly itself. */
static size_t
no_unescape(void *cls, struct MHD_Connection *conn, char *uri)
{
	return strlen(uri);
}

/*
 * Start the daemon: thread pool, epoll, one DB connection per thread.  hs
 * is kept by reference and must outlive the daemon.
 */
struct MHD_Daemon *
http_start(const http_settings *hs)
{
	unsigned	flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
		MHD_USE_ITC | MHD_USE_ERROR_LOG;

	settings = hs;
	if (hs->addr->sa_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	return MHD_start_daemon(flags, 0, NULL, NULL, on_access, NULL,
							MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
							MHD_OPTION_SOCK_ADDR, hs->addr,
							MHD_OPTION_THREAD_POOL_SIZE, (unsigned) hs->threads,
							MHD_OPTION_CONNECTION_TIMEOUT, hs->timeout,
							MHD_OPTION_CONNECTION_MEMORY_LIMIT,
							(size_t) CONNECTION_MEMORY_LIMIT,
							MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u,
							MHD_OPTION_URI_LOG_CALLBACK, on_uri, NULL,
							MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
							MHD_OPTION_UNESCAPE_CALLBACK, no_unescape, NULL,
							MHD_OPTION_STRICT_FOR_CLIENT, 1,
							MHD_OPTION_END);
}
