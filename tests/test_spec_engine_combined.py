"""The docs are the spec, where features meet: caps, windows and holding loops at once; a goal during a hold;
ties at one instant; re-entry and the frequency cap; a switch of version while a send is deferred; hostile
attribute values. Each test names the sentence of docs/engine.md or docs/language.md it holds the real engine
(loader, checker, compiler, pure step) to.
"""

from __future__ import annotations

import pytest

from engine.migrate import switch_lead
from engine.step import advance

from .engine_helpers import DAY, HOUR, T0, Driver, iso, journey

# 2026-01-01 (T0) is a Thursday.
THU_10 = T0 + 10 * HOUR
FRI_10 = THU_10 + DAY
SUN_10 = THU_10 + 3 * DAY
MON_09 = T0 + 4 * DAY + 9 * HOUR


def _sends(d: Driver):
    return [(a.data["content"], a.data.get("edition"), iso(a.time), a.data.get("deferred_from"),
             a.data.get("held_by")) for a in d.of("send")]


def _moves(d: Driver):
    return [(a.data["from"], a.data["to"], iso(a.time)) for a in d.of("stage")]


# -- a cap, a window and a holding loop at once -------------------------------------------------------

CAP_WINDOW_HOLD = '''journey "t"
at most 1 message per 3 days
send only weekdays 09:00-17:00
stage a
  initial
  send email "w" on entry
  hold after 1 day idle: every 1 day send email "n", 2 times, then -> b
stage b
  final
'''


def test_a_loop_send_held_by_the_cap_then_the_window_goes_at_the_first_open_minute_after_both():
    """engine.md, *Time zones and send windows*: a send's due time is open(max(meant, cap release, clock)); for
    a loop, meant is the stall, then the last edition + interval; the action says `held_by` both."""
    d = Driver(journey(CAP_WINDOW_HOLD))
    d.send("x", THU_10)  # "w" at Thu 10:00; the loop's stall ends Fri 10:00, the cap frees Sun 10:00
    d.tick(T0 + 20 * DAY)
    assert _sends(d) == [
        ("w", None, iso(THU_10), None, None),
        ("n", 1, iso(MON_09), iso(FRI_10), "frequency cap and send window"),
        # meant Tue 09:00 (the last edition + 1 day), the cap frees Thu 09:00: only the cap held it
        ("n", 2, iso(MON_09 + 3 * DAY), iso(MON_09 + DAY), None),
    ]
    assert _moves(d)[-1] == ("a", "b", iso(MON_09 + 4 * DAY))  # one interval after the last send


def test_activity_cancels_a_loop_send_held_by_cap_and_window_and_the_loop_starts_again():
    """language.md, *Frequency cap*: activity cancels a deferred holding-loop send; the loop starts again from
    zero, its next send after a new stall (engine.md step 4)."""
    d = Driver(journey(CAP_WINDOW_HOLD))
    d.send("x", THU_10)
    d.tick(SUN_10 + HOUR)  # the first edition is waiting for Monday's window
    assert d.rec.due == MON_09
    d.send("y", SUN_10 + 2 * HOUR)  # activity on Sunday noon
    d.tick(T0 + 20 * DAY)
    editions = [(c, e, t, f) for c, e, t, f, _ in _sends(d) if c == "n"]
    # the new stall ends Mon 12:00: inside the window, the cap long free: sent on time, counted from 1 again
    assert editions[0] == ("n", 1, iso(SUN_10 + DAY + 2 * HOUR), None)
    assert len(editions) == 2


# -- a goal during a hold ------------------------------------------------------------------------------

GOAL_DURING_HOLD = '''journey "t"
at most 1 message per 2 days
on demo -> c
stage a
  initial
  send email "w" on entry
  hold after 1 day idle: every 1 day send email "n", 3 times, then -> b
stage b
  final
stage c
  send email "cw" on entry
  on z -> b
'''


