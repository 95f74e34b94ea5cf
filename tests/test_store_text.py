"""Journeys are stored as text, stores written before open and migrate, readers never write, one writer per file.

Every test here drives the real thing: the CLI in a subprocess, real SQLite files,
a real full filesystem (tmpfs), another user for a read-only file.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import shutil
import sqlite3
import subprocess
import tempfile
from pathlib import Path

import pytest

from dsl.errors import StoreError
from dsl.formatter import canonical_text
from dsl.loader import load_sources, load_text
from engine.compiler import compile_journey, version_of
from engine.runner import Runner
from engine.store import SCHEMA_VERSION, Store

from .engine_helpers import COLTIVA, DAY, T0, line

FIXTURE = Path(__file__).parent / "fixtures" / "store_v1.db"
FIXTURE_EVENTS = Path(__file__).parent / "fixtures" / "store_v1.events.jsonl"


def coltiva(*args, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([str(COLTIVA), *map(str, args)], capture_output=True, text=True, cwd=cwd)


def v1_copy(tmp_path) -> Path:
    path = tmp_path / "old.db"
    shutil.copy(FIXTURE, path)
    return path


def fixture_rows():
    con = sqlite3.connect(f"file:{FIXTURE}?mode=ro&immutable=1", uri=True)
    try:
        return con.execute("SELECT name, version, sources FROM journeys ORDER BY seq").fetchall()
    finally:
        con.close()


# -- the version is the canonical text's hash; the model comes back from text ----------------------

JOURNEY = '''journey "text-test"  # a comment
include "shared.journey"

stage a "A"
  initial
  send email "hello" on entry
  on go -> b

stage b
  final
'''
SHARED = '''scoring
  go +5
'''


def test_the_stored_text_is_canonical_and_rebuilds_an_equal_model(tmp_path):
    (tmp_path / "shared.journey").write_text(SHARED)
    loaded = load_text(JOURNEY, "main.journey", tmp_path)
    cj = compile_journey(loaded.journey, loaded.diagnostics)
    assert "include" not in cj.text and "#" not in cj.text and "go +5" in cj.text
    assert cj.version == version_of(cj.text)
    again = load_text(cj.text, "<stored>")
    assert again.ok and again.journey == dataclasses.replace(loaded.journey, includes=())  # includes merged
    # layout, comments and how a journey is split into files do not change the version
    merged = JOURNEY.replace('include "shared.journey"\n', "scoring\n  go +5\n").replace("  # a comment", "")
    other = load_text("# header\n" + merged, "other.journey", tmp_path)
    assert compile_journey(other.journey, other.diagnostics).version == cj.version
    assert canonical_text(other.journey) == cj.text


def test_a_store_rebuilds_journeys_from_the_files_they_ran_with(tmp_path):
    (tmp_path / "shared.journey").write_text(SHARED)
    loaded = load_text(JOURNEY, "main.journey", tmp_path)
    cj = compile_journey(loaded.journey, loaded.diagnostics)
    with Store(tmp_path / "s.db") as store:
        store.register(cj, loaded.sources)
        Runner(store, [cj]).run_lines([line("e1", "go", T0)])
    (tmp_path / "shared.journey").unlink()  # the store does not need the files any more
    with Store(tmp_path / "s.db", read_only=True) as store:
        (stored,) = store.journeys()
        text = store.db.execute("SELECT text FROM journeys").fetchone()[0]
    assert stored.version == cj.version and stored.journey == cj.journey and text == cj.text
    assert stored.rules == cj.rules  # same files, same lines: rule names agree across processes
    assert stored.journey.scoring[0].span.file.endswith("shared.journey")


# -- a store written by the format before (journeys pickled) ---------------------------------------

def test_the_fixture_is_the_old_format():
    con = sqlite3.connect(f"file:{FIXTURE}?mode=ro&immutable=1", uri=True)
    try:
        assert con.execute("PRAGMA user_version").fetchone()[0] == 1
        assert "model" in [c[1] for c in con.execute("PRAGMA table_info(journeys)")]
    finally:
        con.close()


def test_readers_read_an_old_store_without_changing_a_byte(tmp_path):
    path = v1_copy(tmp_path)
    before = path.read_bytes()
    for args in (["leads"], ["actions"], ["quarantine"], ["explain", "lead-0003"]):
        done = coltiva(*args, "--db", path)
        assert done.returncode == 0, done.stderr
        assert "Traceback" not in done.stderr
    assert path.read_bytes() == before


def test_a_writer_migrates_an_old_store_to_text_in_place(tmp_path):
    path = v1_copy(tmp_path)
    rows = fixture_rows()
    con = sqlite3.connect(path)
    outbox_before = con.execute("SELECT key, data FROM outbox ORDER BY seq").fetchall()
    leads_before = con.execute("SELECT journey, lead, state, record FROM leads ORDER BY 1, 2").fetchall()
    con.close()
    done = coltiva("tick", "--now", "2026-03-01T00:00:00Z", "--db", path)  # nothing new is due: a no-op tick
    assert done.returncode == 0, done.stderr
    with Store(path, read_only=True) as store:
        assert store.format == SCHEMA_VERSION
        columns = [c[1] for c in store.db.execute("PRAGMA table_info(journeys)")]
        assert "model" not in columns and "text" in columns
        stored = {cj.name: cj for cj in store.journeys()}
        for name, old_version, sources in rows:
            expected = load_sources(json.loads(sources)).journey
            assert stored[name].journey == expected
            assert stored[name].version == version_of(canonical_text(expected)) != old_version
            versions = {v for (v,) in store.db.execute("SELECT DISTINCT version FROM leads WHERE journey = ?",
                                                       (name,))}
            assert versions == {stored[name].version}
            log = store.db.execute("SELECT command, note FROM journey_log WHERE name = ?", (name,)).fetchall()
            assert log == [("migrate", f"store format 1 (version {old_version})")]
        assert store.db.execute("SELECT key, data FROM outbox ORDER BY seq").fetchall()[:len(outbox_before)] \
            == outbox_before
        assert [(j, lead, s, r) for j, lead, s, r in store.db.execute(
            "SELECT journey, lead, state, record FROM leads ORDER BY 1, 2")] == leads_before


def test_a_migrated_store_runs_on_with_the_journey_files(tmp_path):
    path = v1_copy(tmp_path)
    # the files as they were run (the store keeps them), written out again
    for name, _, sources in fixture_rows():
        for file, text in json.loads(sources).items():
            (tmp_path / file).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / file).write_text(text)
    later = tmp_path / "later.jsonl"
    later.write_text("\n".join(json.dumps({"id": f"late-{i}", "lead": "lead-0003", "type": "demo.requested",
                                           "time": "2026-03-10T10:00:00Z"}) for i in range(2)) + "\n")
    files = [file for _, _, sources in fixture_rows() for file in list(json.loads(sources))[:1]]
    done = coltiva("run", *files, "--events", later, "--db", path, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "changed" not in done.stderr
    with Store(path, read_only=True) as store:
        assert store.seen(["late-0", "late-1"]) == {"late-0", "late-1"}
        old_ids = [json.loads(raw)["id"] for (raw,) in store.db.execute(
            "SELECT event FROM inputs WHERE kind = 'event' LIMIT 5")]
    assert old_ids
    again = coltiva("run", *files, "--events", FIXTURE_EVENTS, "--db", path, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "events applied" in again.stdout and "duplicates ignored" in again.stdout


def test_a_pickle_in_an_old_store_is_never_loaded(tmp_path):
    """Format 1 kept a pickle; a store from elsewhere could carry one that runs code. Nothing reads it."""
    path = v1_copy(tmp_path)
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    con = sqlite3.connect(path)
    con.execute("UPDATE journeys SET model = ?", (pickle.dumps(Evil()),))
    con.commit()
    con.close()
    for args in (["leads"], ["actions"], ["explain", "lead-0003"], ["tick", "--now", "2026-03-02T00:00:00Z"],
                 ["render", "journeys/demand_generation.journey", "-o", tmp_path / "x.mmd"]):
        done = coltiva(*args, "--db", path)
        assert "Traceback" not in done.stderr, done.stderr
    assert not marker.exists()


def test_an_old_store_without_its_sources_is_refused_with_a_message(tmp_path):
    path = v1_copy(tmp_path)
    con = sqlite3.connect(path)
    con.execute("UPDATE journeys SET sources = '{}'")
    con.commit()
    con.close()
    done = coltiva("tick", "--now", "2026-03-02T00:00:00Z", "--db", path)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "without its source files" in done.stderr and "never reads pickles" in done.stderr
    with pytest.raises(StoreError):
        Store(path, writer=True)
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA user_version").fetchone()[0] == 1  # all or nothing: still the old format
    con.close()


# -- one writer per file, whatever the path --------------------------------------------------------

def _writer_refused(first: Path, second: Path) -> None:
    with Store(first, writer=True):
        with pytest.raises(StoreError, match="one writer at a time"):
            Store(second, writer=True)
        done = coltiva("tick", "--now", "2026-03-02T00:00:00Z", "--db", second)
        assert done.returncode == 1 and "one writer at a time" in done.stderr, done.stderr


def test_a_second_writer_through_a_symlink_is_refused(tmp_path):
    real = tmp_path / "real.db"
    Store(real).close()
    (tmp_path / "link.db").symlink_to(real)
    _writer_refused(real, tmp_path / "link.db")


def test_a_second_writer_through_a_hard_link_is_refused(tmp_path):
    real = tmp_path / "real.db"
    Store(real).close()
    os.link(real, tmp_path / "hard.db")
    _writer_refused(real, tmp_path / "hard.db")


def test_the_lock_is_released_when_the_writer_closes(tmp_path):
    path = tmp_path / "s.db"
    Store(path, writer=True).close()
    Store(path, writer=True).close()


# -- readers read only -----------------------------------------------------------------------------

@pytest.fixture
def read_only_mount(tmp_path):
    """A folder mounted read-only (a bind mount remounted `ro`): even root cannot write there."""
    source, mount = tmp_path / "rw", tmp_path / "ro"
    source.mkdir()
    mount.mkdir()
    done = subprocess.run(["mount", "--bind", str(source), str(mount)], capture_output=True)
    assert done.returncode == 0, f"this test needs a real read-only mount: {done.stderr!r}"
    try:
        yield source, mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_reading_commands_work_on_a_store_nobody_may_write(read_only_mount):
    source, mount = read_only_mount
    shutil.copy(FIXTURE, source / "s.db")
    assert coltiva("tick", "--now", "2026-03-01T00:00:00Z", "--db", source / "s.db").returncode == 0  # format 2
    subprocess.run(["mount", "-o", "remount,ro,bind", str(mount)], check=True)
    path = mount / "s.db"
    with pytest.raises(OSError):
        (mount / "probe").write_text("x")
    for args in (["leads"], ["actions"], ["quarantine"], ["explain", "lead-0003"]):
        done = coltiva(*args, "--db", path)
        assert done.returncode == 0, (args, done.stderr)
    refused = coltiva("tick", "--now", "2026-03-02T00:00:00Z", "--db", path)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr


def test_readers_are_not_blocked_by_a_long_write(tmp_path):
    path = v1_copy(tmp_path)
    with Store(path, writer=True) as store:  # migrated; now hold a write transaction open
        store.db.execute("BEGIN IMMEDIATE")
        store.db.execute("DELETE FROM quarantine")
        for args in (["leads"], ["actions"], ["quarantine"], ["explain", "lead-0003"]):
            done = coltiva(*args, "--db", path)
            assert done.returncode == 0 and "locked" not in done.stderr, (args, done.stderr)
        store.db.execute("ROLLBACK")


# -- a full disk says so ---------------------------------------------------------------------------

SENDER = '''journey "disk"

stage a
  initial
  send email "hello" on entry
  on go -> b

stage b
  final
'''


def test_a_full_store_reports_the_real_error_and_keeps_nothing(tmp_path):
    loaded = load_text(SENDER)
    cj = compile_journey(loaded.journey, loaded.diagnostics)
    with Store(tmp_path / "s.db") as store:
        store.register(cj, {})
        pages = store.db.execute("PRAGMA page_count").fetchone()[0]
        store.db.execute(f"PRAGMA max_page_count = {pages + 2}")
        lines = [line(f"e{i}", "go", T0 + i, lead=f"lead-{i:06d}-" + "x" * 200) for i in range(3000)]
        with pytest.raises(sqlite3.OperationalError, match="database or disk is full"):
            Runner(store, [cj]).run_lines(lines)
        assert store.db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0] == 0
        assert not store.db.in_transaction


@pytest.fixture
def small_disk():
    mount = Path(tempfile.mkdtemp(prefix="coltiva-full-"))
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)], capture_output=True)
    assert done.returncode == 0, f"this test needs a real small filesystem: {done.stderr!r}"
    yield mount
    subprocess.run(["umount", str(mount)], check=True)
    mount.rmdir()


def test_a_full_disk_says_database_or_disk_is_full(small_disk, tmp_path):
    journey = tmp_path / "disk.journey"
    journey.write_text(SENDER)
    events = tmp_path / "events.jsonl"
    events.write_text("".join(line(f"e{i}", "go", T0 + i * DAY // 100, lead=f"lead-{i:06d}") + "\n"
                              for i in range(20_000)))
    done = coltiva("run", journey, "--events", events, "--db", small_disk / "s.db")
    assert done.returncode == 1
    assert "database or disk is full" in done.stderr, done.stderr
    assert "cannot rollback" not in done.stderr and "Traceback" not in done.stderr


def test_a_store_is_a_regular_file(tmp_path):
    (tmp_path / "dir.db").mkdir()
    done = coltiva("tick", "--now", "2026-03-02T00:00:00Z", "--db", tmp_path / "dir.db")
    assert done.returncode != 0 and "Traceback" not in done.stderr


def test_no_module_of_coltiva_reads_pickles():
    root = Path(__file__).resolve().parent.parent
    for package in ("dsl", "engine", "visualize", "coltiva"):
        for source in (root / package).rglob("*.py"):
            text = source.read_text()
            assert "import pickle" not in text and "pickle.load" not in text, source
