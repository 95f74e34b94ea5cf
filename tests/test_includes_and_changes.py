"""Includes merge each file once; a changed journey is described by what it means, not by its layout."""

import subprocess
import sys

import pytest

from dsl.errors import StoreError
from dsl.loader import load_journey, load_text
from engine.compiler import compile_journey
from engine.runner import Runner
from engine.store import Store

from .engine_helpers import T0, line


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_a_file_reached_by_two_includes_is_merged_once(tmp_path):
    _write(tmp_path, "shared/scores.journey", "scoring\n  go +5\n")
    _write(tmp_path, "middle.journey", 'include "shared/scores.journey"\n')
    main = _write(tmp_path, "main.journey", 'journey "D"\ninclude "shared/scores.journey"\ninclude "middle.journey"\n'
                                           "stage a\n  initial\n  when score >= 6 -> b\nstage b\n  final\n")
    loaded = load_journey(main)
    assert loaded.ok, loaded.diagnostics
    assert [r.points for r in loaded.journey.scoring] == [5]
    rules = compile_journey(loaded.journey).rules
    assert rules["score#0"] == "go +5 (scores.journey:2)"  # explain says which file


def test_an_include_cycle_is_still_an_error(tmp_path):
    _write(tmp_path, "a.journey", 'include "b.journey"\n')
    _write(tmp_path, "b.journey", 'include "a.journey"\n')
    main = _write(tmp_path, "main.journey", 'journey "C"\ninclude "a.journey"\nstage s\n  initial\n  final\n')
    assert "C021" in [d.code for d in load_journey(main).diagnostics]


JOURNEY = '''# the first comment
journey "changes"
scoring
  go +1
stage a
  initial
  when score >= 2 -> b
stage b
  final
'''


def _store_with_a_lead(tmp_path, text):
    loaded = load_text(text, "changes.journey")
    cj = compile_journey(loaded.journey, loaded.diagnostics)
    store = Store(tmp_path / "s.db")
    store.register(cj, loaded.sources)
    Runner(store, [cj]).run_lines([line("e1", "go", T0)])
    return store


def _register(store, text):
    loaded = load_text(text, "changes.journey")
    store.register(compile_journey(loaded.journey, loaded.diagnostics), loaded.sources)


def test_a_comment_or_layout_change_is_the_same_version(tmp_path):
    with _store_with_a_lead(tmp_path, JOURNEY) as store:
        _register(store, JOURNEY.replace("# the first comment", "# reworded") + "\n\n# trailing\n")


def test_a_changed_threshold_is_refused_and_named_without_comment_noise(tmp_path):
    with _store_with_a_lead(tmp_path, JOURNEY) as store:
        changed = JOURNEY.replace("# the first comment", "# reworded").replace(">= 2", ">= 3")
        with pytest.raises(StoreError) as caught:
            _register(store, changed)
    message = str(caught.value)
    assert "1 lead(s) are in it" in message
    assert "-  when score >= 2 -> b" in message and "+  when score >= 3 -> b" in message
    assert "comment" not in message and "reworded" not in message


def test_an_empty_file_is_an_error_not_a_fragment(tmp_path):
    loaded = load_text("", "empty.journey")
    assert not loaded.fragment
    assert [(d.code, d.message) for d in loaded.diagnostics] == [("C023", "the file is empty")]


def test_check_counts_an_unreadable_file_as_a_failure(tmp_path):
    good = _write(tmp_path, "ok.journey", JOURNEY)
    done = subprocess.run([sys.executable, "-m", "coltiva.cli", "check", str(good), str(tmp_path / "missing.journey")],
                          capture_output=True, text=True)
    assert done.returncode == 2
    assert "1 unreadable — failed" in done.stdout
