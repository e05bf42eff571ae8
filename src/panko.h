/*
 * panko.h
 *		Settings and entry points shared across panko's C files.
 */
#ifndef PANKO_H
#define PANKO_H

#include "mb/pg_wchar.h"

/* Expiry and partitioning (superuser-only, reloadable). */
extern int	panko_event_time_to_live;
extern int	panko_expiry_interval;
extern int	panko_expiry_max_count;
extern char *panko_expiry_databases;
extern int	panko_partition_interval;
extern int	panko_partition_premake;

/* Caller identity, set per transaction through panko.set_identity(). */
extern char *panko_request_user_id;
extern char *panko_request_project_id;
extern char *panko_request_roles;
extern bool panko_request_all_tenants;
extern bool panko_request_identity;

/*
 * Advisory lock keys (pg_advisory_xact_lock(int4, int4)): ingest holds the
 * maintenance key shared, a maintenance run holds it exclusively, so the two
 * never interleave; partition creation is serialised on its own key.
 */
#define PANKO_LOCK_CLASS		0x70616e6b	/* 'pank' */
#define PANKO_LOCK_MAINTENANCE	1
#define PANKO_LOCK_PARTITION	2

/*
 * Bad input is quoted in error messages at most this many bytes long, cut
 * at a character boundary (pg_mbcliplen) so that every message stays valid
 * in the database encoding.
 */
#define PANKO_QUOTE_MAX			64
#define PankoQuoteLen(s, len)	pg_mbcliplen((s), (len), PANKO_QUOTE_MAX)

/* panko.c: the OID of one of panko's types ("traits", "traitquery"). */
extern Oid	PankoTypeOid(const char *name);

/* worker.c */
extern void PankoWorkerRegister(void);

#endif							/* PANKO_H */
