/*
 * auth.h
 *		Who is asking: the caller's identity for panko.set_identity, as the
 *		--auth mode establishes it.  The server decides nothing else about
 *		access: row-level security in the database does.
 */
#ifndef PANKO_API_AUTH_H
#define PANKO_API_AUTH_H

#include <stdbool.h>

#include <microhttpd.h>

#include "db.h"
#include "respond.h"

typedef enum auth_mode
{
	AUTH_KEYSTONE_HEADERS,		/* trust X-User-Id, X-Project-Id, X-Roles */
	AUTH_NONE					/* loopback only: everyone is an admin */
} auth_mode;

extern const char *auth_mode_name(auth_mode mode);
extern bool auth_identify(struct MHD_Connection *conn, auth_mode mode,
						  db_identity *id, reply *r);

#endif
