/*
 * gin_entry.c
 *		Insert a batch's GIN keys into the entry tree, each starting from the
 *		leaf the previous key went to.
 *
 * A batch's keys reach an index in key order (event_input.c sorts them),
 * and consecutive keys mostly belong on one leaf: a day's request ids, say,
 * spread in order over a few hundred leaves, and a batch adds dozens to
 * each.  ginEntryInsert descends from the root for every key, locking and
 * searching each level on the way: a tenth of an ingest.
 *
 * PankoGinEntryInsert remembers the path of its previous insert and tries
 * that leaf first.  The leaf is the one a descent would find when the key
 * sorts at or after the leaf's first key (so not below the leaf's range)
 * and not after its last one, unless it is the rightmost leaf (what GIN's
 * own descent checks before it moves right).  That holds whatever the order
 * of the keys; the order only makes it likely.  Otherwise, and whenever the
 * leaf is not a plain entry leaf any more (a split not finished, the root
 * that became an internal page), it descends from the root as
 * ginEntryInsert does.
 *
 * The remembered pages above the leaf stand in for those of a descent.
 * GIN reads them again only to finish a split of the leaf, and copes with
 * parents that have changed since: it moves right along a level, or looks
 * for the parents from the root (ginFinishSplit).  It must, since a descent
 * holds no lock above the leaf either.  Entry tree pages are never deleted
 * or reused, so a remembered block stays a page of the same tree.
 *
 * The rest is what ginEntryInsert does: a key already on the leaf gets the
 * items added to its posting list or posting tree, a new key a new tuple.
 */
#include "postgres.h"

#include "access/gin_private.h"
#include "storage/bufmgr.h"
#include "storage/predicate.h"

#include "gin_entry.h"

/* Is the leaf on top of the stack the one where the key belongs? */
static bool
LeafHoldsKey(GinBtree btree, GinBtreeStack *stack)
{
	Page		page = BufferGetPage(stack->buffer);
	IndexTuple	first;
	GinNullCategory category;
	Datum		key;

	if (!GinPageIsLeaf(page) || GinPageIsData(page) || GinPageIsDeleted(page) ||
		GinPageIsIncompleteSplit(page) || PageIsEmpty(page))
		return false;
	first = (IndexTuple) PageGetItem(page, PageGetItemId(page, FirstOffsetNumber));
	key = gintuple_get_key(btree->ginstate, first, &category);
	if (ginCompareAttEntries(btree->ginstate, btree->entryAttnum, btree->entryKey,
							 btree->entryCategory, gintuple_get_attrnum(btree->ginstate, first),
							 key, category) < 0)
		return false;
	/* (the root has no right sibling, and isMoveRight says so for any rightmost page) */
	return !btree->isMoveRight(btree, page);
}

/*
 * The remembered path as a stack, its leaf locked for the insert; NULL
 * when there is none, or the key belongs elsewhere.
 */
static GinBtreeStack *
PathStack(GinEntryPath *path, GinBtree btree)
{
	GinBtreeStack *stack = NULL;

	if (path->depth == 0 || path->blkno[0] != btree->rootBlkno)
		return NULL;
	for (int i = 0; i < path->depth; i++)
	{
		GinBtreeStack *s = palloc(sizeof(GinBtreeStack));

		s->blkno = path->blkno[i];
		s->buffer = path->buffer[i];
		IncrBufferRefCount(s->buffer);
		s->off = InvalidOffsetNumber;
		s->predictNumber = 1;
		s->parent = stack;
		stack = s;
	}
	LockBuffer(stack->buffer, GIN_EXCLUSIVE);
	if (!LeafHoldsKey(btree, stack))
	{
		LockBuffer(stack->buffer, GIN_UNLOCK);
		freeGinBtreeStack(stack);
		return NULL;
	}
	return stack;
}

/*
 * Remember the stack's path, root first, with a pin of its own on each page
 * (so that the next stack takes one without a buffer lookup); nothing, for
 * a tree too deep.
 */
