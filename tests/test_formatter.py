"""The canonical layout, comment placement and `coltiva fmt`, on hand-written cases.

Why: the properties (test_dsl_properties) prove the round trip; these pin the
layout a marketer sees, and the exit codes CI scripts rely on.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from coltiva.cli import cli
from dsl.errors import JourneyError
from dsl.formatter import format_condition, format_text
from dsl.loader import parse_journey

__all__: list[str] = []

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "journeys").glob("*.journey")) + sorted((ROOT / "journeys" / "shared").glob("*.journey"))

MESSY = """\
stage b   "Shown interest"
    send   email "w" after 1 days
    handoff to sales
    on x.y -> c
    final
stage c
    initial
    hold after 1 weeks idle: every 2 day send nl "d", 1 times, then exit
at most 1 messages per 7 day
fit
    company.size>=200 15 points
content
    ebook "e"   "Title"
scoring
    decay half-life 45 days
    email.opened 1 at most 10 per 1 days
    page.visited where path = "/x" -2
exit on a.b where plan in ["pro","team"]
include "shared.journey"
enroll on trial.started
journey "Messy"
"""

CANONICAL = """\
journey "Messy"

include "shared.journey"

enroll on trial.started
exit on a.b where plan in ["pro", "team"]
at most 1 message per 7 days

scoring
  email.opened +1 at most 10 per 1 day
  page.visited where path == "/x" -2
  decay half-life 45 days

fit
  company.size >= 200 +15

content
  ebook "e" "Title"

stage b "Shown interest"
  final
  handoff to sales
  send email "w" after 1 day
  on x.y -> c

stage c
  initial
  hold after 1 week idle: every 2 days send nl "d", 1 time, then exit
"""


def test_messy_file_gets_the_canonical_layout():
    assert format_text(MESSY) == CANONICAL


def test_canonical_layout_keeps_the_model():
    assert parse_journey(CANONICAL)[0] == parse_journey(MESSY)[0]


def test_canonical_text_is_left_alone():
    assert format_text(CANONICAL) == CANONICAL


def test_every_trigger_kind_and_its_order():
    text = (
        "stage a\n"
        "  initial\n"
        "  send email \"x\" on entry\n"
        "  when score >= 20.5 -> b\n"
        "  after 3 days in stage -> b\n"
        "  on f.s where x is set -> exit\n"
        "  after 1 hour idle -> b\n"
        "  when score < -5 -> b\n"
        "\n"
        "stage b\n"
        "  final\n"
    )
    assert format_text(text) == text


def test_numbers_are_written_without_exponent():
    text = "stage a\n  when score >= 0.0000001 -> b\n  when score < 100000000000000000000.5 -> b\n"
    formatted = format_text(text)
    assert "e-" not in formatted and "e+" not in formatted
    assert parse_journey(formatted)[0] == parse_journey(text)[0]


@pytest.mark.parametrize(
    "written, canonical",
    [
        ("a == 1 or b == 2 and c == 3", "a == 1 or b == 2 and c == 3"),
        ("(a == 1 or b == 2) and c == 3", "(a == 1 or b == 2) and c == 3"),
        ("((a == 1)) and (b == 2)", "a == 1 and b == 2"),
        ("not (a == 1 and b == 2)", "not (a == 1 and b == 2)"),
        ("not (a == 1)", "not a == 1"),
        ("not not a is set", "not not a is set"),
        ("(a == 1 or b == 2) or c == 3", "(a == 1 or b == 2) or c == 3"),
        ("a = true", "a == true"),
        ('p starts with "/x" and q not in [1, 2.5, "z"]', 'p starts with "/x" and q not in [1, 2.5, "z"]'),
        ('t matches "a\\\\d" or t ends with "\\"" or t contains "é"', 't matches "a\\d" or t ends with "\\"" or t contains "é"'),
    ],
)
def test_conditions_get_the_fewest_parentheses(written, canonical):
    journey = parse_journey(f"exit on e where {written}\n")[0]
    assert format_condition(journey.exits[0].condition) == canonical
    assert parse_journey(f"exit on e where {canonical}\n")[0] == journey


# ---- comments ----------------------------------------------------------------------------
COMMENTED = """\
# file comment
stage b  # about b
    # before the flag
    final  # trailing on a flag
    send email "w" on entry
scoring  # on a block header
  # inside scoring
  a.b +1
journey "C"  # named
# dangling at the end
"""


def test_comments_move_with_their_statements():
    assert format_text(COMMENTED) == """\
journey "C"  # named

scoring  # on a block header
  # inside scoring
  a.b +1

# file comment
stage b  # about b
  # before the flag
  final  # trailing on a flag
  send email "w" on entry

