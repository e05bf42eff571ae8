-- panko.traitquery: Panko's trait filters, and traits @@ query
SET search_path = public, panko;
SET TimeZone = 'UTC';

-- Text form
SELECT '{}'::traitquery;
SELECT '{"memory_mb":integer >= 4096, "state":string = "error"}'::traitquery;
SELECT '{a:integer=1, b:integer==2, c:integer!=3, d:integer<>4, e:integer<5, f:integer<=6, g:integer>7, h:integer>=8}'::traitquery;
SELECT '{"x":float < 0.1, "x":float > 1e-05, "t":datetime >= "2024-01-01T00:00:00+01:00"}'::traitquery;
SELECT '{"a":integer =< 1}'::traitquery;
SELECT '{"a":integer ~ 1}'::traitquery;
SELECT '{"a":integer >= "1"}'::traitquery;

-- From Panko's traits_filter (storage form) and the API's q form
SELECT traitquery('[{"key":"memory_mb","op":"ge","integer":4096},{"key":"state","string":"error"}]'::jsonb);
SELECT traitquery('[{"field":"memory_mb","op":"lt","type":"integer","value":"100"},{"field":"host","value":"c1"}]'::jsonb);
SELECT traitquery('[{"key":"r","op":"gt","float":"1.5"},{"key":"d","op":"le","datetime":"2024-01-01"}]'::jsonb);
SELECT traitquery('[]'::jsonb);

-- Bad filters get Panko's own messages (22023)
DO $$ BEGIN PERFORM panko.traitquery('[{"key":"a","op":"like","string":"x"}]'::jsonb);
EXCEPTION WHEN invalid_parameter_value THEN RAISE NOTICE 'SQLSTATE 22023 (invalid_parameter_value)'; END $$;
SELECT traitquery('[{"key":"a","op":"like","string":"x"}]'::jsonb);
SELECT traitquery('[{"field":"a","type":"bool","value":"x"}]'::jsonb);
SELECT traitquery('[{"field":"a","type":"integer","value":"abc"}]'::jsonb);
SELECT traitquery('[{"field":"a","type":"integer","value":"1.5"}]'::jsonb);
SELECT traitquery('[{"field":"a","type":"float","value":"x1"}]'::jsonb);
SELECT traitquery('[{"field":"a","type":"datetime","value":"2024-99-01"}]'::jsonb);
SELECT traitquery('[{"key":"a","op":"eq"}]'::jsonb);
SELECT traitquery('[{"key":"a","string":"x","integer":1}]'::jsonb);
SELECT traitquery('[{"op":"eq","string":"x"}]'::jsonb);
SELECT traitquery('[{"key":"a","string":"x","colour":"red"}]'::jsonb);
SELECT traitquery('[5]'::jsonb);
SELECT traitquery('{"key":"a"}'::jsonb);

-- Matching: every op on every type.  An event matches a filter when it has
-- a trait of that name AND that type whose value compares true; so "ne"
-- never matches an event without the trait, and a string filter never
-- matches an integer trait.
CREATE TEMP TABLE ev (id int, tr traits);
INSERT INTO ev VALUES
    (1, '{"s":string="apple", "i":integer=10, "f":float=1.5, "d":datetime="2024-01-01T00:00:00"}'),
    (2, '{"s":string="banana", "i":integer=20, "f":float=2.5, "d":datetime="2024-01-02T00:00:00"}'),
    (3, '{"s":string="cherry", "i":integer=-30, "f":float=-3.5, "d":datetime="2023-12-31T23:59:59.999999"}'),
    (4, '{"s":integer=10, "i":string="10"}'),
    (5, '{}');

CREATE TEMP TABLE probe (type text, value text);
INSERT INTO probe VALUES ('string', '"banana"'), ('integer', '10'), ('float', '1.5'), ('datetime', '"2024-01-01T00:00:00"');

SELECT p.type, o.op,
       (SELECT string_agg(ev.id::text, ',' ORDER BY ev.id) FROM ev
         WHERE ev.tr @@ format('{"%s":%s %s %s}', left(p.type, 1), p.type, o.op, p.value)::traitquery) AS matches
FROM probe p, (VALUES ('='), ('<>'), ('<'), ('<='), ('>'), ('>=')) o(op)
ORDER BY p.type, o.op;

-- Conjunctions, a trait tested twice, and the empty query
SELECT id FROM ev WHERE tr @@ '{"i":integer >= 0, "i":integer < 15}' ORDER BY id;
SELECT id FROM ev WHERE tr @@ '{"s":string > "a", "f":float < 2}' ORDER BY id;
SELECT id FROM ev WHERE tr @@ '{}' ORDER BY id;
SELECT id FROM ev WHERE '{"s":string="apple"}'::traitquery @@ tr ORDER BY id;

-- Strings compare bytewise
SELECT id FROM ev WHERE tr @@ '{"s":string < "b"}' ORDER BY id;
SELECT '{"s":string="Zebra"}'::traits @@ '{"s":string < "apple"}' AS uppercase_first;

-- Binary I/O of traitquery is its text form
SELECT traitquery_send('{"a":integer >= 1}');
