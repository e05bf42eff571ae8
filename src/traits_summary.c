/*
 * traits_summary.c
 *		Summaries of the trait keys of past partitions, so that a selective
 *		trait filter reads only the few partitions that can hold a match
 *		instead of probing every partition's GIN index.
 *
 * Keys.  Every trait gives a presence key, a 32-bit hash of (name, type),
 * and a string or integer trait also a value key, a hash of (name, type,
 * value).  A filter "name = value" on a string or an integer needs the
 * value key; any other filter needs the presence key.  A partition none of
 * whose summaries has a filter's key cannot match the query, so the walk of
 * get_events skips it without opening it.
 *
 * Rows of panko.partition_summary, by partition (relid and name):
 *	'b'	a batch's keys: record_events writes one for every partition it
 *		stores into that is not sealed yet, for the seal to merge;
 *	's'	the seal, once the partition's upper bound is SUMMARY_GRACE in the
 *		past: a Bloom filter of every key of the partition, built from its
 *		batch rows when they cover all its events (same count as
 *		panko.partition_rows), else from a scan of the partition (events
 *		stored before 0.4.0);
 *	'd'	a delta: the keys of a later batch stored into a sealed partition.
 * Readers use sealed partitions only (their seal and deltas); every other
 * partition is always read.  A batch that stores into a past partition not
 * sealed yet seals it; otherwise a backend looks for partitions to seal at
 * most every SUMMARY_SEAL_RECHECK once it found none (the search reads
 * every partition), and on every call while some are left.
 *
 * Merges.  A writer that stores one event per call would add a row per
 * call, and every later call and reader would read them all.  So rows of a
 * partition and kind ('b' or 'd') are merged by levels: a row's level is
 * floor(log16(events)), and the writer whose row makes SUMMARY_MERGE_FANIN
 * rows of a level (below SUMMARY_MERGE_LEVELS) replaces them with one row of
 * their keys (the union, sorted) and the sum of their events, which lands
 * on a higher level, and so on up.  A partition has at most FANIN - 1 rows
 * of each merged level, so a call's statements read a bounded number of
 * rows, and each key is merged at most SUMMARY_MERGE_LEVELS times.  A merge
 * deletes only rows it locked (FOR UPDATE SKIP LOCKED: it never waits for,
 * nor merges, another merge's rows) and sums exactly what it deleted, so
 * the batch rows still count the partition's events.  Rows of bigger
 * batches stay as they are: there are few of them.  A merged delta carries
 * the epoch this transaction bumped for its own delta.
 *
 * Consistency.  A seal takes a SHARE lock on the partition (not waiting for
 * it, nor for another seal: sealing is retried by later batches, and never
 * waits while holding that lock), so no insert into it is in
 * flight, and reads its events and batch rows with a snapshot taken after
 * the lock.  A writer checks whether a partition is sealed after its INSERT,
 * holding ROW EXCLUSIVE on it, with a new snapshot: either the seal was
 * committed before (the writer then adds a delta) or it is made after the
 * writer commits (and then sees its batch row).  Every seal and delta bumps
 * panko.summary_epoch in the same transaction, so the epoch a snapshot sees
 * names exactly the set of seals and deltas it sees.  Each backend keeps the
 * summaries in memory, with the epoch they were read at, and reads them
 * again when a call's snapshot sees another epoch (or the table is another
 * one): the cache never answers for a snapshot that sees other summaries.
 * A summary is a superset of its partition's keys at any time (expiry only
 * deletes rows), so it may send a walk to a partition without a match, never
 * away from one.
 */
#include "postgres.h"

#include "access/detoast.h"
#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "panko.h"
#include "event_store.h"
#include "traits.h"
#include "traits_summary.h"

PG_FUNCTION_INFO_V1(seal_partitions);

#define SUMMARY_KEYSET		'K'
#define SUMMARY_KEYS_UNSORTED	'U'
#define SUMMARY_BLOOM		'F'		/* a blocked Bloom filter */
#define BLOOM_BITS_PER_KEY	12
#define BLOOM_HASHES		7

/* Most summary bytes a backend keeps; partitions beyond it are read. */
#define SUMMARY_CACHE_MAX	(64 * 1024 * 1024)

/*
 * Seals per record_events call, and the events one call scans to seal
 * (beyond its first scan, so that a large partition is sealed too).
 */
#define SEALS_PER_CALL		32
#define SEAL_SCAN_BUDGET	200000
#define SEAL_MAINTENANCE_BUDGET	5000000	/* events one maintenance run may scan */

/*
 * Rows of a level merged into one, and the levels merged: rows of fewer
 * than 16^SUMMARY_MERGE_LEVELS events (so a merge reads at most FANIN *
 * 4095 events' keys).
 */
#define SUMMARY_MERGE_FANIN		16
#define SUMMARY_MERGE_LEVELS	3

/* ---------------------------------------------------------------- keys */

static uint32 coded_name_hash[256];
static uint8 coded_name_len[256];
static bool coded_name_hash_ready[256];

/* The hash of a trait name (of its bytes, coded or not). */
static uint32
NameHash(const char *name, int len)
{
	return hash_bytes((const unsigned char *) name, len);
}

/* The presence key of (name, type). */
static inline uint32
PresenceKey(uint32 namehash, int type)
{
	return murmurhash32(namehash ^ ((uint32) type * 0x9e3779b1));
}

/* The value key of (name, type, value), for string and integer traits. */
static inline uint32
ValueKey(uint32 presence, int type, const char *val, int vallen)
{
	uint32		vh = (type == TRAIT_INTEGER)
		? hash_bytes_uint32((uint32) TraitReadInt64(val)) ^ murmurhash32((uint32) (TraitReadInt64(val) >> 32))
		: hash_bytes((const unsigned char *) val, vallen);

	return hash_combine(presence, vh) ^ 0x5bd1e995;
}

/*
 * Do filters of this trait and operator look up a value key?  Not those on
 * an amount (TraitIsAmount): two unique keys a rated data point, kept for
 * filters nobody runs.  A summary written with them is a superset still.
 */
