#!/usr/bin/python3
"""Raw-socket HTTP checks of panko-api that gabbi cannot express.

gabbi's HTTP client re-encodes malformed URLs and cannot send over-long
request lines, raw bytes, pipelined requests or half requests, so these
go over a plain socket.  Also checks that concurrent requests with
different identities never see each other's events (one database
connection per worker thread, identity set per transaction).

Usage: raw_http.py PORT                 the checks against a keystone-headers
                                        server with --max-body 4096
       raw_http.py --noauth PORT [PID]  the checks against an --auth none
                                        server with the default limits: the
                                        Host check against DNS rebinding, and
                                        large bodies that must be refused fast
                                        (and cheaply, given the server's PID)
       raw_http.py --slow-client PORT   a client that never finishes its
                                        headers is cut off (server --timeout 1)
"""
import json
import os
import socket
import sys
import threading
import time
import urllib.parse

HOST = "127.0.0.1"
failures = []

ADMIN = {"X-User-Id": "admin-1", "X-Project-Id": "proj-a", "X-Roles": "admin"}


def request(port, raw, timeout=10):
    """Send raw bytes, read until the server closes; return (status, headers, body)."""
    s = socket.create_connection((HOST, port), timeout=timeout)
    try:
        s.sendall(raw)
        chunks = []
        while True:
            try:
                d = s.recv(65536)
            except socket.timeout:
                break
            if not d:
                break
            chunks.append(d)
    finally:
        s.close()
    return parse_response(b"".join(chunks))


def parse_response(data):
    """Split one response into (status, {lower-case header: value}, body bytes)."""
    if not data:
        return None, {}, b""
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(b":")
        headers[k.decode().strip().lower()] = v.decode().strip()
    if "content-length" in headers:
        body = body[:int(headers["content-length"])]
    return status, headers, body


def get(port, target, headers=None, version="HTTP/1.1", extra=b""):
    """A GET with Connection: close and the given headers."""
    raw = (target if isinstance(target, bytes) else target.encode())
    h = {"Host": "127.0.0.1:%d" % port, "Connection": "close"}
    h.update(headers or {})
    out = b"GET " + raw + b" " + version.encode() + b"\r\n"
    for k, v in h.items():
        if v is None:
            continue
        out += k.encode() + b": " + (v if isinstance(v, bytes) else v.encode()) + b"\r\n"
    return request(port, out + b"\r\n" + extra)


def send(port, method, target, headers, body=b"", timeout=10):
    """A request with headers given as a list of (name, value) pairs, so
    that a header can be repeated or left out (no Host unless given)."""
    out = method.encode() + b" " + (target if isinstance(target, bytes) else target.encode()) + b" HTTP/1.1\r\n"
    for k, v in headers:
        out += k.encode() + b": " + (v if isinstance(v, bytes) else v.encode()) + b"\r\n"
    if body:
        out += b"Content-Length: %d\r\n" % len(body)
    return request(port, out + b"\r\n" + body, timeout=timeout)


def timed(fn, *args, **kwargs):
    """(result, seconds) of one call."""
    t0 = time.time()
    r = fn(*args, **kwargs)
    return r, time.time() - t0


def faultstring(body):
    """The faultstring of a Panko error body, or None."""
    try:
        return json.loads(body.decode("utf-8"))["error_message"]["faultstring"]
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        return None


def check(name, cond, detail=""):
    """Record one assertion."""
    if cond:
        print("ok   %s" % name)
    else:
        print("FAIL %s %s" % (name, detail))
        failures.append(name)


def check_error(name, resp, status, faultstring=None):
    """A Panko error body with the given status (and message)."""
    st, hdrs, body = resp
    ok = st == status
    detail = "status %r body %r" % (st, body[:300])
    try:
        doc = json.loads(body)
        em = doc["error_message"]
        ok = ok and em["faultcode"] == ("Server" if status >= 500 else "Client")
        ok = ok and em["debuginfo"] is None
        if faultstring is not None:
            ok = ok and em["faultstring"] == faultstring
        ok = ok and hdrs.get("x-openstack-request-id", "").startswith("req-")
    except (ValueError, KeyError, TypeError):
        ok = False
    check(name, ok, detail)


