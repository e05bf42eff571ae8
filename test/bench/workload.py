#!/usr/bin/python3
"""Deterministic OpenStack event workload for panko's benchmarks.

N events in Ceilometer's publisher form:

    {"message_id": "...", "event_type": "...", "generated": "YYYY-MM-DDTHH:MM:SS.ffffff",
     "traits": [[name, type_id, value], ...], "raw": {}}

written as one JSON array per line (a batch, default 10,000 events).

Shape (fixed seed, so every run and every system sees the same events,
apart from the anchor in time, which is "now"):
  - 20 OpenStack event types, equally likely;
  - `generated` spread evenly over [D0, end), D0 = UTC midnight of today
    minus (DAYS - 1) days and end = now (truncated to the second): DAYS
    days (31 by default, the last one partial), whose oldest day
    [D0, D0 + 1 day) is one whole UTC day, so each day is one of panko's
    daily partitions and there are about N/DAYS events a day.  The span
    ends now because panko makes daily partitions on demand only within
    400 days of now (so DAYS <= 400).  Events are written in
    time order, as a live feed would deliver them.  No event falls in the
    first two seconds after a UTC midnight, so that an integer-second TTL
    computed at run time expires exactly whole days (see bench.py);
  - 12 traits each:
      instance_id   string   N/7 distinct (about 7 events per instance)
      project_id    string   50 values } equal for an event; a user
      tenant_id     string   50 values } belongs to one project
      user_id       string   200 values
      state         string   active building stopped deleted error
      host          string   100 values
      display_name  string   one per instance
      request_id    string   unique per event
      memory_mb     integer  512 1024 2048 4096 8192
      vcpus         integer  1 2 4 8
      disk_gb       integer  10 20 40 80 160
      launched_at   datetime up to an hour before `generated`
  - message_id: a uuid4-shaped string; raw: {}.

Usage: workload.py --n N [--days 31] [--seed S] [--batch 10000] [--end EPOCH] --out FILE
       writes FILE (batches) and FILE.meta.json (anchors and value pools).
"""

import argparse
import json
import random
import sys
import time

SEED = 20240601

EVENT_TYPES = [
    "compute.instance.create.start",
    "compute.instance.create.end",
    "compute.instance.delete.start",
    "compute.instance.delete.end",
    "compute.instance.update",
    "compute.instance.exists",
    "compute.instance.power_on.end",
    "compute.instance.power_off.end",
    "compute.instance.reboot.end",
    "compute.instance.resize.confirm.end",
    "volume.create.end",
    "volume.delete.end",
    "volume.attach.end",
    "volume.detach.end",
    "image.upload",
    "image.delete",
    "network.create.end",
    "port.create.end",
    "floatingip.update.end",
    "identity.authenticate",
]
STATES = ["active", "building", "stopped", "deleted", "error"]
MEMORY_MB = [512, 1024, 2048, 4096, 8192]
VCPUS = [1, 2, 4, 8]
DISK_GB = [10, 20, 40, 80, 160]
N_PROJECTS = 50
N_USERS = 200
N_HOSTS = 100
DAY = 86400
DAYS = 31               # default span in (UTC) days, today included
MAX_DAYS = 400          # panko's daily partitions reach 400 days back
MIDNIGHT_GAP = 2        # seconds after each UTC midnight left empty


def uuid_str(bits):
    h = "%032x" % bits
    # uuid4 layout: version nibble 4, variant 8..b
    return "%s-%s-4%s-%x%s-%s" % (h[0:8], h[8:12], h[13:16],
                                  8 | (int(h[16], 16) & 3), h[17:20], h[20:32])


def fmt_ts(us):
    """Epoch microseconds -> 'YYYY-MM-DDTHH:MM:SS.ffffff' (UTC)."""
    s, frac = divmod(us, 1000000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(s)) + ".%06d" % frac


