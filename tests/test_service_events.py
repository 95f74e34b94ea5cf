"""POST /events validates lines with pydantic: it refuses (400) exactly what a schema can say, and never a line
`coltiva run` applies; the lines it lets through are applied or kept aside exactly as `coltiva run` does."""

import json
import re

import httpx
from hypothesis import example, given, settings
from hypothesis import strategies as st

from engine.events import MAX_EVENT_BYTES, Event, Malformed, parse_event, parse_time
from service.events import MAX_PROBLEMS, problems, read_events

from .service_helpers import Server, run_file

KNOWN = frozenset({"page.visited", "email.opened", "lead.updated"})
#: What only the engine's reader judges (a JSON Schema cannot say it): such a line passes the schema and the
#: engine keeps it aside. Nothing else may differ between the two.
BEYOND_A_SCHEMA = re.compile(r"appears twice|nested more than|is not a JSON number|is too large")

GOOD_TIMES = ["2026-03-01T09:30:00Z", "2026-03-01T09:30:00+02:00", "2026-03-01T09:30:00.123456z",
              "2026-03-01 09:30:00-05:30", "20260301T093000Z", "1970-01-01T00:00:00Z", "2199-12-31T23:59:59Z"]
BAD_TIMES = ["2026-03-01T09:30:00", "2026-03-01", "yesterday", "", " 2026-03-01T09:30:00Z", "2200-01-01T00:00:00Z",
             "1969-12-31T23:59:59Z", "2026-02-30T00:00:00Z", "2026-03-01T09:30:00Z\n", "1767603600"]

texts = st.text(st.characters(codec="utf-8"), max_size=12) | st.text(max_size=12)  # with and without surrogates
hostile_ids = st.one_of(
    texts, st.integers(), st.integers(min_value=10 ** 250, max_value=10 ** 260),
    st.integers(max_value=-(10 ** 250), min_value=-(10 ** 260)), st.text("ab", min_size=250, max_size=260),
    st.sampled_from(["a" * 256, "é" * 256, "a" * 257, 10 ** 256 - 1, 10 ** 256, -(10 ** 255 - 1), -(10 ** 255)]),
    st.sampled_from(["", "a\x00", "a\x1b[31m", "a\x7f", "a\x85", "a\n", "\ud800", "é", "-0"]),
    st.booleans(), st.floats(allow_nan=False), st.none(), st.lists(st.integers(), max_size=2),
)
good_ids = st.text("abc-0123456789", min_size=1, max_size=20) | st.integers(-(10 ** 30), 10 ** 30)
types = st.sampled_from(sorted(KNOWN)) | st.sampled_from(["email.opend", "a..b", "1abc", "a b", "x.y\n", "_ok-1.2"]) \
    | texts | st.integers() | st.none()
times = st.sampled_from(GOOD_TIMES) | st.sampled_from(BAD_TIMES) | texts | st.integers()
json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | texts,
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
                           max_leaves=8)
objects = st.dictionaries(texts, json_values, max_size=3)


@st.composite
def events(draw):
    """An event object: each field good, hostile or missing."""
    event = {}
    for name, good, bad in (("id", good_ids, hostile_ids), ("lead", good_ids, hostile_ids),
                            ("type", st.sampled_from(sorted(KNOWN)), types),
                            ("time", st.sampled_from(GOOD_TIMES), times)):
        choice = draw(st.sampled_from(["good", "good", "bad", "missing"]))
        if choice != "missing":
            event[name] = draw(good if choice == "good" else bad)
    for name in ("data", "attributes"):
        choice = draw(st.sampled_from(["missing", "object", "null", "other"]))
        if choice != "missing":
            event[name] = draw({"object": objects, "null": st.none(), "other": json_values}[choice])
    if draw(st.booleans()):
        event[draw(texts)] = draw(json_values)  # a field nobody reads
    return event


def _deep(depth: int) -> str:
    return "[" * depth + "]" * depth


