"""The durable store: one SQLite file (WAL) holding everything a run needs to resume exactly.

Tables: journeys by version, lead records (with an index on the next due time),
the input log (every event applied and every tick, in order: seen ids and the
source of `explain`'s replay), the outbox, quarantined events, and the history
of stage transitions. A batch is one transaction: the states and the actions
they caused commit together, so a crash can neither lose nor repeat an action.
"""

from __future__ import annotations

import difflib
import fcntl
import json
import os
import pickle
import sqlite3
from pathlib import Path

from dsl.errors import StoreError

from .compiler import CompiledJourney, compile_journey
from .events import format_time
from .record import Lead

__all__ = ["Store", "DEFAULT_DB", "SCHEMA_VERSION"]

DEFAULT_DB = "coltiva.db"
#: Bumped whenever the tables change; a store of another version is refused, not half-used.
SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS journeys (
    seq INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    version TEXT NOT NULL,
    model BLOB NOT NULL,
    sources TEXT NOT NULL,
    UNIQUE (name, version)
);
CREATE TABLE IF NOT EXISTS leads (
    journey TEXT NOT NULL,
    lead TEXT NOT NULL,
    version TEXT NOT NULL,
    state TEXT NOT NULL,
    due INTEGER,
    record TEXT NOT NULL,
    PRIMARY KEY (journey, lead)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS leads_by_due ON leads (due) WHERE due IS NOT NULL;
CREATE TABLE IF NOT EXISTS inputs (
    seq INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    event_id TEXT UNIQUE,
    lead TEXT,
    time INTEGER NOT NULL,
    event TEXT,
    journeys TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS inputs_by_lead ON inputs (lead) WHERE lead IS NOT NULL;
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    journey TEXT NOT NULL,
    version TEXT NOT NULL,
    lead TEXT NOT NULL,
    kind TEXT NOT NULL,
    time INTEGER NOT NULL,
    data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS quarantine (
    seq INTEGER PRIMARY KEY,
    source TEXT NOT NULL,
    line_no INTEGER NOT NULL,
    reason TEXT NOT NULL,
    raw TEXT NOT NULL,
    UNIQUE (source, line_no, raw)
);
CREATE TABLE IF NOT EXISTS transitions (
    seq INTEGER PRIMARY KEY,
    journey TEXT NOT NULL,
    lead TEXT NOT NULL,
    src TEXT,
    dst TEXT NOT NULL,
    time INTEGER NOT NULL,
    rule TEXT
);
"""


class Store:
    """A SQLite store. Use as a context manager; every write goes through `batch()`."""

    def __init__(self, path: str | Path = DEFAULT_DB, writer: bool = False):
        self.path = str(path)
        in_memory = self.path == ":memory:"  # a private store of one process: nothing to lock
        self._lock = self._take_writer_lock() if writer and not in_memory else None
        try:
            self.db = sqlite3.connect(self.path, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            version = self.db.execute("PRAGMA user_version").fetchone()[0]
            empty = self.db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0] == 0
        except sqlite3.OperationalError as err:
            self._release()
            raise StoreError(f"{self.path}: cannot open or create the store ({err})") from None
        except sqlite3.DatabaseError as err:
            self._release()
            raise StoreError(f"{self.path}: not a Coltiva store ({err})") from None
        if not empty and version != SCHEMA_VERSION:
            ours = self.db.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name IN ('journeys', 'outbox')").fetchone()
            self.db.close()
            self._release()
            if not ours:
                raise StoreError(f"{self.path}: an SQLite file, but not a Coltiva store; use another --db")
            raise StoreError(f"{self.path}: made by another version of Coltiva (store format {version}, "
                             f"this one reads {SCHEMA_VERSION}); use a new --db")
        self.db.executescript(SCHEMA)
        self.db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _release(self) -> None:
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def _take_writer_lock(self):
        """One writer per store: a second `run`, `tick` or `serve` is refused, not allowed to race.

        A writer keeps lead records in memory between batches; a second writer on
        the same file would make them stale. Readers (leads, explain, actions) need
        no lock: SQLite's WAL lets them read while one process writes.
        """
        lock_path = self.path + ".lock"
        try:
            handle = open(lock_path, "a+")
        except OSError as err:
            raise StoreError(f"{self.path}: cannot create the store here ({err.strerror})") from None
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise StoreError(
                f"{self.path} is being written by {holder}: one writer at a time. "
                "With `coltiva serve` running, send ticks to POST /tick instead of running `coltiva tick`."
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"coltiva (pid {os.getpid()})")
        handle.flush()
        return handle

    def close(self) -> None:
        self.db.close()
        self._release()  # closing the lock file releases the lock

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- journeys ----------------------------------------------------------------
    def register(self, cj: CompiledJourney, sources: dict[str, str]) -> None:
        """Record a journey version; refuse a changed journey while leads are in it."""
        row = self.db.execute(
            "SELECT version, sources FROM journeys WHERE name = ? ORDER BY seq DESC LIMIT 1", (cj.name,)
        ).fetchone()
        if row is not None and row[0] == cj.version:
            return
        if row is not None:
            in_flight = self.db.execute("SELECT COUNT(*) FROM leads WHERE journey = ?", (cj.name,)).fetchone()[0]
            if in_flight:
                old_model = pickle.loads(self.db.execute(
                    "SELECT model FROM journeys WHERE name = ? AND version = ?", (cj.name, row[0])).fetchone()[0])
                raise StoreError(_changed_message(cj, row[0], old_model, in_flight))
        self.db.execute(
            "INSERT OR IGNORE INTO journeys (name, version, model, sources) VALUES (?, ?, ?, ?)",
            (cj.name, cj.version, pickle.dumps(cj.journey), json.dumps(sources, ensure_ascii=False)),
        )

    def journeys(self) -> list[CompiledJourney]:
        """The current version of every journey in the store, compiled."""
        rows = self.db.execute(
            "SELECT name, model FROM journeys WHERE seq IN (SELECT MAX(seq) FROM journeys GROUP BY name) ORDER BY seq"
        ).fetchall()
        return [compile_journey(pickle.loads(model)) for _, model in rows]

    # -- leads -------------------------------------------------------------------
    def load_leads(self, journey: str, leads: list[str]) -> dict[str, Lead]:
        found: dict[str, Lead] = {}
        for start in range(0, len(leads), 500):
            chunk = leads[start:start + 500]
            marks = ",".join("?" * len(chunk))
            for lead, record in self.db.execute(
                f"SELECT lead, record FROM leads WHERE journey = ? AND lead IN ({marks})", (journey, *chunk)
            ):
                found[lead] = Lead.from_list(json.loads(record))
        return found

    def due_leads(self, now: int) -> list[tuple[str, str, str]]:
        """(journey, lead, record) of every lead with something due by `now`: one indexed query."""
        return self.db.execute(
            "SELECT journey, lead, record FROM leads WHERE due IS NOT NULL AND due <= ? ORDER BY journey, lead",
            (now,),
        ).fetchall()

    def seen(self, event_ids: list[str]) -> set[str]:
        seen: set[str] = set()
        for start in range(0, len(event_ids), 500):
            chunk = event_ids[start:start + 500]
            marks = ",".join("?" * len(chunk))
            seen.update(r[0] for r in self.db.execute(
                f"SELECT event_id FROM inputs WHERE event_id IN ({marks})", chunk))
        return seen

    # -- one atomic batch --------------------------------------------------------
    def write_batch(self, *, inputs=(), quarantine=(), leads=(), actions=(), transitions=()) -> None:
        """Everything one batch changed, in one transaction (the outbox pattern)."""
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany(
                "INSERT INTO inputs (kind, event_id, lead, time, event, journeys) VALUES (?, ?, ?, ?, ?, ?)", inputs)
            db.executemany(
                "INSERT OR IGNORE INTO quarantine (source, line_no, reason, raw) VALUES (?, ?, ?, ?)", quarantine)
            db.executemany(
                "INSERT OR REPLACE INTO leads (journey, lead, version, state, due, record) VALUES (?, ?, ?, ?, ?, ?)",
                [(j, lead, v, rec.state, rec.due, json.dumps(rec.to_list(), separators=(",", ":")))
                 for j, lead, v, rec in leads],
            )
            db.executemany(
                "INSERT INTO outbox (key, journey, version, lead, kind, time, data) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(a.key, a.journey, a.version, a.lead, a.kind, a.time,
                  json.dumps(a.data, ensure_ascii=False, separators=(",", ":"))) for a in actions],
            )
            db.executemany(
                "INSERT INTO transitions (journey, lead, src, dst, time, rule) VALUES (?, ?, ?, ?, ?, ?)", transitions)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    # -- reading -----------------------------------------------------------------
    def stage_counts(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for journey, state, n in self.db.execute(
            "SELECT journey, state, COUNT(*) FROM leads GROUP BY journey, state"
        ):
            out.setdefault(journey, {})[state] = n
        return out

    def transition_counts(self, journey: str) -> dict[tuple[str, str], int]:
        return {
            (src, dst): n
            for src, dst, n in self.db.execute(
                "SELECT src, dst, COUNT(*) FROM transitions WHERE journey = ? AND src IS NOT NULL GROUP BY src, dst",
                (journey,),
            )
        }

    def send_counts(self, journey: str) -> list[tuple[str, str, int]]:
        """(content kind, content id, sends) for a journey, most sent first."""
        return self.db.execute(
            "SELECT json_extract(data, '$.content_kind'), json_extract(data, '$.content'), COUNT(*) FROM outbox "
            "WHERE journey = ? AND kind = 'send' GROUP BY 1, 2 ORDER BY 3 DESC, 2",
            (journey,),
        ).fetchall()

    def action_counts(self, journey: str) -> dict[str, int]:
        return dict(self.db.execute(
            "SELECT kind, COUNT(*) FROM outbox WHERE journey = ? GROUP BY kind", (journey,)).fetchall())

    def actions(self, since: int | None = None, after: int = 0, kind: str | None = None):
        """(position, action as JSON) in outbox order; the row's columns are not repeated in `data`."""
        sql = "SELECT seq, key, kind, journey, version, lead, time, data FROM outbox WHERE seq > ?"
        args: list = [after]
        if since is not None:
            sql += " AND time >= ?"
            args.append(since)
        if kind is not None:
            sql += " AND kind = ?"
            args.append(kind)
        for seq, key, kind_, journey, version, lead, time, data in self.db.execute(sql + " ORDER BY seq", args):
            yield seq, {"key": key, "kind": kind_, "journey": journey, "version": version, "lead": lead,
                        "time": format_time(time), **json.loads(data)}

    def quarantined(self):
        yield from self.db.execute("SELECT seq, source, line_no, reason, raw FROM quarantine ORDER BY seq")

    def lead_inputs(self, lead: str):
        """The lead's events and every tick, in applied order, with the journeys each reached (for replay)."""
        return [(kind, time, event, json.loads(journeys)) for kind, time, event, journeys in self.db.execute(
            "SELECT kind, time, event, journeys FROM inputs WHERE lead = ? OR kind = 'tick' ORDER BY seq", (lead,)
        )]

    def lead_journeys(self, lead: str) -> list[tuple[str, Lead]]:
        return [(j, Lead.from_list(json.loads(r)))
                for j, r in self.db.execute("SELECT journey, record FROM leads WHERE lead = ?", (lead,))]

    def dump(self) -> dict:
        """Everything that defines the store's meaning, for equality tests."""
        q = self.db.execute
        return {
            "leads": q("SELECT journey, lead, version, state, due, record FROM leads ORDER BY journey, lead").fetchall(),
            "inputs": q("SELECT kind, event_id, lead, time, event, journeys FROM inputs ORDER BY seq").fetchall(),
            "outbox": [(a["key"], a["journey"], a["lead"], a["kind"], a["time"], json.dumps(a, ensure_ascii=False))
                       for _, a in self.actions()],
            "quarantine": q("SELECT source, line_no, reason, raw FROM quarantine ORDER BY seq").fetchall(),
            "transitions": q("SELECT journey, lead, src, dst, time, rule FROM transitions ORDER BY seq").fetchall(),
        }

    # -- for the service (coltiva serve): read-only connections, the clock's bounds -----------
    @classmethod
    def open_reader(cls, path: str | Path) -> "Store":
        """A read-only connection on an existing store: no schema write, no lock, usable from any thread.

        The service reads (leads, actions, explain, quarantine) on a pool of these while its one
        writer commits: SQLite's WAL lets them read the last committed state without waiting.
        """
        from urllib.parse import quote

        store = cls.__new__(cls)
        store.path = str(path)
        store._lock = None
        try:
            store.db = sqlite3.connect(f"file:{quote(store.path)}?mode=ro", uri=True, isolation_level=None,
                                       check_same_thread=False)
            store.db.execute("SELECT 1 FROM outbox LIMIT 1")
        except sqlite3.DatabaseError as err:
            raise StoreError(f"{store.path}: cannot read the store ({err})") from None
        return store

    def last_tick(self) -> int | None:
        """The time of the latest tick in the input log (time never goes back before it)."""
        return self.db.execute("SELECT MAX(time) FROM inputs WHERE kind = 'tick'").fetchone()[0]

    def last_event_time(self) -> int | None:
        """The latest event time in the input log (a tick far beyond it is likely a typo)."""
        return self.db.execute("SELECT MAX(time) FROM inputs WHERE kind = 'event'").fetchone()[0]

    def quarantine_page(self, after: int, limit: int) -> list[tuple]:
        """(seq, source, line_no, reason, raw) after position `after`, at most `limit` (keyset paging)."""
        return self.db.execute("SELECT seq, source, line_no, reason, raw FROM quarantine WHERE seq > ? "
                               "ORDER BY seq LIMIT ?", (after, limit)).fetchall()

    def due_count(self, now: int) -> int:
        """How many (journey, lead) records have something due by `now` (one indexed count)."""
        return self.db.execute("SELECT COUNT(*) FROM leads WHERE due IS NOT NULL AND due <= ?", (now,)).fetchone()[0]

    def last_action_seq(self) -> int:
        """The outbox position of the latest action (0 when empty)."""
        return self.db.execute("SELECT COALESCE(MAX(seq), 0) FROM outbox").fetchone()[0]

    def journey_versions(self) -> list[dict]:
        """Every journey version registered, oldest first: name, version, and whether it is the current one."""
        rows = self.db.execute("SELECT seq, name, version FROM journeys ORDER BY seq").fetchall()
        latest = {name: seq for seq, name, _ in rows}
        return [{"journey": name, "version": version, "current": latest[name] == seq} for seq, name, version in rows]


def _changed_message(cj, old_version, old_model, in_flight) -> str:
    """Name what changed in meaning: the two models in canonical layout, without comments."""
    from dataclasses import replace

    from dsl.formatter import format_journey

    def canonical(model) -> list[str]:
        return format_journey(replace(model, comments=())).splitlines()

    diff = [line for line in difflib.unified_diff(canonical(old_model), canonical(cj.journey), "stored", "file",
                                                  n=0, lineterm="")
            if not line.startswith(("---", "+++", "@@"))][:20]
    body = "\n".join("    " + line for line in diff) or "    (nothing visible in the layout; an included file?)"
    return (
        f"journey {cj.name!r} changed (version {old_version} -> {cj.version}) while {in_flight} lead(s) are in it.\n"
        f"  what changed:\n{body}\n"
        f"  Coltiva does not yet move leads in flight to a new version. Restore the file as it was, "
        f"or run the new version in a new store (--db), or give it a new `journey` name."
    )
