"""Segment Spec payloads (track / identify / batch) in, validated by pydantic, mapped to Coltiva events."""

import json
import re
from datetime import datetime, timedelta, timezone

import httpx
import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.events import Event, parse_event
from service.segment import ValidationError, event_schemas, parse_segment, to_lines

from .conftest import ROOT
from .service_helpers import Server

TYPES = {"Demo Requested": "demo.requested", "Page Viewed": "page.visited", "Webinar Attended": "webinar.attended"}


def _track(n, user, event, when, **properties):
    return {"type": "track", "messageId": f"m-{n}", "userId": user, "event": event, "timestamp": when,
            "properties": properties}


def test_segment_payloads_over_http_step_leads_like_coltiva_events(tmp_path):
    mapping = "\n".join(f'"{k}" = "{v}"' for k, v in TYPES.items())
    config = tmp_path / "coltiva.toml"
    config.write_text(f"[segment.types]\n{mapping}\n")
    identify = {"type": "identify", "messageId": "m-0", "anonymousId": "acme-jane", "timestamp": "2026-01-05T09:00:00Z",
                "traits": {"company": {"size": 250}, "job": {"title": "VP Sales"}}}
    batch = {"batch": [_track(1, "acme-jane", "Page Viewed", "2026-01-05T09:01:00.250Z", path="/pricing"),
                       _track(2, "acme-jane", "Webinar Attended", "2026-01-06T10:00:00+01:00"),
                       _track(3, "acme-jane", "Demo Requested", "2026-01-07T10:00:00Z")]}
    coltiva_lines = [
        {"id": "m-0", "lead": "acme-jane", "type": "lead.updated", "time": "2026-01-05T09:00:00Z",
         "attributes": identify["traits"]},
        {"id": "m-1", "lead": "acme-jane", "type": "page.visited", "time": "2026-01-05T09:01:00Z",
         "data": {"path": "/pricing"}},
        {"id": "m-2", "lead": "acme-jane", "type": "webinar.attended", "time": "2026-01-06T09:00:00Z"},
        {"id": "m-3", "lead": "acme-jane", "type": "demo.requested", "time": "2026-01-07T10:00:00Z"},
    ]
    with Server(tmp_path, "--config", str(config)) as seg, Server(tmp_path, db="plain.db") as plain:
        with httpx.Client(base_url=seg.base, timeout=60) as http:
            assert http.post("/segment", json=identify).json()["applied"] == 1
            first = http.post("/segment", json=batch).json()
            again = http.post("/segment", json=batch).json()  # a webhook retried: duplicates, nothing twice
            unknown = http.post("/segment", json=_track(9, "acme-jane", "Logged In", "2026-01-08T00:00:00Z")).json()
            bad = http.post("/segment", json={"type": "track", "messageId": "x", "event": "Page Viewed",
                                              "timestamp": "2026-01-05T09:00:00Z"})
            naive = http.post("/segment", json=_track(8, "u", "Page Viewed", "2026-01-05T09:00:00"))
            seg_actions = [json.loads(x) for x in http.get("/actions").text.splitlines()]
        body = "\n".join(json.dumps(x) for x in coltiva_lines).encode()
        with httpx.Client(base_url=plain.base, timeout=60) as http:
            assert http.post("/events", content=body).json()["applied"] == 4
            plain_actions = [json.loads(x) for x in http.get("/actions").text.splitlines()]
    assert first["applied"] == 3 and again["duplicates"] == 3 and again["applied"] == 0
    assert unknown["quarantined"] == 1  # "Logged In" is mapped to nothing any journey reacts to
    assert bad.status_code == 400 and "userId or an anonymousId" in bad.json()["error"]
    assert naive.status_code == 400 and "timestamp" in naive.json()["error"]
    assert [a["key"] for a in seg_actions] == [a["key"] for a in plain_actions] and seg_actions
    assert any(a["kind"] == "handoff" for a in seg_actions)


moments = st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2199, 1, 1),
                       timezones=st.sampled_from([timezone.utc, timezone(timedelta(hours=2)),
                                                  timezone(timedelta(hours=-5, minutes=-30))]))
ids = st.one_of(st.text(max_size=20), st.text(min_size=250, max_size=260), st.integers())


@given(message=ids, user=ids, when=moments, event=st.sampled_from(sorted(TYPES)),
       properties=st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5), max_size=3))
def test_what_the_segment_schema_accepts_the_engine_accepts_as_the_event_it_means(message, user, when, event,
                                                                                 properties):
    payload = {"type": "track", "messageId": message, "userId": user, "event": event,
               "timestamp": when.isoformat(), "properties": properties}
    try:
        parsed_payload = parse_segment(json.dumps(payload).encode())
    except ValidationError:
        return  # refused whole with 400 and its reason (an empty id, a control character, too long)
    (line,) = to_lines(parsed_payload, TYPES)
    parsed = parse_event(line, frozenset(TYPES.values()))
    assert isinstance(parsed, Event), parsed
    assert (parsed.id, parsed.lead, parsed.type) == (str(message), str(user), TYPES[event])
    assert parsed.time == int(when.timestamp()) and parsed.data == properties


def test_the_published_json_schema_is_the_one_the_service_uses(tmp_path):
    published = json.loads((ROOT / "docs" / "events.schema.json").read_text())
    assert published == json.loads(json.dumps(event_schemas()))
    with Server(tmp_path) as server:
        assert httpx.get(server.base + "/schema/events.json").json() == published
    # the docs' example event is valid under the published schema; an event without a lead is not
    (example,) = re.findall(r"```json\n(.*?)```", (ROOT / "docs" / "events.md").read_text(), flags=re.S)
    jsonschema.validate(json.loads(example), published["coltiva_event"])
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"id": "1", "type": "email.opened", "time": "2026-01-05T09:00:00Z"},
                            published["coltiva_event"])
