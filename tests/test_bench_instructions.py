"""bench.instructions: its command line, and how it reads callgrind's count (the counting itself runs under
valgrind for minutes: `python -m bench.instructions`, not the test suite)."""

from __future__ import annotations

import pytest

import bench.instructions as instructions


def test_an_unknown_section_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as stopped:
        instructions.main(["--only", "tick,nope"])
    assert stopped.value.code == 2
    assert "unknown section(s) nope" in capsys.readouterr().err


def test_without_valgrind_it_says_so_and_exits_2(monkeypatch, capsys):
    monkeypatch.setattr(instructions.shutil, "which", lambda name: None)
    assert instructions.main(["--only", "tick"]) == 2
    assert "valgrind is not installed" in capsys.readouterr().err


def test_the_count_is_read_from_callgrinds_summary_line():
    stderr = "==1991== Events    : Ir\n==1991== Collected : 2547281811\n==1991==\n==1991== I   refs:      2,547,281,811\n"
    found = instructions._COLLECTED.search(stderr)
    assert found is not None and int(found.group(1)) == 2_547_281_811


def test_the_language_section_counts_loading_and_compiling_apart(monkeypatch, tmp_path):
    counts = {"setup": 1_000, "load": 1_600, "all": 1_900}
    monkeypatch.setattr(instructions, "_count", lambda section, part, workdir: counts[part])
    assert instructions.measure_language(tmp_path) == {"load": 600, "compile": 300, "total": 900}


def test_the_language_child_runs_each_part():
    """The child's parts run as they would under valgrind (here without it): setup, load once more, and compile."""
    for part in ("setup", "load", "all"):
        instructions._child("language", part, instructions.ROOT)
