"""Sends at a date, timers since enrollment or a send, months, and time fields in stored records.

docs/language.md ("Sends at a date", "Timers since enrollment or since a send",
"Months") and docs/engine.md ("Time zones and send windows").
"""

from __future__ import annotations

import json

import pytest

from dsl import load_text, render_plain
from dsl import model as m
from engine.events import format_time
from engine.record import Lead
from engine.step import step_event

from .engine_helpers import Driver, at, ev, journey, line, outbox, run_store, tick_store

WEBINAR = """journey "webinar reminders"
enroll on webinar.registered
exit on email.unsubscribed

stage registered
  initial
  send email "confirmation" on entry
  send email "reminder-24h" 24 hours before starts_at of webinar.registered
  send email "reminder-1h" 1 hour before starts_at of webinar.registered
  send email "reminder-10m" 10 minutes before starts_at of webinar.registered if past send now
  send email "replay" 2 hours after starts_at of webinar.registered
  on webinar.attended -> attended

stage attended
  final
"""

START = "2026-05-20T15:00:00Z"


def _sent(d: Driver) -> list[tuple[str, str]]:
    return [(a.data["content"], format_time(a.time)) for a in d.of("send")]


def test_reminders_count_back_from_the_date_in_the_event():
    d = Driver(journey(WEBINAR))
    d.send("webinar.registered", "2026-05-10T09:00:00Z", data={"starts_at": START})
    d.tick("2026-05-21T00:00:00Z")
    assert _sent(d) == [("confirmation", "2026-05-10T09:00:00Z"), ("reminder-24h", "2026-05-19T15:00:00Z"),
                        ("reminder-1h", "2026-05-20T14:00:00Z"), ("reminder-10m", "2026-05-20T14:50:00Z"),
                        ("replay", "2026-05-20T17:00:00Z")]


def test_a_moment_already_past_is_skipped_or_sent_at_once_as_written():
    # registered 30 minutes before the start: the 24 h and 1 h reminders are past (skipped);
    # the 10 min one is still ahead; then registered 5 minutes before: the 10 min one goes at once
    d = Driver(journey(WEBINAR))
    d.send("webinar.registered", "2026-05-20T14:30:00Z", data={"starts_at": START})
    d.tick("2026-05-21T00:00:00Z")
    assert [c for c, _ in _sent(d)] == ["confirmation", "reminder-10m", "replay"]
    late = Driver(journey(WEBINAR))
    late.send("webinar.registered", "2026-05-20T14:55:00Z", data={"starts_at": START})
    assert _sent(late) == [("confirmation", "2026-05-20T14:55:00Z"), ("reminder-10m", "2026-05-20T14:55:00Z")]
    assert "deferred_from" not in late.of("send")[1].data  # sent when the date became known: on time


def test_a_rescheduled_date_moves_the_sends_not_yet_sent():
    d = Driver(journey(WEBINAR))
    d.send("webinar.registered", "2026-05-10T09:00:00Z", data={"starts_at": START})
    d.send("webinar.registered", "2026-05-12T09:00:00Z", data={"starts_at": "2026-05-27T15:00:00+02:00"})
    d.tick("2026-05-28T00:00:00Z")
    assert ("reminder-24h", "2026-05-26T13:00:00Z") in _sent(d)
    assert not any(when.startswith("2026-05-19") for _, when in _sent(d))


def test_a_date_that_is_no_date_is_ignored_and_explain_says_so():
    trace: list = []
    rec, actions = step_event(journey(WEBINAR), None, "L1",
                              ev("e1", "webinar.registered", "2026-05-10T09:00:00Z", data={"starts_at": "soon"}),
                              trace)
    assert [a.data["content"] for a in actions if a.kind == "send"] == ["confirmation"]
    assert rec.dates is None and rec.due is None
    assert any("'soon' is not a date" in n for entry in trace for n in entry["notes"])


def test_a_date_without_a_zone_is_the_leads_local_time():
    text = WEBINAR.replace("exit on email.unsubscribed\n", 'exit on email.unsubscribed\ntime zone "America/Chicago"\n')
    d = Driver(journey(text))
    d.send("webinar.registered", "2026-05-10T09:00:00Z", data={"starts_at": "2026-05-20T10:00"})
    d.tick("2026-05-21T00:00:00Z")
    assert ("reminder-1h", "2026-05-20T14:00:00Z") in _sent(d)  # 09:00 CDT (-5)


def test_a_date_from_a_lead_attribute_and_a_bare_date_is_local_midnight():
    cj = journey("""journey "renewal"
enroll on contract.signed
time zone "Europe/Rome"

stage customer
  initial
  send email "renewal" 30 days before contract_end of lead
  on contract.renewed -> renewed

stage renewed
  final
""")
    d = Driver(cj)
    d.send("lead.updated", "2026-01-01T00:00:00Z", attributes={"contract_end": "2026-12-31"})
    d.send("contract.signed", "2026-01-02T00:00:00Z")
    d.tick("2027-01-01T00:00:00Z")
    assert _sent(d) == [("renewal", "2026-11-30T23:00:00Z")]  # 2026-12-01 00:00 CET


