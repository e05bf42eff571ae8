/*
 * panko.c
 *		Module entry point: settings under the reserved "panko." prefix, and
 *		the expiry worker when loaded from shared_preload_libraries.  Also
 *		what every part of the extension shares: the settings and advisory
 *		locks as SQL sees them, type lookups and kept SPI plans.
 */
#include "postgres.h"

#include <limits.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "fmgr.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "nodes/params.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/guc.h"
#include "utils/syscache.h"

#include "panko.h"

PG_MODULE_MAGIC;

PG_FUNCTION_INFO_V1(advisory_lock);
PG_FUNCTION_INFO_V1(try_advisory_lock);
PG_FUNCTION_INFO_V1(setting_value);

int			panko_event_time_to_live = -1;
int			panko_expiry_interval = 300;
int			panko_expiry_max_count = 0;
char	   *panko_expiry_databases = NULL;
int			panko_partition_interval = 86400;
int			panko_partition_premake = 7;
int			panko_plan_cache_size = 1024;
bool		panko_indexed_scan = true;
static int panko_malloc_trim_threshold = 16384;

char	   *panko_request_user_id = NULL;
char	   *panko_request_project_id = NULL;
char	   *panko_request_roles = NULL;
char	   *panko_admin_roles = NULL;
bool		panko_request_all_tenants = false;
bool		panko_request_identity = false;

/* Read by panko.rating_rollup_covers (current_setting) and rating_rollup_request. */
bool		panko_rating_rollup = true;

void		_PG_init(void);

/*
 * glibc gives the top of the heap back to the kernel once more than
 * M_TRIM_THRESHOLD of it is free (128 kB to start, then twice the largest
 * block it mapped), and maps blocks above M_MMAP_THRESHOLD on their own.
 * A call that returns a page of API JSON (100 events are about 100 kB,
 * copied three times on the way out) frees more than that at its end, so
 * the next call touched fresh pages again: page faults were 37% of the
 * backend's time for a page of 100.  A fixed threshold keeps up to that
 * much free memory in the backend instead; -1 leaves glibc's own rule.
 */
static void
ApplyMallocTrimThreshold(int newval, void *extra)
{
#ifdef __GLIBC__
	if (newval >= 0)
	{
		size_t		trim = (size_t) newval * 1024;

		(void) mallopt(M_TRIM_THRESHOLD, (int) trim);
		(void) mallopt(M_MMAP_THRESHOLD, (int) Max(Min(trim / 2, (size_t) 32 * 1024 * 1024), (size_t) 128 * 1024));
	}
#endif
}

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
	DefineCustomIntVariable("panko.plan_cache_size",
							"Most statements get_events keeps planned in one backend.",
							"One per partition and shape of query (about 40 kB each); past it, the least recently used half is forgotten.",
							&panko_plan_cache_size,
							1024, 16, 1048576,
							PGC_SUSET, 0,
							NULL, NULL, NULL);

	DefineCustomBoolVariable("panko.indexed_scan",
							 "Whether get_events reads a partition that a rare trait filter selects through its GIN index directly, without a plan.",
							 "Only partitions under panko.event's own row-level security policy are read so; the answers are the same either way.",
							 &panko_indexed_scan,
							 true,
							 PGC_USERSET, 0,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("panko.malloc_trim_threshold",
							"Free heap memory a backend that loaded panko keeps instead of returning it to the kernel (glibc).",
							"Applied when a backend (or the postmaster, with shared_preload_libraries) loads panko, and on reload; -1: panko leaves glibc's thresholds as they are.",
							&panko_malloc_trim_threshold,
							16384, -1, 1048576,
							PGC_SIGHUP, GUC_UNIT_KB,
							NULL, ApplyMallocTrimThreshold, NULL);

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
	DefineCustomStringVariable("panko.admin_roles",
							   "Role names (comma-separated, case-insensitive) that make a caller an admin.",
							   "Upstream's context_is_admin rule; the row-level security policy reads it, so psql and HTTP agree.",
							   &panko_admin_roles,
							   "admin",
							   PGC_SUSET, GUC_LIST_INPUT,
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

	/* Anyone may turn it off: it chooses a way to an answer, not the answer. */
	DefineCustomBoolVariable("panko.rating_rollup",
							 "Whether CloudKitty's whole-day totals and retrieve's counts read the daily rollup of rated data.",
							 "Off: they read the data points themselves, with the same results.",
							 &panko_rating_rollup,
							 true,
							 PGC_USERSET, 0,
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

/*
 * Take one of panko's transaction-level advisory locks (PANKO_LOCK_*),
 * shared or exclusive, waiting for it or not; whether it was taken.
 */
bool
PankoAdvisoryLock(int32 subkey, bool shared, bool wait)
{
	Datum		key1 = Int32GetDatum(PANKO_LOCK_CLASS);
	Datum		key2 = Int32GetDatum(subkey);

	if (wait)
	{
		if (shared)
			DirectFunctionCall2(pg_advisory_xact_lock_shared_int4, key1, key2);
		else
			DirectFunctionCall2(pg_advisory_xact_lock_int4, key1, key2);
		return true;
	}
	return DatumGetBool(shared
						? DirectFunctionCall2(pg_try_advisory_xact_lock_shared_int4, key1, key2)
						: DirectFunctionCall2(pg_try_advisory_xact_lock_int4, key1, key2));
}

/*
 * The sub-key of a lock named in SQL, so that SQL names the locks and the
 * keys stay in panko.h.
 */
static int32
LockSubkey(text *what)
{
	char	   *name = text_to_cstring(what);

	if (strcmp(name, "maintenance") == 0)
		return PANKO_LOCK_MAINTENANCE;
	if (strcmp(name, "partition") == 0)
		return PANKO_LOCK_PARTITION;
	if (strcmp(name, "maintenance_run") == 0)
		return PANKO_LOCK_MAINTENANCE_RUN;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("unknown panko lock \"%s\"", name),
			 errhint("The locks are maintenance, partition and maintenance_run.")));
	return 0;					/* keep the compiler quiet */
}

/* panko.advisory_lock(what, shared): wait for the lock, to the end of the transaction. */
Datum
advisory_lock(PG_FUNCTION_ARGS)
{
	PankoAdvisoryLock(LockSubkey(PG_GETARG_TEXT_PP(0)), PG_GETARG_BOOL(1), true);
	PG_RETURN_VOID();
}

/* panko.try_advisory_lock(what, shared): take the lock if it is free. */
Datum
try_advisory_lock(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(PankoAdvisoryLock(LockSubkey(PG_GETARG_TEXT_PP(0)), PG_GETARG_BOOL(1), false));
}

/*
 * panko.setting_value(name): an integer setting of panko's, in its base
 * unit (seconds for durations), as this library has it: SQL reads the
 * settings through here, so their defaults are written only in _PG_init.
 * Calling it loads the library, so the value is never a placeholder's.
 */
Datum
setting_value(PG_FUNCTION_ARGS)
{
	static const struct
	{
		const char *name;
		const int  *value;
	}			settings[] = {
		{"panko.event_time_to_live", &panko_event_time_to_live},
		{"panko.expiry_interval", &panko_expiry_interval},
		{"panko.expiry_max_count", &panko_expiry_max_count},
		{"panko.partition_interval", &panko_partition_interval},
		{"panko.partition_premake", &panko_partition_premake},
		{"panko.plan_cache_size", &panko_plan_cache_size},
	};
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));

	for (int i = 0; i < (int) lengthof(settings); i++)
	{
		if (strcmp(settings[i].name, name) == 0)
			PG_RETURN_INT64((int64) *settings[i].value);
	}
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_OBJECT),
			 errmsg("\"%s\" is not an integer setting of panko", name)));
	PG_RETURN_NULL();			/* keep the compiler quiet */
}

