"""The query path, one transaction per call: panko against the jsonb table.

For each dataset (--days value) and query, four forms of the same page:

  panko API   what panko-api runs for GET /v2/events, as panko_http (a
              LOGIN member of panko_api) in one round trip:
                BEGIN READ ONLY \\; SELECT panko.set_identity(NULL, NULL, 'admin', true)
                \\; SELECT panko.api_get_events('{...}'::jsonb) \\; COMMIT
              (--auth none's identity: an admin over all projects)
  panko rows  SELECT message_id, event_type, generated, traits, raw
              FROM panko.get_events(filter, limit, NULL, marker), as bench_admin
  jsonb API   the jsonb table producing the same API JSON (JSONB_API)
  jsonb raw   the jsonb table's page query (bench.jsonb_page_sql), rows

Timing: pgbench -n -M simple -c 1 -T S (or -t T), one script file per
distinct statement of the query's parameter sets (pgbench picks one at
random per transaction), every parameter a literal: each transaction is one
call, parsed and planned as a psql user's or an HTTP request's call is,
locks taken and released.  p50/p95 of the per-transaction log (-l), the
first --call-warmup transactions of each run left out.

Checks (not timed): every call twice more through psycopg2, each in a
transaction that then counts the relation locks this backend holds (and how
many took the fast path), pg_locks itself left out.  The figure is the
second call's, made as the timed calls are, with the plans kept; the first
call's, which plans the statements it needs (the planner locks every index
of a table it plans), is printed next to it.  All four forms must
return the same events in the same order, the two API forms the same JSON,
and marker pages the workload's own order.

The first call of a new backend: connect, one call of get_events('{}', 10)
(and the other forms), disconnect; only the call is timed.
"""

import glob
import json
import os
import shutil
import statistics
import subprocess
import time

FORMS = ["panko_api", "panko_rows", "jsonb_api", "jsonb_raw"]
FORM_SYSTEM = {"panko_api": "panko", "panko_rows": "panko", "jsonb_api": "jsonb", "jsonb_raw": "jsonb"}
FORM_USER = {"panko_api": "panko_http", "panko_rows": "bench_admin", "jsonb_api": "postgres",
             "jsonb_raw": "postgres"}

LOCKS_SQL = ("SELECT count(*), count(*) FILTER (WHERE fastpath) FROM pg_catalog.pg_locks "
             "WHERE locktype = 'relation' AND pid = pg_catalog.pg_backend_pid() "
             "AND relation IS DISTINCT FROM 'pg_catalog.pg_locks'::pg_catalog.regclass")

PANKO_ROWS = ("SELECT message_id, event_type, generated, traits, raw "
              "FROM panko.get_events(%s::jsonb, %s, NULL, %s)")
PANKO_API = ["BEGIN READ ONLY",
             "SELECT panko.set_identity(NULL, NULL, 'admin', true)",
             "SELECT panko.api_get_events(%s::jsonb)",
             "COMMIT"]

# What a jsonb user writes to serve Panko's API from the jsonb table: the
# page (the raw query, unchanged) turned into panko.event_json's form:
# generated as ISO text in UTC without a zone (microseconds only when not
# zero), traits as a list of {"name", "type", "value"} sorted by name, every
# value a string.  The object {name: value} has no trait types, so they come
# from the JSON value: a number without a decimal point is an integer, with
# one a float; a string that starts like an ISO timestamp is a datetime
# (written without ".000000", as panko writes it); anything else a string.
# Of the forms tried (json_build_object, a row per trait, a sort in a
# subquery, regular expressions), json_object(text[]) with the sort in the
# aggregate and LIKE was the fastest: about 20 us an event, most of it
# jsonb_each, the objects and the sort.
JSONB_API = """SELECT coalesce(json_agg(json_build_object(
    'message_id', e.message_id,
    'event_type', e.event_type,
    'generated', to_char(e.generated AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS')
                 || CASE WHEN extract(microseconds FROM e.generated)::int % 1000000 = 0 THEN ''
                         ELSE to_char(e.generated AT TIME ZONE 'UTC', '.US') END,
    'traits', (SELECT coalesce(json_agg(json_object(ARRAY[
                   'name', k.key,
                   'type', CASE jsonb_typeof(k.value)
                             WHEN 'number' THEN CASE WHEN strpos(k.value::text, '.') = 0 THEN 'integer'
                                                     ELSE 'float' END
                             WHEN 'string' THEN CASE WHEN (k.value #>> '{}') LIKE '____-__-__T__:__:__%'
                                                     THEN 'datetime' ELSE 'string' END
                             ELSE 'string' END,
                   'value', CASE WHEN right(k.value #>> '{}', 7) = '.000000'
                                      AND (k.value #>> '{}') LIKE '____-__-__T__:__:__.000000'
                                 THEN left(k.value #>> '{}', -7) ELSE k.value #>> '{}' END])
                   ORDER BY k.key COLLATE "C"), '[]'::json)
                 FROM jsonb_each(e.traits) k),
    'raw', e.raw) ORDER BY e.generated, e.message_id), '[]'::json)
FROM ({page}) e"""