def run_main(port):
    """Everything against the main server."""
    bad_q = "Invalid query string: parameter %d has invalid percent-encoding"
    check_error("bad percent-encoding in a query value",
                get(port, "/v2/events?q.field=event_type&q.value=%zz", ADMIN), 400, bad_q % 2)
    check_error("truncated percent-encoding at the end",
                get(port, "/v2/events?limit=1%2", ADMIN), 400, bad_q % 1)
    check_error("lone percent sign",
                get(port, "/v2/events?limit=%", ADMIN), 400, bad_q % 1)
    check_error("bad percent-encoding in a parameter name",
                get(port, "/v2/events?q.fi%ZZeld=host", ADMIN), 400, bad_q % 1)
    check_error("bad percent-encoding in another route's query",
                get(port, "/v2/capabilities?x=%G1", ADMIN), 400, bad_q % 1)
    check_error("bad percent-encoding in the path",
                get(port, "/v2/events/ev%zz", ADMIN), 400, "Invalid path: invalid percent-encoding")
    check_error("bad percent-encoding in an event type",
                get(port, "/v2/event_types/a%2/traits", ADMIN), 400, "Invalid path: invalid percent-encoding")
    check_error("raw invalid UTF-8 byte in the path",
                get(port, b"/v2/events/\xff\xfe", ADMIN), 400, "Invalid path: invalid UTF-8")
    check_error("raw invalid UTF-8 byte in the query",
                get(port, b"/v2/events?q.field=host&q.value=\xc0\xaf", ADMIN), 400,
                "Invalid query string: parameter 2 has invalid UTF-8")
    check_error("raw UTF-8 in the path is decoded",
                get(port, "/v2/events/év".encode(), ADMIN), 404, "Event év Not Found")
    check_error("control character in the target",
                get(port, b"/v2/events\x01", ADMIN), 400, "Invalid request target")
    st, _, _ = get(port, b"/v2/events x", ADMIN)
    check("space in the target is refused (400 or closed)", st in (None, 400), "status %r" % st)

    st, _, body = get(port, "/v2/events?q.field=" + "a" * 70000, ADMIN)
    check("over-long URL is 414", st == 414, "status %r" % st)
    st, _, _ = get(port, "/v2/events", dict(ADMIN, **{"X-Big": "b" * 70000}))
    check("over-long header is 431", st == 431, "status %r" % st)
    many = dict(ADMIN)
    for i in range(3000):
        many["X-H%d" % i] = "v" * 20
    st, _, _ = get(port, "/v2/events", many)
    check("too many headers is 431", st == 431, "status %r" % st)

    st, hdrs, body = get(port, "/", {"Host": None}, version="HTTP/1.0")
    doc = json.loads(body) if st == 200 else {}
    href = doc.get("versions", {}).get("values", [{}])[0].get("links", [{}])[0].get("href")
    check("HTTP/1.0 without Host: versions links use the listen address",
          href == "http://127.0.0.1:%d/v2" % port, "status %r href %r" % (st, href))

    # two pipelined requests on one keep-alive connection
    raw = b""
    for target in (b"/v2/capabilities", b"/healthcheck"):
        raw += b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    s = socket.create_connection((HOST, port), timeout=5)
    s.sendall(raw)
    data = b""
    deadline = time.time() + 5
    while data.count(b"HTTP/1.1 200") < 2 and time.time() < deadline:
        d = s.recv(65536)
        if not d:
            break
        data += d
    s.close()
    check("pipelined keep-alive requests are both answered",
          data.count(b"HTTP/1.1 200") == 2 and data.rstrip().endswith(b"OK"), repr(data[-200:]))

    # chunked uploads
    def chunked(body_bytes, ctype=b"application/json", method=b"POST"):
        out = method + b" /v2/events HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        for k, v in ADMIN.items():
            out += k.encode() + b": " + v.encode() + b"\r\n"
        out += b"Content-Type: " + ctype + b"\r\nTransfer-Encoding: chunked\r\n\r\n"
        for i in range(0, len(body_bytes), 1000):
            piece = body_bytes[i:i + 1000]
            out += b"%x\r\n" % len(piece) + piece + b"\r\n"
        return request(port, out + b"0\r\n\r\n")

    big = json.dumps([{"message_id": "raw-big", "event_type": "x", "generated": "2024-03-01T00:00:00",
                       "traits": [], "raw": {"blob": "x" * 6000}}]).encode()
    check_error("chunked body over --max-body is 413", chunked(big), 413,
                "Request body is larger than the limit of 4096 bytes")
    st, _, body = chunked(json.dumps({"limit": 2}).encode(), method=b"GET")
    ok = st == 200 and [e["message_id"] for e in json.loads(body)] == ["ev-a0", "ev-a1"]
    check("chunked JSON body on GET is read", ok, "status %r body %r" % (st, body[:200]))

    st, _, body = chunked(b'[{"message_id": "raw-nul", "event_type": "x\x00y"}]')
    check_error("NUL byte inside a JSON body is 400", (st, {"x-openstack-request-id": "req-"}, body), 400)

    st, hdrs, body = request(port, b"POST /v2/events HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                             b"X-Roles: admin\r\nContent-Length: 2\r\n\r\n[]")
    check_error("POST without a Content-Type is 415", (st, hdrs, body), 415, "Unknown mimetype: None")

    # a client that announces more body than it sends, then goes away
    s = socket.create_connection((HOST, port), timeout=5)
    s.sendall(b"POST /v2/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"X-Roles: admin\r\nContent-Length: 1000\r\n\r\n[{\"message_id\": ")
    s.close()
    # garbage instead of a request line
    st, _, _ = request(port, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n", timeout=3)
    check("garbage request line is refused", st in (None, 400), "status %r" % st)

    # concurrent requests with different identities never mix
    expected = {
        ("user-a1", "proj-a", "member"): ["ev-a1", "ev-a2", "ev-a4"],
        ("user-b1", "proj-b", "member"): ["ev-b1", "ev-b2"],
        ("admin-2", "proj-b", "admin"): ["ev-b1", "ev-b2", "ev-np"],
        ("user-a2", "proj-a", "member"): ["ev-a0", "ev-a3"],
    }
    wrong = []
    lock = threading.Lock()

    def worker(ident, n):
        hdrs = {"X-User-Id": ident[0], "X-Project-Id": ident[1], "X-Roles": ident[2]}
        for _ in range(n):
            st, _, body = get(port, "/v2/events", hdrs)
            got = [e["message_id"] for e in json.loads(body)] if st == 200 else st
            if got != expected[ident]:
                with lock:
                    wrong.append((ident, got))

    threads = [threading.Thread(target=worker, args=(ident, 25))
               for ident in expected for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    check("300 concurrent requests under 4 identities each see their own events",
          not wrong, repr(wrong[:3]))

    # concurrent ingest of new event types: every batch stored, no 500
    results = []

    def poster(k):
        body = json.dumps([{"message_id": "raw-conc-%d-%d" % (k, i), "event_type": "raw.conc.%d" % (i % 3),
                            "generated": "2024-05-01T00:00:%02d" % i,
                            "traits": [["project_id", 1, "proj-raw"], ["t%d" % (i % 4), 2, i]]}
                           for i in range(8)]).encode()
        out = (b"POST /v2/events HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
               b"Content-Type: application/json\r\nX-Roles: admin\r\n"
               b"Content-Length: %d\r\n\r\n" % len(body)) + body
        st, _, rbody = request(port, out)
        with lock:
            results.append((st, json.loads(rbody).get("stored") if st == 201 else rbody[:200]))

    threads = [threading.Thread(target=poster, args=(k,)) for k in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    check("12 concurrent POSTs of new event types are all stored",
          results == [(201, 8)] * 12, repr([r for r in results if r != (201, 8)][:3]))

    # repeated identity headers: a proxy that appends its header instead of
    # replacing the client's must not let the client's copy win
    member_b = [("Host", "x"), ("Connection", "close"), ("X-User-Id", "user-b1"),
                ("X-Project-Id", "proj-b"), ("X-Roles", "member")]
    st, _, body = send(port, "GET", "/v2/events", member_b)
    check("one copy of each identity header is served",
          st == 200 and [e["message_id"] for e in json.loads(body)] == ["ev-b1", "ev-b2"],
          "status %r body %r" % (st, body[:200]))
    for name, extra in (("X-User-Id", "user-a1"), ("X-Project-Id", "proj-a"), ("X-Roles", "admin")):
        for value_first in (False, True):
            hdrs = list(member_b)
            if value_first:
                hdrs.insert(2, (name.lower(), extra))
            else:
                hdrs.append((name.upper(), extra))
            check_error("%s given twice (%s) is 400" % (name, "client's first" if value_first else "appended"),
                        send(port, "GET", "/v2/events", hdrs), 400,
                        "The %s header was given several times" % name)
    hdrs = member_b + [("X-Roles", "member")]
    check_error("X-Roles twice with the same value is 400 too",
                send(port, "GET", "/v2/events/ev-b1", hdrs), 400,
                "The X-Roles header was given several times")
    check_error("a repeated identity header on POST is 400, before the body",
                send(port, "POST", "/v2/events",
                     [("Host", "x"), ("Connection", "close"), ("Content-Type", "application/json"),
                      ("X-Roles", "member"), ("X-Roles", "admin")], b"[]"), 400,
                "The X-Roles header was given several times")
    check_error("Host given twice is 400",
                send(port, "GET", "/v2/capabilities", [("Host", "x"), ("Host", "y"), ("Connection", "close")]),
                400)

    # the number of filters is bounded (--max-filters, default 100)
    def q_items(n):
        return "&".join("q.field=host&q.value=compute-1" for _ in range(n))
    st, _, body = get(port, "/v2/events?" + q_items(100), ADMIN)
    check("100 q items in the query string are served", st == 200, "status %r body %r" % (st, body[:200]))
    check_error("101 q items in the query string are 400",
                get(port, "/v2/events?" + q_items(101), ADMIN), 400,
                "Too many filters: 101 given, at most 100 are allowed")
    check_error("101 q.value items alone are 400",
                get(port, "/v2/events?" + "&".join("q.value=x" for _ in range(101)), ADMIN), 400,
                "Too many filters: 101 given, at most 100 are allowed")
    check_error("101 sort keys are 400",
                get(port, "/v2/events?" + "&".join("sort=generated" for _ in range(101)), ADMIN), 400,
                "Too many sort keys: 101 given, at most 100 are allowed")

    # messages are cut between UTF-8 characters, never inside one
    long_id = "é" * 300
    st, _, body = get(port, "/v2/events/" + urllib.parse.quote(long_id), ADMIN)
    fs = faultstring(body)
    check("a long 404 message is cut between characters",
          st == 404 and fs is not None and fs.startswith("Event éé") and
          set(fs[len("Event "):]) == {"é"},
          "status %r faultstring %r" % (st, fs and fs[-20:]))
    # (one ASCII byte first, so that a cut at a round number of bytes falls
    # inside a character)
    st, _, body = get(port, "/v2/events?" + urllib.parse.quote("x" + "ü" * 600) + "=1", ADMIN)
    fs = faultstring(body)
    check("a long unknown parameter name is cut between characters",
          st == 400 and fs is not None and fs.startswith('Unknown argument: "xüü') and
          set(fs[len('Unknown argument: "x'):]) <= {"ü", '"'},
          "status %r faultstring %r" % (st, fs and fs[-20:]))
    st, _, body = get(port, "/v2/events?limit=" + urllib.parse.quote("x" + "€" * 400), ADMIN)
    fs = faultstring(body)
    check("a long bad limit is quoted and cut between characters",
          st == 400 and fs is not None and fs.startswith("Invalid input for field/attribute limit. Value: 'x€€") and
          "?" not in fs and "\ufffd" not in fs,
          "status %r faultstring %r" % (st, fs and fs[-20:]))

    # failed requests do not poison the thread's connection
    for _ in range(6):
        get(port, "/v2/events?limit=abc", ADMIN)
    st, _, body = get(port, "/healthcheck")
    check("health check after failed requests", st == 200 and body == b"OK", "%r %r" % (st, body))
    st, _, body = get(port, "/v2/events?limit=1", ADMIN)
    check("queries after failed requests", st == 200 and json.loads(body)[0]["message_id"] == "ev-a0",
          "%r %r" % (st, body[:200]))


def cpu_seconds(pid):
    """User plus system CPU time of a process, in seconds (0 without a pid)."""
    if not pid:
        return 0.0
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_noauth(port, pid=None):
    """--auth none: only loopback Host names, and big inputs refused fast.
    With the server's pid, its CPU time is checked too."""
    good = "127.0.0.1:%d" % port

    def with_host(method, target, host, body=b"", extra=()):
        hdrs = [("Connection", "close")] + list(extra)
        if host is not None:
            hdrs.insert(0, ("Host", host))
        return send(port, method, target, hdrs, body)

    # DNS rebinding: a page of attacker.example, resolved to 127.0.0.1
    check_error("GET with Host attacker.example is refused",
                with_host("GET", "/v2/events", "attacker.example:8977"), 400)
    event = json.dumps([{"message_id": "rebind-1", "event_type": "rebind.test",
                         "generated": "2024-07-01T00:00:00",
                         "traits": [["project_id", 1, "proj-rebind"]], "raw": {}}]).encode()
    check_error("POST with Host attacker.example is refused",
                with_host("POST", "/v2/events", "attacker.example:8977", event,
                          [("Content-Type", "application/json")]), 400)
    st, _, _ = with_host("GET", "/v2/events/rebind-1", good)
    check("nothing was stored by the refused POST", st == 404, "status %r" % st)
    for host in ("attacker.example", "localhost.attacker.example", "127.0.0.1.nip.io",
                 "0.0.0.0:%d" % port, "10.0.0.1", "[::2]:%d" % port, "localhost:", "localhost:abc",
                 "127.0.0.1:%d:1" % port, "[::1]x", "", "localhost.", "2130706433"):
        check_error("Host %r is refused" % host, with_host("GET", "/v2/capabilities", host), 400)
    resp = with_host("GET", "/v2/capabilities", None)
    check("HTTP/1.1 without Host is refused", resp[0] == 400, "status %r" % resp[0])
    for host in (good, "127.0.0.1", "localhost", "LocalHost:%d" % port, "127.1.2.3:80",
                 "[::1]:%d" % port, "[::1]", "[0:0:0:0:0:0:0:1]:%d" % port):
        st, _, body = with_host("GET", "/v2/capabilities", host)
        check("Host %r is served" % host, st == 200, "status %r body %r" % (st, body[:200]))
    st, _, _ = get(port, "/v2/capabilities", {"Host": None}, version="HTTP/1.0")
    check("HTTP/1.0 without Host is served", st == 200, "status %r" % st)

    # filters: bounded in a JSON body as in the query string
    def q_body(n):
        return json.dumps({"q": [{"field": "host", "value": "compute-%d" % i} for i in range(n)]}).encode()
    jhdr = [("Content-Type", "application/json")]
    st, _, body = with_host("GET", "/v2/events", good, q_body(100), jhdr)
    check("100 q items in a JSON body are served", st == 200, "status %r body %r" % (st, body[:200]))
    check_error("101 q items in a JSON body are 400",
                with_host("GET", "/v2/events", good, q_body(101), jhdr), 400,
                "Too many filters: 101 given, at most 100 are allowed")
    resp, secs = timed(with_host, "GET", "/v2/events", good, q_body(20000), jhdr)
    check_error("20,000 q items in a JSON body are 400", resp, 400,
                "Too many filters: 20000 given, at most 100 are allowed")
    check("... answered at once (%.2fs)" % secs, secs < 2)
    check_error("101 sort keys in a JSON body are 400",
                with_host("GET", "/v2/events", good, json.dumps({"sort": ["generated"] * 101}).encode(), jhdr),
                400, "Too many sort keys: 101 given, at most 100 are allowed")

    # a body with 700,000 names and a query string with 500 (about as many
    # as libmicrohttpd takes with a body): every name is looked at once, it
    # used to be compared with every name of the other part (seconds of CPU)
    names = "&".join("k%d=" % i for i in range(500))
    big = b"{" + b",".join(b'"n%d":0' % i for i in range(700000)) + b"}"
    cpu0 = cpu_seconds(pid)
    resp, secs = timed(with_host, "GET", "/v2/events?" + names, good, big, jhdr)
    cpu = cpu_seconds(pid) - cpu0
    check_error("700,000 unknown names in a body and 500 in the query are 400", resp, 400,
                'Unknown argument: "n0"')
    if pid:
        check("... costing the server little CPU (%.2fs)" % cpu, cpu < 0.75)


def run_slow_client(port):
    """A client that stops in the middle of its headers is disconnected."""
    s = socket.create_connection((HOST, port), timeout=15)
    s.sendall(b"GET /v2/capabilities HTTP/1.1\r\nHost: x\r\n")
    t0 = time.time()
    try:
        d = s.recv(1000)
    except (socket.timeout, ConnectionResetError):
        d = None
    elapsed = time.time() - t0
    s.close()
    check("slow client is disconnected by --timeout", d == b"" and elapsed < 10,
          "got %r after %.1fs" % (d, elapsed))
    # and a client that sends its body too slowly
    s = socket.create_connection((HOST, port), timeout=15)
    s.sendall(b"POST /v2/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Content-Length: 100\r\n\r\n[")
    t0 = time.time()
    try:
        d = s.recv(1000)
    except (socket.timeout, ConnectionResetError):
        d = None
    elapsed = time.time() - t0
    s.close()
    check("slow body is disconnected by --timeout", d == b"" and elapsed < 10,
          "got %r after %.1fs" % (d, elapsed))


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--slow-client":
        run_slow_client(int(sys.argv[2]))
    elif len(sys.argv) in (3, 4) and sys.argv[1] == "--noauth":
        run_noauth(int(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) == 4 else None)
    elif len(sys.argv) == 2:
        run_main(int(sys.argv[1]))
    else:
        print(__doc__)
        return 2
    if failures:
        print("raw_http: %d failed: %s" % (len(failures), ", ".join(failures)))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