/* Connect to SPI or fail: the C functions that run SQL start here. */
void
PankoSPIConnect(void)
{
	if (SPI_connect() != SPI_OK_CONNECT)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not connect to SPI")));
}

/* Parameters (nulls as SPI takes them: 'n' or ' ') for SPI_execute_plan_extended. */
ParamListInfo
PankoParams(Datum *values, const char *nulls, Oid *types, int n)
{
	ParamListInfo params = makeParamList(n);

	for (int i = 0; i < n; i++)
	{
		ParamExternData *prm = &params->params[i];

		prm->value = values[i];
		prm->isnull = (nulls != NULL && nulls[i] == 'n');
		prm->pflags = PARAM_FLAG_CONST;
		prm->ptype = types[i];
	}
	params->numParams = n;
	return params;
}

/*
 * Run a kept plan, read only, for at most tcount rows (0: all) into a
 * receiver of the caller's; what names the statement in the error.
 */
void
PankoRunPlan(SPIPlanPtr plan, ParamListInfo params, uint64 tcount,
			 DestReceiver *dest, const char *what)
{
	SPIExecuteOptions options;
	int			rc;

	memset(&options, 0, sizeof(options));
	options.params = params;
	options.read_only = true;
	options.tcount = tcount;
	options.dest = dest;
	rc = SPI_execute_plan_extended(plan, &options);
	/* (a receiver of our own makes SPI report a utility statement) */
	if (rc != SPI_OK_SELECT && rc != SPI_OK_UTILITY)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("panko: %s query failed: %s", what, SPI_result_code_string(rc))));
}

/*
 * Prepare a statement once and keep its plan for the life of the backend
 * in *slot: planning costs more than running most of panko's statements.
 * Statements are schema-qualified throughout.
 */
SPIPlanPtr
PankoKeepPlan(SPIPlanPtr *slot, const char *sql, int nargs, Oid *argtypes,
			  int cursor_options)
{
	if (*slot == NULL)
	{
		SPIPlanPtr	plan = SPI_prepare_cursor(sql, nargs, argtypes, cursor_options);

		if (plan == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("could not prepare \"%s\": %s",
							sql, SPI_result_code_string(SPI_result))));
		SPI_keepplan(plan);
		*slot = plan;
	}
	return *slot;
}
