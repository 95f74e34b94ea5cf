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
