"""Issue 12 (items 1, 3, 4, 8): goals, several event types in one trigger, conditions on the lead,
conditional sends, and exit actions that name their rule. One test per construct and per ordering
rule of docs/engine.md (*Goals*, *Conditions on the lead, and had*, *Conditional sends*)."""

from __future__ import annotations

import textwrap

from dsl import load_text
from engine.record import EXITED, WAITING

from .engine_helpers import DAY, T0, Driver, journey


def drive(text: str) -> Driver:
    return Driver(journey(textwrap.dedent(text)))


def codes(text: str) -> list[tuple[str, int]]:
    return [(d.code, d.span.line) for d in load_text(textwrap.dedent(text).lstrip("\n"), "t.journey").diagnostics]


# ---- goals -------------------------------------------------------------------------------------------

GOALS = """
journey "goals"
on demo.requested -> sales
stage a
  initial
  on next -> b
stage b
  on next -> sales
stage sales
  handoff to sales
  on demo.requested -> won
  on deal.lost -> lost
stage won
  final
stage lost
  final
"""


def test_a_goal_moves_a_lead_from_any_stage_and_names_itself():
    for hops in (0, 1):
        d = drive(GOALS)
        d.send("form", T0)
        for n in range(hops):
            d.send("next", T0 + 1 + n)
        before = d.state
        d.send("demo.requested", T0 + 10)
        assert d.state == "sales"
        move = d.of("stage", d.last)[0]
        assert move.data["from"] == before
        assert move.data["rule"] == "goal: on demo.requested -> sales (line 3)"
        assert len(d.of("handoff", d.last)) == 1


def test_a_goal_to_the_lead_own_stage_is_passed_over_and_the_stage_triggers_take_the_event():
    d = drive(GOALS)
    d.send("form", T0)
    d.send("demo.requested", T0 + 1)
    assert d.state == "sales"
    d.send("demo.requested", T0 + 2)  # the goal leads where the lead is: the stage's own trigger fires
    assert d.state == "won"
    assert not d.of("handoff", d.last), "no second arrival, no second handoff"


def test_a_goal_does_not_move_a_lead_in_a_final_stage():
    d = drive(GOALS.replace("  on demo.requested -> won\n", "  on deal.won -> won\n"))
    d.send("form", T0)
    d.send("demo.requested", T0 + 1)
    d.send("deal.lost", T0 + 2)
    assert d.state == "lost"
    assert d.send("demo.requested", T0 + 3) == [] and d.state == "lost"


def test_goals_come_before_the_stage_triggers():
    d = drive("""
        journey "t"
        on x where big == true -> b
        stage a
          initial
          on x -> c
        stage b
          final
        stage c
          final
        """)
    d.send("form", T0)
    d.send("x", T0 + 1, data={"big": True})
    assert d.state == "b"
    d2 = drive(d.cj.text)
    d2.send("form", T0)
    d2.send("x", T0 + 1, data={"big": False})
    assert d2.state == "c"


def test_exit_rules_come_before_goals():
    d = drive("""
        journey "t"
        exit on x where bye == true
        on x -> b
        stage a
          initial
          on y -> b
        stage b
          final
        """)
    d.send("form", T0)
    d.send("x", T0 + 1, data={"bye": True})
    assert d.state == EXITED
    assert d.of("exit")[0].data["rule"] == "an exit rule matched: exit on x where ... (line 3)"


def test_goals_are_tried_in_order_and_the_next_one_fires_when_the_first_is_passed_over():
    text = """
        journey "t"
        on x -> b
        on x -> c
        stage a
          initial
          on y -> b
        stage b
          on y -> c
        stage c
          final
        """
    d = drive(text)
    d.send("form", T0)
    d.send("x", T0 + 1)
    assert d.state == "b"
    d.send("x", T0 + 2)
    assert d.state == "c"
    assert d.of("stage", d.last)[0].data["rule"].startswith("goal: on x -> c")


def test_thresholds_of_the_goal_target_are_tested_after_the_move():
    d = drive("""
        journey "t"
        scoring
          x +50
        on x -> b
        stage a
          initial
          on y -> b
        stage b
          when score >= 40 -> c
        stage c
          final
        """)
    d.send("form", T0)
    d.send("x", T0 + 1)
    assert [s[:2] for s in d.stages()] == [(None, "a"), ("a", "b"), ("b", "c")]


def test_the_enrolling_event_is_tried_against_the_goals_in_the_initial_stage():
    d = drive(GOALS)
    d.send("demo.requested", T0)
    assert [s[:2] for s in d.stages()] == [(None, "a"), ("a", "sales")]


def test_timers_never_try_goals():
    d = drive("""
        journey "t"
        on x -> b
        stage a
          initial
          after 1 day idle -> c
        stage b
          final
        stage c
          final
        """)
    d.send("x", T0)  # enrolls and takes the goal at once
    assert d.state == "b"
    d2 = drive(d.cj.text)
    d2.send("form", T0)
    d2.tick(T0 + 2 * DAY)
    assert d2.state == "c"


