"""Hostile event lines are normal input: each is kept aside with its reason, and the run goes on.

No line may stop a run (deep nesting, huge lines, odd numbers, repeated keys,
control characters), and no pattern in a journey may make an event take
unbounded time (patterns run on RE2).
"""

from __future__ import annotations

import io
import json
import subprocess
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dsl.loader import load_text
from engine.events import MAX_DEPTH, MAX_EVENT_BYTES, Event, Malformed, parse_event, read_lines
from engine.runner import Runner
from engine.store import Store

from .engine_helpers import COLTIVA, T0, iso, journey, line

GOOD = {"id": "g1", "lead": "L1", "type": "go", "time": "2026-01-01T00:00:00Z"}


def good(**changes) -> str:
    return json.dumps({**GOOD, **changes})


def reason(text: str | bytes) -> str:
    parsed = parse_event(text)
    assert isinstance(parsed, Malformed), parsed
    return parsed.reason


def test_deep_nesting_is_refused_at_any_depth():
    for depth in (MAX_DEPTH + 1, 1_000, 100_000):
        assert "nested more than" in reason("[" * depth + "]" * depth)
        assert "nested more than" in reason(good()[:-1] + ', "data": ' + '{"a": ' * depth + "1" + "}" * depth + "}")
    ok = parse_event(good()[:-1] + ', "data": ' + '{"a": ' * (MAX_DEPTH - 1) + "1" + "}" * (MAX_DEPTH - 1) + "}")
    assert isinstance(ok, Event)


def test_an_overlong_line_is_refused_without_reading_it_all():
    huge = good()[:-1] + ', "data": {"x": "' + "a" * MAX_EVENT_BYTES + '"}}'
    assert "at most 1 MiB" in reason(huge)
    assert "at most 1 MiB" in reason(huge.encode())
    stream = io.BytesIO(b"x" * (5 * MAX_EVENT_BYTES) + b"\n" + good().encode() + b"\n")
    lines = list(read_lines(stream))
    assert len(lines) == 2 and len(lines[0]) == MAX_EVENT_BYTES + 1
    assert "at most 1 MiB" in reason(lines[0])
    assert isinstance(parse_event(lines[1]), Event)


def test_numbers_must_be_finite_and_reasonable():
    for number in ("1e400", "-1e400", "NaN", "Infinity", "-Infinity", "9" * 5000):
        text = good()[:-1] + f', "data": {{"n": {number}}}}}'
        assert "not valid JSON" in reason(text), number
    big = parse_event(good()[:-1] + ', "data": {"n": ' + "9" * 400 + "}}")
    assert isinstance(big, Event) and big.data["n"] == int("9" * 400)  # exact, compared exactly


def test_a_repeated_key_is_an_error_not_a_silent_choice():
    assert "appears twice" in reason('{"id": "a", "id": "b", "lead": "L", "type": "go", "time": "2026-01-01T00:00:00Z"}')
    assert "appears twice" in reason(good()[:-1] + ', "data": {"path": "/a", "path": "/b"}}')


def test_ids_have_no_control_characters_and_a_bounded_length():
    for bad in ("a\u0000b", "a\u001bb", "a\u0085b", "a\u007fb"):
        assert "control character" in reason(good(lead=bad))
        assert "control character" in reason(good(id=bad))
    assert "longer than" in reason(good(lead="x" * 257))
    assert isinstance(parse_event(good(lead="x" * 256)), Event)
    assert isinstance(parse_event(good(lead="Müller & Söhne — 顧客")), Event)
    assert "lone surrogate" in reason('{"id": "a", "lead": "\\ud800", "type": "go", "time": "2026-01-01T00:00:00Z"}')


# -- generated hostile lines through the runner ---------------------------------------------------

_json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-(10**30), 10**30),
                          st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20))


def _nested(depth: int, leaf: str = "1") -> str:
    return '{"k": ' * depth + leaf + "}" * depth


hostile_lines = st.one_of(
    st.integers(MAX_DEPTH, 3_000).map(lambda d: good()[:-1] + ', "data": ' + _nested(d) + "}"),
    st.integers(MAX_DEPTH + 1, 3_000).map(lambda d: "[" * d + "]" * d),
    st.sampled_from(["1e400", "-1e999", "NaN", "Infinity", "9" * 4400]).map(
        lambda n: good()[:-1] + f', "data": {{"n": {n}}}}}'),
    st.sampled_from(["id", "lead", "type", "time"]).map(
        lambda k: good()[:-1] + f', "{k}": ' + json.dumps(GOOD[k]) + "}"),  # a repeated key
    st.text(st.characters(min_codepoint=0, max_codepoint=0x9f), min_size=1, max_size=5).filter(
        lambda t: any(ord(c) < 32 or 0x7f <= ord(c) <= 0x9f for c in t)).map(lambda t: good(lead="L" + t)),
    st.binary(min_size=1, max_size=40).filter(lambda b: b.strip() and b"\n" not in b and b"\r" not in b),
    st.text(max_size=60).filter(lambda t: t.strip() and "\n" not in t and "\r" not in t and
                                t.strip() not in ("{}",) and not t.lstrip().startswith("{")),
    st.dictionaries(st.text(max_size=5), _json_scalars, max_size=4).map(json.dumps),  # objects lacking fields
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.booleans(), hostile_lines), min_size=1, max_size=25))
def test_any_mix_of_hostile_and_good_lines_quarantines_the_bad_and_applies_the_good(mix):
    cj = journey(SENDER)
    lines, good_ids, bad_numbers = [], [], []
    for number, (is_good, hostile) in enumerate(mix, 1):
        if is_good:
            event_id = f"good-{number}"
            lines.append(line(event_id, "go", T0 + number, lead=f"lead-{number % 3}"))
            good_ids.append(event_id)
        else:
            lines.append(hostile)
            bad_numbers.append(number)
    with tempfile.TemporaryDirectory() as tmp:
        with Store(Path(tmp) / "s.db") as store:
            store.register(cj, {})
            summary = Runner(store, [cj], batch_size=7).run_lines(lines)
            quarantined = {row[2]: row[3] for row in store.quarantined()}
            applied = store.seen(good_ids)
    assert applied == set(good_ids)
    assert sorted(quarantined) == bad_numbers and all(quarantined.values())
    assert summary.applied + summary.quarantined + summary.duplicates == len(lines)


