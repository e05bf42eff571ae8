/*
 * event_input.c
 *		panko.record_events(jsonb): validate a batch of events, then store
 *		every valid one with a few set-based statements.  A bad event is
 *		reported and skipped; it never aborts the others.
 *
 * Steps, all in the caller's transaction:
 *	1. parse and validate each event (no SQL; problems become "rejected");
 *	2. drop repeats of a message_id inside the batch ("duplicate");
 *	3. take the ingest lock (shared; maintenance takes it exclusively);
 *	4. look up or add event types;
 *	5. make sure a partition exists for every timestamp;
 *	6. claim the 64-bit hash of each message_id in the registry (a plain
 *	   INSERT for a large batch, else or on a unique violation ON CONFLICT
 *	   DO NOTHING): one int8 index probe finds duplicates across all
 *	   partitions; a hash already there is checked against the events
 *	   themselves, so hash collisions and expired events are never mistaken
 *	   for duplicates;
 *	7. insert the events with one INSERT ... SELECT FROM unnest(...);
 *	8. add how many went into each partition to panko.partition_rows;
 *	9. summarise the keys of the traits stored in each partition, and seal
 *	   past partitions (traits_summary.c).
 */
#include "postgres.h"

#include "access/gin_private.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "access/xloginsert.h"
#include "catalog/index.h"
#include "catalog/pg_am_d.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "common/jsonapi.h"
#include "executor/execPartition.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "storage/proc.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "common/hashfn.h"
#include "utils/hsearch.h"
#include "utils/jsonb.h"
#include "utils/jsonfuncs.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/rls.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "traits.h"
#include "isotime.h"
#include "numbers.h"
#include "panko.h"
#include "event_store.h"
#include "gin_entry.h"
#include "traits_summary.h"

PG_FUNCTION_INFO_V1(record_events);
PG_FUNCTION_INFO_V1(record_events_text);
PG_FUNCTION_INFO_V1(message_id_hash);

#define EVENT_ID_MAXLEN		255		/* message_id and event_type, in bytes */

typedef struct ParsedEvent
{
	char	   *message_id;		/* NULL when missing */
	char	   *event_type;
	Timestamp	generated;
	Traits	   *traits;
	Jsonb	   *raw;			/* NULL for SQL NULL */
	const char *problem;		/* set: rejected */
	const char *duplicate;		/* set: duplicate, with why */
	int32		event_type_id;
	int			retention;		/* its class (PankoRetentionClass) */
	int64		id_hash;		/* registry key */
} ParsedEvent;

typedef struct MessageIdEntry
{
	char		key[EVENT_ID_MAXLEN + 1];
	int			index;
} MessageIdEntry;

/*
 * Smallest batch stored without an INSERT statement, and claimed in the
 * registry with a plain INSERT (ClaimAllPlain).  Below it, setting up
 * the routing and every index of each table costs more than the kept
 * INSERT plan saves: one event per call (OSProfiler's notify, a single
 * POST) took 0.79 ms the direct way against 0.65 ms.
 */
#define DIRECT_MIN_BATCH	64
#define DIRECT_CHUNK		256		/* rows per table_multi_insert (a slot each) */

/* Prepared statements, kept for the life of the backend. */
static SPIPlanPtr plan_types_select = NULL;
static SPIPlanPtr plan_types_insert = NULL;
static SPIPlanPtr plan_partitions = NULL;
static SPIPlanPtr plan_partitions_layered = NULL;
static SPIPlanPtr plan_create_table = NULL;
static SPIPlanPtr plan_insert_layered = NULL;
static SPIPlanPtr plan_create_partition = NULL;
static SPIPlanPtr plan_claim = NULL;
static SPIPlanPtr plan_claim_plain = NULL;
static SPIPlanPtr plan_lock = NULL;
static SPIPlanPtr plan_stale = NULL;
static SPIPlanPtr plan_insert = NULL;
static SPIPlanPtr plan_count = NULL;

/* A JSON string as a C string. */
static char *
JsonbStringDup(JsonbValue *v)
{
	return pnstrdup(v->val.string.val, v->val.string.len);
}

/* A required identifier field: a non-empty string of bounded length. */
static const char *
CheckIdField(JsonbValue *v, const char *field, char **out)
{
	if (v->type != jbvString)
		return psprintf("%s must be a string", field);
	if (v->val.string.len == 0)
		return psprintf("%s must not be empty", field);
	if (v->val.string.len > EVENT_ID_MAXLEN)
		return psprintf("%s is longer than %d bytes", field, EVENT_ID_MAXLEN);
	*out = JsonbStringDup(v);
	return NULL;
}

/* Validate one event object; the result says why it is rejected, if it is. */
static void
ParseEvent(JsonbValue *item, ParsedEvent *ev)
{
	JsonbIterator *it;
	JsonbValue	k,
				v;
	JsonbIteratorToken tok;
	bool		have_generated = false;
	bool		have_traits = false;
	TraitPair  *pairs = NULL;
	int			npairs = 0;
	char	   *problem = NULL;

	memset(ev, 0, sizeof(ParsedEvent));
	if (item->type != jbvBinary || JsonContainerIsArray(item->val.binary.data))
	{
		ev->problem = "an event must be a JSON object";
		return;
	}

	it = JsonbIteratorInit(item->val.binary.data);
	while ((tok = JsonbIteratorNext(&it, &k, true)) != WJB_DONE)
	{
		const char *msg = NULL;

		if (tok != WJB_KEY)
			continue;
		JsonbIteratorNext(&it, &v, true);
		if (JsonbKeyIs(&k, "message_id"))
			msg = CheckIdField(&v, "message_id", &ev->message_id);
		else if (JsonbKeyIs(&k, "event_type"))
			msg = CheckIdField(&v, "event_type", &ev->event_type);
		else if (JsonbKeyIs(&k, "generated"))
		{
			const char *why;

			have_generated = true;
			if (v.type != jbvString)
				msg = "generated must be an ISO 8601 string";
			else if (!PankoParseTimestamp(v.val.string.val, v.val.string.len,
										  &ev->generated, &why))
				msg = psprintf("bad timestamp \"%.*s\" in generated: %s",
							   PankoQuoteLen(v.val.string.val, v.val.string.len), v.val.string.val, why);
		}
		else if (JsonbKeyIs(&k, "traits"))
		{
			have_traits = true;
			if (v.type == jbvNull)
				npairs = 0;
			else if (v.type != jbvBinary)
				msg = "traits must be a list";
			else if (!TraitPairsFromJsonb(v.val.binary.data, &pairs, &npairs, &problem))
				msg = problem;
		}
		else if (JsonbKeyIs(&k, "raw"))
			ev->raw = (v.type == jbvNull) ? NULL : JsonbValueToJsonb(&v);
		else
			msg = psprintf("unknown field \"%.*s\"", PankoQuoteLen(k.val.string.val, k.val.string.len), k.val.string.val);
		if (msg && !ev->problem)
			ev->problem = msg;
	}

	if (ev->problem)
		return;
	if (!ev->message_id)
		ev->problem = "missing message_id";
	else if (!ev->event_type)
		ev->problem = "missing event_type";
	else if (!have_generated)
		ev->problem = "missing generated";
	else
		ev->traits = TraitsBuild(have_traits ? pairs : NULL, npairs);
}

/* A copy of v, outside the parsing context that is about to be reset. */
static struct varlena *
CopyVarlena(struct varlena *v)
{
	struct varlena *copy = palloc(VARSIZE(v));

	memcpy(copy, v, VARSIZE(v));
	return copy;
}

/* The registry key: 64 bits of hash, checked against the events on a hit. */
static int64
MessageIdHash(const char *message_id)
{
	return PankoMessageIdHash(message_id, strlen(message_id));
}

/* Copy what a parsed event needs out of the parsing context. */
static void
KeepParsedEvent(ParsedEvent *from, ParsedEvent *to, int index)
{
	memset(to, 0, sizeof(ParsedEvent));
	to->message_id = from->message_id ? pstrdup(from->message_id) : NULL;
	if (from->problem)
	{
		to->problem = psprintf("event %d: %s", index + 1, from->problem);
		return;
	}
	to->event_type = pstrdup(from->event_type);
	to->generated = from->generated;
	to->traits = (Traits *) CopyVarlena((struct varlena *) from->traits);
	to->raw = from->raw ? (Jsonb *) CopyVarlena((struct varlena *) from->raw) : NULL;
	to->id_hash = MessageIdHash(to->message_id);
}

/*
 * Run a kept plan; a result other than the one expected means the
 * extension's own SQL is broken.
 */
static void
ExecPlan(SPIPlanPtr plan, Datum *values, const char *nulls, int expect)
{
	int			rc = SPI_execute_plan(plan, values, nulls, false, 0);

	if (rc != expect)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("panko: statement failed: %s", SPI_result_code_string(rc))));
}

/* A text[] of n C strings, as a statement parameter. */
static Datum
TextArray(char **items, int n)
{
	Datum	   *d = palloc(sizeof(Datum) * Max(n, 1));

	for (int i = 0; i < n; i++)
		d[i] = CStringGetTextDatum(items[i]);
	return PointerGetDatum(construct_array(d, n, TEXTOID, -1, false, TYPALIGN_INT));
}

/* An array of n 8-byte values (int8 or timestamptz), as a statement parameter. */
static Datum
Array8(Datum *items, int n, Oid elemtype)
{
	return PointerGetDatum(construct_array(items, n, elemtype, 8, FLOAT8PASSBYVAL,
										   TYPALIGN_DOUBLE));
}