def api_params(f):
    """A get_events filter of the bench (query_specs) as api_get_events's
    params, as panko-api builds them from the query string."""
    f = dict(f)
    p = {"limit": int(f.pop("_limit", 100))}
    marker = f.pop("_marker", None)
    if marker is not None:
        p["marker"] = marker
    q = []
    if "event_type" in f:
        q.append({"field": "event_type", "op": "eq", "type": "string", "value": f.pop("event_type")})
    if "start_timestamp" in f:
        q.append({"field": "start_timestamp", "op": "ge", "type": "string", "value": f.pop("start_timestamp")})
    if "end_timestamp" in f:
        q.append({"field": "end_timestamp", "op": "le", "type": "string", "value": f.pop("end_timestamp")})
    for t in f.pop("traits_filter", []):
        for typ in ("string", "integer", "float", "datetime"):
            if typ in t:
                q.append({"field": t["key"], "op": t["op"], "type": typ, "value": str(t[typ])})
                break
        else:
            raise ValueError("api_params: no value in %r" % t)
    if f:
        raise ValueError("api_params: cannot express %r" % f)
    if q:
        p["q"] = q
    return p


def call_specs(bench):
    """Q1..Q5 as in the queries part, then get_events('{}', 10) and the page
    of 10 after a marker."""
    if getattr(bench, "markers_days", None) != bench.D:
        bench.find_markers()
    specs = [s for s in bench.query_specs() if s[0] in ("Q1", "Q2", "Q3", "Q4", "Q5")]
    runs = len(specs[0][2])
    specs.append(("G10", "get_events('{}', 10): first page of 10", [{"_limit": 10} for _ in range(runs)]))
    specs.append(("G10m", "page of 10 after a marker at ~%d" % bench.marker_pos,
                  [{"_marker": mk, "_limit": 10} for mk in bench.markers]))
    return specs


def statements(form, f, cur):
    """The statements of one call, literal SQL (cur: for quoting)."""
    import bench as B
    f = dict(f)
    if form == "panko_rows":
        g = dict(f)
        marker = g.pop("_marker", None)
        limit = int(g.pop("_limit", 100))
        return [cur.mogrify(PANKO_ROWS, (json.dumps(g), limit, marker)).decode()]
    if form == "panko_api":
        st = list(PANKO_API)
        st[2] = cur.mogrify(st[2], (json.dumps(api_params(f)),)).decode()
        return st
    sql, args = B.jsonb_page_sql(f)
    raw = cur.mogrify(sql, args).decode()
    if form == "jsonb_raw":
        return [raw]
    return [JSONB_API.replace("{page}", raw)]


def script(stmts):
    """One pgbench script: the statements as one simple-protocol query."""
    return " \\;\n".join(s.replace("\n", " ") for s in stmts) + ";\n"


def pgbench_path():
    for p in [os.path.join(os.environ.get("PGBIN", ""), "pgbench"), shutil.which("pgbench"),
              "/usr/lib/postgresql/15/bin/pgbench"]:
        if p and os.access(p, os.X_OK):
            return p
    return None


