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
		case AUTH_KEYSTONE:
			return "keystone";
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
 * --auth keystone: the identity of the validated X-Auth-Token.  Missing,
 * malformed, expired, revoked or unscoped tokens answer 401 with
 * WWW-Authenticate; Keystone unreachable (or failing) answers 503.
 * Identity headers are not read at all.
 */
static bool
keystone_identity(struct MHD_Connection *conn, auth_identity *out, reply *r)
{
	const char *token = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
													"X-Auth-Token");
	char		why[256];

	if (token == NULL || *token == '\0')
	{
		reply_error(r, 401, "The request you have made requires authentication: "
					"no X-Auth-Token");
		r->www_authenticate = ks_www_authenticate();
		return false;
	}
	switch (ks_validate(token, &out->ks, why, sizeof(why)))
	{
		case KS_VALID:
			out->id.user_id = out->ks.user_id;
			out->id.project_id = out->ks.project_id;
			out->id.roles = out->ks.roles;
			return true;
		case KS_INVALID:
			reply_error(r, 401, "The request you have made requires authentication: %s",
						why);
			r->www_authenticate = ks_www_authenticate();
			return false;
		case KS_UNAVAILABLE:
			break;
	}
	reply_error(r, 503, "The identity service is unavailable: %s", why);
	return false;
}

/*
 * The caller's identity.  keystone validates the X-Auth-Token;
 * keystone-headers trusts what Keystone's middleware (or a gateway) put in
 * X-User-Id, X-Project-Id and X-Roles; none makes everyone an admin over
 * all projects (loopback only).  False when the request is answered with r
 * instead.  Release with auth_identity_free.
 */
bool
auth_identify(struct MHD_Connection *conn, auth_mode mode, auth_identity *out,
			  reply *r)
{
	db_identity *id = &out->id;

	memset(out, 0, sizeof(*out));
	switch (mode)
	{
		case AUTH_NONE:
			id->roles = "admin";
			id->all_tenants = true;
			return true;
		case AUTH_KEYSTONE:
			return keystone_identity(conn, out, r);
		case AUTH_KEYSTONE_HEADERS:
			break;
	}
	return identity_header(conn, "X-User-Id", &id->user_id, r) &&
		identity_header(conn, "X-Project-Id", &id->project_id, r) &&
		identity_header(conn, "X-Roles", &id->roles, r);
}

/* Release what an identity owns. */
void
auth_identity_free(auth_identity *a)
{
	ks_identity_free(&a->ks);
	memset(&a->id, 0, sizeof(a->id));
}
