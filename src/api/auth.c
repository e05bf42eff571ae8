/*
 * auth.c
 *		The caller's identity, as the --auth mode establishes it.
 *
 * The identity is only passed on: panko.set_identity states it in the
 * request's transaction and row-level security decides what it may see.
 * Nothing here grants or refuses access by role.
 */
#include "postgres_fe.h"

#include "auth.h"

#include <string.h>

#include "urlcodec.h"

/* The --auth value of a mode. */
const char *
auth_mode_name(auth_mode mode)
{
	switch (mode)
	{
		case AUTH_KEYSTONE_HEADERS:
			return "keystone-headers";
		case AUTH_NONE:
			return "none";
	}
	return "?";
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
 * none makes everyone an admin over all projects (loopback only).  False
 * when the request is answered with r instead.
 */
bool
auth_identify(struct MHD_Connection *conn, auth_mode mode, db_identity *id,
			  reply *r)
{
	memset(id, 0, sizeof(*id));
	if (mode == AUTH_NONE)
	{
		id->roles = "admin";
		id->all_tenants = true;
		return true;
	}
	return identity_header(conn, "X-User-Id", &id->user_id, r) &&
		identity_header(conn, "X-Project-Id", &id->project_id, r) &&
		identity_header(conn, "X-Roles", &id->roles, r);
}