def run(bench):
    from bench import Failure, log
    a = bench.a
    forms = [f for f in FORMS if FORM_SYSTEM[f] in bench.systems]
    if not forms:
        return
    pgb = pgbench_path()
    if pgb is None:
        raise Failure("pgbench not found (PGBIN, PATH, /usr/lib/postgresql/15/bin)")
    specs = call_specs(bench)
    work = os.path.join(a.workdir, "calls-d%d" % bench.D)
    os.makedirs(work, exist_ok=True)
    os.chmod(work, 0o777)
    how = ("-t %d" % (a.call_txns + a.call_warmup)) if a.call_txns else ("-T %d" % a.call_secs)
    log("\n== query path on the %d-day dataset: one transaction per call (pgbench -n -M simple -c 1 %s, "
        "%d rounds over the forms, the first %d transactions of each run, or its first half, not counted), relation locks per call"
        % (bench.D, how, a.call_rounds, a.call_warmup))
    conns = {}
    for form in forms:
        conns[form] = bench_connect(bench, form)
    out = bench.cur.setdefault("calls", {})
    try:
        for qname, desc, params in specs:
            stmts = {form: [statements(form, f, conns[form].cursor()) for f in params] for form in forms}
            answers, locks, first = {}, {}, {}
            for form in forms:
                answers[form], locks[form], first[form] = check_pass(conns[form], form, stmts[form])
            check_answers(bench, qname, params, answers)
            q = out.setdefault(qname, {"desc": desc, "forms": {}})
            figs = time_forms(bench, pgb, work, qname, stmts)
            for form in forms:
                fig = figs[form]
                n, fast = max(locks[form])
                n1, fast1 = max(first[form])
                fig.update({"locks": n, "fast": fast, "locks_all": sorted(set(locks[form])),
                            "locks_first": n1, "fast_first": fast1})
                rows = statistics.mean(len(x[0]) for x in answers[form])
                fig["events_per_call"] = rows
                q["forms"][form] = fig
                log("  %-4s %-10s p50 %8.3f ms  p95 %8.3f ms  (%d calls in %d rounds, p50 %s; %d statements)  "
                    "locks %d (%d fast path; %d (%d) on its first call)  %.0f events/call  %s"
                    % (qname, form, fig["p50"], fig["p95"], fig["txns"], fig["rounds"],
                       "/".join("%.3f" % x for x in fig["round_p50"]), fig["scripts"], n, fast,
                       n1, fast1, rows, desc))
                rp = fig["round_p50"]
                if len(rp) > 1 and min(rp) > 0 and max(rp) / min(rp) > 1.5 and fig["txns"] >= 200 * len(rp):
                    bench.cur.setdefault("noisy", []).append("%s %s %.1fx" % (qname, form, max(rp) / min(rp)))
                    log("    (noisy: the rounds' p50 differ by %.1fx)" % (max(rp) / min(rp)))
    finally:
        for c in conns.values():
            c.close()
    first_calls(bench)


def bench_connect(bench, form):
    from bench import connect
    return connect(bench.dbs[FORM_SYSTEM[form]], FORM_USER[form])


def call_once(cur, form, st):
    """One call in its transaction: (its last result rows, (locks, fastpath)
    held before the transaction ends)."""
    if form == "panko_api":
        body, tail = st[:-1], st[-1]
    else:
        cur.execute("BEGIN")
        body, tail = st, "COMMIT"
    result = None
    for s in body:
        cur.execute(s)
        if cur.description is not None:
            result = cur.fetchall()
    cur.execute(LOCKS_SQL)
    held = tuple(cur.fetchone())
    cur.execute(tail)
    return result, held