static inline bool
UsesValueKey(const char *name, int namelen, int type, int op)
{
	return op == TQ_EQ && (type == TRAIT_STRING || type == TRAIT_INTEGER) &&
		!TraitIsAmount(name, namelen, type);
}

/*
 * Append the keys of t to keys (room for 2 per trait); returns how many.
 * Decodes the traits in place: this runs for every event of a batch.
 * recent (64 slots, or NULL) remembers presence keys already written, which
 * most events repeat.
 */
int
SummaryTraitKeys(const Traits *t, uint32 *keys, uint32 *recent)
{
	int			n = TraitsCount(t);
	const char *data = TraitsData(t);
	uint32		start = 0;
	int			m = 0;

	for (int i = 0; i < n; i++)
	{
		uint32		e = t->entries[i];
		uint32		end = TE_END(e);
		int			type = TE_TYPE(e);
		uint8		len = (uint8) data[start];
		uint32		nh;
		int			headerlen;
		uint32		pk;
		const char *name;
		int			namelen;

		if (len == TRAIT_NAME_CODED)
		{
			uint8		code = (uint8) data[start + 1];

			name = TraitNameForCode(code);
			if (!coded_name_hash_ready[code])
			{
				coded_name_len[code] = (uint8) strlen(name);
				coded_name_hash[code] = NameHash(name, coded_name_len[code]);
				coded_name_hash_ready[code] = true;
			}
			namelen = coded_name_len[code];
			nh = coded_name_hash[code];
			headerlen = 2;
		}
		else
		{
			name = data + start + 1;
			namelen = len;
			nh = NameHash(name, namelen);
			headerlen = 1 + len;
		}
		pk = PresenceKey(nh, type);
		if (recent == NULL || recent[pk & 63] != pk)
		{
			keys[m++] = pk;
			if (recent)
				recent[pk & 63] = pk;
		}
		if (UsesValueKey(name, namelen, type, TQ_EQ))
			keys[m++] = ValueKey(pk, type, data + start + headerlen, (int) (end - start) - headerlen);
		start = end;
	}
	return m;
}

/* The key a filter looks up. */
static uint32
ItemKey(const TraitItem *item)
{
	uint32		pk = PresenceKey(NameHash(item->name, item->namelen), item->type);

	if (UsesValueKey(item->name, item->namelen, item->type, item->op))
		return ValueKey(pk, item->type, item->value, item->vallen);
	return pk;
}

/* ---------------------------------------------------------------- key sets and Bloom filters */

/* Sort n keys (radix, 11 bits a pass) and drop repeats; returns the count left. */
int
SummarySortKeys(uint32 *keys, int n)
{
	uint32	   *tmp;
	uint32	   *src = keys;
	uint32	   *dst;
	int			m = 0;

	if (n <= 1)
		return n;
	tmp = palloc(sizeof(uint32) * n);
	dst = tmp;
	for (int shift = 0; shift < 32; shift += 11)
	{
		int			count[2049] = {0};

		for (int i = 0; i < n; i++)
			count[((src[i] >> shift) & 2047) + 1]++;
		for (int b = 0; b < 2048; b++)
			count[b + 1] += count[b];
		for (int i = 0; i < n; i++)
			dst[count[(src[i] >> shift) & 2047]++] = src[i];
		{
			uint32	   *t = src;

			src = dst;
			dst = t;
		}
	}
	/* three passes: the sorted keys are in tmp */
	for (int i = 0; i < n; i++)
		if (m == 0 || src[i] != keys[m - 1])
			keys[m++] = src[i];
	pfree(tmp);
	return m;
}

/*
 * A key set: 'K', count, sorted distinct keys; or 'U', count, keys in no
 * order (a batch row, which only a seal reads, and sorts).
 */
bytea *
SummaryKeySet(const uint32 *keys, int n, bool sorted)
{
	Size		size = VARHDRSZ + 1 + sizeof(uint32) + sizeof(uint32) * n;
	bytea	   *b = palloc(size);
	char	   *p = VARDATA(b);
	uint32		count = n;

	SET_VARSIZE(b, size);
	p[0] = sorted ? SUMMARY_KEYSET : SUMMARY_KEYS_UNSORTED;
	memcpy(p + 1, &count, sizeof(uint32));
	memcpy(p + 1 + sizeof(uint32), keys, sizeof(uint32) * n);
	return b;
}

/*
 * A blocked Bloom filter: a key's BLOOM_HASHES bits all fall in one block
 * of 512 bits (a cache line), chosen by the key, so a test costs one
 * memory access.  The positions come from a 64-bit mix of the key.
 */
#define BLOOM_BLOCK_BITS	512

static inline uint64
BloomMix(uint32 key)
{
	uint64		x = (uint64) key * UINT64CONST(0x9e3779b97f4a7c15);

	x ^= x >> 31;
	x *= UINT64CONST(0xbf58476d1ce4e5b9);
	x ^= x >> 29;
	return x;
}

/* The first bit of the key's block, and the steps within it. */
static inline uint32
BloomBlock(uint64 mix, uint32 nbits)
{
	return ((uint32) (mix >> 32) & (nbits / BLOOM_BLOCK_BITS - 1)) * BLOOM_BLOCK_BITS;
}

static inline uint32
BloomBit(uint64 mix, int i)
{
	uint32		a = (uint32) mix;
	uint32		b = ((uint32) (mix >> 20)) | 1;

	return (a + (uint32) i * b) & (BLOOM_BLOCK_BITS - 1);
}

/* Set the bits of n keys in a Bloom filter of nbits. */
static void
BloomAdd(uint8 *bits, uint32 nbits, const uint32 *keys, int n)
{
	for (int i = 0; i < n; i++)
	{
		uint32		key;
		uint64		mix;
		uint32		block;

		memcpy(&key, &keys[i], sizeof(uint32));
		mix = BloomMix(key);
		block = BloomBlock(mix, nbits);
		for (int h = 0; h < BLOOM_HASHES; h++)
		{
			uint32		pos = block + BloomBit(mix, h);

			bits[pos >> 3] |= (uint8) (1 << (pos & 7));
		}
	}
}

