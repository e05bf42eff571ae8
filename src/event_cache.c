/*
 * event_cache.c
 *		What the read path looks up without running SQL.
 *
 *	- The partitions of panko.event, in order of their bounds, from
 *	  panko.partition (kept until panko.event's relcache entry is
 *	  invalidated), not from the parent's partition descriptor, whose
 *	  build parses every partition's bound: the caller holds a lock on the
 *	  parent, so none of them can be dropped before the end of its
 *	  transaction (DROP TABLE of a partition locks the parent first,
 *	  exclusively).
 *	- Event type names by id, kept for the backend's life: ids come from an
 *	  identity column and are never reused, so an id always names the same
 *	  type; names are looked up in the table's unique index on each call,
 *	  since a name can come back under a new id after maintenance removed it.
 *	- The tables of each partition (its class tables), and which tables
 *	  have ever had a page, kept until any relcache invalidation: a walk
 *	  asks for every partition it passes on every call, and pg_inherits
 *	  would be scanned each time.
 *	- The registry of message_ids (panko.event_message), one index probe:
 *	  it maps the hash of a message_id to the newest generated it stands for,
 *	  so a marker or a message_id is read in its partition only.
 *
 * Reads go through the access methods with the caller's snapshot, like the
 * queries that follow them.  None of these tables has row-level security;
 * what an event reveals is decided by the queries on panko.event alone.
 */
#include "postgres.h"

#include <fcntl.h>

#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/namespace.h"
#include "catalog/pg_am.h"
#include "catalog/pg_class.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_index.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_partitioned_table.h"
#include "commands/defrem.h"
#include "common/hashfn.h"
#include "common/relpath.h"
#include "miscadmin.h"
#include "nodes/tidbitmap.h"
#include "storage/fd.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/fmgroids.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#include "event_store.h"
#include "panko.h"

/* Most tables one partition has: one per retention class, and room. */
#define MAX_PARTITION_TABLES 8

/*
 * How PankoPartitionIsEmpty answers for a relation: not looked up yet, by
 * the size of its heap's file, through its tables (a partition by class),
 * or never empty (anything else: read it).  A file path longer than
 * HEAP_PATH_LEN is not kept (HEAP_READ).
 */
#define HEAP_UNKNOWN	0
#define HEAP_FILE		1
#define HEAP_TABLES		2
#define HEAP_READ		3
#define HEAP_PATH_LEN	96

/* What is kept of one relation of the walk: its tables, or that it has a page. */
typedef struct TableEntry
{
	Oid			relid;			/* hash key */
	int			ntables;		/* -1: not looked up yet */
	Oid			tables[MAX_PARTITION_TABLES];
	bool		nonempty;		/* its heap had a page (a table never loses that but by an invalidation) */
	bool		gin_known;		/* gin_index looked up */
	Oid			gin_index;		/* its GIN index on traits, or InvalidOid */
	char		heap_kind;		/* HEAP_* above: how PankoPartitionIsEmpty answers */
	char		heap_path[HEAP_PATH_LEN];	/* for HEAP_FILE: its main fork */
	File		heap_file;		/* for HEAP_FILE: that file, open (a VFD), or -1 */
} TableEntry;

static HTAB *table_cache = NULL;

/* Any relcache invalidation forgets everything: the cache is small and cheap to refill. */
static void
ForgetTables(Datum arg, Oid relid)
{
	if (table_cache != NULL)
	{
		HASH_SEQ_STATUS seq;
		TableEntry *e;

		hash_seq_init(&seq, table_cache);
		while ((e = hash_seq_search(&seq)) != NULL)
			if (e->heap_file >= 0)
				FileClose(e->heap_file);
		hash_destroy(table_cache);
		table_cache = NULL;
	}
}

/* The cache entry of relid, made on first use. */
static TableEntry *
TableEntryFor(Oid relid)
{
	static bool registered = false;
	TableEntry *e;
	bool		found;

	if (!registered)
	{
		CacheRegisterRelcacheCallback(ForgetTables, (Datum) 0);
		registered = true;
	}
	if (table_cache == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(TableEntry);
		table_cache = hash_create("panko partition tables", 512, &ctl, HASH_ELEM | HASH_BLOBS);
	}
	e = hash_search(table_cache, &relid, HASH_ENTER, &found);
	if (!found)
	{
		e->ntables = -1;
		e->nonempty = false;
		e->gin_known = false;
		e->gin_index = InvalidOid;
		e->heap_kind = HEAP_UNKNOWN;
		e->heap_file = -1;
	}
	return e;
}

