/*
 * identity.c
 *		Who is asking, for row-level security.
 *
 * A trusted gateway (a member of panko_api, such as panko-api) states the
 * caller's identity per transaction with panko.set_identity(); it lands in
 * superuser-only settings that nobody else can change.  Without a stated
 * identity, the database role decides: members of panko_admin and
 * panko_auditor see every event, anyone else sees none.  The RLS policy on panko.event asks
 * the caller once per statement (event_visible).
 */
#include "postgres.h"

#include <ctype.h>

#include "access/xact.h"
#include "catalog/pg_authid.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

#include "panko.h"
#include "traits.h"

PG_FUNCTION_INFO_V1(set_identity);
PG_FUNCTION_INFO_V1(caller_mode);
PG_FUNCTION_INFO_V1(caller_scope);
PG_FUNCTION_INFO_V1(caller_has_role);
PG_FUNCTION_INFO_V1(caller_project);
PG_FUNCTION_INFO_V1(enable_all_tenants);
PG_FUNCTION_INFO_V1(event_visible);

typedef enum CallerMode
{
	CALLER_NONE,				/* sees nothing */
	CALLER_MEMBER,				/* own project and user only */
	CALLER_ADMIN,				/* own project, and events with no project */
	CALLER_ALL					/* every event */
} CallerMode;

static const char *const mode_names[] = {"none", "member", "admin", "all"};

/*
 * Bumped by every change of the stated identity (see event_visible): a
 * set_identity, and the end of any transaction or subtransaction, whose
 * rollback takes the settings back without a set_identity.
 */
static uint64 identity_generation = 0;

static void
IdentityXactEnd(XactEvent event, void *arg)
{
	identity_generation++;
}

static void
IdentitySubXactEnd(SubXactEvent event, SubTransactionId mySubid,
				   SubTransactionId parentSubid, void *arg)
{
	identity_generation++;
}

/* Set a transaction-local identity setting, bypassing the SUSET check. */
static void
SetLocal(const char *name, const char *value)
{
	identity_generation++;
	(void) set_config_option(name, value ? value : "", PGC_SUSET, PGC_S_SESSION,
							 GUC_ACTION_LOCAL, true, 0, false);
}

/* Argument n as a C string; set_identity is not STRICT, so NULL stays NULL. */
static char *
TextArgOrNull(FunctionCallInfo fcinfo, int n)
{
	return PG_ARGISNULL(n) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(n));
}

/*
 * panko.set_identity(user_id, project_id, roles, all_tenants): only a
 * gateway may call it (EXECUTE is granted to panko_api alone); the values
 * last until the end of the transaction.
 */
Datum
set_identity(PG_FUNCTION_ARGS)
{
	if (!IsTransactionBlock())
		ereport(WARNING,
				(errcode(ERRCODE_NO_ACTIVE_SQL_TRANSACTION),
				 errmsg("panko.set_identity() outside a transaction block lasts for one statement only"),
				 errhint("Run BEGIN first, then set the identity and query in the same transaction.")));
	SetLocal("panko.request_identity", "on");
	SetLocal("panko.request_user_id", TextArgOrNull(fcinfo, 0));
	SetLocal("panko.request_project_id", TextArgOrNull(fcinfo, 1));
	SetLocal("panko.request_roles", TextArgOrNull(fcinfo, 2));
	SetLocal("panko.request_all_tenants",
			 (!PG_ARGISNULL(3) && PG_GETARG_BOOL(3)) ? "on" : "off");
	PG_RETURN_VOID();
}

/*
 * The next item of a comma-separated list, blanks trimmed; false at the end.
 * Both the caller's roles and panko.admin_roles are such lists.
 */
static bool
NextListItem(const char **p, const char **item, int *len)
{
	const char *end;

	while (**p == ',' || isspace((unsigned char) **p))
		(*p)++;
	if (**p == '\0')
		return false;
	*item = *p;
	while (**p && **p != ',')
		(*p)++;
	end = *p;
	while (end > *item && isspace((unsigned char) end[-1]))
		end--;
	*len = end - *item;
	return true;
}

/* Is role[0..rlen) (case-insensitive) among the request roles? */
static bool
RequestHasRoleN(const char *role, int rlen)
{
	const char *p = panko_request_roles ? panko_request_roles : "";
	const char *item;
	int			len;

	while (NextListItem(&p, &item, &len))
		if (len == rlen && pg_strncasecmp(item, role, rlen) == 0)
			return true;
	return false;
}

