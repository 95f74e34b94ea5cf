"""The fast decoder (msgspec) never decides anything the reference decoder (the standard library's) would not.

`engine.events._fast` gives a line's value only when it is provably the value the
reference decoder gives (no repeated key, nesting within bounds); otherwise the
reference decoder judges the line and words its reason. These laws are checked on
generated JSON texts with repeated keys, odd spacing, escapes, quotes and colons in
strings, big and odd numbers.
"""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

import engine.events as events
from engine.events import _DECODER, MAX_DEPTH, Event, _fast, parse_event, parse_time


class Obj(list):
    """An object as written: its (key, value) pairs in order, a key possibly repeated."""


_keys = st.sampled_from(["a", "b", "id", '"', ":", '":', '\\', "é", "\ud83d\ude00", "a b"]) | st.text(max_size=4)
_numbers = st.integers(4299, 4301).map(lambda n: "9" * n) | st.sampled_from(["0", "-0", "1.0", "-0.0", "1e400", "-1e999", "1e-400", "1E2", "9" * 30,
                            "NaN", "Infinity", "18446744073709551616", "1.7976931348623157e308"])
_scalars = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
            | st.text(max_size=8) | _numbers.map(lambda n: Raw(n)))


class Raw(str):
    """A number written as it is (possibly not one the reference decoder takes)."""


_values = st.recursive(_scalars, lambda children: st.lists(children, max_size=4)
                       | st.lists(st.tuples(_keys, children), max_size=4).map(Obj), max_leaves=20)


def render(value, spaces: tuple[str, str], ascii_only: bool) -> str:
    before, after = spaces
    if isinstance(value, Raw):
        return str(value)
    if isinstance(value, Obj):
        return "{" + ",".join(f"{json.dumps(k, ensure_ascii=ascii_only)}{before}:{after}"
                              f"{render(v, spaces, ascii_only)}" for k, v in value) + "}"
    if isinstance(value, list):
        return "[" + f",{after}".join(render(v, spaces, ascii_only) for v in value) + "]"
    return json.dumps(value, ensure_ascii=ascii_only)


_REFUSED = object()


def reference(text: str):
    try:
        return _DECODER.decode(text)
    except (ValueError, RecursionError):
        return _REFUSED


@settings(max_examples=400, deadline=None)
@given(_values, st.sampled_from([("", ""), ("", " "), (" ", " "), ("\t", "\n"), ("", "\r\n")]), st.booleans())
def test_the_fast_decoder_gives_the_reference_value_or_nothing(value, spaces, ascii_only):
    text = render(value, spaces, ascii_only)
    fast = _fast(text)
    if fast is not None:
        expected = reference(text)
        assert expected is not _REFUSED, text  # the fast path never takes a line the reference refuses
        assert repr(fast) == repr(expected), text  # the same value, types included (1.0 is not 1, -0.0 is not 0)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(_keys, _scalars), min_size=2, max_size=6))
def test_a_repeated_key_never_passes_the_fast_path(pairs):
    pairs = pairs + [pairs[0]]  # the first key again: the reference refuses it
    text = render(Obj(pairs), ("", " "), False)
    assert _fast(text) is None
    assert reference(text) is _REFUSED
    # a spaced key is not counted by `'":'`, an escaped quote before a colon in a string is: they must not even out
    for sneaky in ('{"a" :"\\":","a" :1}', '{"a"\t:"\\":","a"\n:1}'):
        assert _fast(sneaky) is None and reference(sneaky) is _REFUSED, sneaky


def test_the_fast_path_takes_the_lines_producers_send():
    for line in ('{"id":"e1","lead":"L1","type":"page.visited","time":"2026-01-05T09:00:00Z","data":{"path":"/"}}',
                 json.dumps({"id": 7, "lead": "acme-jane", "type": "lead.updated", "time": "2026-01-05T09:00:00Z",
                             "attributes": {"company": {"size": 250}, "job": {"title": "VP Sales"}}})):
        assert _fast(line) == json.loads(line)
        assert isinstance(parse_event(line), Event)


def test_nesting_beyond_the_bound_goes_to_the_reference_decoder():
    line = '{"a": ' * MAX_DEPTH + "1" + "}" * MAX_DEPTH
    assert _fast(line) is not None  # within the bound: fast
    deeper = '{"a": ' * (MAX_DEPTH + 1) + "1" + "}" * (MAX_DEPTH + 1)
    assert _fast(deeper) is None


def _slow_time(text: str):
    try:
        return events._parse_time_general(text)
    except ValueError as err:
        return str(err)


def _time(text: str):
    try:
        return parse_time(text)
    except ValueError as err:
        return str(err)


def _two(low: int, high: int):
    """Two characters: mostly a number near the field's bounds, zero-padded; sometimes any two digits or signs."""
    return st.integers(low, high).map("{:02d}".format) | st.text("0123456789+- ", min_size=2, max_size=2)


@settings(max_examples=1000, deadline=None)
@given(st.integers(1960, 2210).map("{:04d}".format) | st.text("0123456789", min_size=4, max_size=4),
       _two(0, 13), _two(0, 32), _two(0, 25), _two(0, 61), _two(0, 61),
       st.sampled_from(["Z", "z", "+00:00", "Z ", "", "+01:30"]), st.sampled_from(["T", "T", "t", " ", "_"]))