/* A relation of schema panko by name, or InvalidOid. */
Oid
PankoRelid(const char *name)
{
	Oid			nsp = get_namespace_oid("panko", true);

	return OidIsValid(nsp) ? get_relname_relid(name, nsp) : InvalidOid;
}

/*
 * panko.event, locked for reading until the end of the transaction: its
 * oid only.  A new backend's first call need not build the parent's
 * relcache entry (its policies' expressions alone were a tenth of that
 * call); the spans are read from panko.partition.
 */
Oid
PankoLockEvents(void)
{
	Oid			relid = PankoRelid("event");

	if (OidIsValid(relid))
	{
		LockRelationOid(relid, AccessShareLock);
		/* (not dropped while the lock was awaited) */
		if (!SearchSysCacheExists1(RELOID, ObjectIdGetDatum(relid)))
			relid = InvalidOid;
	}
	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("panko: table panko.event is missing")));
	return relid;
}

/*
 * The partitions of panko.event as panko.partition lists them, in order of
 * their lower bounds, kept until panko.event's relcache entry is
 * invalidated: attaching or dropping a partition does that, and both
 * happen in the transaction that writes panko.partition.  Reading these
 * rows instead of the parent's partition descriptor spares a new backend
 * the parse of every partition's bound (365 of them after a year).
 */
static PartitionSpan *span_cache = NULL;
static int	span_count = 0;
static bool span_valid = false;
static uint64 span_generation = 0;
static Oid	span_events = InvalidOid;	/* the panko.event they are of */

/* An invalidation of panko.event (or of everything) forgets the spans. */
static void
ForgetSpans(Datum arg, Oid relid)
{
	if (!OidIsValid(relid) || relid == span_events)
	{
		span_valid = false;
		span_generation++;
	}
}

/* Spans in order of their lower bounds. */
static int
CompareSpans(const void *a, const void *b)
{
	TimestampTz x = ((const PartitionSpan *) a)->lower;
	TimestampTz y = ((const PartitionSpan *) b)->lower;

	return x < y ? -1 : (x > y ? 1 : 0);
}

/* Read panko.partition into the cache, with the latest snapshot (as catalogs are read). */
static void
LoadSpans(Oid events_relid)
{
	static bool registered = false;
	Oid			relid = PankoRelid("partition");
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tuple;
	Snapshot	snapshot;
	int			size = 64,
				n = 0;
	PartitionSpan *spans;
	uint64		generation;

	if (!registered)
	{
		CacheRegisterRelcacheCallback(ForgetSpans, (Datum) 0);
		registered = true;
	}
	span_events = events_relid;
	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("panko: table panko.partition is missing")));
	generation = span_generation;
	rel = table_open(relid, AccessShareLock);
	spans = MemoryContextAlloc(TopMemoryContext, sizeof(PartitionSpan) * size);
	snapshot = RegisterSnapshot(GetLatestSnapshot());
	scan = table_beginscan(rel, snapshot, 0, NULL);
	while ((tuple = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		bool		isnull[3];
		Datum		v[3];
		text	   *name;

		/* name, lower_bound, upper_bound */
		for (int a = 0; a < 3; a++)
			v[a] = heap_getattr(tuple, a + 1, RelationGetDescr(rel), &isnull[a]);
		if (isnull[0] || isnull[1] || isnull[2])
			continue;
		if (n == size)
		{
			size *= 2;
			spans = repalloc(spans, sizeof(PartitionSpan) * size);
		}
		name = DatumGetTextPP(v[0]);
		memset(&spans[n], 0, sizeof(PartitionSpan));	/* relid: InvalidOid */
		text_to_cstring_buffer(name, spans[n].name, NAMEDATALEN);
		spans[n].lower = DatumGetTimestampTz(v[1]);
		spans[n].upper = DatumGetTimestampTz(v[2]);
		n++;
	}
	table_endscan(scan);
	UnregisterSnapshot(snapshot);
	table_close(rel, AccessShareLock);
	qsort(spans, n, sizeof(PartitionSpan), CompareSpans);
	for (int i = 0; i < n; i++)
	{
		spans[i].slot = i;
		spans[i].generation = span_generation;
	}

	if (span_cache)
		pfree(span_cache);
	span_cache = spans;
	span_count = n;
	/* an invalidation while reading makes the next call read again */
	span_valid = (generation == span_generation);
}

