"""The fast parse loop (dsl.fastparse) gives exactly Lark's tree, or gives up where Lark raises.

Exactly: the same node names and children, every token with the same type,
text and eight positions, every node's `meta` with the same fields (including
Lark's `container_*`). Gives up: on text Lark refuses, the loop returns None
(and `parse_text` lets Lark raise its own error), never a different tree.

The same loop building the model as it parses (`dsl.builder.build_text`) gives
exactly the model `build_journey` builds from Lark's tree: every field of every
node, spans included (they are left out of the model's `==`), and the same
diagnostics in the same order; and gives up wherever Lark raises.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lark import Token, Tree
from lark.exceptions import UnexpectedInput
from lark.indenter import DedentError

from bench.bench_language import generate, long_journeys
import dataclasses

from dsl.builder import build_journey, build_text
from dsl.fastparse import _may_start_with, fast_parse
from dsl.formatter import format_journey
from dsl.parser import grammar_parser

from .strategies import journeys

__all__: list[str] = []

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "journeys").rglob("*.journey"))
_big = settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large], deadline=None)


def _difference(a, b, where: str = "tree") -> str | None:
    """Where two parse results differ (None if they are the same, positions included)."""
    if type(a) is not type(b):
        return f"{where}: {type(a).__name__} vs {type(b).__name__}"
    if isinstance(a, Token):
        for name in Token.__slots__:
            if getattr(a, name) != getattr(b, name) or type(getattr(a, name)) is not type(getattr(b, name)):
                return f"{where}: token {a!r} {name} {getattr(a, name)!r} vs {getattr(b, name)!r}"
        return None
    if a.data != b.data or type(a.data) is not type(b.data):
        return f"{where}: {a.data!r} vs {b.data!r}"
    if vars(a.meta) != vars(b.meta):
        return f"{where} ({a.data}): meta {vars(a.meta)} vs {vars(b.meta)}"
    if len(a.children) != len(b.children):
        return f"{where} ({a.data}): {len(a.children)} vs {len(b.children)} children"
    for i, (x, y) in enumerate(zip(a.children, b.children)):
        found = _difference(x, y, f"{where}/{a.data}[{i}]")
        if found:
            return found
    return None


def _model_difference(a, b, where: str = "journey") -> str | None:
    """Where two models differ, every field compared (spans too, which the model's `==` skips)."""
    if type(a) is not type(b):
        return f"{where}: {type(a).__name__} vs {type(b).__name__}"
    if dataclasses.is_dataclass(a):
        for f in dataclasses.fields(a):
            found = _model_difference(getattr(a, f.name), getattr(b, f.name), f"{where}.{f.name}")
            if found:
                return found
        return None
    if isinstance(a, (tuple, list)):
        if len(a) != len(b):
            return f"{where}: {len(a)} vs {len(b)} items"
        for i, (x, y) in enumerate(zip(a, b)):
            found = _model_difference(x, y, f"{where}[{i}]")
            if found:
                return found
        return None
    if isinstance(a, Token) and (a.type, a.line, a.column) != (b.type, b.line, b.column):
        return f"{where}: token {a!r} {a.type} {a.line}:{a.column} vs {b.type} {b.line}:{b.column}"
    return None if a == b else f"{where}: {a!r} vs {b!r}"


def _lark(text: str):
    """Lark's tree, or the exception Lark raises."""
    try:
        return grammar_parser().parse(text)
    except (UnexpectedInput, DedentError) as err:
        return err


def _assert_same_or_refused(text: str) -> None:
    """The fast loop's tree equals Lark's; where Lark raises, the fast loop gave up."""
    expected = _lark(text)
    got = fast_parse(grammar_parser(), text)
    if isinstance(expected, Exception):
        assert got is None, f"Lark raised {expected!r}, the fast loop gave a tree\n---\n{text}"
    else:
        assert isinstance(got, Tree), f"the fast loop gave up on text Lark parses\n---\n{text}"
        assert _difference(expected, got) is None, f"{_difference(expected, got)}\n---\n{text}"
    built = build_text(grammar_parser(), text, "t.journey", text)
    if isinstance(expected, Exception):
        assert built is None, f"Lark raised {expected!r}, the fast loop built a model\n---\n{text}"
    else:
        assert built is not None, f"the fast loop gave up building text Lark parses\n---\n{text}"
        want = build_journey(expected, "t.journey", text)
        assert _model_difference(want, built) is None, f"{_model_difference(want, built)}\n---\n{text}"


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_journeys_parse_to_larks_tree(path):
    _assert_same_or_refused(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("stages", [1, 10, 100])
def test_generated_big_journeys_parse_to_larks_tree(stages):
    _assert_same_or_refused(generate(stages) + "\n")


@pytest.mark.parametrize("name", list(long_journeys()))
def test_long_journeys_parse_to_larks_tree(name):
    _assert_same_or_refused(long_journeys()[name])


@_big
@given(journeys())
def test_any_formatted_journey_parses_to_larks_tree(journey):
    _assert_same_or_refused(format_journey(journey))


# What users get wrong, and the whitespace Lark's lexer and indenter handle.
_EDITS = st.sampled_from(["", " ", "  ", "\t", "\n", "\n\n", "\r\n", "  # note\n", "#", '"', "->", "-", "(", ")",
                          "[", ",", "and", "or", "not ", "stage", "on", "x.y", "5", "+5", "1.5", "@", "é", "\u00a0",
                          "if past skip", "every", "days"])


@_big
@given(journeys(max_stages=3), st.lists(st.tuples(st.floats(0, 1), st.integers(0, 4), _EDITS), max_size=4))
def test_edited_journeys_parse_to_larks_tree_or_are_refused_by_both(journey, edits):
    """Broken and oddly spaced texts: the same tree as Lark, or None where Lark raises."""
    text = format_journey(journey)
    for where, cut, insert in edits:
        at = int(where * len(text))
        text = text[:at] + insert + text[at + cut:]
    _assert_same_or_refused(text)


@pytest.mark.parametrize("text", [
    "", "\n", "   \n", "journey \"x\"", "journey \"x\"\n   ", "stage a\n  initial\n final\n",  # bad dedent
    "stage a\n\tinitial\n        final\n", "stage a\n  initial\n    final\n", "# only a comment",
    "journey \"x\"\n\nstage a\n  initial\n  on e -> b\n\n\nstage b\n  final",  # no newline at the end
    "stage a\n  initial\n  on e where (a == 1 or not b is set) and c in [1, \"x\", true] -> b\n",
])
def test_edge_texts(text):
    _assert_same_or_refused(text)


def test_whitespace_skipping_is_proved_from_the_terminals():
    """Spaces are skipped inside each match only because no terminal of the grammar may start with one."""
    assert _may_start_with("[\t ]+", " \t")
    assert _may_start_with("( |a)b", " \t")
    assert _may_start_with("(?:x)?[^a]", " \t")
    assert _may_start_with(r"\s", " \t")
    assert not _may_start_with(r"((#[^\n]*)?\r?\n[\t ]*)+", " \t")
    assert not _may_start_with(r"[+-]?\d+(\.\d+)?", " \t")
    assert not _may_start_with(r"lead(?![A-Za-z0-9_.-])", " \t")
    ignored = grammar_parser().parser.lexer.lexer.root_lexer.ignore_types
    assert not [t.name for t in grammar_parser().terminals
                if t.name not in ignored and _may_start_with(t.pattern.to_regexp(), " \t")]


# ---- the nesting walk is skipped only when the words prove it finds nothing ----------------------
@st.composite
def _nested(draw, depth: int) -> str:
    """A condition `depth` levels deep, written with the fewest words each level allows."""
    text = "f == 1"
    for _ in range(depth):
        text = draw(st.sampled_from([f"not {text}", f"not ({text})", f"({text}) and g is set",
                                     f"h == 2 or ({text})", f"({text})and(k == 3)"]))
    return text


@given(st.integers(28, 36).flatmap(_nested))
def test_skipping_the_nesting_walk_never_hides_c062(condition):
    from dsl.parser import may_nest_too_deep, _too_deep

    text = f"exit on x where {condition}\n"
    tree = grammar_parser().parse(text)
    found = _too_deep(tree, "t.journey", text.splitlines())
    assert found == [] or may_nest_too_deep(text)


def test_the_nesting_bound_is_tight_enough_to_skip_ordinary_journeys():
    from dsl.parser import may_nest_too_deep

    assert not may_nest_too_deep(generate(1000))
    assert may_nest_too_deep("exit on x where " + "not " * 33 + "f is set\n")
    assert not may_nest_too_deep("exit on x where " + "not " * 32 + "f is set\n")
    # the shortest line with 33 of the words (they never overlap): not passed over as too short
    assert may_nest_too_deep("or" * 33 + "\n" + "x\n")
    assert not may_nest_too_deep("or" * 32 + "\n" + "x\n")


def test_a_parser_of_another_shape_is_left_to_lark():
    """Lark internals moved (another Lark version) or another parser: no tables, every text goes to Lark."""
    from lark import Lark

    from dsl.fastparse import _tables

    earley = Lark('start: "a"+\n', parser="earley")
    assert _tables(earley) is None
    assert fast_parse(earley, "aaa") is None
    lalr_without_indenter = Lark('start: "a"+\n', parser="lalr")
    assert _tables(lalr_without_indenter) is None
    assert _tables(grammar_parser()) is not None
