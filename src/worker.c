/*
 * worker.c
 *		The expiry worker: a "panko launcher" that wakes every
 *		panko.expiry_interval seconds and starts one short-lived
 *		"panko maintenance" worker per database, which calls
 *		panko.run_maintenance() and logs one line with what it did.
 *
 * The launcher connects to no database (like the logical replication
 * launcher): it only reads the shared catalog pg_database, so it needs no
 * "postgres" database and never blocks DROP DATABASE.  Which databases it
 * maintains comes from panko.expiry_databases: a comma-separated list of
 * names (taken verbatim, double quotes allowed), or '' for every database
 * that accepts connections and is not a template; a maintenance worker that
 * finds no panko extension in its database exits quietly.
 *
 * All the work runs in the dynamic workers, so a failure there is only a
 * line in the log and the next round goes on.  The SQL function takes an
 * advisory lock, so the worker, pg_cron and manual calls never overlap.
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/value.h"
#include "parser/parse_func.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/varlena.h"

#include "panko.h"

/* Seconds before the postmaster restarts a launcher that exited non-zero. */
#define PANKO_LAUNCHER_RESTART_SECONDS 10

#define PANKO_LAUNCHER_TYPE "panko launcher"
#define PANKO_MAINTENANCE_TYPE "panko maintenance"

PGDLLEXPORT void panko_launcher_main(Datum main_arg);
PGDLLEXPORT void panko_maintenance_main(Datum main_arg);

/* A database the launcher will maintain this round. */
typedef struct PankoDatabase
{
	Oid			oid;
	char		name[NAMEDATALEN];
} PankoDatabase;

/* Set after a config reload so a bad setting is reported once, not each round. */
static bool setting_reported = false;

/*
 * What the launcher and the maintenance workers have in common: panko's
 * entry point function, started once recovery is over, with a database
 * connection (the launcher uses none, but reads pg_database).
 */
static void
InitWorker(BackgroundWorker *worker, const char *function, const char *type,
		   int restart_time)
{
	memset(worker, 0, sizeof(*worker));
	worker->bgw_flags = BGWORKER_SHMEM_ACCESS |
		BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker->bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker->bgw_restart_time = restart_time;
	strlcpy(worker->bgw_library_name, "panko", BGW_MAXLEN);
	strlcpy(worker->bgw_function_name, function, BGW_MAXLEN);
	strlcpy(worker->bgw_name, type, BGW_MAXLEN);
	strlcpy(worker->bgw_type, type, BGW_MAXLEN);
}

/*
 * Register the launcher at server start.  Called from _PG_init only while
 * shared_preload_libraries is processed; pg_upgrade must not run it.
 */
void
PankoWorkerRegister(void)
{
	BackgroundWorker worker;

	if (IsBinaryUpgrade)
		return;

	InitWorker(&worker, "panko_launcher_main", PANKO_LAUNCHER_TYPE,
			   PANKO_LAUNCHER_RESTART_SECONDS);
	worker.bgw_main_arg = (Datum) 0;
	worker.bgw_notify_pid = 0;
	RegisterBackgroundWorker(&worker);
}

/*
 * Split panko.expiry_databases into a list of names (NIL = every database).
 * A malformed list maintains nothing rather than guessing what was meant.
 */
static bool
ParseDatabaseSetting(List **names)
{
	char	   *raw;

	*names = NIL;
	if (panko_expiry_databases == NULL || panko_expiry_databases[0] == '\0')
		return true;

	raw = pstrdup(panko_expiry_databases);
	if (!SplitGUCList(raw, ',', names))
	{
		if (!setting_reported)
			ereport(WARNING,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid list syntax in parameter \"panko.expiry_databases\""),
					 errdetail("No database is maintained until it is fixed.")));
		setting_reported = true;
		*names = NIL;
		return false;
	}
	return true;
}