def check_pass(conn, form, stmt_lists):
    """Run each call twice: the first call plans the statements it needs
    (and the planner locks every index of a table it plans), the second runs
    them as the timed calls do, with the plans kept.  Returns
    ([(ids, api_json_or_None)] of the first calls, [(locks, fastpath)] of
    the second, [(locks, fastpath)] of the first) per parameter set."""
    cur = conn.cursor()
    answers, locks, first = [], [], []
    for st in stmt_lists:
        result, held = call_once(cur, form, st)
        first.append(held)
        locks.append(call_once(cur, form, st)[1])
        if form.endswith("_api"):
            doc = result[0][0]
            if isinstance(doc, str):
                doc = json.loads(doc)
            answers.append(([e["message_id"] for e in doc], doc))
        else:
            answers.append(([r[0] for r in result], None))
    cur.close()
    return answers, locks, first


def check_answers(bench, qname, params, answers):
    forms = list(answers)
    for i in range(len(params)):
        ref = forms[0]
        for form in forms[1:]:
            if answers[form][i][0] != answers[ref][i][0]:
                bench.problem("calls %s [%d days] run %d: %s returned %d events, %s %d (or another order); "
                              "filter %s" % (qname, bench.D, i, form, len(answers[form][i][0]), ref,
                                             len(answers[ref][i][0]), json.dumps(params[i])))
        if "_marker" in params[i]:
            exp = bench.expected_after_marker[params[i]["_marker"]][:params[i].get("_limit", 100)]
            for form in forms:
                if answers[form][i][0] != exp:
                    bench.problem("calls %s [%d days] %s run %d: page after marker differs from the "
                                  "workload's order" % (qname, bench.D, form, i))
        if "panko_api" in answers and "jsonb_api" in answers:
            pa, ja = answers["panko_api"][i][1], answers["jsonb_api"][i][1]
            if pa != ja:
                bench.problem("calls %s [%d days] run %d: panko's API JSON and the jsonb table's differ: %s"
                              % (qname, bench.D, i, first_difference(pa, ja)))


def first_difference(pa, ja):
    if len(pa) != len(ja):
        return "%d events against %d" % (len(pa), len(ja))
    for p, j in zip(pa, ja):
        if p != j:
            for k in sorted(set(p) | set(j)):
                if p.get(k) != j.get(k):
                    return "event %s, %s: %s against %s" % (p.get("message_id"), k,
                                                            json.dumps(p.get(k))[:300],
                                                            json.dumps(j.get(k))[:300])
    return "?"


def write_scripts(bench, work, qname, form, stmt_lists):
    """One pgbench script file per distinct call; returns the file names."""
    from bench import Failure
    d = os.path.join(work, "%s-%s" % (qname, form))
    if os.path.isdir(d):
        shutil.rmtree(d)
    os.makedirs(d)
    os.chmod(d, 0o777)
    files = []
    seen = set()
    for st in stmt_lists:
        text = script(st)
        if text in seen:
            continue
        p = os.path.join(d, "s%03d.sql" % len(seen))
        with open(p, "w") as f:
            f.write(text)
        seen.add(text)
        files.append(p)
    if len(files) > 128:
        raise Failure("pgbench takes at most 128 scripts (%s %s has %d)" % (qname, form, len(files)))
    return d, files


