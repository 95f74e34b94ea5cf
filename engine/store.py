"""The durable store: one SQLite file (WAL) holding everything a run needs to resume exactly.

Tables: journeys by version, lead records (with an index on the next due time),
the input log (every event applied and every tick, in order: the source of the
duplicate check and of `explain`'s replay), the outbox, quarantined events, and
the history of stage transitions. A batch is one transaction: the states and the
actions they caused commit together, so a crash can neither lose nor repeat an action.

The input log only grows at its end: no index in random order is kept per event
(the cost of an event stays flat as the log grows). Each lead's inputs are chained
(`prev`, with the lead's last position in `lead_log`) for `explain`; ticks and
switches, which have no lead, have a small index of their own; duplicates are
checked against the ids of the last DEDUPE_WINDOW entries, held in memory.
"""

from __future__ import annotations

import contextlib
import difflib
import fcntl
import json
import os
import sqlite3
import stat
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from dsl.errors import StoreError
from dsl.formatter import canonical_text
from dsl.loader import load_sources, load_text

from .compiler import CompiledJourney, compile_journey, version_of
from .events import format_time
from .jsontext import compact, compact_text, parse
from .record import Lead, LeadWide, StoredLead

__all__ = ["Store", "StoredLead", "VersionRow", "DEFAULT_DB", "SCHEMA_VERSION", "DEDUPE_WINDOW", "text_changes",
           "lead_row", "action_row", "WRITER_CACHE_KIB", "CHECKPOINT_PAGES"]

DEFAULT_DB = "coltiva.db"
#: Bumped whenever the tables change. Format 1 kept journeys pickled; format 2 keeps them as text;
#: format 3 logs changes of version as `switch` inputs and lets a record remember content a version dropped;
#: format 4 drops the input log's two indexes in random order (event id, lead) for a per-lead chain;
#: format 5 adds each lead's lead-wide record (`lead_wide`: lead score, sends across journeys, clock);
#: format 6 drops the outbox's unique index on the action key (keys are unique by construction).
SCHEMA_VERSION = 6
#: Older formats this one migrates from when a writer opens the store (readers read them as they are).
MIGRATES_FROM = (1, 2, 3, 4, 5)
#: How many of the latest input-log entries the duplicate check covers (docs/engine.md, "Duplicates"):
#: an event is a duplicate when an event with its id is among the last DEDUPE_WINDOW entries of the log.
DEDUPE_WINDOW = 1_000_000

#: A writer's page cache (KiB; SQLite's default is 2 MiB): the B-trees written in random order (the records,
#: each lead's last log position, the outbox keys) stay in memory far longer as the store grows.
WRITER_CACHE_KIB = 65_536
#: WAL pages written before SQLite copies them back into the file (its default is 1,000): a page rewritten by
#: many batches (a record's, an index's) is copied back once instead of once per checkpoint.
CHECKPOINT_PAGES = 10_000

#: A record written by a step: a lead never changes version by stepping (it runs on the version it is on;
#: a new lead starts on the current one), so an existing row keeps its version, and the version index is
#: left alone (an INSERT OR REPLACE deleted and re-inserted the row in all three of the table's B-trees).
LEADS_STEPPED = ("INSERT INTO leads (journey, lead, version, state, due, record) VALUES (?, ?, ?, ?, ?, ?) "
                 "ON CONFLICT (journey, lead) DO UPDATE SET state = excluded.state, due = excluded.due, "
                 "record = excluded.record")
#: A record written by a switch of version (`write_switch`): the one writer that moves leads between versions.
LEADS_SWITCHED = ("INSERT INTO leads (journey, lead, version, state, due, record) VALUES (?, ?, ?, ?, ?, ?) "
                  "ON CONFLICT (journey, lead) DO UPDATE SET version = excluded.version, state = excluded.state, "
                  "due = excluded.due, record = excluded.record")

#: The input log (format 4): appended at its end only. `prev` chains a lead's inputs (its last one in
#: `lead_log`); the inputs of no lead (ticks, switches) have a partial index, kept only for them.
INPUT_LOG = """
CREATE TABLE IF NOT EXISTS inputs (
    seq INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    event_id TEXT,
    lead TEXT,
    time INTEGER NOT NULL,
    event TEXT,
    journeys TEXT NOT NULL,
    prev INTEGER
);
CREATE INDEX IF NOT EXISTS inputs_global ON inputs (seq) WHERE lead IS NULL;
CREATE TABLE IF NOT EXISTS lead_log (
    lead TEXT PRIMARY KEY,
    last INTEGER NOT NULL
) WITHOUT ROWID;
"""

