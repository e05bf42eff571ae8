#!/usr/bin/python3
"""Helper for durability.sh: post batches until told to stop, then verify.

  durability.py post PORT ACKFILE STOPFILE
      POST batches of 200 events (project proj-durable) to panko-api until
      STOPFILE exists; after every 201 whose body says all were stored,
      append the batch's message ids to ACKFILE (flushed and fsynced).
  durability.py verify PORT ACKFILE
      every acknowledged id must come back from GET /v2/events.
"""
import json
import os
import sys
import time
import urllib.error
import urllib.request

PROJECT = "proj-durable"
BATCH = 200


def post(port, ackfile, stopfile):
    """Keep posting; record what the server acknowledged."""
    n = 0
    acked = 0
    with open(ackfile, "a") as out:
        while not os.path.exists(stopfile):
            ids = ["dur-%06d" % (n + i) for i in range(BATCH)]
            body = json.dumps([{
                "message_id": mid, "event_type": "durability.check",
                "generated": "2024-04-01T00:00:%02d.%06d" % (i % 60, n + i),
                "traits": [["project_id", 1, PROJECT], ["seq", 2, n + i]],
                "raw": {}} for i, mid in enumerate(ids)]).encode()
            n += BATCH
            req = urllib.request.Request("http://127.0.0.1:%d/v2/events" % port, data=body,
                                         headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(req, timeout=30) as r:
                    doc = json.load(r)
                    if r.status == 201 and doc["stored"] == BATCH:
                        out.write("\n".join(ids) + "\n")
                        out.flush()
                        os.fsync(out.fileno())
                        acked += BATCH
            except (urllib.error.URLError, OSError, ValueError):
                time.sleep(0.05)
    print("acknowledged %d events in %d batches sent" % (acked, n // BATCH))
    return 0


def verify(port, ackfile):
    """Every acknowledged event is stored."""
    with open(ackfile) as f:
        acked = [line.strip() for line in f if line.strip()]
    url = ("http://127.0.0.1:%d/v2/events?q.field=project_id&q.value=%s&limit=10000"
           % (port, PROJECT))
    stored = set()
    marker = None
    while True:
        u = url + ("&marker=" + marker if marker else "")
        with urllib.request.urlopen(u, timeout=30) as r:
            page = json.load(r)
        if not page:
            break
        stored.update(e["message_id"] for e in page)
        marker = page[-1]["message_id"]
    missing = [m for m in acked if m not in stored]
    print("acknowledged %d, found %d stored, %d acknowledged missing"
          % (len(acked), len(stored), len(missing)))
    if not acked:
        print("FAIL nothing was acknowledged before the crash")
        return 1
    if missing:
        print("FAIL missing after the crash: %s" % ", ".join(missing[:10]))
        return 1
    return 0


def main():
    if len(sys.argv) == 5 and sys.argv[1] == "post":
        return post(int(sys.argv[2]), sys.argv[3], sys.argv[4])
    if len(sys.argv) == 4 and sys.argv[1] == "verify":
        return verify(int(sys.argv[2]), sys.argv[3])
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main())