def test_the_quick_reading_of_a_utc_time_is_the_general_one(year, month, day, hours, minutes, seconds, zone, sep):
    text = f"{year}-{month}-{day}{sep}{hours}:{minutes}:{seconds}{zone}"
    assert _time(text) == _slow_time(text)


@settings(max_examples=1000, deadline=None)
@given(st.integers(1960, 2210), st.integers(0, 13), st.integers(0, 32), st.integers(0, 25), st.integers(0, 61),
       st.integers(0, 61))
def test_the_quick_reading_agrees_on_every_field_bound(year, month, day, hours, minutes, seconds):
    text = f"{year:04d}-{month:02d}-{day:02d}T{hours:02d}:{minutes:02d}:{seconds:02d}Z"
    assert _time(text) == _slow_time(text)


def test_the_quick_reading_covers_the_usual_form():
    assert parse_time("2026-03-01T09:30:00Z") == 1772357400
    assert "out of range" in _time("2200-01-01T00:00:00Z") and "not a valid" in _time("2026-02-30T00:00:00Z")
    for edge in ("2026-01-05T24:00:00Z", "2026-01-05T23:60:00Z", "2026-01-05T23:59:60Z", "2026-02-29T00:00:00Z",
                 "2024-02-29T00:00:00Z", "2026-13-01T00:00:00Z", "2026-00-10T00:00:00Z", "2026-01-00T00:00:00Z",
                 "1969-12-31T23:59:59Z", "1970-01-01T00:00:00Z", "2199-12-31T23:59:59Z", "2026-01-05T9:00:00Z"):
        assert _time(edge) == _slow_time(edge), edge


# -- the quick path of parse_event: one typed decode for the usual line ------------------------------------------

_KNOWN = frozenset({"email.opened", "page.visited"})
# mostly usual values (so that the quick path is taken often), and every kind of doubt
_ids = st.sampled_from(["e1", "e2", "L-0001", "L-0002"]) | st.sampled_from(
    ["", "a" * 256, "a" * 257, "tab\tid", "del\x7f", "é", "\u0085x", "a b", 7, True, None, 1.5])
_types = st.sampled_from(["email.opened", "page.visited"]) | st.sampled_from(
    ["email.clicked", "bad type", "Email.opened", "x.", 1])
_times = st.sampled_from(["2026-03-01T09:30:00Z", "2026-01-05T00:00:00Z"]) | st.sampled_from(
    ["2026-03-01T09:30:00+01:00", "2026-02-30T00:00:00Z", "2026-03-01T09:30:00", "2300-01-01T00:00:00Z", 5,
     "2026-03-01T24:00:00Z"])
_fields = st.sampled_from(["data", "attributes"])
_objects = (st.none() | st.just(Obj()) | st.lists(st.tuples(_keys, _values), max_size=3).map(Obj) | _values)


@st.composite
def event_lines(draw):
    pairs = [("id", draw(_ids)), ("lead", draw(_ids)), ("type", draw(_types)), ("time", draw(_times))]
    pairs += draw(st.lists(st.tuples(_fields, _objects), max_size=2))
    if draw(st.booleans()):
        field = draw(st.sampled_from(["id", "lead", "type", "time", "extra", "data"]))  # repeated, or unknown
        pairs.append((field, draw({"id": _ids, "lead": _ids, "type": _types, "time": _times}.get(field, _objects))))
    pairs = draw(st.permutations(pairs)) if draw(st.booleans()) else pairs
    spaces = draw(st.sampled_from([("", ""), ("", " "), (" ", " "), ("", "\n")]))
    return render(Obj(pairs), spaces, draw(st.booleans()))


@settings(max_examples=600, deadline=None)
@given(event_lines(), st.sampled_from([None, _KNOWN]))
def test_the_quick_path_gives_the_checked_event_or_nothing(line, known_types):
    quick = events._quick(line, known_types)
    if quick is None:
        return
    checked = events._checked(line, known_types)
    assert isinstance(checked, Event), (line, checked)
    assert [repr(getattr(quick, f)) for f in Event.__slots__] == [repr(getattr(checked, f)) for f in Event.__slots__]


def test_the_quick_path_takes_the_usual_lines_and_nothing_doubtful():
    usual = ('{"id":"e1","lead":"L1","type":"email.opened","time":"2026-01-05T09:00:00Z","data":{"c":"x"}}',
             '{"id":"e2","lead":"L1","type":"page.visited","time":"2026-01-05T09:00:00Z","data":null,'
             '"attributes":{"company":{"size":250}}}')
    for line in usual:
        assert events._quick(line, _KNOWN) is not None, line
    for doubtful in ('{"id":"e1","id":"e2","lead":"L1","type":"email.opened","time":"2026-01-05T09:00:00Z"}',
                     '{"id":"e1","lead":"L1","type":"email.opened","time":"2026-01-05T09:00:00Z","x":1}',
                     '{"id":"e1","lead":"L\\u0001","type":"email.opened","time":"2026-01-05T09:00:00Z"}',
                     '{"id":7,"lead":"L1","type":"email.opened","time":"2026-01-05T09:00:00Z"}',
                     '{"id":"e1","lead":"L1","type":"email.clicked","time":"2026-01-05T09:00:00Z"}',
                     '{"id":"e1","lead":"L1","type":"email.opened","time":"2026-01-05T09:00:00"}',
                     '{"id":"e1","lead":"L1","type":"email.opened","time":"2026-01-05T09:00:00Z",'
                     '"data":{"a":1,"a":2}}'):
        assert events._quick(doubtful, _KNOWN) is None, doubtful