#: The outbox (format 6): appended in order; no index on the key, which is unique by construction (the lead,
#: the journey's version, the rule and the lead's own action counter) and which no read looks up.
OUTBOX = """CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY,
    key TEXT NOT NULL,
    journey TEXT NOT NULL,
    version TEXT NOT NULL,
    lead TEXT NOT NULL,
    kind TEXT NOT NULL,
    time INTEGER NOT NULL,
    data TEXT NOT NULL
)"""

SCHEMA = """
CREATE TABLE IF NOT EXISTS journeys (
    seq INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    version TEXT NOT NULL,
    text TEXT NOT NULL,
    sources TEXT NOT NULL,
    UNIQUE (name, version)
);
CREATE TABLE IF NOT EXISTS journey_log (
    seq INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    version TEXT NOT NULL,
    applied_at TEXT,
    command TEXT,
    policy TEXT,
    note TEXT
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
CREATE INDEX IF NOT EXISTS leads_by_version ON leads (journey, version);
CREATE TABLE IF NOT EXISTS lead_wide (
    lead TEXT PRIMARY KEY,
    record TEXT NOT NULL
) WITHOUT ROWID;
""" + INPUT_LOG + OUTBOX + """;
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

#: Writers held by this process, by (device, inode): a second writer of the same file is refused
#: without opening it again (closing any descriptor of a file drops SQLite's POSIX locks on it).
_HELD: dict[tuple[int, int], str] = {}


@dataclass(frozen=True, slots=True)
class VersionRow:
    """One line of a journey's history: a version applied, when, how, and the leads on it now."""

    seq: int
    version: str
    applied_at: str | None
    command: str | None
    policy: str | None
    note: str | None
    leads: int
    in_flight: int