/*
 * The partitions of events, in order of their bounds, as a palloc'd copy
 * (an invalidation may replace the cache while the caller runs queries);
 * *complete says whether they hold every event: panko makes range
 * partitions only, and none is a default partition (an operator could
 * attach one).  The caller holds a lock on events, so no partition can be
 * dropped before the end of its transaction (a partition's DROP locks its
 * parent first, exclusively).  Relids are found when asked for
 * (PankoSpanRelid): most calls look at a few spans only.
 */
PartitionSpan *
PankoPartitionSpans(Oid events, int *count, bool *complete)
{
	HeapTuple	tuple = SearchSysCache1(PARTRELID, ObjectIdGetDatum(events));
	PartitionSpan *spans;

	*complete = false;
	if (HeapTupleIsValid(tuple))
	{
		Form_pg_partitioned_table part = (Form_pg_partitioned_table) GETSTRUCT(tuple);

		*complete = part->partstrat == PARTITION_STRATEGY_RANGE && !OidIsValid(part->partdefid);
		ReleaseSysCache(tuple);
	}
	if (!span_valid || span_cache == NULL)
		LoadSpans(events);
	spans = palloc(sizeof(PartitionSpan) * Max(span_count, 1));
	memcpy(spans, span_cache, sizeof(PartitionSpan) * span_count);
	*count = span_count;
	return spans;
}

/*
 * The table of a span, found by name on first use (and kept in the cache
 * while it is current).  InvalidOid: the table is gone.
 */
Oid
PankoSpanRelid(PartitionSpan *span)
{
	if (OidIsValid(span->relid))
		return span->relid;
	span->relid = PankoRelid(span->name);
	if (OidIsValid(span->relid) && span_cache != NULL &&
		span->generation == span_generation && span->slot < span_count)
		span_cache[span->slot].relid = span->relid;
	return span->relid;
}

/* Whether relid has row-level security on; its name into name. */
static bool
TableSecured(Oid relid, char *name)
{
	HeapTuple	tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	bool		secured = false;

	if (HeapTupleIsValid(tuple))
	{
		secured = ((Form_pg_class) GETSTRUCT(tuple))->relrowsecurity;
		strlcpy(name, NameStr(((Form_pg_class) GETSTRUCT(tuple))->relname), NAMEDATALEN);
		ReleaseSysCache(tuple);
	}
	return secured;
}

/*
 * The table a statement over a span names, checked right before it is
 * read: the partition's one table when it has one (most days hold one
 * retention class), so that a new backend's first plan need not expand
 * the partition, and a kept plan locks one relation fewer; else the
 * partition.  Its name goes into name (NAMEDATALEN bytes).  get_events
 * names it directly, so a partition or table without row-level security
 * (made by a library newer than its schema, before ALTER EXTENSION panko
 * UPDATE, or switched off by hand) is an error, never a read that skips
 * the policy.
 */
Oid
PankoSpanTable(PartitionSpan *span, char *name)
{
	Oid			partition = PankoSpanRelid(span);
	List	   *tables = PankoPartitionTables(partition);
	Oid			relid = list_length(tables) == 1 ? linitial_oid(tables) : partition;

	strlcpy(name, span->name, NAMEDATALEN);
	if (!TableSecured(partition, name) || (relid != partition && !TableSecured(relid, name)))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("panko: partition panko.%s has no row-level security", name),
				 errdetail("get_events reads each partition directly, under the policies of panko.event copied to it."),
				 errhint("Run ALTER EXTENSION panko UPDATE, or SELECT panko.secure_partition('%s').", name)));
	return relid;
}

/* The index of the span holding ts, or -1. */
int
PankoSpanFor(const PartitionSpan *spans, int count, TimestampTz ts)
{
	int			lo = 0,
				hi = count - 1;

	while (lo <= hi)
	{
		int			mid = lo + (hi - lo) / 2;

		if (ts < spans[mid].lower)
			hi = mid - 1;
		else if (ts >= spans[mid].upper)
			lo = mid + 1;
		else
			return mid;
	}
	return -1;
}

/*
 * The tables that hold a partition's events: the partition itself, or,
 * for one partitioned by class, its tables (found in pg_inherits without
 * locking them: a table dropped meanwhile is simply not found later).
 */
