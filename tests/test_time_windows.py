"""Time zones and send windows (docs/language.md, "Time"; docs/engine.md, "Time zones and send windows").

Every expected instant is written twice: as the lead's wall-clock time, and as
UTC worked out by hand from the zone's published offsets, so a test cannot pass
by agreeing with the engine's own conversion.
"""

from __future__ import annotations

import json
import subprocess
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from engine.events import format_time
from engine.step import step_event

from .engine_helpers import COLTIVA, DAY, HOUR, Driver, at, ev, journey, line

WINDOW = """journey "windowed"
enroll on signup
time zone from tz default "Europe/Rome"
send only every day 09:00-17:00

stage a
  initial
  send email "hello" on entry
  on go -> b

stage b
  final
"""


def _sent(d: Driver) -> list[tuple[str, str]]:
    return [(a.data["content"], format_time(a.time)) for a in d.of("send")]


def _enter(text: str, t: str, tz: str | None = None, tick: str = "2027-01-01T00:00:00Z") -> Driver:
    d = Driver(journey(text))
    d.send("signup", t, attributes={"tz": tz} if tz else None)
    d.tick(tick)
    return d


# ---- DST, both directions, in a zone that has it and one that does not ----------------
@pytest.mark.parametrize("zone, entered, expected", [
    # Europe/Rome springs forward on Sun 2026-03-29 (02:00 CET -> 03:00 CEST): 09:00 is 07:00Z that day,
    ("Europe/Rome", "2026-03-28T20:00:00Z", "2026-03-29T07:00:00Z"),
    # ... and 08:00Z the day before (CET, +01:00),
    ("Europe/Rome", "2026-03-27T20:00:00Z", "2026-03-28T08:00:00Z"),
    # and falls back on Sun 2026-10-25 (03:00 CEST -> 02:00 CET): 09:00 is 08:00Z that day, 07:00Z the day before.
    ("Europe/Rome", "2026-10-24T20:00:00Z", "2026-10-25T08:00:00Z"),
    ("Europe/Rome", "2026-10-23T20:00:00Z", "2026-10-24T07:00:00Z"),
    # Asia/Tokyo has no DST: 09:00 JST is 00:00Z on the same days.
    ("Asia/Tokyo", "2026-03-28T20:00:00Z", "2026-03-29T00:00:00Z"),
    ("Asia/Tokyo", "2026-10-24T20:00:00Z", "2026-10-25T00:00:00Z"),
    # America/New_York springs forward on Sun 2026-03-08 and falls back on Sun 2026-11-01.
    ("America/New_York", "2026-03-08T02:00:00Z", "2026-03-08T13:00:00Z"),
    ("America/New_York", "2026-11-01T02:00:00Z", "2026-11-01T14:00:00Z"),
])
def test_a_window_opens_at_the_local_hour_on_the_days_clocks_change(zone, entered, expected):
    d = _enter(WINDOW, entered, zone)
    assert _sent(d) == [("hello", expected)]
    local = datetime.fromisoformat(expected).astimezone(ZoneInfo(zone))
    assert (local.hour, local.minute) == (9, 0)


def test_a_window_starting_in_the_skipped_hour_opens_right_after_the_gap():
    # 02:00-04:00 in Rome on 2026-03-29: 02:00-03:00 does not exist; the window opens at 03:00 CEST = 01:00Z
    text = WINDOW.replace("09:00-17:00", "02:00-04:00")
    d = _enter(text, "2026-03-28T23:30:00Z")  # 00:30 CET
    assert _sent(d) == [("hello", "2026-03-29T01:00:00Z")]


def test_a_window_starting_in_the_repeated_hour_opens_at_its_first_occurrence():
    # 02:30 happens twice in Rome on 2026-10-25: first at 00:30Z (CEST), again at 01:30Z (CET)
    text = WINDOW.replace("09:00-17:00", "02:30-04:00")
    d = _enter(text, "2026-10-24T23:00:00Z")  # 01:00 CEST
    assert _sent(d) == [("hello", "2026-10-25T00:30:00Z")]


def test_three_zones_get_the_same_send_at_the_same_local_time():
    cj = journey(WINDOW)
    out = {}
    for zone in ("America/New_York", "Europe/Rome", "Asia/Tokyo"):
        d = Driver(cj, lead=zone)
        d.send("signup", "2026-06-10T22:00:00Z", attributes={"tz": zone})
        d.tick("2026-06-20T00:00:00Z")
        [(content, when)] = _sent(d)
        out[zone] = when
        local = datetime.fromisoformat(when).astimezone(ZoneInfo(zone))
        assert (local.hour, local.minute) == (9, 0), (zone, when)
    # by hand: 09:00 EDT (-4) = 13:00Z on the 11th, 09:00 CEST (+2) = 07:00Z on the 11th, 09:00 JST (+9) = 00:00Z
    assert out == {"America/New_York": "2026-06-11T13:00:00Z", "Europe/Rome": "2026-06-11T07:00:00Z",
                   "Asia/Tokyo": "2026-06-11T00:00:00Z"}


