"""Rules of docs/engine.md and docs/language.md that had no test of their own: day lists and ranges of send
windows, several windows adding up, a decay crossing at the second a held send goes, and what a new visit keeps
(`in journey` timers, `since` timers, `had`). Through the real loader, checker, compiler and pure step."""

from __future__ import annotations

import pytest

from .engine_helpers import DAY, HOUR, T0, Driver, iso, journey
from .test_spec_engine_combined import HALVING

# T0, 2026-01-01, is a Thursday; with no `time zone` line every lead is in UTC.


def _first_send(windows: str, t: int) -> str:
    d = Driver(journey(f'''journey "t"
{windows}
stage a
  initial
  send email "x" on entry
  on go -> b
stage b
  final
'''))
    d.send("s", t)
    d.tick(t + 30 * DAY)
    [send] = d.of("send")
    return iso(send.time)


@pytest.mark.parametrize("windows, entered, expected", [
    # `fri-mon` wraps round the week; without hours the window is the whole day
    ("send only fri-mon", T0, "2026-01-02T00:00:00Z"),
    ("send only fri-mon", T0 + 3 * DAY + 10 * HOUR, "2026-01-04T10:00:00Z"),  # Sunday: inside
    ("send only fri-mon 10:00-11:00", T0 + 4 * DAY + 12 * HOUR, "2026-01-09T10:00:00Z"),  # Mon noon: next Fri
    # day names joined by `,` and ranges with `-`
    ("send only mon,wed-fri 10:00-11:00", T0, "2026-01-01T10:00:00Z"),
    ("send only mon,wed-fri 10:00-11:00", T0 + DAY + 12 * HOUR, "2026-01-05T10:00:00Z"),  # Fri noon: Monday
    ("send only weekends", T0, "2026-01-03T00:00:00Z"),
    # several `send only` lines add up: a send may go out in any of them
    ("send only tue 09:00-10:00\nsend only thu 15:00-16:00", T0, "2026-01-01T15:00:00Z"),
    ("send only tue 09:00-10:00\nsend only thu 15:00-16:00", T0 + 16 * HOUR, "2026-01-06T09:00:00Z"),
    # hours run to 24:00; a window crossing midnight belongs to the day it starts (Sunday 23:00 to Monday 01:00)
    ("send only every day 22:00-24:00", T0 + 23 * HOUR, "2026-01-01T23:00:00Z"),
    ("send only sun-mon 23:00-01:00", T0, "2026-01-04T23:00:00Z"),
    ("send only sun 23:00-01:00", T0 + 4 * DAY + 30 * 60, "2026-01-05T00:30:00Z"),  # Monday 00:30: Sunday's
    # quiet hours win over `send only`; quiet hours alone by days
    ("send only sat-sun 00:00-24:00\nquiet hours sat", T0, "2026-01-04T00:00:00Z"),
    ("quiet hours thu-sun", T0, "2026-01-05T00:00:00Z"),
])
def test_days_lists_ranges_and_several_windows(windows, entered, expected):
    """language.md, *Send windows and quiet hours*."""
    assert _first_send(windows, entered) == expected


def test_a_decay_crossing_at_the_second_a_held_send_goes_moves_the_lead_after_the_send():
    """engine.md step 1: "a timer that does not [move the lead] (a send ...) is followed by the stage's
    thresholds, tested at that instant, so a decay crossing that falls on the same second is not lost"; the
    send meant earliest goes first; the new stage's on-entry send then waits for the cap."""
    d = Driver(journey('journey "t"\nat most 1 message per 1 day\n' + HALVING + '''stage h
  send email "w" on entry
  send email "d" after 1 hour
  when score <= 5 -> b
stage b
  send email "bw" on entry
  on z -> c
stage c
  final
'''))
    d.send("x", T0)
    d.send("y", T0)  # 10 points; exactly 5 at T0+1d, when the cap frees "d"
    assert d.rec.due == T0 + DAY
    d.tick(T0 + 5 * DAY)
    assert [(a.kind, a.data.get("content") or a.data.get("to"), iso(a.time), a.data.get("deferred_from"))
            for a in d.actions[3:]] == [
        ("send", "d", iso(T0 + DAY), iso(T0 + HOUR)),
        ("stage", "b", iso(T0 + DAY), None),
        ("send", "bw", iso(T0 + 2 * DAY), iso(T0 + DAY)),
    ]