def test_a_goal_during_a_hold_cancels_the_held_loop_send_and_the_target_send_waits_for_the_cap():
    """engine.md, *Goals*: the goal moves the lead from any non-final stage; leaving the stage cancels the loop
    send the cap held; the target's on-entry send obeys the cap (never dropped, `deferred_from` its entry)."""
    d = Driver(journey(GOAL_DURING_HOLD))
    d.send("x", T0)
    d.tick(T0 + DAY + 10)  # the first edition, due T0+1d, waits for the cap until T0+2d
    assert d.rec.due == T0 + 2 * DAY and d.of("send")[-1].data["content"] == "w"
    d.send("demo", T0 + DAY + 20)
    d.tick(T0 + 10 * DAY)
    assert _moves(d)[-1] == ("a", "c", iso(T0 + DAY + 20))
    assert d.of("stage")[-1].data["rule"].startswith("goal: on demo -> c")
    assert _sends(d) == [("w", None, iso(T0), None, None),
                         ("cw", None, iso(T0 + 2 * DAY), iso(T0 + DAY + 20), None)]


# -- ties at one instant (engine.md, *Order within one step*, step 1) ----------------------------------

def test_at_one_instant_content_then_a_delayed_action_then_the_timeout():
    """"content sends, delayed internal actions, holding-loop sends, the end of a holding loop, timeouts":
    a delayed send and a delayed task due with the in-stage timer both go before the lead moves."""
    d = Driver(journey('''journey "t"
stage a
  initial
  send email "d" after 2 days
  create task "t1" after 2 days
  after 2 days in stage -> b
stage b
  final
'''))
    d.send("x", T0)
    d.tick(T0 + 5 * DAY)
    assert [(a.kind, a.time) for a in d.actions[1:]] == [
        ("send", T0 + 2 * DAY), ("task", T0 + 2 * DAY), ("stage", T0 + 2 * DAY)]


def test_at_one_instant_the_end_of_a_holding_loop_goes_before_a_timeout_written_first():
    d = Driver(journey('''journey "t"
stage a
  initial
  after 3 days in stage -> c
  hold after 1 day idle: every 1 day send email "n", 2 times, then -> b
stage b
  final
stage c
  final
'''))
    d.send("x", T0)
    d.tick(T0 + 5 * DAY)  # editions at +1d, +2d; the loop ends at +3d, the in-stage timer is due at +3d too
    assert _moves(d)[-1] == ("a", "b", iso(T0 + 3 * DAY))
    assert d.of("stage")[-1].data["rule"].startswith("a: holding loop ended")


#: 10 points halving every day: exactly 5 one day after `x`; `y` takes the lead to stage `h` (written after it).
HALVING = '''scoring
  x +10
  decay half-life 1 day
stage a
  initial
  on y -> h
'''


def test_at_one_instant_a_timeout_goes_before_a_decay_crossing():
    """A score of 10 with a half-life of 1 day is exactly 5 one day later: `when score <= 5` and `after 1 day in
    stage` are due at the same second; the timeout goes first."""
    d = Driver(journey('journey "t"\n' + HALVING + '''stage h
  after 1 day in stage -> c
  when score <= 5 -> b
stage b
  final
stage c
  final
'''))
    d.send("x", T0)
    d.send("y", T0)
    assert d.rec.due == T0 + DAY
    d.tick(T0 + 5 * DAY)
    assert _moves(d)[-1] == ("h", "c", iso(T0 + DAY))


def test_at_one_instant_content_goes_before_a_loop_send_and_the_cap_holds_the_loop():
    """"content sends ... holding-loop sends": meant at the same second, the `send` line takes the room in the
    cap and the edition waits for the next."""
    d = Driver(journey('''journey "t"
at most 1 message per 1 day
stage a
  initial
  hold after 1 day idle: every 1 day send email "n", 2 times, then -> b
  send email "d" after 1 day
stage b
  final
'''))
    d.send("x", T0)
    d.tick(T0 + 6 * DAY)
    assert _sends(d)[:2] == [("d", None, iso(T0 + DAY), None, None),
                             ("n", 1, iso(T0 + 2 * DAY), iso(T0 + DAY), None)]


# -- a send at a date, `if past send now`, and a window ------------------------------------------------

def test_a_past_date_sent_now_still_waits_for_the_window():
    """language.md, *Send windows*: a send at a date waits for the next open minute, never dropped; `if past
    send now` means it at the later of "known since" and the stage entry (engine.md, *Past dates*)."""
    d = Driver(journey('''journey "t"
send only weekdays 09:00-17:00
enroll on webinar.registered
stage a
  initial
  send email "r" 1 hour before starts_at of webinar.registered if past send now
  on x -> b
stage b
  final
'''))
    saturday_20 = T0 + 2 * DAY + 20 * HOUR
    d.send("webinar.registered", saturday_20, data={"starts_at": "2026-01-03T20:30:00Z"})
    d.tick(T0 + 9 * DAY)
    assert _sends(d) == [("r", None, iso(MON_09), iso(saturday_20), "send window")]


