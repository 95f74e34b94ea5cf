"""Several cores on one SQLite store: worker processes step the leads of their partition, one writer commits.

`coltiva run --workers N` and `coltiva tick --workers N`. The main process reads
and checks the lines, drops duplicates (the store's window, exactly as `Runner`),
and sends each event to the worker that owns its lead (`engine.partition.owner`,
the hash PostgreSQL's writers and Flink's key groups use). A worker keeps the
records of its leads, steps them with the pure step, encodes records and actions,
and sends the rows back; the main process puts them back in the order of the
input and commits each batch as one transaction. So the store is the very store
one process would have written: same records, same log, same outbox in the same
order, same keys (docs/decisions.md, "Several cores on one SQLite store").

While the workers step one batch, the main process commits the batch before and
reads the batch after. Workers are forked after the journeys are registered and
before anything starts a thread; each opens the store read-only for its leads.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import traceback
from collections import Counter

from dsl.errors import ColtivaError

from .compiler import CompiledJourney
from .events import Event
from .partition import owner
from .record import LeadWide
from .runner import (DEFAULT_BATCH, Candidate, Runner, Summary, _recent, batch_gc, bug_reason, drop_duplicates,
                     line_batches, read_batch)
from .store import Store, StoredLead, action_row, lead_row

__all__ = ["ParallelRunner", "MAX_WORKERS"]

#: More workers than this is a typo, not a machine.
MAX_WORKERS = 64


class WorkerFailed(ColtivaError):
    """A worker process stopped: the batch in flight is not committed (a rerun redoes it)."""


def _worker(conn, path: str, journeys: list[CompiledJourney], batch_size: int, lock_fd: int | None) -> None:
    """A worker's loop: requests in, rows out, until it is told to stop (None) or its pipe closes."""
    if lock_fd is not None:
        os.close(lock_fd)  # the writer's lock belongs to the main process; our copy must not outlive it
    store = Store(path, read_only=True)
    runner = Runner(store, journeys, batch_size, freeze_gc=True)  # this process only runs batches (batch_gc)
    try:
        while True:
            try:
                request = conn.recv()
            except EOFError:
                return
            if request is None:
                return
            kind, payload = request
            try:
                with batch_gc(freeze=True):
                    reply = _step(runner, payload) if kind == "events" else _advance(runner, *payload)
            except BaseException:
                conn.send(("error", traceback.format_exc()))
                return
            conn.send(("ok", reply))
    finally:
        store.close()


def _step(runner: Runner, items: list[tuple]):
    """Step events, each (index, id, lead, type, time, data, attributes) as the main process parsed it, in
    order: (index, action rows, transitions) of each event that caused any, (index, bug reason) of each
    event that could not be applied, the batch's changed records as rows, and its changed lead-wide
    records as (lead, list). An event in neither list was applied and caused nothing: most events cross
    the pipe back as nothing. Records reach the worker's cache at once: the main process commits every
    batch or stops the run."""
    events = [(n, Event(*fields)) for n, *fields in items]
    runner._leads({(j.name, e.lead) for j in runner.journeys for _, e in events})
    pending: dict[tuple[str, str], StoredLead] = {}
    dirty: dict = {}
    pending_wide: dict = {}
    caused: list[tuple] = []
    bugs: list[tuple[int, str]] = []
    for n, e in events:
        actions: list = []
        transitions: list = []
        try:
            runner.step_one(e, pending, dirty, actions, transitions, pending_wide)
        except Exception as err:  # kept aside by the main process, as Runner does
            bugs.append((n, bug_reason(err)))
            continue
        if actions or transitions:
            caused.append((n, [action_row(a) for a in actions], transitions))
    runner.hold(pending)
    runner.wides.update(pending_wide)
    return caused, bugs, [lead_row(*row) for row in dirty.values()], _wide_rows(pending_wide)


def _wide_rows(wides: dict) -> list[tuple[str, list]]:
    return [(lead, w.to_list()) for lead, w in wides.items()]


