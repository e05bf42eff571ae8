/*
 * event_scan.c
 *		One table's matches of a rare trait filter, read through its GIN
 *		index without the executor.
 *
 * get_events reads a partition that a rare filter selects with a kept
 * plan: a sort over a bitmap heap scan.  Starting that plan (its scan
 * nodes, its sort, its quals) costs more than its scan when the filter
 * matches a handful of events, and a filter such as an instance_id matches
 * a handful in each of several partitions.  PankoScanIndexed reads such a
 * table with the access methods: the GIN index's bitmap, the visible heap
 * tuples under the caller's snapshot, every condition of the filter
 * checked again on each, the table's row-level security policy applied,
 * and the matches sorted as the page is.
 *
 * Row-level security stays the table's own.  This path is taken only when
 * PostgreSQL would apply it to the caller (check_enable_rls, row_security
 * on, no policy hooks), the caller holds SELECT on the table, and the
 * table's policies are exactly the one panko.secure_partition copies from
 * panko.event: permissive, for SELECT (or ALL) to PUBLIC, USING
 * panko.event_visible(traits).  That function is then called on every row,
 * as the executor would call the policy.  Anything else (another policy or
 * one more, a role list, a hook, no privilege, row_security off, a table
 * of another shape) returns false, and the caller runs the kept plan,
 * whose row-level security is PostgreSQL's.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/relscan.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "nodes/primnodes.h"
#include "nodes/tidbitmap.h"
#include "rewrite/rowsecurity.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/rls.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#include "panko.h"
#include "traits.h"
#include "event_store.h"

/* The columns of a table of panko.event that a page reads. */
typedef enum ScanColumn
{
	COL_GENERATED, COL_TYPE, COL_MESSAGE_ID, COL_TRAITS, COL_RAW, NCOLUMNS
} ScanColumn;

static const char *const column_names[NCOLUMNS] = {
	"generated", "event_type_id", "message_id", "traits", "raw"
};

/* One match, kept until the table's matches are sorted. */
typedef struct ScanRow
{
	TimestampTz generated;
	text	   *message_id;
	Datum		type_id;
	Datum		traits;
	Datum		raw;			/* (Datum) 0 when NULL */
} ScanRow;

/* The matches of one call's tables, collected before they are sorted. */
typedef struct ScanRows
{
	ScanRow    *rows;
	int			n;
	int			max;
} ScanRows;

/*
 * The attribute numbers of the page's columns in this table, if it has
 * each with the type panko.event gives it; else false.
 */
static bool
ScanColumns(Relation rel, Oid traits_type, AttrNumber *attnums)
{
	TupleDesc	desc = RelationGetDescr(rel);
	Oid			types[NCOLUMNS] = {TIMESTAMPTZOID, INT4OID, TEXTOID, traits_type, JSONBOID};

	for (int c = 0; c < NCOLUMNS; c++)
	{
		attnums[c] = InvalidAttrNumber;
		for (int i = 0; i < desc->natts; i++)
		{
			Form_pg_attribute att = TupleDescAttr(desc, i);

			if (!att->attisdropped && strcmp(NameStr(att->attname), column_names[c]) == 0)
			{
				if (att->atttypid == types[c])
					attnums[c] = att->attnum;
				break;
			}
		}
		if (attnums[c] == InvalidAttrNumber)
			return false;
	}
	return true;
}

/* Is funcid panko.event_visible(panko.traits)?  Remembered in *known. */
static bool
IsVisibleFunction(Oid funcid, Oid traits_type, Oid *known)
{
	HeapTuple	tuple;
	bool		is;

	if (OidIsValid(*known))
		return funcid == *known;
	tuple = SearchSysCache1(PROCOID, ObjectIdGetDatum(funcid));
	if (!HeapTupleIsValid(tuple))
		return false;
	{
		Form_pg_proc proc = (Form_pg_proc) GETSTRUCT(tuple);

		is = strcmp(NameStr(proc->proname), "event_visible") == 0 &&
			proc->pronamespace == get_namespace_oid("panko", false) &&
			proc->pronargs == 1 && proc->proargtypes.values[0] == traits_type &&
			proc->prorettype == BOOLOID && !proc->proretset;
	}
	ReleaseSysCache(tuple);
	if (is)
		*known = funcid;
	return is;
}