List *
PankoPartitionTables(Oid relid)
{
	TableEntry *e = TableEntryFor(relid);
	List	   *tables = NIL;

	if (e->ntables < 0)
	{
		List	   *found;
		ListCell   *lc;

		if (get_rel_relkind(relid) != RELKIND_PARTITIONED_TABLE)
			return list_make1_oid(relid);
		found = find_inheritance_children(relid, NoLock);
		if (list_length(found) > MAX_PARTITION_TABLES)
			return found;
		/* (the lookup may have taken an invalidation: the entry again) */
		e = TableEntryFor(relid);
		e->ntables = 0;
		foreach(lc, found)
			e->tables[e->ntables++] = lfirst_oid(lc);
	}
	for (int i = 0; i < e->ntables; i++)
		tables = lappend_oid(tables, e->tables[i]);
	return tables;
}

/*
 * The rows ANALYZE last counted in a partition's tables, and the table
 * with the most of them, whose statistics stand for the partition's.
 */
double
PankoPartitionTuples(Oid relid, Oid *largest)
{
	List	   *tables = PankoPartitionTables(relid);
	ListCell   *lc;
	double		sum = 0,
				most = -1;

	*largest = relid;
	foreach(lc, tables)
	{
		HeapTuple	tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(lfirst_oid(lc)));
		double		tuples;

		if (!HeapTupleIsValid(tuple))
			continue;
		tuples = ((Form_pg_class) GETSTRUCT(tuple))->reltuples;
		ReleaseSysCache(tuple);
		if (tuples > most)
		{
			most = tuples;
			*largest = lfirst_oid(lc);
		}
		if (tuples > 0)
			sum += tuples;
	}
	return most < 0 ? most : sum;
}

/*
 * True when the partition's heap has never had a page: no transaction ever
 * stored a row there, so no snapshot can see one.  PostgreSQL writes a new
 * page to the file when it extends a relation, before any row goes on it,
 * so a committed row always means a non-empty file.  This looks at the
 * file's size only (no lock, no relcache entry; the file kept open):
 * partitions made ahead of time stay empty until their day comes, and a
 * walk in descending order starts with them.  Anything unexpected answers
 * false (read it).
 */
bool
PankoPartitionIsEmpty(Oid relid)
{
	TableEntry *e = TableEntryFor(relid);
	off_t		size;

	if (e->nonempty)
		return false;
	if (e->heap_kind == HEAP_UNKNOWN)
	{
		/* how to tell, from pg_class once (an invalidation forgets it) */
		HeapTuple	tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
		char		kind = HEAP_READ;
		char	   *path = NULL;

		if (HeapTupleIsValid(tuple))
		{
			Form_pg_class form = (Form_pg_class) GETSTRUCT(tuple);

			if (form->relkind == RELKIND_PARTITIONED_TABLE)
				kind = HEAP_TABLES;
			else if (form->relkind == RELKIND_RELATION && OidIsValid(form->relfilenode) &&
					 form->relpersistence == RELPERSISTENCE_PERMANENT)
			{
				RelFileNode rnode;

				rnode.spcNode = OidIsValid(form->reltablespace) ? form->reltablespace : MyDatabaseTableSpace;
				rnode.dbNode = MyDatabaseId;
				rnode.relNode = form->relfilenode;
				path = relpathperm(rnode, MAIN_FORKNUM);
				if (strlen(path) < HEAP_PATH_LEN)
					kind = HEAP_FILE;
			}
			ReleaseSysCache(tuple);
		}
		else
			return false;		/* (not kept: it may come) */
		/* (the lookup may have taken an invalidation: the entry again) */
		e = TableEntryFor(relid);
		e->heap_kind = kind;
		if (kind == HEAP_FILE)
			strlcpy(e->heap_path, path, HEAP_PATH_LEN);
		if (path)
			pfree(path);
	}
	if (e->heap_kind == HEAP_TABLES)
	{
		/* empty when each of its tables is */
		List	   *tables = PankoPartitionTables(relid);
		ListCell   *lc;

		foreach(lc, tables)
			if (!PankoPartitionIsEmpty(lfirst_oid(lc)))
			{
				/* (a table stays non-empty: the next walk asks no catalog) */
				TableEntryFor(relid)->nonempty = true;
				return false;
			}
		return true;
	}
	if (e->heap_kind != HEAP_FILE)
		return false;
	/*
	 * The file is kept open: a walk in descending order asks the empty
	 * partitions made ahead of time on every call, and a stat() of the path
	 * was 4% of a selective filter's call at 365 partitions.
	 */
	if (e->heap_file < 0)
		e->heap_file = PathNameOpenFile(e->heap_path, O_RDONLY | PG_BINARY);
	if (e->heap_file < 0)
		return false;
	size = FileSize(e->heap_file);
	if (size != 0)
	{
		/* (a page, or an error: read it) */
		if (size > 0)
		{
			e->nonempty = true;
			FileClose(e->heap_file);
			e->heap_file = -1;
		}
		return false;
	}
	return true;
}

