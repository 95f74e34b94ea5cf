"""One test per semantic rule of the step, on small inline journeys (docs: product brief, engine/step.py)."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.record import EXITED, NOT_ENROLLED
from engine.step import advance, step_event
from engine.timers import score_at

from .engine_helpers import DAY, HOUR, T0, Driver, ev, journey

# -- enrollment ---------------------------------------------------------------------------------

SIMPLE = journey('''journey "simple"

stage a "A"
  initial
  send email "hello" on entry
  on form.submitted -> b

stage b "B"
  final
''')


def test_first_event_enrolls_at_initial_stage():
    d = Driver(SIMPLE)
    acts = d.send("page.visited", "2026-01-01T00:00:00Z")
    assert d.state == "a"
    assert d.rec.entered == T0 and d.rec.clock == T0
    assert [a.kind for a in acts] == ["stage", "send"]
    assert acts[0].data["from"] is None and acts[0].data["to"] == "a" and acts[0].data["rule"] == "enrolled"
    assert acts[1].data["content"] == "hello" and acts[1].time == T0


def test_event_trigger_on_enrolling_event_moves_at_once():
    d = Driver(SIMPLE)
    d.send("form.submitted", T0)
    assert d.state == "b"
    assert d.stages() == [(None, "a", T0), ("a", "b", T0)]


ENROLL = journey('''journey "enroll"

enroll on trial.started where plan == "team"

stage a "A"
  initial
  send email "hello" on entry
  on go -> b

stage b "B"
  final
''')


def test_enroll_on_rule_non_matching_events_do_not_enroll():
    d = Driver(ENROLL)
    assert d.send("page.visited", T0) == [] and d.rec is None
    assert d.send("trial.started", T0 + 1, {"plan": "solo"}) == [] and d.rec is None
    acts = d.send("trial.started", T0 + 2, {"plan": "team"})
    assert d.state == "a" and d.rec.entered == T0 + 2
    assert [(a.kind, a.time) for a in acts] == [("stage", T0 + 2), ("send", T0 + 2)]


# -- fit ----------------------------------------------------------------------------------------

FIT = journey('''journey "fit"

scoring
  email.opened +1
  decay half-life 1 day

fit
  company.size >= 200 +15
  plan == "team" +5

stage a "A"
  initial
  on go -> b

stage b "B"
  final
''')


def test_fit_from_nested_attributes():
    d = Driver(FIT)
    d.send("page.visited", T0, attributes={"company": {"size": 250}, "plan": "team"})
    assert d.rec.fit == 20
    assert d.score(T0) == 20


def test_fit_from_flat_attributes():
    d = Driver(FIT)
    d.send("page.visited", T0, attributes={"company.size": 250})
    assert d.rec.fit == 15


def test_fit_updates_with_later_attributes_and_keeps_earlier_ones():
    d = Driver(FIT)
    d.send("page.visited", T0, attributes={"company": {"size": 10}})
    assert d.rec.fit == 0
    d.send("lead.updated", T0 + 10, attributes={"plan": "team"})
    assert d.rec.fit == 5
    d.send("lead.updated", T0 + 20, attributes={"company": {"size": 500}})
    assert d.rec.fit == 20


def test_fit_does_not_decay():
    d = Driver(FIT)
    d.send("email.opened", T0, attributes={"company": {"size": 250}})
    assert d.score(T0) == 16
    assert math.isclose(d.score(T0 + DAY), 15.5)
    assert d.score(T0 + 1000 * DAY) == 15  # only the behavioural point decayed away


# -- timers fire first --------------------------------------------------------------------------

DRIP = journey('''journey "drip"

stage a "A"
  initial
  send email "welcome" on entry
  send ebook "later" after 1 day
  on go -> b

stage b "B"
  send email "b-hello" on entry
  on done -> c

stage c "C"
  final
''')


def test_due_timers_fire_first_with_their_due_time():
    d = Driver(DRIP)
    d.send("page.visited", T0)
    acts = d.send("go", T0 + 2 * DAY)
    assert [(a.kind, a.data.get("content", a.data.get("to")), a.time) for a in acts] == [
        ("send", "later", T0 + DAY),
        ("stage", "b", T0 + 2 * DAY),
        ("send", "b-hello", T0 + 2 * DAY),
    ]


def test_timer_due_exactly_at_event_time_fires_before_the_event():
    d = Driver(DRIP)
    d.send("page.visited", T0)
    acts = d.send("go", T0 + DAY)
    assert [a.data.get("content") for a in acts if a.kind == "send"] == ["later", "b-hello"]


# -- score rules --------------------------------------------------------------------------------

SCORING = journey('''journey "scoring"

scoring
  page.visited where path starts with "/pricing" +15
  email.opened +1 at most 2 per 7 days
  email.unsubscribed -50
  email.clicked +3

stage a "A"
  initial
  on go -> b

stage b "B"
  final
''')


def test_score_rule_where_condition():
    d = Driver(SCORING)
    d.send("page.visited", T0, {"path": "/blog"})
    assert d.rec.score == 0
    d.send("page.visited", T0 + 1, {"path": "/pricing/enterprise"})
    assert d.rec.score == 15
    d.send("page.visited", T0 + 2)  # no path at all
    assert d.rec.score == 15


def test_score_cap_per_rolling_window():
    d = Driver(SCORING)
    d.send("email.opened", T0)
    d.send("email.opened", T0 + DAY)
    d.send("email.opened", T0 + 2 * DAY)  # capped: 2 in the last 7 days
    assert d.rec.score == 2
    d.send("email.opened", T0 + 7 * DAY)  # T0 is no longer inside (t - 7 days, t]
    assert d.rec.score == 3
    d.send("email.opened", T0 + 7 * DAY + HOUR)  # T0+1d and T0+7d inside: capped
    assert d.rec.score == 3
    d.send("email.opened", T0 + 8 * DAY + 1)  # T0+1d has left the window
    assert d.rec.score == 4


def test_negative_points():
    d = Driver(SCORING)
    d.send("email.clicked", T0)
    d.send("email.unsubscribed", T0 + 1)
    assert d.rec.score == 3 - 50
    assert d.score(T0 + 100 * DAY) == -47  # no decay declared


# -- transitions --------------------------------------------------------------------------------

ORDER = journey('''journey "order"

scoring
  demo.requested +50

stage a "A"
  initial
  on form.submitted where kind == "demo" -> c
  on form.submitted -> b
  on demo.requested -> c
  when score >= 10 -> b

stage b "B"
  final

stage c "C"
  final
''')


def test_event_triggers_in_declaration_order_first_match_wins():
    d = Driver(ORDER)
    d.send("page.visited", T0)
    d.send("form.submitted", T0 + 1, {"kind": "demo"})
    assert d.state == "c"
    d2 = Driver(ORDER)
    d2.send("page.visited", T0)
    d2.send("form.submitted", T0 + 1, {"kind": "newsletter"})
    assert d2.state == "b"


def test_event_trigger_wins_over_threshold():
    d = Driver(ORDER)
    d.send("page.visited", T0)
    acts = d.send("demo.requested", T0 + 1)  # score 50 >= 10 too, but the event trigger comes first
    assert d.state == "c"
    assert [a.data["rule"] for a in acts if a.kind == "stage"] == [ORDER.rules["a#2"]]


CASCADE = journey('''journey "cascade"

scoring
  big +50
  small +5

stage a "A"
  initial
  when score >= 10 -> b

stage b "B"
  send email "b-mail" on entry
  when score >= 20 -> c

stage c "C"
  when score >= 30 -> d

stage d "D"
  final
''')


def test_threshold_cascade_through_several_stages_in_one_step():
    d = Driver(CASCADE)
    d.send("small", T0)
    assert d.state == "a"
    acts = d.send("big", T0 + 5)
    assert [(a.kind, a.data.get("to", a.data.get("content")), a.time) for a in acts] == [
        ("stage", "b", T0 + 5), ("send", "b-mail", T0 + 5), ("stage", "c", T0 + 5), ("stage", "d", T0 + 5)]
    assert d.state == "d"


BACK = journey('''journey "back"

scoring
  x +20
  decay half-life 1 day

stage a "A"
  initial
  send email "a-hello" on entry
  when score >= 10 -> b

stage b "B"
  when score < 5 -> a
  on done -> c

stage c "C"
  final
''')


def test_step_back_by_decay_fires_at_the_crossing_time():
    d = Driver(BACK)
    d.send("x", T0)
    assert d.state == "b"
    # 20 * 2^(-t/1d) < 5  <=>  t > 2 days: the first whole second after is T0 + 2 days + 1
    crossing = T0 + 2 * DAY + 1
    assert d.rec.due == crossing
    assert d.tick(crossing - 1) == [] and d.state == "b"
    acts = d.tick(T0 + 10 * DAY)
    assert [(a.kind, a.data.get("from"), a.data.get("to"), a.time) for a in acts] == [
        ("stage", "b", "a", crossing)]
    assert d.state == "a"
    assert d.score(crossing) < 5 <= d.score(crossing - 1)


def test_decay_crossing_fires_before_a_later_event():
    d = Driver(BACK)
    d.send("x", T0)
    acts = d.send("page.visited", T0 + 5 * DAY)
    assert [(a.kind, a.data.get("to"), a.time) for a in acts] == [("stage", "a", T0 + 2 * DAY + 1)]


DECAY = journey('''journey "decay"

scoring
  e1 +1
  e2 +3
  e3 +10
  e4 -5
  decay half-life 3 hours

fit
  company.size >= 0 +7

stage a "A"
  initial
  on never.happens -> b

stage b "B"
  final
''')

_POINTS = {"e1": 1, "e2": 3, "e3": 10, "e4": -5}


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 5 * DAY), st.sampled_from(sorted(_POINTS))), min_size=1, max_size=12),
    st.lists(st.integers(0, 6 * DAY), min_size=1, max_size=5),
)
def test_decay_equals_the_closed_form(events, probes):
    events = sorted(events)
    d = Driver(DECAY)
    d.send(events[0][1], T0 + events[0][0], attributes={"company": {"size": 10}})
    for offset, kind in events[1:]:
        d.send(kind, T0 + offset)
    last = events[-1][0]
    h = 3 * HOUR
    for p in probes:
        t = max(p, last)
        expected = 7 + sum(_POINTS[k] * 2.0 ** (-(t - ti) / h) for ti, k in events)
        assert math.isclose(score_at(DECAY, d.rec, T0 + t), expected, rel_tol=1e-9, abs_tol=1e-9)


# -- content ------------------------------------------------------------------------------------

CONTENT = journey('''journey "content"

stage a "A"
  initial
  send email "hello" on entry
  send email "shared" on entry
  on go -> b

stage b "B"
  send email "shared" on entry
  send email "b-only" on entry
  on back -> a
  on done -> c

stage c "C"
  final
''')


def test_reentering_a_stage_does_not_resend():
    d = Driver(CONTENT)
    d.send("page.visited", T0)
    d.send("go", T0 + 1)
    d.send("back", T0 + 2)
    d.send("go", T0 + 3)
    assert d.state == "b"
    assert [c for c, _ in d.sends()] == ["hello", "shared", "b-only"]


def test_content_in_two_stages_is_sent_once():
    d = Driver(CONTENT)
    d.send("page.visited", T0)
    d.send("go", T0 + 1)
    assert sorted(c for c, _ in d.sends()).count("shared") == 1


def test_pending_content_cancelled_when_stage_left():
    d = Driver(DRIP)
    d.send("page.visited", T0)
    d.send("go", T0 + HOUR)  # "later" was due at T0 + 1 day
    d.tick(T0 + 30 * DAY)
    d.send("done", T0 + 31 * DAY)
    d.tick(T0 + 60 * DAY)
    assert "later" not in [c for c, _ in d.sends()]


CAPPED = journey('''journey "capped"

at most 1 message per 1 day

stage a "A"
  initial
  send email "one" on entry
  send email "two" on entry
  send email "three" after 1 hour
  on go -> b

stage b "B"
  final
''')


def test_frequency_cap_defers_never_drops():
    d = Driver(CAPPED)
    d.send("page.visited", T0)
    assert d.sends() == [("one", T0)]
    assert d.rec.due == T0 + DAY
    d.tick(T0 + 30 * DAY)
    assert d.sends() == [("one", T0), ("two", T0 + DAY), ("three", T0 + 2 * DAY)]


def test_deferred_send_happens_at_release_time_before_a_later_event():
    d = Driver(CAPPED)
    d.send("page.visited", T0)
    acts = d.send("page.visited", T0 + DAY + HOUR)
    assert d.sends(acts) == [("two", T0 + DAY)]


# -- holding loops ------------------------------------------------------------------------------

HOLD = journey('''journey "hold"

stage s "S"
  initial
  on go -> e
  hold after 2 days idle: every 1 day send newsletter "digest", 3 times, then -> dormant

stage dormant "Dormant"
  final

stage e "E"
  final
''')


def _editions(d):
    return [(a.data["content"], a.data.get("edition"), a.time) for a in d.of("send")]


def test_holding_loop_sends_k_editions_then_moves():
    d = Driver(HOLD)
    d.send("page.visited", T0)
    d.tick(T0 + 30 * DAY)
    assert _editions(d) == [("digest", 1, T0 + 2 * DAY), ("digest", 2, T0 + 3 * DAY), ("digest", 3, T0 + 4 * DAY)]
    assert d.stages()[-1] == ("s", "dormant", T0 + 5 * DAY)
    assert d.state == "dormant"


def test_holding_loop_step_by_step_ticks_give_the_same_result():
    one = Driver(HOLD)
    one.send("page.visited", T0)
    one.tick(T0 + 30 * DAY)
    many = Driver(HOLD)
    many.send("page.visited", T0)
    for h in range(0, 30 * 24, 7):
        many.tick(T0 + h * HOUR)
    many.tick(T0 + 30 * DAY)
    assert [a.to_json() for a in one.actions] == [a.to_json() for a in many.actions]


def test_any_event_resets_the_holding_loop():
    d = Driver(HOLD)
    d.send("page.visited", T0)
    d.tick(T0 + 3 * DAY)  # editions 1 and 2
    assert [e for _, e, _ in _editions(d)] == [1, 2]
    active = T0 + 3 * DAY + HOUR
    d.send("page.visited", active)  # any event: activity
    assert d.rec.hold == 0
    d.tick(active + 2 * DAY - 1)
    assert len(_editions(d)) == 2  # the stall starts over: nothing before 2 days idle
    d.tick(T0 + 60 * DAY)
    assert _editions(d)[2:] == [("digest", 1, active + 2 * DAY), ("digest", 2, active + 3 * DAY),
                                ("digest", 3, active + 4 * DAY)]
    assert d.stages()[-1] == ("s", "dormant", active + 5 * DAY)


HOLD_EXIT = journey('''journey "hold-exit"

stage s "S"
  initial
  on go -> e
  hold after 2 days idle: every 1 day send newsletter "digest", 2 times, then exit

stage e "E"
  final
''')


def test_holding_loop_then_exit():
    d = Driver(HOLD_EXIT)
    d.send("page.visited", T0)
    d.tick(T0 + 30 * DAY)
    assert d.state == EXITED
    assert [(a.kind, a.time) for a in d.actions][-1] == ("exit", T0 + 4 * DAY)
    assert d.rec.due is None
    assert d.send("go", T0 + 31 * DAY) == []


# -- timeouts -----------------------------------------------------------------------------------

IDLE = journey('''journey "idle"

stage a "A"
  initial
  after 3 days idle -> b

stage b "B"
  final
''')


def test_after_idle_timeout_restarts_with_activity():
    d = Driver(IDLE)
    d.send("page.visited", T0)
    d.send("page.visited", T0 + 2 * DAY)
    d.tick(T0 + 4 * DAY)
    assert d.state == "a"
    d.tick(T0 + 10 * DAY)
    assert d.stages()[-1] == ("a", "b", T0 + 5 * DAY)


IN_STAGE = journey('''journey "in-stage"

stage a "A"
  initial
  after 3 days in stage -> b

stage b "B"
  final
''')


def test_after_in_stage_timeout_ignores_activity():
    d = Driver(IN_STAGE)
    d.send("page.visited", T0)
    d.send("page.visited", T0 + DAY)
    d.send("page.visited", T0 + 2 * DAY)
    d.tick(T0 + 10 * DAY)
    assert d.stages()[-1] == ("a", "b", T0 + 3 * DAY)


# -- handoff ------------------------------------------------------------------------------------

HANDOFF = journey('''journey "handoff"

scoring
  demo.requested +50

stage a "A"
  initial
  on demo.requested -> s

stage s "Sales"
  handoff to sales
  when score >= 10 -> s2
  on sales.rejected -> a

stage s2 "Sales 2"
  on sales.rejected -> a
  on deal.won -> won

stage won "Won"
  final
''')

HANDOFF_SIMPLE = journey('''journey "handoff-simple"

scoring
  demo.requested +50

stage a "A"
  initial
  on demo.requested -> s

stage s "Sales"
  handoff to sales
  on sales.rejected -> a
  on deal.won -> won

stage won "Won"
  final
''')


def test_handoff_once_per_arrival():
    d = Driver(HANDOFF_SIMPLE)
    d.send("page.visited", T0)
    d.send("demo.requested", T0 + 1)
    d.send("demo.requested", T0 + 2)  # still in the handoff stage: no new arrival
    d.send("page.visited", T0 + 3)
    assert len(d.of("handoff")) == 1
    d.send("sales.rejected", T0 + 4)  # recycled
    d.send("demo.requested", T0 + 5)  # and back
    assert [(a.data["stage"], a.time) for a in d.of("handoff")] == [("s", T0 + 1), ("s", T0 + 5)]


def test_handoff_emitted_when_passing_through_in_a_cascade():
    d = Driver(HANDOFF)
    d.send("page.visited", T0)
    d.send("demo.requested", T0 + 1)
    assert d.state == "s2"
    assert len(d.of("handoff")) == 1


# -- exit ---------------------------------------------------------------------------------------

EXITS = journey('''journey "exits"

exit on email.unsubscribed

scoring
  email.opened +1

stage a "A"
  initial
  send email "now" on entry
  send email "later" after 2 days
  after 5 days idle -> b
  on go -> b

stage b "B"
  final
''')


def test_exit_rule_removes_the_lead_and_cancels_everything():
    d = Driver(EXITS)
    d.send("email.opened", T0)
    acts = d.send("email.unsubscribed", T0 + DAY)
    assert [(a.kind, a.data.get("from"), a.time) for a in acts] == [("exit", "a", T0 + DAY)]
    assert d.state == EXITED and d.rec.due is None
    frozen = d.rec.to_list()
    assert d.send("go", T0 + 2 * DAY) == []
    assert d.send("email.opened", T0 + 3 * DAY) == []
    assert d.tick(T0 + 100 * DAY) == []
    assert d.rec.to_list() == frozen
    assert "later" not in [c for c, _ in d.sends()]


def test_first_event_being_an_exit_event_never_enrolls():
    d = Driver(EXITS)
    assert d.send("email.unsubscribed", T0) == []
    assert d.rec.state == NOT_ENROLLED
    assert d.send("email.opened", T0 + 1) == []
    assert d.send("go", T0 + 2) == []
    assert d.rec.state == NOT_ENROLLED
    assert d.actions == []


# -- late events --------------------------------------------------------------------------------

LATE = journey('''journey "late"

scoring
  x +8
  decay half-life 1 day

stage a "A"
  initial
  on go -> b

stage b "B"
  final
''')


def test_late_event_applied_at_the_lead_clock():
    d = Driver(LATE)
    d.send("page.visited", T0 + 5 * DAY)
    acts = d.send("go", T0 + DAY)  # an event older than the lead's clock
    assert [(a.kind, a.time) for a in acts] == [("stage", T0 + 5 * DAY)]
    assert d.rec.clock == T0 + 5 * DAY
    d2 = Driver(LATE)
    d2.send("page.visited", T0 + 5 * DAY)
    d2.send("x", T0 + DAY)
    assert d2.rec.score_at == T0 + 5 * DAY
    assert d2.score(T0 + 5 * DAY) == 8  # counted at the clock, not decayed from its own time


# -- idempotency keys ---------------------------------------------------------------------------

def _script(cj):
    d = Driver(cj)
    d.send("page.visited", T0)
    d.send("go", T0 + HOUR)
    d.send("back", T0 + 2 * HOUR)
    d.send("go", T0 + 3 * HOUR)
    d.tick(T0 + 10 * DAY)
    return d.actions


def test_idempotency_keys_unique_and_stable():
    first = _script(CONTENT)
    again = _script(CONTENT)
    keys = [a.key for a in first]
    assert len(keys) == len(set(keys)) and len(keys) >= 6
    assert keys == [a.key for a in again]
    assert all(k.startswith(f"L1|content@{CONTENT.version}|") for k in keys)


def test_idempotency_keys_unique_across_holding_loop_editions_and_resets():
    d = Driver(HOLD)
    d.send("page.visited", T0)
    d.tick(T0 + 3 * DAY)
    d.send("page.visited", T0 + 3 * DAY + 1)
    d.tick(T0 + 40 * DAY)
    keys = [a.key for a in d.actions]
    assert len(keys) == len(set(keys))


def test_step_is_pure_input_record_unchanged():
    d = Driver(DRIP)
    d.send("page.visited", T0)
    before = d.rec.to_list()
    rec = d.rec
    step_event(DRIP, rec, "L1", ev("z", "go", T0 + 2 * DAY))
    advance(DRIP, rec, "L1", T0 + 5 * DAY)
    assert rec.to_list() == before


BACK_LE = journey('''journey "back-le"

scoring
  x +20
  decay half-life 1 day

stage a "A"
  initial
  when score >= 10 -> b

stage b "B"
  when score <= 5 -> a
  on done -> c

stage c "C"
  final
''')


def test_decay_crossing_of_a_non_strict_threshold_fires_at_the_exact_instant():
    # 20 * 2^(-2 days / 1 day) == 5.0 exactly: `score <= 5` holds at T0 + 2 days.
    rec, _ = step_event(BACK_LE, None, "L1", ev("x0", "x", T0))
    assert score_at(BACK_LE, rec, T0 + 2 * DAY) == 5.0
    by_event = Driver(BACK_LE)
    by_event.send("x", T0)
    by_event.send("page.visited", T0 + 2 * DAY)  # an event at that instant sees the threshold met
    assert by_event.state == "a"
    by_tick = Driver(BACK_LE)
    by_tick.send("x", T0)
    by_tick.tick(T0 + 2 * DAY)  # so must a tick to that instant: time alone, same meaning
    assert by_tick.state == "a", f"due {by_tick.rec.due}, expected {T0 + 2 * DAY}"
    assert by_tick.stages()[-1] == ("b", "a", T0 + 2 * DAY)


ENROLL_EXIT = journey('''journey "enroll-exit"

enroll on trial.started
exit on email.unsubscribed

stage a "A"
  initial
  send email "welcome" on entry
  on go -> b

stage b "B"
  final
''')


def test_a_lead_whose_first_event_is_an_exit_event_is_never_enrolled_even_with_enroll_rules():
    d = Driver(ENROLL_EXIT)
    assert d.send("email.unsubscribed", T0) == []
    # the lead unsubscribed: a later enrolling event must not start sending to it
    assert d.send("trial.started", T0 + DAY) == []
    assert d.of("send") == []


# -- thresholds are levels, also at the second a timer fires (reference model finding D4) -------------

CROSSING_AT_A_SEND = journey('''journey "d4"
scoring
  go +40
  decay half-life 12 hours
stage a
  initial
  on go -> b
stage b
  send email "later" after 1 day
  when score <= 10 -> c
stage c
  final
''')


def test_a_crossing_at_the_second_of_a_send_is_not_lost():
    """40 points halve to exactly 10 one day later, the second `later` is due: the send goes first (content
    before decay crossings at one instant), then the threshold holds at the clock and moves the lead."""
    d = Driver(CROSSING_AT_A_SEND)
    d.send("go", "2026-01-01T00:00:00Z")
    acts = d.tick("2026-01-05T00:00:00Z")
    assert [(a.kind, a.time) for a in acts] == [("send", T0 + DAY), ("stage", T0 + DAY)]
    assert acts[1].data["to"] == "c" and d.state == "c"