# -- re-entry and the frequency cap --------------------------------------------------------------------

REENTER_CAPPED = '''journey "t"
re-enter every time
enroll on lapsed
at most 1 message per 7 days
stage a
  initial
  send email "hi" on entry every visit
  hold after 1 day idle: every 1 day send email "n", 2 times, then exit
  on renewed -> won
stage won
  final
'''


def test_a_new_visit_does_not_reset_the_frequency_cap():
    """engine.md, *Re-entry*: "caps of score rules, frequency-cap history: kept: a new visit does not reset the
    frequency cap"; the `every visit` send of the second visit waits for the cap."""
    d = Driver(journey(REENTER_CAPPED))
    d.send("lapsed", T0)
    d.send("renewed", T0 + HOUR)
    d.send("lapsed", T0 + 2 * DAY)
    d.tick(T0 + 30 * DAY)
    assert _sends(d)[:2] == [("hi", None, iso(T0), None, None),
                             ("hi", None, iso(T0 + 7 * DAY), iso(T0 + 2 * DAY), None)]


def test_a_new_visit_starts_its_holding_loop_from_zero():
    """engine.md, *Re-entry*: the holding-loop count is zero on a new visit (the first visit's loop ended it
    out by `then exit`, a way out written in a stage, so it re-enters)."""
    d = Driver(journey(REENTER_CAPPED.replace("at most 1 message per 7 days\n", "")))
    d.send("lapsed", T0)
    d.tick(T0 + 10 * DAY)  # editions at +1d, +2d, out at +3d
    assert d.state == "exit" and d.rec.left == "way"
    d.send("lapsed", T0 + 20 * DAY)
    assert d.state == "a" and d.rec.hold == 0
    d.tick(T0 + 30 * DAY)
    assert [(c, e) for c, e, *_ in _sends(d)] == [("hi", None), ("n", 1), ("n", 2), ("hi", None), ("n", 1), ("n", 2)]


# -- a switch of version while a send is deferred (engine.md, *What happens to each piece of a record*) ---

DEFERRED = '''journey "t"
{cap}
{window}
stage a
  initial
  send email "w" on entry
  send email "g" after 1 hour
  on go -> b
stage b
  final
'''


@pytest.fixture
def held():
    """A lead whose "g" (meant T0+1h) the old version's cap holds until T0+1d."""
    old = journey(DEFERRED.format(cap="at most 1 message per 1 day", window=""))
    d = Driver(old)
    d.send("x", T0)
    assert d.rec.due == T0 + DAY
    return old, d.rec


@pytest.mark.parametrize("cap, window, sent_at, held_by", [
    ("", "", T0 + 3 * HOUR, None),  # the cap is gone: what the new version has due goes at the switch
    ("at most 2 messages per 1 day", "", T0 + 3 * HOUR, None),
    ("at most 1 message per 2 days", "", T0 + 2 * DAY, None),  # a stricter cap: re-timed, never dropped
    ("at most 1 message per 1 day", "send only weekdays 10:00-11:00", T0 + DAY + 10 * HOUR,
     "frequency cap and send window"),
])
def test_a_send_the_cap_held_is_derived_again_from_the_new_version_at_the_switch(held, cap, window, sent_at,
                                                                                 held_by):
    """The frequency-cap history is kept, `due` is derived again from the new version, and what it finds due by
    the switch goes at the switch instant (never earlier, never skipped)."""
    old, rec = held
    new = journey(DEFERRED.format(cap=cap, window=window))
    switch = T0 + 3 * HOUR
    rec, actions = switch_lead(old, new, rec, "L1", switch)
    assert T0 in list(rec.sends)  # the history the old version wrote still counts
    assert [a.time for a in actions if a.kind == "send"] == ([switch] if sent_at == switch else [])
    _, more = advance(new, rec, "L1", T0 + 10 * DAY)
    sends = [a for a in actions + more if a.kind == "send"]
    assert [(a.version, a.data["content"], a.time, a.data.get("deferred_from"), a.data.get("held_by"))
            for a in sends] == [(new.version, "g", sent_at, iso(T0 + HOUR), held_by)]