static void
PathRemember(GinEntryPath *path, GinBtreeStack *stack)
{
	int			depth = 0;
	int			level;

	for (GinBtreeStack *s = stack; s != NULL; s = s->parent)
		depth++;
	if (depth > GIN_ENTRY_PATH_MAX)
	{
		PankoGinEntryPathEnd(path);
		return;
	}
	level = depth;
	for (GinBtreeStack *s = stack; s != NULL; s = s->parent)
	{
		level--;
		if (level < path->depth && path->buffer[level] == s->buffer)
			continue;
		if (level < path->depth)
			ReleaseBuffer(path->buffer[level]);
		IncrBufferRefCount(s->buffer);
		path->buffer[level] = s->buffer;
		path->blkno[level] = s->blkno;
	}
	for (level = depth; level < path->depth; level++)
		ReleaseBuffer(path->buffer[level]);
	path->depth = depth;
}

/* Let go of the path's pages. */
void
PankoGinEntryPathEnd(GinEntryPath *path)
{
	for (int level = 0; level < path->depth; level++)
		ReleaseBuffer(path->buffer[level]);
	path->depth = 0;
}

/*
 * The leaf tuple of a key with these items added to old's (a new key: old
 * is NULL): a posting list when it fits in a tuple, else a posting tree.
 * items are sorted and distinct.
 */
static IndexTuple
LeafTuple(GinState *ginstate, OffsetNumber attnum, Datum key, GinNullCategory category,
		  IndexTuple old, ItemPointerData *items, uint32 nitem,
		  GinStatsData *buildStats, Buffer buffer)
{
	ItemPointerData *all = items;
	int			nall = (int) nitem;
	GinPostingList *list;
	int			nwritten;
	IndexTuple	tuple = NULL;
	BlockNumber root;

	if (old != NULL)
	{
		int			nold;
		ItemPointerData *olditems = ginReadTuple(ginstate, attnum, old, &nold);

		all = ginMergeItemPointers(items, nitem, olditems, (uint32) nold, &nall);
	}
	list = ginCompressPostingList(all, nall, GinMaxItemSize, &nwritten);
	if (nwritten == nall)
		tuple = GinFormTuple(ginstate, attnum, key, category, (char *) list,
							 SizeOfGinPostingList(list), nall, false);
	pfree(list);
	if (tuple != NULL)
		return tuple;

	/* too many items for a tuple (a too long key fails here, before any tree) */
	tuple = GinFormTuple(ginstate, attnum, key, category, NULL, 0, 0, true);
	root = createPostingTree(ginstate->index, all, nall, buildStats, buffer);
	GinSetPostingTree(tuple, root);
	return tuple;
}

/*
 * ginEntryInsert, starting from the leaf of path's previous insert when the
 * key belongs there (see the top of the file).
 */
void
PankoGinEntryInsert(GinEntryPath *path, GinState *ginstate, OffsetNumber attnum,
					Datum key, GinNullCategory category,
					ItemPointerData *items, uint32 nitem, GinStatsData *buildStats)
{
	GinBtreeData btree;
	GinBtreeEntryInsertData insertdata;
	GinBtreeStack *stack;
	IndexTuple	old = NULL;

	ginPrepareEntryScan(&btree, attnum, key, category, ginstate);
	btree.isBuild = (buildStats != NULL);
	stack = PathStack(path, &btree);
	if (stack == NULL)
		stack = ginFindLeafPage(&btree, false, false, NULL);
	PathRemember(path, stack);

	if (btree.findItem(&btree, stack))
	{
		Page		page = BufferGetPage(stack->buffer);

		old = (IndexTuple) PageGetItem(page, PageGetItemId(page, stack->off));
		if (GinIsPostingTree(old))
		{
			BlockNumber root = GinGetPostingTree(old);

			LockBuffer(stack->buffer, GIN_UNLOCK);
			freeGinBtreeStack(stack);
			ginInsertItemPointers(ginstate->index, root, items, nitem, buildStats);
			return;
		}
	}
	CheckForSerializableConflictIn(ginstate->index, NULL, BufferGetBlockNumber(stack->buffer));
	insertdata.entry = LeafTuple(ginstate, attnum, key, category, old, items, nitem,
								 buildStats, stack->buffer);
	insertdata.isDelete = (old != NULL);
	if (old == NULL && buildStats)
		buildStats->nEntries++;
	ginInsertValue(&btree, stack, &insertdata, buildStats);
	pfree(insertdata.entry);
}
