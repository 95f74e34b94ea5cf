"""Hostile journey files: what cannot be read, what nests too deeply, what is too long or too big.

Every promise here is about a user's file, never a stand-in: real FIFOs, real
symlink loops, real devices, the real `coltiva` command in a subprocess. A hang
shows as a subprocess timeout (a guard, not a timed assertion).
"""

from __future__ import annotations

import difflib
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from dsl import load_journey, load_text
from dsl.checks import run_checks
from dsl.checks.liveness import _timer_beats, shadowing_threshold, shadowing_timer
from dsl.checks.logic import contains, disjoint, never_true, threshold_interval
from dsl.checks.names import TYPO_CANDIDATES, check_event_typos
from dsl.errors import JourneyError, SourceError
from dsl.formatter import format_text
from dsl.limits import MAX_FILE_BYTES, MAX_NAME, MAX_NESTING, MAX_REMEMBERED, MAX_TEXT, MAX_VALUE
from dsl.loader import parse_journey
from dsl.model import (AllOf, AnyOf, Compare, Duration, EventTrigger, Had, Journey, Not, ScoreRule, ScoreTrigger, Stage,
                       TimeTrigger)
from dsl.source import read_journey_file
from engine.store import Store

from . import strategies as gen
from .engine_helpers import journey, run_store
from .engine_helpers import line as event_line

ROOT = Path(__file__).resolve().parent.parent
COLTIVA = Path(sys.executable).parent / "coltiva"

CLEAN = 'journey "t"\nstage a\n  initial\n  on e -> b\nstage b\n  final\n'