def test_a_lead_without_a_zone_or_with_a_bad_one_uses_the_default():
    for attributes in (None, {"tz": "Mars/Olympus"}, {"tz": 42}, {"tz": "../../etc/passwd"}):
        d = Driver(journey(WINDOW))
        d.send("signup", "2026-06-10T22:00:00Z", attributes=attributes)
        d.tick("2026-06-20T00:00:00Z")
        assert _sent(d) == [("hello", "2026-06-11T07:00:00Z")], attributes  # 09:00 in Rome
        assert d.rec.zone is None


def test_a_zone_attribute_sent_before_enrollment_is_kept():
    d = Driver(journey(WINDOW))
    d.send("lead.updated", "2026-06-10T20:00:00Z", attributes={"tz": "Asia/Tokyo"})
    d.send("signup", "2026-06-10T22:00:00Z")
    d.tick("2026-06-20T00:00:00Z")
    assert _sent(d) == [("hello", "2026-06-11T00:00:00Z")]


def test_a_journey_without_time_rules_stores_records_as_before():
    plain = WINDOW.replace('time zone from tz default "Europe/Rome"\n', "").replace(
        "send only every day 09:00-17:00\n", "")
    d = Driver(journey(plain))
    d.send("signup", "2026-06-10T22:00:00Z", attributes={"tz": "Asia/Tokyo"})
    assert len(d.rec.to_list()) == 15
    assert _sent(d) == [("hello", "2026-06-10T22:00:00Z")]


# ---- windows: days, quiet hours, and the order of waiting sends --------------------
BUSINESS = """journey "business"
enroll on signup
time zone "Europe/Rome"
send only weekdays 09:00-17:00
quiet hours 12:30-14:00

stage a
  initial
  send email "one" on entry
  send email "two" after 1 hour
  send email "three" after 2 hours
  on go -> b

stage b
  final
"""


def test_sends_wait_for_monday_and_leave_in_the_order_they_were_due():
    # Fri 2026-06-12 16:30 CEST = 14:30Z: "one" goes at once, "two" (17:30) and "three" (18:30) wait for Monday
    d = _enter(BUSINESS, "2026-06-12T14:30:00Z")
    assert _sent(d) == [("one", "2026-06-12T14:30:00Z"), ("two", "2026-06-15T07:00:00Z"),
                        ("three", "2026-06-15T07:00:00Z")]
    two = d.of("send")[1]
    assert two.data["deferred_from"] == "2026-06-12T15:30:00Z" and two.data["held_by"] == "send window"


def test_quiet_hours_hold_a_send_inside_a_window():
    d = _enter(BUSINESS, "2026-06-10T10:45:00Z")  # Wed 12:45 CEST, inside the quiet hours
    assert _sent(d)[0] == ("one", "2026-06-10T12:00:00Z")  # 14:00 CEST


def test_a_window_crossing_midnight_belongs_to_the_day_it_starts():
    text = BUSINESS.replace("send only weekdays 09:00-17:00\nquiet hours 12:30-14:00\n", "send only fri 22:00-02:00\n")
    # Sat 2026-06-13 00:30 and 01:30 CEST are still Friday's window; 02:30 waits for the next Friday 22:00
    d = _enter(text, "2026-06-12T22:30:00Z")
    assert _sent(d) == [("one", "2026-06-12T22:30:00Z"), ("two", "2026-06-12T23:30:00Z"),
                        ("three", "2026-06-19T20:00:00Z")]


def test_quiet_hours_alone_on_weekends():
    text = BUSINESS.replace("send only weekdays 09:00-17:00\nquiet hours 12:30-14:00\n", "quiet hours weekends\n")
    d = _enter(text, "2026-06-13T10:00:00Z")  # Saturday
    assert {when for _, when in _sent(d)} == {"2026-06-14T22:00:00Z"}  # Mon 00:00 CEST


# ---- windows composed with the frequency cap --------------------------------------------
CAPPED = """journey "capped window"
enroll on signup
time zone "Europe/Rome"
at most 1 message per 1 day
send only weekdays 09:00-17:00

stage a
  initial
  send email "one" on entry
  send email "two" on entry
  send email "three" on entry
  on go -> b

stage b
  final
"""


