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
 *	6. claim the 64-bit hash of each message_id in the registry (ON CONFLICT
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

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "common/hashfn.h"
#include "utils/hsearch.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "traits.h"
#include "isotime.h"
#include "panko.h"
#include "event_store.h"
#include "traits_summary.h"

PG_FUNCTION_INFO_V1(record_events);
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

/* Prepared statements, kept for the life of the backend. */
static SPIPlanPtr plan_types_select = NULL;
static SPIPlanPtr plan_types_insert = NULL;
static SPIPlanPtr plan_partitions = NULL;
static SPIPlanPtr plan_partitions_layered = NULL;
static SPIPlanPtr plan_create_table = NULL;
static SPIPlanPtr plan_insert_layered = NULL;
static SPIPlanPtr plan_create_partition = NULL;
static SPIPlanPtr plan_claim = NULL;
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
	char	  **ids = palloc(sizeof(char *) * Max(n, 1));
	int		   *which = palloc(sizeof(int) * Max(n, 1));
	int			m = 0;
	int			nconflict = 0;
	Oid			claim_types[2] = {INT8ARRAYOID, TIMESTAMPTZARRAYOID};
	Oid			check_types[3] = {TEXTARRAYOID, INT8ARRAYOID, TIMESTAMPTZARRAYOID};
	Datum		args[3];
	HASHCTL		ctl;
	HTAB	   *claimed;
	bool		found;

	for (int i = 0; i < n; i++)
	{
		if (evs[i].problem || evs[i].duplicate)
			continue;
		hashes[m] = Int64GetDatum(evs[i].id_hash);
		gen[m] = TimestampTzGetDatum(evs[i].generated);
		ids[m] = evs[i].message_id;
		which[m++] = i;
	}
	if (m == 0)
		return;
	args[0] = Array8(hashes, m, INT8OID);
	args[1] = Array8(gen, m, TIMESTAMPTZOID);
	PankoKeepPlan(&plan_claim,
				  "INSERT INTO panko.event_message (id_hash, generated) "
				  "SELECT * FROM unnest($1, $2) ON CONFLICT (id_hash) DO NOTHING "
				  "RETURNING id_hash", 2, claim_types, CURSOR_OPT_GENERIC_PLAN);
	ExecPlan(plan_claim, args, NULL, SPI_OK_INSERT_RETURNING);
	if ((int) SPI_processed == m)
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
 * Parse, validate and store a batch; returns the events with their outcome.
 */
static ParsedEvent *
StoreEvents(Jsonb *events, int *nevents, uint64 *stored)
{
	int			n;
	ParsedEvent *evs;
	MemoryContext parsecxt;
	PartitionRange *ranges;
	int			nranges;

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
	*stored = InsertEvents(evs, n);
	CountStored(evs, n, ranges, nranges);
	SummarizeStored(evs, n, ranges, nranges);
	SPI_finish();

	*nevents = n;
	return evs;
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
	PankoEventOutcome *out = palloc0(sizeof(PankoEventOutcome) * Max(*nevents, 1));

	for (int i = 0; i < *nevents; i++)
	{
		out[i].message_id = evs[i].message_id;
		out[i].status = evs[i].problem ? "rejected" : evs[i].duplicate ? "duplicate" : NULL;
		out[i].detail = evs[i].problem ? evs[i].problem : evs[i].duplicate;
	}
	return out;
}

/*
 * panko.record_events(events): one row per event not stored, so that a
 * caller sees every rejection and duplicate of the batch at once.
 */
Datum
record_events(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Jsonb	   *events = PG_GETARG_JSONB_P(0);
	int			n;
	uint64		stored;
	ParsedEvent *evs;

	InitMaterializedSRF(fcinfo, 0);
	evs = StoreEvents(events, &n, &stored);

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
	PG_RETURN_VOID();
}

/* panko.message_id_hash(text): the registry key, for maintenance and tests. */
Datum
message_id_hash(PG_FUNCTION_ARGS)
{
	char	   *id = text_to_cstring(PG_GETARG_TEXT_PP(0));

	PG_RETURN_INT64(MessageIdHash(id));
}