def coltiva(*args, cwd):
    return subprocess.run([str(COLTIVA), *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=120,
                          input="")


def journey_with(condition: str) -> str:
    return f'journey "t"\nstage a\n  initial\n  on e where {condition} -> b\nstage b\n  final\n'


# ---- files that are not journey files -------------------------------------------

@pytest.fixture
def hostile(tmp_path):
    """name -> (path, the reason a reader must give)."""
    os.mkfifo(tmp_path / "pipe")
    (tmp_path / "loop1").symlink_to("loop2")
    (tmp_path / "loop2").symlink_to("loop1")
    big = tmp_path / "big.journey"
    big.write_text(CLEAN + "#" * (MAX_FILE_BYTES - len(CLEAN)) + "\n")  # one byte too many
    (tmp_path / "latin1.journey").write_bytes('journey "caf\xe9"\n'.encode("latin-1"))
    (tmp_path / "dir.journey").mkdir()
    return {
        "pipe": (tmp_path / "pipe", "it is a named pipe, not a regular file"),
        "loop": (tmp_path / "loop1", "a loop of symbolic links"),
        "zero": (Path("/dev/zero"), "it is a character device, not a regular file"),
        "big": (big, "the file is larger than 1 MiB (1,048,577 bytes), the largest journey file read"),
        "latin1": (tmp_path / "latin1.journey", "not UTF-8 text"),
        "dir": (tmp_path / "dir.journey", "it is a directory, not a regular file"),
    }


@pytest.mark.parametrize("name", ["pipe", "loop", "zero", "big", "latin1", "dir"])
def test_a_file_that_is_no_journey_file_is_refused_with_its_reason(hostile, name):
    path, reason = hostile[name]
    with pytest.raises(SourceError) as err:
        read_journey_file(path)
    assert err.value.reason == reason
    with pytest.raises(SourceError):
        load_journey(path)


@pytest.mark.parametrize("name", ["pipe", "loop", "zero", "big", "latin1", "dir"])
def test_an_include_that_is_no_journey_file_is_c020_with_its_reason(hostile, tmp_path, name):
    path, reason = hostile[name]
    main = tmp_path / "main.journey"
    main.write_text(f'journey "t"\ninclude "{path}"\nstage a\n  initial\n  on e -> b\nstage b\n  final\n')
    loaded = load_journey(main)
    [d] = [d for d in loaded.diagnostics if d.code == "C020"]
    assert d.message == f"cannot read included file `{path}`: {reason}"
    assert (d.span.line, d.span.column) == (2, 1) and "at most 1 MiB" in d.hint
    assert not loaded.ok


def test_a_file_of_exactly_the_limit_is_read(tmp_path):
    exact = tmp_path / "exact.journey"
    exact.write_text(CLEAN + "#" * (MAX_FILE_BYTES - len(CLEAN) - 1) + "\n")
    assert exact.stat().st_size == MAX_FILE_BYTES
    assert load_journey(exact).ok


def test_newlines_are_translated_unless_kept(tmp_path):
    crlf = tmp_path / "crlf.journey"
    crlf.write_bytes(b"\xef\xbb\xbf" + CLEAN.replace("\n", "\r\n").encode())
    assert read_journey_file(crlf) == CLEAN
    assert read_journey_file(crlf, keep_newlines=True) == CLEAN.replace("\n", "\r\n")


def test_an_include_path_too_long_is_c063(tmp_path):
    long_path = "d/" * 600 + "x.journey"
    loaded = load_text(f'journey "t"\ninclude "{long_path}"\nstage a\n  initial\n  final\n', "t.journey", tmp_path)
    [d] = [d for d in loaded.diagnostics if d.code == "C063"]
    assert d.message == f"an include path is at most {MAX_VALUE:,} characters long; this one has {len(long_path):,}"
    assert (d.span.line, d.span.column) == (2, 1) and d.hint
    assert not loaded.ok


@pytest.mark.parametrize("name", ["pipe", "loop", "zero", "big"])
@pytest.mark.parametrize("command", [["check"], ["fmt"], ["fmt", "--check"], ["render", "-o", "out.svg"],
                                     ["simulate", "--events", "-"]])
def test_commands_refuse_hostile_files_with_a_message(hostile, tmp_path, name, command):
    path, reason = hostile[name]
    done = coltiva(*command[:1], path, *command[1:], cwd=tmp_path)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr + done.stdout
    if "Error: Invalid value for 'JOURNEYS...'" in done.stderr:  # click's own check of `simulate`'s argument
        assert f"File '{path}' does not exist" in done.stderr
        return
    assert f"{path}: cannot read: {reason}" in done.stderr


# ---- nesting (C062) ----------------------------------------------------------------

WRAPPERS = st.lists(st.sampled_from(["not", "and", "or", "group"]), max_size=120)


def nest(wrappers: list[str]) -> tuple[str, int]:
    """A condition wrapped as told, and its nesting (each `not`, `and`, `or` is a level; a bare group is not)."""
    text, depth = "x == 1", 0
    for w in wrappers:
        if w == "not":
            text, depth = f"not {text}", depth + 1
        elif w == "group":
            text = f"({text})"
        else:
            text, depth = f"(y == 2 {w} {text})", depth + 1
    return text, depth


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(WRAPPERS)
@example(["not"] * 500)
@example(["group"] * 1000)
@example(["and", "or", "not", "group"] * 250)
@example(["not"] * MAX_NESTING)
@example(["and"] * (MAX_NESTING + 1))
def test_any_nesting_gives_a_journey_or_c062_never_a_crash(wrappers):
    text, depth = nest(wrappers)
    loaded = load_text(journey_with(text), "t.journey")
    deep = [d for d in loaded.diagnostics if d.code == "C062"]
    if depth > MAX_NESTING:
        [d] = deep
        assert d.span.line == 4 and not loaded.ok
        with pytest.raises(JourneyError):
            format_text(journey_with(text))
        return
    assert not deep and loaded.ok, loaded.diagnostics
    formatted = format_text(journey_with(text))
    assert parse_journey(formatted)[0] == parse_journey(journey_with(text))[0]
    from engine.conditions import compile_condition
    from visualize import build_diagram, to_dot, to_mermaid

    [trigger] = loaded.journey.stages[0].triggers
    compile_condition(trigger.condition)({"x": 1, "y": 2})
    assert "digraph" in to_dot(build_diagram(loaded.journey))
    assert to_mermaid(build_diagram(loaded.journey))


@pytest.mark.parametrize("wrappers", [["not"] * 500, ["and", "or"] * 500])
@pytest.mark.parametrize("command", [["check"], ["fmt", "--check"], ["render", "-o", "out.dot"],
                                     ["simulate", "--events", "-"]])
def test_commands_answer_a_deep_condition_with_c062(tmp_path, wrappers, command):
    (tmp_path / "deep.journey").write_text(journey_with(nest(wrappers)[0]))
    done = coltiva(command[0], "deep.journey", *command[1:], cwd=tmp_path)
    assert done.returncode == 1
    assert "C062" in done.stdout + done.stderr and "nested too deeply" in done.stdout + done.stderr
    assert "Traceback" not in done.stderr + done.stdout


# ---- long journeys stay near-linear and find the same things ----------------------------

def _never_true_pairwise(c) -> bool:
    """The reference: never_true as it was, every pair of parts of an `and` compared."""
    if c is None or isinstance(c, (Compare, Not, Had)):
        return False
    if isinstance(c, AnyOf):
        return all(_never_true_pairwise(p) for p in c.parts)
    parts = c.parts
    if any(_never_true_pairwise(p) for p in parts):
        return True
    return any(disjoint(a, b) for i, a in enumerate(parts) for b in parts[i + 1:])


@settings(max_examples=300, deadline=None)
@given(st.lists(gen.conditions, min_size=2, max_size=8))
def test_never_true_finds_what_pairing_every_part_finds(parts):
    c = AllOf(tuple(parts))
    assert never_true(c) == _never_true_pairwise(c)


NEAR_MISSES = st.sampled_from(["email.opened", "email.opend", "email.open", "emial.opened", "page.visited",
                               "page.visted", "form.submitted", "form.sumbitted", "demo.requested", "a", "ab"])


def _typos_reference(j: Journey) -> list[tuple]:
    """The reference: C037 as it was, every event type compared with every better-used one."""
    uses = [(r.event, r.span) for r in j.scoring]
    counts = Counter(name for name, _ in uses)
    order: dict[str, int] = {}
    for i, (name, _) in enumerate(uses):
        order.setdefault(name, i)
    found = []
    for name, _ in uses:
        for other in counts:
            if other == name or (counts[other], -order[other]) <= (counts[name], -order[name]):
                continue
            if difflib.SequenceMatcher(None, other, name).ratio() >= 0.85:
                found.append((name, other))
                break
    return found


@settings(max_examples=200, deadline=None)
@given(st.lists(NEAR_MISSES | gen.event_names, max_size=40))
def test_typos_are_found_as_by_comparing_every_pair(events):
    """With at most TYPO_CANDIDATES event types (every journey we know has fewer than 15), same findings."""
    assert len(set(events)) <= TYPO_CANDIDATES
    j = Journey("t", scoring=tuple(ScoreRule(e, 1) for e in events))
    found = [(d.message.split("`")[1], d.hint.split("`")[1]) for d in check_event_typos(j)]
    assert found == _typos_reference(j)


def test_an_and_of_5000_clauses_still_finds_the_two_that_exclude_each_other():
    clauses = [f"f{i} == {i}" for i in range(5000)]
    assert not [d for d in load_text(journey_with(" and ".join(clauses))).diagnostics]
    clauses[1234], clauses[4321] = 'plan == "a"', 'plan == "b"'
    codes = [d.code for d in load_text(journey_with(" and ".join(clauses))).diagnostics]
    assert "C058" in codes


def test_16000_event_types_still_find_the_typo_of_a_common_one():
    common = "\n".join("  on email.opened where n == %d -> b" % i for i in range(3))
    rare = "\n".join(f"  on kind{i:05d}.seen -> b" for i in range(16000))
    text = f'journey "t"\nstage a\n  initial\n{common}\n{rare}\n  on email.opend -> b\nstage b\n  final\n'
    typos = [d for d in load_text(text).diagnostics if d.code == "C037"]
    assert [d.message for d in typos if "email" in d.message] == ["event type `email.opend` looks like a typo"]


# ---- lengths (C063): everything at its limit checks clean and renders ----------------------------

def test_every_text_at_its_limit_checks_clean_and_renders(tmp_path):
    name, text, value = "n" * MAX_NAME, "T" * MAX_TEXT, "v" * MAX_VALUE
    source = f'''journey "{text}"
content
  {name} "{text}" "{text}"
scoring
  {name} +5
fit
  {name} starts with "{value}" +5
stage {name} "{text}"
  initial
  send {name} "{text}" on entry
  on {name} where {name} in ["{value}", "{value}"] -> done
  on {name} where {name} matches "{value}" -> done
stage done "{text}"
  final
'''
    path = tmp_path / "long.journey"
    path.write_text(source)
    loaded = load_journey(path)
    assert loaded.ok and not [d for d in loaded.diagnostics if d.is_error], loaded.diagnostics
    for out in ("long.svg", "long.png", "long.mmd"):
        done = coltiva("render", path, "-o", tmp_path / out, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert (tmp_path / out).stat().st_size > 0
    one_more = source.replace(f'stage done "{text}"', f'stage done "{text}x"')
    assert [d.code for d in run_checks(parse_journey(one_more)[0]) if d.is_error] == ["C063"]


# ---- thresholds and timers: one pass, the same answers as every pair ----------------------

def _threshold_reference(s: Stage, i: int):
    later = s.triggers[i]
    for earlier in s.triggers[:i]:
        if isinstance(earlier, ScoreTrigger) and contains(threshold_interval(earlier), threshold_interval(later)):
            return earlier
    return None


def _timer_reference(s: Stage, i: int):
    t = s.triggers[i]
    for k, other in enumerate(s.triggers):
        if k != i and isinstance(other, TimeTrigger) and _timer_beats(other, k, t, i):
            return other
    return None


THRESHOLDS = st.builds(ScoreTrigger, st.sampled_from([">=", ">", "<=", "<"]),
                       st.integers(-3, 3) | st.sampled_from([0.5, -1.5]), st.just("b"))
TIMERS = st.builds(TimeTrigger, st.builds(Duration, st.integers(1, 4), st.sampled_from(["day", "hour"])),
                   st.sampled_from(["idle", "in stage"]), st.just("b"))


@settings(max_examples=300, deadline=None)
@given(st.lists(THRESHOLDS | TIMERS | st.builds(EventTrigger, st.just("e"), st.just("b")), max_size=12))
def test_thresholds_and_timers_shadow_as_when_every_pair_is_compared(triggers):
    s = Stage("a", triggers=tuple(triggers))
    for i, t in enumerate(triggers):
        if isinstance(t, ScoreTrigger):
            assert shadowing_threshold(s, i) is _threshold_reference(s, i)
        if isinstance(t, TimeTrigger):
            assert shadowing_timer(s, i) is _timer_reference(s, i)


def test_long_stages_still_find_what_never_fires():
    """2,000 thresholds, timers and triggers of one event: the shadowed ones are still found."""
    thresholds = "\n".join(f"  when score >= {i} -> b" for i in range(2000, 0, -1)) + "\n  when score >= 1500 -> b"
    timers = "\n".join(f"  after {i} days idle -> b" for i in range(1, 2001))
    events = "\n".join(f"  on e where f == {i} -> b" for i in range(2000)) + "\n  on e where f == 7 -> b"
    for body, line, what in ((thresholds, 2006, "this threshold never fires"),
                             (timers, 7, "this timer never fires"),
                             (events, 2006, "this trigger never fires")):
        text = f'journey "t"\nscoring\n  e +1\nstage a\n  initial\n{body}\nstage b\n  final\n'
        shadowed = [d for d in load_text(text).diagnostics if d.code == "C044"]
        assert shadowed and shadowed[0].span.line == line and what in shadowed[0].message, shadowed[:1]


def test_a_shared_fragment_gets_the_length_rule_too(tmp_path):
    fragment = f'scoring\n  page.visited where path starts with "{"p" * (MAX_VALUE + 1)}" +5\n'
    loaded = load_text(fragment, "shared.journey", tmp_path)
    assert loaded.fragment
    [d] = loaded.diagnostics
    assert (d.code, d.span.line, d.span.column) == ("C063", 2, 22) and not loaded.ok


def test_an_include_path_with_a_nul_is_c020(tmp_path):
    loaded = load_text('journey "t"\ninclude "a\x00b"\nstage a\n  initial\n  final\n', "t.journey", tmp_path)
    [d] = [d for d in loaded.diagnostics if d.code == "C020"]
    assert "embedded null byte" in d.message and (d.span.line, d.span.column) == (2, 1)


def test_a_stage_whose_texts_are_all_at_their_limits_still_renders(tmp_path):
    """40 sends of 500-character content ids make a tooltip over `dot`'s 16 KiB quoted-string limit."""
    lines = ['journey "t"', "", "stage a", "  initial"]
    lines += [f'  send email "{i:03d}' + "y" * 497 + '" on entry' for i in range(40)]
    lines += ["  on go -> b", "", "stage b", "  final"]
    journey = tmp_path / "long.journey"
    journey.write_text("\n".join(lines) + "\n")
    for suffix in ("svg", "png"):
        done = subprocess.run([sys.executable, "-m", "coltiva.cli", "render", str(journey), "-o",
                               str(tmp_path / f"out.{suffix}")], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr


def _many_sends(n: int) -> str:
    sends = "".join(f'  send email "c{k}" on entry\n' for k in range(n))
    return f'journey "many"\nstage a\n  initial\n{sends}  on go -> b\nstage b\n  final\n'


def test_a_journey_sending_more_contents_than_a_record_can_remember_is_c064(tmp_path):
    """A lead remembers one bit per content sent; 15,000 would make a number the store cannot write or read
    back (Python's 4,300-digit bound): `coltiva run` stopped with a ValueError before the check."""
    at_limit = load_text(_many_sends(MAX_REMEMBERED))
    assert at_limit.ok, [str(d) for d in at_limit.diagnostics][:2]
    loaded = load_text(_many_sends(MAX_REMEMBERED + 1))
    [d] = [d for d in loaded.diagnostics if d.code == "C064"]
    assert not loaded.ok and (d.span.line, d.span.column) == (MAX_REMEMBERED + 4, 3)
    assert f"{MAX_REMEMBERED + 1:,} different contents" in d.message and "split" in d.hint


def test_a_lead_at_the_limit_of_contents_is_stored_and_read_back(tmp_path):
    """At MAX_REMEMBERED contents, a lead sent the last one is written and read back by the store."""
    cj = journey(_many_sends(MAX_REMEMBERED))
    lines = [event_line("1", "go", "2026-01-01T00:00:00Z")]
    run_store(tmp_path / "s.db", [(cj, {"many.journey": _many_sends(MAX_REMEMBERED)})], lines)
    with Store(tmp_path / "s.db") as store:
        [stored] = store.load_leads(cj.name, ["L1"]).values()
    assert stored.record.sent == (1 << MAX_REMEMBERED) - 1
