#!/usr/bin/python3
"""Ceilometer's real HTTP event publisher posting to panko-api.

Builds Ceilometer event models (ceilometer.event.models), publishes them
with ceilometer.publisher.http.HttpPublisher to POST /v2/events of a
panko-api started with --auth none, checks every POST was answered 201
with everything stored, then reads the events back with GET /v2/events and
compares event types, timestamps, raw payloads and every trait's name, type
and value.

With --token TOKEN (panko-api --auth keystone): Ceilometer's http
publisher has no Keystone authentication of its own (only basic auth and
client certificates), so the token goes in its requests session's headers,
as a deployment would add it; every POST carries X-Auth-Token.  The events
are read back with --read-token (an admin's token, with all_tenants).

Usage: ceilometer_publish.py PORT [--token TOKEN --read-token TOKEN] [--project ID]
"""
import datetime
import json
import sys
import urllib.request
import uuid
from urllib import parse as urlparse

from ceilometer import service
from ceilometer.event import models
from ceilometer.publisher import http as http_publisher

PROJECT = "proj-ceilometer"
N_EVENTS = 60


def make_events():
    """Deterministic-looking events covering every trait type."""
    base = datetime.datetime(2024, 3, 1, 12, 0, 0)
    events = []
    for i in range(N_EVENTS):
        generated = base + datetime.timedelta(seconds=i, microseconds=(i * 1237) % 1000000)
        traits = [
            models.Trait("service", models.Trait.TEXT_TYPE, "compute"),
            models.Trait("project_id", models.Trait.TEXT_TYPE, PROJECT),
            models.Trait("user_id", models.Trait.TEXT_TYPE, "user-%d" % (i % 3)),
            models.Trait("request_id", models.Trait.TEXT_TYPE, "req-%s" % uuid.uuid4()),
            models.Trait("memory_mb", models.Trait.INT_TYPE, 512 * (i % 4 + 1)),
            models.Trait("ratio", models.Trait.FLOAT_TYPE, i / 8.0),
            models.Trait("launched_at", models.Trait.DATETIME_TYPE,
                         base - datetime.timedelta(minutes=i)),
            models.Trait("display_name", models.Trait.TEXT_TYPE, "vm \u00e9 %d" % i),
        ]
        events.append(models.Event(
            message_id=str(uuid.uuid4()),
            event_type="compute.instance.%s.end" % ("create" if i % 2 == 0 else "delete"),
            generated=generated,
            traits=traits,
            raw={"payload": {"instance_id": "inst-%d" % i, "index": i}}))
    return events


def iso(dt):
    """Panko's datetime text: microseconds only when not zero."""
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%f" if dt.microsecond else "%Y-%m-%dT%H:%M:%S")


def expected_json(ev):
    """The event as GET /v2/events must return it."""
    names = {1: "string", 2: "integer", 3: "float", 4: "datetime"}
    traits = []
    for t in ev.traits:
        if t.dtype == models.Trait.DATETIME_TYPE:
            value = iso(t.value)
        elif t.dtype == models.Trait.FLOAT_TYPE:
            value = repr(float(t.value))
        else:
            value = str(t.value)
        traits.append({"name": t.name, "type": names[t.dtype], "value": value})
    traits.sort(key=lambda x: x["name"])
    return {"message_id": ev.message_id, "event_type": ev.event_type,
            "generated": iso(ev.generated), "traits": traits, "raw": ev.raw}


def main():
    global PROJECT
    port = int(sys.argv[1])
    opts = dict(zip(sys.argv[2::2], sys.argv[3::2]))
    PROJECT = opts.get("--project", PROJECT)
    token, read_token = opts.get("--token"), opts.get("--read-token")
    conf = service.prepare_service([], [])
    url = "http://127.0.0.1:%d/v2/events?timeout=10&max_retries=0" % port
    publisher = http_publisher.HttpPublisher(conf, urlparse.urlparse(url))
    if token:
        publisher.session.headers["X-Auth-Token"] = token

    # The publisher only logs failures; record every response it gets.
    responses = []
    real_post = publisher.session.post

    def recording_post(*args, **kwargs):
        res = real_post(*args, **kwargs)
        responses.append(res)
        if token and res.request.headers.get("X-Auth-Token") != token:
            failures.append("a POST went out without the token")
        return res
    publisher.session.post = recording_post

    failures = []
    events = make_events()
    publisher.publish_events(events[:20])
    publisher.publish_events(events[20:])

    if len(responses) != 2:
        failures.append("expected 2 POSTs, saw %d" % len(responses))
    stored = 0
    for res in responses:
        if res.status_code != 201:
            failures.append("POST answered %d: %s" % (res.status_code, res.text[:300]))
            continue
        body = res.json()
        stored += body["stored"]
        if body["duplicates"] or body["rejected"] or body["problems"]:
            failures.append("POST reported problems: %s" % res.text[:300])
    if stored != N_EVENTS:
        failures.append("stored %d of %d events" % (stored, N_EVENTS))

    q = [("q.field", "project_id"), ("q.value", PROJECT), ("limit", "1000")]
    headers = {}
    if read_token:
        q += [("q.field", "all_tenants"), ("q.value", "true")]
        headers["X-Auth-Token"] = read_token
    req = urllib.request.Request("http://127.0.0.1:%d/v2/events?%s" % (port, urlparse.urlencode(q)),
                                 headers=headers)
    with urllib.request.urlopen(req) as r:
        got = {e["message_id"]: e for e in json.load(r)}
    for ev in events:
        want = expected_json(ev)
        have = got.get(ev.message_id)
        if have != want:
            failures.append("event %s differs:\n  want %s\n  got  %s"
                            % (ev.message_id, json.dumps(want), json.dumps(have)))
    if len(got) != N_EVENTS:
        failures.append("GET returned %d events of project %s, want %d" % (len(got), PROJECT, N_EVENTS))

    for f in failures[:10]:
        print("FAIL", f)
    if failures:
        return 1
    print("ok   %d events published by ceilometer.publisher.http came back intact" % N_EVENTS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
