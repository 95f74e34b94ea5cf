"""Runs events and ticks through journeys, in batches, on a store.

The runner only wraps the pure step: it parses lines, drops events whose id was
seen, keeps malformed lines aside, steps each event through each journey, and
commits each batch atomically. The meaning of a run never depends on the batch
size, on the process, or on a restart in between.

Each lead is stepped with the version of its journey it is on (after a `drain`,
leads in flight finish on an older version); a lead entering a journey enters the
version that runs now.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable, Iterator, cast

from .compiler import CompiledJourney, lead_rules
from .events import Event, Malformed, parse_event
from .record import ATTRIBUTES_ONLY, Lead, LeadWide, Strings, pack, unpack
from .step import advance_lead, step_lead
from .store import Store, StoredLead

__all__ = ["Runner", "Summary", "GatheredWrites", "Candidate", "BUILTIN_TYPES", "DEFAULT_BATCH", "collect_actions",
           "line_batches", "read_batch", "drop_duplicates", "bug_reason", "batch_gc", "ReadLines"]

#: Event types every journey understands: `lead.updated` carries attributes only.
BUILTIN_TYPES = frozenset({ATTRIBUTES_ONLY})
DEFAULT_BATCH = 5000


@dataclass
class Summary:
    lines: int = 0
    applied: int = 0
    duplicates: int = 0
    quarantined: int = 0
    ticked_leads: int = 0
    actions: Counter = field(default_factory=Counter)

    def add(self, other: "Summary") -> None:
        self.lines += other.lines
        self.applied += other.applied
        self.duplicates += other.duplicates
        self.quarantined += other.quarantined
        self.ticked_leads += other.ticked_leads
        self.actions.update(other.actions)


def collect_actions(acts, actions: list, transitions: list) -> None:
    """Actions go to the outbox; stage moves and exits also to the history of transitions."""
    for a in acts:
        actions.append(a)
        if a.kind == "stage":
            transitions.append((a.journey, a.lead, a.data["from"], a.data["to"], a.time, a.data["rule"]))
        elif a.kind == "exit":
            transitions.append((a.journey, a.lead, a.data["from"], "exit", a.time, a.data["rule"]))


@dataclass(frozen=True, slots=True)
class Candidate:
    """A well-formed event of a batch, with its line as received (what the input log keeps) and its number."""

    event: Event
    raw: str
    number: int


@dataclass(frozen=True, slots=True)
class ReadLines:
    """A request's non-blank lines, (line number, line) as `line_batches` gives them, with what `parse_event`
    made of each (with the runner's `known_types`): the service reads each line once, when it arrives."""

    lines: list[tuple[int, str | bytes]]
    parsed: list[Event | Malformed]

    def __len__(self) -> int:
        return len(self.lines)


def line_batches(lines: Iterable[str | bytes], size: int) -> Iterator[list[tuple[int, str | bytes]]]:
    """(line number, line) of the non-blank lines, `size` at a time."""
    batch: list[tuple[int, str | bytes]] = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        batch.append((number, line.rstrip(b"\n") if isinstance(line, bytes) else line.rstrip("\n")))
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def read_batch(batch: list[tuple[int, str | bytes]], source: str, known_types: frozenset[str],
               catalogue=None, read: list[Event | Malformed] | None = None) -> tuple[list[Candidate], list[tuple]]:
    """The batch's well-formed events in order, and its malformed lines as quarantine rows.

    With an event catalogue, an event that breaks it is kept aside too. `read`: what
    `parse_event(line, known_types)` already gave for each line of the batch (not parsed again)."""
    candidates: list[Candidate] = []
    quarantine: list[tuple] = []
    for i, (number, line) in enumerate(batch):
        parsed = parse_event(line, known_types) if read is None else read[i]
        if not isinstance(parsed, Malformed) and catalogue is not None:
            reason = catalogue.problem(parsed.type, parsed.data)
            if reason is not None:
                parsed = Malformed(reason, line if isinstance(line, str) else line.decode("utf-8"))
        if isinstance(parsed, Malformed):
            quarantine.append((source, number, parsed.reason, parsed.raw))
        else:
            candidates.append(Candidate(parsed, line if isinstance(line, str) else line.decode("utf-8"), number))
    return candidates, quarantine


def drop_duplicates(candidates: list[Candidate], known: dict[str, int], end: int,
                    window: int | None) -> tuple[list[Candidate], int]:
    """(the events to apply, how many were duplicates), by the window rule of docs/engine.md.

    An event is a duplicate when an event with its id is among the last `window`
    entries of the log (None: all of them), counting the entries of the events
    before it in this batch, so the batch size never changes what is a duplicate.
    `known` (id -> log position) and `end` (the log's last position) gain the
    entries of the events kept. An event the engine then fails to apply (a bug,
    kept aside) still counts as an entry for the rest of its batch.
    """
    fresh: list[Candidate] = []
    duplicates = 0
    for c in candidates:
        at = known.get(c.event.id)
        if at is not None and (window is None or at > end - window):
            duplicates += 1
            continue
        end += 1
        known[c.event.id] = end
        fresh.append(c)
    return fresh, duplicates


@contextlib.contextmanager
def batch_gc(freeze: bool = False):
    """The cyclic garbage collector paused for one batch (docs/decisions.md, "The garbage collector and batches").

    A batch allocates hundreds of thousands of short-lived objects, which reference counting
    frees; the collector would only rescan the ones that live on (the record cache) again and
    again. Paused, it runs once the batch is done. With `freeze` (a process that only runs
    batches: `coltiva run` and `tick`, the worker processes), what survived the batch is then
    collected young and frozen: later collections never rescan it, so their cost does not grow
    with the cache. Not for a process that also serves requests: a frozen object that later
    becomes part of a reference cycle is never collected."""
    if not gc.isenabled():  # someone else decides (a caller that paused it, a test)
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        if freeze:
            gc.collect(1)
            gc.freeze()


def bug_reason(err: Exception) -> str:
    return f"could not be applied ({type(err).__name__}: {err}); this is a Coltiva bug, please report it"


class Runner:
    def __init__(self, store: Store, journeys: list[CompiledJourney], batch_size: int = DEFAULT_BATCH,
                 freeze_gc: bool = False):
        self.store = store
        self.freeze_gc = freeze_gc  # batch_gc: freeze what outlives each batch (a process that only runs batches)
        self.journeys = journeys
        self.batch_size = max(1, batch_size)
        # every version some lead is on, by journey name: compiled once, on first use
        self.versions: dict[str, dict[str, CompiledJourney]] = {j.name: {j.version: j} for j in journeys}
        older = [self.version(name, version) for name, version in store.versions_in_use() if name in self.versions]
        self.known_types = frozenset().union(*(j.event_types for j in journeys + older)) | BUILTIN_TYPES
        # the leads read or stepped so far, by (journey, lead): a record on its journey's current version is kept
        # packed (engine.record.pack, ~160 B instead of ~660 B), one on an older version as a StoredLead
        self.cache: dict[tuple[str, str], bytes | StoredLead | None] = {}
        self.current = {j.name: j.version for j in journeys}
        self.strings = Strings()  # the strings the packed records name
        # the lead-wide rules (one lead score, one cap per lead) and each lead's lead-wide record
        self.rules = lead_rules(journeys)
        self.wides: dict[str, LeadWide | None] = {}
        # the event catalogue(s) the journeys were checked against: events that break them are kept aside
        catalogues = [j.catalogue for j in journeys if j.catalogue is not None]
        self.catalogue = functools.reduce(lambda a, b: a.merged(b), catalogues) if catalogues else None
        # which journeys an input reached, logged with it so a replay feeds each journey exactly its inputs
        self.reached = json.dumps([j.name for j in journeys], ensure_ascii=False)

    def version(self, name: str, version: str) -> CompiledJourney:
        """The compiled journey a lead on `version` of `name` steps with."""
        known = self.versions[name]
        if version not in known:
            known[version] = self.store.compiled(name, version)
        return known[version]

    # -- events ------------------------------------------------------------------
    def run_lines(self, lines: Iterable[str | bytes], source: str = "-", progress=None) -> Summary:
        """Lines of JSON (text, or bytes checked as UTF-8 line by line); blank lines are skipped."""
        total = Summary()
        for batch in line_batches(lines, self.batch_size):
            with batch_gc(self.freeze_gc):
                total.add(self._run_batch(batch, source))
            if progress:
                progress(len(batch))
        return total

    def run_read(self, read: ReadLines, source: str = "-") -> Summary:
        """`run_lines` for lines already parsed (`ReadLines`): the same summary, the same store."""
        total = Summary()
        for start in range(0, len(read.lines), self.batch_size):
            with batch_gc(self.freeze_gc):
                total.add(self._run_batch(read.lines[start:start + self.batch_size], source,
                                          read.parsed[start:start + self.batch_size]))
        return total

    def _leads(self, keys: set[tuple[str, str]]) -> None:
        missing: dict[str, list[str]] = {}
        for journey, lead in keys:
            if (journey, lead) not in self.cache:
                missing.setdefault(journey, []).append(lead)
        for journey, leads in missing.items():
            found = self.store.load_leads(journey, leads)
            for lead in leads:
                self.cache[(journey, lead)] = self._packed(journey, found.get(lead))
        if self.rules.active:
            wanted = sorted({lead for _, lead in keys if lead not in self.wides})
            found_wide = self.store.load_wides(wanted) if wanted else {}
            for lead in wanted:
                self.wides[lead] = found_wide.get(lead)

    def _packed(self, journey: str, stored: StoredLead | None) -> bytes | StoredLead | None:
        """How the cache keeps a record: packed when it is on the journey's current version."""
        if stored is None or stored.version != self.current[journey]:
            return stored
        return pack(stored.record, self.strings)

    def hold(self, pending: dict[tuple[str, str], StoredLead], keep: bool = True) -> None:
        """The records of a committed batch into the cache; `keep=False`: out of it (the next step that
        needs one reads it from the store)."""
        if not keep:
            for key in pending:
                self.cache.pop(key, None)
            return
        for key, stored in pending.items():
            self.cache[key] = self._packed(key[0], stored)

    def _gather(self, lead: str, pending: dict[tuple[str, str], StoredLead]) -> tuple[list, dict, dict]:
        """A lead's records to step (from `pending`, a batch's records not committed yet, else the cache,
        unpacked: fresh objects, the caller's to change), the compiled version each is on, and their
        versions: (journeys, records by journey, versions by journey). The lead must be loaded (`_leads`)."""
        cache = self.cache
        journeys, records, versions = [], {}, {}
        for j in self.journeys:
            key = (j.name, lead)
            old = pending.get(key)
            if old is None:
                held = cache[key]
                if type(held) is bytes:  # packed: on the journey's current version
                    journeys.append(j)
                    versions[j.name] = j.version
                    records[j.name] = unpack(held, self.strings)
                    continue
                old = cast("StoredLead | None", held)
            cj = j if old is None or old.version == j.version else self.version(j.name, old.version)
            journeys.append(cj)
            versions[j.name] = cj.version
            if old is not None:
                records[j.name] = old.record
        return journeys, records, versions

    def step_one(self, e: Event, pending: dict[tuple[str, str], StoredLead], dirty: dict[tuple[str, str], tuple],
                 actions: list, transitions: list, pending_wide: dict[str, LeadWide]) -> None:
        """Step one event through every journey at once (engine.step.step_lead): all or none (an exception
        changes nothing).

        New records go to `pending` and `dirty`, the lead-wide record to `pending_wide`, actions and
        transitions to their lists. The leads must be loaded (`_leads`).
        """
        lead = e.lead
        journeys, records, versions = self._gather(lead, pending)
        wide = pending_wide.get(lead) or self.wides.get(lead)
        result = step_lead(journeys, self.rules, records, wide, lead, e)
        self._keep(lead, result, records, versions, wide, pending, dirty, pending_wide)
        collect_actions(result.actions, actions, transitions)

    @staticmethod
    def _keep(lead: str, result, before: dict, versions: dict, wide, pending: dict, dirty, pending_wide: dict) -> None:
        """The records a step changed into `pending` and `dirty` (a dict by key, or a list), the lead-wide one too."""
        for name, new in result.records.items():
            if new is not before.get(name):
                pending[(name, lead)] = StoredLead(versions[name], new)
                row = (name, lead, versions[name], new)
                if isinstance(dirty, dict):
                    dirty[(name, lead)] = row
                else:
                    dirty.append(row)
        if result.wide is not None and result.wide is not wide:
            pending_wide[lead] = result.wide

    def _run_batch(self, batch: list[tuple[int, str | bytes]], source: str,
                   read: list[Event | Malformed] | None = None) -> Summary:
        summary = Summary(lines=len(batch))
        candidates, quarantine = read_batch(batch, source, self.known_types, self.catalogue, read)
        fresh, summary.duplicates = drop_duplicates(candidates, *_recent(self.store, [c.event.id for c in candidates]))
        self._leads({(j.name, c.event.lead) for j in self.journeys for c in fresh})
        # records change in `pending` and reach the cache only once the batch is committed:
        # a failed write leaves the cache as the store is, so a retry starts from the truth
        pending: dict[tuple[str, str], StoredLead] = {}
        dirty: dict[tuple[str, str], tuple[str, str, str, Lead]] = {}
        pending_wide: dict[str, LeadWide] = {}
        actions: list = []
        transitions: list = []
        applied: list[Candidate] = []
        for c in fresh:
            try:
                self.step_one(c.event, pending, dirty, actions, transitions, pending_wide)
            except Exception as err:  # a bug must not take the batch down: the event is kept aside
                quarantine.append((source, c.number, bug_reason(err), c.raw))
                continue
            applied.append(c)
        summary.applied = len(applied)
        summary.quarantined = len(quarantine)
        for a in actions:
            summary.actions[a.kind] += 1
        inputs = [("event", c.event.id, c.event.lead, c.event.time, c.raw, self.reached) for c in applied]
        self.store.write_batch(inputs=inputs, quarantine=quarantine, leads=dirty.values(), actions=actions,
                               transitions=transitions, **self._wide_rows(pending_wide))
        self.hold(pending)
        self.wides.update(pending_wide)
        return summary

    @staticmethod
    def _wide_rows(wides: dict[str, LeadWide]) -> dict:
        """The lead-wide records to write (only when there are some: a run without lead-wide rules writes as before)."""
        return {"wides": list(wides.items())} if wides else {}

    # -- time --------------------------------------------------------------------
    def tick(self, now: int, progress=None, keep: bool = True) -> Summary:
        """Fire everything due up to `now`; only leads with something due are read.

        A lead is advanced in all its journeys at once (engine.step.advance_lead): a send in
        one journey may hold another's under the lead-wide cap. `keep=False`: the records the
        tick wrote are not kept in the cache (a process that stops after the tick, `coltiva
        tick`, would pack each for nothing; a later step reads it from the store again)."""
        total = Summary()
        leads = self.due_leads(now)
        first = True
        for start in range(0, max(len(leads), 1), self.batch_size):
            with batch_gc(self.freeze_gc):
                first = self._tick_chunk(leads[start:start + self.batch_size], now, first, total, progress, keep)
        return total

    def _tick_chunk(self, chunk: list[str], now: int, first: bool, total: Summary, progress,
                    keep: bool = True) -> bool:
        """One transaction of a tick: the chunk's leads advanced and written (the tick's input with the first)."""
        self._leads({(j.name, lead) for j in self.journeys for lead in chunk})
        dirty: list = []
        actions: list = []
        transitions: list = []
        pending: dict[tuple[str, str], StoredLead] = {}  # reaches the cache only after the commit
        pending_wide: dict[str, LeadWide] = {}
        for lead in chunk:
            self.advance_one(lead, now, pending, dirty, actions, transitions, pending_wide)
        total.ticked_leads += len(dirty)
        for a in actions:
            total.actions[a.kind] += 1
        inputs = [("tick", None, None, now, None, self.reached)] if first else []
        self.store.write_batch(inputs=inputs, leads=dirty, actions=actions, transitions=transitions,
                               **self._wide_rows(pending_wide))
        self.hold(pending, keep)
        self.wides.update(pending_wide)
        if progress:
            progress(len(chunk))
        return False  # the tick's input is logged once, with its first chunk

    def due_leads(self, now: int) -> list[str]:
        """The leads with something due by `now` in a journey of this run, once each, in the store's order;
        the records the query gave are cached (read once)."""
        leads = []
        for journey, lead, version, stored in self.store.due_leads(now):
            if journey not in self.versions:
                continue
            leads.append(lead)
            if (journey, lead) not in self.cache:  # unpacked: the tick steps it next (its commit packs it)
                self.cache[(journey, lead)] = StoredLead.decode(version, stored)
        return list(dict.fromkeys(leads))

    def advance_one(self, lead: str, now: int, pending: dict[tuple[str, str], StoredLead], dirty: list,
                    actions: list, transitions: list, pending_wide: dict[str, LeadWide]) -> None:
        """Fire what is due by `now` for one lead, in all its journeys at once. The lead must be loaded (`_leads`)."""
        journeys, records, versions = self._gather(lead, pending)
        wide = self.wides.get(lead)
        result = advance_lead(journeys, self.rules, records, wide, lead, now)
        self._keep(lead, result, records, versions, wide, pending, dirty, pending_wide)
        collect_actions(result.actions, actions, transitions)

    # -- group commit (for the service) ---------------------------------------------
    def run_requests(self, requests: list[tuple[list | ReadLines, str]]) -> list[Summary]:
        """Several requests' lines, each as `run_lines` would step it, committed in ONE transaction.

        The service's writer gathers the requests waiting and hands them here: one summary
        per request, one commit for all. Until that commit nothing is written; if it fails,
        nothing of any request is kept and the cache is emptied (it reloads from the store).
        """
        real = self.store
        group = _GroupWrites(real)
        self.store = cast(Store, group)  # stands in for the store: same methods, writes gathered
        try:
            summaries = [self.run_read(lines, source) if isinstance(lines, ReadLines) else self.run_lines(lines, source)
                         for lines, source in requests]
            real.write_batch(**group.merged())
        except BaseException:
            self.cache.clear()
            self.wides.clear()
            raise
        finally:
            self.store = real
        return summaries


def _recent(store, event_ids: list[str]) -> tuple[dict[str, int], int, int | None]:
    """(log position of each id's event within the duplicate window, the log's last position, the window).

    A store without a window (PostgreSQL keeps every id) answers with `seen`: every id it knows, window None.
    """
    if hasattr(store, "recent"):
        return store.recent(event_ids), store.log_end(), store.dedupe_window
    return dict.fromkeys(store.seen(event_ids), 0), 0, None


class _GroupWrites:
    """Stands in for the store during `run_requests`: gathers the batches' writes instead of committing.

    `seen` and `recent` also answer for ids gathered so far, so an event sent twice in
    one group counts as a duplicate exactly as it would across two commits.
    """

    def __init__(self, store: Store):
        self._store = store
        self._ids: dict[str, int] = {}  # id -> the log position its input will take
        self._logged = 0
        self._writes: dict[str, list] = {"inputs": [], "quarantine": [], "leads": [], "actions": [],
                                         "transitions": [], "wides": []}

    def __getattr__(self, name):
        return getattr(self._store, name)

    def seen(self, event_ids: list[str]) -> set[str]:
        return self._store.seen(event_ids) | (self._ids.keys() & set(event_ids))

    # the duplicate window, as if each gathered batch were committed: gathered inputs take the next positions
    @property
    def dedupe_window(self) -> int | None:
        return getattr(self._store, "dedupe_window", None)

    def recent(self, event_ids: list[str]) -> dict[str, int]:
        known, _, _ = _recent(self._store, event_ids)
        known.update((i, self._ids[i]) for i in event_ids if i in self._ids)
        return known

    def log_end(self) -> int:
        return _recent(self._store, [])[1] + self._logged

    def write_batch(self, **writes) -> None:
        for name, rows in writes.items():
            rows = list(rows)
            self._writes[name].extend(rows)
            if name == "inputs":
                end = self.log_end()
                for position, (_kind, event_id, *_rest) in enumerate(rows, end + 1):
                    if event_id is not None:
                        self._ids[event_id] = position
                self._logged += len(rows)

    def merged(self) -> dict[str, list]:
        return {name: rows for name, rows in self._writes.items() if rows or name != "wides"}


#: A store stand-in that gathers writes and commits nothing (the service's group commit, `tick --dry-run`).
GatheredWrites = _GroupWrites
