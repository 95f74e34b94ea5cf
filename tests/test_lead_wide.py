"""One lead across journeys (docs/language.md, "One lead across journeys"; docs/engine.md): the lead score,
the cap per lead across journeys, priorities. One test per rule, through the real runner on real stores."""

from __future__ import annotations

import json

import pytest

from dsl.errors import JourneyError
from dsl.loader import load_sources, load_text
from engine.compiler import compile_journey, lead_rules
from engine.explain import explain_lead
from engine.runner import Runner
from engine.step import advance_lead, step_lead
from engine.stores import open_store

from .engine_helpers import DAY, HOUR, T0, ev, iso, line

#: The shared file every journey of these tests includes: one cap per lead, one lead score.
SHARED = """at most 1 message per 1 day across journeys

lead scoring
  email.clicked +5
  page.visited where path starts with "/pricing" +15
  decay half-life 10 days
"""


def compiled(name: str, body: str, shared: str | None = SHARED):
    """A journey named `name` (its file includes the shared lead-wide rules), with its sources."""
    head = f'journey "{name}"\n' + ('include "lead.coltiva"\n' if shared is not None else "")
    sources = {f"{name}.journey": head + body}
    if shared is not None:
        sources["lead.coltiva"] = shared
    loaded = load_sources(sources)
    assert loaded.ok, [str(d) for d in loaded.diagnostics]
    return compile_journey(loaded.journey, loaded.diagnostics), loaded.sources


#: Each journey says "at most 1 per day" for itself, as in the issue.
WELCOME = """enroll on form.submitted
at most 1 message per 1 day
{priority}
stage s
  initial
  send email "{content}" on entry
  on demo.requested -> done
stage done
  final
"""


def welcome(name: str, content: str, priority: int | None = None, shared: str | None = SHARED):
    return compiled(name, WELCOME.format(content=content, priority="" if priority is None else
                                         f"priority {priority}"), shared)


def run(db, journeys, lines, tick=None, batch=5000):
    with open_store(db) as store:
        for cj, sources in journeys:
            store.register(cj, sources)
        runner = Runner(store, [cj for cj, _ in journeys], batch_size=batch)
        runner.run_lines(lines, "events.jsonl")
        if tick is not None:
            runner.tick(tick)
        return [a for _, a in store.actions()], store.dump()


def sends(actions):
    return [(a["journey"], a["content"], a["time"], a.get("deferred_from")) for a in actions if a["kind"] == "send"]


# -- the cap per lead across journeys ---------------------------------------------------------------

def test_two_journeys_in_the_same_second_send_one_message_and_defer_the_other(tmp_path):
    """The issue's case: two journeys each "at most 1 per day", one lead enrolled in both in the same second."""
    journeys = [welcome("nurture", "n-welcome"), welcome("onboarding", "o-welcome")]
    actions, _ = run(tmp_path / "s.db", journeys, [line("e1", "form.submitted", T0)], tick=T0 + 3 * DAY)
    assert sends(actions) == [
        ("nurture", "n-welcome", iso(T0), None),  # equal priorities: the name decides
        ("onboarding", "o-welcome", iso(T0 + DAY), iso(T0)),  # deferred one day, never dropped
    ]


def test_without_the_lead_wide_cap_each_journey_caps_only_itself(tmp_path):
    """The contrast: journey caps alone let both journeys send in the same second (as documented)."""
    journeys = [welcome("nurture", "n-welcome", shared=None), welcome("onboarding", "o-welcome", shared=None)]
    actions, dumped = run(tmp_path / "s.db", journeys, [line("e1", "form.submitted", T0)])
    assert [(j, c, t) for j, c, t, _ in sends(actions)] == [("nurture", "n-welcome", iso(T0)),
                                                            ("onboarding", "o-welcome", iso(T0))]
    assert dumped["lead_wide"] == []  # no lead-wide rules: no lead-wide record


