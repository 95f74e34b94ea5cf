"""The engine's documented rules that an independent implementation found broken, each pinned by a test.

1. Thresholds are levels: a decay crossing that starts exactly on a boundary
   fires one second later, and thresholds are tested after every event.
2. A holding-loop send held by the frequency cap is cancelled by activity, with
   the rest of the loop (docs/language.md, *Frequency cap*).
3. A `send` line skips content the lead already received from a holding loop;
   the checker warns (C048).
4. `lead.updated` is not activity.
"""

from __future__ import annotations

from dsl.loader import load_text
from engine.timers import holds, next_timer, score_at

from .engine_helpers import DAY, HOUR, T0, Driver, journey

# -- 1. thresholds are levels ---------------------------------------------------------------------

STEP_BACK = '''journey "levels"

exit on email.bounced where hard == true

scoring
  webinar.attended +10
  page.visited +0
  decay half-life 45 days

stage unaware
  initial
  on webinar.attended -> problem

stage problem
  on demo.requested -> sales
  when score < 10 -> interest

stage interest
  on demo.requested -> sales

stage sales
  final
'''


def test_a_score_that_lands_on_a_downward_boundary_steps_back_one_second_later():
    d = Driver(journey(STEP_BACK))
    d.send("webinar.attended", T0)
    assert d.state == "problem" and d.score(T0) == 10  # exactly on the boundary: `< 10` does not hold yet
    assert d.rec.due == T0 + 1
    d.tick(T0 + 1)
    assert d.state == "interest"
    assert d.stages()[-1] == ("problem", "interest", T0 + 1)


RISING = '''journey "rising"

scoring
  complaint.filed -10
  decay half-life 1 day

fit
  plan == "pro" +10

stage watch
  initial
  on complaint.filed -> unhappy

stage unhappy
  when score > 0 -> happy

stage happy
  final
'''


def test_a_negative_score_on_an_upward_boundary_rises_over_it_one_second_later():
    d = Driver(journey(RISING))
    d.send("complaint.filed", T0, attributes={"plan": "pro"})
    assert d.state == "unhappy" and d.score(T0) == 0  # fit 10, behaviour -10: exactly 0, `> 0` not yet
    d.tick(T0 + 1)
    assert d.state == "happy"


BELOW_FIT = '''journey "floor"

scoring
  email.clicked +5
  decay half-life 1 minute

fit
  plan == "pro" +10

stage hot
  initial
  when score <= 10 -> cold

stage cold
  final
'''


def test_a_boundary_equal_to_the_fit_points_is_reached_when_the_decay_vanishes():
    """fit + b(t) with b(t) = 5 * 2^(-t/60 s) never reaches 10 in exact arithmetic; in floating point it
    does (once b(t) is below half the spacing of floats near 10), and the step compares floats: the timer
    fires exactly when the step's own test turns true."""
    d = Driver(journey(BELOW_FIT))
    d.send("email.clicked", T0, attributes={"plan": "pro"})
    assert d.state == "hot" and d.score(T0) == 15
    due = d.rec.due
    assert due is not None and T0 < due < T0 + 1100 * 60
    assert d.score(due) == 10 and d.score(due - 1) > 10  # the timer and the threshold agree to the second
    d.tick(due - 1)
    assert d.state == "hot"
    d.tick(due)
    assert d.state == "cold"


def test_every_crossing_instant_is_the_first_second_the_threshold_holds():
    """Across many scores and thresholds, the due time is exactly where the step's own test turns true."""
    cj = journey(STEP_BACK)
    d = Driver(cj)
    d.send("webinar.attended", T0)
    for points in (10, 10.5, 11, 13.37, 19.99, 25, 1000, 10 ** 6):
        rec = d.rec.copy()
        rec.state, rec.score, rec.score_at, rec.clock = "problem", float(points), T0, T0
        timer = next_timer(cj, rec)
        assert timer is not None
        due = timer.due
        assert holds("<", score_at(cj, rec, due), 10) and not holds("<", score_at(cj, rec, due - 1), 10), points


