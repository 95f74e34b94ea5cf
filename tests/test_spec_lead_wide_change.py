"""A change of the lead-wide rules while leads are in flight, and late events, through the real store, plan and
apply, Runner and `coltiva explain` (docs/engine.md, *One lead across journeys*, *Time*, *Explain*, *Replay
across a switch*)."""

from __future__ import annotations

import json
import subprocess

import pytest

from engine.explain import explain_lead
from engine.plan import apply_plan, make_plan
from engine.runner import Runner
from engine.stores import open_store

from .engine_helpers import COLTIVA, DAY, HOUR, T0, iso, line
from .test_lead_wide import compiled, run

BODY = '''enroll on signup
stage s
  initial
  send email "{p}-hello" on entry
  send email "{p}-later" after 1 day
  on demo -> done
stage done
  final
'''
CAP = "at most 1 message per 2 days across journeys\n"


def _sends(actions):
    return [(a["journey"], a["content"], a["time"], a.get("deferred_from")) for a in actions if a["kind"] == "send"]


@pytest.fixture(params=["migrate", "drain"])
def capped_later(tmp_path, request):
    """Journeys j and k without lead-wide rules; a lead in both gets both hellos at T0; at T0+1h a new version of
    j adds a cap per lead across journeys (plan, then apply; with `drain` the lead stays on j's first version,
    and "a lead on an older version of a journey obeys them too"); a tick runs to T0+10d."""
    db = tmp_path / "s.db"
    j2 = compiled("j", CAP + BODY.format(p="j"), None)
    run(db, [compiled("j", BODY.format(p="j"), None), compiled("k", BODY.format(p="k"), None)],
        [line("1", "signup", T0)])
    with open_store(db) as store:
        shown = make_plan(store, j2[0], request.param, T0 + HOUR)
        apply_plan(store, j2[0], j2[1], request.param, shown.hash, T0 + HOUR)
        versions = {journey: version for journey, _, version, *_ in store.dump()["leads"]}
    assert (versions["j"] == j2[0].version) is (request.param == "migrate")
    with open_store(db) as store:
        Runner(store, store.journeys()).tick(T0 + 10 * DAY)
    return db


def test_a_new_lead_wide_cap_applies_from_the_next_step_and_earlier_sends_do_not_count(capped_later):
    """"A change of them (a new cap ...) applies to a lead from its next step"; "a lead gets its lead-wide record
    at its first step under lead-wide rules ... (its earlier sends and points are not counted)"; a journey that
    declares no lead-wide rule (k) obeys them all the same."""
    with open_store(capped_later) as store:
        actions = [a for _, a in store.actions()]
        wide = store.dump()["lead_wide"]
    assert _sends(actions) == [
        ("j", "j-hello", iso(T0), None), ("k", "k-hello", iso(T0), None),  # before the cap existed
        ("j", "j-later", iso(T0 + DAY), None),  # the hellos are not counted: room for one at T0+1d, j first
        ("k", "k-later", iso(T0 + 3 * DAY), iso(T0 + DAY)),
    ]
    assert [lead for lead, _ in wide] == ["L1"]


@pytest.mark.xfail(strict=True, reason="engine bug: explain replays the whole history under the lead-wide rules "
                                       "that run now (engine.explain.explain_lead -> replay_together with "
                                       "lead_rules(store.journeys())), not under those in force at each step: "
                                       "after a switch that adds a cap, its story is false and it warns that "
                                       "the store 'may have been edited by hand'")
def test_explain_replays_a_lead_across_a_switch_that_added_a_lead_wide_cap(capped_later):
    """"It also checks that the replay reproduces the stored record"; "every record is reproduced across any
    number of switches"."""
    with open_store(capped_later) as store:
        explained = explain_lead(store, "L1")
    assert sorted(e.journey for e in explained) == ["j", "k"]
    assert all(e.consistent for e in explained)


# -- late events: "applied at the lead's clock, in arrival order, and `explain` says so" ---------------------

LATE = '''journey "late"
scoring
  x +5
stage a
  initial
  send email "hi" on entry
  on go -> b
stage b
  final
'''