SENDER = '''journey "hostile"

stage a
  initial
  send email "hello" on entry
  on go where path matches "(a+)+$" -> b

stage b
  final
'''


def test_the_cli_run_survives_every_kind_of_bad_line_and_a_rerun_too(tmp_path):
    path = tmp_path / "j.journey"
    path.write_text(SENDER)
    bad = ["[" * 1000 + "]" * 1000,
           good(id="deep")[:-1] + ', "data": ' + _nested(5000) + "}",
           good(id="inf")[:-1] + ', "data": {"n": 1e400}}',
           '{"id": "dup", "id": "dup2", "lead": "L", "type": "go", "time": "2026-01-01T00:00:00Z"}',
           good(id="nul", lead="L\u0000")]
    events = tmp_path / "events.jsonl"
    with events.open("wb") as out:
        out.write(line("e1", "go", T0, lead="A").encode() + b"\n")
        for text in bad:
            out.write(text.encode() + b"\n")
        out.write(b'{"id": "huge", "data": "' + b"z" * (3 * MAX_EVENT_BYTES))  # no end of line either
        out.write(b"\n" + line("e2", "go", T0 + 5, lead="B").encode() + b"\n")
    for attempt in range(2):  # a bad line must not stop this run, nor the next one
        done = subprocess.run([str(COLTIVA), "run", str(path), "--events", str(events), "--db", str(tmp_path / "s.db")],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert "Traceback" not in done.stderr
    shown = subprocess.run([str(COLTIVA), "quarantine", "--format", "jsonl", "--db", str(tmp_path / "s.db")],
                           capture_output=True, text=True, check=True).stdout.splitlines()
    reasons = [json.loads(text)["reason"] for text in shown]
    assert len(reasons) == len(bad) + 1
    assert sum("nested more than" in r for r in reasons) == 2
    assert any("too large" in r for r in reasons) and any("appears twice" in r for r in reasons)
    assert any("control character" in r for r in reasons) and any("at most 1 MiB" in r for r in reasons)
    assert max(len(json.loads(text)["raw"]) for text in shown) < MAX_EVENT_BYTES  # a huge line is not stored whole
    with Store(tmp_path / "s.db", read_only=True) as store:
        assert store.seen(["e1", "e2"]) == {"e1", "e2"}


def test_a_backtracking_pattern_runs_in_linear_time(tmp_path):
    """`(a+)+$` takes minutes per event with a backtracking engine; with RE2 the run ends at once."""
    path = tmp_path / "j.journey"
    path.write_text(SENDER)
    events = tmp_path / "events.jsonl"
    events.write_text("".join(line(f"e{i}", "go", T0 + i, {"path": "a" * (30 + i) + "!"}, lead=f"L{i}") + "\n"
                              for i in range(50)) + line("ok", "go", T0 + 99, {"path": "aaa"}, lead="M") + "\n")
    for command in (["run", str(path), "--events", str(events), "--db", str(tmp_path / "s.db")],
                    ["simulate", str(path), "--events", str(events)]):
        done = subprocess.run([str(COLTIVA), *command], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
    with Store(tmp_path / "s.db", read_only=True) as store:
        states = dict(store.db.execute("SELECT lead, state FROM leads").fetchall())
    assert states["M"] == "b" and {states[f"L{i}"] for i in range(50)} == {"a"}


def test_the_checker_refuses_patterns_it_cannot_run_in_linear_time():
    for pattern, words in (("(?=x)y", "lookaround"), ("(a)\\\\1", "backreferences"), ("(", "missing )")):
        loaded = load_text(SENDER.replace("(a+)+$", pattern))
        (d,) = [d for d in loaded.diagnostics if d.code == "C038"]
        assert words in d.message and "RE2" in d.hint, d
    assert load_text(SENDER).ok  # the catastrophic pattern itself is fine: RE2 runs it in linear time


def test_times_read_from_events_keep_their_range():
    assert "out of range" in reason(good(time="2200-01-01T00:00:00Z"))
    assert isinstance(parse_event(good(time=iso(T0))), Event)


def test_a_type_ending_in_a_newline_is_not_an_event_type():
    """The type must be the whole string: `re.match` with a pattern ending in `$` let "x.y\\n" through."""
    line = json.dumps({"id": 1, "lead": "L", "type": "email.opened\n", "time": "2026-03-01T09:30:00Z"})
    got = parse_event(line)
    assert isinstance(got, Malformed) and "is not an event type" in got.reason
    assert isinstance(parse_event(line.replace("\\n", "")), Event)
