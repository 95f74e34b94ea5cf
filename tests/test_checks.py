"""The checks' reasoning, piece by piece: conditions, thresholds, cascades, liveness, speed."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from dsl import load_text
from dsl.checks import CHECKS, run_checks
from dsl.checks.liveness import dead_ways, score_bounds
from dsl.checks.logic import disjoint, implies, never_true
from dsl.loader import parse_journey
from dsl.model import AllOf, AnyOf, Compare, Not

ROOT = Path(__file__).resolve().parent.parent


def journey(text: str):
    j, diagnostics = parse_journey(textwrap.dedent(text).lstrip("\n"), "t.journey")
    assert j is not None and not diagnostics, diagnostics
    return j


def codes(text: str) -> list[str]:
    return [d.code for d in load_text(textwrap.dedent(text).lstrip("\n"), "t.journey").diagnostics]


# ---- conditions ----------------------------------------------------------------

def test_disjoint_conditions():
    eq_a, eq_b = Compare("plan", "==", "a"), Compare("plan", "==", "b")
    assert disjoint(eq_a, eq_b)
    assert not disjoint(eq_a, Compare("other", "==", "b"))
    assert disjoint(Compare("n", ">", 5), Compare("n", "<", 3))
    assert not disjoint(Compare("n", ">=", 5), Compare("n", "<=", 5))
    assert disjoint(Compare("p", "starts with", "/a"), Compare("p", "starts with", "/b"))
    assert not disjoint(Compare("p", "starts with", "/a"), Compare("p", "starts with", "/ab"))
    assert disjoint(Compare("c", "in", ("IT", "DE")), Compare("c", "not in", ("IT", "DE", "FR")))
    assert disjoint(eq_a, Not(eq_a))
    assert not disjoint(None, eq_a)


def test_never_true():
    assert never_true(AllOf((Compare("plan", "==", "a"), Compare("plan", "==", "b"))))
    assert not never_true(AnyOf((Compare("plan", "==", "a"), Compare("plan", "==", "b"))))
    assert never_true(AnyOf((AllOf((Compare("n", ">", 5), Compare("n", "<", 1))),
                             AllOf((Compare("m", "==", 1), Not(Compare("m", "==", 1)))))))
    assert not never_true(Compare("n", ">", 5))


VALUES = st.one_of(st.sampled_from(["a", "b", "/a", "/ab", "x"]), st.integers(-3, 3))
COMPARES = st.builds(
    lambda field, op, v: Compare(field, op, v if op not in ("in", "not in") else (v, "a")),
    st.sampled_from(["f", "g"]),
    st.sampled_from(["==", "!=", ">", ">=", "<", "<=", "starts with", "in", "not in"]),
    VALUES,
).filter(lambda c: not (c.op in (">", ">=", "<", "<=") and isinstance(c.value, str))
         and not (c.op == "starts with" and not isinstance(c.value, str)))
CONDITIONS = st.recursive(COMPARES, lambda inner: st.one_of(
    st.builds(lambda a, b: AllOf((a, b)), inner, inner),
    st.builds(lambda a, b: AnyOf((a, b)), inner, inner),
    st.builds(Not, inner)), max_leaves=4)
DATA = st.fixed_dictionaries({}, optional={"f": VALUES, "g": VALUES})


@given(CONDITIONS, CONDITIONS, DATA)
def test_disjoint_is_sound_against_the_engine(a, b, data):
    """When the checker says two conditions exclude each other, no event meets both."""
    from engine.conditions import compile_condition

    if disjoint(a, b):
        assert not (compile_condition(a)(data) and compile_condition(b)(data))
    if never_true(a):
        assert not compile_condition(a)(data)


def test_implies():
    pro, seats = Compare("plan", "==", "pro"), Compare("seats", ">", 5)
    assert implies(AllOf((pro, seats)), pro)  # `a and b` implies `a`
    assert not implies(pro, AllOf((pro, seats)))
    assert implies(pro, AnyOf((pro, seats)))  # `a` implies `a or b`
    assert not implies(AnyOf((pro, seats)), pro)
    assert implies(Compare("n", ">", 10), Compare("n", ">", 5))
    assert not implies(Compare("n", ">", 5), Compare("n", ">", 10))
    assert implies(Compare("n", ">", 5), Compare("n", ">=", 5))
    assert not implies(Compare("n", ">=", 5), Compare("n", ">", 5))
    assert implies(Compare("p", "starts with", "/pricing"), Compare("p", "starts with", "/p"))
    assert not implies(Compare("p", "starts with", "/p"), Compare("p", "starts with", "/pricing"))
    assert implies(Compare("p", "starts with", "/pricing"), Compare("p", "contains", "ric"))
    assert implies(Compare("p", "ends with", ".pdf"), Compare("p", "ends with", "pdf"))
    assert implies(Compare("x", "==", "a"), Compare("x", "in", ("a", "b")))
    assert not implies(Compare("x", "in", ("a", "b")), Compare("x", "==", "a"))
    assert implies(Compare("x", "==", "/pricing"), Compare("x", "starts with", "/p"))
    assert implies(Compare("n", "==", 12), Compare("n", ">", 10))
    assert implies(Compare("n", ">", 10), Compare("n", "!=", 3))
    assert implies(Compare("x", "==", "a"), Compare("x", "is set", None))
    assert implies(Compare("x", "not in", ("a", "b")), Compare("x", "!=", "a"))
    assert not implies(Compare("x", "!=", "a"), Compare("x", "not in", ("a", "b")))
    assert implies(Not(Compare("n", ">", 5)), Not(Compare("n", ">", 10)))
    assert implies(Not(AnyOf((pro, seats))), Compare("plan", "!=", "pro"))
    assert implies(pro, None) and implies(None, None) and not implies(None, pro)
    # the engine's types: true is no number, and an absent field satisfies only the negations
    assert not implies(Compare("x", "==", True), Compare("x", "in", (1,)))
    assert not implies(Compare("x", "!=", "a"), Compare("x", "is set", None))
    assert not implies(Compare("x", "==", "12"), Compare("x", ">", 10))
    assert not implies(Compare("x", "==", "a"), Compare("y", "==", "a"))


IMPLY_VALUES = st.one_of(st.sampled_from(["a", "b", "/a", "/ab", "x", "ab"]), st.integers(-3, 3),
                         st.just(1.0), st.booleans())
IMPLY_COMPARES = st.builds(
    lambda field, op, v, w: Compare(field, op, None if op == "is set" else
                                    (v, w) if op in ("in", "not in") else v),
    st.sampled_from(["f", "g"]),
    st.sampled_from(["==", "!=", ">", ">=", "<", "<=", "starts with", "ends with", "contains", "in",
                     "not in", "is set"]),
    IMPLY_VALUES, IMPLY_VALUES,
).filter(lambda c: not (c.op in (">", ">=", "<", "<=") and isinstance(c.value, str))
         and not (c.op in ("starts with", "ends with", "contains") and not isinstance(c.value, str)))
IMPLY_CONDITIONS = st.recursive(IMPLY_COMPARES, lambda inner: st.one_of(
    st.builds(lambda a, b: AllOf((a, b)), inner, inner),
    st.builds(lambda a, b: AnyOf((a, b)), inner, inner),
    st.builds(Not, inner)), max_leaves=4)
IMPLY_DATA = st.fixed_dictionaries({}, optional={"f": IMPLY_VALUES | st.none(), "g": IMPLY_VALUES})


def test_numbers_are_not_booleans():
    """Python says `0 == False`; the engine does not, so neither may the checker."""
    zero, false = Compare("f", "==", 0), Compare("f", "==", False)
    assert not implies(zero, false) and not implies(false, zero)
    assert not disjoint(Not(zero), false)  # f = false meets both
    assert not disjoint(Compare("f", "in", (0, True)), Compare("f", "not in", (1.0, 0)))  # f = true
    assert disjoint(Compare("f", "==", 1), Compare("f", "not in", (1.0,)))


@given(IMPLY_CONDITIONS, IMPLY_CONDITIONS, IMPLY_DATA)
def test_disjoint_is_sound_with_every_operator(a, b, data):
    from engine.conditions import compile_condition

    if disjoint(a, b):
        assert not (compile_condition(a)(data) and compile_condition(b)(data)), (a, b, data)


@given(IMPLY_CONDITIONS, IMPLY_CONDITIONS, IMPLY_DATA)
def test_implies_is_sound_against_the_engine(a, b, data):
    """When the checker says `a` implies `b`, every event meeting `a` meets `b` (and `a` implies itself)."""
    from engine.conditions import compile_condition

    assert implies(a, a) and implies(a, None)
    if implies(a, b) and compile_condition(a)(data):
        assert compile_condition(b)(data), (a, b, data)


@given(IMPLY_COMPARES, IMPLY_COMPARES, IMPLY_DATA)
def test_implies_is_sound_on_single_comparisons(a, b, data):
    """The same on single comparisons, where most of the proofs are: more cases reach them."""
    from engine.conditions import compile_condition

    if implies(a, b) and compile_condition(a)(data):
        assert compile_condition(b)(data), (a, b, data)


# ---- scores ----------------------------------------------------------------------

def test_score_bounds_with_caps_and_decay():
    j = journey("""
        scoring
          email.opened +1 at most 2 per 30 days
          email.bounced -5 at most 1 per 30 days
          decay half-life 30 days
        fit
          company.size >= 200 +15
          industry == "tobacco" -20
        """)
    low, high = score_bounds(j)
    assert high == 15 + 2 / (1 - 0.5)  # two points a window, halved each window: a geometric series
    assert low == -20 - 5 / (1 - 0.5)


def test_uncapped_or_undecayed_points_are_unbounded():
    assert score_bounds(journey("scoring\n  a +1\n  b -1\n")) == (float("-inf"), float("inf"))
    assert score_bounds(journey("scoring\n  a +1 at most 1 per 1 day\n"))[1] == float("inf")


def test_first_threshold_wins_so_no_false_cascade():
    """a goes to c at 50+, so the a <-> b loop only exists below 50: reported there, with that range."""
    text = """
        journey "t"
        scoring
          a +1
          b -1
        stage a
          initial
          when score >= 50 -> c
          when score >= 10 -> b
        stage b
          when score < 5 -> a
          on y -> c
        stage c
          final
        """
    assert codes(text) == []
    looping = text.replace("when score < 5 -> a", "when score < 60 -> a")
    found = [d for d in load_text(textwrap.dedent(looping).lstrip("\n"), "t").diagnostics if d.code == "C047"]
    assert len(found) == 1 and "[10, 50)" in found[0].hint


def test_cascade_found_in_a_long_ring():
    stages = "\n".join(f"stage s{k}\n  when score >= 10 -> s{(k + 1) % 50}\n  on done -> end" for k in range(50))
    text = f'journey "t"\nscoring\n  a +1\n{stages}\nstage end\n  final\n'
    text = text.replace("stage s0\n", "stage s0\n  initial\n", 1)
    assert [d.code for d in load_text(text, "t").diagnostics] == ["C047"]


# ---- liveness --------------------------------------------------------------------

def test_dead_ways_are_proven_only():
    j = journey("""
        journey "t"
        exit on bye
        stage a
          initial
          on x -> b
          on x where n > 1 -> c
          on bye -> b
          when score >= 10 -> b
          after 5 days in stage -> b
          after 9 days idle -> c
          hold after 1 day idle: every 2 days send email "n", 3 times, then -> c
        """)
    dead = dead_ways(j)
    assert set(dead) == {("a", 1), ("a", 2), ("a", 3), ("a", 5), ("a", -1)}
    assert "line 5" in dead[("a", 1)]
    assert "exit on bye" in dead[("a", 2)]
    assert "no lead can get" in dead[("a", 3)]
    assert "line 9" in dead[("a", 5)]  # idle 9 days never comes before 5 days in stage
    assert "before the loop ends" in dead[("a", -1)]  # 1 + 3 x 2 days > 5 days in stage


#: Stages `b` and `c` lead only to each other: a trap (C042), unless {extra} gives `c` a way out.
LOOP = """
    journey "t"
    stage a
      initial
      on x -> b
      on q -> out
    stage b
      on y -> c
    stage c
      on z -> b{extra}
    stage out
      final
    """


def test_trap_is_reported_once_per_group():
    assert codes(LOOP.format(extra="")) == ["C042"]


def test_a_loop_with_a_way_to_exit_is_not_a_trap():
    """`-> exit` leaves the journey: a loop of stages one of which has it is not a trap (C042)."""
    assert codes(LOOP.format(extra="\n      on email.unsubscribed -> exit")) == []


def test_hold_leaving_the_journey_is_a_way_out():
    assert codes("""
        journey "t"
        stage a
          initial
          hold after 1 day idle: every 1 day send email "n", 2 times, then exit
        """) == []


# ---- the examples, and the speed of a big journey ----------------------------------

def test_examples_check_clean():
    for path in sorted((ROOT / "journeys").glob("*.journey")):
        loaded = load_text(path.read_text(encoding="utf-8"), str(path), path.parent)
        assert loaded.diagnostics == [], (path, loaded.diagnostics)


def test_checks_are_small_named_functions():
    assert len(set(CHECKS)) == len(CHECKS)
    assert all(check.__name__.startswith("check_") for check in CHECKS)


def test_a_thousand_stage_journey_checks_clean():
    """How long it takes is measured by bench/bench_language.py, never here."""
    sys.path.insert(0, str(ROOT / "bench"))
    from bench_language import generate

    j, diagnostics = parse_journey(generate(1000), "big.journey")
    assert j is not None and not diagnostics
    assert run_checks(j) == []