def test_the_deferred_send_is_due_when_the_cap_allows_it(tmp_path):
    """Timers stay derived: the held send's record is due exactly when the lead-wide window frees."""
    journeys = [welcome("nurture", "n-welcome"), welcome("onboarding", "o-welcome")]
    _, dumped = run(tmp_path / "s.db", journeys, [line("e1", "form.submitted", T0)])
    due = {journey: d for journey, _, _, _, d, _ in dumped["leads"]}
    assert due == {"nurture": None, "onboarding": T0 + DAY}
    actions, _ = run(tmp_path / "s.db", journeys, [], tick=T0 + DAY - 1)
    assert len(sends(actions)) == 1  # not a second early
    actions, _ = run(tmp_path / "s.db", journeys, [], tick=T0 + DAY)
    assert sends(actions)[1][:3] == ("onboarding", "o-welcome", iso(T0 + DAY))


def test_a_send_of_a_later_journey_moves_the_due_time_of_one_that_reacted_before_it(tmp_path):
    """The stored due time is the next timer exactly, also when a lower-priority journey's send fills the
    lead-wide cap after a higher one reacted to the same event: the higher one's send waits for the cap."""
    waits = """enroll on form.submitted
priority 5
stage s
  initial
  send email "a-news" after 1 hour
  on demo.requested -> done
stage done
  final
"""
    sends_now = """enroll on webinar.attended
stage s
  initial
  send email "b-welcome" on entry
  on demo.requested -> done
stage done
  final
"""
    journeys = [compiled("ahigh", waits), compiled("blow", sends_now)]
    _, dumped = run(tmp_path / "s.db", journeys, [line("e1", "form.submitted", T0),
                                                  line("e2", "webinar.attended", T0 + 600)])
    due = {journey: d for journey, _, _, _, d, _ in dumped["leads"]}
    assert due == {"ahigh": T0 + 600 + DAY, "blow": None}  # not T0 + 1 hour: that send is held by then


def test_higher_priority_sends_first_whatever_the_names_and_the_order_given(tmp_path):
    for n, order in enumerate([(0, 1), (1, 0)]):
        pair = [welcome("aaa", "a-welcome", priority=1), welcome("zzz", "z-welcome", priority=5)]
        actions, _ = run(tmp_path / f"s{n}.db", [pair[i] for i in order], [line("e1", "form.submitted", T0)],
                         tick=T0 + 3 * DAY)
        assert [(j, t) for j, _, t, _ in sends(actions)] == [("zzz", iso(T0)), ("aaa", iso(T0 + DAY))]


def test_at_one_release_the_higher_priority_waiting_send_goes_first(tmp_path):
    """Two sends held by the cap fall due at the same instant: priority decides, the other waits again."""
    later = """enroll on form.submitted
{priority}
stage s
  initial
  send email "{content}" after 1 hour
  on demo.requested -> done
stage done
  final
"""
    journeys = [welcome("first", "f-welcome", priority=9),
                compiled("alow", later.format(priority="", content="low-news")),
                compiled("zhigh", later.format(priority="priority 3", content="high-news"))]
    actions, _ = run(tmp_path / "s.db", journeys, [line("e1", "form.submitted", T0)], tick=T0 + 5 * DAY)
    assert [(j, t, d) for j, _, t, d in sends(actions)] == [
        ("first", iso(T0), None),
        ("zhigh", iso(T0 + DAY), iso(T0 + HOUR)),
        ("alow", iso(T0 + 2 * DAY), iso(T0 + HOUR)),
    ]


def test_a_held_send_is_cancelled_with_its_stage_not_sent_late(tmp_path):
    journeys = [welcome("nurture", "n-welcome"), welcome("onboarding", "o-welcome")]
    actions, dumped = run(tmp_path / "s.db", journeys,
                          [line("e1", "form.submitted", T0), line("e2", "demo.requested", T0 + HOUR)],
                          tick=T0 + 3 * DAY)
    assert [j for j, _, _, _ in sends(actions)] == ["nurture"]
    assert {journey: state for journey, _, _, state, _, _ in dumped["leads"]} == {"nurture": "done",
                                                                                "onboarding": "done"}