static bool
RequestHasRole(const char *role)
{
	return RequestHasRoleN(role, strlen(role));
}

/*
 * Is the caller an admin: does it hold one of the roles named by
 * panko.admin_roles (upstream's context_is_admin rule, "role:admin" unless
 * an operator changed it)?
 */
static bool
RequestIsAdmin(void)
{
	const char *p = panko_admin_roles ? panko_admin_roles : "";
	const char *item;
	int			len;

	while (NextListItem(&p, &item, &len))
		if (RequestHasRoleN(item, len))
			return true;
	return false;
}

/*
 * A gateway stated an identity in this transaction, even an empty one: an
 * anonymous request through a gateway that is also panko_admin must not
 * see everything.
 */
static bool
HasIdentity(void)
{
	return panko_request_identity;
}

/*
 * Has the caller's role the privileges of this role?  The outer user is
 * asked, not the current one: the read functions run as their owner
 * panko_query (SECURITY DEFINER), and the policy must judge the role that
 * called them, including one chosen with SET ROLE.
 */
static bool
CallerHasPrivsOf(const char *rolename)
{
	Oid			role = get_role_oid(rolename, true);

	return OidIsValid(role) && has_privs_of_role(GetOuterUserId(), role);
}

/* Roles that see every tenant when no identity is stated. */
static bool
RoleSeesAllTenants(void)
{
	return CallerHasPrivsOf("panko_admin") || CallerHasPrivsOf("panko_auditor");
}

/* Upstream's RBAC rules, from the stated identity or the database role. */
static CallerMode
ResolveCaller(void)
{
	if (HasIdentity())
	{
		bool		admin = RequestIsAdmin();

		if (admin && panko_request_all_tenants)
			return CALLER_ALL;
		if (admin)
			return CALLER_ADMIN;
		if (panko_request_user_id[0] && panko_request_project_id[0])
			return CALLER_MEMBER;
		return CALLER_NONE;
	}
	return RoleSeesAllTenants() ? CALLER_ALL : CALLER_NONE;
}

/* For get_events: a member's events are found through the GIN index. */
bool
PankoCallerIsMember(void)
{
	return ResolveCaller() == CALLER_MEMBER;
}

/*
 * For get_events: does the caller see every event?  Only then may what a
 * call reads depend on events the caller could not see.
 */
bool
PankoCallerSeesAll(void)
{
	return ResolveCaller() == CALLER_ALL;
}

/* For api_get_events: an admin (of a project, or of all of them)? */
bool
PankoCallerIsAdmin(void)
{
	CallerMode	mode = ResolveCaller();

	return mode == CALLER_ADMIN || mode == CALLER_ALL;
}

/*
 * Upstream's rule for /v2/events, as panko.api_require_identity() says it:
 * a caller without user and project is refused (403), unless it sees
 * everything.
 */
void
PankoRequireIdentity(void)
{
	if (ResolveCaller() == CALLER_ALL)
		return;
	if (!panko_request_user_id || !panko_request_user_id[0] ||
		!panko_request_project_id || !panko_request_project_id[0])
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("The request needs a user and a project (X-User-Id and X-Project-Id)")));
}

/* panko.caller_mode(): what the row-level security policy lets through. */
Datum
caller_mode(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(cstring_to_text(mode_names[ResolveCaller()]));
}

/* A string trait (name, value) for the caller's scope. */
static void
AddStringPair(TraitPair *p, const char *name, const char *value)
{
	memset(p, 0, sizeof(TraitPair));
	p->name = name;
	p->namelen = strlen(name);
	p->type = TRAIT_STRING;
	p->str = value;
	p->strlen = strlen(value);
}

/*
 * The traits an event must contain to be visible: project_id and user_id
 * for a member, project_id for an admin; NULL when containment does not
 * decide (everything or nothing is visible).
 */
Traits *
PankoCallerScope(void)
{
	CallerMode	mode = ResolveCaller();
	TraitPair	pairs[2];
	int			n = 0;

	if (mode == CALLER_MEMBER)
	{
		AddStringPair(&pairs[n++], "project_id", panko_request_project_id);
		AddStringPair(&pairs[n++], "user_id", panko_request_user_id);
	}
	else if (mode == CALLER_ADMIN && panko_request_project_id[0])
		AddStringPair(&pairs[n++], "project_id", panko_request_project_id);
	else
		return NULL;
	return TraitsBuild(pairs, n);
}