/* Map every accepted event's type name to its id, adding new types. */
static void
ResolveEventTypes(ParsedEvent *evs, int n)
{
	HASHCTL		ctl;
	HTAB	   *types;
	char	  **names = palloc(sizeof(char *) * Max(n, 1));
	int			nnames = 0;
	Oid			argtypes[1] = {TEXTARRAYOID};
	Datum		arg;
	bool		found;

	ctl.keysize = EVENT_ID_MAXLEN + 1;
	ctl.entrysize = sizeof(MessageIdEntry);
	ctl.hcxt = CurrentMemoryContext;
	types = hash_create("panko event types", 64, &ctl, HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);

	for (int i = 0; i < n; i++)
	{
		MessageIdEntry *e;

		if (evs[i].problem || evs[i].duplicate)
			continue;
		e = hash_search(types, evs[i].event_type, HASH_ENTER, &found);
		if (!found)
		{
			e->index = -1;
			names[nnames++] = evs[i].event_type;
		}
	}
	if (nnames == 0)
		return;
	/* in name order: sessions adding the same new types wait, never deadlock */
	qsort(names, nnames, sizeof(char *), pg_qsort_strcmp);
	arg = TextArray(names, nnames);

	for (int attempt = 0; attempt < 2; attempt++)
	{
		int			missing = 0;

		PankoKeepPlan(&plan_types_select,
					  "SELECT id, name FROM panko.event_type WHERE name OPERATOR(pg_catalog.=) ANY ($1)", 1, argtypes, 0);
		ExecPlan(plan_types_select, &arg, NULL, SPI_OK_SELECT);
		for (uint64 r = 0; r < SPI_processed; r++)
		{
			bool		isnull;
			int32		id = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1, &isnull));
			char	   *name = SPI_getvalue(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 2);
			MessageIdEntry *e = hash_search(types, name, HASH_FIND, &found);

			if (e)
				e->index = id;
		}
		for (int i = 0; i < nnames; i++)
		{
			MessageIdEntry *e = hash_search(types, names[i], HASH_FIND, &found);

			if (e->index < 0)
				missing++;
		}
		if (missing == 0)
			break;
		if (attempt == 1)
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("panko: could not add event types")));
		PankoKeepPlan(&plan_types_insert,
					  "INSERT INTO panko.event_type (name) SELECT unnest($1) "
					  "ON CONFLICT (name) DO NOTHING", 1, argtypes, 0);
		ExecPlan(plan_types_insert, &arg, NULL, SPI_OK_INSERT);
	}

	for (int i = 0; i < n; i++)
	{
		if (evs[i].problem || evs[i].duplicate)
			continue;
		evs[i].event_type_id = ((MessageIdEntry *) hash_search(types, evs[i].event_type,
															   HASH_FIND, &found))->index;
	}
}

typedef struct PartitionRange
{
	Timestamp	lower;
	Timestamp	upper;
	char	   *name;
	bool		layered;		/* a table per class (made since 0.5.0) */
	bool		has[PANKO_RETENTION_CLASSES];	/* (layered) which tables exist */
	int64		stored;			/* events of this batch stored there */
	int64		stored_in[PANKO_RETENTION_CLASSES]; /* of them, per class */
} PartitionRange;

/*
 * Does the schema have retention classes (0.5.0)?  A database not yet
 * updated runs this library with its old schema: one table per partition.
 */
static bool
HasRetention(void)
{
	Oid			relid = PankoRelid("event");

	return OidIsValid(relid) && get_attnum(relid, "retention") != InvalidAttrNumber;
}

/* The partitions in order of their bounds, for FindRange's binary search. */
static PartitionRange *
LoadPartitions(int *count)
{
	PartitionRange *ranges;
	bool		layers = HasRetention();

	/* (the plan's text depends on the schema: keep one per kind) */
	if (layers)
		PankoKeepPlan(&plan_partitions_layered,
					  "SELECT lower_bound, upper_bound, name, classes FROM panko.partition ORDER BY lower_bound",
					  0, NULL, 0);
	else
		PankoKeepPlan(&plan_partitions,
					  "SELECT lower_bound, upper_bound, name FROM panko.partition ORDER BY lower_bound", 0, NULL, 0);
	ExecPlan(layers ? plan_partitions_layered : plan_partitions, NULL, NULL, SPI_OK_SELECT);
	*count = (int) SPI_processed;
	ranges = palloc0(sizeof(PartitionRange) * Max(*count, 1));
	for (int r = 0; r < *count; r++)
	{
		HeapTuple	row = SPI_tuptable->vals[r];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		Datum		classes;

		ranges[r].lower = DatumGetTimestamp(SPI_getbinval(row, desc, 1, &isnull));
		ranges[r].upper = DatumGetTimestamp(SPI_getbinval(row, desc, 2, &isnull));
		ranges[r].name = SPI_getvalue(row, desc, 3);
		classes = layers ? SPI_getbinval(row, desc, 4, &isnull) : (Datum) 0;
		ranges[r].layered = layers && !isnull;
		if (ranges[r].layered)
		{
			Datum	   *names;
			bool	   *nulls;
			int			nnames;

			deconstruct_array(DatumGetArrayTypeP(classes), TEXTOID, -1, false, TYPALIGN_INT,
							  &names, &nulls, &nnames);
			for (int k = 0; k < nnames; k++)
			{
				char	   *name = nulls[k] ? NULL : TextDatumGetCString(names[k]);

				for (int c = 0; name && c < PANKO_RETENTION_CLASSES; c++)
					if (strcmp(name, PankoRetentionClassName(c)) == 0)
						ranges[r].has[c] = true;
			}
		}
	}
	return ranges;
}

/* The range holding ts, or NULL. */
static PartitionRange *
FindRange(PartitionRange *ranges, int count, Timestamp ts)
{
	int			lo = 0,
				hi = count - 1;

	while (lo <= hi)
	{
		int			mid = lo + (hi - lo) / 2;

		if (ts < ranges[mid].lower)
			hi = mid - 1;
		else if (ts >= ranges[mid].upper)
			lo = mid + 1;
		else
			return &ranges[mid];
	}
	return NULL;
}

/*
 * Create partitions for timestamps no partition covers yet; returns the
 * partitions, to count what the batch stores in each.
 */
static PartitionRange *
EnsurePartitions(ParsedEvent *evs, int n, int *nranges)
{
	int			count;
	PartitionRange *ranges = LoadPartitions(&count);
	Oid			argtypes[2] = {TIMESTAMPTZOID, TEXTOID};
	bool		layers = HasRetention();

	for (int i = 0; i < n; i++)
	{
		Datum		args[2];
		PartitionRange *range;

		if (evs[i].problem || evs[i].duplicate)
			continue;
		range = FindRange(ranges, count, evs[i].generated);
		if (range && (!range->layered || range->has[evs[i].retention]))
			continue;
		/* No partition, or none of its tables is for this class yet. */
		args[0] = TimestampTzGetDatum(evs[i].generated);
		if (layers)
		{
			PankoKeepPlan(&plan_create_table,
						  "SELECT panko.create_partition_for($1, $2)", 2, argtypes, 0);
			args[1] = CStringGetTextDatum(PankoRetentionClassName(evs[i].retention));
			ExecPlan(plan_create_table, args, NULL, SPI_OK_SELECT);
		}
		else
		{
			PankoKeepPlan(&plan_create_partition,
						  "SELECT panko.create_partition_for($1)", 1, argtypes, 0);
			ExecPlan(plan_create_partition, args, NULL, SPI_OK_SELECT);
		}
		ranges = LoadPartitions(&count);
		range = FindRange(ranges, count, evs[i].generated);
		if (!range || (range->layered && !range->has[evs[i].retention]))
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("panko: no partition covers %s after creating one",
							timestamptz_to_str(evs[i].generated))));
	}
	*nranges = count;
	return ranges;
}

/*
 * Record how many events the batch stored in each partition (insert-only
 * deltas, so concurrent writers never wait on each other): expiry then
 * knows a partition's size without counting its rows.
 */
static void
CountStored(ParsedEvent *evs, int n, PartitionRange *ranges, int nranges)
{
	int			most = PANKO_RETENTION_CLASSES * Max(nranges, 1);
	char	  **names = palloc(sizeof(char *) * most);
	Datum	   *counts = palloc(sizeof(Datum) * most);
	int			m = 0;
	Oid			argtypes[2] = {TEXTARRAYOID, INT8ARRAYOID};
	Datum		args[2];

	for (int i = 0; i < n; i++)
	{
		PartitionRange *range;

		if (evs[i].problem || evs[i].duplicate)
			continue;
		range = FindRange(ranges, nranges, evs[i].generated);
		range->stored++;
		range->stored_in[evs[i].retention]++;
	}
	/* Counted by table: the partition's, or its class's. */
	for (int r = 0; r < nranges; r++)
	{
		if (ranges[r].stored == 0)
			continue;
		if (!ranges[r].layered)
		{
			names[m] = ranges[r].name;
			counts[m++] = Int64GetDatum(ranges[r].stored);
			continue;
		}
		for (int c = 0; c < PANKO_RETENTION_CLASSES; c++)
		{
			if (ranges[r].stored_in[c] == 0)
				continue;
			names[m] = psprintf("%s_%s", ranges[r].name, PankoRetentionClassName(c));
			counts[m++] = Int64GetDatum(ranges[r].stored_in[c]);
		}
	}

	/*
	 * Before ALTER EXTENSION panko UPDATE to 0.3.0 there is no table to count
	 * in; the update counts every partition itself.
	 */
	if (m == 0 ||
		!OidIsValid(get_relname_relid("partition_rows",
									  get_namespace_oid("panko", false))))
		return;
	args[0] = TextArray(names, m);
	args[1] = Array8(counts, m, INT8OID);
	PankoKeepPlan(&plan_count,
				  "INSERT INTO panko.partition_rows (partition, n) SELECT * FROM unnest($1, $2)",
				  2, argtypes, CURSOR_OPT_GENERIC_PLAN);
	ExecPlan(plan_count, args, NULL, SPI_OK_INSERT);
}

/*
 * Summarise what the batch stored, per partition: the keys of its traits,
 * for get_events to skip partitions that cannot match (traits_summary.c).
 */
static void
SummarizeStored(ParsedEvent *evs, int n, PartitionRange *ranges, int nranges)
{
	SummaryBatch *parts = palloc0(sizeof(SummaryBatch) * Max(nranges, 1));
	int		   *slot = palloc(sizeof(int) * Max(nranges, 1));
	int		   *room = palloc0(sizeof(int) * Max(nranges, 1));
	int		   *which = palloc(sizeof(int) * Max(n, 1));
	uint32	   *recent = palloc0(sizeof(uint32) * 64 * Max(nranges, 1));
	int			nparts = 0;

	for (int i = 0; i < n; i++)
	{
		if (evs[i].problem || evs[i].duplicate)
			continue;
		which[i] = (int) (FindRange(ranges, nranges, evs[i].generated) - ranges);
		room[which[i]] += 2 * TraitsCount(evs[i].traits);
	}
	for (int r = 0; r < nranges; r++)
	{
		slot[r] = -1;
		if (ranges[r].stored == 0)
			continue;
		parts[nparts].relid = PankoRelid(ranges[r].name);
		parts[nparts].name = ranges[r].name;
		parts[nparts].events = ranges[r].stored;
		parts[nparts].upper = ranges[r].upper;
		parts[nparts].keys = palloc_extended(sizeof(uint32) * Max(room[r], 1), MCXT_ALLOC_HUGE);
		slot[r] = nparts++;
	}
	for (int i = 0; i < n; i++)
	{
		SummaryBatch *p;

		if (evs[i].problem || evs[i].duplicate)
			continue;
		p = &parts[slot[which[i]]];
		p->nkeys += SummaryTraitKeys(evs[i].traits, p->keys + p->nkeys, recent + 64 * slot[which[i]]);
	}
	PankoSummarizeBatch(parts, nparts);
}

