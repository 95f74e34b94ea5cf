"""Reads on their own connections: one read-only SQLite connection per worker thread.

Reads never wait for the writer (SQLite's WAL serves the last committed state) and
never hold the event loop: each runs in a worker thread. The outbox is streamed
page by page (keyset paging on its position), so an answer of millions of actions
is never built in memory and no read transaction stays open while a slow client
reads.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import sqlite3
import threading
import time
from typing import Iterator

from engine.events import format_time
from engine.store import Store

__all__ = ["Readers", "PAGE"]

PAGE = 500


class Readers:
    """Read-only stores (`Store(read_only=True)`), one per thread that reads: SQLite connections stay in
    the thread that opened them, and a reader never writes nor waits for the writer."""

    def __init__(self, path: str):
        self.path = path
        self._local = threading.local()
        self._all: list[Store] = []
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def store(self) -> Iterator[Store]:
        store = getattr(self._local, "store", None)
        if store is None:
            store = self._local.store = Store(self.path, read_only=True)
            with self._lock:
                self._all.append(store)
        yield store

    def run(self, fn):
        """fn(store) on a read connection (the deliverer's reads)."""
        with self.store() as s:
            return fn(s)

    def close(self) -> None:
        """At shutdown: a connection opened by another thread cannot be closed here; the process exit does it."""
        with self._lock:
            for store in self._all:
                with contextlib.suppress(sqlite3.ProgrammingError):
                    store.close()

    # -- what the endpoints read -----------------------------------------------------
    def stage_counts(self) -> dict:
        with self.store() as s:
            return s.stage_counts()

    def versions(self) -> list[dict]:
        with self.store() as s:
            return s.journey_versions()

    def action_pages(self, after: int, limit: int, kind: str | None) -> Iterator[bytes]:
        """JSON Lines of the outbox after `after`, at most `limit`, one page per read."""
        sent = 0
        while sent < limit:
            want = min(PAGE, limit - sent)
            with self.store() as s:
                rows = s.actions(after=after, kind=kind)
                page = list(itertools.islice(rows, want))
                rows.close()
            if not page:
                return
            yield "".join(json.dumps({"seq": seq, **a}, ensure_ascii=False) + "\n" for seq, a in page).encode()
            after = page[-1][0]
            sent += len(page)
            if len(page) < want:
                return

    def quarantine_pages(self, after: int, limit: int) -> Iterator[bytes]:
        sent = 0
        while sent < limit:
            want = min(PAGE, limit - sent)
            with self.store() as s:
                page = s.quarantine_page(after, want)
            if not page:
                return
            yield "".join(json.dumps({"seq": seq, "source": src, "line": n, "reason": reason, "raw": raw},
                                     ensure_ascii=False) + "\n" for seq, src, n, reason, raw in page).encode()
            after = page[-1][0]
            sent += len(page)
            if len(page) < want:
                return

    def explain(self, lead: str) -> list[dict]:
        from engine.explain import explain_lead

        with self.store() as s:
            found = explain_lead(s, lead)
        return [{"journey": e.journey, "version": e.version, "consistent": e.consistent,
                 "steps": [{**step, "time": format_time(step["time"])} for step in e.steps]} for e in found]

    def due_leads(self, now: float | None = None) -> int:
        with self.store() as s:
            return s.due_count(int(now if now is not None else time.time()))

    def last_seq(self) -> int:
        with self.store() as s:
            return s.last_action_seq()
