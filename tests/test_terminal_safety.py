"""What users write never drives the terminal: control characters are shown, not obeyed; no emoji, no markup.

An event line, a label or a content id can carry an escape sequence (`ESC ] 0 ;`
sets the window title, `ESC [ 2 J` clears the screen, a C1 `CSI` does the same
on 8-bit terminals). Each command that prints them shows a visible symbol
instead, on a terminal (FORCE_COLOR) and in a pipe; JSON output escapes them.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from coltiva.output import json_text, shown

from .engine_helpers import COLTIVA, T0, line

TITLE = "\x1b]0;pwned\x07"  # set the terminal's title
CLEAR = "\x1b[2J"
CSI = "\x9b2J"  # the same, as one C1 control
BIDI = "\u202e"  # right-to-left override: text that reads one way and runs another
HOSTILE = (TITLE, CLEAR, CSI, BIDI)


def coltiva(*args, terminal: bool) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200"}
    if terminal:
        env["FORCE_COLOR"] = "1"
    else:
        env.pop("FORCE_COLOR", None)
    return subprocess.run([str(COLTIVA), *map(str, args)], capture_output=True, text=True, env=env)


def assert_safe(text: str) -> None:
    for sequence in HOSTILE:
        assert sequence not in text, (sequence, text[:500])
    assert "\x07" not in text and "\x9b" not in text


JOURNEY = f'''journey "safe {TITLE}"

content
  email "welcome"

stage first "First {CLEAR} stage {BIDI}"
  initial
  send email "welcome" on entry
  on go -> done

stage done "Done {CSI}"
  final
'''


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("safe")
    journey = tmp / "j.journey"
    journey.write_text(JOURNEY)
    events = tmp / "events.jsonl"
    events.write_text("\n".join([
        line("e1", "go", T0, lead="alice"),
        '{"id": "raw", "lead": "bob", "type": "go", "time": "2026-01-01T00:00:00Z", "data": {"x": "' + TITLE + '"}}',
        json.dumps({"id": "e3", "lead": "carol", "type": "go-" + CLEAR, "time": "2026-01-01T00:00:00Z"}),
        "not json " + CSI + BIDI,
    ]) + "\n")
    db = tmp / "s.db"
    done = coltiva("run", journey, "--events", events, "--db", db, terminal=False)
    assert done.returncode == 0, done.stderr
    return db


@pytest.mark.parametrize("terminal", [False, True])
@pytest.mark.parametrize("args", [["quarantine"], ["quarantine", "--format", "jsonl"], ["leads"],
                                  ["explain", "alice"], ["explain", "alice", "--format", "json"], ["actions"]])
def test_reading_commands_show_control_characters_without_obeying_them(store, args, terminal):
    done = coltiva(*args, "--db", store, terminal=terminal)
    assert done.returncode == 0, done.stderr
    assert_safe(done.stdout)
    assert_safe(done.stderr)
    if "--format" in args or args == ["actions"]:
        for text in done.stdout.splitlines() if "jsonl" in args or args == ["actions"] else [done.stdout]:
            json.loads(text)  # still JSON, with the controls escaped


def test_the_quarantine_names_the_hidden_characters(store):
    done = coltiva("quarantine", "--db", store, terminal=False)
    assert "␛]0;pwned␇" in done.stdout  # shown as the Unicode control pictures


@pytest.mark.parametrize("terminal", [False, True])
def test_check_shows_journey_lines_safely_and_never_turns_text_into_emoji(tmp_path, terminal):
    journey = tmp_path / "j.journey"
    journey.write_text(JOURNEY.replace('send email "welcome" on entry', 'send email ":x: [bold]" on entry')
                       .replace('stage done "Done', 'stage done "Done :thumbs_up:'))
    done = coltiva("check", journey, terminal=terminal)
    assert done.returncode == 1
    assert "unknown content `:x: [bold]`" in done.stdout
    assert "❌" not in done.stdout and "👍" not in done.stdout
    assert_safe(done.stdout)


def test_shown_keeps_width_and_json_text_stays_json():
    text = f"a{TITLE}b{CSI}é"
    assert len(shown(text)) == len(text) and "é" in shown(text)
    assert json.loads(json_text({"x": text})) == {"x": text}
    assert_safe(json_text({"x": text}))