/* A Bloom filter of n keys: 'F', number of bits (a power of two), bits. */
bytea *
SummaryBloom(const uint32 *keys, int n)
{
	uint32		nbits = BLOOM_BLOCK_BITS;
	Size		size;
	bytea	   *b;
	char	   *p;

	while (nbits < (uint64) n * BLOOM_BITS_PER_KEY && nbits < ((uint32) 1 << 31))
		nbits <<= 1;
	size = VARHDRSZ + 1 + sizeof(uint32) + nbits / 8;
	b = palloc0(size);
	SET_VARSIZE(b, size);
	p = VARDATA(b);
	p[0] = SUMMARY_BLOOM;
	memcpy(p + 1, &nbits, sizeof(uint32));
	BloomAdd((uint8 *) (p + 1 + sizeof(uint32)), nbits, keys, n);
	return b;
}

/* May a Bloom filter of nbits hold key? */
static inline bool
BloomMayHold(const uint8 *bits, uint32 nbits, uint32 key)
{
	uint64		mix = BloomMix(key);
	uint32		block = BloomBlock(mix, nbits);

	for (int h = 0; h < BLOOM_HASHES; h++)
	{
		uint32		pos = block + BloomBit(mix, h);

		if (!(bits[pos >> 3] & (1 << (pos & 7))))
			return false;
	}
	return true;
}

/*
 * What follows a summary's kind byte and 32-bit count (set), and how many
 * bytes of it there are; NULL when s is not of that kind or too short.
 */
static inline const char *
SummaryPayload(const bytea *s, char kind, uint32 *count, int64 *len)
{
	const char *p = VARDATA_ANY(s);
	int			n = VARSIZE_ANY_EXHDR(s);

	if (n < 1 + (int) sizeof(uint32) || p[0] != kind)
		return NULL;
	memcpy(count, p + 1, sizeof(uint32));
	*len = n - 1 - (int) sizeof(uint32);
	return p + 1 + sizeof(uint32);
}

/* A sorted key set's keys, and their number; NULL when s is not a whole one. */
static inline const uint32 *
SummaryKeys(const bytea *s, uint32 *count)
{
	int64		len;
	const char *p = SummaryPayload(s, SUMMARY_KEYSET, count, &len);

	if (p == NULL || len < 4 * (int64) *count)
		return NULL;
	return (const uint32 *) p;
}

/* A Bloom filter's bits, and their number; NULL when s is not a whole one. */
static inline const uint8 *
SummaryBloomBits(const bytea *s, uint32 *nbits)
{
	int64		len;
	const char *p = SummaryPayload(s, SUMMARY_BLOOM, nbits, &len);

	if (p == NULL || *nbits < BLOOM_BLOCK_BITS || (*nbits & (*nbits - 1)) != 0 || len < (int64) (*nbits / 8))
		return NULL;
	return (const uint8 *) p;
}

/* May the summary s (a key set or a Bloom filter) hold key? */
static bool
SummaryMayHold(const bytea *s, uint32 key)
{
	uint32		count;
	const uint32 *keys = SummaryKeys(s, &count);
	const uint8 *bits;

	if (keys)
	{
		int			lo = 0,
					hi = (int) count - 1;

		while (lo <= hi)
		{
			int			mid = lo + (hi - lo) / 2;
			uint32		k;

			memcpy(&k, &keys[mid], sizeof(uint32));
			if (k == key)
				return true;
			if (k < key)
				lo = mid + 1;
			else
				hi = mid - 1;
		}
		return false;
	}
	if ((bits = SummaryBloomBits(s, &count)) != NULL)
		return BloomMayHold(bits, count, key);
	return true;					/* a format this library does not know */
}

/*
 * Ask the memory for the part of a summary that SummaryMayHold(s, key)
 * will read first: the Bloom filter's block, or the middle of a key set.
 */
static inline void
SummaryPrefetch(const bytea *s, uint32 key)
{
	uint32		count;
	const uint32 *keys;
	const uint8 *bits;

	if ((bits = SummaryBloomBits(s, &count)) != NULL)
		__builtin_prefetch(bits + BloomBlock(BloomMix(key), count) / 8);
	else if ((keys = SummaryKeys(s, &count)) != NULL && count > 0)
		__builtin_prefetch(keys + count / 2);
}

/* The keys of a key set, appended to *keys (grown as needed). */
static void
KeySetAppend(const bytea *s, uint32 **keys, int *n, int *cap)
{
	const char *p = VARDATA_ANY(s);
	int			len = VARSIZE_ANY_EXHDR(s);
	uint32		count;

	if (len < 1 + (int) sizeof(uint32) || (p[0] != SUMMARY_KEYSET && p[0] != SUMMARY_KEYS_UNSORTED))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("panko: a batch summary is not a key set")));
	memcpy(&count, p + 1, sizeof(uint32));
	if (len < 1 + 4 + 4 * (int) count)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("panko: a batch summary is truncated")));
	if (count == 0)
		return;
	if (*n + (int) count > *cap)
	{
		*cap = Max(*cap * 2, *n + (int) count);
		*keys = *keys ? repalloc_huge(*keys, sizeof(uint32) * *cap) : palloc_extended(sizeof(uint32) * *cap, MCXT_ALLOC_HUGE);
	}
	memcpy(*keys + *n, p + 1 + sizeof(uint32), sizeof(uint32) * count);
	*n += count;
}

/* ---------------------------------------------------------------- the reader's cache */

/* Most Bloom filters of a partition kept in its entry itself. */
#define ENTRY_BLOOMS 2

typedef struct SummaryEntry
{
	Oid			relid;			/* key */
	int			nsummaries;
	bytea	  **summaries;		/* the seal and deltas */
	int			nblooms;		/* > 0: the summaries are these filters alone */
	uint32		bloom_bits[ENTRY_BLOOMS];
	const uint8 *bloom[ENTRY_BLOOMS];
} SummaryEntry;

static HTAB *summary_cache = NULL;
static MemoryContext summary_cxt = NULL;
static Oid	summary_relid = InvalidOid;
static int64 summary_epoch = -1;