def test_explain_says_which_journeys_send_waited_and_why(tmp_path):
    journeys = [welcome("nurture", "n-welcome"), welcome("onboarding", "o-welcome")]
    run(tmp_path / "s.db", journeys, [line("e1", "form.submitted", T0)], tick=T0 + 3 * DAY)
    with open_store(tmp_path / "s.db") as store:
        explained = {e.journey: e for e in explain_lead(store, "L1")}
    assert all(e.consistent for e in explained.values())
    notes = [n for s in explained["onboarding"].steps for n in s["notes"]]
    waited = [n for n in notes if n.startswith("deferred by the lead-wide cap")]
    assert len(waited) == 1
    assert "at most 1 message per 1 day across journeys" in waited[0]
    assert f"nurture at {iso(T0)}" in waited[0] and "onboarding's email 'o-welcome' waits" in waited[0]
    assert not any("deferred" in n for s in explained["nurture"].steps for n in s["notes"])


def test_a_late_event_is_applied_at_the_leads_one_clock(tmp_path):
    """Under lead-wide rules the lead has one clock: a journey enrolling on a late event enrolls at that clock."""
    gated = compiled("gated", """enroll on webinar.attended
stage s
  initial
  send email "g-welcome" on entry
  on demo.requested -> done
stage done
  final
""")
    journeys = [welcome("nurture", "n-welcome"), gated]
    actions, _ = run(tmp_path / "s.db", journeys,
                     [line("e1", "form.submitted", T0 + DAY), line("e2", "webinar.attended", T0)],
                     tick=T0 + 5 * DAY)
    assert [(j, t) for j, _, t, _ in sends(actions)] == [("nurture", iso(T0 + DAY)), ("gated", iso(T0 + 2 * DAY))]
    stages = [a for a in actions if a["kind"] == "stage" and a["journey"] == "gated"]
    assert stages[0]["time"] == iso(T0 + DAY)


def test_an_event_that_only_scores_the_lead_moves_its_clock(tmp_path):
    """docs/engine.md: the lead's clock is the latest instant any journey, *or its lead score*, reached: an event
    that enrolls the lead nowhere and only gives lead-score points moves it, so a later-arriving older event
    enrolls the lead at that instant."""
    journeys = [welcome("nurture", "n-welcome")]
    actions, _ = run(tmp_path / "s.db", journeys,
                     [line("e0", "email.clicked", T0), line("e1", "email.clicked", T0 + DAY),
                      line("e2", "form.submitted", T0 + HOUR)])
    stages = [a for a in actions if a["kind"] == "stage"]
    assert [a["time"] for a in stages] == [iso(T0 + DAY)]
    assert [(j, t) for j, _, t, _ in sends(actions)] == [("nurture", iso(T0 + DAY))]


def test_what_an_event_makes_due_at_once_fires_before_the_next_journey_reacts(tmp_path):
    """docs/engine.md *Time*: a send at a date already past (`if past send now`) fires right after its journey's
    reaction, before the next journey by priority reacts: so it takes the lead-wide cap's room first."""
    dated = compiled("dated", """enroll on webinar.registered
priority 10
stage s
  initial
  send email "d-reminder" 10 minutes before starts_at of webinar.registered if past send now
  on demo.requested -> done
stage done
  final
""")
    plain = compiled("plain", """enroll on webinar.registered
stage s
  initial
  send email "p-welcome" on entry
  on demo.requested -> done
stage done
  final
""")
    actions, _ = run(tmp_path / "s.db", [plain, dated],
                     [line("e1", "webinar.registered", T0, {"starts_at": iso(T0 - HOUR)})], tick=T0 + 3 * DAY)
    assert [(j, c, t) for j, c, t, _ in sends(actions)] == [
        ("dated", "d-reminder", iso(T0)), ("plain", "p-welcome", iso(T0 + DAY))]