/* An index's access method, or InvalidOid. */
static Oid
IndexAccessMethod(Oid indexrelid)
{
	HeapTuple	tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(indexrelid));
	Oid			am;

	if (!HeapTupleIsValid(tuple))
		return InvalidOid;
	am = ((Form_pg_class) GETSTRUCT(tuple))->relam;
	ReleaseSysCache(tuple);
	return am;
}

/*
 * A table's GIN index on its traits column with panko's operator class, not
 * partial: one that holds every row's keys.  From the catalog caches only,
 * so that no index is locked that the probe does not read.
 */
Oid
PankoTraitsGinIndex(Relation table)
{
	TableEntry *e = TableEntryFor(RelationGetRelid(table));
	Oid			opclass;
	List	   *indexes;
	ListCell   *lc;
	Oid			found = InvalidOid;

	if (e->gin_known)
		return e->gin_index;
	opclass = GetDefaultOpClass(PankoTypeOid("traits"), GIN_AM_OID);
	indexes = RelationGetIndexList(table);
	foreach(lc, indexes)
	{
		HeapTuple	tuple = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(lfirst_oid(lc)));
		Form_pg_index index;
		AttrNumber	attno;

		if (!HeapTupleIsValid(tuple))
			continue;
		index = (Form_pg_index) GETSTRUCT(tuple);
		attno = index->indkey.values[0];
		if (index->indnatts == 1 && index->indisvalid && attno > 0 &&
			strcmp(NameStr(TupleDescAttr(RelationGetDescr(table), attno - 1)->attname), "traits") == 0 &&
			heap_attisnull(tuple, Anum_pg_index_indpred, NULL) &&
			IndexAccessMethod(index->indexrelid) == GIN_AM_OID)
		{
			bool		isnull;
			Datum		d = SysCacheGetAttr(INDEXRELID, tuple, Anum_pg_index_indclass, &isnull);

			if (!isnull && ((oidvector *) DatumGetPointer(d))->values[0] == opclass)
				found = index->indexrelid;
		}
		ReleaseSysCache(tuple);
		if (OidIsValid(found))
			break;
	}
	list_free(indexes);
	/* (a lookup may have taken an invalidation: the entry again) */
	e = TableEntryFor(RelationGetRelid(table));
	e->gin_index = found;
	e->gin_known = true;
	return found;
}

/*
 * The item pointers that a GIN index of panko's on traits holds for these
 * scan keys, under the caller's snapshot, and their count (the index is
 * locked as a plan's scan would lock it).
 */
TIDBitmap *
PankoTraitsGinBitmap(Oid gin, ScanKeyData *keys, int nkeys, int64 *ntids)
{
	Relation	index = index_open(gin, AccessShareLock);
	IndexScanDesc scan = index_beginscan_bitmap(index, GetActiveSnapshot(), nkeys);
	TIDBitmap  *tbm = tbm_create(work_mem * 1024L, NULL);

	index_rescan(scan, keys, nkeys, NULL, 0);
	*ntids = index_getbitmap(scan, tbm);
	index_endscan(scan);
	index_close(index, NoLock);
	return tbm;
}

/*
 * Can a row of this partition match the trait query?  Its tables' GIN
 * indexes answer (the entries' item pointers only, no heap read): for a
 * partition that has no summary, such as the open day, which every walk
 * with a trait filter would otherwise read with a statement of its own.
 * It locks what that statement would lock; true when unsure.  query is a
 * panko.traitquery (query_type, the caller's lookup of its oid).
 */