/* The epoch a snapshot sees, or -1 when the table is missing. */
static int64
ReadEpoch(Snapshot snapshot)
{
	Oid			relid = PankoRelid("summary_epoch");
	Relation	rel;
	TableScanDesc scan;
	TupleTableSlot *slot;
	int64		epoch = -1;

	if (!OidIsValid(relid))
		return -1;
	rel = table_open(relid, AccessShareLock);
	scan = table_beginscan(rel, snapshot, 0, NULL);
	slot = table_slot_create(rel, NULL);
	while (table_scan_getnextslot(scan, ForwardScanDirection, slot))
	{
		bool		isnull;
		Datum		d = slot_getattr(slot, 1, &isnull);

		if (!isnull)
			epoch = Max(epoch, DatumGetInt64(d));
	}
	ExecDropSingleTupleTableSlot(slot);
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	return epoch;
}

/* Key sets of fewer keys than this stay key sets in the cache (a few cache lines). */
#define BLOOM_MIN_KEYS	64

/*
 * Turn a partition's large key sets (its deltas) into Bloom filters of
 * their own in the cache: one read of memory each, instead of a binary
 * search whose every step waits on the one before.  Each filter is sized
 * for its own keys, so no summary's false positives grow (adding a delta's
 * keys to the seal's filter would: a delta can hold as many keys as the
 * seal).
 */
static void
DeltasAsBlooms(SummaryEntry *e)
{
	MemoryContext old = MemoryContextSwitchTo(summary_cxt);

	e->nblooms = 0;
	for (int s = 0; s < e->nsummaries; s++)
	{
		uint32		count;
		const uint32 *keys = SummaryKeys(e->summaries[s], &count);
		uint32	   *copy;

		if (keys == NULL || count < BLOOM_MIN_KEYS)
			continue;
		copy = palloc(sizeof(uint32) * count);	/* (aligned for SummaryBloom) */
		memcpy(copy, keys, sizeof(uint32) * count);
		pfree(e->summaries[s]);
		e->summaries[s] = SummaryBloom(copy, (int) count);
		pfree(copy);
	}
	MemoryContextSwitchTo(old);

	/* a partition of one or two filters is answered from its entry alone */
	if (e->nsummaries > ENTRY_BLOOMS)
		return;
	for (int s = 0; s < e->nsummaries; s++)
		if ((e->bloom[s] = SummaryBloomBits(e->summaries[s], &e->bloom_bits[s])) == NULL)
			return;
	e->nblooms = e->nsummaries;
}

/* Read every seal and delta the snapshot sees into a new cache. */
static void
LoadSummaries(Oid relid, int64 epoch, Snapshot snapshot)
{
	HASHCTL		ctl;
	Relation	rel;
	TableScanDesc scan;
	TupleTableSlot *slot;
	Size		total = 0;
	HASH_SEQ_STATUS seq;
	SummaryEntry *e;

	summary_cache = NULL;
	summary_relid = InvalidOid;
	summary_epoch = -1;
	if (summary_cxt != NULL)
		MemoryContextDelete(summary_cxt);
	summary_cxt = AllocSetContextCreate(CacheMemoryContext, "panko partition summaries",
										ALLOCSET_DEFAULT_SIZES);
	ctl.keysize = sizeof(Oid);
	ctl.entrysize = sizeof(SummaryEntry);
	ctl.hcxt = summary_cxt;
	summary_cache = hash_create("panko partition summaries", 256, &ctl,
								HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);

	rel = table_open(relid, AccessShareLock);
	scan = table_beginscan(rel, snapshot, 0, NULL);
	slot = table_slot_create(rel, NULL);
	while (table_scan_getnextslot(scan, ForwardScanDirection, slot))
	{
		bool		isnull[6];
		Datum		v[6];
		Oid			part;
		char	   *name;
		SummaryEntry *e;
		bool		found;
		bytea	   *s;

		slot_getallattrs(slot);
		for (int i = 0; i < 6; i++)
		{
			v[i] = slot->tts_values[i];
			isnull[i] = slot->tts_isnull[i];
		}
		if (isnull[0] || isnull[1] || isnull[2] || isnull[5] ||
			(DatumGetChar(v[2]) != 's' && DatumGetChar(v[2]) != 'd'))
			continue;
		part = DatumGetObjectId(v[0]);
		name = get_rel_name(part);
		/* a row of a partition since dropped (and its oid reused) */
		if (name == NULL || strcmp(name, TextDatumGetCString(v[1])) != 0)
			continue;
		s = (bytea *) detoast_attr((struct varlena *) DatumGetPointer(v[5]));
		total += VARSIZE(s);
		if (total > SUMMARY_CACHE_MAX)
			break;				/* the rest are read as if unsealed */
		e = hash_search(summary_cache, &part, HASH_ENTER, &found);
		if (!found)
		{
			e->nsummaries = 0;
			e->nblooms = 0;
			e->summaries = NULL;
		}
		e->summaries = e->summaries
			? repalloc(e->summaries, sizeof(bytea *) * (e->nsummaries + 1))
			: MemoryContextAlloc(summary_cxt, sizeof(bytea *));
		e->summaries[e->nsummaries] = MemoryContextAlloc(summary_cxt, VARSIZE(s));
		memcpy(e->summaries[e->nsummaries], s, VARSIZE(s));
		e->nsummaries++;
	}
	ExecDropSingleTupleTableSlot(slot);
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	hash_seq_init(&seq, summary_cache);
	while ((e = hash_seq_search(&seq)) != NULL)
		DeltasAsBlooms(e);
	summary_relid = relid;
	summary_epoch = epoch;
}

/*
 * Make the cache answer for the active snapshot; false when there are no
 * summaries to use (the tables are missing).
 */
bool
PankoSummariesReady(void)
{
	Oid			relid = PankoRelid("partition_summary");
	Snapshot	snapshot = GetActiveSnapshot();
	int64		epoch;

	if (!OidIsValid(relid))
		return false;
	epoch = ReadEpoch(snapshot);
	if (epoch < 0)
		return false;
	if (summary_cache == NULL || relid != summary_relid || epoch != summary_epoch)
		LoadSummaries(relid, epoch, snapshot);
	return true;
}