/*
 * Does PostgreSQL apply exactly panko.event's policy to the caller reading
 * this table: one permissive policy for SELECT or ALL, to PUBLIC, USING
 * panko.event_visible(traits)?  (The caller's privilege is checked apart.)
 */
static bool
CanonicalPolicy(Relation rel, AttrNumber traits_attno, Oid traits_type, Oid *visible_fn)
{
	RowSecurityPolicy *policy;
	FuncExpr   *qual;
	Var		   *arg;
	ArrayType  *roles;

	if (!row_security || row_security_policy_hook_permissive != NULL ||
		row_security_policy_hook_restrictive != NULL)
		return false;
	if (check_enable_rls(RelationGetRelid(rel), InvalidOid, true) != RLS_ENABLED)
		return false;
	if (rel->rd_rsdesc == NULL || list_length(rel->rd_rsdesc->policies) != 1)
		return false;
	policy = (RowSecurityPolicy *) linitial(rel->rd_rsdesc->policies);
	if (!policy->permissive || policy->hassublinks ||
		(policy->polcmd != ACL_SELECT_CHR && policy->polcmd != '*'))
		return false;
	roles = policy->roles;
	if (ARR_NDIM(roles) != 1 || ARR_DIMS(roles)[0] != 1 || ARR_HASNULL(roles) ||
		*(Oid *) ((char *) roles + ARR_OVERHEAD_NONULLS(1)) != ACL_ID_PUBLIC)
		return false;
	if (policy->qual == NULL || !IsA(policy->qual, FuncExpr))
		return false;
	qual = (FuncExpr *) policy->qual;
	if (qual->funcretset || list_length(qual->args) != 1 || !IsA(linitial(qual->args), Var))
		return false;
	arg = (Var *) linitial(qual->args);
	if (arg->varattno != traits_attno || arg->varlevelsup != 0)
		return false;
	return IsVisibleFunction(qual->funcid, traits_type, visible_fn);
}

/* The page's order on two matches. */
static int
ScanRowCompare(const void *a, const void *b, void *arg)
{
	const ScanRow *x = (const ScanRow *) a;
	const ScanRow *y = (const ScanRow *) b;
	const EventScan *scan = (const EventScan *) arg;

	for (int k = 0; k < scan->nkeys; k++)
	{
		int			c;

		if (scan->by_generated[k])
			c = (x->generated > y->generated) - (x->generated < y->generated);
		else
		{
			int			xl = VARSIZE_ANY_EXHDR(x->message_id);
			int			yl = VARSIZE_ANY_EXHDR(y->message_id);

			/* (message_id is COLLATE "C": bytes, then length) */
			c = memcmp(VARDATA_ANY(x->message_id), VARDATA_ANY(y->message_id), Min(xl, yl));
			if (c == 0)
				c = (xl > yl) - (xl < yl);
		}
		if (c != 0)
			return scan->desc[k] ? -c : c;
	}
	return 0;
}

/* Does the visible tuple in slot meet the filter and the policy? */
static bool
ScanRowMatches(EventScan *scan, TupleTableSlot *slot, const AttrNumber *attnums)
{
	bool		isnull;
	Datum		traits = slot_getattr(slot, attnums[COL_TRAITS], &isnull);
	Datum		d;
	Traits	   *t;

	if (isnull)
		return false;
	if (scan->has_type)
	{
		d = slot_getattr(slot, attnums[COL_TYPE], &isnull);
		if (isnull || DatumGetInt32(d) != scan->type_id)
			return false;
	}
	if (scan->has_start || scan->has_end)
	{
		TimestampTz g = DatumGetTimestampTz(slot_getattr(slot, attnums[COL_GENERATED], &isnull));

		if (isnull || (scan->has_start && g < scan->start) || (scan->has_end && g > scan->end))
			return false;
	}
	/* (detoasted once for every check of the row) */
	t = DatumGetTraitsP(traits);
	if (!TraitsHoldAll(t, &scan->query_items))
		return false;
	if (scan->scope && !TraitsHoldAll(t, &scan->scope_items))
		return false;
	/* the table's row-level security policy, called as the executor would */
	return DatumGetBool(FunctionCall1Coll(&scan->visible, InvalidOid, PointerGetDatum(t)));
}