@st.composite
def lines(draw):
    """A line as a producer might send it, or as a hostile one would: JSON of an event, then perhaps damaged."""
    event = draw(events())
    text = json.dumps(event, ensure_ascii=draw(st.booleans()))
    how = draw(st.sampled_from(["as is"] * 6 + ["duplicate key", "deep", "NaN", "huge float", "huge int", "bom",
                                                 "cut", "not an object", "bad utf-8", "spaces", "lone surrogate",
                                                 "control in a string", "empty object"]))
    if how == "duplicate key" and text.startswith("{") and len(event) > 0:
        key = draw(st.sampled_from(sorted(event)))
        text = "{" + json.dumps(key) + ": 1, " + text[1:]
    elif how == "deep":
        text = text[:-1] + (", " if event else "") + '"data": {"x": ' + _deep(draw(st.integers(28, 40))) + "}}"
    elif how in ("NaN", "huge float", "huge int"):
        number = {"NaN": "NaN", "huge float": "1e400", "huge int": "9" * draw(st.sampled_from([300, 4300, 4301]))}
        text = text[:-1] + (", " if event else "") + '"data": {"n": ' + number[how] + "}}"
    elif how == "bom":
        text = "\ufeff" + text
    elif how == "cut":
        text = text[:draw(st.integers(0, max(0, len(text) - 1)))]
    elif how == "not an object":
        text = json.dumps(draw(json_values))
    elif how == "spaces":
        text = draw(st.sampled_from([" ", "\t", "  "])) + text + draw(st.sampled_from(["", " ", "\t"]))
    elif how == "lone surrogate":
        text = text[:-1] + (", " if event else "") + '"data": {"s": "\\udc00"}}'
    elif how == "control in a string":
        text = text[:-1] + (", " if event else "") + '"data": {"s": "a\x01b"}}'
    elif how == "empty object":
        text = "{}"
    raw = text.encode("utf-8", "surrogatepass")
    if how == "bad utf-8":
        at = draw(st.integers(0, len(raw)))
        raw = raw[:at] + draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80"])) + raw[at:]
    return raw


def _schema_refuses(line: bytes) -> bool:
    found, total = problems([line])
    assert total == len(found) and all(p.line == 1 for p in found)  # one line: every problem is shown, at line 1
    return total > 0


@settings(max_examples=600, deadline=None)
@given(line=lines())
@example(line=b'{"id": "a", "lead": "b", "type": "x.y\\n", "time": "2026-03-01T09:30:00Z"}')
@example(line=b'{"id": "a", "lead": "b", "type": "page.visited", "time": "2026-03-01T09:30:00Z", "id": "c"}')
@example(line=b'{"id": "\\ud800", "lead": "b", "type": "page.visited", "time": "2026-03-01T09:30:00Z"}')
@example(line=b'{"id": 1, "lead": "b", "type": "page.visited", "time": "20260301T093000Z", "data": {"s": "\\udc00"}}')
@example(line=b'\xef\xbb\xbf{"id": 1, "lead": 2, "type": "page.visited", "time": "2026-03-01T09:30:00Z"}')
def test_the_service_refuses_only_what_coltiva_run_keeps_aside_and_everything_a_schema_can_say(line):
    refused = _schema_refuses(line)
    if not line.strip():  # a blank line: `coltiva run` skips it, so does the service
        assert not refused
        return
    engine = parse_event(line)  # the engine's reader, any type
    in_a_run = parse_event(line, KNOWN)  # what `coltiva run` does with the line, journeys loaded
    if refused:  # never a line `coltiva run` applies
        assert isinstance(in_a_run, Malformed), in_a_run
        # nor one the engine reads, even without journeys
        assert isinstance(engine, Malformed), engine
        return
    # let through: the engine reads it as an event, or it breaks a rule no JSON Schema can say
    assert isinstance(engine, Event) or BEYOND_A_SCHEMA.search(engine.reason), engine.reason
    if isinstance(engine, Event):  # and it is the event the schema validated
        value = json.loads(line.decode("utf-8").removeprefix("\ufeff"))
        assert (engine.id, engine.lead, engine.type) == (str(value["id"]), str(value["lead"]), value["type"])
        assert engine.time == parse_time(value["time"])
        assert engine.data == (value.get("data") or {}) and engine.attributes == (value.get("attributes") or None)


@settings(max_examples=300, deadline=None)
@given(field=st.sampled_from(["id", "lead", "type", "time", "data", "attributes"]), data=st.data())
def test_field_by_field_the_schema_and_the_engine_agree_exactly(field, data):
    """One field hostile, the others good: the schema refuses the line exactly when the engine does."""
    value = data.draw({"id": hostile_ids, "lead": hostile_ids, "type": types, "time": times,
                       "data": json_values, "attributes": json_values}[field])
    event = {"id": "e-1", "lead": "lead-1", "type": "page.visited", "time": "2026-03-01T09:30:00Z", field: value}
    line = json.dumps(event, ensure_ascii=data.draw(st.booleans())).encode("utf-8", "surrogatepass")
    engine = parse_event(line)
    quirk = isinstance(engine, Event) and engine.type.endswith("\n")  # see the test above
    refused = _schema_refuses(line)
    if isinstance(engine, Malformed) and BEYOND_A_SCHEMA.search(engine.reason):
        return  # an Infinity: the engine's reader refuses it; the schema may not see it (`"data": {"x": Infinity}`)
    assert refused == (isinstance(engine, Malformed) or quirk), engine  # otherwise, refused exactly when the engine does


