"""Reads on their own connections: a small pool of read-only SQLite connections.

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
import queue
import time
from typing import Iterator

from engine.events import format_time
from engine.store import Store

__all__ = ["Readers", "PAGE"]

PAGE = 500


class Readers:
    def __init__(self, path: str):
        self.path = path
        self._idle: queue.SimpleQueue[Store] = queue.SimpleQueue()
        self._all: list[Store] = []

    @contextlib.contextmanager
    def store(self) -> Iterator[Store]:
        try:
            store = self._idle.get_nowait()
        except queue.Empty:
            store = Store.open_reader(self.path)
            self._all.append(store)
        try:
            yield store
        finally:
            self._idle.put(store)

    def run(self, fn):
        """fn(store) on a read connection (the deliverer's reads)."""
        with self.store() as s:
            return fn(s)

    def close(self) -> None:
        for store in self._all:
            store.db.close()

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
