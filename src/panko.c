/*
 * panko.c
 *		Module entry point: settings under the reserved "panko." prefix, and
 *		the expiry worker when loaded from shared_preload_libraries.
 */
#include "postgres.h"

#include <limits.h>

#include "fmgr.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "utils/guc.h"
#include "utils/syscache.h"

#include "panko.h"

PG_MODULE_MAGIC;

int			panko_event_time_to_live = -1;
int			panko_expiry_interval = 300;
int			panko_expiry_max_count = 0;
char	   *panko_expiry_databases = NULL;
int			panko_partition_interval = 86400;
int			panko_partition_premake = 7;

char	   *panko_request_user_id = NULL;
char	   *panko_request_project_id = NULL;
char	   *panko_request_roles = NULL;
bool		panko_request_all_tenants = false;
bool		panko_request_identity = false;

void		_PG_init(void);

/*
 * Settings are superuser-only (PGC_SUSET) so a tenant cannot change expiry
 * or pose as someone else; all are reloadable from the config file.
 */
void
_PG_init(void)
{
	if (IsBinaryUpgrade)
		return;

	DefineCustomIntVariable("panko.event_time_to_live",
							"Seconds an event is kept; -1 keeps events forever.",
							NULL,
							&panko_event_time_to_live,
							-1, -1, INT_MAX,
							PGC_SUSET, GUC_UNIT_S,
							NULL, NULL, NULL);
	DefineCustomIntVariable("panko.expiry_interval",
							"How often the expiry worker runs maintenance.",
							NULL,
							&panko_expiry_interval,
							300, 1, 86400 * 7,
							PGC_SUSET, GUC_UNIT_S,
							NULL, NULL, NULL);
	DefineCustomIntVariable("panko.expiry_max_count",
							"Most events one maintenance run deletes; 0 means no bound.",
							"Whole expired partitions are dropped only when they fit in the bound.",
							&panko_expiry_max_count,
							0, 0, INT_MAX,
							PGC_SUSET, 0,
							NULL, NULL, NULL);
	DefineCustomStringVariable("panko.expiry_databases",
							   "Databases the expiry worker maintains (comma-separated).",
							   "Empty means every database that has the panko extension.",
							   &panko_expiry_databases,
							   "",
							   PGC_SUSET, GUC_LIST_INPUT,
							   NULL, NULL, NULL);
	DefineCustomIntVariable("panko.partition_interval",
							"Width of one partition of panko.event.",
							"Changing it affects partitions created afterwards only.",
							&panko_partition_interval,
							86400, 3600, 86400 * 366,
							PGC_SUSET, GUC_UNIT_S,
							NULL, NULL, NULL);
	DefineCustomIntVariable("panko.partition_premake",
							"Partitions created ahead of the current one.",
							NULL,
							&panko_partition_premake,
							7, 0, 366,
							PGC_SUSET, 0,
							NULL, NULL, NULL);

	DefineCustomStringVariable("panko.request_user_id",
							   "User id of the caller, set by panko.set_identity().",
							   NULL,
							   &panko_request_user_id,
							   "",
							   PGC_SUSET, GUC_NOT_IN_SAMPLE | GUC_DISALLOW_IN_FILE,
							   NULL, NULL, NULL);
	DefineCustomStringVariable("panko.request_project_id",
							   "Project id of the caller, set by panko.set_identity().",
							   NULL,
							   &panko_request_project_id,
							   "",
							   PGC_SUSET, GUC_NOT_IN_SAMPLE | GUC_DISALLOW_IN_FILE,
							   NULL, NULL, NULL);
	DefineCustomStringVariable("panko.request_roles",
							   "Roles of the caller (comma-separated), set by panko.set_identity().",
							   NULL,
							   &panko_request_roles,
							   "",
							   PGC_SUSET, GUC_NOT_IN_SAMPLE | GUC_DISALLOW_IN_FILE,
							   NULL, NULL, NULL);
	DefineCustomBoolVariable("panko.request_all_tenants",
							 "Whether an admin caller asked for all projects' events.",
							 NULL,
							 &panko_request_all_tenants,
							 false,
							 PGC_SUSET, GUC_NOT_IN_SAMPLE | GUC_DISALLOW_IN_FILE,
							 NULL, NULL, NULL);

	DefineCustomBoolVariable("panko.request_identity",
							 "Whether a gateway stated the caller's identity in this transaction.",
							 NULL,
							 &panko_request_identity,
							 false,
							 PGC_SUSET, GUC_NOT_IN_SAMPLE | GUC_DISALLOW_IN_FILE,
							 NULL, NULL, NULL);

	MarkGUCPrefixReserved("panko");

	if (process_shared_preload_libraries_in_progress)
		PankoWorkerRegister();
}

/*
 * Looked up on each call rather than cached: the extension can be dropped
 * and created again within one backend.
 */
Oid
PankoTypeOid(const char *name)
{
	return GetSysCacheOid2(TYPENAMENSP, Anum_pg_type_oid, CStringGetDatum(name),
						   ObjectIdGetDatum(get_namespace_oid("panko", false)));
}