def _as_read(parsed):
    if isinstance(parsed, Malformed):
        return parsed
    return (parsed.id, parsed.lead, parsed.type, parsed.time, parsed.data, parsed.attributes)


@settings(max_examples=200, deadline=None)
@given(body=st.lists(lines() | st.sampled_from([b"", b" \t"]), max_size=6))
@example(body=[b'{"id": 1, "lead": 2, "type": "email.clicked", "time": "2026-03-01T09:30:00Z"}', b"",
               b'{"id": 3, "lead": 2, "type": "page.visited", "time": "2026-03-01T09:30:00Z", "data": {"n": NaN}}',
               b'{"id": 4, "lead": "x", "type": "page.visited", "time": "2026-03-01"}'])
def test_reading_a_request_once_refuses_what_the_schema_refuses_and_gives_the_writer_what_it_would_read(body):
    """POST /events reads each line once (read_events): it refuses exactly the problems `problems` finds, and
    hands the writer, for every other non-blank line, what `parse_event` with the journeys' types gives."""
    read, found, total = read_events(body, KNOWN)
    assert (found, total) == problems(body)
    refused = {p.line for p in found} if total == len(found) else None
    kept = [(n, line) for n, line in enumerate(body, 1) if line.strip()]
    if refused is not None:  # every problem is listed: the lines kept are exactly the others
        assert read.lines == [(n, line) for n, line in kept if n not in refused]
    assert [_as_read(p) for p in read.parsed] == [_as_read(parse_event(line, KNOWN)) for _, line in read.lines]


def test_blank_lines_pass_and_an_overlong_line_is_refused_with_its_place():
    assert problems([b"", b"  \t", b"\x0b"]) == ([], 0)  # skipped, as `coltiva run` skips them
    long = json.dumps({"id": 1, "lead": 1, "type": "page.visited", "time": "2026-03-01T09:30:00Z",
                       "data": {"x": "y" * MAX_EVENT_BYTES}}).encode()
    (problem,), total = problems([b"", long])
    assert (problem.line, total) == (2, 1) and "1 MiB" in problem.problem
    assert isinstance(parse_event(long), Malformed)
    many, total = problems([b"[]"] * (MAX_PROBLEMS + 5))
    assert len(many) == MAX_PROBLEMS and total == MAX_PROBLEMS + 5


def test_a_request_with_lines_that_are_not_events_is_a_400_naming_each_and_keeps_nothing(tmp_path):
    good = [json.dumps({"id": f"e{n}", "lead": f"lead-{n % 3}", "type": "page.visited",
                        "time": f"2026-03-0{1 + n % 5}T09:00:00Z", "data": {"path": "/pricing"}}) for n in range(12)]
    bad = {3: '{"id": "x1", "lead": "lead-1", "type": "page.visited", "time": "2026-03-01T09:00:00"}',
           7: '{"id": "x2", "lead": "", "type": "page.visited", "time": "2026-03-01T09:00:00Z", "data": []}',
           9: '["not", "an", "object"]',
           11: '{"id": "x3", "lead": "lead-1", "type": "page.visited"',
           12: '{"id": "x4", "lead": "lead-2", "type": "email.opend", "time": "2026-03-01T09:00:00Z"}'}
    body = list(good)
    for at in sorted(bad):
        body.insert(at - 1, bad[at])
    with Server(tmp_path) as server, httpx.Client(base_url=server.base, timeout=60) as http:
        refused = http.post("/events", content="\n".join(body).encode())
        assert refused.status_code == 400 and refused.headers["content-type"] == "application/json"
        answer = refused.json()
        places = {(p["line"], p["field"]) for p in answer["problems"]}
        assert places == {(3, "time"), (7, "lead"), (7, "data"), (9, ""), (11, "")}, answer
        assert "line 3, `time`: time '2026-03-01T09:00:00' has no zone" in answer["error"]
        assert "line 7, `lead`: String should have at least 1 character" in answer["error"]
        assert http.get("/actions").text == "" and http.get("/quarantine").text == ""  # nothing was kept
        rest = [line for n, line in enumerate(body, 1) if n not in {3, 7, 9, 11}]
        summary = http.post("/events", content="\n".join(rest).encode()).json()
        assert (summary["applied"], summary["quarantined"]) == (12, 1)  # the unknown type: kept aside, as in a run
    # `coltiva run` on the whole body applies the same events and keeps the five lines aside
    from engine.store import Store

    from .service_helpers import same_meaning

    reference = run_file(tmp_path, body)
    same_meaning(server.db, reference)
    with Store(reference) as store:
        assert len(store.dump()["quarantine"]) == 5