# -- one lead score ---------------------------------------------------------------------------------

SCORED = """enroll on form.submitted
scoring
  email.clicked +5
stage s
  initial
  when lead score >= 19 -> hot
  when score >= 5 -> warm
  on demo.requested -> done
stage warm
  on demo.requested -> done
stage hot
  on demo.requested -> done
stage done
  final
"""


def test_points_earned_before_enrollment_count_in_the_lead_score_not_in_the_journeys(tmp_path):
    journeys = [compiled("scored", SCORED)]
    lines = [line("e1", "page.visited", T0, data={"path": "/pricing"}),  # +15 before enrollment
             line("e2", "email.clicked", T0 + 1),  # +5 before enrollment: the journey's own score ignores it
             line("e3", "form.submitted", T0 + 2)]
    actions, dumped = run(tmp_path / "s.db", journeys, lines)
    moves = [(a["from"], a["to"]) for a in actions if a["kind"] == "stage"]
    assert moves == [(None, "s"), ("s", "hot")]  # the lead score (~20, decaying) met on enrollment; not `score >= 5`


def test_the_lead_score_counts_each_event_once_however_many_journeys(tmp_path):
    journeys = [compiled("one", SCORED), compiled("two", SCORED.replace("+5", "+1"))]
    run(tmp_path / "s.db", journeys, [line("e1", "email.clicked", T0)])
    with open_store(tmp_path / "s.db") as store:
        wide = store.load_wides(["L1"])["L1"]
    assert wide.score == 5.0 and wide.score_at == T0


def test_the_lead_score_decays_and_a_threshold_crossed_by_decay_fires_on_a_tick(tmp_path):
    cooling = compiled("cooling", """stage s
  initial
  when lead score >= 15 -> hot
stage hot
  when lead score < 5 -> cold
stage cold
  final
""")
    lines = [line("e1", "page.visited", T0, data={"path": "/pricing"})]
    _, dumped = run(tmp_path / "s.db", [cooling], lines)
    (_, _, _, state, due, _), = dumped["leads"]
    # 15 halves every 10 days: below 5 after log2(3) half-lives, ~15.85 days
    assert state == "hot" and T0 + 15 * DAY < due < T0 + 16 * DAY
    actions, _ = run(tmp_path / "s.db", [cooling], [], tick=due)
    assert [(a["to"], a["time"]) for a in actions if a["kind"] == "stage"][-1] == ("cold", iso(due))


# -- the rules are one per run ----------------------------------------------------------------------

def test_journeys_that_declare_different_lead_wide_rules_are_refused():
    one, _ = welcome("one", "a")
    other, _ = welcome("other", "b", shared=SHARED.replace("at most 1 message", "at most 2 messages"))
    with pytest.raises(JourneyError) as refused:
        lead_rules([one, other])
    assert refused.value.diagnostics[0].code == "C113"
    bare, _ = welcome("bare", "c", shared=None)  # a journey declaring nothing takes part
    assert lead_rules([one, bare]).caps == ((1, DAY),)


def test_the_pure_step_is_the_same_whatever_order_the_journeys_come_in():
    journeys = [welcome("b", "b1")[0], welcome("a", "a1")[0], welcome("c", "c1", priority=2)[0]]
    rules = lead_rules(journeys)
    results = []
    for order in (journeys, journeys[::-1], journeys[1:] + journeys[:1]):
        first = step_lead(order, rules, {}, None, "L1", ev("e1", "form.submitted", T0))
        later = advance_lead(order, rules, first.records, first.wide, "L1", T0 + 5 * DAY)
        results.append(([a.to_json() for a in first.actions + later.actions],
                        {n: r.to_list() for n, r in later.records.items()}, later.wide.to_list()))
    assert results[0] == results[1] == results[2]
    assert [a["journey"] for a in results[0][0] if a["kind"] == "send"] == ["c", "a", "b"]


