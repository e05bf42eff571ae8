/*
 * traits_analyze.c
 *		ANALYZE for panko.traits: the most common traits, as most-common-
 *		element statistics (STATISTIC_KIND_MCELEM, like arrays and tsvector).
 *
 * The elements are the GIN keys themselves (bytea ordered like (name, type,
 * value)), kept sorted, so the selectivity functions can binary-search an
 * equality and sum a range.  Without them the planner cannot tell a filter
 * on project_id (2% of events) from one on instance_id (a handful), and a
 * LIMIT query then picks the wrong plan for one of them.
 */
#include "postgres.h"

#include "catalog/pg_statistic.h"
#include "catalog/pg_type.h"
#include "commands/vacuum.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "traits.h"

PG_FUNCTION_INFO_V1(traits_typanalyze);

typedef struct KeyCount
{
	bytea	   *key;
	int			count;
} KeyCount;

/* qsort order of keys (bytea *): the index's, so equal keys are adjacent. */
static int
KeyBytesCompare(const void *a, const void *b)
{
	bytea	   *ka = *(bytea *const *) a;
	bytea	   *kb = *(bytea *const *) b;

	return TraitBytesCompare(VARDATA_ANY(ka), VARSIZE_ANY_EXHDR(ka),
							 VARDATA_ANY(kb), VARSIZE_ANY_EXHDR(kb));
}

/* qsort order of counted keys: the most common first. */
static int
CountDescending(const void *a, const void *b)
{
	const KeyCount *ka = (const KeyCount *) a;
	const KeyCount *kb = (const KeyCount *) b;

	return (kb->count > ka->count) - (kb->count < ka->count);
}

/* qsort order of counted keys by key, as the statistics are kept. */
static int
KeyCountByKey(const void *a, const void *b)
{
	return KeyBytesCompare(&((const KeyCount *) a)->key, &((const KeyCount *) b)->key);
}

/*
 * Count every trait key in the sample, keep the most common ones (ten per
 * statistics target, as for arrays) with their frequencies.
 */
static void
ComputeTraitsStats(VacAttrStats *stats, AnalyzeAttrFetchFunc fetchfunc,
				   int samplerows, double totalrows)
{
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext, "panko traits analyze",
											  ALLOCSET_DEFAULT_SIZES);
	MemoryContext old = MemoryContextSwitchTo(cxt);
	int			cap = 1024;
	int			nkeys = 0;
	bytea	  **keys = palloc(sizeof(bytea *) * cap);
	int			nonnull = 0;
	int			nulls = 0;
	double		width = 0;
	KeyCount   *runs;
	int			nruns = 0;
	int			keep;
	int			slot = 0;

	for (int i = 0; i < samplerows; i++)
	{
		bool		isnull;
		Datum		d = fetchfunc(stats, i, &isnull);
		Traits	   *t;
		bool		lossy;

		vacuum_delay_point();
		if (isnull)
		{
			nulls++;
			continue;
		}
		width += VARSIZE_ANY(DatumGetPointer(d));
		t = DatumGetTraitsP(d);
		nonnull++;
		for (int j = 0; j < TraitsCount(t); j++)
		{
			TraitItem	item = TraitsItem(t, j);

			if (nkeys == cap)
			{
				cap *= 2;
				keys = repalloc_huge(keys, sizeof(bytea *) * cap);
			}
			keys[nkeys++] = TraitGinKey(&item, &lossy);
		}
	}

	stats->stats_valid = true;
	stats->stanullfrac = samplerows > 0 ? (float4) nulls / samplerows : 0;
	stats->stawidth = nonnull > 0 ? (int32) (width / nonnull) : 0;
	stats->stadistinct = 0;		/* unknown */

	if (nonnull > 0 && nkeys > 0)
	{
		qsort(keys, nkeys, sizeof(bytea *), KeyBytesCompare);
		runs = palloc(sizeof(KeyCount) * nkeys);
		for (int i = 0; i < nkeys; i++)
		{
			if (nruns > 0 && KeyBytesCompare(&runs[nruns - 1].key, &keys[i]) == 0)
				runs[nruns - 1].count++;
			else
			{
				runs[nruns].key = keys[i];
				runs[nruns++].count = 1;
			}
		}
		qsort(runs, nruns, sizeof(KeyCount), CountDescending);
		keep = Min(nruns, stats->attr->attstattarget * 10);
		/* a key seen once is no better than a guess */
		while (keep > 0 && runs[keep - 1].count < 2)
			keep--;
		qsort(runs, keep, sizeof(KeyCount), KeyCountByKey);

		if (keep > 0)
		{
			Datum	   *values;
			float4	   *numbers;
			float4		minfreq = 1,
						maxfreq = 0;

			MemoryContextSwitchTo(stats->anl_context);
			values = palloc(sizeof(Datum) * keep);
			numbers = palloc(sizeof(float4) * (keep + 3));
			for (int i = 0; i < keep; i++)
			{
				float4		f = (float4) runs[i].count / nonnull;

				values[i] = PointerGetDatum(DatumGetByteaPCopy(PointerGetDatum(runs[i].key)));
				numbers[i] = f;
				minfreq = Min(minfreq, f);
				maxfreq = Max(maxfreq, f);
			}

			/*
			 * MCELEM convention: then min and max frequency, and null
			 * frequency
			 */
			numbers[keep] = minfreq;
			numbers[keep + 1] = maxfreq;
			numbers[keep + 2] = stats->stanullfrac;

			stats->stakind[slot] = STATISTIC_KIND_MCELEM;
			stats->staop[slot] = InvalidOid;
			stats->stacoll[slot] = InvalidOid;
			stats->stavalues[slot] = values;
			stats->numvalues[slot] = keep;
			stats->stanumbers[slot] = numbers;
			stats->numnumbers[slot] = keep + 3;
			stats->statypid[slot] = BYTEAOID;
			stats->statyplen[slot] = -1;
			stats->statypbyval[slot] = false;
			stats->statypalign[slot] = TYPALIGN_INT;
		}
	}
	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
}

/*
 * The type's ANALYZE function: a sample large enough for the statistics
 * target, counted by ComputeTraitsStats.
 */
Datum
traits_typanalyze(PG_FUNCTION_ARGS)
{
	VacAttrStats *stats = (VacAttrStats *) PG_GETARG_POINTER(0);

	if (stats->attr->attstattarget < 0)
		stats->attr->attstattarget = default_statistics_target;
	stats->compute_stats = ComputeTraitsStats;
	stats->minrows = 300 * stats->attr->attstattarget;
	PG_RETURN_BOOL(true);
}
