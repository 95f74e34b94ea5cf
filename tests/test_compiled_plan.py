"""The compiled plan (docs/engine.md, first section; docs/decisions.md, "One transition table"): one table of
transitions that the Machine is built from, each condition evaluated once per step, and a typed trace."""

from __future__ import annotations

import dataclasses
import textwrap

import pytest
from hypothesis import HealthCheck, assume, given, settings

from dsl.model import compares
from engine.compiled import Transition
from engine.compiler import compile_journey
from engine.record import EXITED
from engine.step import TraceStep, advance, step_event

from .engine_helpers import DAY, JOURNEYS, T0, ev, example, journey
from .strategies import journeys, valid_pattern

EVERY_KIND = textwrap.dedent("""
    journey "kinds"
    exit on unsubscribed
    exit on bounced where hard = true
    on demo.requested -> sales
    scoring
      demo.requested +10
    content
      email "hello"
      email "nudge"
    stage new
      initial
      send email "hello" on entry
      on signup where size >= 10 -> sales
      when score >= 50 -> sales
      after 3 days idle -> cold
      after 2 days since "hello" -> cold
      hold after 2 days idle: every 1 day send email "nudge", 2 times, then -> exit
    stage sales
      handoff to sales
      on deal.won -> won
    stage cold
      final
    stage won
      final
    """)


def _machine_rows(cj) -> set[tuple[str, str, str, int]]:
    """(transition id, source, target, number of conditions) of every transition the Machine has."""
    rows = set()
    for name, event in cj.machine.events.items():
        for source, transitions in event.transitions.items():
            for t in transitions:
                rows.add((name, source, t.dest, len(t.conditions)))
    return rows


def _table_rows(cj) -> set[tuple[str, str, str, int]]:
    return {(row.id, source, row.target, 0) for row in cj.transitions for source in row.sources}


def test_the_table_names_every_transition_once_with_its_kind_and_rule():
    cj = journey(EVERY_KIND)
    table = [(t.id, t.kind, t.sources, t.target, t.line) for t in cj.transitions]
    assert table == [
        ("new#0", "event", ("new",), "sales", 14),
        ("new#1", "threshold", ("new",), "sales", 15),
        ("new#2", "timeout", ("new",), "cold", 16),
        ("new#3", "since", ("new",), "cold", 17),
        ("new#hold", "hold", ("new",), EXITED, 18),
        ("sales#0", "event", ("sales",), "won", 21),
        ("exit#0", "exit", ("new", "sales"), EXITED, 3),
        ("exit#1", "exit", ("new", "sales"), EXITED, 4),
        ("goal#0", "goal", ("new",), "sales", 5),   # not from its own target, nor from a final stage
    ]
    assert cj.transitions[0].rule == "new: on signup where ... -> sales (line 14)"
    assert cj.transitions[7].rule == "an exit rule matched: exit on bounced where ... (line 4)"
    assert cj.rules == {**{t.id: t.rule for t in cj.transitions}, "score#0": "demo.requested +10 (line 7)"}
    with pytest.raises(dataclasses.FrozenInstanceError):
        cj.transitions[0].target = "cold"  # type: ignore[misc]


def test_the_plan_reads_its_rows_from_the_table():
    cj = journey(EVERY_KIND)
    by_id = {t.id: t for t in cj.transitions}
    new = cj.stages["new"]
    assert [r.transition for r in new.events["signup"]] == [by_id["new#0"]]
    assert [t.transition for t in new.thresholds] == [by_id["new#1"]]
    assert [t.transition for t in new.timeouts] == [by_id["new#2"]]
    assert [t.transition for t in new.since] == [by_id["new#3"]]
    assert new.hold is not None and new.hold.transition is by_id["new#hold"]
    assert [r.transition for r in cj.exit_rules["bounced"]] == [by_id["exit#1"]]
    assert [r.transition for r in cj.goals["demo.requested"]] == [by_id["goal#0"]]


@pytest.mark.parametrize("path", sorted(JOURNEYS.glob("*.journey")), ids=lambda p: p.stem)
def test_the_machine_is_built_from_the_table_and_has_no_conditions(path):
    cj, _ = example(path)
    assert len({t.id for t in cj.transitions}) == len(cj.transitions)
    assert _machine_rows(cj) == _table_rows(cj)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(journeys(max_stages=4))
def test_any_journey_machine_is_its_table(model):
    assume(model.stages)
    assume(all(valid_pattern(c.value) for cond in model.conditions() for c in compares(cond) if c.op == "matches"))
    cj = compile_journey(model)  # unchecked on purpose: dead ends and unreachable stages too
    assert _machine_rows(cj) == _table_rows(cj)
    assert len({t.id for t in cj.transitions}) == len(cj.transitions)



class _Size(int):
    """A field value that counts how often a condition compares it (`size >= 10`).

    The value, not the data dict, counts: compiled by mypyc, the conditions read a
    dict with the C API, which a dict subclass's `__contains__` never sees."""

    compared = 0

    def __ge__(self, other):
        self.compared += 1
        return int(self) >= other


ONCE = textwrap.dedent("""
    journey "once"
    stage a
      initial
      on signup -> b
    stage b
      on demo where size >= 10 -> c
    stage c
      final
    """)


def test_an_event_condition_is_evaluated_once_when_its_transition_fires():
    cj = journey(ONCE)
    rec, _ = step_event(cj, None, "L1", ev("1", "signup", T0))
    size = _Size(12)
    rec, actions = step_event(cj, rec, "L1", ev("2", "demo", T0 + 1, {"size": size}))
    assert rec.state == "c" and [a.data["rule"] for a in actions] == ["b: on demo where ... -> c (line 7)"]
    assert size.compared == 1
    small = _Size(3)
    rec, actions = step_event(cj, step_event(cj, None, "L2", ev("3", "signup", T0))[0], "L2",
                              ev("4", "demo", T0 + 1, {"size": small}, lead="L2"))
    assert rec.state == "b" and actions == [] and small.compared == 1


def test_the_trace_is_a_list_of_typed_steps():
    cj = journey(EVERY_KIND)
    trace: list = []
    rec, _ = step_event(cj, None, "L1", ev("1", "signup", T0, {"size": 20}), trace)
    rec, _ = advance(cj, rec, "L1", T0 + 10 * DAY, trace)
    assert trace and all(isinstance(s, TraceStep) for s in trace)
    first = trace[0]
    assert first.time == T0 and first.input == "event 1: signup (enrolls the lead)"
    assert first.stage == ("new", "sales")
    assert "rule fired: new: on signup where ... -> sales (line 14)" in first.notes
    assert [a.kind for a in first.actions] == ["stage", "send", "stage", "handoff"]
    as_json = first.to_json()
    assert list(as_json) == ["time", "input", "notes", "stage", "score", "actions"]
    assert as_json["notes"] == list(first.notes) == first["notes"]
    assert as_json["actions"] == [a.to_json() for a in first.actions]
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.notes = ()  # type: ignore[misc]


def test_a_transition_is_a_frozen_slotted_record():
    t = Transition("a#0", "event", ("a",), "b", "a: on x -> b (line 3)", 3)
    assert not hasattr(t, "__dict__")
    assert dataclasses.replace(t, target="c").target == "c" and t.target == "b"