# dangling at the end
"""


def test_own_line_comment_takes_the_indentation_of_the_next_statement():
    text = "stage a\n# about the trigger\n      on x -> b\n"
    assert format_text(text) == "stage a\n  # about the trigger\n  on x -> b\n"


def test_hash_inside_a_string_is_not_a_comment():
    text = 'stage a "No. #1"  # real\n  send email "#x" on entry\n'
    assert format_text(text) == text


def test_indented_comment_at_the_end_stays_in_the_last_block():
    text = "stage a\n  initial\n  # todo: a way out\n\n# the end\n"
    assert format_text(text) == text


def test_a_file_of_comments_only():
    assert format_text("# one\n\n   # two\n") == "# one\n# two\n"
    assert format_text("") == ""


def test_comments_of_a_repeated_block_keep_their_order():
    """Two `scoring` blocks merge into one; a repeated line's comment goes with the next statement."""
    text = "scoring  # one\n  a +1\nstage s\n  initial\n  initial  # again\nscoring  # two\n  # inner\n  b +2\n"
    formatted = format_text(text)
    assert formatted == "scoring  # one\n  a +1\n  # again\n  # two\n  # inner\n  b +2\n\nstage s\n  initial\n"
    assert [c.text for c in parse_journey(formatted)[0].comments] == ["# one", "# again", "# two", "# inner"]


# ---- refusals ----------------------------------------------------------------------------
def test_syntax_error_raises_with_diagnostics():
    with pytest.raises(JourneyError) as err:
        format_text("stage a\n  sned email \"x\" on entry\n", "bad.journey")
    assert err.value.diagnostics and err.value.diagnostics[0].span.line == 2


def test_a_second_hold_is_refused_rather_than_dropped():
    text = ("stage a\n"
            "  hold after 1 day idle: every 1 day send n \"x\", 1 time, then exit\n"
            "  hold after 2 days idle: every 1 day send n \"y\", 1 time, then exit\n")
    with pytest.raises(JourneyError) as err:
        format_text(text)
    assert [d.code for d in err.value.diagnostics] == ["C011"]


# ---- the command -------------------------------------------------------------------------
@pytest.fixture
def files(tmp_path):
    good = tmp_path / "good.journey"
    good.write_text(CANONICAL, encoding="utf-8")
    messy = tmp_path / "messy.journey"
    messy.write_text(MESSY, encoding="utf-8")
    bad = tmp_path / "bad.journey"
    bad.write_text("stage a\n  sned email \"x\" on entry\n", encoding="utf-8")
    return good, messy, bad


def _run(*args):
    return CliRunner().invoke(cli, ["fmt", *map(str, args)])


def test_check_exits_0_when_canonical(files):
    good, _, _ = files
    result = _run("--check", good)
    assert result.exit_code == 0, result.output
    assert good.read_text(encoding="utf-8") == CANONICAL


def test_check_exits_1_lists_the_file_and_writes_nothing(files):
    good, messy, _ = files
    result = _run("--check", good, messy)
    assert result.exit_code == 1
    assert "messy.journey" in result.output and "good.journey" not in result.output
    assert messy.read_text(encoding="utf-8") == MESSY


def test_check_exits_2_on_an_unreadable_file(files, tmp_path):
    good, _, _ = files
    result = _run("--check", good, tmp_path / "missing.journey")
    assert result.exit_code == 2
    assert "missing.journey" in result.output and "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)


def test_check_exits_2_on_a_file_that_is_not_utf8(tmp_path):
    latin = tmp_path / "latin.journey"
    latin.write_bytes('journey "Citt\xe0"\n'.encode("latin-1"))
    result = _run("--check", latin)
    assert result.exit_code == 2 and "not UTF-8" in result.output


def test_syntax_error_is_reported_with_its_position(files):
    _, _, bad = files
    result = _run("--check", bad)
    assert result.exit_code == 1
    assert "bad.journey:2:3" in result.output and "sned" in result.output
    assert isinstance(result.exception, SystemExit)


def test_fmt_rewrites_in_place(files):
    good, messy, _ = files
    result = _run(good, messy)
    assert result.exit_code == 0, result.output
    assert messy.read_text(encoding="utf-8") == CANONICAL
    assert _run("--check", messy).exit_code == 0


def test_diff_prints_a_unified_diff_and_writes_nothing(files):
    _, messy, _ = files
    result = _run("--diff", messy)
    assert result.exit_code == 0
    assert "+++ " in result.output and '+journey "Messy"' in result.output
    assert messy.read_text(encoding="utf-8") == MESSY


def test_examples_are_canonical():
    result = _run("--check", *EXAMPLES)
    assert result.exit_code == 0, result.output


def test_real_command_line_check_on_the_examples():
    """The installed `coltiva` script, in its own process, as CI runs it."""
    script = ROOT / ".venv" / "bin" / "coltiva"
    done = subprocess.run([str(script), "fmt", "--check", *map(str, EXAMPLES)],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout == "" and done.stderr == ""


def test_fmt_replaces_odd_spaces_outside_quotes_only():
    """language.md (C091): `coltiva fmt` makes a non-breaking space a plain space, except inside a
    quoted text, where it is part of the text; an escaped quote does not end the text."""
    text = ('journey "t"\ncontent\n  email "a\\"\u00a0b"\nstage\u00a0a\n  initial\n'
            '  send email "a\\"\u00a0b" on entry\n  on x\u00a0-> b\nstage b\n  final\n')
    formatted = format_text(text)
    journey, diagnostics = parse_journey(formatted)
    assert diagnostics == []
    assert [c.id for c in journey.contents] == ['a"\u00a0b']
    assert "stage a" in formatted and "\u00a0->" not in formatted
