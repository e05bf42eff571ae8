/*
 * event_store.h
 *		What the read path knows about the store without running SQL: the
 *		partitions of panko.event in order of their bounds, the names of
 *		event types, the registry of message_ids, and the summaries of
 *		trait keys that let a walk skip partitions.
 */
#ifndef PANKO_EVENT_STORE_H
#define PANKO_EVENT_STORE_H

#include "postgres.h"
#include "lib/stringinfo.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "access/skey.h"
#include "nodes/tidbitmap.h"
#include "tcop/dest.h"
#include "utils/jsonb.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

#include "traits.h"

/*
 * One partition of panko.event: [lower, upper).  Since 0.5.0 it is itself
 * partitioned by retention class (PankoPartitionTables lists its tables).
 */
typedef struct PartitionSpan
{
	Oid			relid;			/* InvalidOid until PankoSpanRelid */
	TimestampTz lower;
	TimestampTz upper;
	char		name[NAMEDATALEN];	/* its table in schema panko */
	int			slot;			/* its place in the backend's cache */
	uint64		generation;		/* of the cache it was copied from */
} PartitionSpan;

/* event_cache.c */
extern Oid	PankoRelid(const char *name);
extern Oid	PankoLockEvents(void);
extern PartitionSpan *PankoPartitionSpans(Oid events, int *count, bool *complete);
extern int	PankoSpanFor(const PartitionSpan *spans, int count, TimestampTz ts);
extern Oid	PankoSpanRelid(PartitionSpan *span);
extern Oid	PankoSpanTable(PartitionSpan *span, char *name);
extern bool PankoPartitionIsEmpty(Oid relid);
extern List *PankoPartitionTables(Oid relid);
extern bool PankoPartitionMayMatch(Oid relid, Datum query, Oid query_type);
extern TIDBitmap *PankoTraitsGinBitmap(Oid gin, ScanKeyData *keys, int nkeys, int64 *ntids);
extern Oid	PankoTraitsGinIndex(Relation table);
extern double PankoPartitionTuples(Oid relid, Oid *largest);
extern void PankoEventTypesBegin(void);
extern const char *PankoEventTypeName(int32 id, text **as_text);
extern bool PankoEventTypeId(const char *name, int32 *id);
extern double PankoEventTypeShare(void);
extern bool PankoRegistryLookup(int64 id_hash, TimestampTz *generated);
extern int64 PankoMessageIdHash(const char *message_id, int len);

/*
 * What became of one event of a batch given to PankoStoreEvents: status is
 * NULL for an event stored, else "rejected" or "duplicate" with why in
 * detail (rejections read "event <n>: ...", as record_events returns them).
 */
typedef struct PankoEventOutcome
{
	const char *message_id;		/* NULL when missing */
	const char *status;
	const char *detail;
} PankoEventOutcome;

/* An event built by another C caller (rating.c), checked already. */
typedef struct PankoNewEvent
{
	char	   *message_id;
	char	   *event_type;
	TimestampTz generated;
	Traits	   *traits;
} PankoNewEvent;

/* event_input.c */
extern PankoEventOutcome *PankoStoreEvents(Jsonb *events, int *nevents);
extern PankoEventOutcome *PankoStoreNewEvents(const PankoNewEvent *events, int n);

/* event_query.c */
extern StringInfo panko_events_json_sink;

/* event_json.c */
extern void PankoAppendEventJson(StringInfo buf, const char *message_id, int idlen,
								 const char *event_type, int typelen, TimestampTz generated,
								 const Traits *traits, const struct varlena *raw);

/* Sort keys a page may name (message_id then always ends the order). */
#define MAX_SORT_KEYS		2

/*
 * One call's reading of tables through their GIN index (event_scan.c): the
 * filter, the page's order, and what every table's scan shares.
 */
typedef struct EventScan
{
	Datum		query;			/* panko.traitquery: every table's GIN scan */
	Oid			query_type;
	Traits	   *scope;			/* the member's traits every row holds, or NULL */
	bool		has_type;		/* event_type_id = type_id */
	int32		type_id;
	bool		has_start;		/* generated >= start */
	TimestampTz start;
	bool		has_end;		/* generated <= end */
	TimestampTz end;
	int			nkeys;			/* the page's sort keys */
	bool		by_generated[MAX_SORT_KEYS + 1];	/* key k is generated (else message_id) */
	bool		desc[MAX_SORT_KEYS + 1];
	/* set by PankoScanBegin */
	TraitItems	query_items;
	TraitItems	scope_items;
	MemoryContext callcxt;		/* what lives for the call */
	Oid			traits_type;	/* panko.traits */
	Oid			visible_fn;		/* panko.event_visible, once a policy names it */
	bool		visible_ready;
	FmgrInfo	visible;		/* its call, for the whole page */
	TupleDesc	rowdesc;
	TupleTableSlot *rowslot;
} EventScan;

/* event_scan.c */
extern void PankoScanBegin(EventScan *scan);
extern void PankoScanEnd(EventScan *scan);
extern bool PankoScanIndexed(Oid relid, EventScan *scan, DestReceiver *dest, uint64 limit);

#endif							/* PANKO_EVENT_STORE_H */
