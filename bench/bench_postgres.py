"""PostgreSQL rows of `make bench`: the durable run on a PostgreSQL store, with 1 writer and with 2.

The same events as the SQLite durable figure (bench.workload, JSON lines through
Runner.run_lines, one transaction per batch) on a private server started for the
run (bench/pgserver.py: Unix socket, fsync off, `synchronous_commit` on: each commit
written to the operating system before it returns, as the SQLite figure's WAL with
`synchronous=NORMAL`; both measure the engine and the database, not the disk).
Two writers are two processes, each owning a hash partition of the leads
(engine.partition); each selects its lines before the clock starts, and the
figure is all events applied over the wall time from a common start to the last
writer's end.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from dataclasses import dataclass
from typing import cast

__all__ = ["Row", "postgres_rows"]


@dataclass(frozen=True)
class Row:
    """One figure: bench/__main__.py turns it into its table's Figure."""

    name: str
    unit: str
    values: list[float]
    fmt: str = "{:,.0f}"
    note: str = ""


def _writer(url: str, journey_path: str, spec, index: int, count: int, batch: int, chunk: int, barrier, results):
    """One writer process: its partition's lines, then the timed run."""
    from bench.workload import chunks, json_lines
    from dsl.loader import load_journey
    from engine.compiler import compile_journey
    from engine.partition import Partition
    from engine.pgstore import PgStore
    from engine.runner import Runner
    from engine.store import Store

    loaded = load_journey(journey_path)
    cj = compile_journey(loaded.journey, loaded.diagnostics)
    part = Partition(index, count)
    blocks = list(chunks((line for line in json_lines(spec) if part.owns_line(line)), chunk))
    store = PgStore(url, writer=True, partition=part)
    store.register(cj, loaded.sources)
    runner = Runner(cast(Store, store), [cj], batch)  # PgStore: the same interface (engine.stores.LeadStore)
    barrier.wait()
    start = time.perf_counter()
    applied = 0
    for block in blocks:
        applied += runner.run_lines(block, "bench").applied
    results.put((index, start, time.perf_counter(), applied))
    store.close()


def _run(server, journey_path: str, spec, writers: int, batch: int, chunk: int, name: str) -> tuple[float, int]:
    """(events/s over the wall time, events applied) of `writers` processes on a fresh store."""
    url = server.create_schema("bench", name)
    from engine.pgstore import PgStore

    PgStore(url).close()  # the tables, before the writers race to make them
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(writers)
    results = ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(url, journey_path, spec, k, writers, batch, chunk, barrier, results))
             for k in range(writers)]
    for p in procs:
        p.start()
    done = [results.get() for _ in procs]
    for p in procs:
        p.join()
        if p.exitcode != 0:
            raise RuntimeError(f"a PostgreSQL bench writer failed (exit code {p.exitcode})")
    server.drop_schema("bench", name)
    start = min(r[1] for r in done)
    end = max(r[2] for r in done)
    applied = sum(r[3] for r in done)
    return applied / (end - start), applied


def postgres_rows(journey_path: str, spec, repeat: int, batch: int, chunk: int, sqlite_rate: float | None,
                  progress) -> tuple[list[Row], list[str]]:
    """Rows for 1 and 2 writers, and notes; a machine without PostgreSQL gets a note instead of rows."""
    from bench.pgserver import PgServer, find_bin

    if find_bin() is None:
        return [], ["postgres: PostgreSQL is not installed (`make postgres-deps`): section skipped"]
    rows: list[Row] = []
    notes: list[str] = []
    with PgServer() as server:
        server.create_database("bench")
        for writers in (1, 2):
            rates = []
            for r in range(repeat):
                progress(f"postgres, {writers} writer(s), run {r + 1}/{repeat}")
                rate, applied = _run(server, journey_path, spec, writers, batch, chunk, f"w{writers}_{r}")
                rates.append(rate)
                if applied != spec.events:
                    notes.append(f"postgres {writers} writer(s): applied {applied:,} of {spec.events:,} events")
            ratio = f"; {sorted(rates)[len(rates) // 2] / sqlite_rate:.2f}× SQLite durable" if sqlite_rate else ""
            rows.append(Row(f"events/s, {writers} writer{'s' if writers > 1 else ''}", "ev/s", rates,
                            note=("one process" if writers == 1 else "two processes, a hash partition each")
                            + ratio + f"; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"))
    return rows, notes