/* Events (by index) in the order of their message_id hashes. */
static int
IdHashCompare(const void *a, const void *b, void *arg)
{
	const ParsedEvent *evs = (const ParsedEvent *) arg;
	int64		x = evs[*(const int *) a].id_hash;
	int64		y = evs[*(const int *) b].id_hash;

	return (x > y) - (x < y);
}

/*
 * Can this transaction take one more subtransaction with an XID and keep
 * advertising all of them?  Past PGPROC_MAX_CACHED_SUBXIDS every snapshot
 * of every session has to look in pg_subtrans until it ends: a loader that
 * stores many batches in one transaction takes the ON CONFLICT way then.
 */
static bool
SubxactFits(void)
{
	return !MyProc->subxidStatus.overflowed &&
		MyProc->subxidStatus.count < PGPROC_MAX_CACHED_SUBXIDS;
}

/*
 * An executor state with rel as its one result relation, for inserts made
 * without an INSERT statement (ClaimDirect, InsertEventsDirect).
 */
static EState *
DirectInsertState(Relation rel, ResultRelInfo **rri)
{
	EState	   *estate = CreateExecutorState();
	RangeTblEntry *rte = makeNode(RangeTblEntry);

	estate->es_snapshot = GetActiveSnapshot();
	rte->rtekind = RTE_RELATION;
	rte->relid = RelationGetRelid(rel);
	rte->relkind = rel->rd_rel->relkind;
	rte->rellockmode = RowExclusiveLock;
	rte->requiredPerms = ACL_INSERT;
	ExecInitRangeTable(estate, list_make1(rte));
	*rri = makeNode(ResultRelInfo);
	ExecInitResultRelation(estate, *rri, 1);
	return estate;
}

/*
 * Insert registry rows with table_multi_insert and the primary key's
 * unique check, as an INSERT would but without one: an INSERT ... SELECT
 * wrote a heap WAL record per row (115 MB for 1M events) and was a tenth
 * of record_events' time.  false (nothing done) when the registry is not
 * a plain two-column table (triggers or row-level security on it): the
 * INSERT then does what they need.
 */
static bool
ClaimDirect(Datum *hashes, Datum *gen, int m)
{
	Oid			relid = PankoRelid("event_message");
	Relation	rel;
	EState	   *estate;
	ResultRelInfo *rri;
	TupleTableSlot **slots;
	int			nslots = Min(m, DIRECT_CHUNK);
	CommandId	cid;

	if (!OidIsValid(relid))
		return false;
	rel = table_open(relid, RowExclusiveLock);
	if (rel->rd_rel->relkind != RELKIND_RELATION || rel->trigdesc != NULL ||
		rel->rd_rel->relrowsecurity || RelationGetDescr(rel)->natts != 2)
	{
		table_close(rel, NoLock);
		return false;
	}
	estate = DirectInsertState(rel, &rri);
	ExecOpenIndices(rri, false);
	cid = GetCurrentCommandId(true);
	slots = palloc(sizeof(TupleTableSlot *) * Max(nslots, 1));
	for (int s = 0; s < nslots; s++)
		slots[s] = table_slot_create(rel, NULL);

	for (int chunk = 0; chunk < m; chunk += nslots)
	{
		int			k = Min(m - chunk, nslots);

		for (int s = 0; s < k; s++)
		{
			ExecClearTuple(slots[s]);
			slots[s]->tts_values[0] = hashes[chunk + s];
			slots[s]->tts_values[1] = gen[chunk + s];
			slots[s]->tts_isnull[0] = slots[s]->tts_isnull[1] = false;
			ExecStoreVirtualTuple(slots[s]);
		}
		table_multi_insert(rel, slots, k, cid, 0, NULL);
		for (int s = 0; s < k; s++)
		{
			List	   *recheck = ExecInsertIndexTuples(rri, slots[s], estate, false, false,
														NULL, NIL);

			list_free(recheck);
			ResetPerTupleExprContext(estate);
		}
		CHECK_FOR_INTERRUPTS();
	}

	for (int s = 0; s < nslots; s++)
		ExecDropSingleTupleTableSlot(slots[s]);
	ExecCloseResultRelations(estate);
	ExecCloseRangeTableRelations(estate);
	FreeExecutorState(estate);
	table_close(rel, NoLock);
	return true;
}

/*
 * Claim every hash of a large batch with plain inserts (ClaimDirect, else
 * an INSERT), in a subtransaction: ON CONFLICT's speculative insertion
 * probes the primary key twice per row, and took half again as long.
 * false, with nothing claimed, when some hash is already there (a unique
 * violation, also after waiting for a session storing the same id); the
 * caller then takes the ON CONFLICT way.
 */
static bool
ClaimAllPlain(Datum *args, Oid *types, Datum *hashes, Datum *gen, int m)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	ErrorData  *volatile edata = NULL;

	PankoKeepPlan(&plan_claim_plain,
				  "INSERT INTO panko.event_message (id_hash, generated) SELECT * FROM unnest($1, $2)",
				  2, types, CURSOR_OPT_GENERIC_PLAN);
	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		if (!ClaimDirect(hashes, gen, m))
			ExecPlan(plan_claim_plain, args, NULL, SPI_OK_INSERT);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
	}
	PG_END_TRY();
	if (edata == NULL)
		return true;
	if (edata->sqlerrcode != ERRCODE_UNIQUE_VIOLATION)
		ReThrowError(edata);
	FreeErrorData(edata);
	return false;
}

/*
 * Claim each event's message_id hash in the registry.  A hash already there
 * means a duplicate only if an event with that very message_id is stored:
 * the registry row may belong to another id (a collision) or to an expired
 * event.  Rows found are locked first, so two sessions storing the same new
 * id at once cannot both decide it is new.
 */
static void
ClaimMessageIds(ParsedEvent *evs, int n)
{
	Datum	   *hashes = palloc(sizeof(Datum) * Max(n, 1));
	Datum	   *gen = palloc(sizeof(Datum) * Max(n, 1));
	Datum	   *claim_hashes = palloc(sizeof(Datum) * Max(n, 1));
	Datum	   *claim_gen = palloc(sizeof(Datum) * Max(n, 1));
	char	  **ids = palloc(sizeof(char *) * Max(n, 1));
	int		   *which = palloc(sizeof(int) * Max(n, 1));
	int			m = 0;
	int			nclaim = 0;
	int			nconflict = 0;
	Oid			claim_types[2] = {INT8ARRAYOID, TIMESTAMPTZARRAYOID};
	Oid			check_types[3] = {TEXTARRAYOID, INT8ARRAYOID, TIMESTAMPTZARRAYOID};
	Datum		args[3];
	HASHCTL		ctl;
	HTAB	   *claimed;
	bool		found;

	for (int i = 0; i < n; i++)
		if (!evs[i].problem && !evs[i].duplicate)
			which[m++] = i;
	if (m == 0)
		return;
	/* in hash order: sessions claiming the same ids wait, never deadlock */
	qsort_arg(which, m, sizeof(int), IdHashCompare, evs);
	for (int j = 0; j < m; j++)
	{
		hashes[j] = Int64GetDatum(evs[which[j]].id_hash);
		gen[j] = TimestampTzGetDatum(evs[which[j]].generated);
		ids[j] = evs[which[j]].message_id;
	}

	/*
	 * One claim per hash, with the newest generated of the events it stands
	 * for: the points of a push share one (PankoMessageIdHash), and so may
	 * two ids of a batch by chance.
	 */
	for (int j = 0; j < m;)
	{
		int			k = j;
		TimestampTz newest = DatumGetTimestampTz(gen[j]);

		for (; k < m && hashes[k] == hashes[j]; k++)
			newest = Max(newest, DatumGetTimestampTz(gen[k]));
		claim_hashes[nclaim] = hashes[j];
		claim_gen[nclaim++] = TimestampTzGetDatum(newest);
		for (; j < k; j++)
			gen[j] = TimestampTzGetDatum(newest);
	}
	args[0] = Array8(claim_hashes, nclaim, INT8OID);
	args[1] = Array8(claim_gen, nclaim, TIMESTAMPTZOID);
	if (nclaim >= DIRECT_MIN_BATCH && SubxactFits() &&
		ClaimAllPlain(args, claim_types, claim_hashes, claim_gen, nclaim))
		return;
	PankoKeepPlan(&plan_claim,
				  "INSERT INTO panko.event_message (id_hash, generated) "
				  "SELECT * FROM unnest($1, $2) ON CONFLICT (id_hash) DO NOTHING "
				  "RETURNING id_hash", 2, claim_types, CURSOR_OPT_GENERIC_PLAN);
	ExecPlan(plan_claim, args, NULL, SPI_OK_INSERT_RETURNING);
	if ((int) SPI_processed == nclaim)
		return;

	/* Which hashes were already there? */
	ctl.keysize = sizeof(int64);
	ctl.entrysize = sizeof(int64);
	ctl.hcxt = CurrentMemoryContext;
	claimed = hash_create("panko claimed hashes", Max(SPI_processed, 16), &ctl,
						  HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		bool		isnull;
		int64		h = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[r],
													SPI_tuptable->tupdesc, 1, &isnull));

		hash_search(claimed, &h, HASH_ENTER, &found);
	}
	for (int j = 0; j < m; j++)
	{
		int64		h = DatumGetInt64(hashes[j]);

		if (!hash_search(claimed, &h, HASH_FIND, &found))
		{
			hashes[nconflict] = hashes[j];
			gen[nconflict] = gen[j];
			ids[nconflict] = ids[j];
			which[nconflict++] = which[j];
		}
	}
	hash_destroy(claimed);

	/*
	 * Lock the registry rows, then look for the events themselves; the rows
	 * keep the newest timestamp they stand for, so purging them never forgets
	 * a live event.
	 */
	args[0] = TextArray(ids, nconflict);
	args[1] = Array8(hashes, nconflict, INT8OID);
	args[2] = Array8(gen, nconflict, TIMESTAMPTZOID);
	PankoKeepPlan(&plan_lock,
				  "SELECT 1 FROM panko.event_message WHERE id_hash OPERATOR(pg_catalog.=) ANY ($1) "
				  "ORDER BY id_hash FOR UPDATE", 1, &check_types[1], CURSOR_OPT_GENERIC_PLAN);
	ExecPlan(plan_lock, &args[1], NULL, SPI_OK_SELECT);

	/*
	 * A new statement, so a new snapshot: it sees what lock holders stored.
	 * Its plan is generic: no value of the arrays prunes a partition (every
	 * one's message_id index is probed either way), and a custom plan would
	 * plan this statement again for each batch with a repeat, which is every
	 * call of a writer such as OSProfiler's (each notification repeats its
	 * trace's entry).
	 */
	PankoKeepPlan(&plan_stale,
				  "WITH n AS ("
				  "  SELECT * FROM unnest($1, $2, $3) WITH ORDINALITY AS n(message_id, id_hash, generated, ord)"
				  "), stored AS ("
				  "  SELECT n.ord FROM n"
				  "   WHERE EXISTS (SELECT 1 FROM panko.event e WHERE e.message_id OPERATOR(pg_catalog.=) n.message_id)"
				  "), touched AS ("
				  "  UPDATE panko.event_message r SET generated = greatest(r.generated, n.generated)"
				  "    FROM n WHERE r.id_hash OPERATOR(pg_catalog.=) n.id_hash AND n.ord NOT IN (SELECT ord FROM stored)"
				  ") SELECT ord FROM stored", 3, check_types, CURSOR_OPT_GENERIC_PLAN);
	ExecPlan(plan_stale, args, NULL, SPI_OK_SELECT);
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		bool		isnull;
		int64		ord = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[r],
													  SPI_tuptable->tupdesc, 1, &isnull));

		evs[which[ord - 1]].duplicate = "an event with this message_id is already stored";
	}
}

