"""The PostgreSQL store: the same tables, methods and meaning as `engine.store.Store`, shared by a team.

One store is one PostgreSQL schema (the connection's `search_path`, `public` by
default). A batch is one transaction, as with SQLite, and large batches travel
with COPY into a temporary table, then one `INSERT ... ON CONFLICT`.

Several writers may run at once, each owning a hash partition of the leads
(`engine.partition`). Positions in the ordered logs (inputs, outbox, transitions,
quarantine) are assigned at the end of each transaction under one transaction
lock, so they follow commit order: a consumer reading the outbox after position
N never misses a row that commits later with a smaller number (a sequence would
allow exactly that with several writers).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
from contextlib import contextmanager
from typing import Any

from dsl.errors import StoreError

from .compiler import CompiledJourney
from .jsontext import compact, parse
from .partition import WHOLE, Partition, lead_hash
from .record import LeadWide
from .store import Store, StoredLead, VersionRow, _changed_message, _rebuild, action_row, lead_row

__all__ = ["PgStore", "COPY_FROM", "FORMAT"]

#: The PostgreSQL tables' format, bumped when they change (the SQLite file has its own, SCHEMA_VERSION):
#: 3 is the first; its input log kept its event-id and lead indexes when SQLite's format 4 dropped them;
#: 4 adds each lead's lead-wide record (`lead_wide`, as SQLite's format 5).
FORMAT = 4

#: Batches with at least this many rows in a table go by COPY; smaller ones by one prepared statement.
COPY_FROM = 64

_T = 'TEXT COLLATE "C"'  # byte order, as SQLite compares: `ORDER BY lead` gives the same order on both stores
#: Format 4: each lead's lead-wide record (engine.record.LeadWide); a format 3 store gains it when a writer opens it.
LEAD_WIDE = f"CREATE TABLE IF NOT EXISTS lead_wide (lead {_T} PRIMARY KEY, record TEXT NOT NULL);"
#: Older formats a writer migrates from (a reader reads them as they are).
MIGRATES_FROM = (3,)
SCHEMA = f"""
CREATE TABLE IF NOT EXISTS coltiva_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS journeys (
    seq BIGSERIAL PRIMARY KEY, name {_T} NOT NULL, version {_T} NOT NULL, text TEXT NOT NULL,
    sources TEXT NOT NULL, UNIQUE (name, version));
CREATE TABLE IF NOT EXISTS journey_log (
    seq BIGINT PRIMARY KEY, name {_T} NOT NULL, version {_T} NOT NULL, applied_at TEXT, command TEXT,
    policy TEXT, note TEXT);
CREATE TABLE IF NOT EXISTS leads (
    journey {_T} NOT NULL, lead {_T} NOT NULL, version {_T} NOT NULL, state {_T} NOT NULL, due BIGINT,
    record TEXT NOT NULL, hash BIGINT NOT NULL, PRIMARY KEY (journey, lead));
CREATE INDEX IF NOT EXISTS leads_by_due ON leads (due) WHERE due IS NOT NULL;
CREATE INDEX IF NOT EXISTS leads_by_version ON leads (journey, version);
CREATE INDEX IF NOT EXISTS leads_by_lead ON leads (lead);
CREATE TABLE IF NOT EXISTS inputs (
    seq BIGINT PRIMARY KEY, kind {_T} NOT NULL, event_id {_T} UNIQUE, lead {_T}, time BIGINT NOT NULL,
    event TEXT, journeys TEXT NOT NULL, part_index INTEGER, part_count INTEGER);
