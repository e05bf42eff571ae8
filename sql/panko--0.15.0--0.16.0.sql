-- panko 0.15.0 -> 0.16.0: the registry of message_ids keeps one row per
-- CloudKitty push instead of one per rated data point.  A point's id is
-- cloudkitty:<push>:<n>, and a push is stored whole in one transaction,
-- so the registry keys such an id by its push (panko.message_id_hash of
-- cloudkitty:<push>:<n> is now that of cloudkitty:<push>): a row per
-- point was a seventh of a push's time, each a write to a random page.
\echo Use "ALTER EXTENSION panko UPDATE TO '0.16.0'" to load this file. \quit

COMMENT ON FUNCTION panko.message_id_hash(text) IS
    'The registry key of a message_id (64-bit hash; of a CloudKitty point''s id cloudkitty:<push>:<n>, of its push''s cloudkitty:<push>)';

-- The points stored before the update are registered under their own ids'
-- old keys: register them under the new ones, with the newest generated
-- each stands for, so that they are still found by message_id and a push
-- sent again still finds its copies.  (The old rows stay until
-- panko.purge_registry drops them with their partitions: a leftover costs
-- ingest one check, never a lost event.)
INSERT INTO panko.event_message AS r (id_hash, generated)
SELECT panko.message_id_hash(e.message_id), max(e.generated)
  FROM panko.event e
 WHERE e.message_id LIKE 'cloudkitty:%'
 GROUP BY 1
ON CONFLICT (id_hash) DO UPDATE SET generated = greatest(r.generated, excluded.generated);
