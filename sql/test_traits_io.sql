-- panko.traits: text I/O, binary I/O, JSON constructors and output
SET search_path = public, panko;
SET TimeZone = 'UTC';

-- Good literals; output is canonical (sorted by name, then type)
SELECT '{}'::traits;
SELECT '  {  }  '::traits;
SELECT '{"host":string="compute-1"}'::traits;
SELECT '{host:string="compute-1", memory_mb:integer=512}'::traits;
SELECT '{"z":string="last", "a":string="first", "m":integer=1}'::traits;
SELECT '{"a":integer=1, "a":string="x", "a":float=1.5, "a":datetime="2024-01-01"}'::traits;
SELECT '{"a":integer=1, "a":integer=2}'::traits;               -- same (name, type): the last wins
SELECT '{"n":none="stored as string"}'::traits;
SELECT '{"q":string="say \"hi\" \\ bye"}'::traits;
SELECT '{"empty":string=""}'::traits;
SELECT '{"unicode":string="zürich ☃"}'::traits;
SELECT '{"dotted.name-1":string="ok"}'::traits;
SELECT '{"i":integer=-9223372036854775808, "j":integer=9223372036854775807, "k":integer=+7}'::traits;

-- Floats print as Python's repr: shortest round trip
SELECT '{"a":float=0.1, "b":float=1e-5, "c":float=100.123456, "d":float=1, "e":float=1e16, "f":float=1e15, "g":float=-2.5e-300, "h":float=-0.0, "i":float=123456789012345678}'::traits;

-- Datetimes: UTC, offsets converted, microseconds only when not zero, bare date is midnight
SELECT '{"a":datetime="2024-01-02T03:04:05", "b":datetime="2024-01-02T03:04:05.123456", "c":datetime="2024-01-02 03:04:05.5", "d":datetime="2024-01-02", "e":datetime="2024-01-02T03:04:05+02:00", "f":datetime="2024-01-02T03:04:05Z", "g":datetime="2024-01-02T03:04:05.1234567", "h":datetime="0001-01-01T00:00:00", "i":datetime="9999-12-31T23:59:59.999999"}'::traits;

-- Round trip: text -> traits -> text -> traits gives the same value
SELECT t::text::traits = t AS text_round_trip
FROM (SELECT '{"host":string="a \"b\"", "m":integer=-5, "f":float=0.30000000000000004, "d":datetime="2024-02-29T23:59:59.000001"}'::traits AS t) s;

-- A wall of bad literals, each with its precise error
SELECT ''::traits;
SELECT 'host:string="x"'::traits;
SELECT '{'::traits;
SELECT '{"a":string="x"'::traits;
SELECT '{"a":string="x",}'::traits;
SELECT '{,}'::traits;
SELECT '{"a" string="x"}'::traits;
SELECT '{"a":str="x"}'::traits;
SELECT '{"a":string=x}'::traits;
SELECT '{"a":string="x}'::traits;
SELECT '{"a":string:"x"}'::traits;
SELECT '{"a":integer=1.5}'::traits;
SELECT '{"a":integer=}'::traits;
SELECT '{"a":integer=9223372036854775808}'::traits;
SELECT '{"a":integer="5"}'::traits;
SELECT '{"a":float=NaN}'::traits;
SELECT '{"a":float=Infinity}'::traits;
SELECT '{"a":float=1e999}'::traits;
SELECT '{"a":float=0x10}'::traits;
SELECT '{"a":datetime=2024-01-01}'::traits;
SELECT '{"a":datetime="2024-13-01"}'::traits;
SELECT '{"a":datetime="2023-02-29"}'::traits;
SELECT '{"a":datetime="2024-01-01T25:00:00"}'::traits;
SELECT '{"a":datetime="2024-01-01T10:00:00+25:00"}'::traits;
SELECT '{"a":datetime="10000-01-01"}'::traits;
SELECT '{"a":datetime="0000-12-31"}'::traits;
SELECT '{"a":datetime="yesterday"}'::traits;
SELECT '{"a":datetime="2024-01-01T10:00:00 junk"}'::traits;
SELECT '{"":string="x"}'::traits;
SELECT ('{"' || repeat('n', 256) || '":string="x"}')::traits;
SELECT ('{"s":string="' || repeat('v', 65536) || '"}')::traits;
SELECT '{"a":string="x"} trailing'::traits;
SELECT '{"a":integer<5}'::traits;

-- Limits that are accepted
SELECT length(('{"' || repeat('n', 255) || '":string="x"}')::traits::text);
SELECT trait_count(('{"s":string="' || repeat('v', 65535) || '"}')::traits);

-- Binary I/O round trip and checks on recv
SELECT traits_send('{"a":integer=1, "b":string="xy", "c":float=0.5, "d":datetime="2000-01-01T00:00:00.000001"}');
CREATE TEMP TABLE bin(t traits);
INSERT INTO bin VALUES ('{"a":integer=1, "b":string="xy", "c":float=0.5, "d":datetime="2000-01-01T00:00:00.000001"}'), ('{}');
COPY bin TO '/tmp/panko_traits_regress.bin' WITH (FORMAT binary);
CREATE TEMP TABLE bin2(t traits);
COPY bin2 FROM '/tmp/panko_traits_regress.bin' WITH (FORMAT binary);
SELECT a.t = b.t AS binary_round_trip, b.t FROM bin a JOIN bin2 b ON a.t::text = b.t::text ORDER BY b.t::text;

