"""What the store says about a journey: counts for the diagram, and funnels over time for `report`.

Everything here reads the store's tables with SQL through an open
`engine.store.Store` (its `db` connection), and the store's own API
(`journeys`, `stage_counts`, `transition_counts`) where it has one:
  leads(journey, lead, version, state, due, record)
  transitions(seq, journey, lead, src, dst, time, rule)   src NULL: enrolled; dst 'exit': left
  outbox(seq, key, journey, version, lead, kind, time, data)
Times are Unix seconds (UTC); a week starts on Monday 00:00 UTC and is named by that date.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from dsl.errors import ColtivaError
from dsl.model import EXIT, Journey

__all__ = [
    "StoreCounts",
    "read_counts",
    "rule_counts",
    "enrolled_count",
    "open_store",
    "find_journey",
    "leads_per_stage",
    "WEEK_SQL",
]

#: SQLite expression: the Monday (YYYY-MM-DD, UTC) of the week of a Unix time column `time`.
WEEK_SQL = "date(time, 'unixepoch', 'weekday 0', '-6 days')"


@dataclass(frozen=True)
class StoreCounts:
    """The store's counts for one journey, and what the reader must be told about them."""

    stages: dict[str, int]  # leads in each stage now; "exit": leads who left
    edges: dict[tuple[str, str], int]  # moves per (source, target)
    rules: dict[tuple[str, str, str], int]  # moves per (source, target, rule text)
    enrolled: int
    version: str  # the version the store runs
    notes: tuple[str, ...] = field(default=())


def open_store(db: str):
    """An open, read-only Store on an existing file (or a postgresql:// store); a missing file or an old
    engine is a clear error."""
    if str(db).startswith(("postgresql://", "postgres://")):
        from engine.stores import open_store as open_any

        return open_any(db, read_only=True)
    if not Path(db).is_file():
        raise ColtivaError(f"{db}: no such database file")
    try:
        from engine.store import Store
    except ImportError as err:
        raise ColtivaError(f"the engine's store cannot count leads yet ({err})") from None
    try:
        return Store(db, read_only=True)
    except sqlite3.Error as err:
        raise ColtivaError(f"{db}: cannot open the store: {err}") from None


def rule_counts(db: sqlite3.Connection, journey: str) -> dict[tuple[str, str, str], int]:
    """Moves per (source, target, rule text): the store records which rule moved every lead."""
    rows = db.execute("SELECT src, dst, COALESCE(rule, ''), COUNT(*) FROM transitions "
                      "WHERE journey = ? AND src IS NOT NULL GROUP BY 1, 2, 3", (journey,))
    return {(src, dst, rule): n for src, dst, rule, n in rows}


def enrolled_count(db: sqlite3.Connection, journey: str) -> int:
    """Leads enrolled in the journey (a move with no source)."""
    return db.execute("SELECT COUNT(*) FROM transitions WHERE journey = ? AND src IS NULL",
                      (journey,)).fetchone()[0]


def stored_journeys(store, db: str) -> list:
    """The store's journeys, compiled (rebuilt from their stored text by the store)."""
    try:
        return store.journeys()
    except sqlite3.Error as err:
        raise ColtivaError(f"{db}: cannot read the journeys in the store: {err}") from None


def find_journey(store, db: str, name: str | None):
    """The stored journey called `name`, or the only one when `name` is None."""
    stored = stored_journeys(store, db)
    names = ", ".join(repr(cj.name) for cj in stored) or "none"
    if name is None:
        if len(stored) != 1:
            raise ColtivaError(f"{db}: name the journey to report on (the store has: {names})")
        return stored[0]
    current = next((cj for cj in stored if cj.name == name), None)
    if current is None:
        raise ColtivaError(f"{db}: no journey named {name!r} in this store (it has: {names})")
    return current


def read_counts(db: str, journey: Journey) -> StoreCounts:
    """The counts for `journey` from the store at `db`, with notes when the file drawn is not what runs.

    The store keeps the version of the journey it runs; when the file drawn is
    another version (an edited file, a branch), the counts are still drawn, but
    the reader is told, and leads in stages the file no longer has are named.
    """
    from engine.compiler import journey_version
    from engine.record import DONE, NOT_ENROLLED, WAITING

    assert journey.name is not None  # a journey, not a fragment: it has a name
    with open_store(db) as store:
        try:
            current = find_journey(store, db, journey.name)
            stages = {stage: n for stage, n in store.stage_counts().get(journey.name, {}).items()
                      if stage not in (NOT_ENROLLED, WAITING)}  # not in the journey (yet): in no stage
            edges = store.transition_counts(journey.name)
            rules = rule_counts(store.db, journey.name)
            enrolled = enrolled_count(store.db, journey.name)
        except sqlite3.Error as err:
            raise ColtivaError(f"{db}: cannot read the store: {err}") from None
    notes = []
    version = journey_version(journey)
    if current.version != version:
        notes.append(f"the store runs version {current.version} of this journey; this file is version {version}: "
                     "counts may not match")
    known = {s.id for s in journey.stages} | {EXIT} | set(DONE)
    gone = {stage: n for stage, n in sorted(stages.items()) if stage not in known and n}
    if gone:
        total = sum(gone.values())
        notes.append(f"{total} lead{'' if total == 1 else 's'} {'is' if total == 1 else 'are'} in stages "
                     f"this file does not have: {', '.join(gone)}")
    return StoreCounts(stages, edges, rules, enrolled, current.version, tuple(notes))


def leads_per_stage(db: str, names: list[str]) -> tuple[str, str, dict[str, int]]:
    """(journey name, version run, leads per stage now) for the first of `names` the store runs."""
    with open_store(db) as store:
        stored = {cj.name: cj for cj in stored_journeys(store, db)}
        name = next((n for n in names if n in stored), None)
        if name is None:
            have = ", ".join(repr(n) for n in stored) or "none"
            raise ColtivaError(f"{db}: no journey named {names[0]!r} in this store (it has: {have})")
        try:
            counts = store.stage_counts().get(name, {})
        except sqlite3.Error as err:
            raise ColtivaError(f"{db}: cannot read the store: {err}") from None
    return name, stored[name].version, counts