/* Set up what every table's scan of one call shares. */
void
PankoScanBegin(EventScan *scan)
{
	scan->query_items = TraitQueryItems((TraitQuery *) DatumGetPointer(scan->query));
	if (scan->scope)
		scan->scope_items = TraitsItems(scan->scope);
	scan->callcxt = CurrentMemoryContext;
	scan->traits_type = PankoTypeOid("traits");
	scan->visible_fn = InvalidOid;
	scan->visible_ready = false;
	scan->rowdesc = CreateTemplateTupleDesc(NCOLUMNS);
	TupleDescInitEntry(scan->rowdesc, 1, "message_id", TEXTOID, -1, 0);
	TupleDescInitEntry(scan->rowdesc, 2, "event_type_id", INT4OID, -1, 0);
	TupleDescInitEntry(scan->rowdesc, 3, "generated", TIMESTAMPTZOID, -1, 0);
	TupleDescInitEntry(scan->rowdesc, 4, "traits", scan->traits_type, -1, 0);
	TupleDescInitEntry(scan->rowdesc, 5, "raw", JSONBOID, -1, 0);
	scan->rowslot = MakeSingleTupleTableSlot(scan->rowdesc, &TTSOpsVirtual);
}

/* Release what PankoScanBegin set up. */
void
PankoScanEnd(EventScan *scan)
{
	ExecDropSingleTupleTableSlot(scan->rowslot);
	scan->rowslot = NULL;
}

/*
 * Does this table qualify for the path (columns, policy, privilege, a GIN
 * index of panko's on its traits)?  Its attribute numbers into attnums.
 */
static bool
TableQualifies(Relation rel, EventScan *scan, AttrNumber *attnums)
{
	return pg_class_aclcheck(RelationGetRelid(rel), GetUserId(), ACL_SELECT) == ACLCHECK_OK &&
		ScanColumns(rel, scan->traits_type, attnums) &&
		CanonicalPolicy(rel, attnums[COL_TRAITS], scan->traits_type, &scan->visible_fn);
}

/*
 * Collect one table's matches through its GIN index into out; false, with
 * nothing collected from it, when the table does not qualify.
 */
static bool
ScanTable(Oid relid, EventScan *scan, ScanRows *out)
{
	Relation	rel;
	Oid			gin;
	AttrNumber	attnums[NCOLUMNS];
	ScanKeyData keys[2];
	int			nkeys = 0;
	int64		ntids;
	TIDBitmap  *tbm;
	TBMIterator *iterator;
	TBMIterateResult *tbmres;
	TableScanDesc hscan;
	TupleTableSlot *slot;
	Snapshot	snapshot = GetActiveSnapshot();

	if (get_rel_relkind(relid) != RELKIND_RELATION)
		return false;
	rel = table_open(relid, AccessShareLock);
	if (!TableQualifies(rel, scan, attnums) || !OidIsValid(gin = PankoTraitsGinIndex(rel)))
	{
		table_close(rel, NoLock);
		return false;
	}
	if (!scan->visible_ready)
	{
		/* (its state lives for the call, not for one table's read) */
		fmgr_info_cxt(scan->visible_fn, &scan->visible, scan->callcxt);
		scan->visible_ready = true;
	}

	ScanKeyEntryInitialize(&keys[nkeys++], 0, 1, GIN_STRATEGY_MATCH, scan->query_type,
						   InvalidOid, InvalidOid, scan->query);
	if (scan->scope)
		ScanKeyEntryInitialize(&keys[nkeys++], 0, 1, GIN_STRATEGY_CONTAINS, scan->traits_type,
							   InvalidOid, InvalidOid, PointerGetDatum(scan->scope));
	tbm = PankoTraitsGinBitmap(gin, keys, nkeys, &ntids);

	slot = table_slot_create(rel, NULL);
	hscan = table_beginscan_bm(rel, snapshot, 0, NULL);
	iterator = tbm_begin_iterate(tbm);
	while ((tbmres = tbm_iterate(iterator)) != NULL)
	{
		if (!table_scan_bitmap_next_block(hscan, tbmres))
			continue;
		/* every tuple is checked again, lossy page or not */
		while (table_scan_bitmap_next_tuple(hscan, tbmres, slot))
		{
			HeapTuple	tuple;
			TupleDesc	desc = RelationGetDescr(rel);
			ScanRow    *row;
			bool		isnull;

			CHECK_FOR_INTERRUPTS();
			if (!ScanRowMatches(scan, slot, attnums))
				continue;
			if (out->n == out->max)
			{
				out->max = Max(16, out->max * 2);
				out->rows = out->rows ? repalloc_huge(out->rows, sizeof(ScanRow) * out->max)
					: palloc(sizeof(ScanRow) * out->max);
			}
			row = &out->rows[out->n++];
			tuple = ExecCopySlotHeapTuple(slot);
			row->generated = DatumGetTimestampTz(heap_getattr(tuple, attnums[COL_GENERATED], desc, &isnull));
			row->message_id = DatumGetTextPP(heap_getattr(tuple, attnums[COL_MESSAGE_ID], desc, &isnull));
			row->type_id = heap_getattr(tuple, attnums[COL_TYPE], desc, &isnull);
			row->traits = heap_getattr(tuple, attnums[COL_TRAITS], desc, &isnull);
			row->raw = heap_getattr(tuple, attnums[COL_RAW], desc, &isnull);
			if (isnull)
				row->raw = (Datum) 0;
		}
	}
	tbm_end_iterate(iterator);
	table_endscan(hscan);
	ExecDropSingleTupleTableSlot(slot);
	tbm_free(tbm);
	/* (the locks are held to the end of the transaction, as the plan's are) */
	table_close(rel, NoLock);
	return true;
}