/* Does the cache hold summaries of this partition (it is sealed)? */
bool
PankoSummaryHolds(Oid relid)
{
	return summary_cache != NULL && hash_search(summary_cache, &relid, HASH_FIND, NULL) != NULL;
}

/*
 * The keys a query's filters need: the trait query's items and the
 * member's scope (which is a conjunction of equalities too).  Returns the
 * number written to keys (room for count(q) + count(scope)).
 */
int
PankoSummaryQueryKeys(const TraitQuery *q, const Traits *scope, uint32 *keys)
{
	int			n = 0;

	if (q)
		for (int i = 0; i < TraitQueryCount(q); i++)
		{
			TraitItem	item = TraitQueryItem(q, i);

			keys[n++] = ItemKey(&item);
		}
	if (scope)
		for (int i = 0; i < TraitsCount(scope); i++)
		{
			TraitItem	item = TraitsItem(scope, i);

			keys[n++] = ItemKey(&item);
		}
	return n;
}

/*
 * Can each of n partitions be skipped (InvalidOid: never): is it sealed,
 * and does some key of the query miss from its seal and from every delta?
 * One partition's answer waits on three reads from memory (its entry's
 * list, the summary's header, the Bloom filter's block), which a walk over
 * 365 partitions would pay one after another; here each step is asked of
 * every partition before the next, so the reads overlap.
 */
void
PankoSummarySkipMany(const Oid *relids, int n, const uint32 *keys, int nkeys, bool *skip)
{
	SummaryEntry **entries;

	memset(skip, 0, sizeof(bool) * n);
	if (summary_cache == NULL || nkeys == 0 || n == 0)
		return;
	entries = palloc(sizeof(SummaryEntry *) * n);
	for (int i = 0; i < n; i++)
	{
		SummaryEntry *e = OidIsValid(relids[i]) ? hash_search(summary_cache, &relids[i], HASH_FIND, NULL) : NULL;

		entries[i] = e;
		if (e == NULL)
			continue;
		/* filters held in the entry: their blocks now; others: their list */
		if (e->nblooms > 0)
			for (int s = 0; s < e->nblooms; s++)
				__builtin_prefetch(e->bloom[s] + BloomBlock(BloomMix(keys[0]), e->bloom_bits[s]) / 8);
		else if (e->nsummaries > 0)
			__builtin_prefetch(e->summaries);
	}
	for (int i = 0; i < n; i++)
		for (int s = 0; entries[i] && entries[i]->nblooms == 0 && s < entries[i]->nsummaries; s++)
			__builtin_prefetch(entries[i]->summaries[s]);
	for (int i = 0; i < n; i++)
		for (int s = 0; entries[i] && entries[i]->nblooms == 0 && s < entries[i]->nsummaries; s++)
			SummaryPrefetch(entries[i]->summaries[s], keys[0]);
	for (int i = 0; i < n; i++)
	{
		SummaryEntry *e = entries[i];

		if (e == NULL)
			continue;
		for (int k = 0; k < nkeys && !skip[i]; k++)
		{
			bool		held = false;

			if (e->nblooms > 0)
				for (int s = 0; s < e->nblooms && !held; s++)
					held = BloomMayHold(e->bloom[s], e->bloom_bits[s], keys[k]);
			else
				for (int s = 0; s < e->nsummaries && !held; s++)
					held = SummaryMayHold(e->summaries[s], keys[k]);
			skip[i] = !held;
		}
	}
	pfree(entries);
}

/* ---------------------------------------------------------------- the writer */

static SPIPlanPtr plan_sealed = NULL;
static SPIPlanPtr plan_insert = NULL;
static SPIPlanPtr plan_bump = NULL;
static SPIPlanPtr plan_bump_nowait = NULL;
static SPIPlanPtr plan_candidates = NULL;
static SPIPlanPtr plan_batch_rows = NULL;
static SPIPlanPtr plan_count = NULL;
static SPIPlanPtr plan_delete = NULL;
static SPIPlanPtr plan_is_sealed = NULL;
static SPIPlanPtr plan_level_count = NULL;
static SPIPlanPtr plan_level_take = NULL;

/* When this backend looks for partitions to seal even if no batch asks. */
static TimestampTz seal_check_next = 0;

/*
 * Run a statement with a snapshot taken now: in READ COMMITTED every SPI
 * statement takes one; under a transaction snapshot, the latest one, so
 * that what other sessions committed before our locks is seen.
 */
static int
ExecFresh(SPIPlanPtr plan, Datum *values, const char *nulls, long tcount)
{
	if (IsolationUsesXactSnapshot())
	{
		CommandCounterIncrement();
		return SPI_execute_snapshot(plan, values, nulls, GetLatestSnapshot(), InvalidSnapshot,
									false, false, tcount);
	}
	return SPI_execute_plan(plan, values, nulls, false, tcount);
}

/* Fail unless a statement of ours did what it must. */
static void
Expect(int rc, int expected)
{
	if (rc != expected)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("panko: summary statement failed: %s", SPI_result_code_string(rc))));
}

/*
 * The next epoch, for this transaction's seals and deltas: a row lock held
 * until commit, so epochs follow commit order.  Without wait, -1 when
 * another transaction holds it (a seal can wait for a later batch).
 */
static int64
BumpEpoch(bool wait)
{
	bool		isnull;
	int			rc;

	if (wait)
	{
		PankoKeepPlan(&plan_bump,
					  "UPDATE panko.summary_epoch SET epoch = epoch OPERATOR(pg_catalog.+) 1 RETURNING epoch",
					  0, NULL, 0);
		rc = ExecFresh(plan_bump, NULL, NULL, 0);
	}
	else
	{
		PankoKeepPlan(&plan_bump_nowait,
					  "UPDATE panko.summary_epoch SET epoch = epoch OPERATOR(pg_catalog.+) 1 "
					  "WHERE ctid OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT ctid FROM panko.summary_epoch FOR UPDATE SKIP LOCKED)) "
					  "RETURNING epoch", 0, NULL, 0);
		rc = ExecFresh(plan_bump_nowait, NULL, NULL, 0);
	}
	Expect(rc, SPI_OK_UPDATE_RETURNING);
	if (SPI_processed == 0 && !wait)
		return -1;
	if (SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("panko: panko.summary_epoch must have exactly one row")));
	return DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
}