def test_a_date_anchor_on_an_event_the_journey_never_takes_is_an_error():
    text = WEBINAR.replace("of webinar.registered\n  send email \"reminder-1h\"", "of webinar.registerd\n"
                           "  send email \"reminder-1h\"")
    loaded = load_text(text)
    codes = [d.code for d in loaded.diagnostics]
    assert "C086" in codes and not loaded.ok
    message = render_plain(next(d for d in loaded.diagnostics if d.code == "C086"), loaded.sources)
    assert "webinar.registerd" in message and "of lead" in message


# ---- timers since enrollment and since a send ---------------------------------------------
TRIAL = """journey "trial"
enroll on trial.started

stage onboarding
  initial
  send email "setup-guide" on entry
  on app.setup_done -> activated
  after 3 days since "setup-guide" -> nudge
  after 10 days in journey -> closing

stage nudge
  send email "need-help" on entry
  on app.setup_done -> activated
  after 10 days in journey -> closing

stage activated
  after 10 days in journey -> closing

stage closing
  final
"""


def test_after_in_journey_counts_from_enrollment_whatever_the_stage():
    d = Driver(journey(TRIAL))
    d.send("trial.started", "2026-03-01T08:00:00Z")
    d.send("app.setup_done", "2026-03-02T08:00:00Z")  # onboarding -> activated, a stage entry later
    d.tick("2026-03-20T00:00:00Z")
    assert d.stages()[-1] == ("activated", "closing", at("2026-03-11T08:00:00Z"))


def test_after_since_a_send_counts_from_that_send():
    d = Driver(journey(TRIAL))
    d.send("trial.started", "2026-03-01T08:00:00Z")
    d.tick("2026-03-05T00:00:00Z")
    assert d.stages()[-1] == ("onboarding", "nudge", at("2026-03-04T08:00:00Z"))


def test_a_timer_since_a_send_waits_while_the_send_is_held():
    # the setup guide is held by a window until Monday: the 3 days count from Monday's send
    text = TRIAL.replace('enroll on trial.started\n', 'enroll on trial.started\nsend only weekdays 09:00-17:00\n')
    d = Driver(journey(text))
    d.send("trial.started", "2026-03-07T08:00:00Z")  # Saturday, UTC
    d.tick("2026-03-12T12:00:00Z")
    assert ("setup-guide", "2026-03-09T09:00:00Z") in _sent(d)
    assert ("onboarding", "nudge", at("2026-03-12T09:00:00Z")) in d.stages()


# ---- months ----------------------------------------------------------------------------------
@pytest.mark.parametrize("written, weeks", [("after 2 months", "9 weeks"), ("after 1 year", "52 weeks")])
def test_months_and_years_are_refused_with_weeks_suggested(written, weeks):
    loaded = load_text(f'journey "m"\nstage a\n  initial\n  send email "x" {written}\n  on go -> b\nstage b\n  final\n')
    assert not loaded.ok
    [diagnostic] = [d for d in loaded.diagnostics if d.code == "C081"]
    text = render_plain(diagnostic, loaded.sources)
    assert weeks in text and "not a fixed length" in text and "Traceback" not in text


# ---- stored records ----------------------------------------------------------------------------
def test_time_fields_round_trip_through_the_record_codec():
    rec = Lead("a", 100)
    rec.zone, rec.enrolled = "Europe/Rome", 90
    rec.dates = (None, (1_800_000_000, 95))
    rec.marks = (None, 120)
    data = json.loads(json.dumps(rec.to_list()))
    # the time object is the last tail field, after `had` and `passed` (docs/engine.md, the record's optional fields)
    assert len(data) == 22 and data[15] is None and data[17] == 90 and data[19:21] == [0, 0]
    assert data[21]["zone"] == "Europe/Rome"
    back = Lead.from_list(data)
    assert back == rec and (back.zone, back.enrolled, back.dates, back.marks) == (rec.zone, 90, rec.dates, rec.marks)


@pytest.mark.parametrize("stored", [
    ["a", 1, 1, 0.0, 1, 0, None, 1, 0, None, None, None, 1, None, 1],               # before `gone`
    ["a", 1, 1, 0.0, 1, 0, None, 1, 0, None, None, None, 1, None, 1, ["old-id"]],   # with `gone`
    ["a", 1, 1, 0.0, 1, 0, None, 1, 0, None, None, None, 1, None, 1, None, 0, 5, "way"],  # with re-entry
    ["a", 1, 1, 0.0, 1, 0, None, 1, 0, None, None, None, 1, None, 1, None, 0, None, None, 3, 1],  # had, passed
])
def test_records_stored_before_time_fields_still_read(stored):
    rec = Lead.from_list(stored)
    assert (rec.zone, rec.dates, rec.marks) == (None, None, None)
    assert rec.to_list() == stored