bool
PankoPartitionMayMatch(Oid relid, Datum query, Oid query_type)
{
	List	   *tables;
	ListCell   *lc;

	/* its tables cannot be dropped while it is locked; the list is fresh */
	LockRelationOid(relid, AccessShareLock);
	tables = PankoPartitionTables(relid);
	foreach(lc, tables)
	{
		Relation	table;
		Oid			gin;
		ScanKeyData key;
		int64		n;

		if (PankoPartitionIsEmpty(lfirst_oid(lc)))
			continue;
		table = table_open(lfirst_oid(lc), AccessShareLock);
		gin = PankoTraitsGinIndex(table);
		table_close(table, NoLock);
		if (!OidIsValid(gin))
			return true;
		ScanKeyEntryInitialize(&key, 0, 1, GIN_STRATEGY_MATCH, query_type,
							   InvalidOid, InvalidOid, query);
		tbm_free(PankoTraitsGinBitmap(gin, &key, 1, &n));
		if (n > 0)
			return true;
	}
	return false;
}

/* ---------------------------------------------------------------- event types */

typedef struct EventTypeEntry
{
	int32		id;				/* key */
	char	   *name;
	text	   *name_text;
} EventTypeEntry;

static HTAB *type_names = NULL;
static MemoryContext type_names_cxt = NULL;
static Oid	type_names_relid = InvalidOid;
static Oid	type_name_index = InvalidOid;
static int	type_count = 0;

/* (Re)load every event type of panko.event_type into the cache. */
static void
LoadEventTypes(Oid relid)
{
	HASHCTL		ctl;
	Relation	rel;
	TableScanDesc scan;
	TupleTableSlot *slot;

	type_names = NULL;
	if (type_names_cxt != NULL)
		MemoryContextDelete(type_names_cxt);
	type_names_cxt = AllocSetContextCreate(CacheMemoryContext, "panko event type names",
										   ALLOCSET_SMALL_SIZES);
	type_names_relid = InvalidOid;
	type_name_index = InvalidOid;
	type_count = 0;
	ctl.keysize = sizeof(int32);
	ctl.entrysize = sizeof(EventTypeEntry);
	ctl.hcxt = type_names_cxt;
	type_names = hash_create("panko event type names", 64, &ctl,
							 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);

	rel = table_open(relid, AccessShareLock);
	scan = table_beginscan(rel, GetActiveSnapshot(), 0, NULL);
	slot = table_slot_create(rel, NULL);
	while (table_scan_getnextslot(scan, ForwardScanDirection, slot))
	{
		bool		isnull;
		int32		id = DatumGetInt32(slot_getattr(slot, 1, &isnull));
		text	   *name = DatumGetTextPP(slot_getattr(slot, 2, &isnull));
		bool		found;
		EventTypeEntry *e = hash_search(type_names, &id, HASH_ENTER, &found);

		e->name = MemoryContextStrdup(type_names_cxt, text_to_cstring(name));
		e->name_text = (text *) MemoryContextAlloc(type_names_cxt, VARHDRSZ + strlen(e->name));
		SET_VARSIZE(e->name_text, VARHDRSZ + strlen(e->name));
		memcpy(VARDATA(e->name_text), e->name, strlen(e->name));
		if (!found)
			type_count++;
	}
	ExecDropSingleTupleTableSlot(slot);
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	type_names_relid = relid;
}

/*
 * The cache, made for this incarnation of panko.event_type (the extension
 * can be dropped and created again in one backend): once per call.
 */
void
PankoEventTypesBegin(void)
{
	Oid			relid = PankoRelid("event_type");

	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("panko: table panko.event_type is missing")));
	if (type_names == NULL || relid != type_names_relid)
		LoadEventTypes(relid);
}

/*
 * The name of event type id (and the same as text, when asked); reloads
 * the cache once when the id is new to it.  The caller ran
 * PankoEventTypesBegin() in this call.
 */
const char *
PankoEventTypeName(int32 id, text **as_text)
{
	EventTypeEntry *e;
	bool		found;

	if (type_names == NULL)
		PankoEventTypesBegin();
	e = hash_search(type_names, &id, HASH_FIND, &found);
	if (e == NULL)
	{
		LoadEventTypes(type_names_relid);
		e = hash_search(type_names, &id, HASH_FIND, &found);
		if (e == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("panko: event type %d is not in panko.event_type", id)));
	}
	if (as_text)
		*as_text = e->name_text;
	return e->name;
}