/* Whether a pg_database row is one a worker can connect to. */
static bool
DatabaseIsConnectable(Form_pg_database db)
{
	if (!db->datallowconn)
		return false;
#ifdef DATCONNLIMIT_INVALID_DB
	if (db->datconnlimit == DATCONNLIMIT_INVALID_DB)
		return false;			/* a DROP DATABASE was interrupted */
#endif
	return true;
}

/* Whether name appears in the list of configured names. */
static bool
NameInList(List *names, const char *name)
{
	ListCell   *lc;

	foreach(lc, names)
	{
		if (strcmp((const char *) lfirst(lc), name) == 0)
			return true;
	}
	return false;
}

/*
 * The databases to maintain this round, read from pg_database in a short
 * transaction; the list lives in the caller's memory context.
 */
static List *
ListMaintainedDatabases(void)
{
	MemoryContext resultcxt = CurrentMemoryContext;
	List	   *names;
	List	   *result = NIL;
	List	   *found = NIL;
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tup;
	ListCell   *lc;

	if (!ParseDatabaseSetting(&names))
		return NIL;

	StartTransactionCommand();
	(void) GetTransactionSnapshot();

	rel = table_open(DatabaseRelationId, AccessShareLock);
	scan = table_beginscan_catalog(rel, 0, NULL);
	while (HeapTupleIsValid(tup = heap_getnext(scan, ForwardScanDirection)))
	{
		Form_pg_database db = (Form_pg_database) GETSTRUCT(tup);
		const char *name = NameStr(db->datname);
		bool		wanted;

		if (names != NIL)
			wanted = NameInList(names, name);
		else
			wanted = !db->datistemplate;
		if (!wanted)
			continue;

		if (names != NIL)
		{
			MemoryContext oldcxt = MemoryContextSwitchTo(resultcxt);

			found = lappend(found, pstrdup(name));
			MemoryContextSwitchTo(oldcxt);
		}

		if (!DatabaseIsConnectable(db))
		{
			if (names != NIL && !setting_reported)
				ereport(WARNING,
						(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						 errmsg("panko.expiry_databases names database \"%s\", which does not accept connections",
								name)));
			continue;
		}

		{
			MemoryContext oldcxt = MemoryContextSwitchTo(resultcxt);
			PankoDatabase *entry = palloc0(sizeof(PankoDatabase));

			entry->oid = db->oid;
			strlcpy(entry->name, name, NAMEDATALEN);
			result = lappend(result, entry);
			MemoryContextSwitchTo(oldcxt);
		}
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);

	CommitTransactionCommand();

	foreach(lc, names)
	{
		const char *name = (const char *) lfirst(lc);

		if (!NameInList(found, name) && !setting_reported)
			ereport(WARNING,
					(errcode(ERRCODE_UNDEFINED_DATABASE),
					 errmsg("panko.expiry_databases names database \"%s\", which does not exist",
							name)));
	}
	if (names != NIL)
		setting_reported = true;

	return result;
}

/*
 * Start a maintenance worker for one database and wait until it exits, so
 * rounds never pile up.  False when no worker slot is free.
 */
static bool
MaintainDatabase(PankoDatabase *db)
{
	BackgroundWorker worker;
	BackgroundWorkerHandle *handle;
	BgwHandleStatus status;

	InitWorker(&worker, "panko_maintenance_main", PANKO_MAINTENANCE_TYPE,
			   BGW_NEVER_RESTART);
	snprintf(worker.bgw_name, BGW_MAXLEN, "panko maintenance of database \"%s\"",
			 db->name);
	worker.bgw_main_arg = ObjectIdGetDatum(db->oid);
	strlcpy(worker.bgw_extra, db->name, BGW_EXTRALEN);
	worker.bgw_notify_pid = MyProcPid;

	if (!RegisterDynamicBackgroundWorker(&worker, &handle))
	{
		ereport(WARNING,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("could not start panko maintenance of database \"%s\"",
						db->name),
				 errdetail("No background worker slot is free."),
				 errhint("Raise max_worker_processes; the next round tries again.")));
		return false;
	}

	pgstat_report_activity(STATE_RUNNING, worker.bgw_name);
	status = WaitForBackgroundWorkerShutdown(handle);
	pgstat_report_activity(STATE_IDLE, NULL);
	pfree(handle);

	if (status == BGWH_POSTMASTER_DIED)
		proc_exit(1);
	return true;
}