/* One INSERT ... SELECT FROM unnest() for all accepted events. */
static uint64
InsertEvents(ParsedEvent *evs, int n)
{
	Datum	   *gen = palloc(sizeof(Datum) * Max(n, 1));
	Datum	   *typ = palloc(sizeof(Datum) * Max(n, 1));
	Datum	   *ids = palloc(sizeof(Datum) * Max(n, 1));
	Datum	   *trs = palloc(sizeof(Datum) * Max(n, 1));
	Datum	   *raws = palloc(sizeof(Datum) * Max(n, 1));
	bool	   *rawnull = palloc(sizeof(bool) * Max(n, 1));
	Datum	   *classes = palloc(sizeof(Datum) * Max(n, 1));
	Datum		class_names[PANKO_RETENTION_CLASSES];
	int			m = 0;
	int			dims[1];
	int			lbs[1] = {1};
	Oid			toid = PankoTypeOid("traits");
	Oid			argtypes[6];
	Datum		args[6];
	bool		layers = HasRetention();

	/* (each class's name once, not a copy per event) */
	for (int c = 0; c < PANKO_RETENTION_CLASSES; c++)
		class_names[c] = CStringGetTextDatum(PankoRetentionClassName(c));
	for (int i = 0; i < n; i++)
	{
		if (evs[i].problem || evs[i].duplicate)
			continue;
		gen[m] = TimestampTzGetDatum(evs[i].generated);
		typ[m] = Int32GetDatum(evs[i].event_type_id);
		ids[m] = CStringGetTextDatum(evs[i].message_id);
		trs[m] = PointerGetDatum(evs[i].traits);
		rawnull[m] = (evs[i].raw == NULL);
		raws[m] = rawnull[m] ? (Datum) 0 : JsonbPGetDatum(evs[i].raw);
		classes[m] = class_names[evs[i].retention];
		m++;
	}
	if (m == 0)
		return 0;
	dims[0] = m;
	argtypes[0] = TIMESTAMPTZARRAYOID;
	argtypes[1] = INT4ARRAYOID;
	argtypes[2] = TEXTARRAYOID;
	argtypes[3] = get_array_type(toid);
	argtypes[4] = JSONBARRAYOID;
	args[0] = Array8(gen, m, TIMESTAMPTZOID);
	args[1] = PointerGetDatum(construct_array(typ, m, INT4OID, sizeof(int32), true, TYPALIGN_INT));
	args[2] = PointerGetDatum(construct_array(ids, m, TEXTOID, -1, false, TYPALIGN_INT));
	args[3] = PointerGetDatum(construct_array(trs, m, toid, -1, false, TYPALIGN_INT));
	args[4] = PointerGetDatum(construct_md_array(raws, rawnull, 1, dims, lbs, JSONBOID, -1,
												 false, TYPALIGN_INT));
	argtypes[5] = TEXTARRAYOID;
	args[5] = PointerGetDatum(construct_array(classes, m, TEXTOID, -1, false, TYPALIGN_INT));
	if (layers)
	{
		PankoKeepPlan(&plan_insert_layered,
					  "INSERT INTO panko.event (generated, event_type_id, message_id, traits, raw, retention) "
					  "SELECT * FROM unnest($1, $2, $3, $4, $5, $6)", 6, argtypes, CURSOR_OPT_GENERIC_PLAN);
		ExecPlan(plan_insert_layered, args, NULL, SPI_OK_INSERT);
	}
	else
	{
		PankoKeepPlan(&plan_insert,
					  "INSERT INTO panko.event (generated, event_type_id, message_id, traits, raw) "
					  "SELECT * FROM unnest($1, $2, $3, $4, $5)", 5, argtypes, CURSOR_OPT_GENERIC_PLAN);
		ExecPlan(plan_insert, args, NULL, SPI_OK_INSERT);
	}
	return SPI_processed;
}

/*
 * Direct insert.  Routing every event through the parent with one
 * INSERT ... SELECT FROM unnest spends most of its time in the GIN index:
 * each row goes to the index's pending list, and every few hundred rows the
 * inserting backend merges that list into the index.  COPY's way instead:
 * route each event with the executor's own partition routing, sort the
 * batch by table and time, store each table's rows with table_multi_insert,
 * insert into its B-tree and hash indexes in that order (so the index on
 * generated grows at its right edge), and give each GIN index the whole
 * batch's keys at once, merged per key (ginInsertCleanup's bulk path,
 * without writing the pending list first).
 */

/* A GIN entry: its category, and its key when a normal one. */
typedef struct GinKeyRef
{
	bytea	   *key;			/* NULL unless GIN_CAT_NORM_KEY */
	GinNullCategory category;
} GinKeyRef;

/*
 * An entry of the batch: its first row inline (most keys of a batch, ids and
 * times, have one row); any further rows are in GinBulk.rows.
 */
typedef struct GinKeyEntry
{
	GinKeyRef	ref;
	char		status;			/* (simplehash) */
	uint32		hash;
	ItemPointerData first;		/* the first row */
	int			ordinal;		/* the batch's how-manieth key */
	int			count;			/* rows */
} GinKeyEntry;

/* A further row of a key (a row, not a chain: the flush reads them in order). */
typedef struct GinKeyRow
{
	ItemPointerData tid;
	int			ordinal;		/* its key's */
} GinKeyRow;

static inline uint32
GinKeyHash(GinKeyRef r)
{
	if (r.category != GIN_CAT_NORM_KEY)
		return (uint32) r.category;
	return hash_bytes((const unsigned char *) VARDATA_ANY(r.key), VARSIZE_ANY_EXHDR(r.key));
}

static inline bool
GinKeyEqual(GinKeyRef a, GinKeyRef b)
{
	if (a.category != b.category)
		return false;
	if (a.category != GIN_CAT_NORM_KEY)
		return true;
	return VARSIZE_ANY_EXHDR(a.key) == VARSIZE_ANY_EXHDR(b.key) &&
		memcmp(VARDATA_ANY(a.key), VARDATA_ANY(b.key), VARSIZE_ANY_EXHDR(a.key)) == 0;
}

#define SH_PREFIX		ginkeys
#define SH_ELEMENT_TYPE	GinKeyEntry
#define SH_KEY_TYPE		GinKeyRef
#define SH_KEY			ref
#define SH_HASH_KEY(tb, k)	GinKeyHash(k)
#define SH_EQUAL(tb, a, b)	GinKeyEqual(a, b)
#define SH_STORE_HASH
#define SH_GET_HASH(tb, a)	((a)->hash)
#define SH_SCOPE		static inline
#define SH_DECLARE
#define SH_DEFINE
#include "lib/simplehash.h"

/* What a GIN accumulator is first sized for: keys (traits) per row. */
#define GIN_KEYS_PER_ROW	16

typedef struct GinBulk
{
	Relation	index;
	IndexInfo  *info;
	GinState	state;
	MemoryContext accumcxt;
	bool		hashed;			/* keys compare as bytea: our hash of them */
	GinEntryPath path;			/* the previous key's leaf (gin_entry.c) */
	BuildAccumulator accum;		/* otherwise: GIN's own accumulator */
	ginkeys_hash *keys;
	GinKeyRow  *rows;
	int			nrows;
	int			maxrows;
	int			rows_hint;		/* the table's rows in this batch */
	Size		used;
	bool		unlogged;		/* inserts not WAL-logged: see GinBulkLogged */
	GinStatsData stats;			/* (what GIN counts when unlogged) */
} GinBulk;

typedef struct DirectRow
{
	int			event;			/* index into the batch */
	int			leaf;			/* index into the tables seen */
} DirectRow;

static const char *const direct_columns[] = {
	"generated", "event_type_id", "message_id", "traits", "raw", "retention"
};

#define DIRECT_NCOLUMNS ((int) lengthof(direct_columns))

/* Rows by table, then time, then batch order: each table's indexes get locality. */
static int
DirectRowCompare(const void *a, const void *b, void *arg)
{
	const ParsedEvent *evs = arg;
	const DirectRow *x = a;
	const DirectRow *y = b;
	Timestamp	gx = evs[x->event].generated;
	Timestamp	gy = evs[y->event].generated;

	if (x->leaf != y->leaf)
		return x->leaf < y->leaf ? -1 : 1;
	if (gx != gy)
		return gx < gy ? -1 : 1;
	return x->event < y->event ? -1 : (x->event > y->event);
}

/*
 * Can the batch bypass the INSERT statement?  Only when the statement would
 * do nothing more than store the columns: no triggers, no row-level
 * security for this role, no generated or unknown columns.  Otherwise (an
 * old schema, a table changed by hand) the INSERT runs as before.
 */