def test_a_stored_webinar_lead_gets_its_reminders_from_the_store(tmp_path):
    cj = journey(WEBINAR)
    path = tmp_path / "s.db"
    lines = [line("e1", "webinar.registered", "2026-05-10T09:00:00Z", data={"starts_at": START}, lead="ana")]
    run_store(path, [(cj, {"w.journey": WEBINAR})], lines)
    tick_store(path, "2026-05-20T14:55:00Z")
    sent = [(a["content"], a["time"]) for a in outbox(path) if a["kind"] == "send"]
    assert sent == [("confirmation", "2026-05-10T09:00:00Z"), ("reminder-24h", "2026-05-19T15:00:00Z"),
                    ("reminder-1h", "2026-05-20T14:00:00Z"), ("reminder-10m", "2026-05-20T14:50:00Z")]


def test_the_same_date_again_keeps_when_it_became_known():
    # registering twice with the same start does not make the 24 h reminder "past" the second time
    d = Driver(journey(WEBINAR))
    d.send("webinar.registered", "2026-05-10T09:00:00Z", data={"starts_at": START})
    d.send("webinar.registered", "2026-05-19T16:00:00Z", data={"starts_at": START})  # after the 24 h moment
    assert ("reminder-24h", "2026-05-19T15:00:00Z") in _sent(d)
    assert d.rec.dates == ((at(START), at("2026-05-10T09:00:00Z")),)


def test_a_record_without_an_enrollment_time_counts_in_journey_from_its_stage_entry():
    cj = journey(TRIAL)
    d = Driver(cj)
    d.send("trial.started", "2026-03-01T08:00:00Z")
    old = Lead.from_list(d.rec.to_list()[:15])  # as stored before the time fields existed
    assert old.enrolled is None
    d.rec = old
    d.send("app.setup_done", "2026-03-02T08:00:00Z")  # entry into `activated` on the 2nd
    d.tick("2026-03-20T00:00:00Z")
    assert d.stages()[-1] == ("activated", "closing", at("2026-03-12T08:00:00Z"))


def test_a_new_version_keeps_dates_and_marks_by_what_they_are():
    from engine.migrate import carry_over

    old = journey(WEBINAR.replace('  on webinar.attended', '  after 1 day since "confirmation" -> attended\n'
                                  '  on webinar.attended'))
    # the new version reads another date first and watches the content under a new id
    new_text = WEBINAR.replace('send email "confirmation" on entry', 'send email "confirmed" on entry\n'
                               '  send email "early" 1 day after signed_up of lead').replace(
        '  on webinar.attended', '  after 1 day since "confirmed" -> attended\n  on webinar.attended').replace(
        'stage attended\n  final\n', 'stage attended\n  final\n\nmoves\n  content "confirmation" -> "confirmed"\n')
    new = journey(new_text)
    rec, _ = step_event(old, None, "L1", ev("e1", "webinar.registered", "2026-05-10T09:00:00Z",
                                               data={"starts_at": START}))
    assert rec.dates == ((at(START), at("2026-05-10T09:00:00Z")),) and rec.marks == (at("2026-05-10T09:00:00Z"),)
    out = carry_over(old, new, rec, at("2026-05-10T10:00:00Z"))
    assert new.anchors[0] == (None, "signed_up")
    assert out.dates == (None, (at(START), at("2026-05-10T09:00:00Z")))
    assert out.marks == (at("2026-05-10T09:00:00Z"),)


# ---- a send at a date with a condition on the lead (docs/language.md, "Sends at a date" and `if`/`unless`) ----
CONDITIONAL = """journey "webinar, conditional"

enroll on webinar.registered

stage registered
  initial
  send email "reminder-1h" 1 hour before starts_at of webinar.registered unless lead.plan == "pro"
  send email "reminder-10m" 10 minutes before starts_at of webinar.registered if past send now if had demo.requested
  on webinar.attended -> attended

stage attended
  final
"""


@pytest.mark.parametrize("plan, demo, expected", [
    ("free", False, [("reminder-1h", "2026-05-20T14:00:00Z")]),
    ("pro", False, []),
    ("pro", True, [("reminder-10m", "2026-05-20T14:50:00Z")]),
    ("free", True, [("reminder-1h", "2026-05-20T14:00:00Z"), ("reminder-10m", "2026-05-20T14:50:00Z")]),
])
def test_a_send_at_a_date_is_tested_on_the_lead_when_it_would_go(plan, demo, expected):
    d = Driver(journey(CONDITIONAL))
    d.send("webinar.registered", "2026-05-10T09:00:00Z", data={"starts_at": START}, attributes={"plan": plan})
    if demo:
        d.send("demo.requested", "2026-05-11T09:00:00Z")
    d.tick("2026-05-21T00:00:00Z")
    assert _sent(d) == expected


def test_if_past_and_a_send_condition_round_trip_through_the_formatter():
    loaded = load_text(CONDITIONAL, "c.journey")
    assert loaded.ok
    sends = loaded.journey.stages[0].sends
    assert (sends[1].at.past, sends[1].unless, sends[1].condition) == ("send", False, m.Had("demo.requested"))
    assert sends[0].unless and sends[0].at.past == "skip"
    from dsl.formatter import format_journey
    assert format_journey(loaded.journey) == CONDITIONAL