# -- what a new visit keeps (engine.md, *Re-entry*) ------------------------------------------------------

def test_after_in_journey_counts_from_the_last_entry_on_a_new_visit():
    """`enrolled` is the re-entering event's time, and `after D in journey` counts from it."""
    d = Driver(journey('''journey "t"
re-enter every time
enroll on s
stage a
  initial
  on ok -> b
  after 10 days in journey -> exit
stage b
  final
'''))
    d.send("s", T0)
    d.send("ok", T0 + DAY)
    d.send("s", T0 + 5 * DAY)
    assert d.rec.enrolled == T0 + 5 * DAY
    d.tick(T0 + 30 * DAY)
    assert [(a.kind, iso(a.time)) for a in d.actions][-1] == ("exit", iso(T0 + 15 * DAY))


def test_a_since_timer_counts_from_the_last_send_of_its_content_whatever_the_visit():
    """The content received is kept on a new visit, and so is when it was sent: a `since` timer on content that
    is not sent `every visit` has already run out when the lead comes back."""
    text = '''journey "t"
re-enter every time
enroll on s
stage a
  initial
  send email "hi" on entry{every}
  on ok -> b
  after 3 days since "hi" -> exit
stage b
  final
'''
    d = Driver(journey(text.format(every="")))
    d.send("s", T0)
    d.send("ok", T0 + DAY)
    d.send("s", T0 + 5 * DAY)  # no "hi" again: the timer counts from T0 and is past
    assert [(a.kind, iso(a.time)) for a in d.last] == [("stage", iso(T0 + 5 * DAY)), ("exit", iso(T0 + 5 * DAY))]
    again = Driver(journey(text.format(every=" every visit")))
    again.send("s", T0)
    again.send("ok", T0 + DAY)
    again.send("s", T0 + 5 * DAY)  # "hi" again: the timer counts from this send
    again.tick(T0 + 30 * DAY)
    assert [(a.kind, iso(a.time)) for a in again.actions][-1] == ("exit", iso(T0 + 8 * DAY))


def test_had_is_kept_on_a_new_visit():
    """"It is never cleared" (engine.md, *Conditions on the lead, and had*): an `unless had` send of a new
    visit sees the event of an earlier visit."""
    d = Driver(journey('''journey "t"
re-enter every time
enroll on s
stage a
  initial
  send email "x" on entry every visit unless had demo
  on demo -> b
stage b
  final
'''))
    d.send("s", T0)
    d.send("demo", T0 + HOUR)
    d.send("s", T0 + 5 * DAY)
    assert d.state == "a" and [iso(a.time) for a in d.of("send")] == [iso(T0)]


REENTER_ONCE_PER = '''journey "t"
{reentry}
enroll on s
exit on u
scoring
  x +1
  s +10
stage a
  initial
  on ok -> b
stage b
  final
'''


def test_once_per_d_is_counted_at_the_lead_clock_when_the_enrolling_event_is_late():
    """engine.md, *Re-entry*: "counted at the time the event is applied (the lead's clock if the event is
    late)"; the new visit starts at that clock."""
    d = Driver(journey(REENTER_ONCE_PER.format(reentry="re-enter once per 30 days")))
    d.send("s", T0)
    d.send("ok", T0 + DAY)
    d.send("x", T0 + 31 * DAY)  # the lead's clock: T0+31d
    d.send("s", T0 + 29 * DAY)  # late: applied at T0+31d, 31 days after the last entry
    assert d.state == "a" and d.rec.enrolled == T0 + 31 * DAY
    assert [(a.kind, a.data.get("rule"), iso(a.time)) for a in d.last] == [
        ("stage", "re-entered", iso(T0 + 31 * DAY))]