def test_thresholds_are_tested_after_an_event_that_changes_no_score():
    """A record whose threshold already holds (written by an older engine, or moved by a migration) moves
    at its next event, even one that adds no points."""
    cj = journey(STEP_BACK)
    d = Driver(cj)
    d.send("webinar.attended", T0)
    stale = d.rec.copy()
    stale.score = 5.0  # as if a missed crossing had left it here
    stale.due = None
    d.rec = stale
    d.send("email.bounced", T0 + HOUR, {"hard": False})  # no points, no trigger, no exit
    assert d.state == "interest"


# -- 2. a held holding-loop send and activity -----------------------------------------------------

LOOP_AND_CAP = '''journey "loop-cap"

at most 1 messages per 7 days

scoring
  email.opened +1

stage nurture
  initial
  send email "welcome" on entry
  on demo.requested -> sales
  hold after 2 days idle: every 1 day send newsletter "digest", 3 times, then exit

stage sales
  final
'''


def test_a_holding_loop_send_held_by_the_cap_is_cancelled_by_activity():
    d = Driver(journey(LOOP_AND_CAP))
    d.send("email.opened", T0)  # enrolls: welcome goes out at T0, the cap is full until T0 + 7 days
    assert d.sends() == [("welcome", T0)]
    d.tick(T0 + 3 * DAY)  # the loop's first send was due at T0 + 2 days: the cap holds it
    assert d.sends() == [("welcome", T0)]
    assert d.rec.due == T0 + 7 * DAY  # held, not dropped: due when the cap allows
    d.send("email.opened", T0 + 4 * DAY)  # activity: the lead is not stalled any more
    assert d.rec.hold == 0 and d.rec.due == T0 + 7 * DAY  # a new stall: 2 days from now, then the cap
    d.tick(T0 + 7 * DAY - 1)
    assert d.sends() == [("welcome", T0)]
    d.send("email.opened", T0 + 6 * DAY + 23 * HOUR)  # active again before the release: nothing goes
    d.tick(T0 + 8 * DAY + 22 * HOUR)
    assert d.sends() == [("welcome", T0)]
    d.tick(T0 + 8 * DAY + 23 * HOUR)  # two idle days after the last activity, the cap long released
    assert d.sends() == [("welcome", T0), ("digest", T0 + 8 * DAY + 23 * HOUR)]
    assert d.of("send")[-1].data["edition"] == 1 and "deferred_from" not in d.of("send")[-1].data


def test_a_held_send_line_is_never_dropped_by_activity():
    """The contrast: a `send` line's content held by the cap goes out when the cap allows, activity or not."""
    text = LOOP_AND_CAP.replace('  send email "welcome" on entry\n',
                                '  send email "welcome" on entry\n  send ebook "guide" after 1 day\n')
    d = Driver(journey(text))
    d.send("email.opened", T0)
    d.send("email.opened", T0 + 2 * DAY)
    d.tick(T0 + 7 * DAY)
    assert ("guide", T0 + 7 * DAY) in d.sends()
    assert d.of("send")[-1].data["deferred_from"] == "2026-01-02T00:00:00Z"


# -- 3. loop content, then a send line of the same content ----------------------------------------

LOOP_THEN_SEND = '''journey "loop-then-send"

stage nurture
  initial
  on form.submitted -> engaged
  hold after 2 days idle: every 1 day send newsletter "digest", 2 times, then -> engaged

stage engaged
  send newsletter "digest" on entry
  send email "next-steps" on entry
  on deal.won -> customer

stage customer
  final
'''


def test_a_send_line_skips_content_the_lead_received_from_a_holding_loop():
    d = Driver(journey(LOOP_THEN_SEND))
    d.send("deal.won", T0)  # enrolls; nurture has no trigger for it: the lead stays and stalls
    assert d.state == "nurture"
    d.tick(T0 + 3 * DAY)  # the loop sends edition 1 (two idle days) and edition 2 (a day later)
    assert d.sends() == [("digest", T0 + 2 * DAY), ("digest", T0 + 3 * DAY)]
    d.tick(T0 + 4 * DAY)  # the loop ends: -> engaged, whose on-entry digest the lead already has
    assert d.state == "engaged"
    assert d.sends()[2:] == [("next-steps", T0 + 4 * DAY)]