def test_a_window_composed_with_a_cap_defers_in_order_and_drops_nothing():
    # Fri 16:30 CEST (14:30Z): "one" now; the cap holds "two" to Sat 16:30, the window to Mon 09:00;
    # then the cap holds "three" to Tue 09:00 (a day after "two"), which the window allows.
    d = _enter(CAPPED, "2026-06-12T14:30:00Z")
    assert _sent(d) == [("one", "2026-06-12T14:30:00Z"), ("two", "2026-06-15T07:00:00Z"),
                        ("three", "2026-06-16T07:00:00Z")]
    sends = d.of("send")
    assert sends[1].data["held_by"] == "frequency cap and send window"
    assert sends[2].data["deferred_from"] == "2026-06-12T14:30:00Z"
    assert "held_by" not in sends[2].data or sends[2].data["held_by"] == "frequency cap"


def test_a_cap_release_inside_the_window_is_not_moved():
    d = _enter(CAPPED, "2026-06-10T08:00:00Z")  # Wed 10:00 CEST
    assert _sent(d) == [("one", "2026-06-10T08:00:00Z"), ("two", "2026-06-11T08:00:00Z"),
                        ("three", "2026-06-12T08:00:00Z")]
    assert all("held_by" not in a.data for a in d.of("send"))


def test_a_send_waiting_for_the_window_is_cancelled_when_the_lead_leaves():
    d = Driver(journey(BUSINESS))
    d.send("signup", "2026-06-12T14:30:00Z")
    d.send("go", "2026-06-13T10:00:00Z")
    d.tick("2026-06-20T00:00:00Z")
    assert [c for c, _ in _sent(d)] == ["one"]


# ---- explain says why a send waited ------------------------------------------------------
def test_the_trace_says_the_window_held_a_send_and_until_when():
    cj = journey(BUSINESS)
    trace: list = []
    step_event(cj, None, "L1", ev("e1", "signup", "2026-06-13T10:00:00Z"), trace)  # Saturday
    notes = [n for entry in trace for n in entry["notes"]]
    held = [n for n in notes if n.startswith("deferred by the send window")]
    assert held and "waits until Mon 2026-06-15 09:00 Europe/Rome" in held[0]
    assert "send only weekdays 09:00-17:00" in held[0]


def test_coltiva_explain_says_why_a_send_waited(tmp_path):
    (tmp_path / "j.journey").write_text(BUSINESS, encoding="utf-8")
    (tmp_path / "e.jsonl").write_text(line("e1", "signup", "2026-06-13T10:00:00Z", lead="ana") + "\n")
    env = {"COLUMNS": "250", "NO_COLOR": "1", "PATH": "/usr/bin:/bin"}

    def run(*args):
        done = subprocess.run([str(COLTIVA), *args], cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout

    run("run", "j.journey", "--events", "e.jsonl", "--db", "s.db")
    run("tick", "--db", "s.db", "--now", "2026-06-16T00:00:00Z")
    [explanation] = json.loads(run("explain", "ana", "--db", "s.db", "--format", "json"))
    assert explanation["consistent"] is True
    notes = [n for s in explanation["steps"] for n in s["notes"]]
    assert any("deferred by the send window" in n and "Mon 2026-06-15 09:00 Europe/Rome" in n for n in notes)
    assert any("sent late: the send window held it since 2026-06-13T10:00:00Z" in n for n in notes)
    text = " ".join(run("explain", "ana", "--db", "s.db").split())
    assert "deferred by the send window" in text


def _open_by_wall_clock(t: int, tz: ZoneInfo) -> bool:
    local = datetime.fromtimestamp(t, tz)
    return local.weekday() < 5 and 9 * 60 <= local.hour * 60 + local.minute < 17 * 60


def test_every_send_leaves_at_the_first_open_local_minute_over_a_year_of_entries():
    """A year of entries every 7 hours in Rome and New York: the send goes at once if the wall clock is
    inside weekdays 09:00-17:00, else at the next 09:00 of a weekday, with no open minute skipped."""
    cj = journey(BUSINESS.replace("quiet hours 12:30-14:00\n", "").replace('time zone "Europe/Rome"',
                                                                          'time zone from tz'))
    start = at("2026-01-01T00:00:00Z")
    for zone in ("Europe/Rome", "America/New_York"):
        tz = ZoneInfo(zone)
        for n in range(0, 365 * 24, 7):
            t = start + n * HOUR + 17 * 60
            rec, actions = step_event(cj, None, "L", ev(f"e{n}", "signup", t, attributes={"tz": zone}))
            sent = [a for a in actions if a.kind == "send"]
            when = sent[0].time if sent else rec.due
            if _open_by_wall_clock(t, tz):
                assert when == t, (zone, format_time(t))
                continue
            local = datetime.fromtimestamp(when, tz)
            assert _open_by_wall_clock(when, tz) and (local.hour, local.minute) == (9, 0), \
                (zone, format_time(t), format_time(when))
            assert not any(_open_by_wall_clock(x, tz) for x in range(t, when, 15 * 60)), (zone, format_time(t))


# ---- docs/language.md: the time examples are there, and the full one runs as documented -------------
def _doc_blocks() -> list[str]:
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parent.parent / "docs" / "language.md").read_text(encoding="utf-8")
    return [m.group(1) for m in re.finditer(r"^```coltiva[^\n]*\n(.*?)^```\s*$", text, re.M | re.S)]