static bool
DirectInsertPossible(Relation root, AttrNumber *attnums)
{
	TupleDesc	desc = RelationGetDescr(root);
	int			live = 0;

	if (root->rd_rel->relkind != RELKIND_PARTITIONED_TABLE ||
		root->trigdesc != NULL ||
		(desc->constr && desc->constr->has_generated_stored) ||
		check_enable_rls(RelationGetRelid(root), InvalidOid, true) == RLS_ENABLED)
		return false;
	for (int i = 0; i < desc->natts; i++)
		if (!TupleDescAttr(desc, i)->attisdropped)
			live++;
	if (live != DIRECT_NCOLUMNS)
		return false;
	for (int c = 0; c < DIRECT_NCOLUMNS; c++)
	{
		attnums[c] = InvalidAttrNumber;
		for (int i = 0; i < desc->natts; i++)
		{
			Form_pg_attribute att = TupleDescAttr(desc, i);

			if (!att->attisdropped && strcmp(NameStr(att->attname), direct_columns[c]) == 0)
				attnums[c] = att->attnum;
		}
		if (attnums[c] == InvalidAttrNumber)
			return false;
	}
	return true;
}

/* An empty accumulator, in its own context. */
static void
GinBulkInit(GinBulk *b)
{
	MemoryContext old = MemoryContextSwitchTo(b->accumcxt);

	if (b->hashed)
	{
		/*
		 * Sized for the table's rows (both grow as needed): a batch spread
		 * over 365 days has a few dozen rows per table, and zeroing a
		 * hash table of 4,096 entries for each was a tenth of its time.
		 */
		int			keys = Min(Max(b->rows_hint * GIN_KEYS_PER_ROW, 64), 16384);

		b->keys = ginkeys_create(b->accumcxt, Min(keys, 4096), NULL);
		b->maxrows = keys;
		b->rows = palloc(sizeof(GinKeyRow) * b->maxrows);
		b->nrows = 0;
		b->used = 0;
	}
	else
	{
		ginInitBA(&b->accum);
		b->accum.ginstate = &b->state;
	}
	MemoryContextSwitchTo(old);
}

/* Keys in GIN's order: category, then the key as byteacmp orders it. */
static int
GinKeyCompare(const GinKeyRef *x, const GinKeyRef *y)
{
	int			lx,
				ly,
				c;

	if (x->category != y->category)
		return x->category < y->category ? -1 : 1;
	if (x->category != GIN_CAT_NORM_KEY)
		return 0;
	lx = VARSIZE_ANY_EXHDR(x->key);
	ly = VARSIZE_ANY_EXHDR(y->key);
	c = memcmp(VARDATA_ANY(x->key), VARDATA_ANY(y->key), Min(lx, ly));
	if (c != 0)
		return c;
	return lx < ly ? -1 : (lx > ly);
}

/*
 * An entry as the flush sorts it: its first eight key bytes, big-endian, in
 * the sort's own array, so that most comparisons read no entry and no key
 * (keys of a batch lie all over memory; sorting pointers to them was a
 * fifth of the flush, and mostly cache misses).
 */
typedef struct GinKeySort
{
	uint64		prefix;
	GinKeyRef	ref;
	int			count;
	int			ordinal;
	ItemPointerData first;
} GinKeySort;

/* The prefix of a key: equal prefixes leave the order to GinKeyCompare. */
static inline uint64
GinKeyPrefix(const GinKeyRef *r)
{
	uint64		p = 0;
	int			len;
	const unsigned char *d;

	if (r->category != GIN_CAT_NORM_KEY)
		return 0;
	len = Min(VARSIZE_ANY_EXHDR(r->key), 8);
	d = (const unsigned char *) VARDATA_ANY(r->key);
	for (int i = 0; i < len; i++)
		p |= (uint64) d[i] << (56 - 8 * i);
	return p;
}

/* GinKeyCompare's order, mostly decided by the prefixes alone. */
static inline int
GinKeySortCompare(const GinKeySort *a, const GinKeySort *b)
{
	if (a->ref.category != b->ref.category)
		return a->ref.category < b->ref.category ? -1 : 1;
	if (a->prefix != b->prefix)
		return a->prefix < b->prefix ? -1 : 1;
	return GinKeyCompare(&a->ref, &b->ref);
}

#define ST_SORT			sort_gin_keys
#define ST_ELEMENT_TYPE	GinKeySort
#define ST_COMPARE(a, b)	GinKeySortCompare(a, b)
#define ST_SCOPE		static
#define ST_DECLARE
#define ST_DEFINE
#include "lib/sort_template.h"

/* (qsort's form of ItemPointerCompare) */
static int
TidCompare(const void *a, const void *b)
{
	return ItemPointerCompare((ItemPointer) a, (ItemPointer) b);
}

/*
 * Take a leaf's plain GIN indexes (no predicate) away from the executor's
 * list, so that ExecInsertIndexTuples skips them and the batch fills them
 * in bulk (an accumulator each, sized for the leaf's nrows rows of the
 * batch); they stay at the end of the arrays, to be counted back before
 * the indexes are closed.
 */
static int
DetachGinIndexes(ResultRelInfo *rri, int nrows, GinBulk **bulk)
{
	int			keep = 0;
	int			ngin = 0;
	int			n = rri->ri_NumIndices;
	RelationPtr rels = palloc(sizeof(Relation) * Max(n, 1));
	IndexInfo **infos = palloc(sizeof(IndexInfo *) * Max(n, 1));

	for (int pass = 0; pass < 2; pass++)
		for (int i = 0; i < n; i++)
		{
			Relation	ix = rri->ri_IndexRelationDescs[i];
			IndexInfo  *info = rri->ri_IndexRelationInfo[i];
			bool		gin = ix->rd_rel->relam == GIN_AM_OID && info->ii_Predicate == NIL;

			if (gin != (pass == 1))
				continue;
			rels[keep + ngin] = ix;
			infos[keep + ngin] = info;
			if (gin)
				ngin++;
			else
				keep++;
		}
	memcpy(rri->ri_IndexRelationDescs, rels, sizeof(Relation) * n);
	memcpy(rri->ri_IndexRelationInfo, infos, sizeof(IndexInfo *) * n);
	rri->ri_NumIndices = keep;

	*bulk = palloc0(sizeof(GinBulk) * Max(ngin, 1));
	for (int g = 0; g < ngin; g++)
	{
		GinBulk    *b = &(*bulk)[g];

		b->index = rels[keep + g];
		b->info = infos[keep + g];
		initGinState(&b->state, b->index);
		b->accumcxt = AllocSetContextCreate(CurrentMemoryContext, "panko GIN batch",
											ALLOCSET_DEFAULT_SIZES);
		b->hashed = b->info->ii_NumIndexAttrs == 1 &&
			b->state.compareFn[0].fn_oid == F_BYTEACMP;
		b->rows_hint = nrows;
		b->unlogged = RelationNeedsWAL(b->index) &&
			(b->index->rd_createSubid == GetCurrentSubTransactionId() ||
			 b->index->rd_firstRelfilenodeSubid == GetCurrentSubTransactionId());
		GinBulkInit(b);
	}
	return ngin;
}

/* Merge what a GIN accumulator holds into its index, one insert per key. */
static void
GinBulkFlush(GinBulk *b)
{
	MemoryContext old = MemoryContextSwitchTo(b->accumcxt);
	ItemPointerData *items;
	OffsetNumber attnum;
	Datum		key;
	GinNullCategory category;
	uint32		nitems;

	if (b->hashed)
	{
		int			nkeys = b->keys->members;
		GinKeySort *entries = palloc(sizeof(GinKeySort) * Max(nkeys, 1));
		int		   *fill = palloc(sizeof(int) * Max(nkeys, 1));
		int			nentries = 0;
		int			at = 0;
		ginkeys_iterator iter;
		GinKeyEntry *e;

		items = palloc(sizeof(ItemPointerData) * (nkeys + b->nrows + 1));
		ginkeys_start_iterate(b->keys, &iter);
		while ((e = ginkeys_iterate(b->keys, &iter)) != NULL)
		{
			GinKeySort *k = &entries[nentries++];

			k->prefix = GinKeyPrefix(&e->ref);
			k->ref = e->ref;
			k->count = e->count;
			k->ordinal = e->ordinal;
			k->first = e->first;
		}
		sort_gin_keys(entries, nentries);

		/*
		 * Each key's rows in one run of items, in key order: the first
		 * inline, the others scattered in from one pass over the rows (a
		 * chain per key was a cache miss per row).
		 */
		for (int i = 0; i < nentries; i++)
		{
			items[at] = entries[i].first;
			fill[entries[i].ordinal] = at + 1;
			at += entries[i].count;
		}
		for (int r = 0; r < b->nrows; r++)
			items[fill[b->rows[r].ordinal]++] = b->rows[r].tid;
		at = 0;
		for (int i = 0; i < nentries; i++)
		{
			ItemPointerData *run = items + at;
			bool		ordered = true;

			nitems = entries[i].count;
			at += nitems;
			for (uint32 j = 1; j < nitems && ordered; j++)
				if (ItemPointerCompare(&run[j - 1], &run[j]) >= 0)
					ordered = false;
			if (!ordered)
				qsort(run, nitems, sizeof(ItemPointerData), TidCompare);
			CHECK_FOR_INTERRUPTS();
			PankoGinEntryInsert(&b->path, &b->state, 1, PointerGetDatum(entries[i].ref.key),
								entries[i].ref.category, run, nitems,
								b->unlogged ? &b->stats : NULL);
		}
	}
	else
	{
		ginBeginBAScan(&b->accum);
		while ((items = ginGetBAEntry(&b->accum, &attnum, &key, &category, &nitems)) != NULL)
		{
			CHECK_FOR_INTERRUPTS();
			PankoGinEntryInsert(&b->path, &b->state, attnum, key, category, items, nitems,
								b->unlogged ? &b->stats : NULL);
		}
	}
	PankoGinEntryPathEnd(&b->path);
	MemoryContextSwitchTo(old);
	MemoryContextReset(b->accumcxt);
	GinBulkInit(b);
}

/*
 * WAL-log a GIN index filled without WAL, whole, as an index build does.
 * Inserts skip the WAL (GIN's build mode) only into an index created in
 * the current subtransaction: no other session can see it, and an abort
 * drops it.  Row by row, GIN logged each key's insert and every split
 * page whole: 600 MB for 1M events over 365 days, against 267 MB of index.
 */
static void
GinBulkLogged(GinBulk *b)
{
	if (b->unlogged)
		log_newpage_range(b->index, MAIN_FORKNUM, 0,
						  RelationGetNumberOfBlocks(b->index), true);
}