/* One round: maintain each selected database in turn. */
static void
RunMaintenanceRound(void)
{
	List	   *databases = ListMaintainedDatabases();
	ListCell   *lc;

	foreach(lc, databases)
	{
		CHECK_FOR_INTERRUPTS();
		if (!MaintainDatabase((PankoDatabase *) lfirst(lc)))
			break;
	}
}

/*
 * Launcher entry point.  SIGTERM goes through die(), so pg_terminate_backend
 * exits non-zero and the postmaster starts a new launcher (pg_cron #99).
 */
void
panko_launcher_main(Datum main_arg)
{
	MemoryContext loopcxt;
	TimestampTz last_run = 0;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	/* No database: only the shared catalog pg_database is read. */
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);
	pgstat_report_appname(PANKO_LAUNCHER_TYPE);

	ereport(LOG,
			(errmsg("panko launcher started"),
			 errdetail("Maintenance runs every %d s in %s.",
					   panko_expiry_interval,
					   (panko_expiry_databases && panko_expiry_databases[0]) ?
					   panko_expiry_databases : "every database with the panko extension")));

	loopcxt = AllocSetContextCreate(TopMemoryContext,
									"panko launcher loop",
									ALLOCSET_DEFAULT_SIZES);

	for (;;)
	{
		TimestampTz now;
		TimestampTz next_run;
		int64		interval_ms;

		CHECK_FOR_INTERRUPTS();

		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			setting_reported = false;
		}

		interval_ms = (int64) Max(panko_expiry_interval, 1) * 1000;
		now = GetCurrentTimestamp();
		if (last_run == 0 ||
			now >= TimestampTzPlusMilliseconds(last_run, interval_ms))
		{
			last_run = now;
			MemoryContextSwitchTo(loopcxt);
			PG_TRY();
			{
				RunMaintenanceRound();
			}
			PG_CATCH();
			{
				/* Log it and carry on: the next round may well succeed. */
				MemoryContextSwitchTo(loopcxt);
				EmitErrorReport();
				FlushErrorState();
				AbortOutOfAnyTransaction();
				pgstat_report_activity(STATE_IDLE, NULL);
			}
			PG_END_TRY();
			MemoryContextSwitchTo(TopMemoryContext);
			MemoryContextReset(loopcxt);
		}

		next_run = TimestampTzPlusMilliseconds(last_run, interval_ms);
		(void) WaitLatch(MyLatch,
						 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 TimestampDifferenceMilliseconds(GetCurrentTimestamp(),
														 next_run),
						 PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

/* Name the database in every message a maintenance worker emits. */
static void
MaintenanceErrorContext(void *arg)
{
	errcontext("panko maintenance of database \"%s\"", (const char *) arg);
}

/* A column of the SPI result as a string owned by the top context. */
static char *
ResultColumn(int column, const char *if_null)
{
	char	   *value = SPI_getvalue(SPI_tuptable->vals[0],
									 SPI_tuptable->tupdesc, column);

	return MemoryContextStrdup(TopMemoryContext, value ? value : if_null);
}

/*
 * Maintenance worker entry point: one call of panko.run_maintenance() in
 * its own transaction, one LOG line, exit.  An error ends this process
 * only; the launcher goes on with the next database.
 */
void
panko_maintenance_main(Datum main_arg)
{
	Oid			dboid = DatumGetObjectId(main_arg);
	char		dbname[NAMEDATALEN];
	ErrorContextCallback errcallback;
	TimestampTz started;
	const char *query = "SELECT panko.run_maintenance()";
	const char *fields =
		"SELECT $1 OPERATOR(pg_catalog.->>) 'partitions_created',"
		" $1 OPERATOR(pg_catalog.->>) 'partitions_dropped',"
		" $1 OPERATOR(pg_catalog.->>) 'rows_deleted',"
		" $1 OPERATOR(pg_catalog.->>) 'event_types_removed',"
		" $1 OPERATOR(pg_catalog.->>) 'duration_ms',"
		" $1 OPERATOR(pg_catalog.->>) 'skipped',"
		" $1 OPERATOR(pg_catalog.->>) 'registry_rows_purged'";
	Oid			argtypes[1] = {JSONBOID};
	Datum		report;
	bool		isnull;
	char	   *created;
	char	   *dropped;
	char	   *deleted;
	char	   *types_removed;
	char	   *duration;
	char	   *skipped;
	char	   *purged;
	int			ret;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	strlcpy(dbname, MyBgworkerEntry->bgw_extra, NAMEDATALEN);
	errcallback.callback = MaintenanceErrorContext;
	errcallback.arg = dbname;
	errcallback.previous = error_context_stack;
	error_context_stack = &errcallback;

	BackgroundWorkerInitializeConnectionByOid(dboid, InvalidOid, 0);
	pgstat_report_appname(PANKO_MAINTENANCE_TYPE);

	started = GetCurrentTimestamp();
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();

	if (!OidIsValid(get_extension_oid("panko", true)))
	{
		/* Not every database has panko: nothing to do here. */
		CommitTransactionCommand();
		ereport(DEBUG1,
				(errmsg("panko is not installed in database \"%s\"", dbname)));
		proc_exit(0);
	}

	if (!OidIsValid(LookupFuncName(list_make2(makeString("panko"),
											  makeString("run_maintenance")),
								   0, NULL, true)))
	{
		/* panko 0.1.0 had no run_maintenance(): say how to get it. */
		CommitTransactionCommand();
		ereport(WARNING,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("panko in database \"%s\" has no panko.run_maintenance(); nothing expires there",
						dbname),
				 errhint("Run ALTER EXTENSION panko UPDATE in that database.")));
		proc_exit(0);
	}

	PankoSPIConnect();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, query);

	ret = SPI_execute(query, false, 0);
	if (ret != SPI_OK_SELECT || SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("panko.run_maintenance() returned no result")));
	report = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1,
						   &isnull);
	if (isnull)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("panko.run_maintenance() returned NULL")));

	/* Read the report's fields with SQL rather than walking jsonb here. */
	ret = SPI_execute_with_args(fields, 1, argtypes, &report, NULL, true, 1);
	if (ret != SPI_OK_SELECT || SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not read the report of panko.run_maintenance()")));

	created = ResultColumn(1, "?");
	dropped = ResultColumn(2, "?");
	deleted = ResultColumn(3, "?");
	types_removed = ResultColumn(4, "?");
	duration = ResultColumn(5, "");
	skipped = ResultColumn(6, "false");
	purged = ResultColumn(7, "");

	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_stat(true);
	pgstat_report_activity(STATE_IDLE, NULL);

	error_context_stack = errcallback.previous;

	if (duration[0] == '\0')
	{
		long		secs;
		int			usecs;

		TimestampDifference(started, GetCurrentTimestamp(), &secs, &usecs);
		duration = psprintf("%.3f", secs * 1000.0 + usecs / 1000.0);
	}

	if (strcmp(skipped, "true") == 0)
		ereport(LOG,
				(errmsg("panko maintenance of database \"%s\" skipped: another run holds the lock",
						dbname)));
	else
		ereport(LOG,
				(errmsg("panko maintenance of database \"%s\": %s partitions created, %s partitions dropped, %s rows deleted, %s event types removed%s%s%s in %s ms",
						dbname, created, dropped, deleted, types_removed,
						purged[0] ? ", " : "", purged,
						purged[0] ? " registry rows purged" : "",
						duration)));

	proc_exit(0);
}