@pytest.mark.parametrize("shared", [None, CAP])
def test_explain_says_an_event_was_late_and_the_time_it_was_applied(tmp_path, shared):
    """Alone, and under lead-wide rules (the lead's one clock)."""
    if shared is None:
        (tmp_path / "late.journey").write_text(LATE)
    else:
        (tmp_path / "late.journey").write_text(LATE.replace('journey "late"\n', 'journey "late"\n' + shared))
    (tmp_path / "events.jsonl").write_text("\n".join([
        line("e1", "x", T0 + 5 * DAY), line("e2", "go", T0 + DAY)]) + "\n")
    db = tmp_path / "s.db"
    subprocess.run([COLTIVA, "run", tmp_path / "late.journey", "--events", tmp_path / "events.jsonl", "--db", db],
                   check=True, capture_output=True)
    shown = subprocess.run([COLTIVA, "explain", "L1", "--db", db], check=True, capture_output=True, text=True)
    assert "late by 4 d: applied at the lead's clock (2026-01-06T00:00:00Z)" in shown.stdout
    assert "warning" not in shown.stdout
    steps = json.loads(subprocess.run([COLTIVA, "explain", "L1", "--db", db, "--format", "json"], check=True,
                                      capture_output=True, text=True).stdout)
    [moved] = [s for j in steps for s in j["steps"] if "late by 4 d" in " ".join(s.get("notes", []))]
    assert moved["time"] == iso(T0 + 5 * DAY)


# -- plan: "the scheduled sends ... cancelled, added or re-timed, with the earliest instant of each" ----------

LATER = '''enroll on signup
{cap}
stage s
  initial
  send email "{p}-hello" on entry
  send email "{p}-later" after {delay}
  on demo -> done
stage done
  final
'''


def _plan_then_apply(tmp_path, shared, own_cap, later="3 days"):
    """j and k, each sending a hello at once and a later one an hour after; k's later one becomes 3 days."""
    db = tmp_path / "s.db"
    k = {d: compiled("k", LATER.format(p="k", delay=d, cap=own_cap), shared) for d in ("1 hour", later)}
    run(db, [compiled("j", LATER.format(p="j", delay="1 hour", cap=own_cap), shared), k["1 hour"]],
        [line("1", "signup", T0)])
    with open_store(db) as store:
        shown = make_plan(store, k[later][0], "migrate", T0 + HOUR // 2)
        apply_plan(store, k[later][0], k[later][1], "migrate", shown.hash, T0 + HOUR // 2)
    with open_store(db) as store:
        Runner(store, store.journeys()).tick(T0 + 20 * DAY)
        sent = {a["content"]: a["time"] for _, a in store.actions() if a["kind"] == "send"}
    return {s.content: iso(s.earliest) for s in shown.retimed}, sent


@pytest.mark.parametrize("cap, retimed_to, sent_at", [
    ("at most 1 message per 2 days", T0 + 3 * DAY, T0 + 3 * DAY),
    ("at most 1 message per 5 days", None, T0 + 5 * DAY),  # the cap holds it to T0+5d in both versions
])
def test_the_plan_says_when_a_re_timed_send_goes_under_the_journeys_own_cap(tmp_path, cap, retimed_to, sent_at):
    retimed, sent = _plan_then_apply(tmp_path, None, cap)
    assert retimed == ({} if retimed_to is None else {"k-later": iso(retimed_to)})
    assert sent["k-later"] == iso(sent_at)


@pytest.mark.parametrize("later, retimed_to, sent_at", [
    # j-hello T0, k-hello T0+2d, j-later T0+4d, then k-later T0+6d, meant 1 hour or 3 days after entry alike:
    # the cap across journeys decides, so the change re-times nothing (the plan said T0+3d before it
    # stepped the lead's journeys forward)
    ("3 days", None, T0 + 6 * DAY),
    ("10 days", T0 + 10 * DAY, T0 + 10 * DAY),
])
def test_the_plan_says_when_a_re_timed_send_goes_under_the_lead_wide_cap(tmp_path, later, retimed_to, sent_at):
    """Found by the spec audit: the plan derived a send's instant from its own journey's caps and windows only."""
    retimed, sent = _plan_then_apply(tmp_path, CAP, "", later)
    assert sent["k-later"] == iso(sent_at)
    assert retimed == ({} if retimed_to is None else {"k-later": iso(retimed_to)})
