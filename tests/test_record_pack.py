"""The packed record (engine.record.pack): what a runner keeps of a lead between its events.

The law: `unpack(pack(r, s), s)` is `r`, field for field and type for type (its stored
form, `to_list`, is the same JSON text), for every record whose fields hold their declared
types (what the compiled class enforces). Whatever the binary layout cannot hold exactly
is packed as JSON, never approximated.
"""

from __future__ import annotations

import json
from array import array

from hypothesis import given, settings
from hypothesis import strategies as st

import engine
from engine.record import PACKED_BINARY, PACKED_JSON, Lead, Strings, pack, unpack
from engine.runner import Runner
from engine.store import Store, StoredLead

from .engine_helpers import journey, line

CLOCK = 1_767_225_600  # 2026-01-01
_near = st.integers(CLOCK - 400 * 86_400, CLOCK + 400 * 86_400)  # times the binary layout holds
_anywhen = _near | st.integers(-(1 << 63), (1 << 63) - 1)        # and times it does not
_times = st.none() | _anywhen
_arrays = st.none() | st.lists(_anywhen, max_size=4).map(lambda xs: array("q", xs))
_bits = st.integers(0, 3) | st.integers(0, 1 << 2100)  # a bit set of any size (`sent` of 2,000 contents)
_text = st.text(max_size=6) | st.sampled_from(["Head of Growth", "\udc80", "x" * 70_000])  # a lone surrogate, long
_value = (st.none() | _text | st.integers(-(1 << 70), 1 << 70) | st.floats(allow_nan=False) | st.booleans()
          | st.lists(st.integers(), max_size=2))  # a list: JSON only


@st.composite
def leads(draw, near: bool = False) -> Lead:
    """Any record; with `near`, one whose every number fits the binary layout."""
    when = _near if near else _anywhen
    times = st.none() | when
    arrays = st.none() | st.lists(when, max_size=4).map(lambda xs: array("q", xs))
    small = st.integers(-5, 5) if near else st.integers(-5, 5) | st.integers(-(1 << 40), 1 << 40)
    text = st.text(st.characters(blacklist_categories=["Cs"]), max_size=6) if near else _text
    bits = st.integers(0, 3) | st.integers(0, 1 << 2000) if near else _bits  # 2,000 bits: 250 bytes
    rec = Lead(draw(st.sampled_from(["new", "engaged", "exit"]) | text), draw(when))
    rec.clock = draw(when)
    rec.active, rec.score_at = draw(when), draw(when)
    rec.score = draw(st.floats(allow_nan=False))
    rec.fit = draw(small)
    rec.attrs = draw(st.none() | st.lists(_value if not near else st.none() | text | st.integers(-9, 9)
                                          | st.booleans(), max_size=4).map(tuple))
    rec.sent, rec.hold, rec.hold_at = draw(bits), draw(small), draw(times)
    rec.caps = draw(st.none() | st.lists(arrays, max_size=3).map(tuple))
    rec.sends, rec.seq, rec.due = draw(arrays), draw(small), draw(times)
    rec.gone = draw(st.none() | st.just(()) | st.lists(text, max_size=3).map(tuple))
    rec.acted, rec.enrolled, rec.left = draw(bits), draw(times), draw(st.sampled_from([None, "way", "rule"]))
    rec.had, rec.passed = draw(bits), draw(bits)
    rec.zone = draw(st.sampled_from([None, "Europe/Rome", "America/New_York"]))
    rec.dates = draw(st.none() | st.lists(st.none() | st.tuples(when, when), max_size=2).map(tuple))
    rec.marks = draw(st.none() | st.lists(times, max_size=2).map(tuple))
    return rec


def stored_form(rec: Lead) -> str:
    return json.dumps(rec.to_list())


def assert_packs_as(rec: Lead, layout: int, strings: Strings | None = None) -> None:
    """`rec` packs in `layout` and unpacks to its very stored form."""
    strings = strings or Strings()
    packed = pack(rec, strings)
    assert packed[0] == layout
    assert stored_form(unpack(packed, strings)) == stored_form(rec)


@settings(max_examples=600, deadline=None)
@given(leads())
def test_unpack_gives_back_every_record_exactly(rec):
    strings = Strings()
    back = unpack(pack(rec, strings), strings)
    assert back == rec
    assert stored_form(back) == stored_form(rec)  # types too: 1 is not 1.0, True is not 1