CREATE INDEX IF NOT EXISTS inputs_by_lead ON inputs (lead) WHERE lead IS NOT NULL;
CREATE INDEX IF NOT EXISTS inputs_not_events ON inputs (seq) WHERE kind <> 'event';
CREATE TABLE IF NOT EXISTS outbox (
    seq BIGINT PRIMARY KEY, key {_T} NOT NULL UNIQUE, journey {_T} NOT NULL, version {_T} NOT NULL,
    lead {_T} NOT NULL, kind {_T} NOT NULL, time BIGINT NOT NULL, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS quarantine (
    seq BIGINT PRIMARY KEY, source TEXT NOT NULL, line_no BIGINT NOT NULL, reason TEXT NOT NULL,
    raw TEXT NOT NULL);
CREATE UNIQUE INDEX IF NOT EXISTS quarantine_once ON quarantine (source, line_no, md5(raw));
CREATE TABLE IF NOT EXISTS transitions (
    seq BIGINT PRIMARY KEY, journey {_T} NOT NULL, lead {_T} NOT NULL, src {_T}, dst {_T} NOT NULL,
    time BIGINT NOT NULL, rule TEXT);
{LEAD_WIDE}
"""

#: The ordered logs: positions assigned at commit, under the commit lock.
_COLUMNS = {
    "inputs": ("kind", "event_id", "lead", "time", "event", "journeys", "part_index", "part_count"),
    "quarantine": ("source", "line_no", "reason", "raw"),
    "outbox": ("key", "journey", "version", "lead", "kind", "time", "data"),
    "transitions": ("journey", "lead", "src", "dst", "time", "rule"),
    "journey_log": ("name", "version", "applied_at", "command", "policy", "note"),
}
_CONFLICT = {"quarantine": " ON CONFLICT (source, line_no, md5(raw)) DO NOTHING"}
_CONFLICT_ONCE = {"outbox": " ON CONFLICT (key) DO NOTHING"}
#: The tables a batch upserts (a row per key, the latest wins): their columns, and the statement.
_UPSERT_COLUMNS = {"leads": ("journey", "lead", "version", "state", "due", "record", "hash"),
                   "lead_wide": ("lead", "record")}
_UPSERT = {
    "leads": "INSERT INTO leads {source} ON CONFLICT (journey, lead) DO UPDATE SET version = excluded.version, "
             "state = excluded.state, due = excluded.due, record = excluded.record, hash = excluded.hash",
    "lead_wide": "INSERT INTO lead_wide {source} ON CONFLICT (lead) DO UPDATE SET record = excluded.record",
}
#: The columns of each table's rows that may hold text as it came (ids, names, raw lines). The others are
#: JSON made by `json.dumps`, which writes a NUL as `\u0000`, or numbers: no NUL to look for.
_RECORD_TEXT = (0, 1, 2, 3)
_LOG_TEXT = {"inputs": (0, 1, 2, 4, 5), "outbox": (0, 1, 2, 3, 4), "transitions": (0, 1, 2, 3, 5)}


#: A list of ids as one parameter: a JSON array, encoded in C by `json.dumps` (psycopg builds a `text[]`
#: parameter value by value in Python, which cost more than the query for a batch's thousands of ids).
_IDS = "SELECT jsonb_array_elements_text(%s::jsonb)"


def _id_list(ids) -> str:
    return json.dumps([_text(i) for i in ids], ensure_ascii=False)


def _redacted(url: str) -> str:
    """The URL without its password, for messages (a URL too broken to split still loses it)."""
    return re.sub(r"^([a-z]+://[^/@:]*):[^/@]*@", r"\1:***@", url)


def _key(*parts: str) -> int:
    """A 63-bit advisory-lock key, stable across processes."""
    return int.from_bytes(hashlib.blake2b("\0".join(parts).encode(), digest_size=8).digest(), "big") >> 1


def _text(value):
    """PostgreSQL text holds no NUL character; SQLite does. A NUL is kept as U+FFFD, a visible stand-in."""
    return value.replace("\x00", "\ufffd") if isinstance(value, str) and "\x00" in value else value


class PgStore:
    """A PostgreSQL store with `engine.store.Store`'s methods. Use as a context manager.

    `writer=True`: a command that writes; it owns `partition` of the leads (all of
    them by default) and is refused while another writer owns an overlapping part.
    `read_only=True`: reading commands (every transaction read-only). Neither:
    library and tests, no lock.
    """

    def __init__(self, url: str, writer: bool = False, read_only: bool = False, partition: Partition = WHOLE):
        try:
            import psycopg
        except ImportError:
            raise StoreError("a postgresql:// store needs psycopg 3: pip install 'coltiva[postgres]'") from None
        self._psycopg = psycopg
        self.url = url
        self.path = _redacted(url)
        self.read_only = read_only and not writer
        self.partition = partition
        try:
            timeout: dict[str, Any] = {} if "connect_timeout" in url else {"connect_timeout": 15}  # never wait
            self._conn = psycopg.connect(url, autocommit=True, **timeout)
            self.db = _Qmark(self._conn, self.path)
        except psycopg.Error as err:
            raise StoreError(f"{self.path}: cannot connect to the store ({_first_line(err)})") from None
        except Exception as err:  # a URL libpq cannot read
            raise StoreError(f"{self.path}: not a PostgreSQL address ({_first_line(err)})") from None
        try:
            self._open(writer)
        except BaseException:
            self._conn.close()
            raise

    def _open(self, writer: bool) -> None:
        self._loading: set[str] = set()  # load tables made in this session (temporary: one set per connection)
        q = self._q
        schema, database = q("SELECT current_schema(), current_database()").fetchone()
        if schema is None:
            raise StoreError(f"{self.path}: the search_path names no schema that exists; create it first")
        self._commit_key = _key(database, schema, "commit")
        if writer:
            self._take_writer_lock(database, schema)
        meta = q("SELECT to_regclass('coltiva_meta') IS NOT NULL, to_regclass('outbox') IS NOT NULL").fetchone()
        if meta[0]:
            row = q("SELECT value FROM coltiva_meta WHERE key = 'format'").fetchone()
            self.format = int(row[0]) if row else 0
            if self.format != FORMAT and self.format not in MIGRATES_FROM:
                raise StoreError(f"{self.path}: made by another version of Coltiva (store format {self.format}, "
                                 f"this one reads {FORMAT}); use another schema or database")
        elif meta[1]:
            raise StoreError(f"{self.path}: schema {schema!r} has tables, but not a Coltiva store's; "
                             "use another schema (options=-csearch_path=NAME) or database")
        else:
            self.format = FORMAT
            if self.read_only:
                raise StoreError(f"{self.path}: no Coltiva store here (run `coltiva run ... --db URL` first)")
        if self.read_only:
            q("SET default_transaction_read_only = on")
            return
        if q("SHOW synchronous_commit").fetchone()[0] == "off":
            q("SET synchronous_commit = on")  # a commit is written out before it returns, as SQLite's (docs/scaling.md)
        if not meta[0]:
            with self._conn.transaction():
                q("SELECT pg_advisory_xact_lock(%s)", (self._commit_key,))  # two first writers create it once
                q(SCHEMA)
                q("INSERT INTO coltiva_meta VALUES ('format', %s) ON CONFLICT (key) DO NOTHING",
                  (str(FORMAT),))
        elif self.format != FORMAT:
            with self._conn.transaction():  # 3 -> 4: a new table, nothing else changes
                q("SELECT pg_advisory_xact_lock(%s)", (self._commit_key,))
                q(LEAD_WIDE)
                q("UPDATE coltiva_meta SET value = %s WHERE key = 'format'", (str(FORMAT),))
            self.format = FORMAT

    def _take_writer_lock(self, database: str, schema: str) -> None:
        """A whole-store writer excludes every other writer; partition writers exclude the same partition.

        Session advisory locks: PostgreSQL drops them when the connection ends, a
        killed writer included, so a crash never leaves the store locked.
        """
        q = self._q
        store = _key(database, schema, "writers")
        p = self.partition
        taken = q("SELECT pg_try_advisory_lock(%s)" if p.whole else "SELECT pg_try_advisory_lock_shared(%s)",
                  (store,)).fetchone()[0]
        if taken and not p.whole:
            taken = q("SELECT pg_try_advisory_lock(%s)", (_key(database, schema, "part", str(p.count),
                                                                str(p.index)),)).fetchone()[0]
        if not taken:
            what = "the whole store" if p.whole else f"partition {p.index}/{p.count}"
            raise StoreError(f"{self.path}: another writer holds {what}: one writer per partition. "
                             "Several writers each take their own --partition K/N (the same N for all).")

    def _q(self, sql: str, args=None):
        return _execute(self._conn, self.path, sql, args)

    def close(self) -> None:
        self._conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @contextmanager
    def _transaction(self):
        """One transaction; database errors become a StoreError naming the store."""
        try:
            try:
                with self._conn.transaction():
                    yield
            except BaseException:
                self._loading.clear()  # a load table made in a transaction that rolled back is gone
                raise
        except self._psycopg.errors.UniqueViolation as err:
            raise StoreError(f"{self.path}: {_first_line(err)} (with several writers, an event id must "
                             "always come with the same lead)") from None
        except self._psycopg.Error as err:
            raise StoreError(f"{self.path}: the batch was not written ({_first_line(err)})") from None

    # -- journeys ----------------------------------------------------------------
    def register(self, cj: CompiledJourney, sources: dict[str, str], command: str = "run",
                 applied_at: str | None = None) -> None:
        """As `Store.register`; under the commit lock, so writers starting together record a version once."""
        sources_json = json.dumps(sources or {cj.journey.path: cj.text}, ensure_ascii=False)
        with self._transaction():
            self._q("SELECT pg_advisory_xact_lock(%s)", (self._commit_key,))
            current = self.current_version(cj.name)  # type: ignore[misc]  # Store's method, borrowed below
            if current == cj.version:
                self._q("UPDATE journeys SET sources = %s WHERE name = %s AND version = %s",
                        (sources_json, cj.name, cj.version))
                return
            if current is not None:
                in_flight = self._q("SELECT COUNT(*) FROM leads WHERE journey = %s", (cj.name,)).fetchone()[0]
                if in_flight:
                    # Store's method, borrowed below; a registered version always has its text
                    old_text: str = self.stored_text(cj.name, current)  # type: ignore[misc, assignment]
                    raise StoreError(_changed_message(cj, current, old_text, in_flight,
                                                      self.path))
            switch = None if current is None else self.switch_input(cj.name, current, cj.version, "register",
                                                                     self.last_input_time())  # type: ignore[misc]
            self.write_switch(cj, sources_json, command=command, applied_at=applied_at, policy=None, note=None,
                              switch=switch)

    switch_input = staticmethod(Store.switch_input)

    def write_switch(self, cj: CompiledJourney, sources_json: str, *, command: str | None, applied_at: str | None,
                     policy: str | None, note: str | None, switch: tuple | None, leads=(), actions=(),
                     transitions=()) -> None:
        """A version becomes current, with what it does to the leads, in one transaction: all or nothing."""
        with self._transaction():
            self._q("INSERT INTO journeys (name, version, text, sources) VALUES (%s, %s, %s, %s) "
                    "ON CONFLICT (name, version) DO UPDATE SET sources = excluded.sources",
                    (cj.name, cj.version, cj.text, sources_json))
            self._write(inputs=[switch] if switch else [], leads=leads, actions=actions, transitions=transitions,
                        log=[(cj.name, cj.version, applied_at, command, policy, note)])

    def history(self, name: str) -> list[VersionRow]:
        counts = {version: (n, live) for version, n, live in self._q(
            "SELECT version, COUNT(*), COUNT(*) FILTER (WHERE state NOT IN ('exit', 'not_enrolled', 'waiting')) "
            "FROM leads WHERE journey = %s GROUP BY version", (name,))}
        return [VersionRow(seq, version, applied_at, command, policy, note, *counts.get(version, (0, 0)))
                for seq, version, applied_at, command, policy, note in self._q(
                    "SELECT seq, version, applied_at, command, policy, note FROM journey_log WHERE name = %s "
                    "ORDER BY seq", (name,))]

    def journeys(self) -> list[CompiledJourney]:
        rows = self._q(
            "SELECT j.name, j.version, j.text, j.sources FROM journeys j JOIN "
            "(SELECT DISTINCT ON (name) name, version FROM journey_log ORDER BY name, seq DESC) c "
            "ON c.name = j.name AND c.version = j.version ORDER BY j.seq").fetchall()
        return [_rebuild(name, version, text, json.loads(sources)) for name, version, text, sources in rows]

    # -- leads -------------------------------------------------------------------
    def load_leads(self, journey: str, leads: list[str]) -> dict[str, StoredLead]:
        rows = self._q(f"SELECT lead, version, record FROM leads WHERE journey = %s AND lead IN ({_IDS})",
                       (journey, _id_list(leads)))
        return {lead: StoredLead.decode(version, record) for lead, version, record in rows}

    @property
    def has_lead_wide(self) -> bool:
        return self.format >= 4

    def load_wides(self, leads: list[str]) -> dict[str, LeadWide]:
        if not self.has_lead_wide:
            return {}
        return {lead: LeadWide.from_list(parse(record)) for lead, record in self._q(
            f"SELECT lead, record FROM lead_wide WHERE lead IN ({_IDS})", (_id_list(leads),))}

    def due_leads(self, now: int) -> list[tuple[str, str, str, str]]:
        """As `Store.due_leads`, for the leads of this store's partition only."""
        p = self.partition
        mine = "" if p.whole else f" AND mod(hash, {int(p.count)}) = {int(p.index)}"
        return self._q("SELECT journey, lead, version, record FROM leads WHERE due IS NOT NULL AND due <= %s"
                       f"{mine} ORDER BY journey, lead", (now,)).fetchall()

    def seen(self, event_ids: list[str]) -> set[str]:
        """Every id among these that an applied event had, however long ago (the unique index on `event_id`)."""
        if not event_ids:
            return set()
        return {r[0] for r in self._q(f"SELECT event_id FROM inputs WHERE event_id IN ({_IDS})",
                                      (_id_list(event_ids),))}

    # SQL both databases read alike: the SQLite store's own methods, through `_Qmark`
    last_input_time = Store.last_input_time
    current_version = Store.current_version
    compiled = Store.compiled
    stored_text = Store.stored_text
    journey_names = Store.journey_names
    versions_in_use = Store.versions_in_use
    leads_of = Store.leads_of
    digest = Store.digest
    stage_counts = Store.stage_counts
    transition_counts = Store.transition_counts
    action_counts = Store.action_counts
    actions = Store.actions  # positions only grow as transactions commit: the cursor is in commit order
    quarantined = Store.quarantined
    lead_versions = Store.lead_versions
    lead_journeys = Store.lead_journeys
    dump = Store.dump
    # what the service and `tick` read (their SQL is portable)
    last_tick = Store.last_tick
    last_event_time = Store.last_event_time
    quarantine_page = Store.quarantine_page
    due_count = Store.due_count
    last_action_seq = Store.last_action_seq
    journey_versions = Store.journey_versions

    # -- one atomic batch --------------------------------------------------------
    def write_batch(self, *, inputs=(), quarantine=(), leads=(), actions=(), transitions=(), wides=()) -> None:
        """Everything one batch changed, in one transaction (the outbox pattern)."""
        with self._transaction():
            self._write(inputs=inputs, quarantine=quarantine, leads=leads, actions=actions, transitions=transitions,
                        wides=wides)

    def add_actions(self, actions) -> None:
        """Actions into the outbox by key, in one transaction: a key already there keeps its row and its
        position. For a sink that may write an action again (Flink's, after a restore from a checkpoint)."""
        with self._transaction():
            self._write(actions=actions, once=True)

    def _write(self, *, inputs=(), quarantine=(), leads=(), actions=(), transitions=(), log=(), once=False,
               wides=()) -> None:
        """The rows of one batch, inside the caller's transaction: records first, then the ordered logs
        under the commit lock, held to the commit, so positions grow in commit order.

        Rows are encoded as the SQLite store encodes them (`lead_row`, `action_row`): both stores hold the
        same text. Small batches go in pipeline mode (every statement sent at once, one wait). Large
        ones by COPY (which a pipeline cannot carry), one set-based statement per table: records and
        lead-wide records into a load table, then one `INSERT ... ON CONFLICT`; log rows straight into
        their table, with positions counted from the last committed one (read under the lock).
        """
        records = _no_nul([(*lead_row(j, lead, v, rec), lead_hash(lead)) for j, lead, v, rec in _last_per_key(leads)],
                          _RECORD_TEXT)
        wide_rows = _no_nul([(lead, compact(w.to_list())) for lead, w in wides], (0,))
        p = self.partition
        part = (None, None) if p.whole else (p.index, p.count)
        logs = {
            "journey_log": list(log),
            "inputs": [(*row, *(part if row[0] == "tick" else (None, None))) for row in inputs],
            "quarantine": list(quarantine),
            "outbox": [action_row(a) for a in actions],
            "transitions": list(transitions),
        }
        logs = {table: _no_nul(rows, _LOG_TEXT.get(table)) for table, rows in logs.items() if rows}
        large = max(len(records), len(wide_rows), *map(len, logs.values()), 0) >= COPY_FROM
        with contextlib.nullcontext() if large else self._conn.pipeline(), self._conn.cursor() as cur:
            for table, rows in (("leads", records), ("lead_wide", wide_rows)):
                if not rows:
                    continue
                upsert = _UPSERT[table]
                if large:
                    self._copy(cur, f"load_{table}", _UPSERT_COLUMNS[table], rows)
                    cur.execute(upsert.format(source=f"SELECT * FROM load_{table}"))
                else:
                    cur.executemany(upsert.format(source=f"VALUES ({_marks(_UPSERT_COLUMNS[table])})"), rows)
            if not logs:
                return
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (self._commit_key,))
            if large:
                last = dict(zip(logs, cur.execute("SELECT " + ", ".join(
                    f"(SELECT COALESCE(MAX(seq), 0) FROM {table})" for table in logs)).fetchone()))  # type: ignore[arg-type]  # an aggregate: one row
            for table, rows in logs.items():
                columns = _COLUMNS[table]
                names = ", ".join(columns)
                conflict = _CONFLICT_ONCE.get(table, "") if once else _CONFLICT.get(table, "")
                if large and not conflict:  # straight in: positions after the last committed one, in order
                    base = last[table]
                    self._copy(cur, table, ("seq", *columns), [(base + n, *row) for n, row in enumerate(rows, 1)])
                elif large:  # rows that may be there already: through a load table, then ON CONFLICT
                    self._copy(cur, f"load_{table}", ("seq", *columns), [(n, *row) for n, row in enumerate(rows, 1)])
                    cur.execute(f"INSERT INTO {table} (seq, {names}) SELECT {last[table]} + l.seq, {names} "
                                f"FROM load_{table} l ORDER BY l.seq{conflict}")
                else:
                    cur.executemany(f"INSERT INTO {table} (seq, {names}) VALUES ((SELECT COALESCE(MAX(seq), 0) + 1 "
                                    f"FROM {table}), {_marks(columns)}){conflict}", rows)

    def _copy(self, cur, table: str, columns: tuple[str, ...], rows: list[tuple]) -> None:
        """Rows into `table` by COPY. A load table (`load_NAME`: NAME's columns, no constraint, no index)
        is made once per session; its rows go at the commit (or the rollback) that ends the batch."""
        if table.startswith("load_") and table not in self._loading:
            cur.execute(f"CREATE TEMP TABLE IF NOT EXISTS {table} (LIKE {table[5:]}) ON COMMIT DELETE ROWS")
            self._loading.add(table)
        with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)

    # -- reading -----------------------------------------------------------------
    def send_counts(self, journey: str) -> list[tuple[str, str, int]]:
        return self._q(
            "SELECT data::jsonb ->> 'content_kind', data::jsonb ->> 'content', COUNT(*) FROM outbox "
            "WHERE journey = %s AND kind = 'send' GROUP BY 1, 2 ORDER BY 3 DESC, 2 COLLATE \"C\"",
            (journey,)).fetchall()

    def lead_inputs(self, lead: str):
        """The lead's events, the ticks of the writer that owned it, and every switch, in applied order."""
        return [(kind, time, event, json.loads(journeys)) for kind, time, event, journeys in self._q(
            "SELECT kind, time, event, journeys FROM inputs WHERE lead = %s OR kind = 'switch' OR (kind = 'tick' "
            "AND (part_count IS NULL OR mod(%s::bigint, part_count) = part_index)) ORDER BY seq",
            (_text(lead), lead_hash(lead)))]

