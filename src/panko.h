/*
 * panko.h
 *		Settings and entry points shared across panko's C files.
 */
#ifndef PANKO_H
#define PANKO_H

#include "executor/spi.h"
#include "mb/pg_wchar.h"

/* Expiry and partitioning (superuser-only, reloadable). */
extern int	panko_event_time_to_live;
extern int	panko_expiry_interval;
extern int	panko_expiry_max_count;
extern char *panko_expiry_databases;
extern int	panko_partition_interval;
extern int	panko_partition_premake;
extern int	panko_plan_cache_size;
extern bool panko_indexed_scan;

/* Caller identity, set per transaction through panko.set_identity(). */
extern char *panko_request_user_id;
extern char *panko_request_project_id;
extern char *panko_request_roles;
extern bool panko_request_all_tenants;
extern bool panko_request_identity;

/*
 * Retention classes (retention.c): the class of an event type, by number;
 * class 0 (event) follows panko.event_time_to_live.
 */
#define PANKO_RETENTION_CLASSES		4
extern int	PankoRetentionClass(const char *event_type, int len);
extern const char *PankoRetentionClassName(int i);

/* Role names that make a caller an admin (comma-separated). */
extern char *panko_admin_roles;

/*
 * Transaction-level advisory locks, keyed (PANKO_LOCK_CLASS, sub-key) as by
 * pg_advisory_xact_lock(int4, int4).  SQL takes them by name through
 * panko.advisory_lock() and panko.try_advisory_lock(), so these are the
 * only place the keys are written down:
 *
 *	maintenance		ingest holds it shared per batch, expiry (run_maintenance,
 *					clear_expired_data) exclusively, so the two never
 *					interleave and writers never see an error from expiry;
 *	partition		partition creators, one at a time;
 *	maintenance_run one maintenance run at a time: the worker, pg_cron and
 *					manual calls try it and skip when another run holds it
 *					(they then wait for in-flight ingest on "maintenance").
 */
#define PANKO_LOCK_CLASS			0x70616e6b	/* 'pank' */
#define PANKO_LOCK_MAINTENANCE		1
#define PANKO_LOCK_PARTITION		2
#define PANKO_LOCK_MAINTENANCE_RUN	3

/*
 * Seed of the 64-bit message_id hash that keys the duplicate registry
 * (panko.event_message.id_hash).  The hashes are stored, so the seed is part
 * of the on-disk format: it keeps the value every release has used (that of
 * PANKO_LOCK_CLASS, which it once was), and must never change, or every
 * stored hash would stop matching its message_id.
 */
#define PANKO_MESSAGE_ID_HASH_SEED	UINT64CONST(0x70616e6b)

/*
 * Message_ids of CloudKitty's rated data points begin with this prefix;
 * rating_store_frames names each point PANKO_RATING_ID_PREFIX "<push>:<n>",
 * and the registry keys such an id by its push (PankoMessageIdHash).
 */
#define PANKO_RATING_ID_PREFIX		"cloudkitty:"

/*
 * Bad input is quoted in error messages at most this many bytes long, cut
 * at a character boundary (pg_mbcliplen) so that every message stays valid
 * in the database encoding.
 */
#define PANKO_QUOTE_MAX			64
#define PankoQuoteLen(s, len)	pg_mbcliplen((s), (len), PANKO_QUOTE_MAX)

/* panko.c */
extern bool panko_rating_rollup;
extern Oid	PankoTypeOid(const char *name);
extern bool PankoAdvisoryLock(int32 subkey, bool shared, bool wait);
extern void PankoSPIConnect(void);
extern SPIPlanPtr PankoKeepPlan(SPIPlanPtr *slot, const char *sql, int nargs,
								Oid *argtypes, int cursor_options);
extern ParamListInfo PankoParams(Datum *values, const char *nulls, Oid *types, int n);
extern void PankoRunPlan(SPIPlanPtr plan, ParamListInfo params, uint64 tcount,
						 DestReceiver *dest, const char *what);

/* identity.c (with PankoCallerIsMember and PankoCallerScope in traits.h) */
extern bool PankoCallerIsAdmin(void);
extern bool PankoCallerSeesAll(void);
extern void PankoRequireIdentity(void);
extern bool PankoEnableAllTenants(void);

/* event_json.c */
extern void PankoCheckTimestamp(const char *value, int len, const char *what);

/* worker.c */
extern void PankoWorkerRegister(void);

#endif							/* PANKO_H */