/* Add a stored row's keys to a GIN accumulator (flushed past work_mem). */
static void
GinBulkAdd(GinBulk *b, TupleTableSlot *slot, EState *estate, MemoryContext tmpcxt)
{
	Datum		values[INDEX_MAX_KEYS];
	bool		isnull[INDEX_MAX_KEYS];
	MemoryContext old;

	GetPerTupleExprContext(estate)->ecxt_scantuple = slot;
	old = MemoryContextSwitchTo(tmpcxt);
	FormIndexDatum(b->info, slot, estate, values, isnull);
	for (int i = 0; i < b->info->ii_NumIndexAttrs; i++)
	{
		int32		nentries;
		GinNullCategory *categories;
		Datum	   *entries;

		if (b->hashed)
		{
			/* (extracted where the keys are kept: a new key is not copied) */
			MemoryContextSwitchTo(b->accumcxt);
			entries = ginExtractEntries(&b->state, 1, values[i], isnull[i],
										&nentries, &categories);
			if (b->nrows + nentries > b->maxrows)
			{
				b->maxrows = Max(b->maxrows * 2, b->nrows + nentries);
				b->rows = repalloc_huge(b->rows, sizeof(GinKeyRow) * b->maxrows);
			}
			for (int k = 0; k < nentries; k++)
			{
				GinKeyRef	ref;
				GinKeyEntry *e;
				bool		found;
				int			r;

				ref.category = categories[k];
				ref.key = categories[k] == GIN_CAT_NORM_KEY ? DatumGetByteaPP(entries[k]) : NULL;
				e = ginkeys_insert(b->keys, ref, &found);
				if (!found)
				{
					e->first = slot->tts_tid;
					e->ordinal = b->keys->members - 1;
					e->count = 1;
					if (ref.key)
						b->used += VARSIZE_ANY(ref.key);
					b->used += sizeof(GinKeyEntry);
					continue;
				}
				r = b->nrows++;
				b->rows[r].tid = slot->tts_tid;
				b->rows[r].ordinal = e->ordinal;
				e->count++;
				b->used += sizeof(GinKeyRow);
			}
			MemoryContextSwitchTo(tmpcxt);
			continue;
		}
		entries = ginExtractEntries(&b->state, (OffsetNumber) (i + 1),
									values[i], isnull[i], &nentries, &categories);
		MemoryContextSwitchTo(b->accumcxt);
		ginInsertBAEntries(&b->accum, &slot->tts_tid, (OffsetNumber) (i + 1),
						   entries, categories, nentries);
		MemoryContextSwitchTo(tmpcxt);
	}
	MemoryContextSwitchTo(old);
	if ((b->hashed ? b->used : b->accum.allocatedMemory) >= (Size) work_mem * 1024L)
		GinBulkFlush(b);
}

/*
 * Store one table's rows (already sorted): heap in chunks, then the other
 * indexes row by row, then the GIN indexes in bulk.
 */
static void
StoreLeafRows(ResultRelInfo *rri, TupleTableSlot **slots, int nslots, EState *estate,
			  GinBulk *bulk, int ngin, MemoryContext tmpcxt)
{
	CommandId	cid = GetCurrentCommandId(true);

	table_multi_insert(rri->ri_RelationDesc, slots, nslots, cid, 0, NULL);
	for (int i = 0; i < nslots; i++)
	{
		if (rri->ri_NumIndices > 0)
		{
			MemoryContext old = MemoryContextSwitchTo(tmpcxt);
			List	   *recheck = ExecInsertIndexTuples(rri, slots[i], estate, false, false,
														NULL, NIL);

			list_free(recheck);
			MemoryContextSwitchTo(old);
		}
		for (int g = 0; g < ngin; g++)
			GinBulkAdd(&bulk[g], slots[i], estate, tmpcxt);
		MemoryContextReset(tmpcxt);
		ResetPerTupleExprContext(estate);
	}
}

/*
 * Insert the accepted events without an INSERT statement; false (nothing
 * done) when DirectInsertPossible says no.
 */
static bool
InsertEventsDirect(ParsedEvent *evs, int n, uint64 *stored)
{
	Oid			relid = PankoRelid("event");
	Relation	root;
	AttrNumber	attnums[DIRECT_NCOLUMNS];
	EState	   *estate;
	ResultRelInfo *rootrri;
	ModifyTableState *mtstate;
	PartitionTupleRouting *proute;
	TupleTableSlot *rootslot;
	DirectRow  *rows = palloc(sizeof(DirectRow) * Max(n, 1));
	ResultRelInfo **leaves = palloc(sizeof(ResultRelInfo *) * Max(n, 1));
	int			nleaves = 0;
	int			m = 0;
	Datum		class_names[PANKO_RETENTION_CLASSES];
	Datum	   *ids = palloc(sizeof(Datum) * Max(n, 1));
	MemoryContext tmpcxt;
	TupleTableSlot **slots;
	int			natts;

	if (!OidIsValid(relid))
		return false;
	root = table_open(relid, RowExclusiveLock);
	if (!DirectInsertPossible(root, attnums))
	{
		table_close(root, NoLock);
		return false;
	}

	estate = DirectInsertState(root, &rootrri);
	mtstate = makeNode(ModifyTableState);
	mtstate->ps.plan = NULL;
	mtstate->ps.state = estate;
	mtstate->operation = CMD_INSERT;
	mtstate->mt_nrels = 1;
	mtstate->resultRelInfo = rootrri;
	mtstate->rootResultRelInfo = rootrri;
	proute = ExecSetupPartitionTupleRouting(estate, root);
	rootslot = ExecInitExtraTupleSlot(estate, RelationGetDescr(root), &TTSOpsVirtual);
	natts = RelationGetDescr(root)->natts;
	tmpcxt = AllocSetContextCreate(CurrentMemoryContext, "panko direct insert row",
								   ALLOCSET_DEFAULT_SIZES);

	for (int c = 0; c < PANKO_RETENTION_CLASSES; c++)
		class_names[c] = CStringGetTextDatum(PankoRetentionClassName(c));

	/* Route every accepted event: which table it goes to. */
	for (int i = 0; i < n; i++)
	{
		ResultRelInfo *leaf;
		int			l;

		if (evs[i].problem || evs[i].duplicate)
			continue;
		ids[i] = CStringGetTextDatum(evs[i].message_id);
		ExecClearTuple(rootslot);
		memset(rootslot->tts_isnull, true, sizeof(bool) * natts);
		rootslot->tts_values[attnums[0] - 1] = TimestampTzGetDatum(evs[i].generated);
		rootslot->tts_isnull[attnums[0] - 1] = false;
		rootslot->tts_values[attnums[5] - 1] = class_names[evs[i].retention];
		rootslot->tts_isnull[attnums[5] - 1] = false;
		ExecStoreVirtualTuple(rootslot);
		leaf = ExecFindPartition(mtstate, rootrri, proute, rootslot, estate);
		for (l = nleaves - 1; l >= 0 && leaves[l] != leaf; l--)
			;
		if (l < 0)
		{
			if (leaf->ri_TrigDesc != NULL || leaf->ri_FdwRoutine != NULL ||
				leaf->ri_RelationDesc->rd_rel->relkind != RELKIND_RELATION)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("panko: table \"%s\" of panko.event has triggers or is not a plain table",
								RelationGetRelationName(leaf->ri_RelationDesc)),
						 errdetail("record_events stores events into plain tables only."),
						 errhint("Drop the table's triggers, or recreate it with panko.create_partition_for.")));
			l = nleaves;
			leaves[nleaves++] = leaf;
		}
		rows[m].event = i;
		rows[m++].leaf = l;
	}

	qsort_arg(rows, m, sizeof(DirectRow), DirectRowCompare, evs);
	slots = palloc(sizeof(TupleTableSlot *) * DIRECT_CHUNK);

	for (int start = 0; start < m;)
	{
		ResultRelInfo *rri = leaves[rows[start].leaf];
		Relation	rel = rri->ri_RelationDesc;
		TupleDesc	desc = RelationGetDescr(rel);
		AttrNumber	leafatt[DIRECT_NCOLUMNS];
		GinBulk    *bulk;
		int			ngin;
		int			nidx = rri->ri_NumIndices;
		int			end = start;
		TupleTableSlot **pool;
		int			npool;

		while (end < m && rows[end].leaf == rows[start].leaf)
			end++;
		for (int c = 0; c < DIRECT_NCOLUMNS; c++)
		{
			leafatt[c] = get_attnum(RelationGetRelid(rel), direct_columns[c]);
			if (leafatt[c] == InvalidAttrNumber)
				ereport(ERROR,
						(errcode(ERRCODE_INTERNAL_ERROR),
						 errmsg("panko: table \"%s\" has no column \"%s\"",
								RelationGetRelationName(rel), direct_columns[c])));
		}
		ngin = DetachGinIndexes(rri, end - start, &bulk);
		npool = Min(end - start, DIRECT_CHUNK);
		pool = palloc(sizeof(TupleTableSlot *) * npool);
		for (int s = 0; s < npool; s++)
			pool[s] = table_slot_create(rel, NULL);

		for (int chunk = start; chunk < end; chunk += DIRECT_CHUNK)
		{
			int			k = Min(end - chunk, DIRECT_CHUNK);

			for (int s = 0; s < k; s++)
			{
				ParsedEvent *ev = &evs[rows[chunk + s].event];
				TupleTableSlot *slot = pool[s];

				ExecClearTuple(slot);
				memset(slot->tts_isnull, true, sizeof(bool) * desc->natts);
				slot->tts_values[leafatt[0] - 1] = TimestampTzGetDatum(ev->generated);
				slot->tts_values[leafatt[1] - 1] = Int32GetDatum(ev->event_type_id);
				slot->tts_values[leafatt[2] - 1] = ids[rows[chunk + s].event];
				slot->tts_values[leafatt[3] - 1] = PointerGetDatum(ev->traits);
				slot->tts_values[leafatt[4] - 1] = ev->raw ? JsonbPGetDatum(ev->raw) : (Datum) 0;
				slot->tts_values[leafatt[5] - 1] = class_names[ev->retention];
				for (int c = 0; c < DIRECT_NCOLUMNS; c++)
					slot->tts_isnull[leafatt[c] - 1] = (c == 4 && ev->raw == NULL);
				ExecStoreVirtualTuple(slot);
				if (desc->constr)
					ExecConstraints(rri, slot, estate);
				slots[s] = slot;
			}
			StoreLeafRows(rri, slots, k, estate, bulk, ngin, tmpcxt);
			CHECK_FOR_INTERRUPTS();
		}
		for (int g = 0; g < ngin; g++)
		{
			GinBulkFlush(&bulk[g]);
			GinBulkLogged(&bulk[g]);
		}
		rri->ri_NumIndices = nidx;
		for (int s = 0; s < npool; s++)
			ExecDropSingleTupleTableSlot(pool[s]);
		start = end;
	}

	ExecResetTupleTable(estate->es_tupleTable, false);
	ExecCleanupTupleRouting(mtstate, proute);
	ExecCloseResultRelations(estate);
	ExecCloseRangeTableRelations(estate);
	FreeExecutorState(estate);
	MemoryContextDelete(tmpcxt);
	table_close(root, NoLock);
	*stored = m;
	return true;
}

