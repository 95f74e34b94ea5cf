"""Duplicate detection on each store, at the real window (docs/scaling.md, *Duplicates on each store*).

A duplicate inside SQLite's window (the last DEDUPE_WINDOW entries of the input
log) is dropped on every store (tests/test_engine_store.py runs that on both).
Beyond it the stores differ, and this is what each does: SQLite forgets the id
and applies the event again; PostgreSQL remembers every id it ever applied
(its unique index on `event_id`) and drops it. The Flink job's rule (seen ids
per lead, forgotten after a TTL in the lead's event time) is tested in
tests/test_flink_logic.py.
"""

from __future__ import annotations

import sqlite3

from engine.store import DEDUPE_WINDOW

from .engine_helpers import T0, dump, line, run_store
from .test_engine_store import compiled


def _ticks_into_the_log(db, count: int) -> None:
    """`count` tick entries at the end of the input log, written by SQL: what a long run leaves behind."""
    if str(db).startswith("postgresql://"):
        import psycopg

        with psycopg.connect(db, autocommit=True) as conn:
            conn.execute("INSERT INTO inputs (seq, kind, time, journeys) SELECT m.last + g, 'tick', %s, '[]' "
                         "FROM (SELECT MAX(seq) AS last FROM inputs) m, generate_series(1, %s) g", (T0 + 1, count))
        return
    with sqlite3.connect(db) as conn:
        conn.execute("WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < ?) "
                     "INSERT INTO inputs (seq, kind, time, journeys) SELECT (SELECT MAX(seq) FROM inputs) + n, "
                     "'tick', ?, '[]' FROM g", (count, T0 + 1))


def test_beyond_the_window_sqlite_applies_again_and_postgresql_drops(store_at, backend):
    db = store_at("window")
    cj = compiled()
    first = line("x", "email.opened", T0, lead="A")
    assert run_store(db, [cj], [first]).applied == 1
    _ticks_into_the_log(db, DEDUPE_WINDOW - 1)  # x is now the DEDUPE_WINDOW-th entry back: inside
    again = line("x", "email.opened", T0 + 2, lead="A")
    assert run_store(db, [cj], [again]).duplicates == 1
    _ticks_into_the_log(db, 1)  # one entry further: beyond SQLite's window
    summary = run_store(db, [cj], [again])
    applied = [row for row in dump(db)["inputs"] if row[0] == "event"]
    if backend == "sqlite":
        assert summary.applied == 1 and len(applied) == 2  # forgotten: applied again, a second entry
    else:
        assert summary.duplicates == 1 and len(applied) == 1  # every id is remembered