@pytest.mark.parametrize("text, code", [
    ('journey "x"\nstage s\n  initial\n  when lead score >= 5 -> t\nstage t\n  final\n', "C110"),
    ('journey "x"\npriority 1\npriority 2\nstage s\n  initial\n  final\n', "C111"),
    ('journey "x"\nlead scoring\n  a +1\n  decay half-life 1 day\n  decay half-life 2 days\n'
     'stage s\n  initial\n  final\n', "C111"),
    ('journey "x"\nlead scoring\n  a +1 at most 1 per 1 day\n  decay half-life 1 day\n'
     'stage s\n  initial\n  when lead score >= 500 -> t\nstage t\n  final\n', "C112"),
    ('journey "x"\nat most 0 messages per 1 day across journeys\nstage s\n  initial\n  final\n', "C056"),
])
def test_checks_of_lead_wide_rules(text, code):
    loaded = load_text(text)
    assert code in [d.code for d in loaded.diagnostics], [str(d) for d in loaded.diagnostics]


# -- older stores -----------------------------------------------------------------------------------

def test_older_stores_open_and_gain_the_lead_wide_table(tmp_path):
    """Format 1 and 3 (the fixtures) and format 4 stores migrate to format 5 when a writer opens them;
    nothing else of theirs moves."""
    import shutil
    import sqlite3
    from pathlib import Path

    from engine.store import SCHEMA_VERSION, Store

    paths = []
    for n in (1, 3):
        paths.append(tmp_path / f"v{n}.db")
        shutil.copy(Path(__file__).parent / "fixtures" / f"store_v{n}.db", paths[-1])
    v4 = tmp_path / "v4.db"
    run(v4, [welcome("nurture", "n-welcome", shared=None)], [line("e1", "form.submitted", T0)])
    con = sqlite3.connect(v4)
    con.execute("DROP TABLE lead_wide")  # format 4 as it was: the same tables but this one
    con.execute("PRAGMA user_version = 4")
    con.commit()
    con.close()
    paths.append(v4)
    for path in paths:
        con = sqlite3.connect(path)
        leads_before = con.execute("SELECT journey, lead, record FROM leads ORDER BY 1, 2").fetchall()
        con.close()
        with Store(path, read_only=True) as old:  # a reader reads it as it is
            assert old.format < SCHEMA_VERSION and old.load_wides(["L1"]) == {} and old.dump()["lead_wide"] == []
        with Store(path, writer=True) as store:
            assert store.format == SCHEMA_VERSION == 6
            assert store.db.execute("SELECT lead FROM lead_wide").fetchall() == []
            assert store.db.execute("SELECT journey, lead, record FROM leads ORDER BY 1, 2").fetchall() == leads_before
        # and runs on, with lead-wide rules, in place
        journeys = [welcome("nurture2", "n2"), welcome("onboarding2", "o2")]
        actions, dumped = run(path, journeys, [line("m1", "form.submitted", T0 + 400 * DAY, lead="new")],
                              tick=T0 + 402 * DAY)
        assert [(j, t) for j, _, t, _ in sends([a for a in actions if a["lead"] == "new"])] == [
            ("nurture2", iso(T0 + 400 * DAY)), ("onboarding2", iso(T0 + 401 * DAY))]
        assert [lead for lead, _ in dumped["lead_wide"]] == ["new"]