/* Insert one summary row. */
static void
InsertSummary(Oid relid, const char *name, char kind, int64 epoch, int64 events, bytea *keys)
{
	Oid			types[6] = {OIDOID, TEXTOID, CHAROID, INT8OID, INT8OID, BYTEAOID};
	Datum		values[6];
	char		nulls[6] = {' ', ' ', ' ', epoch < 0 ? 'n' : ' ', ' ', ' '};

	values[0] = ObjectIdGetDatum(relid);
	values[1] = CStringGetTextDatum(name);
	values[2] = CharGetDatum(kind);
	values[3] = Int64GetDatum(epoch);
	values[4] = Int64GetDatum(events);
	values[5] = PointerGetDatum(keys);
	PankoKeepPlan(&plan_insert,
				  "INSERT INTO panko.partition_summary (relid, partition, kind, epoch, events, keys) "
				  "VALUES ($1, $2, $3, $4, $5, $6)", 6, types, 0);
	Expect(SPI_execute_plan(plan_insert, values, nulls, false, 0), SPI_OK_INSERT);
}

/*
 * Which of these partitions are sealed (seen by a new snapshot)?  One probe
 * of partition_summary_seal_idx per partition (by name; the relid tells a
 * partition since dropped from one of the same name).
 */
static void
FindSealed(SummaryBatch *parts, int nparts, bool *sealed)
{
	Datum	   *names = palloc(sizeof(Datum) * Max(nparts, 1));
	Oid			argtype = TEXTARRAYOID;
	Datum		arg;

	for (int i = 0; i < nparts; i++)
	{
		names[i] = CStringGetTextDatum(parts[i].name);
		sealed[i] = false;
	}
	arg = PointerGetDatum(construct_array(names, nparts, TEXTOID, -1, false, TYPALIGN_INT));
	PankoKeepPlan(&plan_sealed,
				  "SELECT relid FROM panko.partition_summary "
				  "WHERE partition OPERATOR(pg_catalog.=) ANY ($1) AND kind OPERATOR(pg_catalog.=) 's'",
				  1, &argtype, 0);
	Expect(ExecFresh(plan_sealed, &arg, NULL, 0), SPI_OK_SELECT);
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		bool		isnull;
		Oid			relid = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1, &isnull));

		for (int i = 0; i < nparts; i++)
			if (parts[i].relid == relid)
				sealed[i] = true;
	}
}

/*
 * The keys of every event of a partition, from a scan of it (of each of its
 * tables, when it is partitioned by class).
 */
static uint32 *
ScanKeys(Oid relid, int *nkeys)
{
	List	   *tables = PankoPartitionTables(relid);
	ListCell   *lc;
	Snapshot	snapshot = RegisterSnapshot(GetLatestSnapshot());
	int			cap = 1024;
	int			n = 0;
	uint32	   *keys = palloc_extended(sizeof(uint32) * cap, MCXT_ALLOC_HUGE);
	MemoryContext rowcxt = AllocSetContextCreate(CurrentMemoryContext, "panko seal scan",
												 ALLOCSET_DEFAULT_SIZES);

	foreach(lc, tables)
	{
		Relation	rel = table_open(lfirst_oid(lc), AccessShareLock);
		TableScanDesc scan = table_beginscan(rel, snapshot, 0, NULL);
		TupleTableSlot *slot = table_slot_create(rel, NULL);
		AttrNumber	attnum = get_attnum(lfirst_oid(lc), "traits");

		while (table_scan_getnextslot(scan, ForwardScanDirection, slot))
		{
			bool		isnull;
			Datum		d = slot_getattr(slot, attnum, &isnull);
			MemoryContext old;
			Traits	   *t;

			if (isnull)
				continue;
			old = MemoryContextSwitchTo(rowcxt);
			t = DatumGetTraitsP(d);
			MemoryContextSwitchTo(old);
			if (n + 2 * TraitsCount(t) > cap)
			{
				cap = Max(cap * 2, n + 2 * TraitsCount(t));
				keys = repalloc_huge(keys, sizeof(uint32) * cap);
			}
			n += SummaryTraitKeys(t, keys + n, NULL);
			MemoryContextReset(rowcxt);
			CHECK_FOR_INTERRUPTS();
		}
		ExecDropSingleTupleTableSlot(slot);
		table_endscan(scan);
		table_close(rel, NoLock);
	}
	UnregisterSnapshot(snapshot);
	MemoryContextDelete(rowcxt);
	*nkeys = SummarySortKeys(keys, n);
	return keys;
}

/*
 * Seal one partition, if no other session is storing into it: a Bloom
 * filter of all its keys replaces its batch rows.  *budget bounds the
 * events scanned when the batch rows do not cover the partition.
 */
