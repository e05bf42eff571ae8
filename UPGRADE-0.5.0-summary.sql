-- partition_summary: bounded reads per record_events call (src/traits_summary.c
-- merges a partition's batch rows and deltas by level; the seal check and the
-- search for partitions to seal go through indexes).
DROP INDEX panko.partition_summary_relid_idx;
CREATE INDEX partition_summary_relid_kind_idx ON panko.partition_summary (relid, kind, events);
CREATE INDEX partition_summary_seal_idx ON panko.partition_summary (partition) WHERE kind = 's';
COMMENT ON INDEX panko.partition_summary_relid_kind_idx IS
    'Summaries of one partition by kind and size: the merge of a level''s rows and the seal read only their own';
COMMENT ON INDEX panko.partition_summary_seal_idx IS 'Seals by partition name: is a partition sealed, which past partitions are not yet';
COMMENT ON COLUMN panko.partition_summary.events IS 'Events whose keys it holds (b and d rows of fewer than 4096 are merged by floor(log16(events)))';