/*
 * Read the matches of the scan's filter in relid, a partition's table (or
 * a day partitioned by class: each of its tables), through the GIN
 * indexes, sorted, and hand the first limit of them to dest as rows of the
 * page's statement (message_id, event_type_id, generated, traits, raw).
 * False, having handed nothing, when this path does not apply (see the top
 * of the file): the caller then runs the kept plan.  A day partitioned by
 * class qualifies when it and every one of its tables do: the plan would
 * read it under its own policy, and each table's is the same.
 */
bool
PankoScanIndexed(Oid relid, EventScan *scan, DestReceiver *dest, uint64 limit)
{
	MemoryContext cxt;
	MemoryContext old;
	ScanRows	found = {NULL, 0, 0};
	List	   *tables;
	ListCell   *lc;
	bool		ok = true;

	if (get_rel_relkind(relid) == RELKIND_PARTITIONED_TABLE)
	{
		Relation	day = table_open(relid, AccessShareLock);
		AttrNumber	attnums[NCOLUMNS];

		ok = TableQualifies(day, scan, attnums);
		table_close(day, NoLock);
		if (!ok)
			return false;
		/* (its tables cannot be dropped while it is locked) */
		tables = PankoPartitionTables(relid);
	}
	else
		tables = list_make1_oid(relid);

	cxt = AllocSetContextCreate(CurrentMemoryContext, "panko indexed scan", ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(cxt);
	foreach(lc, tables)
	{
		if (lfirst_oid(lc) != relid && PankoPartitionIsEmpty(lfirst_oid(lc)))
			continue;
		if (!(ok = ScanTable(lfirst_oid(lc), scan, &found)))
			break;
	}
	if (ok)
	{
		qsort_arg(found.rows, found.n, sizeof(ScanRow), ScanRowCompare, scan);
		for (int i = 0; i < found.n && (uint64) i < limit; i++)
		{
			TupleTableSlot *out = scan->rowslot;

			ExecClearTuple(out);
			out->tts_values[0] = PointerGetDatum(found.rows[i].message_id);
			out->tts_isnull[0] = false;
			out->tts_values[1] = found.rows[i].type_id;
			out->tts_isnull[1] = false;
			out->tts_values[2] = TimestampTzGetDatum(found.rows[i].generated);
			out->tts_isnull[2] = false;
			out->tts_values[3] = found.rows[i].traits;
			out->tts_isnull[3] = false;
			out->tts_values[4] = found.rows[i].raw;
			out->tts_isnull[4] = (found.rows[i].raw == (Datum) 0);
			ExecStoreVirtualTuple(out);
			dest->receiveSlot(out, dest);
		}
		ExecClearTuple(scan->rowslot);
	}
	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
	return ok;
}