def _advance(runner: Runner, now: int, items: list[tuple[int, str]], keep: bool = True):
    """Fire what is due for (index, lead) items, each lead in all its journeys at once: per item (index,
    record rows, lead-wide rows, action rows, transitions). `keep`: as `Runner.tick`'s."""
    runner._leads({(j.name, lead) for j in runner.journeys for _, lead in items})
    out = []
    for n, lead in items:
        pending: dict[tuple[str, str], StoredLead] = {}
        dirty: list = []
        actions: list = []
        transitions: list = []
        pending_wide: dict = {}
        runner.advance_one(lead, now, pending, dirty, actions, transitions, pending_wide)
        runner.hold(pending, keep)
        runner.wides.update(pending_wide)
        out.append((n, [lead_row(*row) for row in dirty], _wide_rows(pending_wide),
                    [action_row(a) for a in actions], transitions))
    return out


class ParallelRunner:
    """`Runner.run_lines` and `Runner.tick` on N worker processes; the same store as one process writes.

    Use as a context manager: the workers stop on exit, also after an error.
    """

    def __init__(self, store: Store, journeys: list[CompiledJourney], workers: int,
                 batch_size: int = DEFAULT_BATCH):
        if not 1 <= workers <= MAX_WORKERS:
            raise ColtivaError(f"--workers {workers}: want 1 to {MAX_WORKERS}")
        if not isinstance(store, Store) or store.path == ":memory:":
            raise ColtivaError("--workers needs an SQLite store file (PostgreSQL runs several writers with "
                               "--partition K/N instead)")
        self.store = store
        self.count = workers
        self.local = Runner(store, journeys, batch_size)  # known types, the journeys each input reached
        self.batch_size = self.local.batch_size
        # the owner of a lead, remembered for the leads seen lately (busy leads send most events; a hash each)
        self._owner = functools.lru_cache(maxsize=1 << 16)(functools.partial(owner, count=workers))
        ctx = multiprocessing.get_context("fork")  # workers inherit the compiled journeys: nothing to rebuild
        self._conns = []
        self._procs = []
        try:
            for _ in range(workers):
                mine, theirs = ctx.Pipe()
                proc = ctx.Process(target=_worker, args=(theirs, store.path, journeys, self.batch_size,
                                                         store._lock), daemon=True)
                proc.start()
                theirs.close()
                self._conns.append(mine)
                self._procs.append(proc)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        for conn in self._conns:
            try:
                conn.send(None)
            except OSError:
                pass
            conn.close()
        for proc in self._procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()
                proc.join()
        self._conns, self._procs = [], []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- talking to the workers --------------------------------------------------
    def _send(self, kind: str, parts: list[list], now: int | None = None, keep: bool = True) -> list[int]:
        """Send each worker its part (none to a worker with nothing to do); the workers asked."""
        asked = []
        for k, part in enumerate(parts):
            if part:
                try:
                    self._conns[k].send((kind, part if now is None else (now, part, keep)))
                except OSError:  # its end of the pipe is closed: it is gone
                    raise self._stopped(k) from None
                asked.append(k)
        return asked

    def _stopped(self, k: int) -> WorkerFailed:
        self._procs[k].join(timeout=1)
        return WorkerFailed(f"worker {k} of {self.count} stopped (exit code {self._procs[k].exitcode}); "
                            "nothing of the batch in flight was written: run again")

    def _receive(self, asked: list[int]) -> list:
        replies = []
        for k in asked:
            try:
                status, reply = self._conns[k].recv()
            except (EOFError, OSError):
                raise self._stopped(k) from None
            if status != "ok":
                raise WorkerFailed(f"worker {k} of {self.count} failed; nothing of the batch in flight was "
                                   f"written: run again. This is a Coltiva bug, please report it:\n{reply}")
            replies.append(reply)
        return replies

    # -- events --------------------------------------------------------------------
    def run_lines(self, lines, source: str = "-", progress=None) -> Summary:
        """As `Runner.run_lines`: the same summary, the same store."""
        total = Summary()
        ahead: list[tuple] = []  # (lines, batch) read but not yet sent
        flying = None  # (batch read, workers asked) sent, not yet received
        ready = None  # a batch received, not yet written
        overlay: dict[str, int] = {}  # ids of the batch in flight (not committed yet), by log position
        overlay_end = 0

        def read(batch):
            nonlocal overlay, overlay_end
            candidates, quarantine = read_batch(batch, source, self.local.known_types, self.local.catalogue)
            known, end, window = _recent(self.store, [c.event.id for c in candidates])
            known.update((c.event.id, overlay[c.event.id]) for c in candidates if c.event.id in overlay)
            end = max(end, overlay_end)
            fresh, duplicates = drop_duplicates(candidates, known, end, window)
            overlay = {c.event.id: known[c.event.id] for c in fresh}
            overlay_end = end + len(fresh)
            return len(batch), fresh, quarantine, duplicates

        def send(read_batch_):
            lines_, fresh, _, _ = read_batch_
            parts: list[list] = [[] for _ in range(self.count)]
            route = self._owner
            for n, c in enumerate(fresh):
                e = c.event  # its fields cross the pipe: cheaper than parsing the line again
                parts[route(e.lead)].append((n, e.id, e.lead, e.type, e.time, e.data, e.attributes))
            return read_batch_, self._send("events", parts)

        def receive(flying_):
            read_batch_, asked = flying_
            return read_batch_, self._receive(asked)

        def write(ready_):
            (lines_, fresh, quarantine, duplicates), replies = ready_
            caused: list = []
            bugs: dict[int, str] = {}
            lead_rows: list = []
            wides: list = []
            for caused_, bugs_, rows, wide_rows in replies:
                caused += caused_
                bugs.update(bugs_)
                lead_rows += rows
                wides += [(lead, LeadWide.from_list(w)) for lead, w in wide_rows]
            caused.sort(key=lambda item: item[0])  # the order of the input, whichever worker stepped each event
            summary = Summary(lines=lines_, duplicates=duplicates)
            applied: list[Candidate] = fresh
            if bugs:
                applied = []
                for n, c in enumerate(fresh):
                    if n in bugs:
                        quarantine.append((source, c.number, bugs[n], c.raw))
                    else:
                        applied.append(c)
            actions: list = []
            transitions: list = []
            for _, action_rows, moves in caused:
                actions += action_rows
                transitions += moves
            summary.applied = len(applied)
            summary.quarantined = len(quarantine)
            summary.actions = Counter(row[4] for row in actions)
            inputs = [("event", c.event.id, c.event.lead, c.event.time, c.raw, self.local.reached) for c in applied]
            self.store.write_batch(inputs=inputs, quarantine=quarantine, lead_rows=lead_rows, action_rows=actions,
                                   transitions=transitions, **({"wides": wides} if wides else {}))
            total.add(summary)
            if progress:
                progress(lines_)

        # the pipeline: receive batch i, send batch i+1, write batch i, read batch i+2
        for batch in line_batches(lines, self.batch_size):
            ahead.append(read(batch))
            if flying is not None:
                ready = receive(flying)
                flying = None
            if ahead:
                flying = send(ahead.pop(0))
            if ready is not None:
                write(ready)
                ready = None
        if flying is not None:
            write(receive(flying))
        return total

    # -- time --------------------------------------------------------------------
    def tick(self, now: int, progress=None, keep: bool = True) -> Summary:
        """As `Runner.tick`: only the leads with something due, each stepped by its owner in all its journeys."""
        total = Summary()
        leads = list(dict.fromkeys(lead for journey, lead, _, _ in self.store.due_leads(now)
                                   if journey in self.local.versions))  # in `Runner.tick`'s order
        first = True
        for start in range(0, max(len(leads), 1), self.batch_size):
            chunk = leads[start:start + self.batch_size]
            parts: list[list] = [[] for _ in range(self.count)]
            for n, lead in enumerate(chunk):
                parts[owner(lead, self.count)].append((n, lead))
            results: list = [None] * len(chunk)
            for reply in self._receive(self._send("tick", parts, now, keep)):
                for item in reply:
                    results[item[0]] = item
            lead_rows, wides, actions, transitions = [], [], [], []
            for _, rows, wide_rows, action_rows, moves in results:
                lead_rows += rows
                wides += [(lead, LeadWide.from_list(w)) for lead, w in wide_rows]
                actions += action_rows
                transitions += moves
            total.ticked_leads += len(lead_rows)
            total.actions.update(row[4] for row in actions)
            inputs = [("tick", None, None, now, None, self.local.reached)] if first else []
            first = False
            self.store.write_batch(inputs=inputs, lead_rows=lead_rows, action_rows=actions, transitions=transitions,
                                   **({"wides": wides} if wides else {}))
            if progress:
                progress(len(chunk))
        return total
