"""HTTP benchmark: panko-api over the loaded panko database.

panko-api --auth none --threads T on loopback; wrk -t2 -c32 -dD --latency
for GET /v2/events?limit=10, the same with a project_id filter,
GET /v2/events/{id}, GET /v2/event_types, and POST /v2/events with batches
of 100 new events (wrk/post.lua gives every posted event a fresh
message_id).  Reports requests/s, p50, p99, non-2xx responses (wrk counts
status >= 400; socket errors and timeouts are reported with them) and, for
POST, events/s as counted in the database before and after.  Runs once per
dataset (--days value) on that dataset's panko database; the figures go to
bench.cur["http"].
"""

import json
import os
import re
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))

UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def parse_wrk(out):
    def lat(pct):
        m = re.search(r"^\s*%s%%\s+([\d.]+)(us|ms|s|m)\s*$" % pct, out, re.M)
        return float(m.group(1)) * UNITS[m.group(2)] if m else float("nan")
    m = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", out)
    requests = int(m.group(1)) if m else 0
    seconds = float(m.group(2)) * UNITS[m.group(3)] / 1000 if m else float("nan")
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "requests": requests, "seconds": seconds,
        "rps": float(rps.group(1)) if rps else 0.0,
        "p50": lat(50), "p75": lat(75), "p90": lat(90), "p99": lat(99),
        "non2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": sum(int(x) for x in sock.groups()) if sock else 0,
    }


