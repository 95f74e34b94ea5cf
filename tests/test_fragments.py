"""A shared fragment (no `journey` line, no stages) is checked for syntax, never run as a journey."""

import json
import subprocess
import sys

from dsl.loader import load_journey, load_text

FRAGMENT = "journeys/shared/scoring.journey"


def _coltiva(*args):
    return subprocess.run([sys.executable, "-m", "coltiva.cli", *args], capture_output=True, text=True)


def test_a_fragment_loads_as_a_fragment():
    loaded = load_journey(FRAGMENT)
    assert loaded.fragment and loaded.diagnostics == []
    assert {r.event for r in loaded.journey.scoring} >= {"email.opened", "demo.requested"}


def test_a_broken_fragment_still_reports_its_syntax_errors():
    loaded = load_text("scoring\n  email.opened\n", "shared.journey")
    assert [d.code for d in loaded.diagnostics] == ["C006"]


def test_a_file_with_stages_but_no_name_is_not_a_fragment():
    loaded = load_text("stage a\n  initial\n  final\n", "x.journey")
    assert not loaded.fragment and "C023" in [d.code for d in loaded.diagnostics]


def test_check_accepts_a_fragment_and_says_what_it_is(tmp_path):
    done = _coltiva("check", FRAGMENT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "shared fragment" in done.stdout
    as_json = json.loads(_coltiva("check", "--format", "json", FRAGMENT).stdout)
    assert as_json["files"][0]["fragment"] is True and as_json["errors"] == 0


def test_run_refuses_a_fragment_with_a_message(tmp_path):
    events = tmp_path / "e.jsonl"
    events.write_text('{"id": "1", "lead": "l", "type": "email.opened", "time": "2026-01-01T00:00:00Z"}\n')
    done = _coltiva("run", FRAGMENT, "--events", str(events), "--db", str(tmp_path / "s.db"))
    assert done.returncode == 1
    assert "shared fragment" in done.stderr and "include it from a journey" in done.stderr
    assert "Traceback" not in done.stderr