class Workload:
    def __init__(self, n, seed=SEED, end=None, days=DAYS):
        if not 1 <= days <= MAX_DAYS:
            raise ValueError("days must be 1..%d, not %r" % (MAX_DAYS, days))
        self.n = n
        self.seed = seed
        self.span_days = days
        end = int(time.time()) if end is None else int(end)
        self.end = end
        self.d0 = (end // DAY) * DAY - (days - 1) * DAY
        rng = random.Random(seed)
        self.projects = ["%032x" % rng.getrandbits(128) for _ in range(N_PROJECTS)]
        self.users = ["%032x" % rng.getrandbits(128) for _ in range(N_USERS)]
        self.user_project = [self.projects[u % N_PROJECTS] for u in range(N_USERS)]
        self.hosts = ["compute-%03d.cloud.example.org" % i for i in range(N_HOSTS)]
        n_inst = max(1, n // 7)
        self.instances = [uuid_str(rng.getrandbits(128)) for _ in range(n_inst)]
        self.names = ["%s-%05d" % (rng.choice(["web", "db", "worker", "cache", "build", "vm"]), i)
                      for i in range(n_inst)]
        self.rng = random.Random(seed + 1)

    def meta(self):
        return {
            "n": self.n, "seed": self.seed, "end": self.end, "d0": self.d0,
            "days": (self.end - self.d0) / DAY, "span_days": self.span_days,
            "event_types": EVENT_TYPES, "projects": self.projects, "users": self.users,
            "user_project": self.user_project, "hosts": self.hosts, "states": STATES,
            "instances_sample": self.instances[:2000], "n_instances": len(self.instances),
        }

    def events(self):
        """Yield the N events (dicts) in time order."""
        rng = self.rng
        n = self.n
        d0_us = self.d0 * 1000000
        span_us = (self.end - self.d0) * 1000000
        n_inst = len(self.instances)
        n_types = len(EVENT_TYPES)
        gap_us = MIDNIGHT_GAP * 1000000
        day_us = DAY * 1000000
        for i in range(n):
            t = d0_us + int((i + rng.random()) * span_us / n)
            if (t - d0_us) % day_us < gap_us:
                t += gap_us
            inst = rng.randrange(n_inst)
            u = rng.randrange(N_USERS)
            proj = self.user_project[u]
            launched = t - rng.randrange(3600 * 1000000)
            yield {
                "message_id": uuid_str(rng.getrandbits(128)),
                "event_type": EVENT_TYPES[rng.randrange(n_types)],
                "generated": fmt_ts(t),
                "traits": [
                    ["instance_id", 1, self.instances[inst]],
                    ["project_id", 1, proj],
                    ["tenant_id", 1, proj],
                    ["user_id", 1, self.users[u]],
                    ["state", 1, STATES[rng.randrange(5)]],
                    ["host", 1, self.hosts[rng.randrange(N_HOSTS)]],
                    ["display_name", 1, self.names[inst]],
                    ["request_id", 1, "req-" + uuid_str(rng.getrandbits(128))],
                    ["memory_mb", 2, MEMORY_MB[rng.randrange(5)]],
                    ["vcpus", 2, VCPUS[rng.randrange(4)]],
                    ["disk_gb", 2, DISK_GB[rng.randrange(5)]],
                    ["launched_at", 4, fmt_ts(launched)],
                ],
                "raw": {},
            }

    def batches(self, size):
        batch = []
        for ev in self.events():
            batch.append(ev)
            if len(batch) == size:
                yield batch
                batch = []
        if batch:
            yield batch


def write(n, out, seed=SEED, batch=10000, end=None, days=DAYS):
    w = Workload(n, seed, end, days)
    with open(out, "w") as f:
        for b in w.batches(batch):
            f.write(json.dumps(b, separators=(",", ":")))
            f.write("\n")
    with open(out + ".meta.json", "w") as f:
        json.dump(w.meta(), f)
    return w


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, required=True)
    ap.add_argument("--days", type=int, default=DAYS, help="span in UTC days, today included")
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--batch", type=int, default=10000)
    ap.add_argument("--end", type=int, default=None, help="anchor (epoch seconds), default now")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    t0 = time.perf_counter()
    write(a.n, a.out, a.seed, a.batch, a.end, a.days)
    print("workload: %d events -> %s in %.1f s" % (a.n, a.out, time.perf_counter() - t0),
          file=sys.stderr)


if __name__ == "__main__":
    main()