def http(method, url, body=None, timeout=30):
    req = urllib.request.Request(url, data=body, method=method,
                                 headers={"Content-Type": "application/json"} if body else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def find_api():
    for p in [shutil.which("panko-api"), os.path.join(TOP, "src", "api", "panko-api")]:
        if p and os.access(p, os.X_OK):
            return p
    return None


def run(bench):
    a = bench.a
    from bench import log
    api = find_api()
    if api is None:
        raise RuntimeError("panko-api not found (make install, or build src/api)")
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk not installed (apt-get install wrk)")
    db = bench.dbs["panko"]
    c = bench.admin(db)
    cur = c.cursor()
    cur.execute("SELECT 1 FROM pg_roles WHERE rolname = 'panko_http'")
    if cur.fetchone() is None:
        cur.execute("CREATE ROLE panko_http LOGIN IN ROLE panko_api")
    c.close()

    work = os.path.join(a.workdir, "http-d%d" % bench.D)
    os.makedirs(work, exist_ok=True)
    port = int(subprocess.run(["/usr/bin/python3", "-c",
                               "import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); "
                               "print(s.getsockname()[1])"], capture_output=True, text=True).stdout)
    base = "http://127.0.0.1:%d" % port
    conninfo = "host=%s port=%s dbname=%s user=panko_http" % (os.environ["PGHOST"], os.environ["PGPORT"], db)
    logfile = os.path.join(work, "api.log")
    argv = [api, "--auth", "none", "--listen", "127.0.0.1:%d" % port, "--db", conninfo,
            "--threads", str(a.http_threads), "--log", logfile]
    log("\n== HTTP on the %d-day dataset: %s" % (bench.D, " ".join(argv)))
    errf = open(os.path.join(work, "api.stderr"), "w")
    proc = subprocess.Popen(argv, stdout=errf, stderr=subprocess.STDOUT)
    try:
        _run(bench, a, base, work, proc, logfile)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        errf.close()
    run_keystone(bench)


def _run(bench, a, base, work, proc, logfile):
    from bench import Failure, log, read_batches
    deadline = time.time() + 15
    while True:
        if proc.poll() is not None:
            raise Failure("panko-api exited with %s: %s" % (proc.returncode,
                                                           open(os.path.join(work, "api.stderr")).read()[-2000:]))
        try:
            st, _ = http("GET", base + "/healthcheck", timeout=2)
            if st == 200:
                break
        except OSError:
            pass
        if time.time() > deadline:
            raise Failure("panko-api did not answer /healthcheck within 15 s")
        time.sleep(0.1)

    # pick ids and a recent batch from the workload
    ids, recent = [], None
    nb = 0
    for b in read_batches(bench.workfile):
        nb += 1
    step = max(1, nb // 20)
    for i, b in enumerate(read_batches(bench.workfile)):
        if i % step == 0 or i == nb - 1:
            evs = json.loads(b)
            ids += [e["message_id"] for e in evs[:: max(1, len(evs) // 50)]]
            if i == nb - 1:
                recent = evs
    projects = bench.meta["projects"]

    # sanity: each route answers as it should before it is loaded
    st, body = http("GET", base + "/v2/events?limit=10")
    if st != 200 or len(json.loads(body)) != 10:
        raise Failure("GET /v2/events?limit=10: %s %s" % (st, body[:300]))
    st, body = http("GET", base + "/v2/events/" + ids[0])
    if st != 200 or json.loads(body).get("message_id") != ids[0]:
        raise Failure("GET /v2/events/{id}: %s %s" % (st, body[:300]))
    st, body = http("GET", base + "/v2/event_types")
    if st != 200 or len(json.loads(body)) != len(bench.meta["event_types"]):
        raise Failure("GET /v2/event_types: %s %s" % (st, body[:300]))
    st, body = http("GET", base + "/v2/events?limit=10&q.field=project_id&q.op=eq&q.value=" + projects[0])
    evs = json.loads(body) if st == 200 else None
    if st != 200 or not evs or any({"name": "project_id", "type": "string", "value": projects[0]}
                                   not in e["traits"] for e in evs):
        raise Failure("GET /v2/events?q.field=project_id: %s %s" % (st, body[:300]))

    # request files
    files = {}

    def pathfile(name, paths):
        p = os.path.join(work, name + ".txt")
        with open(p, "w") as f:
            f.write("\n".join(paths) + "\n")
        return p
    files["events"] = pathfile("events", ["/v2/events?limit=10"])
    files["project"] = pathfile("project", ["/v2/events?limit=10&q.field=project_id&q.op=eq&q.value=%s" % p
                                            for p in projects])
    files["event"] = pathfile("event", ["/v2/events/%s" % i for i in ids])
    files["types"] = pathfile("types", ["/v2/event_types"])
    # POST bodies: events of the workload's last batch, generated within the
    # last minute (so they never fall in the days the expiry part removes),
    # message_id a placeholder that post.lua makes unique per request
    from workload import fmt_ts
    now_us = int(time.time()) * 1000000
    fresh = [dict(e, message_id="@ID@", generated=fmt_ts(now_us - 60000000 + i * 1000))
             for i, e in enumerate(recent[:5000])]
    bodies = os.path.join(work, "bodies.txt")
    with open(bodies, "w") as f:
        for k in range(0, len(fresh) - 99, 100):
            f.write(json.dumps(fresh[k:k + 100], separators=(",", ":")) + "\n")
    # one POST by hand first
    st, body = http("POST", base + "/v2/events",
                    json.dumps([dict(e, message_id="bench-sanity-%d" % i) for i, e in enumerate(fresh[:100])]).encode())
    if st != 201 or json.loads(body).get("stored") != 100:
        raise Failure("POST /v2/events: %s %s" % (st, body[:300]))

    lua = os.path.join(HERE, "wrk")
    routes = [
        ("GET /v2/events?limit=10", "paths.lua", [files["events"]], True),
        ("GET /v2/events?limit=10&q.field=project_id", "paths.lua", [files["project"]], True),
        ("GET /v2/events/{message_id}", "paths.lua", [files["event"]], True),
        ("GET /v2/event_types", "paths.lua", [files["types"]], True),
        ("POST /v2/events (100 events/request)", "post.lua", [bodies, "b%d" % int(time.time()), "/v2/events"], False),
    ]
    rows = []
    dur = a.http_duration
    for name, script, args, is_read in routes:
        before = None
        if not is_read:
            c = bench.admin(bench.dbs["panko"])
            before = c.cursor()
            before.execute("SELECT count(*) FROM panko.event")
            n_before = before.fetchone()[0]
        cmd = ["wrk", "-t2", "-c32", "-d%ds" % dur, "--latency", "-s", os.path.join(lua, script),
               base + "/", "--"] + args
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            raise Failure("wrk failed for %s: %s %s" % (name, r.stdout[-1000:], r.stderr[-1000:]))
        w = parse_wrk(r.stdout)
        w["name"] = name
        w["wrk"] = " ".join(cmd)
        w["raw"] = r.stdout
        if not is_read:
            before.execute("SELECT count(*) FROM panko.event")
            stored = before.fetchone()[0] - n_before
            c.close()
            w["events_stored"] = stored
            w["events_per_s"] = stored / w["seconds"] if w["seconds"] else 0.0
            ok = w["events_per_s"] >= 20000 and w["non2xx"] == 0 and w["socket_errors"] == 0
            w["verdict"] = "%s (>=20,000 events/s, 0 non-2xx)" % ("PASS" if ok else "MISS")
        else:
            ok = w["rps"] >= 5000 and w["p99"] <= 20 and w["non2xx"] == 0 and w["socket_errors"] == 0
            w["verdict"] = "%s (>=5,000 req/s, p99<=20 ms, 0 non-2xx)" % ("PASS" if ok else "MISS")
        if w["socket_errors"]:
            bench.problem("%s: %d socket errors/timeouts under load" % (name, w["socket_errors"]))
        log("  %-45s %9.0f req/s  p50 %7.2f ms  p99 %7.2f ms  non-2xx %d  socket errors %d%s"
            % (name, w["rps"], w["p50"], w["p99"], w["non2xx"], w["socket_errors"],
               "  %.0f events/s (%d stored)" % (w["events_per_s"], w["events_stored"]) if not is_read else ""))
        rows.append(w)
    # statuses as the server logged them
    statuses = {}
    try:
        with open(logfile) as f:
            for line in f:
                m = re.search(r"\b([1-5]\d\d)\b", line.split('"')[-1] if '"' in line else line)
                if m:
                    statuses[m.group(1)] = statuses.get(m.group(1), 0) + 1
    except OSError:
        pass
    bench.cur["http"] = {"threads": a.http_threads, "duration": dur, "rows": rows,
                         "server": proc.args[0], "log_statuses": statuses}


# ---- --auth keystone: token validation with a warm cache ------------------
# A separate section: a real Keystone (test/keystone/lib.sh), panko-api in
# keystone-headers mode and in keystone mode side by side, the same identity
# (Keystone's admin user, all_tenants) and the same route, so the difference
# is the token check; then the first request with each of 20 new tokens
# (cold cache: one Keystone validation each).  Once per run (first dataset);
# PANKO_BENCH_KEYSTONE=0 skips it.  Figures go to bench.cur["http_keystone"].

KEYSTONE_SCRIPT = r'''
set -e
. "$1/test/keystone/lib.sh"
keystone_start 3600 >&2
keystone_setup_panko "$2" >&2
printf '%s\n' "$KS_PANKO_PASSWORD" >"$3/panko.pw"
echo "URL=$KEYSTONE_URL"
echo "USER=$KS_ADMIN_ID"
echo "PROJECT=$KS_ADMIN_PROJECT_ID"
echo "TOKEN=$(keystone_token admin "$KS_ADMIN_PASSWORD" admin)"
for i in $(seq 20); do echo "COLD=$(keystone_token admin "$KS_ADMIN_PASSWORD" admin)"; done
echo READY
read -r _ || true
keystone_cleanup
'''
_keystone_done = False


def run_keystone(bench):
    global _keystone_done
    from bench import Failure, log
    a = bench.a
    if _keystone_done or os.environ.get("PANKO_BENCH_KEYSTONE", "1") == "0":
        return
    _keystone_done = True
    if shutil.which("keystone-manage") is None or shutil.which("uwsgi") is None:
        log("\n== HTTP, --auth keystone: skipped (keystone or uwsgi not installed)")
        return
    api = find_api()
    work = os.path.join(a.workdir, "http-keystone")
    os.makedirs(work, exist_ok=True)

    def free_port():
        return int(subprocess.run(["/usr/bin/python3", "-c",
                                   "import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); "
                                   "print(s.getsockname()[1])"], capture_output=True, text=True).stdout)
    ks_port, hd_port = free_port(), free_port()
    ks = subprocess.Popen(["bash", "-c", KEYSTONE_SCRIPT, "bash", TOP, "http://127.0.0.1:%d" % ks_port, work],
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          stderr=open(os.path.join(work, "keystone.err"), "w"), text=True)
    env, cold = {}, []
    for line in ks.stdout:
        line = line.strip()
        if line == "READY":
            break
        k, _, v = line.partition("=")
        if k == "COLD":
            cold.append(v)
        else:
            env[k] = v
    procs = []
    try:
        if "TOKEN" not in env or len(cold) != 20:
            raise Failure("Keystone for the benchmark did not start: %s"
                          % open(os.path.join(work, "keystone.err")).read()[-2000:])
        conninfo = "host=%s port=%s dbname=%s user=panko_http" % (
            os.environ["PGHOST"], os.environ["PGPORT"], bench.dbs["panko"])
        common = ["--db", conninfo, "--threads", str(a.http_threads)]
        servers = [("keystone-headers", hd_port, ["--auth", "keystone-headers"]),
                   ("keystone", ks_port, ["--auth", "keystone", "--keystone-url", env["URL"],
                                          "--keystone-user", "panko", "--keystone-project", "service",
                                          "--keystone-password-file", os.path.join(work, "panko.pw")])]
        for name, port, args in servers:
            argv = [api, "--listen", "127.0.0.1:%d" % port, "--log", os.path.join(work, name + ".log")] + common + args
            log("\n== HTTP, %s: %s" % (name, " ".join(argv)))
            procs.append(subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT))
        deadline = time.time() + 30
        for name, port, _ in servers:
            while True:
                try:
                    if http("GET", "http://127.0.0.1:%d/healthcheck" % port, timeout=2)[0] == 200:
                        break
                except OSError:
                    pass
                if time.time() > deadline:
                    raise Failure("panko-api %s did not answer /healthcheck" % name)
                time.sleep(0.1)
        path = "/v2/events?limit=10&q.field=all_tenants&q.value=true"
        pathfile = os.path.join(work, "paths.txt")
        with open(pathfile, "w") as f:
            f.write(path + "\n")
        headers = {"keystone-headers": ["X-User-Id: " + env["USER"], "X-Project-Id: " + env["PROJECT"],
                                        "X-Roles: admin,member,reader"],
                   "keystone": ["X-Auth-Token: " + env["TOKEN"]]}

        def get(port, hdrs):
            req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path),
                                         headers=dict(h.split(": ", 1) for h in hdrs))
            t0 = time.perf_counter()
            with urllib.request.urlopen(req, timeout=30) as r:
                body = r.read()
            return (time.perf_counter() - t0) * 1000, json.loads(body)
        # same answer both ways (and the cache is warm from here on)
        answers = [get(port, headers[name])[1] for name, port, _ in servers]
        if len(answers[0]) != 10 or answers[0] != answers[1]:
            raise Failure("keystone-headers and keystone answer differently: %d and %d events"
                          % (len(answers[0]), len(answers[1])))
        # two rounds, the servers taking turns (drift on a shared machine
        # hits both); each server's better round is kept
        best = {}
        for rnd in range(2):
            for name, port, _ in servers:
                cmd = ["wrk", "-t2", "-c32", "-d%ds" % a.http_duration, "--latency",
                       "-s", os.path.join(HERE, "wrk", "paths.lua")]
                for h in headers[name]:
                    cmd += ["-H", h]
                cmd += ["http://127.0.0.1:%d/" % port, "--", pathfile]
                r = subprocess.run(cmd, capture_output=True, text=True)
                if r.returncode != 0:
                    raise Failure("wrk failed for %s: %s %s" % (name, r.stdout[-1000:], r.stderr[-1000:]))
                w = parse_wrk(r.stdout)
                w["name"] = "GET %s (--auth %s)" % (path, name)
                w["raw"] = r.stdout.replace(env["TOKEN"], "<token>")
                log("  round %d %-60s %9.0f req/s  p50 %7.2f ms  p99 %7.2f ms  non-2xx %d  socket errors %d"
                    % (rnd + 1, w["name"], w["rps"], w["p50"], w["p99"], w["non2xx"], w["socket_errors"]))
                if name not in best or w["rps"] > best[name]["rps"]:
                    best[name] = w
        rows = [best[name] for name, _, _ in servers]
        ratio = rows[1]["rps"] / rows[0]["rps"] if rows[0]["rps"] else 0.0
        ok = ratio >= 0.9 and rows[1]["p99"] <= 20 and rows[1]["non2xx"] == 0
        cold_ms = sorted(get(ks_port, ["X-Auth-Token: " + t])[0] for t in cold)
        warm_ms = sorted(get(ks_port, headers["keystone"])[0] for _ in range(20))
        med = lambda v: v[len(v) // 2]
        log("  keystone / keystone-headers: %.2fx req/s  %s (>=0.90x, p99<=20 ms, 0 non-2xx)"
            % (ratio, "PASS" if ok else "MISS"))
        log("  first request with a new token (cold cache, one Keystone validation): median %.1f ms, max %.1f ms;"
            " warm: median %.1f ms" % (med(cold_ms), cold_ms[-1], med(warm_ms)))
        bench.cur["http_keystone"] = {"rows": rows, "ratio": ratio, "verdict": "PASS" if ok else "MISS",
                                      "cold_ms": cold_ms, "warm_ms": warm_ms}
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        ks.stdin.close()
        ks.wait(timeout=60)
