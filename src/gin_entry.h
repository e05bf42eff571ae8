/*
 * gin_entry.h
 *		GIN entry inserts that start from the previous insert's leaf
 *		(gin_entry.c).
 */
#ifndef PANKO_GIN_ENTRY_H
#define PANKO_GIN_ENTRY_H

#include "access/gin_private.h"

/* Levels of an entry tree whose path is remembered (deeper ones descend). */
#define GIN_ENTRY_PATH_MAX 16

/*
 * The pages of the previous insert, root first, kept pinned; one per index
 * being filled, zeroed to start, ended by PankoGinEntryPathEnd.
 */
typedef struct GinEntryPath
{
	int			depth;			/* 0: nothing remembered */
	BlockNumber blkno[GIN_ENTRY_PATH_MAX];
	Buffer		buffer[GIN_ENTRY_PATH_MAX];
} GinEntryPath;

extern void PankoGinEntryInsert(GinEntryPath *path, GinState *ginstate, OffsetNumber attnum,
								Datum key, GinNullCategory category,
								ItemPointerData *items, uint32 nitem, GinStatsData *buildStats);
extern void PankoGinEntryPathEnd(GinEntryPath *path);

#endif