/* Mark later copies of a message_id within the batch as duplicates. */
static void
MarkBatchDuplicates(ParsedEvent *evs, int n)
{
	HASHCTL		ctl;
	HTAB	   *seen;
	bool		found;

	ctl.keysize = EVENT_ID_MAXLEN + 1;
	ctl.entrysize = sizeof(MessageIdEntry);
	ctl.hcxt = CurrentMemoryContext;
	seen = hash_create("panko batch ids", Max(n, 16), &ctl, HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	for (int i = 0; i < n; i++)
	{
		if (evs[i].problem)
			continue;
		hash_search(seen, evs[i].message_id, HASH_ENTER, &found);
		if (found)
			evs[i].duplicate = "repeated earlier in this batch";
	}
	hash_destroy(seen);
}

/*
 * The text form.  record_events(jsonb) spends a fifth of its time in
 * jsonb_in building a jsonb of the whole batch, which is then only read.
 * record_events_text(text) reads the JSON text itself, in one pass: a
 * scanner reads each event of the common shape (the Ceilometer form,
 * strings without escapes or control characters, numbers in JSON's
 * grammar) straight into its fields, and accepts nothing that is not JSON.
 * Anything else (escapes, duplicate or unknown keys, other trait forms, a
 * raw body other than {}, anything to reject, a stray separator) first has
 * PostgreSQL's own JSON lexer check the whole text, so malformed JSON fails
 * exactly as the jsonb form's argument does (22P02, with its message); the
 * scan then goes on, and an event it still cannot read is converted to
 * jsonb on its own and read by ParseEvent, so every outcome and message is
 * the jsonb form's.
 */
#define FAST_NUMBER_MAXLEN	30		/* longer numbers take the jsonb way */

static inline const char *
SkipWs(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	return p;
}

/* Past the value at p (the text is known to be valid JSON). */
static const char *
SkipValue(const char *p, const char *end)
{
	int			depth = 0;

	do
	{
		p = SkipWs(p, end);
		if (p >= end)
			return p;
		switch (*p)
		{
			case '"':
				for (p++; p < end && *p != '"'; p++)
					if (*p == '\\')
						p++;
				p++;
				break;
			case '[':
			case '{':
				depth++;
				p++;
				continue;
			case ']':
			case '}':
				depth--;
				p++;
				break;
			case ',':
			case ':':
				p++;
				continue;
			default:
				while (p < end && !strchr(" \t\n\r,:]}", *p))
					p++;
				break;
		}
	} while (depth > 0);
	return p;
}

/*
 * A string without escapes or control characters at p: its bytes, and p
 * past it; else NULL (the text need not be valid JSON).
 */
static const char *
FastString(const char *p, const char *end, const char **s, int *len)
{
	const char *q;

	if (p >= end || *p != '"')
		return NULL;
	for (q = p + 1; q < end && *q != '"'; q++)
		if (*q == '\\' || (unsigned char) *q < 0x20)
			return NULL;
	if (q >= end)
		return NULL;
	*s = p + 1;
	*len = (int) (q - p - 1);
	return q + 1;
}

/*
 * A number at p in JSON's grammar, written as numeric_out would write it
 * back (no exponent, not a negative zero, not too long): its text, and p
 * past it; else NULL.
 */
static const char *
FastNumber(const char *p, const char *end, bool integral, const char **s, int *len)
{
	const char *q = p;
	const char *digits;
	bool		nonzero = false;

	if (q < end && *q == '-')
		q++;
	digits = q;
	while (q < end && *q >= '0' && *q <= '9')
		nonzero |= (*q++ != '0');
	if (q == digits || (*digits == '0' && q - digits > 1))
		return NULL;			/* no digits, or a leading zero */
	if (q < end && *q == '.')
	{
		const char *fraction;

		if (integral)
			return NULL;
		fraction = ++q;
		for (; q < end && *q >= '0' && *q <= '9'; q++)
			nonzero |= (*q != '0');
		if (q == fraction)
			return NULL;
	}
	if ((q < end && (*q == 'e' || *q == 'E')) ||
		(*p == '-' && !nonzero) || q - p > FAST_NUMBER_MAXLEN)
		return NULL;
	*s = p;
	*len = (int) (q - p);
	return q;
}

/* One trait [name, type_id, value], valid; else NULL. */
static const char *
FastTrait(const char *p, const char *end, TraitPair *tp)
{
	const char *s;
	int			len;
	const char *why;
	Timestamp	ts;

	memset(tp, 0, sizeof(TraitPair));
	p = SkipWs(p, end);
	if (p >= end || *p != '[')
		return NULL;
	p = SkipWs(p + 1, end);
	if ((p = FastString(p, end, &tp->name, &tp->namelen)) == NULL)
		return NULL;
	p = SkipWs(p, end);
	if (p >= end || *p != ',')
		return NULL;
	p = SkipWs(p + 1, end);
	if (end - p < 2 || *p < '0' || *p > '4' || strchr(" \t\n\r,", p[1]) == NULL)
		return NULL;
	tp->type = (*p == '0') ? TRAIT_STRING : (*p - '0');
	p = SkipWs(p + 1, end);
	if (p >= end || *p != ',')
		return NULL;
	p = SkipWs(p + 1, end);
	switch (tp->type)
	{
		case TRAIT_STRING:
			if (p < end && *p == '"')
				p = FastString(p, end, &tp->str, &tp->strlen);
			else if ((p = FastNumber(p, end, true, &s, &len)) != NULL)
			{
				tp->str = pnstrdup(s, len);
				tp->strlen = len;
			}
			break;
		case TRAIT_INTEGER:
			if ((p = FastNumber(p, end, true, &s, &len)) != NULL &&
				!PankoParseInt64(s, len, &tp->i64))
				p = NULL;
			break;
		case TRAIT_FLOAT:
			if ((p = FastNumber(p, end, false, &s, &len)) != NULL &&
				!PankoParseFloat8(s, len, &tp->f8))
				p = NULL;
			break;
		case TRAIT_DATETIME:
			if ((p = FastString(p, end, &s, &len)) != NULL)
			{
				if (PankoParseTimestamp(s, len, &ts, &why))
					tp->i64 = ts;
				else
					p = NULL;
			}
			break;
	}
	if (p == NULL)
		return NULL;
	p = SkipWs(p, end);
	if (p >= end || *p != ']')
		return NULL;
	if (TraitNameProblem(tp->name, tp->namelen) != NULL || TraitPairProblem(tp) != NULL)
		return NULL;
	return p + 1;
}

/* Is the key at s, len this name? */
static inline bool
KeyIs(const char *s, int len, const char *name)
{
	return len == (int) strlen(name) && memcmp(s, name, len) == 0;
}

/*
 * An event of the common shape, valid: ev filled as ParseEvent would fill
 * it, and p past it.  NULL for any other event (ev then means nothing).
 */
static const char *
FastEvent(const char *p, const char *end, bool validated, ParsedEvent *ev)
{
	int			seen = 0;
	TraitPair  *pairs = NULL;
	int			npairs = 0;
	int			maxpairs = 0;

	memset(ev, 0, sizeof(ParsedEvent));
	if (p >= end || *p != '{')
		return NULL;
	p = SkipWs(p + 1, end);
	if (p < end && *p == '}')
		return NULL;			/* (missing fields: ParseEvent words it) */
	for (;;)
	{
		const char *k;
		int			klen;
		const char *s;
		int			len;
		int			bit;

		if ((p = FastString(p, end, &k, &klen)) == NULL)
			return NULL;
		p = SkipWs(p, end);
		if (p >= end || *p != ':')
			return NULL;
		p = SkipWs(p + 1, end);
		if (KeyIs(k, klen, "message_id") || KeyIs(k, klen, "event_type"))
		{
			bit = (k[0] == 'm') ? 1 : 2;
			if ((p = FastString(p, end, &s, &len)) == NULL || len == 0 || len > EVENT_ID_MAXLEN)
				return NULL;
			if (bit == 1)
				ev->message_id = pnstrdup(s, len);
			else
				ev->event_type = pnstrdup(s, len);
		}
		else if (KeyIs(k, klen, "generated"))
		{
			const char *why;

			bit = 4;
			if ((p = FastString(p, end, &s, &len)) == NULL ||
				!PankoParseTimestamp(s, len, &ev->generated, &why))
				return NULL;
		}
		else if (KeyIs(k, klen, "traits"))
		{
			bit = 8;
			if (end - p >= 4 && memcmp(p, "null", 4) == 0)
				p += 4;
			else if (p < end && *p == '[')
			{
				p = SkipWs(p + 1, end);
				if (p < end && *p == ']')
					p++;
				else
					for (;;)
					{
						if (npairs == maxpairs)
						{
							maxpairs = Max(16, maxpairs * 2);
							pairs = pairs ? repalloc(pairs, sizeof(TraitPair) * maxpairs)
								: palloc(sizeof(TraitPair) * maxpairs);
						}
						if ((p = FastTrait(p, end, &pairs[npairs++])) == NULL)
							return NULL;
						p = SkipWs(p, end);
						if (p < end && *p == ',')
						{
							p++;
							continue;
						}
						if (p >= end || *p != ']')
							return NULL;
						p++;
						break;
					}
			}
			else
				return NULL;
		}
		else if (KeyIs(k, klen, "raw"))
		{
			bit = 16;
			if (end - p >= 4 && memcmp(p, "null", 4) == 0)
				p += 4;
			else
			{
				const char *start = p;
				const char *q = (p < end && *p == '{') ? SkipWs(p + 1, end) : NULL;

				if (q != NULL && q < end && *q == '}')
					p = q + 1;	/* {}, Ceilometer's raw when not kept */
				else if (!validated)
					return NULL;	/* (SkipValue needs valid JSON) */
				else
					p = SkipValue(p, end);
				ev->raw = DatumGetJsonbP(DirectFunctionCall1(jsonb_in,
															 CStringGetDatum(pnstrdup(start, p - start))));
			}
		}
		else
			return NULL;
		if (seen & bit)
			return NULL;		/* a repeated key: jsonb keeps the last */
		seen |= bit;
		p = SkipWs(p, end);
		if (p < end && *p == ',')
		{
			p = SkipWs(p + 1, end);
			continue;
		}
		if (p >= end || *p != '}')
			return NULL;
		p++;
		break;
	}
	if ((seen & 7) != 7)
		return NULL;
	ev->traits = TraitsBuild((seen & 8) ? pairs : NULL, npairs);
	return p;
}

/*
 * Have PostgreSQL's JSON lexer check the whole text, as jsonb_in would
 * (escapes decoded only if any); malformed JSON raises its error.
 */
static void
ValidateBatchText(char *text, int textlen, bool *validated)
{
	JsonLexContext *lex;

	if (*validated)
		return;
	lex = makeJsonLexContextCstringLen(text, textlen, GetDatabaseEncoding(),
									   memchr(text, '\\', textlen) != NULL);
	pg_parse_json_or_ereport(lex, &nullSemAction);
	*validated = true;
}

/*
 * Parse a batch given as JSON text; NULL when the text is not an array (the
 * caller then takes the jsonb way, which words that error).  Until the text
 * is validated, every byte is read strictly: any doubt validates it first.
 */
static ParsedEvent *
ParseBatchText(char *text, int textlen, int *nevents)
{
	const char *p = text;
	const char *end = text + textlen;
	bool		validated = false;
	int			n = 0;
	int			cap = 256;
	ParsedEvent *evs;
	MemoryContext parsecxt;

	p = SkipWs(p, end);
	if (p >= end || *p != '[')
		return NULL;
	p = SkipWs(p + 1, end);
	evs = palloc0(sizeof(ParsedEvent) * cap);
	parsecxt = AllocSetContextCreate(CurrentMemoryContext, "panko event parsing",
									 ALLOCSET_DEFAULT_SIZES);
	while (p < end && *p != ']')
	{
		MemoryContext batchcxt = MemoryContextSwitchTo(parsecxt);
		ParsedEvent ev;
		const char *start = p;
		const char *next = FastEvent(p, end, validated, &ev);

		if (next == NULL && !validated)
		{
			ValidateBatchText(text, textlen, &validated);
			MemoryContextReset(parsecxt);
			next = FastEvent(p, end, validated, &ev);
		}
		if (next == NULL)
		{
			Jsonb	   *jb;
			JsonbValue	item;

			next = SkipValue(start, end);
			jb = DatumGetJsonbP(DirectFunctionCall1(jsonb_in,
													CStringGetDatum(pnstrdup(start, next - start))));
			item.type = jbvBinary;
			item.val.binary.data = &jb->root;
			item.val.binary.len = VARSIZE(jb) - VARHDRSZ;
			ParseEvent(&item, &ev);
		}
		MemoryContextSwitchTo(batchcxt);
		if (n == cap)
		{
			cap *= 2;
			evs = repalloc_huge(evs, sizeof(ParsedEvent) * cap);
		}
		KeepParsedEvent(&ev, &evs[n], n);
		n++;
		MemoryContextReset(parsecxt);
		CHECK_FOR_INTERRUPTS();
		p = SkipWs(next, end);
		if (p < end && *p == ',')
		{
			p = SkipWs(p + 1, end);
			if (p >= end || *p == ']')
				ValidateBatchText(text, textlen, &validated);	/* [..., ] */
		}
		else if (p >= end || *p != ']')
			ValidateBatchText(text, textlen, &validated);	/* [{} {}] */
	}
	/* ] and nothing after it but white space */
	if (p >= end || SkipWs(p + 1, end) != end)
		ValidateBatchText(text, textlen, &validated);
	MemoryContextDelete(parsecxt);
	*nevents = n;
	return evs;
}

/* Parse and validate a jsonb batch. */
static ParsedEvent *
ParseBatchJsonb(Jsonb *events, int *nevents)
{
	int			n;
	ParsedEvent *evs;
	MemoryContext parsecxt;

	if (!JB_ROOT_IS_ARRAY(events) || JB_ROOT_IS_SCALAR(events))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("events must be a JSON array of event objects")));
	n = JB_ROOT_COUNT(events);
	evs = palloc0(sizeof(ParsedEvent) * Max(n, 1));
	/* Parse each event in a context of its own and keep only the result. */
	parsecxt = AllocSetContextCreate(CurrentMemoryContext, "panko event parsing",
									 ALLOCSET_DEFAULT_SIZES);
	for (int i = 0; i < n; i++)
	{
		MemoryContext batchcxt = MemoryContextSwitchTo(parsecxt);
		ParsedEvent ev;

		ParseEvent(getIthJsonbValueFromContainer(&events->root, i), &ev);
		MemoryContextSwitchTo(batchcxt);
		KeepParsedEvent(&ev, &evs[i], i);
		MemoryContextReset(parsecxt);
		CHECK_FOR_INTERRUPTS();
	}
	MemoryContextDelete(parsecxt);
	*nevents = n;
	return evs;
}