class Store:
    """A SQLite store. Use as a context manager; every write goes through `write_batch`.

    Three ways to open one: `writer=True` (a command that writes: the one writer,
    locked on the file itself), `read_only=True` (reading commands: never writes,
    never waits for the writer, works on a read-only file), or neither (library
    and tests: reads and writes, no lock).
    """

    def __init__(self, path: str | Path = DEFAULT_DB, writer: bool = False, read_only: bool = False,
                 dedupe_window: int = DEDUPE_WINDOW):
        self.path = str(path)
        self.read_only = read_only and not writer
        if dedupe_window < 1:
            raise ValueError("dedupe_window: at least 1")
        self.dedupe_window = dedupe_window
        # the duplicate window, read from the log's end on first use: id -> position, and (position, id) in order
        self._recent: dict[str, int] | None = None
        self._recent_order: deque[tuple[int, str]] = deque()
        self._end = 0  # the input log's last position, kept while the window is loaded
        in_memory = self.path == ":memory:"  # a private store of one process: nothing to lock
        self._lock: int | None = None
        self._key: tuple[int, int] | None = None
        if writer and not in_memory:
            self._take_writer_lock()
        try:
            if self.read_only:
                # a file nobody may write cannot change under us: `immutable` lets SQLite read it without
                # the WAL's shared-memory file, which a read-only folder would not let it create
                frozen = "&immutable=1" if not os.access(self.path, os.W_OK) else ""
                self.db = sqlite3.connect(f"file:{quote(self.path)}?mode=ro{frozen}", uri=True,
                                          isolation_level=None)
            else:
                self.db = sqlite3.connect(self.path, isolation_level=None)
                self.db.execute("PRAGMA journal_mode=WAL")
                self.db.execute("PRAGMA synchronous=NORMAL")
                # speed only, the meaning of a commit is unchanged (docs/decisions.md, "SQLite's cache and checkpoints")
                self.db.execute(f"PRAGMA cache_size = -{WRITER_CACHE_KIB}")
                self.db.execute(f"PRAGMA wal_autocheckpoint = {CHECKPOINT_PAGES}")
            self.format = self.db.execute("PRAGMA user_version").fetchone()[0]
            empty = self.db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0] == 0
        except sqlite3.OperationalError as err:
            self._release()
            raise StoreError(f"{self.path}: cannot open {'' if self.read_only else 'or create '}the store ({err})") \
                from None
        except sqlite3.DatabaseError as err:
            self._release()
            raise StoreError(f"{self.path}: not a Coltiva store ({err})") from None
        if empty:
            self.format = SCHEMA_VERSION
        elif self.format != SCHEMA_VERSION and not (self.format in MIGRATES_FROM and self._ours()):
            ours = self._ours()
            self.db.close()
            self._release()
            if not ours:
                raise StoreError(f"{self.path}: an SQLite file, but not a Coltiva store; use another --db")
            raise StoreError(f"{self.path}: made by another version of Coltiva (store format {self.format}, "
                             f"this one reads {SCHEMA_VERSION}); use a new --db")
        if self.read_only:
            return  # a reader never writes, not even the schema: a store it cannot read yet is read as it is
        try:
            if not empty and self.format != SCHEMA_VERSION:
                self._migrate()
            self.db.executescript(SCHEMA)
            self.db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            self.format = SCHEMA_VERSION
        except BaseException:
            self.close()
            raise

    def _ours(self) -> bool:
        return self.db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name IN ('journeys', 'outbox')"
        ).fetchone() is not None

    def _release(self) -> None:
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None
        if self._key is not None:
            _HELD.pop(self._key, None)
            self._key = None

    def _take_writer_lock(self) -> None:
        """One writer per store file: a second `run`, `tick` or `serve` is refused, not allowed to race.

        The lock is taken on the database file itself (an exclusive `flock`, which
        SQLite's own POSIX locks never touch), so a second writer reaching the same
        file through a symlink or a hard link is refused too. Readers need no lock:
        with WAL they read while one process writes.
        """
        refusal = (f"{self.path} is being written by {{holder}}: one writer at a time. "
                   "With `coltiva serve` running, send ticks to POST /tick instead of running `coltiva tick`.")
        try:
            known = os.stat(self.path)
        except FileNotFoundError:
            known = None
        except OSError as err:
            raise StoreError(f"{self.path}: cannot open the store ({err.strerror})") from None
        if known is not None and (known.st_dev, known.st_ino) in _HELD:
            raise StoreError(refusal.format(holder=_HELD[(known.st_dev, known.st_ino)]))
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as err:
            raise StoreError(f"{self.path}: cannot create the store here ({err.strerror})") from None
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            os.close(fd)
            raise StoreError(f"{self.path}: not a regular file; a store is a file")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)  # nothing of ours holds SQLite locks on this file yet: closing is safe
            raise StoreError(refusal.format(holder=_holder(self.path))) from None
        self._lock = fd
        self._key = (info.st_dev, info.st_ino)
        _HELD[self._key] = f"this process (pid {os.getpid()})"
        try:  # who holds it, for the message another writer gets (best effort: the lock is the file's)
            Path(os.path.realpath(self.path) + ".lock").write_text(f"coltiva (pid {os.getpid()})")
        except OSError:
            pass

    def close(self) -> None:
        self.db.close()
        self._release()  # after SQLite let go of the file: closing our descriptor releases the lock

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: committed when the block ends, rolled back when it raises."""
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
            db.execute("COMMIT")
        except BaseException:
            # SQLite may have rolled back already (a full disk does): the real error is the one to show
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    # -- older formats ------------------------------------------------------------
    def _migrate(self) -> None:
        """Step by step to the current format, each step one transaction."""
        if self.format == 1:
            self._migrate_1_to_2()
        # 2 -> 3 changes no table: records may gain a field and inputs a kind, which format 2 never wrote;
        # the new `user_version` (set by the caller) keeps an older Coltiva from misreading them
        if self.format < 4:
            self._migrate_to_4()
        # 4 -> 5 adds the table `lead_wide` (the caller's SCHEMA creates it): a lead of an older store has
        # no lead-wide record yet; its first step under lead-wide rules makes one at the lead's latest time
        if self._outbox_key_indexed():
            self._migrate_to_6()

    def _migrate_to_4(self) -> None:
        """Format 4: the input log without its indexes on event id and lead, each lead's inputs chained.

        The log is copied once, in order, with each row's `prev` (the same lead's
        previous input) computed by a window function; `lead_log` gets each lead's
        last input. One transaction: all or nothing.
        """
        with self._transaction() as db:
            db.execute("ALTER TABLE inputs RENAME TO inputs_format3")
            db.execute("DROP INDEX IF EXISTS inputs_by_lead")
            for statement in INPUT_LOG.split(";"):
                if statement.strip():  # one by one: executescript would commit the transaction first
                    db.execute(statement)
            db.execute("INSERT INTO inputs (seq, kind, event_id, lead, time, event, journeys, prev) "
                       "SELECT seq, kind, event_id, lead, time, event, journeys, CASE WHEN lead IS NULL THEN NULL "
                       "ELSE LAG(seq) OVER (PARTITION BY lead ORDER BY seq) END FROM inputs_format3 ORDER BY seq")
            db.execute("INSERT INTO lead_log (lead, last) SELECT lead, MAX(seq) FROM inputs_format3 "
                       "WHERE lead IS NOT NULL GROUP BY lead")
            db.execute("DROP TABLE inputs_format3")
            db.execute("PRAGMA user_version = 4")

    def _outbox_key_indexed(self) -> bool:
        """Whether the outbox still has the unique index on its key that formats 1 to 5 kept."""
        return any(origin == "u" for _, _, _, origin, _ in self.db.execute("PRAGMA index_list(outbox)"))

    def _migrate_to_6(self) -> None:
        """Format 6: the outbox without its unique index on the key (docs/decisions.md, "Store format 6").

        SQLite cannot drop a column's UNIQUE constraint, so the table is copied once, in order,
        positions (`seq`) kept: delivery offsets still point at the same actions. One transaction.
        """
        with self._transaction() as db:
            db.execute("ALTER TABLE outbox RENAME TO outbox_format5")
            db.execute(OUTBOX)
            db.execute("INSERT INTO outbox (seq, key, journey, version, lead, kind, time, data) "
                       "SELECT seq, key, journey, version, lead, kind, time, data FROM outbox_format5 ORDER BY seq")
            db.execute("DROP TABLE outbox_format5")
            db.execute("PRAGMA user_version = 6")

    def _migrate_1_to_2(self) -> None:
        """Format 1 kept each journey as a pickle beside its sources; rebuild it from the sources, as text.

        The pickle is never read: format 1 also stored every file the journey was
        run with, which rebuilds the same model. One transaction: all or nothing.
        """
        rows = self.db.execute("SELECT seq, name, version, sources FROM journeys ORDER BY seq").fetchall()
        with self._transaction() as db:
            db.execute("ALTER TABLE journeys RENAME TO journeys_format1")
            for statement in SCHEMA.split("CREATE TABLE IF NOT EXISTS leads")[0].split(";"):
                if statement.strip():  # one by one: executescript would commit the transaction first
                    db.execute(statement)
            for seq, name, old_version, sources in rows:
                text = _rebuilt_text(name, json.loads(sources))
                version = version_of(text)
                db.execute("INSERT OR IGNORE INTO journeys (seq, name, version, text, sources) "
                           "VALUES (?, ?, ?, ?, ?)", (seq, name, version, text, sources))
                db.execute("INSERT INTO journey_log (name, version, command, note) VALUES (?, ?, ?, ?)",
                           (name, version, "migrate", f"store format 1 (version {old_version})"))
                db.execute("UPDATE leads SET version = ? WHERE journey = ? AND version = ?",
                           (version, name, old_version))
            db.execute("DROP TABLE journeys_format1")
            db.execute("PRAGMA user_version = 2")

    # -- journeys ----------------------------------------------------------------
    def register(self, cj: CompiledJourney, sources: dict[str, str], command: str = "run",
                 applied_at: str | None = None) -> None:
        """Record a journey version as text; refuse a changed journey while leads are in it.

        The same version from other files (a comment, the layout, a moved include)
        only refreshes the stored sources, so rule positions stay those of the files.
        """
        sources_json = json.dumps(sources or {cj.journey.path: cj.text}, ensure_ascii=False)
        current = self.current_version(cj.name)
        if current == cj.version:
            self.db.execute("UPDATE journeys SET sources = ? WHERE name = ? AND version = ?",
                            (sources_json, cj.name, cj.version))
            return
        if current is not None:
            in_flight = self.db.execute("SELECT COUNT(*) FROM leads WHERE journey = ?", (cj.name,)).fetchone()[0]
            if in_flight:
                old_text = self.db.execute("SELECT text FROM journeys WHERE name = ? AND version = ?",
                                           (cj.name, current)).fetchone()[0]
                raise StoreError(_changed_message(cj, current, old_text, in_flight, self.path))
        # a new version with no lead in it yet is still a switch of the input log: a replay of a lead
        # whose earlier events enrolled it nowhere must know which version its next event meets
        switch = None if current is None else self.switch_input(cj.name, current, cj.version, "register",
                                                                 self.last_input_time())
        self.write_switch(cj, sources_json, command=command, applied_at=applied_at, policy=None, note=None,
                          switch=switch)

    @staticmethod
    def switch_input(name: str, old: str, new: str, policy: str, at: int) -> tuple:
        """The input-log row of a change of version: replay applies it to each lead at `at`."""
        payload = json.dumps({"journey": name, "from": old, "to": new, "policy": policy}, ensure_ascii=False,
                             separators=(",", ":"))
        return ("switch", None, None, at, payload, json.dumps([name], ensure_ascii=False))

    def write_switch(self, cj: CompiledJourney, sources_json: str, *, command: str | None, applied_at: str | None,
                     policy: str | None, note: str | None, switch: tuple | None, leads=(), actions=(),
                     transitions=()) -> None:
        """A version becomes current, with what it does to the leads, in one transaction: all or nothing."""
        with self._transaction() as db:
            db.execute(
                "INSERT INTO journeys (name, version, text, sources) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (name, version) DO UPDATE SET sources = excluded.sources",
                (cj.name, cj.version, cj.text, sources_json),
            )
            db.execute("INSERT INTO journey_log (name, version, applied_at, command, policy, note) "
                       "VALUES (?, ?, ?, ?, ?, ?)", (cj.name, cj.version, applied_at, command, policy, note))
            logged = self._write(inputs=[switch] if switch else [], leads=leads, actions=actions,
                                 transitions=transitions, switched=True)
        self._remember(logged)

    def last_input_time(self) -> int:
        """The latest instant the store has applied (an event or a tick), 0 for an empty store."""
        row = self.db.execute("SELECT MAX(time) FROM inputs").fetchone()
        return 0 if row[0] is None else row[0]

    def current_version(self, name: str) -> str | None:
        """The version of `name` that runs now: the last one applied (format 1: the last one stored)."""
        if self.format >= 2:
            row = self.db.execute("SELECT version FROM journey_log WHERE name = ? ORDER BY seq DESC LIMIT 1",
                                  (name,)).fetchone()
        else:
            row = self.db.execute("SELECT version FROM journeys WHERE name = ? ORDER BY seq DESC LIMIT 1",
                                  (name,)).fetchone()
        return None if row is None else row[0]

    def compiled(self, name: str, version: str) -> CompiledJourney:
        """One stored version of a journey, rebuilt from its text (leads drain on older versions)."""
        row = self.db.execute("SELECT text, sources FROM journeys WHERE name = ? AND version = ?",
                              (name, version)).fetchone()
        if row is None:
            raise StoreError(f"journey {name!r} has no version {version} in {self.path}")
        return _rebuild(name, version, row[0], json.loads(row[1]))

    def stored_text(self, name: str, version: str) -> str | None:
        row = self.db.execute("SELECT text FROM journeys WHERE name = ? AND version = ?", (name, version)).fetchone()
        return None if row is None else row[0]

    def journey_names(self) -> list[str]:
        return [name for (name,) in self.db.execute("SELECT DISTINCT name FROM journeys ORDER BY name")]

    def versions_in_use(self) -> list[tuple[str, str]]:
        """(journey, version) of every version some lead is on."""
        return self.db.execute("SELECT DISTINCT journey, version FROM leads ORDER BY journey, version").fetchall()

    def history(self, name: str) -> list[VersionRow]:
        """Every version applied to `name`, oldest first, with how many leads are on it now."""
        counts = {version: (n, live) for version, n, live in self.db.execute(
            "SELECT version, COUNT(*), SUM(state NOT IN ('exit', 'not_enrolled', 'waiting')) FROM leads "
            "WHERE journey = ? GROUP BY version", (name,))}
        return [VersionRow(seq, version, applied_at, command, policy, note, *counts.get(version, (0, 0)))
                for seq, version, applied_at, command, policy, note in self.db.execute(
                    "SELECT seq, version, applied_at, command, policy, note FROM journey_log WHERE name = ? "
                    "ORDER BY seq", (name,))]

    def leads_of(self, name: str):
        """(lead, StoredLead) of every lead of a journey, in lead order: what a plan reads."""
        for lead, version, record in self.db.execute(
                "SELECT lead, version, record FROM leads WHERE journey = ? ORDER BY lead", (name,)):
            yield lead, StoredLead.decode(version, record)

    def digest(self, name: str) -> str:
        """A hash of everything a plan for `name` reads: its leads, the log's end, the journey's history."""
        import hashlib

        h = hashlib.sha256()
        for row in self.db.execute("SELECT lead, version, record FROM leads WHERE journey = ? ORDER BY lead", (name,)):
            h.update(json.dumps(row, separators=(",", ":")).encode())
        h.update(json.dumps([self.db.execute("SELECT MAX(seq) FROM inputs").fetchone()[0],
                             self.db.execute("SELECT MAX(seq) FROM journey_log").fetchone()[0]]).encode())
        return h.hexdigest()

    def journeys(self) -> list[CompiledJourney]:
        """The current version of every journey in the store, rebuilt from its text and compiled."""
        if self.format >= 2:
            rows = self.db.execute(
                "SELECT j.name, j.version, j.text, j.sources FROM journeys j JOIN "
                "(SELECT name, version, MAX(seq) AS last FROM journey_log GROUP BY name) c "
                "ON c.name = j.name AND c.version = j.version ORDER BY j.seq").fetchall()
        else:  # a reader of a store not migrated yet: format 1 has the sources, never read the pickle
            rows = [(name, None, None, sources) for name, sources in self.db.execute(
                "SELECT name, sources FROM journeys WHERE seq IN "
                "(SELECT MAX(seq) FROM journeys GROUP BY name) ORDER BY seq")]
        return [_rebuild(name, version, text, json.loads(sources)) for name, version, text, sources in rows]

    # -- leads -------------------------------------------------------------------
    def load_leads(self, journey: str, leads: list[str]) -> dict[str, StoredLead]:
        found: dict[str, StoredLead] = {}
        for start in range(0, len(leads), 500):
            chunk = leads[start:start + 500]
            marks = ",".join("?" * len(chunk))
            for lead, version, record in self.db.execute(
                f"SELECT lead, version, record FROM leads WHERE journey = ? AND lead IN ({marks})", (journey, *chunk)
            ):
                found[lead] = StoredLead.decode(version, record)
        return found

    @property
    def has_lead_wide(self) -> bool:
        """Whether the store has the table `lead_wide` (an older store read as it is has not)."""
        return self.format >= 5

    def load_wides(self, leads: list[str]) -> dict[str, LeadWide]:
        """The lead-wide records of these leads (a lead without one is left out)."""
        found: dict[str, LeadWide] = {}
        if not self.has_lead_wide:
            return found  # a reader of an older store: no lead has one yet
        for start in range(0, len(leads), 500):
            chunk = leads[start:start + 500]
            marks = ",".join("?" * len(chunk))
            for lead, record in self.db.execute(f"SELECT lead, record FROM lead_wide WHERE lead IN ({marks})", chunk):
                found[lead] = LeadWide.from_list(parse(record))
        return found

    def due_leads(self, now: int) -> list[tuple[str, str, str, str]]:
        """(journey, lead, version, record) of every lead with something due by `now`: one indexed query."""
        return self.db.execute(
            "SELECT journey, lead, version, record FROM leads WHERE due IS NOT NULL AND due <= ? "
            "ORDER BY journey, lead", (now,),
        ).fetchall()

    def seen(self, event_ids: list[str]) -> set[str]:
        """The ids among these that an event of the last `dedupe_window` entries of the log has."""
        recent = self.recent(event_ids)
        return set(recent)

    def recent(self, event_ids: list[str]) -> dict[str, int]:
        """For each id among these within the duplicate window, the log position of its event."""
        window = self._window()
        return {i: window[i] for i in event_ids if i in window}

    def log_end(self) -> int:
        """The position of the input log's last entry (0 for an empty log)."""
        self._window()
        return self._end

    def _window(self) -> dict[str, int]:
        """The ids of the last `dedupe_window` log entries, read once from the log's end (a range of rowids)."""
        if self._recent is None:
            end = self.db.execute("SELECT COALESCE(MAX(seq), 0) FROM inputs").fetchone()[0]
            recent: dict[str, int] = {}
            order: deque[tuple[int, str]] = deque()
            for seq, event_id in self.db.execute(
                    "SELECT seq, event_id FROM inputs WHERE seq > ? AND event_id IS NOT NULL ORDER BY seq",
                    (end - self.dedupe_window,)):
                recent[event_id] = seq
                order.append((seq, event_id))
            self._recent, self._recent_order, self._end = recent, order, end
        return self._recent

    def _remember(self, logged: list[tuple[int, str | None]]) -> None:
        """After a commit: the new entries join the window, the oldest leave it."""
        if self._recent is None or not logged:
            return
        recent, order = self._recent, self._recent_order
        for seq, event_id in logged:
            if event_id is not None:
                recent[event_id] = seq
                order.append((seq, event_id))
        self._end = logged[-1][0]
        oldest = self._end - self.dedupe_window
        while order and order[0][0] <= oldest:
            seq, event_id = order.popleft()
            if recent.get(event_id) == seq:
                del recent[event_id]

    # -- one atomic batch --------------------------------------------------------
    def write_batch(self, *, inputs=(), quarantine=(), leads=(), actions=(), transitions=(), lead_rows=(),
                    action_rows=(), wides=()) -> None:
        """Everything one batch changed, in one transaction (the outbox pattern).

        `lead_rows` and `action_rows` are records and actions already encoded (`lead_row`,
        `action_row`), as worker processes send them; they are written after `leads` and `actions`.
        """
        with self._transaction():
            logged = self._write(inputs=inputs, quarantine=quarantine, leads=leads, actions=actions,
                                 transitions=transitions, lead_rows=lead_rows, action_rows=action_rows, wides=wides)
        self._remember(logged)

    def _write(self, *, inputs=(), quarantine=(), leads=(), actions=(), transitions=(), lead_rows=(),
               action_rows=(), wides=(), switched: bool = False) -> list[tuple[int, str | None]]:
        """The rows of one batch, inside the caller's transaction; (position, event id) of each input logged.

        Only a switch (`switched`) moves leads to another version; a batch's rows keep theirs."""
        db = self.db
        logged = self._log(list(inputs))
        db.executemany("INSERT OR REPLACE INTO lead_wide (lead, record) VALUES (?, ?)",
                       [(lead, compact(w.to_list())) for lead, w in wides])
        db.executemany(
            "INSERT OR IGNORE INTO quarantine (source, line_no, reason, raw) VALUES (?, ?, ?, ?)", quarantine)
        db.executemany(LEADS_SWITCHED if switched else LEADS_STEPPED,
                       [*(lead_row(*row) for row in leads), *lead_rows])
        db.executemany(
            "INSERT INTO outbox (key, journey, version, lead, kind, time, data) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [*map(action_row, actions), *action_rows],
        )
        db.executemany(
            "INSERT INTO transitions (journey, lead, src, dst, time, rule) VALUES (?, ?, ?, ?, ?, ?)", transitions)
        return logged

    def _log(self, inputs: list[tuple]) -> list[tuple[int, str | None]]:
        """Append inputs to the log, each chained to its lead's previous one (`prev`, `lead_log`)."""
        if not inputs:
            return []
        db = self.db
        end = db.execute("SELECT COALESCE(MAX(seq), 0) FROM inputs").fetchone()[0]
        leads = list({row[2] for row in inputs if row[2] is not None})
        heads: dict[str, int] = {}
        for start in range(0, len(leads), 500):
            chunk = leads[start:start + 500]
            heads.update(db.execute(f"SELECT lead, last FROM lead_log WHERE lead IN ({','.join('?' * len(chunk))})",
                                    chunk).fetchall())
        rows = []
        for seq, (kind, event_id, lead, time, event, journeys) in enumerate(inputs, end + 1):
            prev = None
            if lead is not None:
                prev = heads.get(lead)
                heads[lead] = seq
            rows.append((seq, kind, event_id, lead, time, event, journeys, prev))
        db.executemany("INSERT INTO inputs (seq, kind, event_id, lead, time, event, journeys, prev) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
        db.executemany("INSERT INTO lead_log (lead, last) VALUES (?, ?) "
                       "ON CONFLICT (lead) DO UPDATE SET last = excluded.last", [(lead, heads[lead]) for lead in leads])
        return [(row[0], row[2]) for row in rows]

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
        """The lead's events, every tick and every switch of version, in applied order, with the journeys
        each reached (for replay): the lead's chain, walked back from its last input, and the inputs of no lead."""
        if self.format < 4:  # a reader of a store not migrated yet: it still has its index on lead
            rows = self.db.execute("SELECT kind, time, event, journeys FROM inputs WHERE lead = ? "
                                   "OR kind IN ('tick', 'switch') ORDER BY seq", (lead,)).fetchall()
            return [(kind, time, event, json.loads(journeys)) for kind, time, event, journeys in rows]
        found: list[tuple] = []
        head = self.db.execute("SELECT last FROM lead_log WHERE lead = ?", (lead,)).fetchone()
        at = None if head is None else head[0]
        while at is not None:
            row = self.db.execute("SELECT seq, kind, time, event, journeys, prev FROM inputs WHERE seq = ?",
                                  (at,)).fetchone()
            found.append(row[:5])
            at = row[5]
        found += self.db.execute("SELECT seq, kind, time, event, journeys FROM inputs WHERE lead IS NULL "
                                 "ORDER BY seq").fetchall()
        found.sort()
        return [(kind, time, event, json.loads(journeys)) for _, kind, time, event, journeys in found]

    def lead_versions(self, lead: str) -> dict[str, StoredLead]:
        """The lead's record in each journey, with the version it is on."""
        return {j: StoredLead.decode(v, r) for j, v, r in self.db.execute(
            "SELECT journey, version, record FROM leads WHERE lead = ?", (lead,))}

    def lead_journeys(self, lead: str) -> list[tuple[str, Lead]]:
        return [(j, Lead.from_list(parse(r)))
                for j, r in self.db.execute("SELECT journey, record FROM leads WHERE lead = ?", (lead,))]

    def dump(self) -> dict:
        """Everything that defines the store's meaning, for equality tests."""
        q = self.db.execute
        return {
            "leads": q("SELECT journey, lead, version, state, due, record FROM leads"
                       " ORDER BY journey, lead").fetchall(),
            "inputs": q("SELECT kind, event_id, lead, time, event, journeys FROM inputs ORDER BY seq").fetchall(),
            "outbox": [(a["key"], a["journey"], a["lead"], a["kind"], a["time"], json.dumps(a, ensure_ascii=False))
                       for _, a in self.actions()],
            "quarantine": q("SELECT source, line_no, reason, raw FROM quarantine ORDER BY seq").fetchall(),
            "transitions": q("SELECT journey, lead, src, dst, time, rule FROM transitions ORDER BY seq").fetchall(),
            "lead_wide": q("SELECT lead, record FROM lead_wide ORDER BY lead").fetchall() if self.has_lead_wide else [],
        }

    # -- for the service (coltiva serve): the clock's bounds, paging, counts --------------------
    def last_tick(self) -> int | None:
        """The time of the latest tick in the input log (time never goes back before it)."""
        return self.db.execute("SELECT MAX(time) FROM inputs WHERE lead IS NULL AND kind = 'tick'").fetchone()[0]

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
        """Every journey version registered, oldest first: name, version, and whether it is the one that runs."""
        rows = self.db.execute("SELECT name, version FROM journeys ORDER BY seq").fetchall()
        current = {name: self.current_version(name) for name, _ in rows}
        return [{"journey": name, "version": version, "current": current[name] == version} for name, version in rows]


def lead_row(journey: str, lead: str, version: str, rec: Lead) -> tuple:
    """A record as the `leads` table keeps it: (journey, lead, version, state, due, record as JSON)."""
    return (journey, lead, version, rec.state, rec.due, compact(rec.to_list()))


def action_row(a) -> tuple:
    """An action as the outbox keeps it: (key, journey, version, lead, kind, time, data as JSON)."""
    return (a.key, a.journey, a.version, a.lead, a.kind, a.time, compact_text(a.data))


def _holder(path: str) -> str:
    try:
        return Path(os.path.realpath(path) + ".lock").read_text().strip()[:200] or "another process"
    except OSError:
        return "another process"


def _rebuilt_text(name: str, sources: dict[str, str]) -> str:
    """The canonical text of a journey from the files it was run with (for format 1 stores)."""
    if not sources:
        raise StoreError(f"journey {name!r} was stored without its source files; it cannot be rebuilt "
                         "(Coltiva never reads pickles): run it in a new store (--db)")
    loaded = load_sources(sources, check=False)
    if loaded.journey is None:
        raise StoreError(f"journey {name!r}: its stored source no longer parses; run it in a new store (--db)")
    return canonical_text(loaded.journey)


def _rebuild(name: str, version: str | None, text: str | None, sources: dict[str, str]) -> CompiledJourney:
    """A stored journey, compiled: from the files it was run with (same positions in every message),
    or from its canonical text when those do not give the stored version back."""
    attempts = [load_sources(sources)] if sources else []
    if text is not None:
        attempts.append(load_text(text, f"<stored {name}>"))
    for loaded in attempts:
        if loaded.ok and loaded.journey is not None:
            cj = compile_journey(loaded.journey, loaded.diagnostics)
            if version is None or cj.version == version:
                return cj
    problems = "; ".join(f"{d.span}: {d.message}" for loaded in attempts for d in loaded.diagnostics
                         if d.is_error)[:500]
    raise StoreError(f"journey {name!r} in the store no longer checks with this version of Coltiva"
                     + (f" ({problems})" if problems else ""))


def text_changes(old_text: str, new_text: str) -> list[str]:
    """The lines of the canonical text that changed, `-` removed and `+` added: what changed in meaning."""
    return [line for line in difflib.unified_diff(old_text.splitlines(), new_text.splitlines(), "stored", "file",
                                                  n=0, lineterm="")
            if not line.startswith(("---", "+++", "@@")) and line not in ("+", "-")]  # blank lines mean nothing


def _changed_message(cj, old_version: str, old_text: str, in_flight: int, db: str) -> str:
    """Name what changed in meaning: the two canonical texts (no comments, includes merged)."""
    diff = text_changes(old_text, cj.text)[:20]
    body = "\n".join("    " + line for line in diff) or "    (nothing visible in the layout; an included file?)"
    return (
        f"journey {cj.name!r} changed (version {old_version} -> {cj.version}) while {in_flight} lead(s) are in it.\n"
        f"  what changed:\n{body}\n"
        f"  A journey with leads in it changes in two steps: `coltiva plan {cj.journey.path} --db {db}` shows "
        f"what the change does to the leads in flight, then `coltiva apply {cj.journey.path} --db {db} "
        f"--policy migrate|drain --plan HASH` makes it."
    )