@pytest.mark.parametrize("reentry", ["", "re-enter every time"])
def test_a_lead_in_a_final_stage_still_takes_points_and_an_exit_rule_leaves_it_there(reentry):
    """engine.md, *Order within one step*: a non-enrolling event of a finished lead goes through steps 2 to 5:
    score rules count; an exit rule leaves it where it ended (and bars its return)."""
    d = Driver(journey(REENTER_ONCE_PER.format(reentry=reentry)))
    d.send("s", T0)
    d.send("ok", T0 + DAY)
    d.send("x", T0 + 2 * DAY)
    assert d.state == "b" and d.score(T0 + 2 * DAY) == 11
    d.send("u", T0 + 3 * DAY)
    assert d.state == "b" and (d.rec.left == "rule" or not reentry)
    d.send("s", T0 + 40 * DAY)
    assert d.state == "b"


# -- conditional sends (engine.md, *Conditional sends*) ---------------------------------------------------

CONDITIONAL = '''journey "t"
{windows}
stage a
  initial
  send email "p" on entry if lead.plan == "pro"
  on go -> b
  on z -> c
stage b
  send email "p" on entry
  on z -> c
stage c
  final
'''


def test_a_conditional_send_held_by_a_send_window_is_tested_again_when_the_window_opens():
    """"tested each time the send would go out: ... if a frequency cap or a send window held it, when it is
    released"."""
    d = Driver(journey(CONDITIONAL.format(windows="send only weekdays 09:00-17:00")))
    d.send("s", T0 + 2 * DAY, attributes={"plan": "pro"})  # Saturday: waits for Monday 09:00
    assert d.rec.due == T0 + 4 * DAY + 9 * HOUR
    d.send("lead.updated", T0 + 3 * DAY, attributes={"plan": "free"})
    d.tick(T0 + 9 * DAY)
    assert d.of("send") == [] and d.rec.due is None


def test_a_send_passed_over_is_not_tested_again_in_the_stay_but_another_line_of_it_may_send_it():
    """"passed over for this visit: ... the content is not marked as sent (a later visit, or another `send`
    line of it, may send it) ... so it is not tested again before the lead leaves"."""
    d = Driver(journey(CONDITIONAL.format(windows="")))
    d.send("s", T0, attributes={"plan": "free"})
    d.send("lead.updated", T0 + 1, attributes={"plan": "pro"})  # true now, but the line was passed over
    d.tick(T0 + DAY)
    assert d.of("send") == []
    d.send("go", T0 + DAY + 1)
    assert [(a.data["stage"], a.data["content"]) for a in d.of("send")] == [("b", "p")]


# -- a date known before the lead enters the stage (engine.md, *Past dates*) -------------------------------

DATED_LATER_STAGE = '''journey "t"
enroll on registered
stage a
  initial
  on go -> b
stage b
  send email "r" 1 day before starts_at of registered{past}
  send email "r2" 1 hour after starts_at of registered
  on done -> c
stage c
  final
'''


@pytest.mark.parametrize("past, sent", [
    ("", [("r2", T0 + 5 * DAY + 13 * HOUR)]),
    (" if past send now", [("r", T0 + 5 * DAY), ("r2", T0 + 5 * DAY + 13 * HOUR)]),
])
def test_a_moment_past_at_the_stage_entry_is_skipped_or_sent_at_the_entry(past, sent):
    """"When that is before the later of "known since" and the stage entry, it is past": the date is known at
    T0 in another stage; the lead enters `b` at T0+5d, after the moment (T0+4d12h) of "r"."""
    d = Driver(journey(DATED_LATER_STAGE.format(past=past)))
    d.send("registered", T0, data={"starts_at": iso(T0 + 5 * DAY + 12 * HOUR)})
    d.send("go", T0 + 5 * DAY)
    d.tick(T0 + 10 * DAY)
    assert d.sends() == sent
