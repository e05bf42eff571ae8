/*
 * traits_summary.h
 *		Summaries of the trait keys of past partitions (traits_summary.c).
 */
#ifndef PANKO_TRAITS_SUMMARY_H
#define PANKO_TRAITS_SUMMARY_H

#include "postgres.h"
#include "utils/timestamp.h"

#include "traits.h"

/* A partition is sealed once its upper bound is this far in the past. */
#define SUMMARY_GRACE		(INT64CONST(3600) * USECS_PER_SEC)

/*
 * How long a backend that found no partition left to seal waits before it
 * looks again (unless a batch stores into a past partition not sealed).
 */
#define SUMMARY_SEAL_RECHECK	(INT64CONST(60) * USECS_PER_SEC)

/* The keys a batch stored into one partition. */
typedef struct SummaryBatch
{
	Oid			relid;
	const char *name;
	int64		events;
	TimestampTz upper;			/* the partition's upper bound; 0 = unknown */
	uint32	   *keys;			/* 2 per trait at most */
	int			nkeys;
} SummaryBatch;

extern int	SummaryTraitKeys(const Traits *t, uint32 *keys, uint32 *recent);
extern int	SummarySortKeys(uint32 *keys, int n);
extern bytea *SummaryKeySet(const uint32 *keys, int n, bool sorted);
extern bytea *SummaryBloom(const uint32 *keys, int n);

extern void PankoSummarizeBatch(SummaryBatch *parts, int nparts);

extern bool PankoSummariesReady(void);
extern bool PankoSummaryHolds(Oid relid);
extern int	PankoSummaryQueryKeys(const TraitQuery *q, const Traits *scope, uint32 *keys);
extern void PankoSummarySkipMany(const Oid *relids, int n, const uint32 *keys, int nkeys, bool *skip);

#endif							/* PANKO_TRAITS_SUMMARY_H */
