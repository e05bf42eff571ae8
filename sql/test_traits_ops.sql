-- panko.traits operators and accessors
SET search_path = public, panko;
SET TimeZone = 'UTC';

CREATE TEMP TABLE t (id int, tr traits);
INSERT INTO t VALUES
    (1, '{"project_id":string="p1", "memory_mb":integer=512, "ratio":float=0.5, "launched_at":datetime="2024-01-02T03:04:05"}'),
    (2, '{"project_id":string="p2", "memory_mb":string="512"}'),
    (3, '{}'),
    (4, NULL),
    (5, '{"project_id":integer=7, "project_id":string="p1"}');

-- ? : has a trait of that name, of any type
SELECT id, tr ? 'project_id' AS has_project, tr ? 'memory_mb' AS has_memory, tr ? 'nope' AS has_nope FROM t ORDER BY id;

-- @> : typed containment
SELECT id FROM t WHERE tr @> '{"memory_mb":integer=512}' ORDER BY id;
SELECT id FROM t WHERE tr @> '{"memory_mb":string="512"}' ORDER BY id;
SELECT id FROM t WHERE tr @> '{"project_id":string="p1", "memory_mb":integer=512}' ORDER BY id;
SELECT id FROM t WHERE tr @> '{}' ORDER BY id;
SELECT id FROM t WHERE '{"project_id":string="p1"}' <@ tr ORDER BY id;
SELECT id FROM t WHERE tr @> '{"ratio":float=0.5, "launched_at":datetime="2024-01-02T05:04:05+02:00"}' ORDER BY id;

-- -> : the value as text, as the API prints it; first type in type order
SELECT id, tr -> 'project_id' AS project, tr -> 'memory_mb' AS memory, tr -> 'ratio' AS ratio,
       tr -> 'launched_at' AS launched, tr -> 'nope' AS nope
FROM t ORDER BY id;

-- typed accessors: NULL when the trait is missing or of another type
SELECT id, trait_text(tr, 'project_id'), trait_int(tr, 'memory_mb'), trait_float(tr, 'ratio'),
       trait_datetime(tr, 'launched_at'), trait_int(tr, 'project_id'), trait_count(tr)
FROM t ORDER BY id;

-- each_trait: one row per trait, values as the API prints them
SELECT e.* FROM t, each_trait(t.tr) e WHERE t.id = 1;
SELECT count(*) FROM t, each_trait(t.tr) e WHERE t.id = 3;

-- = and <>: canonical form makes equal sets equal
SELECT '{"b":integer=1, "a":string="x"}'::traits = '{"a":string="x", "b":integer=1}'::traits AS same,
       '{"a":string="x"}'::traits <> '{"a":string="y"}'::traits AS different,
       '{"a":float=0.0}'::traits = '{"a":float=-0.0}'::traits AS zeros;

-- NULL in, NULL out (STRICT)
SELECT NULL::traits ? 'a' AS exist, NULL::traits @> '{}' AS contains, trait_count(NULL) AS count,
       traits_to_jsonb(NULL) AS json;