def test_the_language_page_shows_every_time_construct():
    examples = "\n".join(_doc_blocks())
    for construct in ("time zone from timezone default", "send only weekdays", "quiet hours 12:30-14:00",
                      "24 hours before starts_at of webinar.registered", "of lead", "if past send now",
                      "in journey ->", 'since "setup-guide" ->', "2 hours after starts_at"):
        assert construct in examples, construct


def test_the_business_hours_example_of_the_language_page_runs_as_it_says():
    [text] = [b for b in _doc_blocks() if 'journey "Trial, in business hours"' in b]
    cj = journey(text)
    for zone, expected in (("Asia/Tokyo", "2026-06-15T01:00:00Z"), ("Europe/Rome", "2026-06-15T08:00:00Z"),
                           (None, "2026-06-15T08:00:00Z")):  # Monday 10:00 local; Rome is the default
        d = Driver(cj, lead=str(zone))
        d.send("trial.started", "2026-06-13T12:00:00Z", attributes={"timezone": zone} if zone else None)
        d.tick("2026-06-16T00:00:00Z")
        assert _sent(d)[0] == ("welcome", expected), zone


# ---- the window and the cap per lead across journeys (docs/engine.md, "Time zones and send windows") ----
LEAD_RULES = "at most 1 message per 1 day across journeys\n"
PLAIN = """journey "nurture"
include "lead.coltiva"
enroll on form.submitted
stage s
  initial
  send email "n-welcome" on entry
  on demo.requested -> done
stage done
  final
"""
WINDOWED = """journey "onboarding"
include "lead.coltiva"
enroll on form.submitted
send only weekdays 09:00-17:00
stage s
  initial
  send email "o-welcome" on entry
  on demo.requested -> done
stage done
  final
"""


def _lead_wide_sends(enrolled_at: int, windowed: str = WINDOWED) -> list[tuple]:
    """The sends of both journeys for one lead enrolled in both at `enrolled_at`, ticked two days on."""
    from dsl.loader import load_sources
    from engine.compiler import compile_journey, lead_rules
    from engine.step import advance_lead, step_lead

    journeys = []
    for name, text in (("nurture", PLAIN), ("onboarding", windowed)):
        loaded = load_sources({f"{name}.journey": text, "lead.coltiva": LEAD_RULES})
        assert loaded.ok, [str(d) for d in loaded.diagnostics]
        journeys.append(compile_journey(loaded.journey, loaded.diagnostics))
    rules = lead_rules(journeys)
    done = step_lead(journeys, rules, {}, None, "L1", ev("e1", "form.submitted", enrolled_at))
    later = advance_lead(journeys, rules, done.records, done.wide, "L1", enrolled_at + 2 * DAY)
    return [(a.journey, a.data["content"], format_time(a.time), a.data.get("deferred_from"), a.data.get("held_by"))
            for a in done.actions + later.actions if a.kind == "send"]


def test_a_send_held_by_the_lead_wide_cap_waits_for_the_window_too():
    """Thu 2026-01-01 08:00 UTC: nurture sends; the lead-wide cap frees onboarding's send at Fri 08:00, when its
    window (weekdays 09:00-17:00, UTC) is closed: it goes at Fri 09:00, the first open instant after both."""
    thu_8 = at("2026-01-01T08:00:00Z")
    assert _lead_wide_sends(thu_8) == [
        ("nurture", "n-welcome", "2026-01-01T08:00:00Z", None, None),
        ("onboarding", "o-welcome", "2026-01-02T09:00:00Z", "2026-01-01T08:00:00Z", "frequency cap and send window"),
    ]


def test_a_send_the_lead_wide_cap_frees_inside_the_window_goes_then():
    """Enrolled Thu 10:00 UTC: the cap frees Fri 10:00, inside the window; the window held nothing."""
    thu_10 = at("2026-01-01T10:00:00Z")
    assert _lead_wide_sends(thu_10) == [
        ("nurture", "n-welcome", "2026-01-01T10:00:00Z", None, None),
        ("onboarding", "o-welcome", "2026-01-02T10:00:00Z", "2026-01-01T10:00:00Z", None),
    ]