/* The unique index on panko.event_type (name). */
static Oid
EventTypeNameIndex(Relation rel)
{
	List	   *indexes = RelationGetIndexList(rel);
	ListCell   *lc;
	Oid			result = InvalidOid;

	foreach(lc, indexes)
	{
		HeapTuple	tuple = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(lfirst_oid(lc)));
		Form_pg_index index;

		if (!HeapTupleIsValid(tuple))
			continue;
		index = (Form_pg_index) GETSTRUCT(tuple);
		if (index->indisunique && index->indnatts == 1 && index->indkey.values[0] == 2)
			result = index->indexrelid;
		ReleaseSysCache(tuple);
		if (OidIsValid(result))
			break;
	}
	list_free(indexes);
	return result;
}

/* The id of the event type called name, from the table (not the cache). */
bool
PankoEventTypeId(const char *name, int32 *id)
{
	Relation	rel;
	SysScanDesc scan;
	ScanKeyData key;
	HeapTuple	tuple;
	bool		found = false;

	PankoEventTypesBegin();
	rel = table_open(type_names_relid, AccessShareLock);
	if (!OidIsValid(type_name_index))
		type_name_index = EventTypeNameIndex(rel);
	ScanKeyInit(&key, 2, BTEqualStrategyNumber, F_TEXTEQ, CStringGetTextDatum(name));
	scan = systable_beginscan(rel, type_name_index, OidIsValid(type_name_index),
							  GetActiveSnapshot(), 1, &key);
	if ((tuple = systable_getnext(scan)) != NULL)
	{
		bool		isnull;

		*id = DatumGetInt32(heap_getattr(tuple, 1, RelationGetDescr(rel), &isnull));
		found = true;
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return found;
}

/* The share of events of one event type, taking the types as equally common. */
double
PankoEventTypeShare(void)
{
	if (type_names == NULL)
		PankoEventTypesBegin();
	return type_count > 0 ? 1.0 / type_count : 1.0;
}

/* ---------------------------------------------------------------- the registry */

static Oid	registry_relid = InvalidOid;
static Oid	registry_index = InvalidOid;

/*
 * The registry's generated for a message_id hash: the newest timestamp of
 * the events (live or expired) whose ids have this hash; false when there
 * is none, so no stored event has that id.  The row is written in the same
 * transaction as its event, so the caller's snapshot sees both or neither.
 */
bool
PankoRegistryLookup(int64 id_hash, TimestampTz *generated)
{
	Oid			relid = PankoRelid("event_message");
	Relation	rel;
	SysScanDesc scan;
	ScanKeyData key;
	HeapTuple	tuple;
	bool		found = false;

	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("panko: table panko.event_message is missing")));
	rel = table_open(relid, AccessShareLock);
	if (relid != registry_relid)
	{
		registry_index = RelationGetPrimaryKeyIndex(rel);
		registry_relid = relid;
	}
	ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_INT8EQ, Int64GetDatum(id_hash));
	scan = systable_beginscan(rel, registry_index, OidIsValid(registry_index),
							  GetActiveSnapshot(), 1, &key);
	if ((tuple = systable_getnext(scan)) != NULL)
	{
		bool		isnull;

		*generated = DatumGetTimestampTz(heap_getattr(tuple, 2, RelationGetDescr(rel), &isnull));
		found = true;
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return found;
}

/*
 * The part of a message_id the registry keys: all of it, but for a rated
 * data point's id PANKO_RATING_ID_PREFIX "<push>:<n>", whose push
 * ("cloudkitty:<push>") it keys.  A push is stored whole, in one
 * transaction, so one registry row stands for all of its points and a push
 * sent again still finds them: a row per point was a seventh of a push's
 * time, each a write to a random page of the registry's index.
 */
static int
RegistryNameLen(const char *message_id, int len)
{
	int			prefix = strlen(PANKO_RATING_ID_PREFIX);
	int			i = len;

	if (len <= prefix || memcmp(message_id, PANKO_RATING_ID_PREFIX, prefix) != 0)
		return len;
	while (i > prefix && message_id[i - 1] >= '0' && message_id[i - 1] <= '9')
		i--;
	/* digits after a last ':', and a push before it */
	if (i == len || i - 1 <= prefix || message_id[i - 1] != ':')
		return len;
	return i - 1;
}

/* The registry key: 64 bits of hash, checked against the events on a hit. */
int64
PankoMessageIdHash(const char *message_id, int len)
{
	return (int64) hash_bytes_extended((const unsigned char *) message_id,
									   RegistryNameLen(message_id, len),
									   PANKO_MESSAGE_ID_HASH_SEED);
}