static bool
Seal(Oid relid, const char *name, int64 *epoch, int64 *budget)
{
	Datum		arg;
	Oid			oidtype = OIDOID;
	Oid			texttype = TEXTOID;
	int64		covered = 0;
	int64		events = 0;
	uint32	   *keys = NULL;
	int			nkeys = 0;
	int			cap = 0;
	bool		isnull;

	if (!ConditionalLockRelationOid(relid, ShareLock))
		return false;

	arg = ObjectIdGetDatum(relid);
	PankoKeepPlan(&plan_batch_rows,
				  "SELECT events, keys FROM panko.partition_summary "
				  "WHERE relid OPERATOR(pg_catalog.=) $1 AND kind OPERATOR(pg_catalog.=) 'b'",
				  1, &oidtype, 0);
	Expect(ExecFresh(plan_batch_rows, &arg, NULL, 0), SPI_OK_SELECT);
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		covered += DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1, &isnull));
		KeySetAppend(DatumGetByteaPP(SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 2, &isnull)),
					 &keys, &nkeys, &cap);
	}

	/* (counted by table: the partition's own, or its tables <name>_<class>) */
	arg = CStringGetTextDatum(name);
	PankoKeepPlan(&plan_count,
				  "SELECT coalesce(sum(n), 0)::bigint FROM panko.partition_rows "
				  "WHERE partition OPERATOR(pg_catalog.=) $1 "
				  "OR (partition OPERATOR(pg_catalog.>) ($1 OPERATOR(pg_catalog.||) '_') "
				  "AND partition OPERATOR(pg_catalog.<) ($1 OPERATOR(pg_catalog.||) '`'))", 1, &texttype, 0);
	Expect(ExecFresh(plan_count, &arg, NULL, 0), SPI_OK_SELECT);
	events = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));

	/*
	 * Batch rows cover the partition when they count all its events: every
	 * batch since 0.4.0 wrote one.  Otherwise (events stored before) scan.
	 */
	if (covered != events && events > *budget && *budget < SEAL_SCAN_BUDGET)
	{
		UnlockRelationOid(relid, ShareLock);
		return false;
	}
	if (*epoch < 0 && (*epoch = BumpEpoch(false)) < 0)
	{
		UnlockRelationOid(relid, ShareLock);
		return false;			/* another session is sealing: a later batch will */
	}

	/*
	 * Holding the epoch's row lock, no other seal can commit; one committed
	 * since the candidates were read (SHARE locks do not exclude each other)
	 * is seen now.
	 */
	{
		Oid			types[2] = {TEXTOID, OIDOID};
		Datum		args[2] = {CStringGetTextDatum(name), ObjectIdGetDatum(relid)};

		PankoKeepPlan(&plan_is_sealed,
					  "SELECT 1 FROM panko.partition_summary WHERE partition OPERATOR(pg_catalog.=) $1 "
					  "AND kind OPERATOR(pg_catalog.=) 's' AND relid OPERATOR(pg_catalog.=) $2 LIMIT 1",
					  2, types, 0);
		Expect(ExecFresh(plan_is_sealed, args, NULL, 0), SPI_OK_SELECT);
	}
	if (SPI_processed > 0)
	{
		UnlockRelationOid(relid, ShareLock);
		return false;
	}
	if (covered == events)
		nkeys = SummarySortKeys(keys, nkeys);
	else
	{
		*budget -= Max(events, 1);
		keys = ScanKeys(relid, &nkeys);
	}
	arg = ObjectIdGetDatum(relid);
	PankoKeepPlan(&plan_delete,
				  "DELETE FROM panko.partition_summary WHERE relid OPERATOR(pg_catalog.=) $1 "
				  "AND kind OPERATOR(pg_catalog.=) 'b'", 1, &oidtype, 0);
	Expect(SPI_execute_plan(plan_delete, &arg, NULL, false, 0), SPI_OK_DELETE);
	InsertSummary(relid, name, 's', *epoch, events, SummaryBloom(keys, nkeys));
	return true;
}

/* The merge level of a row of this many events: floor(log16(events)). */
static int
SummaryLevel(int64 events)
{
	int			level = 0;

	while (events >= 16)
	{
		events >>= 4;
		level++;
	}
	return level;
}

/*
 * Replace the rows of (relid, kind) with events in [lo, hi) that no other
 * transaction holds by one row of their keys; returns its events, 0 when
 * there was nothing to merge.
 */
static int64
MergeRows(Oid relid, const char *name, char kind, int64 epoch, int64 lo, int64 hi)
{
	Oid			types[4] = {OIDOID, CHAROID, INT8OID, INT8OID};
	Datum		values[4];
	uint32	   *keys = NULL;
	int			nkeys = 0;
	int			cap = 0;
	int64		events = 0;
	bool		isnull;

	values[0] = ObjectIdGetDatum(relid);
	values[1] = CharGetDatum(kind);
	values[2] = Int64GetDatum(lo);
	values[3] = Int64GetDatum(hi);
	PankoKeepPlan(&plan_level_take,
				  "DELETE FROM panko.partition_summary WHERE ctid OPERATOR(pg_catalog.=) ANY (ARRAY("
				  "SELECT ctid FROM panko.partition_summary WHERE relid OPERATOR(pg_catalog.=) $1 "
				  "AND kind OPERATOR(pg_catalog.=) $2 AND events OPERATOR(pg_catalog.>=) $3 "
				  "AND events OPERATOR(pg_catalog.<) $4 FOR UPDATE SKIP LOCKED)) "
				  "AND relid OPERATOR(pg_catalog.=) $1 AND kind OPERATOR(pg_catalog.=) $2 "
				  "RETURNING events, keys", 4, types, 0);
	Expect(ExecFresh(plan_level_take, values, NULL, 0), SPI_OK_DELETE_RETURNING);
	if (SPI_processed == 0)
		return 0;
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		events += DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1, &isnull));
		KeySetAppend(DatumGetByteaPP(SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 2, &isnull)),
					 &keys, &nkeys, &cap);
	}
	SPI_freetuptable(SPI_tuptable);
	nkeys = SummarySortKeys(keys, nkeys);
	InsertSummary(relid, name, kind, kind == 'd' ? epoch : -1, events, SummaryKeySet(keys, nkeys, true));
	if (keys)
		pfree(keys);			/* NULL when the events had no traits */
	return events;
}

/*
 * After a row of this many events was added to (relid, kind): merge its
 * level's rows when they are SUMMARY_MERGE_FANIN, then the next level's.
 */
