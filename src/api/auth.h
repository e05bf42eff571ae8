/*
 * auth.h
 *		Who is asking: the caller's identity for panko.set_identity, as the
 *		--auth mode establishes it (for keystone: from the validated token).
 *		The server decides nothing else about access: row-level security in
 *		the database does.
 */
#ifndef PANKO_API_AUTH_H
#define PANKO_API_AUTH_H

#include <stdbool.h>

#include <microhttpd.h>

#include "db.h"
#include "keystone.h"
#include "respond.h"

typedef enum auth_mode
{
	AUTH_KEYSTONE_HEADERS,		/* trust X-User-Id, X-Project-Id, X-Roles */
	AUTH_KEYSTONE,				/* validate X-Auth-Token with Keystone */
	AUTH_NONE					/* loopback only: everyone is an admin */
} auth_mode;

/* An identity for one request, and what it owns. */
typedef struct auth_identity
{
	db_identity id;				/* what panko.set_identity gets */
	ks_identity ks;				/* the strings, with --auth keystone */
} auth_identity;

extern const char *auth_mode_name(auth_mode mode);
extern bool auth_identify(struct MHD_Connection *conn, auth_mode mode,
						  auth_identity *out, reply *r);
extern void auth_identity_free(auth_identity *a);

#endif