@settings(max_examples=300, deadline=None)
@given(leads(near=True))
def test_a_record_within_the_layout_is_packed_binary(rec):
    assert_packs_as(rec, PACKED_BINARY)


def test_what_the_layout_cannot_hold_is_packed_as_json():
    rec = Lead("new", CLOCK)
    for change in (lambda r: setattr(r, "due", CLOCK + (1 << 40)),          # beyond 32 bits from the clock
                   lambda r: setattr(r, "due", CLOCK - (1 << 31)),          # the offset that marks no time
                   lambda r: setattr(r, "attrs", ([1, 2], None)),           # an attribute that is a list
                   lambda r: setattr(r, "attrs", (2.5,)),                   # or a float
                   lambda r: setattr(r, "attrs", (1 << 40,)),               # or an int beyond 32 bits
                   lambda r: setattr(r, "fit", 2.0),                        # a float where ints are kept
                   lambda r: setattr(r, "entered", None),                   # no time where one is kept
                   lambda r: setattr(r, "had", 1 << 4000),                  # a bit set of over 127 words
                   lambda r: setattr(r, "zone", "x" * 100)):                # more than the table has room for
        odd = rec.copy()
        try:
            change(odd)
        except TypeError:  # the compiled record refuses a float or None where an int is kept: nothing to pack
            assert engine.NATIVE
            continue
        assert_packs_as(odd, PACKED_JSON, Strings(room=250))  # "new" (103 B) fits, the zone (200 B) does not


def test_big_bit_sets_many_attributes_and_a_lone_surrogate_stay_binary():
    rec = Lead("\udc80", CLOCK)
    rec.sent, rec.passed = (1 << 3000) | 5, 1 << 31
    rec.attrs = tuple([None, "a", -(1 << 31), True, False, (1 << 31) - 1] * 7)  # 42: three words of tags
    assert_packs_as(rec, PACKED_BINARY)


def test_a_packed_record_is_a_fraction_of_the_record():
    """The medium workload's typical lead: ~165 B packed (~200 B with the bytes object) against ~660 B."""
    rec = Lead("engaged", CLOCK)
    rec.score, rec.fit, rec.sent, rec.seq, rec.due = 42.5, 10, 0b1011, 7, CLOCK + 86_400
    rec.attrs = (250, "Head of Growth", "IT")
    rec.caps = (array("q", [CLOCK - 3_600, CLOCK - 60]), array("q", [CLOCK - 7_200]))
    rec.sends = array("q", [CLOCK - 86_400, CLOCK - 600])
    assert len(pack(rec, Strings())) <= 170


def test_unpacked_strings_are_shared():
    rec = Lead("engaged", CLOCK)
    rec.attrs, rec.zone = ("Head of " + "Growth",), "Europe/" + "Rome"
    strings = Strings()
    a, b = unpack(pack(rec, strings), strings), unpack(pack(rec, strings), strings)
    assert a.state is b.state and a.zone is b.zone and a.attrs[0] is b.attrs[0]


JOURNEY = """journey "Packed"

stage new "New"
  initial
  on page.visited -> engaged
stage engaged "Engaged"
  final
"""


def test_a_runner_keeps_leads_packed_and_steps_them_as_before(tmp_path):
    """The cache holds packed records; a lead on an older version of its journey stays a StoredLead (its
    version travels with it), and both step on."""
    cj = journey(JOURNEY)
    store = Store(tmp_path / "s.db")
    store.register(cj, {"packed.journey": JOURNEY})
    runner = Runner(store, [cj])
    runner.run_lines([line("1", "page.visited", "2026-01-01T00:00:00Z", lead="a"),
                      line("2", "email.opened", "2026-01-01T00:00:00Z", lead="b")])
    held = runner.cache[(cj.name, "a")]
    assert isinstance(held, bytes)
    _, records, versions = runner._gather("a", {})
    assert StoredLead(versions[cj.name], records[cj.name]) == store.load_leads(cj.name, ["a"])["a"]
    older = StoredLead("an-older-version", unpack(held, runner.strings))
    runner.hold({(cj.name, "a"): older})
    assert runner.cache[(cj.name, "a")] is older
    store.close()