def test_a_send_the_cap_held_is_cancelled_when_the_new_version_no_longer_sends_it(held):
    old, rec = held
    new = journey(DEFERRED.format(cap="at most 1 message per 1 day", window="").replace(
        '  send email "g" after 1 hour\n', ""))
    rec, actions = switch_lead(old, new, rec, "L1", T0 + 3 * HOUR)
    assert actions == [] and rec.due is None


# -- hostile attribute values: "a value that is not an IANA zone name is ignored" ------------------------

ZONED = '''journey "t"
time zone from tz default "Europe/Rome"
scoring
  x +5
stage a
  initial
  send email "tips" after 1 day
  on go -> b
stage b
  final
'''


@pytest.mark.parametrize("value", [5, True, "Europe/Nowhere", "", "../../etc/passwd"])
def test_a_zone_attribute_that_is_no_zone_name_is_ignored(value):
    """language.md, *The lead's time zone*: the lead keeps the zone it had."""
    d = Driver(journey(ZONED))
    d.send("x", T0, attributes={"tz": "America/New_York"})
    d.send("x", T0 + HOUR, attributes={"tz": value})
    assert d.rec.zone == "America/New_York" and d.score(T0 + HOUR) == 10


@pytest.mark.parametrize("value", [[], {}, ["Europe/Rome"], {"a": 1}])
def test_a_zone_attribute_that_is_a_list_or_an_object_is_ignored(value):
    """It used to raise TypeError (engine.zones.zone hashed its argument for its cache): the runner kept the
    event aside as a Coltiva bug."""
    d = Driver(journey(ZONED))
    d.send("x", T0, attributes={"tz": "America/New_York"})
    d.send("x", T0 + HOUR, attributes={"tz": value})
    assert d.rec.zone == "America/New_York" and d.score(T0 + HOUR) == 10


# -- dates out of range ---------------------------------------------------------------------------------

@pytest.mark.parametrize("value, sent", [
    ("2026-01-01", True),             # a past date in range: `if past send now` sends it at once
    ("1969-12-31T23:00:00Z", False),  # before 1970: no date, like an event time; ignored
    ("0001-01-01", False),
    ("2200-01-01", False),            # after 2199: no date
])
def test_a_date_outside_1970_to_2199_is_no_date_and_is_ignored(value, sent):
    """language.md, *Sends at a date*: "a value that is not a date is ignored"; a date's year must be 1970 to
    2199, as an event's time (docs/events.md)."""
    d = Driver(journey('''journey "t"
enroll on x
stage a
  initial
  send email "r" 1 hour before starts_at of x if past send now
  on go -> b
stage b
  final
'''))
    d.send("x", T0 + 4 * DAY, data={"starts_at": value})
    d.tick(T0 + 30 * DAY)
    assert [a.time for a in d.of("send")] == ([T0 + 4 * DAY] if sent else [])
    assert (d.rec.dates is not None) is sent



# -- a switch of version and a conditional send passed over ------------------------------------------------

PASSED = '''journey "t"
stage a
  initial
  send email "p" after 1 day{cond}
  send email "q" after 5 days
  on go -> b
stage b
  on back -> a
  on done -> c
stage c
  final
'''


@pytest.mark.parametrize("cond", ["", ' if lead.plan == "free"'])
def test_a_send_passed_over_stays_passed_over_in_the_stay_across_a_switch(cond):
    """engine.md, *What happens to each piece of a record*: `passed` is kept by content id, whatever the new
    version's condition; a later stay tests the line again."""
    old = journey(PASSED.format(cond=' if lead.plan == "pro"'))
    d = Driver(old)
    d.send("s", T0, attributes={"plan": "free"})
    d.tick(T0 + 2 * DAY)
    assert d.of("send") == []
    new = journey(PASSED.format(cond=cond))
    rec, actions = switch_lead(old, new, d.rec, "L1", T0 + 3 * DAY)
    after = Driver(new)
    after.rec = rec
    after.tick(T0 + 10 * DAY)
    assert [(a.data["content"], a.time) for a in actions + after.of("send")] == [("q", T0 + 5 * DAY)]
    after.send("go", T0 + 11 * DAY)
    after.send("back", T0 + 12 * DAY)  # a new stay in `a`: the line is tested again and sent
    after.tick(T0 + 20 * DAY)
    assert [(a.data["content"], a.time) for a in after.of("send")] == [("q", T0 + 5 * DAY), ("p", T0 + 13 * DAY)]
