"""The docs are the spec, where lead-wide rules meet re-entry, holding loops and priorities: the real Runner on
a real SQLite store, and `explain`'s replay of it (docs/engine.md, *One lead across journeys*, *Re-entry*;
docs/language.md, *One lead across journeys*)."""

from __future__ import annotations

import pytest

from engine.explain import explain_lead
from engine.stores import open_store

from .engine_helpers import DAY, HOUR, T0, iso, line
from .test_lead_wide import compiled, run

#: One message per two days for the lead, whatever the journey.
SHARED = "at most 1 message per 2 days across journeys\n"

ALPHA = '''re-enter every time
enroll on lapsed
priority {priority}
stage a
  initial
  send email "a-hi" on entry every visit
  on renewed -> won
stage won
  final
'''

BETA = '''enroll on signup
priority 2
stage s
  initial
  send email "b-welcome" on entry
  hold after 1 day idle: every 1 day send email "b-news", 2 times, then -> done
  on demo -> done
stage done
  final
'''

LINES = [line("1", "signup", T0), line("2", "lapsed", T0 + HOUR), line("3", "renewed", T0 + 2 * HOUR),
         line("4", "lapsed", T0 + 3 * DAY)]


def _sends(actions):
    return [(a["journey"], a["content"], a["time"], a.get("deferred_from")) for a in actions if a["kind"] == "send"]


def _story(tmp_path, alpha_priority: int):
    db = tmp_path / "s.db"
    actions, _ = run(db, [compiled("alpha", ALPHA.format(priority=alpha_priority), SHARED),
                          compiled("beta", BETA, SHARED)], LINES, tick=T0 + 20 * DAY)
    return db, actions


#: What both stories share, up to the re-entry at T0+3d:
#: - T0: beta sends "b-welcome"; T0+1h: alpha enrolls, its "a-hi" waits for the lead-wide cap (until T0+2d);
#: - T0+2h: "renewed" moves alpha to its final stage: the held "a-hi" is cancelled with the stage, never sent;
#: - every event of the lead is activity in beta too: its loop's stall counts from T0+2h; the first edition,
#:   meant T0+1d+2h, waits for the cap until T0+2d;
#: - T0+3d: "lapsed" re-enters alpha (a new visit: "a-hi" again, `every visit`) and is activity in beta: its
#:   loop starts again from zero, the next edition is meant at T0+4d. The cap frees at T0+4d: both journeys
#:   have a send due at that instant.
BEFORE = [("beta", "b-welcome", iso(T0), None),
          ("beta", "b-news", iso(T0 + 2 * DAY), iso(T0 + DAY + 2 * HOUR))]


def test_at_one_release_the_re_entered_journey_with_the_higher_priority_sends_first(tmp_path):
    db, actions = _story(tmp_path, alpha_priority=5)
    assert _sends(actions) == BEFORE + [
        ("alpha", "a-hi", iso(T0 + 4 * DAY), iso(T0 + 3 * DAY)),
        ("beta", "b-news", iso(T0 + 6 * DAY), iso(T0 + 4 * DAY)),  # restarted loop: edition 1 again
        ("beta", "b-news", iso(T0 + 8 * DAY), iso(T0 + 7 * DAY)),  # the last edition + 1 day, then the cap
    ]
    stages = [(a["journey"], a["from"], a["to"], a["time"], a["rule"]) for a in actions if a["kind"] == "stage"]
    assert ("alpha", "won", "a", iso(T0 + 3 * DAY), "re-entered") in stages
    # one interval after the last edition the loop ends
    assert stages[-1][:4] == ("beta", "s", "done", iso(T0 + 9 * DAY))


def test_at_one_release_the_lower_priority_re_entered_journey_waits_for_the_next_room(tmp_path):
    """"priority only orders what happens at one instant": alpha (priority 0, beta has 2)'s send was meant earlier (T0+3d) than beta's
    edition (T0+4d), but both are due at T0+4d, and beta now goes first."""
    db, actions = _story(tmp_path, alpha_priority=0)
    assert _sends(actions) == BEFORE + [
        ("beta", "b-news", iso(T0 + 4 * DAY), None),
        # at T0+6d both are due again (beta's last edition was meant at T0+5d): beta goes first again
        ("beta", "b-news", iso(T0 + 6 * DAY), iso(T0 + 5 * DAY)),
        ("alpha", "a-hi", iso(T0 + 8 * DAY), iso(T0 + 3 * DAY)),
    ]


@pytest.mark.parametrize("priority", [5, 0])
def test_explain_replays_the_lead_in_both_journeys_to_the_stored_records(tmp_path, priority):
    """engine.md, *Explain*: the replay reproduces the stored record; under lead-wide rules, in all journeys at
    once."""
    db, _ = _story(tmp_path, alpha_priority=priority)
    with open_store(db) as store:
        explained = explain_lead(store, "L1")
    assert sorted(e.journey for e in explained) == ["alpha", "beta"]
    assert all(e.consistent for e in explained)


def test_a_priority_is_a_whole_number_0_or_more_and_a_negative_one_is_refused_with_its_line():
    """language.md: "`priority N` (a whole number, 0 or more; default 0)"."""
    from dsl.loader import load_text
    loaded = load_text('journey "t"\npriority -5\nstage a\n  initial\n  on x -> b\nstage b\n  final\n')
    assert not loaded.ok
    assert [(d.code, d.span.line) for d in loaded.diagnostics] == [("C001", 2)]
    assert load_text('journey "t"\npriority 0\nstage a\n  initial\n  on x -> b\nstage b\n  final\n').ok


def test_a_late_enrolling_event_re_enters_at_the_leads_one_clock_moved_by_another_journey(tmp_path):
    """engine.md, *Re-entry* ("once per D" counted at the time the event is applied) and *One lead across
    journeys* ("a late event is applied at that clock in every journey"): beta's event moved the lead's clock
    to T0+31d, so alpha's late "s" of T0+29d is 31 days after the last entry."""
    alpha = compiled("alpha", "re-enter once per 30 days\nenroll on s\nstage a\n  initial\n  on ok -> b\n"
                              "stage b\n  final\n", SHARED)
    beta = compiled("beta", "enroll on y\nstage s\n  initial\n  on z -> done\nstage done\n  final\n", SHARED)
    actions, _ = run(tmp_path / "s.db", [alpha, beta], [
        line("1", "s", T0), line("2", "ok", T0 + DAY), line("3", "y", T0 + 31 * DAY), line("4", "s", T0 + 29 * DAY)])
    assert [(a["journey"], a["from"], a["to"], a["time"]) for a in actions if a["kind"] == "stage"][-1] == (
        "alpha", "b", "a", iso(T0 + 31 * DAY))