def test_check_and_run_refuse_journeys_that_disagree_on_lead_wide_rules(tmp_path):
    import subprocess

    from .engine_helpers import COLTIVA

    body = 'at most {n} messages per 1 day across journeys\nstage s\n  initial\n  on x -> t\nstage t\n  final\n'
    (tmp_path / "a.journey").write_text('journey "a"\n' + body.format(n=1))
    (tmp_path / "b.journey").write_text('journey "b"\n' + body.format(n=2))
    (tmp_path / "e.jsonl").write_text(line("e1", "x", T0) + "\n")
    checked = subprocess.run([str(COLTIVA), "check", "a.journey", "b.journey"], capture_output=True, text=True,
                             cwd=tmp_path)
    assert checked.returncode == 1 and "C113" in checked.stdout and "Traceback" not in checked.stderr
    alone = subprocess.run([str(COLTIVA), "check", "a.journey"], capture_output=True, text=True, cwd=tmp_path)
    assert alone.returncode == 0, alone.stdout
    ran = subprocess.run([str(COLTIVA), "run", "a.journey", "b.journey", "--events", "e.jsonl", "--db", "s.db"],
                         capture_output=True, text=True, cwd=tmp_path)
    assert ran.returncode == 1 and "declare different lead-wide rules" in ran.stderr
    assert "Traceback" not in ran.stderr


def test_diagrams_label_a_lead_score_threshold_as_such():
    from visualize.text import trigger_event

    loaded = load_text('journey "x"\nlead scoring\n  a +5\nscoring\n  a +5\nstage s\n  initial\n'
                       '  when lead score >= 5 -> t\n  when score >= 5 -> t\nstage t\n  final\n')
    lead, own = loaded.journey.stages[0].triggers
    assert trigger_event(lead) == "lead score ≥ 5" and trigger_event(own) == "score ≥ 5"


def test_a_switch_of_version_reads_the_lead_score_and_explain_replays_it(tmp_path):
    """`coltiva apply` at a switch: the new version's `when lead score` thresholds see the lead's real score."""
    from engine.plan import apply_plan, make_plan

    v1_body = """stage s
  initial
  send email "hello" on entry
  on demo.requested -> done
  on webinar.attended -> cold
stage cold
  on demo.requested -> done
stage done
  final
"""
    v1 = compiled("j", v1_body)
    v2 = compiled("j", v1_body.replace("  on webinar.attended -> cold\n",
                                       "  when lead score < 10 -> cold\n  on webinar.attended -> cold\n", 1))
    hot = [line("e1", "page.visited", T0, data={"path": "/pricing"}),  # lead score 15: stays in `s`
           line("e2", "page.visited", T0, data={"path": "/blog"}, lead="L2")]  # lead score 0: goes cold
    run(tmp_path / "s.db", [v1], hot)
    with open_store(tmp_path / "s.db") as store:
        shown = make_plan(store, v2[0], "migrate", T0 + HOUR)
        apply_plan(store, v2[0], v2[1], "migrate", shown.hash, T0 + HOUR)
        states = {lead: state for _, lead, _, state, _, _ in store.dump()["leads"]}
        explained = [e for lead in ("L1", "L2") for e in explain_lead(store, lead)]
    assert states == {"L1": "s", "L2": "cold"}
    assert explained and all(e.consistent for e in explained)


def test_the_flink_jobs_lead_logic_steps_lead_wide_rules_as_the_runner(tmp_path):
    """engine_flink.logic (what each Flink key runs) and the runner: the same actions and lead-wide record."""
    from engine.events import parse_event
    from engine_flink.logic import LeadState, apply_event, apply_tick

    journeys = [welcome("nurture", "n-welcome"), welcome("onboarding", "o-welcome", priority=1)]
    lines = [line("e1", "form.submitted", T0), line("e2", "email.clicked", T0 + HOUR)]
    actions, dumped = run(tmp_path / "s.db", journeys, lines, tick=T0 + 3 * DAY)
    state = LeadState()
    flink = []
    for text in lines:
        flink += apply_event([cj for cj, _ in journeys], state, parse_event(text)).actions
    flink += apply_tick([cj for cj, _ in journeys], state, "L1", T0 + 3 * DAY).actions
    assert [a.to_json() for a in flink] == actions
    assert LeadState.from_text(state.to_text()) == state
    assert [["L1", state.wide.to_list()]] == [[lead, json.loads(record)] for lead, record in dumped["lead_wide"]]