def test_the_checker_counts_goals_as_ways_and_reports_the_triggers_they_take():
    text = """
        journey "t"
        on demo.requested -> sales
        stage a
          initial
          on demo.requested -> lost
        stage sales
          on demo.requested -> lost
          on deal.won -> won
        stage won
          final
        stage lost
          final
        """
    found = codes(text)
    # line 5 (in `a`) is taken by the goal; line 7 (in `sales`, the goal's target) is not
    assert ("C044", 5) in found and ("C044", 7) not in found
    assert not any(code in ("C040", "C041") for code, _ in found)  # `sales` is reached by the goal only


def test_a_stage_left_only_by_goals_is_no_dead_end():
    assert codes("""
        journey "t"
        on done -> b
        stage a
          initial
        stage b
          final
        """) == []


# ---- several event types in one trigger ---------------------------------------------------------------

def test_or_takes_either_event_type_in_triggers_goals_exits_and_enrollments():
    text = """
        journey "t"
        enroll on signup or trial.started
        exit on email.unsubscribed or email.complained
        on demo.requested or meeting.booked -> c
        stage a
          initial
          on opened or clicked -> b
        stage b
          on next -> c
        stage c
          final
        """
    for enrolling in ("signup", "trial.started"):
        d = drive(text)
        d.send("other", T0)
        assert d.rec is None
        d.send(enrolling, T0 + 1)
        assert d.state == "a"
    for event in ("opened", "clicked"):
        d = drive(text)
        d.send("signup", T0)
        d.send(event, T0 + 1)
        assert d.state == "b"
    for event in ("demo.requested", "meeting.booked"):
        d = drive(text)
        d.send("signup", T0)
        d.send(event, T0 + 1)
        assert d.state == "c"
    for event in ("email.unsubscribed", "email.complained"):
        d = drive(text)
        d.send("signup", T0)
        d.send(event, T0 + 1)
        assert d.state == EXITED
        assert d.of("exit")[0].data["rule"] == "an exit rule matched: exit on email.unsubscribed or email.complained (line 4)"


# ---- conditions on the lead ---------------------------------------------------------------------------

ENROLL = """
journey "t"
enroll on form.submitted where lead.lifecycle == "lead"
stage a
  initial
  on x where lead.company.size >= 200 -> big
  on x -> small
stage big
  final
stage small
  final
"""


def test_enrollment_reads_the_lead_attributes_kept_while_waiting():
    d = drive(ENROLL)
    d.send("lead.updated", T0, attributes={"lifecycle": "lead"})
    assert d.rec.state == WAITING
    d.send("form.submitted", T0 + 1)
    assert d.state == "a"


def test_enrollment_reads_the_attributes_of_the_enrolling_event_itself():
    d = drive(ENROLL)
    d.send("form.submitted", T0, attributes={"lifecycle": "customer"})
    assert d.rec is None or d.rec.state == WAITING
    d.send("form.submitted", T0 + 1, attributes={"lifecycle": "lead"})
    assert d.state == "a"


def test_the_event_attributes_override_the_kept_ones_for_its_own_conditions():
    d = drive(ENROLL)
    d.send("lead.updated", T0, attributes={"lifecycle": "lead"})
    d.send("form.submitted", T0 + 1, attributes={"lifecycle": "customer"})
    assert d.rec.state == WAITING


def test_a_branch_reads_the_lead_not_the_event_data():
    d = drive(ENROLL)
    d.send("form.submitted", T0, attributes={"lifecycle": "lead", "company": {"size": 500}})
    d.send("x", T0 + 1, data={"lead": {"company": {"size": 1}}})  # the event's data is not the lead
    assert d.state == "big"
    d2 = drive(ENROLL)
    d2.send("form.submitted", T0, attributes={"lifecycle": "lead"})
    d2.send("x", T0 + 1, data={"company.size": 500})
    assert d2.state == "small"


def test_had_is_true_for_an_event_type_the_lead_had_in_this_journey():
    d = drive("""
        journey "t"
        stage a
          initial
          on x where had demo.requested -> b
          on x -> c
        stage b
          final
        stage c
          final
        """)
    d.send("form", T0)
    d.send("demo.requested", T0 + 1)
    d.send("x", T0 + 2)
    assert d.state == "b"
    assert d.rec.had == 1  # one bit: the one type a `had` names


def test_had_counts_the_event_being_applied_and_remembers_only_named_types():
    d = drive("""
        journey "t"
        stage a
          initial
          on demo.requested where had demo.requested -> b
        stage b
          final
        """)
    d.send("form", T0)
    assert d.rec.had == 0
    d.send("demo.requested", T0 + 1)
    assert d.state == "b"