/* Store the valid events of a parsed batch; each event gets its outcome. */
static void
StoreParsed(ParsedEvent *evs, int n, uint64 *stored)
{
	PartitionRange *ranges;
	int			nranges;

	MarkBatchDuplicates(evs, n);
	for (int i = 0; i < n; i++)
		if (!evs[i].problem)
			evs[i].retention = PankoRetentionClass(evs[i].event_type, strlen(evs[i].event_type));

	/* Maintenance takes this lock exclusively, so it never runs mid-batch. */
	PankoAdvisoryLock(PANKO_LOCK_MAINTENANCE, true, true);

	PankoSPIConnect();
	ResolveEventTypes(evs, n);
	ranges = EnsurePartitions(evs, n, &nranges);
	ClaimMessageIds(evs, n);
	if (n < DIRECT_MIN_BATCH || !InsertEventsDirect(evs, n, stored))
		*stored = InsertEvents(evs, n);
	CountStored(evs, n, ranges, nranges);
	SummarizeStored(evs, n, ranges, nranges);
	SPI_finish();
}

/*
 * Parse, validate and store a batch; returns the events with their outcome.
 */
static ParsedEvent *
StoreEvents(Jsonb *events, int *nevents, uint64 *stored)
{
	ParsedEvent *evs = ParseBatchJsonb(events, nevents);

	StoreParsed(evs, *nevents, stored);
	return evs;
}

/* What became of each event of a stored batch, for C callers. */
static PankoEventOutcome *
Outcomes(ParsedEvent *evs, int n)
{
	PankoEventOutcome *out = palloc0(sizeof(PankoEventOutcome) * Max(n, 1));

	for (int i = 0; i < n; i++)
	{
		out[i].message_id = evs[i].message_id;
		out[i].status = evs[i].problem ? "rejected" : evs[i].duplicate ? "duplicate" : NULL;
		out[i].detail = evs[i].problem ? evs[i].problem : evs[i].duplicate;
	}
	return out;
}

/*
 * The store for other C callers (trace_notify.c): what became of each event,
 * as record_events reports it, without a result set to go through.
 */
PankoEventOutcome *
PankoStoreEvents(Jsonb *events, int *nevents)
{
	uint64		stored;
	ParsedEvent *evs = StoreEvents(events, nevents, &stored);

	return Outcomes(evs, *nevents);
}

/*
 * The store for events another C caller built and checked itself (rating.c's
 * push): no JSON to parse again, the same outcomes as PankoStoreEvents.
 */
PankoEventOutcome *
PankoStoreNewEvents(const PankoNewEvent *events, int n)
{
	uint64		stored;
	ParsedEvent *evs = palloc0(sizeof(ParsedEvent) * Max(n, 1));

	for (int i = 0; i < n; i++)
	{
		evs[i].message_id = events[i].message_id;
		evs[i].event_type = events[i].event_type;
		evs[i].generated = events[i].generated;
		evs[i].traits = events[i].traits;
		evs[i].id_hash = MessageIdHash(events[i].message_id);
	}
	StoreParsed(evs, n, &stored);
	return Outcomes(evs, n);
}

/* One row per event not stored: every rejection and duplicate at once. */
static void
ReturnOutcomes(FunctionCallInfo fcinfo, ParsedEvent *evs, int n)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	for (int i = 0; i < n; i++)
	{
		Datum		values[3];
		bool		nulls[3] = {false, false, false};

		if (!evs[i].problem && !evs[i].duplicate)
			continue;
		nulls[0] = (evs[i].message_id == NULL);
		values[0] = nulls[0] ? (Datum) 0 : CStringGetTextDatum(evs[i].message_id);
		values[1] = CStringGetTextDatum(evs[i].problem ? "rejected" : "duplicate");
		values[2] = CStringGetTextDatum(evs[i].problem ? evs[i].problem : evs[i].duplicate);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
}

/*
 * panko.record_events(events): one row per event not stored, so that a
 * caller sees every rejection and duplicate of the batch at once.
 */
Datum
record_events(PG_FUNCTION_ARGS)
{
	Jsonb	   *events = PG_GETARG_JSONB_P(0);
	int			n;
	uint64		stored;
	ParsedEvent *evs;

	InitMaterializedSRF(fcinfo, 0);
	evs = StoreEvents(events, &n, &stored);
	ReturnOutcomes(fcinfo, evs, n);
	PG_RETURN_VOID();
}

/*
 * panko.record_events_text(events text): record_events for a batch sent as
 * JSON text, read without building a jsonb of it (same outcomes).
 */
Datum
record_events_text(PG_FUNCTION_ARGS)
{
	text	   *events = PG_GETARG_TEXT_PP(0);
	int			n;
	uint64		stored;
	ParsedEvent *evs;

	InitMaterializedSRF(fcinfo, 0);
	evs = ParseBatchText(VARDATA_ANY(events), VARSIZE_ANY_EXHDR(events), &n);
	if (evs == NULL)
		evs = ParseBatchJsonb(DatumGetJsonbP(DirectFunctionCall1(jsonb_in,
																 CStringGetDatum(text_to_cstring(events)))),
							  &n);
	StoreParsed(evs, n, &stored);
	ReturnOutcomes(fcinfo, evs, n);
	PG_RETURN_VOID();
}

/* panko.message_id_hash(text): the registry key, for maintenance and tests. */
Datum
message_id_hash(PG_FUNCTION_ARGS)
{
	char	   *id = text_to_cstring(PG_GETARG_TEXT_PP(0));

	PG_RETURN_INT64(MessageIdHash(id));
}
