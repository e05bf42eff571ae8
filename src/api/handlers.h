/*
 * handlers.h
 *		What each route does once a request has passed the HTTP checks.
 */
#ifndef PANKO_API_HANDLERS_H
#define PANKO_API_HANDLERS_H

#include <microhttpd.h>

#include "auth.h"
#include "request.h"
#include "respond.h"

/* The settings the handlers read. */
typedef struct handler_settings
{
	auth_mode	auth;
	const char *listen;			/* for the versions document without Host */
	const char *prefix;			/* "" or "/path" */
	long		max_limit;		/* 0 = no cap */
	int			max_filters;
} handler_settings;

extern void handle_request(struct MHD_Connection *conn, api_request *req,
						   reply *r, const handler_settings *hs);

#endif