class _Qmark:
    """The connection as the SQLite store's methods use it: `?` placeholders become psycopg's `%s`."""

    __slots__ = ("_conn", "_path")

    def __init__(self, conn, path: str):
        self._conn = conn
        self._path = path

    def execute(self, sql: str, args=None):
        return _execute(self._conn, self._path, sql.replace("?", "%s") if args else sql, args)

    def __getattr__(self, name):
        return getattr(self._conn, name)


def _execute(conn, path: str, sql: str, args):
    """One statement; a database error (the server gone, a permission) becomes a StoreError naming the store."""
    import psycopg

    try:
        return conn.execute(sql, args)
    except psycopg.errors.UniqueViolation:
        raise  # a batch's own error: `_transaction` words it
    except psycopg.Error as err:
        raise StoreError(f"{path}: {_first_line(err)}") from None


def _last_per_key(leads):
    """Each (journey, lead) once, its last record: one batch may change a lead twice (an upsert takes a
    row once)."""
    return {(j, lead): (j, lead, v, rec) for j, lead, v, rec in leads}.values()


def _no_nul(rows: list[tuple], columns: tuple[int, ...] | None = None) -> list[tuple]:
    """PostgreSQL text holds no NUL character; SQLite does. A NUL is kept as U+FFFD, a visible stand-in.
    One search of the batch's text in `columns` (all by default): rows are rebuilt only in a batch that
    holds a NUL."""
    if not rows:
        return rows
    picked = range(len(rows[0])) if columns is None else columns
    if "\x00" not in "".join([v for row in rows for i in picked if (v := row[i]).__class__ is str]):
        return rows
    return [tuple(map(_text, row)) for row in rows]


def _marks(columns) -> str:
    return ", ".join(["%s"] * len(columns))


def _first_line(err: BaseException) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0]
