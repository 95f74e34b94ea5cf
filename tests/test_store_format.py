"""A store is refused, with a message, when it is not ours or not our format: never half-used."""

import sqlite3
import subprocess
import sys

import pytest

from dsl.errors import StoreError
from engine.store import SCHEMA_VERSION, Store


def test_a_new_store_records_its_format(tmp_path):
    with Store(tmp_path / "s.db") as store:
        assert store.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    with Store(tmp_path / "s.db"):  # reopening our own format is fine
        pass


def test_a_store_of_another_format_is_refused(tmp_path):
    path = tmp_path / "old.db"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE outbox (seq INTEGER PRIMARY KEY, action TEXT)")
    con.commit()
    con.close()
    with pytest.raises(StoreError, match="another version of Coltiva"):
        Store(path)
    done = subprocess.run([sys.executable, "-m", "coltiva.cli", "leads", "--db", str(path)],
                          capture_output=True, text=True)
    assert done.returncode == 1
    assert "another version of Coltiva" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_file_that_is_not_a_database_is_refused(tmp_path):
    path = tmp_path / "notes.db"
    path.write_text("shopping list\n" * 100)
    done = subprocess.run([sys.executable, "-m", "coltiva.cli", "leads", "--db", str(path)],
                          capture_output=True, text=True)
    assert done.returncode == 1
    assert "not a Coltiva store" in done.stderr
    assert "Traceback" not in done.stderr


# ---- the lead record's optional fields (engine/record.py, docs/engine.md "The record's optional fields")

#: A record as stores wrote it before `had` and `passed` existed: fifteen fields, then the tail when set.
OLD_RECORD = ["nurture", 100, 120, 3.5, 110, 10, ["lead", None], 3, 0, None, None, [100, 110], 4, 300, 120]


def test_a_record_stored_before_had_and_passed_reads_with_both_empty():
    from engine.record import Lead

    for stored in (OLD_RECORD, OLD_RECORD + [["old-content"]]):
        rec = Lead.from_list(stored)
        assert (rec.had, rec.passed) == (0, 0)
        assert rec.to_list() == stored  # written back exactly as it was


def test_had_and_passed_are_written_at_the_end_of_the_tail_only_when_set_and_read_back():
    from engine.record import Lead

    rec = Lead.from_list(OLD_RECORD)
    rec.had, rec.passed = 5, 2
    written = rec.to_list()
    assert written[15:] == [None, 0, None, None, 5, 2]  # gone, acted, enrolled, left at their defaults
    back = Lead.from_list(written)
    assert (back.had, back.passed, back.gone, back.acted) == (5, 2, None, 0)
    rec.passed = 0
    assert rec.to_list()[15:] == [None, 0, None, None, 5]
    rec.had = 0
    assert rec.to_list() == OLD_RECORD
