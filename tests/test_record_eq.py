"""Lead equality is the equality of the stored form: `a == b` exactly when `a.to_list() == b.to_list()`."""

from __future__ import annotations

import json
from array import array

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.record import Lead

_times = st.none() | st.integers(0, 5)
_arrays = st.none() | st.lists(st.integers(0, 3), max_size=2).map(lambda xs: array("q", xs))


@st.composite
def leads(draw) -> Lead:
    rec = Lead(draw(st.sampled_from(["a", "b", "exit"])), draw(st.integers(0, 2)))
    rec.score = draw(st.sampled_from([0.0, 1.0, 2.5]))
    rec.fit = draw(st.integers(0, 1))
    rec.attrs = draw(st.none() | st.tuples(st.none() | st.integers(0, 1) | st.text("ab", max_size=1)))
    rec.sent, rec.hold, rec.hold_at = draw(st.integers(0, 3)), draw(st.integers(0, 1)), draw(_times)
    rec.caps = draw(st.none() | st.tuples(_arrays))
    rec.sends, rec.seq, rec.due = draw(_arrays), draw(st.integers(0, 1)), draw(_times)
    rec.gone = draw(st.none() | st.just(()) | st.tuples(st.sampled_from(["x", "y"])))
    rec.acted, rec.enrolled, rec.left = draw(st.integers(0, 1)), draw(_times), draw(st.sampled_from([None, "way"]))
    rec.had, rec.passed = draw(st.integers(0, 1)), draw(st.integers(0, 1))
    rec.zone = draw(st.sampled_from([None, "Europe/Rome"]))
    rec.dates = draw(st.none() | st.tuples(st.none() | st.tuples(st.integers(0, 1), st.integers(0, 1))))
    rec.marks = draw(st.none() | st.tuples(_times))
    return rec


@settings(max_examples=500, deadline=None)
@given(leads(), leads())
def test_equality_is_the_stored_forms_equality(a, b):
    assert (a == b) is (a.to_list() == b.to_list())


@settings(max_examples=200, deadline=None)
@given(leads())
def test_a_record_equals_its_stored_copy_and_differs_when_a_field_does(a):
    copy = Lead.from_list(json.loads(json.dumps(a.to_list())))
    assert copy == a and a.copy() == a
    changed = a.copy()
    changed.seq += 1
    assert changed != a


def test_records_decoded_apart_share_their_stage_id_attribute_strings_and_zone():
    """Stage ids, attribute values and zones repeat across leads: a record decoded from the store holds the
    one shared string, not a copy each (docs/performance.md, bytes per lead)."""
    text = json.dumps(["shown_interest", 1, 1, 0.0, 1, 0, [250, "Head of Growth", "IT", None], 0, 0, None, None,
                       None, 0, None, 1, None, 0, None, None, 0, 0, {"zone": "Europe/Rome"}])
    a, b = (Lead.from_list(json.loads("".join(list(text)))) for _ in range(2))
    assert a == b and a.state is b.state and a.zone is b.zone
    assert a.attrs is not None and b.attrs is not None
    assert all(x is y for x, y in zip(a.attrs, b.attrs))


def test_leads_stepped_on_events_parsed_apart_share_their_attribute_strings():
    from bench.__main__ import load_cj
    from engine.events import parse_event
    from engine.step import step_event

    _, cj = load_cj()
    line = ('{"id":"%s","lead":"%s","type":"page.visited","time":"2026-01-05T09:00:00Z","data":{"path":"/"},'
            '"attributes":{"company":{"size":250},"job":{"title":"Head of Growth"},"country":"IT"}}')
    recs = [step_event(cj, None, lead, parse_event(line % (f"e-{lead}", lead)))[0] for lead in ("L1", "L2")]
    assert recs[0].attrs is not None and recs[1].attrs is not None and "Head of Growth" in recs[0].attrs
    assert all(x is y for x, y in zip(recs[0].attrs, recs[1].attrs))


def test_leads_loaded_from_the_store_share_their_version_string(tmp_path):
    from bench.__main__ import load_cj
    from engine.runner import Runner
    from engine.store import Store

    loaded, cj = load_cj()
    line = '{"id":"e-%s","lead":"%s","type":"page.visited","time":"2026-01-05T09:00:00Z","data":{"path":"/"}}'
    with Store(tmp_path / "s.db") as store:
        store.register(cj, loaded.sources)
        Runner(store, [cj]).run_lines([line % (k, k) for k in ("L1", "L2")])
        found = store.load_leads(cj.name, ["L1", "L2"])
    assert found["L1"].version == cj.version and found["L1"].version is found["L2"].version