def test_a_holding_loop_repeats_content_a_send_line_already_sent():
    """The other way round the loop is a series by design: it sends its editions whatever came before."""
    text = LOOP_THEN_SEND.replace('  on form.submitted -> engaged\n',
                                  '  send newsletter "digest" on entry\n  on form.submitted -> engaged\n')
    d = Driver(journey(text))
    d.send("deal.won", T0)
    d.tick(T0 + 3 * DAY)
    assert d.sends() == [("digest", T0), ("digest", T0 + 2 * DAY), ("digest", T0 + 3 * DAY)]


def test_the_checker_warns_when_a_send_line_follows_a_loop_of_the_same_content():
    loaded = load_text(LOOP_THEN_SEND)
    warnings = [d for d in loaded.diagnostics if d.code == "C048"]
    assert len(warnings) == 1 and warnings[0].span.line == 9
    assert "holding loop" in warnings[0].message
    plain = load_text(LOOP_THEN_SEND.replace('send newsletter "digest" on entry', 'send newsletter "recap" on entry'))
    assert not [d for d in plain.diagnostics if d.code == "C048"]


# -- 4. lead.updated is not activity ----------------------------------------------------------------

IDLE = '''journey "idle"

scoring
  page.visited +1

fit
  plan == "pro" +10

stage fresh
  initial
  after 3 days idle -> cold

stage cold
  final
'''


def test_a_profile_update_is_not_activity():
    d = Driver(journey(IDLE))
    d.send("page.visited", T0)
    d.send("lead.updated", T0 + 2 * DAY, attributes={"plan": "pro"})
    assert d.rec.fit == 10 and d.rec.active == T0  # the profile changed; the lead did nothing
    d.tick(T0 + 3 * DAY)
    assert d.state == "cold"


def test_an_interaction_is_activity():
    d = Driver(journey(IDLE))
    d.send("page.visited", T0)
    d.send("page.visited", T0 + 2 * DAY)
    d.tick(T0 + 3 * DAY)
    assert d.state == "fresh" and d.rec.due == T0 + 5 * DAY


# -- found by the reference model written from the docs (tests/reference) ----------------------------

NEGATED_FIT = '''journey "fit-missing"

fit
  country not in ["US", "CA"] +5
  plan != "free" +3
  company.size >= 200 +10

scoring
  go +1

stage a
  initial
  on done -> b

stage b
  final
'''


def test_fit_lines_count_on_an_empty_profile_as_on_any_other():
    """A missing field meets `!=` and `not in`: a lead with no profile yet has those fit points."""
    d = Driver(journey(NEGATED_FIT))
    d.send("go", T0)
    assert d.rec.fit == 8 and d.score(T0) == 9
    d.send("lead.updated", T0 + 1, attributes={"country": "US", "company": {"size": 500}})
    assert d.rec.fit == 13
    d.send("lead.updated", T0 + 2, attributes={"plan": "free"})
    assert d.rec.fit == 10


def test_an_enrolling_event_is_handled_in_the_initial_stage_like_any_event():
    """Triggers first; the initial stage's thresholds only if no trigger fired (then the cascade)."""
    text = '''journey "enroll-order"

scoring
  go +50
  hop +50

stage a
  initial
  on go -> c
  when score >= 20 -> b

stage b
  on go -> d
  on never -> c

stage c
  final

stage d
  final
'''
    d = Driver(journey(text))
    d.send("go", T0)
    assert [(src, dst) for src, dst, _ in d.stages()] == [(None, "a"), ("a", "c")]
    other = Driver(journey(text))
    other.send("hop", T0)  # no trigger of `a` takes it: the thresholds of `a` do
    assert [(src, dst) for src, dst, _ in other.stages()] == [(None, "a"), ("a", "b")]


def test_entering_a_stage_moves_then_hands_off_then_sends_in_the_order_written():
    text = '''journey "entry-order"

stage a
  initial
  on go -> b

stage b
  send email "first" on entry
  handoff to sales
  send email "second" on entry
  on done -> c

stage c
  final
'''
    d = Driver(journey(text))
    d.send("go", T0)
    kinds = [(a.kind, a.data.get("content") or a.data.get("to") or a.data.get("stage")) for a in d.actions]
    assert kinds == [("stage", "a"), ("stage", "b"), ("handoff", "b"), ("send", "first"), ("send", "second")]
