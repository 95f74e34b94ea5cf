"""Properties of the language front end, over generated journeys and broken texts.

Why properties: the formatter rewrites users' files, so it must be right for
every journey, not only the examples; and the loader reads whatever a user
types, so no text may crash it or point its messages outside the file.
"""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dsl.formatter import format_journey, format_text
from dsl.loader import load_text, parse_journey
from dsl.model import Journey

from .strategies import KEYWORDS, LINE_BREAKS, comment_texts, conditions, journeys

__all__: list[str] = []

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "journeys").glob("*.journey")) + sorted((ROOT / "journeys" / "shared").glob("*.journey"))
SOURCES = {p.name: p.read_text(encoding="utf-8") for p in EXAMPLES}

# Generating a whole journey is larger than Hypothesis expects by default.
_big = settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _parse_clean(text: str):
    journey, diagnostics = parse_journey(text)
    assert journey is not None and diagnostics == [], f"{diagnostics}\n---\n{text}"
    return journey


# ---- (a) format -> parse gives the same model; (b) fmt is idempotent ------------------
@_big
@given(journeys())
def test_formatted_journey_parses_back_equal(journey):
    text = format_journey(journey)
    assert _parse_clean(text) == journey, text


@_big
@given(journeys())
def test_format_is_idempotent(journey):
    once = format_journey(journey)
    assert format_journey(_parse_clean(once)) == once


@given(conditions)
def test_condition_keeps_its_structure(condition):
    """Nested and/or/not with the fewest parentheses still reads back as the same tree."""
    from dsl.formatter import format_condition

    journey = _parse_clean(f"exit on x where {format_condition(condition)}\n")
    assert journey.exits[0].condition == condition


# ---- (c) comments survive ----------------------------------------------------------------
@st.composite
def commented(draw):
    """A formatted journey with comments put on random lines: own-line (any indentation) or trailing."""
    lines = format_journey(draw(journeys(max_stages=2))).splitlines()
    out, expected = [], []
    for line in lines + [None]:
        for text in draw(st.lists(comment_texts, max_size=2)):
            out.append(draw(st.sampled_from(["", "  ", "    ", "\t"])) + text)
            expected.append(text)
        if line is None:
            break
        if line.strip() and draw(st.booleans()):
            text = draw(comment_texts)
            out.append(f"{line}{draw(st.sampled_from([' ', '  ', '    ']))}{text}")
            expected.append(text)
        else:
            out.append(line)
    if draw(st.booleans()):  # blank lines anywhere change nothing
        at = draw(st.integers(0, len(out)))
        out.insert(at, "")
    return "\n".join(out) + "\n", expected


@_big
@given(commented())
def test_comments_survive_formatting(case):
    text, expected = case
    formatted = format_text(text)
    again, diagnostics = parse_journey(formatted)
    assert diagnostics == []
    assert [c.text for c in again.comments] == expected, formatted
    assert again == _parse_clean(text)
    assert format_text(formatted) == formatted


# ---- (d) no text crashes the loader; every message points inside the file ---------------
def _assert_positions_inside(loaded):
    for d in loaded.diagnostics:
        assert d.span.file in loaded.sources, d
        lines = loaded.sources[d.span.file].splitlines()
        assert 1 <= d.span.line <= max(len(lines), 1), d
        line = lines[d.span.line - 1] if lines else ""
        assert 1 <= d.span.column <= len(line) + 1, (d, line)


_words = sorted(KEYWORDS) + ["->", ":", ",", "[", "]", "(", ")", '"x"', '"', "#", "+5", "-3", "7", "1.5", ">=",
                             "==", "=", "<", "a.b", "stage_x", "  ", "\t", "\n", "\n  ", "\n    ", "'x'"]

#: Texts near the language (its own words in random order) and far from it (any characters).
random_texts = st.one_of(
    st.lists(st.sampled_from(_words), max_size=40).map(" ".join),
    st.lists(st.sampled_from(_words), max_size=40).map("".join),
    st.text(max_size=200),
    st.text(st.sampled_from("journeystag \n\t\"#->:+1[],()=\\\r"), max_size=120),
)


@given(random_texts)
def test_random_text_never_crashes(text):
    _assert_positions_inside(load_text(text, "random.journey", ROOT / "journeys"))


def _mutate(text: str, ops: list[tuple[str, int, int]]) -> str:
    """Delete, duplicate or swap characters or lines, or change a line's indentation."""
    for op, i, j in ops:
        if op.startswith("char"):
            if not text:
                continue
            i, j = i % len(text), j % len(text)
            if op == "char-delete":
                text = text[:i] + text[i + 1:]
            elif op == "char-duplicate":
                text = text[:i] + text[i] + text[i:]
            else:
                chars = list(text)
                chars[i], chars[j] = chars[j], chars[i]
                text = "".join(chars)
            continue
        lines = text.split("\n")
        i, j = i % len(lines), j % len(lines)
        if op == "line-delete":
            del lines[i]
        elif op == "line-duplicate":
            lines.insert(i, lines[i])
        elif op == "line-swap":
            lines[i], lines[j] = lines[j], lines[i]
        elif op == "indent-more":
            lines[i] = " " * (j % 5 + 1) + lines[i]
        elif op == "indent-less":
            lines[i] = lines[i][min(j % 3 + 1, len(lines[i]) - len(lines[i].lstrip())):]
        elif op == "indent-tab":
            lines[i] = "\t" + lines[i].lstrip()
        text = "\n".join(lines)
    return text


_ops = st.lists(
    st.tuples(
        st.sampled_from(["char-delete", "char-duplicate", "char-swap", "line-delete", "line-duplicate",
                         "line-swap", "indent-more", "indent-less", "indent-tab"]),
        st.integers(0, 10**6),
        st.integers(0, 10**6),
    ),
    min_size=1,
    max_size=4,
)


@given(st.sampled_from(sorted(SOURCES)), _ops)
def test_mutated_examples_never_crash(name, ops):
    text = _mutate(SOURCES[name], ops)
    loaded = load_text(text, name, ROOT / "journeys")
    _assert_positions_inside(loaded)
    if not any(d.is_error for d in loaded.diagnostics) and loaded.journey is not None:
        # whatever still loads can also be formatted, and formatting keeps it
        assert parse_journey(format_text(text))[0] == parse_journey(text)[0]


@given(st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters=LINE_BREAKS), max_size=30))
def test_any_text_is_a_string_literal(text):
    """encode_string/decode_string: a label reads back as written, whatever it contains."""
    assert _parse_clean(format_journey(Journey(name=text))).name == text