static void
MergeLevels(Oid relid, const char *name, char kind, int64 epoch, int64 events)
{
	Oid			types[4] = {OIDOID, CHAROID, INT8OID, INT8OID};
	Datum		values[4];
	int			level = SummaryLevel(events);

	while (level < SUMMARY_MERGE_LEVELS)
	{
		int64		lo = INT64CONST(1) << (4 * level);
		int64		hi = lo << 4;
		bool		isnull;
		int64		merged;

		values[0] = ObjectIdGetDatum(relid);
		values[1] = CharGetDatum(kind);
		values[2] = Int64GetDatum(level == 0 ? 0 : lo);
		values[3] = Int64GetDatum(hi);
		PankoKeepPlan(&plan_level_count,
					  "SELECT count(*) FROM (SELECT FROM panko.partition_summary WHERE relid OPERATOR(pg_catalog.=) $1 "
					  "AND kind OPERATOR(pg_catalog.=) $2 AND events OPERATOR(pg_catalog.>=) $3 "
					  "AND events OPERATOR(pg_catalog.<) $4 LIMIT " CppAsString2(SUMMARY_MERGE_FANIN) ") s",
					  4, types, 0);
		Expect(ExecFresh(plan_level_count, values, NULL, 0), SPI_OK_SELECT);
		if (DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)) < SUMMARY_MERGE_FANIN)
			return;
		merged = MergeRows(relid, name, kind, epoch, level == 0 ? 0 : lo, hi);
		if (SummaryLevel(merged) <= level)
			return;				/* others held some of them: a later call merges */
		level = SummaryLevel(merged);
	}
}

/*
 * Seal up to limit past partitions (upper bound before cutoff) that have no
 * seal yet, newest first, within *budget events scanned; how many were
 * sealed, and in *found how many were waiting.  Runs inside an SPI
 * connection.
 */
static int
SealPast(TimestampTz cutoff, int limit, int64 *budget, int64 *epoch, int *found)
{
	Oid			argtypes[2] = {TIMESTAMPTZOID, INT4OID};
	Datum		args[2];
	int			nseals = 0;
	char	  **names;
	Oid		   *relids;
	int			ncand;

	args[0] = TimestampTzGetDatum(cutoff);
	args[1] = Int32GetDatum(limit);
	PankoKeepPlan(&plan_candidates,
				  "SELECT p.name FROM panko.partition p WHERE p.upper_bound OPERATOR(pg_catalog.<=) $1 "
				  "AND NOT EXISTS (SELECT 1 FROM panko.partition_summary s WHERE s.partition OPERATOR(pg_catalog.=) p.name "
				  "AND s.kind OPERATOR(pg_catalog.=) 's') ORDER BY p.lower_bound DESC LIMIT $2",
				  2, argtypes, 0);
	Expect(ExecFresh(plan_candidates, args, NULL, 0), SPI_OK_SELECT);
	ncand = (int) SPI_processed;
	names = palloc(sizeof(char *) * Max(ncand, 1));
	relids = palloc(sizeof(Oid) * Max(ncand, 1));
	for (int r = 0; r < ncand; r++)
	{
		names[r] = SPI_getvalue(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1);
		relids[r] = PankoRelid(names[r]);
	}
	for (int r = 0; r < ncand && nseals < limit; r++)
		if (OidIsValid(relids[r]) && Seal(relids[r], names[r], epoch, budget))
			nseals++;
	*found = ncand;
	return nseals;
}

/*
 * After record_events stored a batch: the keys of what it stored into each
 * partition (a batch row, or a delta for a sealed one), then seals of past
 * partitions that are not sealed yet.  Runs inside record_events' SPI
 * connection.
 */
void
PankoSummarizeBatch(SummaryBatch *parts, int nparts)
{
	bool	   *sealed = palloc(sizeof(bool) * Max(nparts, 1));
	int64		epoch = -1;
	int64		budget = SEAL_SCAN_BUDGET;
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz cutoff = now - SUMMARY_GRACE;
	bool		look = now >= seal_check_next;
	int			nseals = 0;
	int			ncand = 0;

	if (!OidIsValid(PankoRelid("partition_summary")))
		return;					/* before ALTER EXTENSION panko UPDATE */

	if (nparts > 0)
		FindSealed(parts, nparts, sealed);
	for (int i = 0; i < nparts; i++)
	{
		/* readers search a delta; a batch row waits for its seal to be sorted */
		int			n = sealed[i] ? SummarySortKeys(parts[i].keys, parts[i].nkeys) : parts[i].nkeys;

		if (sealed[i] && epoch < 0)
			epoch = BumpEpoch(true);
		InsertSummary(parts[i].relid, parts[i].name, sealed[i] ? 'd' : 'b', sealed[i] ? epoch : -1,
					  parts[i].events, SummaryKeySet(parts[i].keys, n, sealed[i]));
		MergeLevels(parts[i].relid, parts[i].name, sealed[i] ? 'd' : 'b', epoch, parts[i].events);
		if (!sealed[i] && parts[i].upper <= cutoff)
			look = true;		/* a past partition to seal now */
	}

	/*
	 * Past partitions without a seal, newest first.  The search reads every
	 * partition, so a backend that found none to seal skips it for
	 * SUMMARY_SEAL_RECHECK: a partition passing the cutoff, or made in the
	 * past by another session, is sealed that much later (readers read
	 * unsealed partitions; nothing is missed meanwhile).
	 */
	if (!look)
		return;
	nseals = SealPast(cutoff, SEALS_PER_CALL, &budget, &epoch, &ncand);
	/* all sealed: look again later; else (busy, or more left) next call */
	seal_check_next = (nseals == ncand && ncand < SEALS_PER_CALL) ? now + SUMMARY_SEAL_RECHECK : 0;
}

/*
 * panko.seal_partitions(max_count): maintenance seals the past partitions
 * that writers have not (a bulk load, partitions of an older release, a
 * day no writer touched since), so that trait filters skip them; returns
 * how many it sealed.  Partitions in use by writers are left for later.
 */
Datum
seal_partitions(PG_FUNCTION_ARGS)
{
	int32		limit = PG_ARGISNULL(0) ? 1000 : PG_GETARG_INT32(0);
	int64		epoch = -1;
	int64		budget = SEAL_MAINTENANCE_BUDGET;
	int			found;
	int			nseals;

	if (limit < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_count must not be negative")));
	if (limit == 0 || !OidIsValid(PankoRelid("partition_summary")))
		PG_RETURN_INT32(0);
	PankoSPIConnect();
	nseals = SealPast(GetCurrentTimestamp() - SUMMARY_GRACE, limit, &budget, &epoch, &found);
	SPI_finish();
	PG_RETURN_INT32(nseals);
}
