/*
 * http.h
 *		The libmicrohttpd daemon: request lifecycle and HTTP-level checks.
 */
#ifndef PANKO_API_HTTP_H
#define PANKO_API_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "handlers.h"

/* What the daemon needs; kept by reference until it stops. */
typedef struct http_settings
{
	const struct sockaddr *addr;	/* where to listen */
	int			threads;
	unsigned	timeout;		/* seconds */
	size_t		max_body;
	const char *prefix;			/* "" or "/path" */
	bool		loopback_hosts_only;	/* --auth none: Host must be loopback */
	bool		identity_headers;	/* X-User-Id, ... are read (not keystone) */
	const char *const *cors_origins;
	int			ncors;
	const handler_settings *handlers;
} http_settings;

extern struct MHD_Daemon *http_start(const http_settings *hs);
extern int	http_in_flight(void);
extern void http_set_draining(void);

#endif