def pgbench_round(bench, pgb, d, files, qname, form, rnd):
    """One pgbench run (a new connection): the per-transaction latencies
    in ms after the warm-up, the number of failed transactions, the
    command."""
    from bench import Failure
    a = bench.a
    prefix = os.path.join(d, "log%d" % rnd)
    cmd = [pgb, "-n", "-M", "simple", "-c", "1", "-j", "1"]
    cmd += ["-t", str(a.call_txns + a.call_warmup)] if a.call_txns else ["-T", str(a.call_secs)]
    cmd += ["-l", "--log-prefix", prefix, "-U", FORM_USER[form]]
    for p in files:
        cmd += ["-f", p]
    cmd.append(bench.dbs[FORM_SYSTEM[form]])
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=d)
    if r.returncode != 0:
        raise Failure("pgbench %s %s failed (exit %d): %s %s"
                      % (qname, form, r.returncode, r.stdout[-1500:], r.stderr[-1500:]))
    lat, failed = [], 0
    for lf in sorted(glob.glob(prefix + ".*")):
        with open(lf) as f:
            for line in f:
                parts = line.split()
                if len(parts) < 4:
                    continue
                try:
                    lat.append((int(parts[1]), int(parts[2]) / 1000.0))
                except ValueError:
                    failed += 1
    lat.sort()
    # (a slow query may not run warm-up + a few calls in -T seconds: at
    # least half of what it ran is timed, the first half warms it)
    warm = min(a.call_warmup, len(lat) // 2)
    timed = [x for _, x in lat[warm:]]
    if not timed:
        raise Failure("pgbench %s %s: no transactions left after the warm-up (%d logged)"
                      % (qname, form, len(lat)))
    return timed, [x for _, x in lat[:warm]], failed, cmd


def time_forms(bench, pgb, work, qname, stmts):
    """--call-rounds rounds; in each, one pgbench run per form, the forms
    one after another, so that a slow spell of the machine falls on every
    form alike.  Returns {form: figures}."""
    from bench import percentile
    a = bench.a
    scripts = {form: write_scripts(bench, work, qname, form, sl) for form, sl in stmts.items()}
    runs = {form: [] for form in stmts}
    for rnd in range(max(1, a.call_rounds)):
        for form in stmts:
            d, files = scripts[form]
            runs[form].append(pgbench_round(bench, pgb, d, files, qname, form, rnd))
    out = {}
    for form, rr in runs.items():
        timed = [x for t, _, _, _ in rr for x in t]
        failed = sum(f for _, _, f, _ in rr)
        if failed:
            bench.problem("calls %s %s [%d days]: %d failed transactions" % (qname, form, bench.D, failed))
        cmd = rr[0][3]
        out[form] = {
            "p50": percentile(timed, 50), "p95": percentile(timed, 95), "p99": percentile(timed, 99),
            "mean": statistics.mean(timed), "txns": len(timed), "rounds": len(rr),
            "round_p50": [round(percentile(t, 50), 4) for t, _, _, _ in rr],
            "warmup_ms": [round(x, 3) for x in rr[0][1][:5]], "scripts": len(scripts[form][1]),
            "pgbench": " ".join(cmd[:cmd.index("-f")]) + " -f ... %s" % cmd[-1]}
    return out


# --------------------------------------------------------------------------
# the first call of a new backend

FIRST_FORMS = [
    # key, form, user, what
    ("panko_rows_pl", "panko_rows", "bench_admin_pl", "panko get_events('{}', 10), panko.so preloaded"),
    ("panko_rows", "panko_rows", "bench_admin", "panko get_events('{}', 10), loading panko.so"),
    ("panko_api_pl", "panko_api", "panko_http_pl", "panko API limit=10 (HTTP's transaction), preloaded"),
    ("jsonb_raw", "jsonb_raw", "postgres", "jsonb raw, first page of 10"),
    ("jsonb_api", "jsonb_api", "postgres", "jsonb API JSON, first page of 10"),
]


def first_calls(bench):
    """Connect, one call, disconnect, --first-calls times per form, the
    forms taking turns (a slow spell of the machine falls on all alike)."""
    from bench import connect, log, percentile
    a = bench.a
    k = max(1, a.first_calls)
    log("  first call of a new backend (connect, one call, disconnect; the call alone timed, %d backends each, "
        "the forms taking turns):" % k)
    out = bench.cur.setdefault("first_call", {})
    todo = []
    for key, form, user, what in FIRST_FORMS:
        if FORM_SYSTEM[form] not in bench.systems:
            continue
        db = bench.dbs[FORM_SYSTEM[form]]
        c = connect(db, user)
        sql = "; ".join(statements(form, {"_limit": 10}, c.cursor()))
        c.close()
        todo.append((key, form, user, what, db, sql))
    calls = {t[0]: [] for t in todo}
    conns = {t[0]: [] for t in todo}
    for _ in range(k):
        for key, form, user, what, db, sql in todo:
            t0 = time.perf_counter()
            c = connect(db, user)
            t1 = time.perf_counter()
            cur = c.cursor()
            cur.execute(sql)
            if cur.description is not None:
                cur.fetchall()
            t2 = time.perf_counter()
            c.close()
            conns[key].append((t1 - t0) * 1000)
            calls[key].append((t2 - t1) * 1000)
    for key, form, user, what, db, sql in todo:
        xs = calls[key]
        out[key] = {"what": what, "p50": percentile(xs, 50), "min": min(xs), "max": max(xs),
                    "connect_p50": percentile(conns[key], 50), "runs": k, "user": user,
                    "all_ms": [round(x, 2) for x in xs]}
        log("    %-15s call p50 %7.2f ms (min %.2f, max %.2f)  connect p50 %.2f ms  %s"
            % (key, out[key]["p50"], min(xs), max(xs), out[key]["connect_p50"], what))


# --------------------------------------------------------------------------
# report

def _ms(v):
    if v is None:
        return "-"
    return "%.3f" % v if v < 10 else "%.1f" % v


def _ratio(a, b):
    if a is None or b is None or b == 0:
        return "-"
    return "%.2fx" % (a / b)


def report(res, w, verdicts):
    days = [d for d in res["days"] if str(d) in res["datasets"]]
    dss = [res["datasets"][str(d)] for d in days]
    if not any(ds.get("calls") or ds.get("first_call") for ds in dss):
        return
    dlo, dhi = min(days), max(days)
    mine = []

    def verdict(label, ok, text):
        v = "%s (%s)" % ("PASS" if ok else "MISS", text)
        mine.append((label, v))
        return v

    W = 148
    w("")
    w("=" * W)
    w("query path: one transaction per call, p50 ms (pgbench -n -M simple -c 1, per-transaction log); "
      "panko API = HTTP's transaction as panko_http,")
    w("panko rows = get_events rows as bench_admin; jsonb API = the jsonb table producing the same JSON; "
      "ratios are panko API / jsonb; locks = relation")
    w("locks held after the call (fast path), for panko API / panko rows / jsonb API / jsonb raw")
    w("=" * W)
    w("%-6s %5s %10s %10s %10s %10s %8s %8s %8s  %-34s %s" % (
        "query", "days", "panko API", "panko rows", "jsonb API", "jsonb raw", "p/jAPI", "p/jraw", "rows/raw",
        "locks", "target"))
    w("-" * W)
    qnames = []
    for ds in dss:
        for q in ds.get("calls", {}):
            if q not in qnames:
                qnames.append(q)
    for q in qnames:
        for D, ds in zip(days, dss):
            c = ds.get("calls", {}).get(q)
            if not c:
                continue
            F = c["forms"]
            p = {f: F[f]["p50"] if f in F else None for f in FORMS}
            lk = " / ".join("%d(%d)" % (F[f]["locks"], F[f]["fast"]) if f in F else "-" for f in FORMS)
            v = ""
            if q in ("Q1", "Q2", "Q3", "Q4", "Q5") and p["panko_api"] is not None and p["jsonb_api"] is not None:
                ok = p["panko_api"] < p["jsonb_api"] and p["panko_api"] <= 1.5 * p["jsonb_raw"]
                v = verdict("%s [%d days] panko API vs jsonb" % (q, D), ok,
                            "< jsonb API: %s, <= 1.5x jsonb raw: %s"
                            % (_ratio(p["panko_api"], p["jsonb_api"]), _ratio(p["panko_api"], p["jsonb_raw"])))
            w("%-6s %5d %10s %10s %10s %10s %8s %8s %8s  %-34s %s" % (
                q if D == days[0] else "", D, _ms(p["panko_api"]), _ms(p["panko_rows"]), _ms(p["jsonb_api"]),
                _ms(p["jsonb_raw"]), _ratio(p["panko_api"], p["jsonb_api"]), _ratio(p["panko_api"], p["jsonb_raw"]),
                _ratio(p["panko_rows"], p["jsonb_raw"]), lk, v))
    w("-" * W)
    for D, ds in zip(days, dss):
        if ds.get("noisy"):
            w("noisy at %d days (the two rounds' p50 differ by more than 1.5x): %s" % (D, ", ".join(ds["noisy"])))
    # targets across datasets
    def call(D, q, form, key="p50"):
        c = res["datasets"].get(str(D), {}).get("calls", {}).get(q)
        if not c or form not in c["forms"]:
            return None
        return c["forms"][form][key]
    w("")
    w("issue targets across datasets (at %d days: the largest --days value; against %d days: the smallest)"
      % (dhi, dlo))
    q1 = call(dhi, "Q1", "panko_api")
    if q1 is not None:
        w("  %-70s %s" % ("Q1 at %d days, panko API p50 %.3f ms" % (dhi, q1),
                          verdict("Q1 [%d days] <= 0.5 ms" % dhi, q1 <= 0.5, "<= 0.5 ms")))
    for q, what in [("G10", "get_events('{}', 10)"), ("G10m", "marker page of 10")]:
        for form in ("panko_rows", "panko_api"):
            a_, b_ = call(dhi, q, form), call(dlo, q, form)
            locks = call(dhi, q, form, "locks")
            if a_ is None:
                continue
            label = "%s %s at %d days: p50 %.3f ms, %sx of %d days, %s relation locks" % (
                what, "(rows)" if form == "panko_rows" else "(API)", dhi, a_,
                "%.2f" % (a_ / b_) if b_ and dhi != dlo else "-", dlo, locks)
            if form == "panko_rows" and dhi != dlo and b_:
                w("  %-70s %s" % (label, verdict("%s [%d vs %d days]" % (q, dhi, dlo),
                                                 a_ <= 1.3 * b_ and locks <= 10,
                                                 "<= 1.3x of %d days, <= 10 locks" % dlo)))
            else:
                w("  %-70s %s" % (label, "(info)" if form == "panko_api" else "n/a (needs two --days values)"))
    # first call
    w("")
    w("first call of a new backend: connect, one call, disconnect; p50 ms of the call alone "
      "(connect p50 in parentheses)")
    w("  %-62s %s" % ("", "".join("%18s" % ("%d days" % D) for D in days)))
    for key, form, user, what in FIRST_FORMS:
        cells = []
        for ds in dss:
            fc = ds.get("first_call", {}).get(key)
            cells.append("%18s" % ("%s (%s)" % (_ms(fc["p50"]), _ms(fc["connect_p50"])) if fc else "-"))
        t = ""
        fc = res["datasets"][str(dhi)].get("first_call", {}).get(key)
        if key == "panko_rows_pl" and fc:
            t = "  " + verdict("first call [%d days]" % dhi, fc["p50"] <= 5.0, "<= 5 ms at %d days" % dhi)
        w("  %-62s %s%s" % (what + " (" + user + ")", "".join(cells), t))
    # HTTP and ingest
    w("")
    w("HTTP GET /v2/events?limit=10 and ingest per dataset")
    for D, ds in zip(days, dss):
        http = ds.get("http")
        r = next((x for x in (http or {}).get("rows", []) if x["name"] == "GET /v2/events?limit=10"), None)
        if r:
            t = ""
            if D == dhi:
                t = verdict("HTTP limit=10 [%d days]" % D, r["rps"] >= 8000 and r["p99"] <= 20,
                            ">= 8,000 req/s, p99 <= 20 ms at %d days" % D)
            w("  %-70s %s" % ("HTTP limit=10 at %d days: %s req/s, p50 %.2f ms, p99 %.2f ms"
                              % (D, "{:,.0f}".format(r["rps"]), r["p50"], r["p99"]), t))
        ing = ds.get("figures", {}).get("ingest", {}).get("panko")
        if ing is not None:
            w("  %-70s %s" % ("ingest at %d days: %s events/s (record_events, batches of 10,000)"
                              % (D, "{:,.0f}".format(ing)),
                              verdict("ingest [%d days]" % D, ing >= 50000, ">= 50,000 events/s")))
    passed = sum(1 for _, v in mine if v.startswith("PASS"))
    w("query-path targets: %d PASS, %d MISS" % (passed, len(mine) - passed))
    verdicts.extend(mine)
