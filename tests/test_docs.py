"""docs/language.md stays true: its examples check, and every diagnostic code is documented.

Convention (stated at the top of the page): a ```coltiva block starting with
`journey` is a complete file and must load with no error; a ```coltiva fragment
block is part of a file and must parse.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dsl import load_text, render_plain
from dsl.parser import parse_text

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "language.md"
TEXT = DOC.read_text(encoding="utf-8")


def _blocks() -> list[tuple[str, int, str]]:
    """(info string, line of the fence, body) of every fenced block."""
    out = []
    for m in re.finditer(r"^```([^\n]*)\n(.*?)^```\s*$", TEXT, re.M | re.S):
        out.append((m.group(1).strip(), TEXT.count("\n", 0, m.start()) + 1, m.group(2)))
    return out


BLOCKS = [b for b in _blocks() if b[0].split()[:1] == ["coltiva"]]
FULL = [b for b in BLOCKS if b[0] == "coltiva"]
FRAGMENTS = [b for b in BLOCKS if b[0] == "coltiva fragment"]


def test_every_coltiva_block_is_of_a_known_kind():
    assert BLOCKS and len(BLOCKS) == len(FULL) + len(FRAGMENTS)
    assert len(FULL) >= 2 and len(FRAGMENTS) >= 10


def test_full_examples_start_with_journey():
    for _, line, body in FULL:
        first = next(ln for ln in body.splitlines() if ln.strip() and not ln.lstrip().startswith("#"))
        assert first.startswith("journey "), f"docs/language.md:{line}: a full example starts with `journey`"


@pytest.mark.parametrize("block", FULL, ids=[f"line{b[1]}" for b in FULL])
def test_full_example_loads_without_errors(block, tmp_path):
    _, line, body = block
    loaded = load_text(body, f"language.md@{line}", tmp_path)
    problems = "\n".join(render_plain(d, loaded.sources) for d in loaded.diagnostics)
    assert loaded.ok, problems
    assert loaded.diagnostics == [], problems


@pytest.mark.parametrize("block", FRAGMENTS, ids=[f"line{b[1]}" for b in FRAGMENTS])
def test_fragment_parses(block):
    _, line, body = block
    tree, diagnostics = parse_text(body, f"language.md@{line}")
    assert tree is not None, "\n".join(render_plain(d, {f"language.md@{line}": body}) for d in diagnostics)


def _codes_in_sources() -> set[str]:
    codes: set[str] = set()
    for path in (ROOT / "dsl").rglob("*.py"):
        codes |= set(re.findall(r"C0\d\d", path.read_text(encoding="utf-8")))
    return codes


def _documented_codes() -> dict[str, str]:
    rows = re.findall(r"^\| (C0\d\d) \| ([^|]+) \| ([^|]+) \|", TEXT, re.M)
    return {code: severity.strip() for code, severity, _ in rows}


def test_every_code_in_dsl_is_documented():
    missing = _codes_in_sources() - set(_documented_codes())
    assert not missing, f"codes missing from the table in docs/language.md: {sorted(missing)}"


def test_documented_codes_exist():
    stale = set(_documented_codes()) - _codes_in_sources()
    assert not stale, f"documented codes that no longer exist: {sorted(stale)}"


def test_documented_severity_matches_the_code():
    """The table's severity column agrees with what the sources emit for each code."""
    emitted: dict[str, set[str]] = {}
    pattern = re.compile(r'"(C0\d\d)",\s*(?:Severity\.)?(E|W|ERROR|WARNING)\b|"(C0\d\d)",\s*(W if|E if)')
    for path in (ROOT / "dsl").rglob("*.py"):
        for m in pattern.finditer(path.read_text(encoding="utf-8")):
            code = m.group(1) or m.group(3)
            word = m.group(2) or m.group(4)
            emitted.setdefault(code, set()).add("warning" if word.startswith("W") else "error")
    documented = _documented_codes()
    for code, severities in emitted.items():
        assert all(s in documented[code] for s in severities), (code, severities, documented[code])


def test_every_construct_has_an_example():
    examples = "\n".join(body for _, _, body in BLOCKS)
    for construct in ["journey ", "include ", "scoring", " where ", "at most 10 per", " -50", "decay half-life",
                      "fit", "content", "exit on", "enroll on", "messages per", "initial", "final",
                      "on entry", "after 7 days", "-> exit", "when score >=", "when score <", "idle ->",
                      "in stage ->", "hold after", "then exit", "handoff to sales", "starts with", "ends with",
                      "contains", "matches", " in [", "not in [", "is set", " and ", " or ", "not (", "!=",
                      "minutes", "hours", "weeks", "#", '\\"']:
        assert construct in examples or construct in TEXT, construct