# ---- conditional sends --------------------------------------------------------------------------------

NUDGE = """
journey "t"
stage trial
  initial
  send email "nudge" after 3 days unless had product.activated
  send email "pro-tips" on entry if lead.plan == "pro"
  on back -> other
  after 10 days in stage -> done
stage other
  on again -> trial
stage done
  final
"""


def test_unless_had_passes_a_send_over_for_the_visit():
    d = drive(NUDGE)
    d.send("signup", T0)
    d.send("product.activated", T0 + DAY)
    d.tick(T0 + 4 * DAY)
    assert d.sends() == []
    assert d.rec.passed != 0 and d.rec.sent == 0  # passed over, not marked as sent


def test_unless_sends_when_the_condition_does_not_hold():
    d = drive(NUDGE)
    d.send("signup", T0)
    d.tick(T0 + 4 * DAY)
    assert d.sends() == [("nudge", T0 + 3 * DAY)]


def test_if_on_entry_reads_the_lead_attributes_and_a_later_visit_tests_again():
    d = drive(NUDGE)
    d.send("signup", T0, attributes={"plan": "free"})
    assert d.sends() == []
    d.send("back", T0 + 1)
    d.send("lead.updated", T0 + 2, attributes={"plan": "pro"})
    d.send("again", T0 + 3)
    assert ("pro-tips", T0 + 3) in d.sends()


def test_a_conditional_send_held_by_the_cap_is_tested_again_when_released():
    d = drive("""
        journey "t"
        at most 1 message per 1 day
        stage a
          initial
          send email "first" on entry
          send email "second" on entry unless had stop
          on x -> b
        stage b
          final
        """)
    d.send("go", T0)
    assert d.sends() == [("first", T0)]
    d.send("stop", T0 + 3600)
    d.tick(T0 + 2 * DAY)
    assert d.sends() == [("first", T0)]


# ---- explain ------------------------------------------------------------------------------------------

def test_explain_names_the_goal_the_exit_rule_and_a_send_passed_over():
    from engine.step import advance, step_event

    from .engine_helpers import ev

    cj = journey(textwrap.dedent(NUDGE).replace("journey \"t\"\n", "journey \"t\"\non demo -> done\n"
                                                 "exit on bye\n"))
    trace: list = []
    rec, _ = step_event(cj, None, "L1", ev("1", "signup", T0), trace)
    rec, _ = step_event(cj, rec, "L1", ev("2", "product.activated", T0 + 1), trace)
    rec, _ = advance(cj, rec, "L1", T0 + 4 * DAY, trace)
    rec, _ = step_event(cj, rec, "L1", ev("3", "demo", T0 + 5 * DAY), trace)
    notes = [n for step in trace for n in step["notes"]]
    assert any("not sent: email 'nudge' (unless had product.activated says no" in n for n in notes), notes
    assert "rule fired: goal: on demo -> done (line 3)" in notes
    cj2 = cj
    rec, _ = step_event(cj2, None, "L2", ev("4", "signup", T0, lead="L2"), trace)
    step_event(cj2, rec, "L2", ev("5", "bye", T0 + 1, lead="L2"), trace)
    assert "rule fired: an exit rule matched: exit on bye (line 4)" in [n for s in trace for n in s["notes"]]


# ---- diagrams -----------------------------------------------------------------------------------------

def test_each_goal_is_drawn_once_from_any_stage_and_counts_its_moves_from_every_stage():
    from visualize.diagram import ANY_KEY, build_diagram
    from visualize.dot import render_bytes
    from visualize.overlay import apply_counts

    from .visualize_helpers import svg_root

    model = load_text(textwrap.dedent(GOALS), "t.journey").journey
    diagram = build_diagram(model)
    goal_edges = [e for e in diagram.edges if e.kind == "goal"]
    assert [(e.source, e.target, e.label) for e in goal_edges] == [(ANY_KEY, "s_sales", "goal: on demo.requested")]
    assert not any(e.target == "s_sales" and e.kind == "event" for e in diagram.edges if e.source != "s_b")
    root = svg_root(render_bytes(diagram, "svg"))
    ids = {g.get("id") for g in root.iter("{http://www.w3.org/2000/svg}g")}
    assert "any-stage" in ids
    rule = "goal: on demo.requested -> sales (line 3)"
    counted = apply_counts(diagram, {"sales": 5}, {("a", "sales"): 2, ("b", "sales"): 4},
                           {("a", "sales", rule): 2, ("b", "sales", rule): 3,
                            ("b", "sales", "b: on next -> sales (line 8)"): 1})
    goal = next(e for e in counted.edges if e.kind == "goal")
    assert goal.count == 5
    b_to_sales = next(e for e in counted.edges if e.transition == ("b", "sales"))
    assert b_to_sales.count == 1
    assert counted.node(ANY_KEY).count is None