-- recv checks every count and length: feed it hand-made messages through a
-- binary COPY (a bytea written out is read back as a traits value)
CREATE TEMP TABLE recv_sink(t traits);
CREATE FUNCTION pg_temp.recv(payload bytea) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('COPY (SELECT %L::bytea) TO %L (FORMAT binary)', payload, '/tmp/panko_recv_regress.bin');
    TRUNCATE recv_sink;
    EXECUTE format('COPY recv_sink FROM %L (FORMAT binary)', '/tmp/panko_recv_regress.bin');
    RETURN (SELECT t::text FROM recv_sink);
END $$;
\set SHOW_CONTEXT never
SELECT pg_temp.recv('\x00000001000000010201610000000000000001');            -- good: a integer 1
SELECT pg_temp.recv('\x00000001000000020101620000000178020161000000000000002a'); -- unsorted input is sorted
SELECT pg_temp.recv('\x000000010000');                                      -- shorter than its header
SELECT pg_temp.recv('\x0000000200000000');                                  -- unknown format version
SELECT pg_temp.recv('\x00000001ffffffff');                                  -- count beyond the message
SELECT pg_temp.recv('\x00000001000000010901610000000000000001');            -- unknown trait type
SELECT pg_temp.recv('\x000000010000000102ff61000000000000');                -- name length beyond the message
SELECT pg_temp.recv('\x0000000100000001010161000000ff78');                  -- string length beyond the message
SELECT pg_temp.recv('\x00000001000000010101610000000378007a');              -- zero byte in a string
SELECT pg_temp.recv('\x000000010000000101016100000002c328');                -- invalid UTF-8
SELECT pg_temp.recv('\x00000001000000010301617ff8000000000000');            -- NaN float
SELECT pg_temp.recv('\x00000001000000010401617fffffffffffffff');            -- datetime out of range
SELECT pg_temp.recv('\x0000000100000001020000000000000000000001');          -- empty name
SELECT pg_temp.recv('\x0000000100000001020161000000000000000100');          -- bytes left over
\set SHOW_CONTEXT errors

-- JSON: the three input forms
SELECT traits('[{"name":"n","type":"integer","value":"5"},{"name":"s","type":"string","value":"x"},{"name":"f","type":"float","value":0.25},{"name":"d","type":"datetime","value":"2024-01-02T03:04:05.000100"}]'::jsonb);
SELECT traits('[{"name":"n","type":2,"value":5},{"name":"none","value":"v"}]'::jsonb);
SELECT traits('[["service",1,"compute"],["memory_mb",2,512],["launched_at",4,"2024-01-02T03:04:00"],["nothing",0,null],["ratio",3,1.5],["n2",2,"7"],["n3",2,8.0],["s2",1,42]]'::jsonb);
SELECT traits('{"k":"v","n":5,"f":5.5,"g":5.0,"big":92233720368547758070}'::jsonb);
SELECT traits('[]'::jsonb), traits('{}'::jsonb);
SELECT '[["a",2,1],["a",2,2]]'::jsonb::traits;   -- cast; the last copy wins

-- JSON: bad input names the trait and the problem
SELECT traits('5'::jsonb);
SELECT traits('[5]'::jsonb);
SELECT traits('[["a",1]]'::jsonb);
SELECT traits('[["a",7,"x"]]'::jsonb);
SELECT traits('[["a","bool","x"]]'::jsonb);
SELECT traits('[[1,1,"x"]]'::jsonb);
SELECT traits('[["a",2,"abc"]]'::jsonb);
SELECT traits('[["a",2,5.5]]'::jsonb);
SELECT traits('[["a",2,true]]'::jsonb);
SELECT traits('[["a",3,"x"]]'::jsonb);
SELECT traits('[["a",4,"not a date"]]'::jsonb);
SELECT traits('[["a",4,12345]]'::jsonb);
SELECT traits('[{"name":"a","type":"string","value":"x","extra":1}]'::jsonb);
SELECT traits('[{"type":"string","value":"x"}]'::jsonb);
SELECT traits('{"a":true}'::jsonb);
SELECT traits('{"a":null}'::jsonb);
SELECT traits('{"a":[1]}'::jsonb);
SELECT traits('[["",1,"x"]]'::jsonb);

-- Output in the Panko API form: sorted by name, every value a string
SELECT traits_to_jsonb('{"b":integer=2, "a":string="x", "c":float=0.1, "d":datetime="2024-01-02T03:04:05", "e":datetime="2024-01-02T03:04:05.5"}');
SELECT traits_to_jsonb('{}');
SELECT event_json('m1', 'compute.instance.create.end', '2024-01-02 03:04:05.000001+00', '{"a":integer=1}', NULL);
SELECT event_json('m"2', 'x', '2024-01-02 03:04:05+00', '{}', '{"payload": {"k": [1, 2]}}');
-- The raw document is written as jsonb's own output writes it, byte for
-- byte: escapes, control characters, non-ASCII, numbers, empty and nested
-- containers, a bare scalar.
SELECT left(d::text, 24) AS raw, right(j, length(d::text) + 1) = d::text || '}' AS as_jsonb_out
  FROM (VALUES ('{"a\"b\\c": "tab\there\nnew\u0001\u001f/é€😀", "n": [0, -0.0, 1e100, 12345678901234567890.5, -7],'
                ' "e": [], "o": {}, "t": true, "f": false, "z": null, "deep": [[{"x": [[], {}]}], "s"]}'::jsonb),
               ('"only a string"'::jsonb), ('[1, "two", null]'::jsonb), ('{}'::jsonb),
               (('{"long": "' || repeat('abcdefgh', 40) || '\\' || repeat('x', 7) || '\"", "k": "12345678\"12345678"}')::jsonb)) v(d),
       LATERAL (SELECT event_json('m', 'x', '2024-01-02 03:04:05+00', '{}', v.d)::text) e(j);
SELECT iso_timestamp('2024-01-02 03:04:05+02'), iso_timestamp('2024-01-02 03:04:05.120000+00');