/* panko.caller_scope(): the policy's containment test, NULL when it does not decide. */
Datum
caller_scope(PG_FUNCTION_ARGS)
{
	Traits	   *scope = PankoCallerScope();

	if (scope == NULL)
		PG_RETURN_NULL();
	PG_RETURN_POINTER(scope);
}

/* For the HTTP functions: does the stated identity carry this role? */
Datum
caller_has_role(PG_FUNCTION_ARGS)
{
	char	   *role = text_to_cstring(PG_GETARG_TEXT_PP(0));

	if (!HasIdentity())
		PG_RETURN_BOOL(CallerHasPrivsOf("panko_admin"));
	PG_RETURN_BOOL(RequestHasRole(role));
}

/* panko.caller_project(): for the HTTP functions' messages and checks. */
Datum
caller_project(PG_FUNCTION_ARGS)
{
	if (!panko_request_project_id || !panko_request_project_id[0])
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(panko_request_project_id));
}

/*
 * all_tenants=true in a query: honoured for an admin identity only (for
 * anyone else it stays an ordinary trait filter).  Returns whether it took.
 */
bool
PankoEnableAllTenants(void)
{
	CallerMode	mode = ResolveCaller();

	if (mode == CALLER_ALL)
		return true;
	if (mode != CALLER_ADMIN)
		return false;
	SetLocal("panko.request_all_tenants", "on");
	return true;
}

/* panko.enable_all_tenants() */
Datum
enable_all_tenants(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(PankoEnableAllTenants());
}

/* What event_visible keeps for one statement: the caller, resolved once. */
typedef struct VisibleState
{
	uint64		generation;		/* identity_generation it was resolved at */
	Oid			userid;			/* and the role */
	CallerMode	mode;
	Traits	   *scope;			/* NULL when containment does not decide */
	TraitItems	items;			/* of scope */
} VisibleState;

/*
 * panko.event_visible(traits): the row-level security policy of
 * panko.event.  The caller is resolved at the first row of each statement
 * (as the initplans of a policy written in SQL would) and kept in fn_extra,
 * so that a statement over one partition sets up a function call, not a
 * CASE with three subqueries; again if the identity or the role may have
 * changed since (an expression that outlives a statement, as PL/pgSQL
 * keeps its simple ones).  Members see events that carry their project and user;
 * admins their project's events and those without project_id; "all"
 * everything; anyone else nothing.
 */
Datum
event_visible(PG_FUNCTION_ARGS)
{
	VisibleState *state = (VisibleState *) fcinfo->flinfo->fn_extra;
	Traits	   *traits;

	if (state == NULL || state->generation != identity_generation || state->userid != GetUserId())
	{
		static bool callbacks = false;
		MemoryContext old;

		if (!callbacks)
		{
			RegisterXactCallback(IdentityXactEnd, NULL);
			RegisterSubXactCallback(IdentitySubXactEnd, NULL);
			callbacks = true;
		}
		old = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);

		if (state == NULL)
			state = palloc0(sizeof(VisibleState));
		else if (state->scope)
			pfree(state->scope);
		state->generation = identity_generation;
		state->userid = GetUserId();
		state->mode = ResolveCaller();
		state->scope = PankoCallerScope();
		if (state->scope)
			state->items = TraitsItems(state->scope);
		MemoryContextSwitchTo(old);
		fcinfo->flinfo->fn_extra = state;
	}
	switch (state->mode)
	{
		case CALLER_ALL:
			PG_RETURN_BOOL(true);
		case CALLER_MEMBER:
			traits = PG_GETARG_TRAITS_P(0);
			PG_RETURN_BOOL(state->scope != NULL && TraitsHoldAll(traits, &state->items));
		case CALLER_ADMIN:
			traits = PG_GETARG_TRAITS_P(0);
			PG_RETURN_BOOL((state->scope != NULL && TraitsHoldAll(traits, &state->items)) ||
						   TraitsFindName(traits, "project_id", strlen("project_id")) < 0);
		case CALLER_NONE:
			break;
	}
	PG_RETURN_BOOL(false);
}
