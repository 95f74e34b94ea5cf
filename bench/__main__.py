"""Coltiva benchmarks: one run, one table, every figure with its spread over repeated runs.

    make bench                                   # = .venv/bin/python -m bench (size small, 3 repeats)
    .venv/bin/python -m bench --size medium --repeat 3
    .venv/bin/python -m bench --size large --repeat 1     # opt-in: 1M leads / 50M events
    .venv/bin/python -m bench --only memory,durable       # a subset of the sections
    .venv/bin/python -m bench --profile                   # cProfile of the in-memory and durable paths
    .venv/bin/python -m bench --size medium --only durable --stream   # the flat figure, stretch by stretch

Sections (all on journeys/demand_generation.journey and bench.workload):
  memory    events/s and µs/event of step_event over a dict of records (only the stepping is timed)
  durable   the same events as JSON lines through Runner.run_lines on a SQLite store (batch commits), and
            "flat": CPU per event over the run's last fifth / its first fifth (the store's growth)
  workers   the durable run with --workers 2 (engine.workers.ParallelRunner), as a ratio to one process
  bytes     bytes per lead in memory (tracemalloc over the records dict) and on disk
  tick      Runner.tick on a 1M-lead store with 0, 0.1 %, 1 % and 10 % of the leads due
  language  parse + check + compile of generated 10 / 100 / 1,000-stage journeys
  postgres  the durable run on a private PostgreSQL server, 1 writer and 2 (bench/bench_postgres.py)
  baselines a transitions.Machine per lead, one shared Machine with add_model, a bare dict loop,
            and Coltiva itself, on the same subset of events
  service   coltiva serve at 1, 10, 50 clients, batches of 1 and 100, against coltiva run (bench_service.py)
"""

from __future__ import annotations

import argparse
from array import array
import cProfile
import gc
import os
import pstats
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from rich.console import Console, JustifyMethod  # noqa: E402
from rich.table import Table  # noqa: E402

from bench.workload import DAY, SIZES, START, Spec, chunks, events, json_lines, lead_id  # noqa: E402
from dsl.loader import load_journey  # noqa: E402
from engine.compiler import compile_journey  # noqa: E402
from engine.record import Lead, Strings, pack  # noqa: E402
from engine.runner import Runner  # noqa: E402
from engine.store import Store  # noqa: E402
from engine.timers import next_timer  # noqa: E402

from bench.baselines import (  # noqa: E402
    step_all,
    baseline_coltiva,
    baseline_dict_loop,
    baseline_per_lead_machine,
    baseline_shared_add_model,
    per_lead_machine_bytes,
)

JOURNEY = ROOT / "journeys" / "demand_generation.journey"
SECTIONS = ("memory", "durable", "workers", "bytes", "tick", "language", "baselines", "service", "postgres", "flink")
CHUNK = 50_000          # events generated ahead of each timed stretch
BATCH = 5_000           # durable batch (one transaction per batch), Runner's default
TICK_LEADS = 1_000_000
TICK_FRACTIONS = (0.0, 0.001, 0.01, 0.1)
BASELINE_LEADS = 2_000
GiB = 1 << 30
STREAM = False  # --stream: print each durable stretch as it is measured

console = Console(width=150)
TTY = sys.stdout.isatty()


def progress(text: str) -> None:
    if TTY:
        console.print(f"  {text} ...".ljust(70), end="\r")


# -- helpers ----------------------------------------------------------------------------------
def load_cj(path: Path = JOURNEY):
    loaded = load_journey(path)
    return loaded, compile_journey(loaded.journey, loaded.diagnostics)


class Figure:
    """One measured quantity over repeats: shown as median with min–max."""

    def __init__(self, name: str, unit: str, values: list[float], fmt: str = "{:,.0f}", target=None,
                 better: str = "high", note: str = ""):
        self.name, self.unit, self.values, self.fmt = name, unit, values, fmt
        self.target, self.better, self.note = target, better, note

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    def spread(self) -> str:
        if len(self.values) < 2:
            return "(1 run)"
        lo, hi = min(self.values), max(self.values)
        return f"{self.fmt.format(lo)} – {self.fmt.format(hi)}"

    def status(self) -> str:
        if self.target is None:
            return ""
        ok = self.median >= self.target if self.better == "high" else self.median <= self.target
        return "[green]met[/green]" if ok else "[red]not met[/red]"

    def target_text(self) -> str:
        if self.target is None:
            return ""
        sign = "≥" if self.better == "high" else "≤"
        return f"{sign} {self.fmt.lstrip('> ').format(self.target)} {self.unit}"


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


# -- in memory --------------------------------------------------------------------------------
def run_memory(cj, spec: Spec, subset: list | None = None):
    """One in-memory run: (seconds stepping, actions, records). Generation is outside the clock."""
    recs: dict[str, Lead] = {}
    elapsed, actions = 0.0, 0
    cut = lead_id(BASELINE_LEADS)
    for block in chunks(events(spec), CHUNK):
        if subset is not None:
            subset.extend(e for e in block if e.lead < cut)
        gc.collect()
        start = time.perf_counter()
        actions += step_all(cj, block, recs)
        elapsed += time.perf_counter() - start
    return elapsed, actions, recs


def _fresh(key):
    if isinstance(key, tuple):
        return tuple("".join(list(k)) for k in key)
    return "".join(list(key))


def bytes_per_lead_memory(recs: dict, packed: bool = False) -> float:
    """tracemalloc over a faithful rebuild of the records dict (fresh keys, fresh records).

    Runner.cache holds packed records (engine.record.pack; a StoredLead for a lead on an older version);
    run_memory, bare records. With `packed`, bare records are measured packed, as a runner would keep them."""
    import json

    strings = Strings()
    items = [(k, r if isinstance(r, bytes) else pack(getattr(r, "record", r), strings) if packed
              else json.dumps(getattr(r, "record", r).to_list())) for k, r in recs.items() if r is not None]
    loads = json.loads
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    rebuilt = {_fresh(k): bytes(bytearray(data)) if isinstance(data, bytes) else Lead.from_list(loads(data))
               for k, data in items}
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert len(rebuilt) == len(items)
    return (after - before) / len(items)


# -- durable ----------------------------------------------------------------------------------
def run_durable(cj, loaded, spec: Spec, workdir: Path, workers: int = 1):
    """One durable run: (seconds in run_lines, db bytes, leads-table bytes, summary, rss growth, stretches).

    With workers > 1, a ParallelRunner (its processes started before the clock; CPU times are the main
    process's only)."""
    from engine.workers import ParallelRunner

    path = workdir / "bench.db"
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    store = Store(path)
    store.register(cj, loaded.sources)
    children0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    pool = ParallelRunner(store, [cj], workers, BATCH) if workers > 1 else None
    runner = pool or Runner(store, [cj], BATCH, freeze_gc=True)  # as `coltiva run` (engine.runner.batch_gc)
    gc.collect()
    elapsed = 0.0
    total = None
    stretches: list[tuple[int, float, float]] = []  # (lines, wall seconds, CPU seconds) per timed chunk
    for block in chunks(json_lines(spec), CHUNK):
        start, cpu = time.perf_counter(), time.process_time()
        summary = runner.run_lines(block, "bench")
        took = time.perf_counter() - start
        elapsed += took
        stretches.append((len(block), took, time.process_time() - cpu))
        if STREAM:  # a long run on a busy machine: every stretch as it is measured
            done = sum(n for n, _, _ in stretches)
            print(f"durable {done:,} events: {1e6 * took / len(block):,.1f} µs/event wall, "
                  f"{1e6 * stretches[-1][2] / len(block):,.1f} µs CPU", flush=True)
        if total is None:
            total = summary
        else:
            total.add(summary)
    if pool is not None:
        pool.close()  # joined: their CPU time is in RUSAGE_CHILDREN now
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    workers_cpu = (children.ru_utime + children.ru_stime) - (children0.ru_utime + children0.ru_stime)
    peak = peak_rss_bytes()  # before the measurement below, which rebuilds every record once more
    cache_per_lead = bytes_per_lead_memory(runner.cache) if isinstance(runner, Runner) else 0.0  # one process
    leads_bytes = store.db.execute(
        "SELECT SUM(pgsize) FROM dbstat WHERE name IN ('leads', 'leads_by_due')").fetchone()[0]
    store.close()  # checkpoints the WAL into the file
    size = sum(Path(str(path) + s).stat().st_size for s in ("", "-wal") if Path(str(path) + s).exists())
    return elapsed, size, leads_bytes, total, (peak, cache_per_lead), stretches, workers_cpu


def durable_floor(done: Path, workdir: Path) -> tuple[int, float, float, float]:
    """The SQLite floor of a durable run: the rows a finished run wrote, written again with no engine work.

    The finished store at `done` gives its input log in order, its outbox, its transitions and its
    final lead records; a fresh store gets them through `Store.write_batch` in batches of BATCH inputs
    (the outbox and transitions rows up to each batch's last event time, an upsert of the record of each
    lead of the batch), as the durable run commits them. Returns (inputs, wall seconds, CPU seconds, and the
    floor's own flatness: CPU per input over its last FLAT_SHARE / its first, with the run's rows per batch)."""
    batches = floor_batches(done)
    path = workdir / "floor.db"
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    store = Store(path)
    gc.collect()
    stretches: list[tuple[int, float, float]] = []
    start, cpu = time.perf_counter(), time.process_time()
    for batch in batches:
        began, began_cpu = time.perf_counter(), time.process_time()
        store.write_batch(**batch)
        stretches.append((len(batch["inputs"]), time.perf_counter() - began, time.process_time() - began_cpu))
    took, used = time.perf_counter() - start, time.process_time() - cpu
    store.close()
    _, _, first_cpu, last_cpu = flatness(stretches)
    return sum(len(b["inputs"]) for b in batches), took, used, last_cpu / first_cpu


def floor_batches(done: Path) -> list[dict]:
    """A finished durable run's rows in the batches its commits wrote, as `Store.write_batch` arguments: its
    input log in order; the outbox and transitions rows up to each batch's last event time; the final
    record of each lead of the batch (an upsert, as the run commits them)."""
    src = sqlite3.connect(done)
    inputs = src.execute("SELECT kind, event_id, lead, time, event, journeys FROM inputs ORDER BY seq").fetchall()
    outbox = src.execute("SELECT key, journey, version, lead, kind, time, data FROM outbox ORDER BY seq").fetchall()
    moves = src.execute("SELECT journey, lead, src, dst, time, rule FROM transitions ORDER BY seq").fetchall()
    records: dict[str, list[tuple]] = {}
    for row in src.execute("SELECT journey, lead, version, state, due, record FROM leads"):
        records.setdefault(row[1], []).append(row)
    src.close()
    out, a, m = [], 0, 0
    for first in range(0, len(inputs), BATCH):
        batch = inputs[first:first + BATCH]
        until = batch[-1][3]
        a_end, m_end = a, m
        while a_end < len(outbox) and outbox[a_end][5] <= until:
            a_end += 1
        while m_end < len(moves) and moves[m_end][4] <= until:
            m_end += 1
        rows = [r for lead in dict.fromkeys(row[2] for row in batch) for r in records.get(lead, ())]
        out.append({"inputs": batch, "lead_rows": rows, "action_rows": outbox[a:a_end], "transitions": moves[m:m_end]})
        a, m = a_end, m_end
    return out


#: The share of a durable run compared for flatness: its first and its last fifth (of the medium
#: workload's 5M events, the first and the last million).
FLAT_SHARE = 0.2


def flatness(stretches: list[tuple[int, float, float]]) -> tuple[float, float, float, float]:
    """(µs/event wall, µs/event CPU) over the first and over the last FLAT_SHARE of a run's lines:
    (first wall, last wall, first CPU, last CPU)."""
    total = sum(n for n, _, _ in stretches)
    want = max(1, int(total * FLAT_SHARE))

    def share(rows):
        n = wall = cpu = 0.0
        for lines, w, c in rows:
            if n >= want:
                break
            n, wall, cpu = n + lines, wall + w, cpu + c
        return 1e6 * wall / n, 1e6 * cpu / n

    first, last = share(stretches), share(reversed(stretches))
    return first[0], last[0], first[1], last[1]


# -- tick -------------------------------------------------------------------------------------
def build_tick_store(cj, path: Path, leads: int) -> int:
    """A 1M-lead store built by inserting lead rows directly, with controlled `due` values.

    Every lead sits in `shown_interest` with its ebook ("after 7 days") pending. Ranks decide the
    due time: the first 0.1 % are due at T-3, the next ones up to 1 % at T-2, up to 10 % at T-1, the
    rest six days after T. A tick at T-4, T-3, T-2, T-1 then finds 0, 0.1 %, 1 %, 10 % due.
    Returns T.
    """
    import json

    T = START + 100 * DAY
    store = Store(path)
    store.register(cj, {})
    store.close()

    def record(due_at: int) -> tuple[str, int]:
        rec = Lead("shown_interest", due_at - 7 * DAY)
        rec.sent = cj.content_bits["welcome"]
        rec.sends = array("q", [rec.entered])
        rec.score, rec.seq = 12.0, 3
        timer = next_timer(cj, rec)
        due = None if timer is None else timer.due
        assert due == due_at, (due, due_at)
        rec.due = due
        return json.dumps(rec.to_list(), separators=(",", ":")), due

    groups = [record(T - 3), record(T - 2), record(T - 1), record(T + 6 * DAY)]
    bounds = [int(leads * f) for f in TICK_FRACTIONS[1:]]
    # spread the due leads over the key space: rank = a permutation of the lead number
    stride = 7_919  # prime, coprime with the sizes used
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=OFF")
    db.execute("BEGIN")

    def rows():
        for k in range(leads):
            rank = (k * stride) % leads
            g = 0 if rank < bounds[0] else 1 if rank < bounds[1] else 2 if rank < bounds[2] else 3
            text, due = groups[g]
            yield (cj.name, lead_id(k), cj.version, "shown_interest", due, text)

    db.executemany("INSERT INTO leads (journey, lead, version, state, due, record) VALUES (?, ?, ?, ?, ?, ?)",
                   rows())
    db.execute("COMMIT")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return T


def _fresh_copy(base: Path, path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    shutil.copyfile(base, path)


def run_tick(cj, base: Path, workdir: Path, now: int):
    path = workdir / "tick.db"
    _fresh_copy(base, path)
    store = Store(path)
    runner = Runner(store, [cj], BATCH)
    gc.collect()
    start = time.perf_counter()
    summary = runner.tick(now, keep=False)  # as `coltiva tick` runs it (the process stops after)
    elapsed = time.perf_counter() - start
    store.close()
    return elapsed, summary.ticked_leads


def tick_rows(base: Path, done: Path, now: int) -> tuple[list[tuple], dict[str, tuple[list, list, list]]]:
    """What a tick at `now` wrote to `done` (a copy of `base` it ran on): its input row, and per lead due in
    `base` its record, outbox and transitions rows."""
    source = sqlite3.connect(base)
    due = {lead for (lead,) in source.execute("SELECT lead FROM leads WHERE due IS NOT NULL AND due <= ?", (now,))}
    source.close()
    db = sqlite3.connect(done)
    by_lead: dict[str, tuple[list, list, list]] = {}
    for row in db.execute("SELECT journey, lead, version, state, due, record FROM leads"):
        if row[1] in due:
            by_lead.setdefault(row[1], ([], [], []))[0].append(row)
    for row in db.execute("SELECT key, journey, version, lead, kind, time, data FROM outbox ORDER BY seq"):
        by_lead.setdefault(row[3], ([], [], []))[1].append(row)
    for row in db.execute("SELECT journey, lead, src, dst, time, rule FROM transitions ORDER BY seq"):
        by_lead.setdefault(row[1], ([], [], []))[2].append(row)
    tick = db.execute("SELECT kind, event_id, lead, time, event, journeys FROM inputs ORDER BY seq").fetchall()
    db.close()
    return tick, by_lead


def tick_floor(base: Path, workdir: Path, now: int) -> float:
    """The floor of a tick: read the due rows (the same indexed query) and write what the tick wrote.

    The tick's store (`tick.db`, left by `run_tick` at `now`) gives the rows it wrote: the due leads'
    new records, its outbox and transitions rows and its one input; they are written to a fresh copy
    of the base store in transactions of BATCH leads, with no engine work. Seconds, wall."""
    tick, by_lead = tick_rows(base, workdir / "tick.db", now)
    path = workdir / "tick-floor.db"
    _fresh_copy(base, path)
    store = Store(path)
    gc.collect()
    start = time.perf_counter()
    write_tick_rows(store, now, tick, by_lead)
    elapsed = time.perf_counter() - start
    store.close()
    return elapsed


def write_tick_rows(store: Store, now: int, tick: list[tuple], by_lead: dict[str, tuple[list, list, list]]) -> None:
    """A tick's floor: the due leads read (the tick's own query) and `tick_rows` written, BATCH leads a commit."""
    empty: tuple[list, list, list] = ([], [], [])
    leads = [lead for _, lead, _, _ in store.due_leads(now)]
    for first in range(0, max(len(leads), 1), BATCH):
        written = [by_lead.get(lead, empty) for lead in leads[first:first + BATCH]]
        store.write_batch(inputs=tick if first == 0 else (), lead_rows=[r for w in written for r in w[0]],
                          action_rows=[r for w in written for r in w[1]],
                          transitions=[r for w in written for r in w[2]])


# -- language ---------------------------------------------------------------------------------
LANG_WORKER = """
import gc, json, sys, time
from pathlib import Path
root = Path(sys.argv[1]); sys.path.insert(0, str(root))
import bench.bench_language as bl
from dsl.loader import load_text
from engine.compiler import compile_journey
text = bl.generate(int(sys.argv[2]))
for i in range(int(sys.argv[3]) + 1):  # the first run is a warm-up (the parser is built once per process)
    start = time.perf_counter()
    loaded = load_text(text, "generated.journey", root)
    mid = time.perf_counter()
    compiled = compile_journey(loaded.journey, loaded.diagnostics)
    end = time.perf_counter()
    del loaded, compiled  # freed, and the collector run, before the next clock starts: a run is charged
    gc.collect()          # with its own load and compile, not with freeing the run before it
    if i:
        print(json.dumps([mid - start, end - mid]), flush=True)
"""


def language_times(stages: int, repeat: int, timeout: float):
    """(load+check seconds, compile seconds) per run, in a subprocess; fewer runs (maybe none) on timeout."""
    try:
        out = subprocess.run([sys.executable, "-c", LANG_WORKER, str(ROOT), str(stages), str(repeat)],
                             capture_output=True, text=True, timeout=timeout, check=True).stdout
    except subprocess.TimeoutExpired as err:
        out = err.stdout.decode() if isinstance(err.stdout, bytes) else (err.stdout or "")
    import json

    return [tuple(json.loads(line)) for line in out.splitlines() if line.strip()]


# -- baselines --------------------------------------------------------------------------------
def profile(cj, loaded, spec: Spec, top: int) -> None:
    evs = list(events(spec))
    pr = cProfile.Profile()
    recs: dict = {}
    pr.enable()
    step_all(cj, evs, recs)
    pr.disable()
    console.rule(f"in-memory stepping: {spec.events:,} events, {spec.leads:,} leads (cProfile, by own time)")
    pstats.Stats(pr).sort_stats("tottime").print_stats(top)
    lines = list(json_lines(spec))
    with tempfile.TemporaryDirectory(prefix="coltiva-bench-") as tmp:
        store = Store(Path(tmp) / "p.db")
        store.register(cj, loaded.sources)
        runner = Runner(store, [cj], BATCH)
        pr = cProfile.Profile()
        pr.enable()
        runner.run_lines(lines, "bench")
        pr.disable()
        store.close()
    console.rule(f"durable run_lines: {spec.events:,} events (cProfile, by own time)")
    pstats.Stats(pr).sort_stats("tottime").print_stats(top)
    # tick: 10 % of 100k due
    with tempfile.TemporaryDirectory(prefix="coltiva-bench-") as tmp:
        base = Path(tmp) / "base.db"
        T = build_tick_store(cj, base, 100_000)
        store = Store(base)
        runner = Runner(store, [cj], BATCH)
        pr = cProfile.Profile()
        pr.enable()
        runner.tick(T - 1)
        pr.disable()
        store.close()
    console.rule("tick: 10,000 of 100,000 leads due (cProfile, by own time)")
    pstats.Stats(pr).sort_stats("tottime").print_stats(top)


# -- main -------------------------------------------------------------------------------------
def build_name() -> str:
    """Which engine this run measures: the mypyc build, or the sources (and why)."""
    import engine

    return "compiled (mypyc)" if engine.NATIVE else f"from sources ({engine.NATIVE_WHY})"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="small")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (default 3)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--only", default=",".join(SECTIONS), help="comma-separated sections: " + ", ".join(SECTIONS))
    parser.add_argument("--profile", action="store_true", help="print cProfile of the hot paths and exit")
    parser.add_argument("--profile-events", type=int, default=200_000)
    parser.add_argument("--lang-timeout", type=float, default=60.0,
                        help="seconds allowed per journey size in the language section (default 60)")
    parser.add_argument("--workdir", default=None, help="where the SQLite files go (default: a temp dir)")
    parser.add_argument("--stream", action="store_true",
                        help="print the cost of each 50k-event stretch of a durable run as it is measured")
    args = parser.parse_args(argv)
    global STREAM
    STREAM = args.stream
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    unknown = only - set(SECTIONS)
    if unknown:
        parser.error(f"unknown section(s): {', '.join(sorted(unknown))}")
    base_spec = SIZES[args.size]
    spec = Spec(base_spec.leads, base_spec.events, base_spec.days, args.seed)
    repeat = max(1, args.repeat)
    loaded, cj = load_cj()

    if args.profile:
        n = args.profile_events
        profile(cj, loaded, Spec(max(1, n // 50), n, 180, args.seed), 30)
        return 0

    if args.workdir is not None:
        try:
            Path(args.workdir).mkdir(parents=True, exist_ok=True)
        except OSError as err:
            parser.error(f"--workdir {args.workdir}: {err.strerror}")
    tmp_ctx = tempfile.TemporaryDirectory(prefix="coltiva-bench-", dir=args.workdir)
    workdir = Path(tmp_ctx.name)
    figures: list[Figure | str] = []
    notes: list[str] = []
    began = time.perf_counter()
    console.print(f"[bold]Coltiva bench[/bold] — size {args.size}: {spec.leads:,} leads, {spec.events:,} events "
                  f"over {spec.days} days, seed {spec.seed}, {repeat} run(s) per figure; "
                  f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs; engine {build_name()}")

    durable_rate = None
    durable_cpu = None  # µs of CPU per event, one process
    subset: list = []
    last_recs = None

    # durable first, so the process's peak RSS is the durable run's
    if "durable" in only or "bytes" in only:
        rates, us, sizes, leads_b, growths, flats, cpus = [], [], [], [], [], [], []
        floors: list[tuple[float, float, float, float]] = []  # (events/s, CPU µs/event, durable / floor, flat)
        for r in range(repeat if "durable" in only else 1):
            progress(f"durable run {r + 1}/{repeat}")
            elapsed, size, lb, summary, growth, stretches, _ = run_durable(cj, loaded, spec, workdir)
            flats.append(flatness(stretches))
            cpus.append(1e6 * sum(c for _, _, c in stretches) / summary.applied)
            rates.append(summary.applied / elapsed)
            us.append(1e6 * elapsed / summary.applied)
            sizes.append(size / spec.leads)
            leads_b.append(lb / spec.leads)
            growths.append(growth)
            if summary.quarantined:
                notes.append(f"durable: {summary.quarantined} line(s) quarantined (generator bug?)")
            if "durable" in only and spec.events <= SIZES["small"].events:  # the floor holds the run's rows in memory
                progress(f"SQLite floor {r + 1}/{repeat}")
                n, floor_wall, floor_cpu, floor_flat = durable_floor(workdir / "bench.db", workdir)
                floors.append((n / floor_wall, 1e6 * floor_cpu / n, summary.applied / elapsed / (n / floor_wall),
                               floor_flat))
        durable_rate = statistics.median(rates)
        durable_cpu = statistics.median(cpus)
        if "durable" in only:
            figures.append("Durable (SQLite, WAL, Runner.run_lines on JSON lines, "
                           f"{BATCH:,} events per transaction)")
            figures.append(Figure("events/s durable", "ev/s", rates, target=150_000))
            figures.append(Figure("µs/event durable", "µs", us, "{:,.1f}", better="low"))
            if floors:
                figures.append(Figure("SQLite floor: the same rows, no engine", "ev/s", [f[0] for f in floors],
                                      note=f"CPU {statistics.median(f[1] for f in floors):,.1f} µs/event; "
                                           "Store.write_batch of the run's own rows (bench.durable_floor)"))
                figures.append(Figure("durable / SQLite floor, events/s", "×", [f[2] for f in floors], "{:,.2f}",
                                      target=0.5, note="each run against its own floor, measured right after it"))
            part = f"{FLAT_SHARE:.0%} ({int(spec.events * FLAT_SHARE):,} events)"
            figures.append(Figure(f"µs/event CPU, first {part}", "µs", [f[2] for f in flats], "{:,.1f}",
                                  better="low", note=f"wall {statistics.median(f[0] for f in flats):,.1f} µs"))
            figures.append(Figure(f"µs/event CPU, last {part}", "µs", [f[3] for f in flats], "{:,.1f}",
                                  better="low", note=f"wall {statistics.median(f[1] for f in flats):,.1f} µs"))
            figures.append(Figure("flat: last / first, CPU per event", "×", [f[3] / f[2] for f in flats],
                                  "{:,.2f}", target=1.25, better="low",
                                  note=f"wall: {statistics.median(f[1] / f[0] for f in flats):,.2f}×; "
                                       "the issue's target is on --size medium (first and last million)"))
            if floors:  # the same rows alone: how much of the rise is the rows per event (more leads per batch)
                figures.append(Figure("flat, SQLite floor alone: last / first, CPU per event", "×",
                                      [f[3] for f in floors], "{:,.2f}", better="low",
                                      note="the run's own rows, no engine: the late batches touch more leads"))
            large = SIZES["large"]
            figures.append(Figure("large (50M) durable, projected time", "s", [large.events / x for x in rates],
                                  "{:,.0f}", target=600, better="low",
                                  note="projected from this run's rate; measure with --size large"))
            if spec.leads < large.leads:
                proj = [peak + per * (large.leads - spec.leads) for peak, per in growths]
                note = (f"projected: this run's peak RSS + Runner.cache "
                        f"({statistics.median(p for _, p in growths):,.0f} B/lead, tracemalloc) × the extra leads")
            else:
                proj, note = [peak for peak, _ in growths], "measured peak RSS of the run"
            figures.append(Figure("large (1M leads) durable, memory", "GiB", [p / GiB for p in proj],
                                  "{:,.2f}", target=4.0, better="low", note=note))
        if "bytes" in only:
            figures.append("Bytes per lead")
            figures.append(Figure("on disk, whole store / leads", "B", sizes, note="includes the input log, "
                                  "outbox and transitions history of every event"))
            figures.append(Figure("on disk, leads table + due index / leads", "B", leads_b))

    if "workers" in only:
        if durable_rate is None:
            progress("durable run, one process (for the ratio)")
            elapsed, _, _, summary, _, stretches, _ = run_durable(cj, loaded, spec, workdir)
            durable_rate = summary.applied / elapsed
            durable_cpu = 1e6 * sum(c for _, _, c in stretches) / summary.applied
        figures.append("Durable with --workers 2 (ParallelRunner: 2 stepping processes, 1 committing)")
        rates2, main_us, workers_us = [], [], []
        for r in range(repeat):
            progress(f"durable run with 2 workers {r + 1}/{repeat}")
            elapsed, _, _, summary, _, stretches2, workers_cpu = run_durable(cj, loaded, spec, workdir, workers=2)
            rates2.append(summary.applied / elapsed)
            main_us.append(1e6 * sum(c for _, _, c in stretches2) / summary.applied)
            workers_us.append(1e6 * workers_cpu / summary.applied)
        figures.append(Figure("Durable, events/s with 2 workers", "ev/s", rates2))
        figures.append(Figure("2 workers / 1 process, wall", "×", [x / durable_rate for x in rates2], "{:,.2f}",
                              target=1.7, note=f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs "
                                               "(a busy machine makes this figure low)"))
        figures.append(Figure("CPU per event, committing process", "µs", main_us, "{:,.1f}",
                              note=f"one process alone: {durable_cpu:,.1f} µs"))
        figures.append(Figure("CPU per event, the 2 workers together", "µs", workers_us, "{:,.1f}"))
        figures.append(Figure("2 workers / 1 process, from CPU times on 2 idle cores", "×",
                              [durable_cpu / max(m, (m + w) / 2) for m, w in zip(main_us, workers_us)], "{:,.2f}",
                              note="one process's CPU / max(committing process, all CPU / 2): "
                                   "a projection from measured CPU, not a wall-clock figure"))

    if "memory" in only or "bytes" in only or "baselines" in only:
        rates, us, acts = [], [], []
        for r in range(repeat if "memory" in only else 1):
            progress(f"in-memory run {r + 1}/{repeat}")
            elapsed, actions, recs = run_memory(cj, spec, subset if r == 0 else None)
            rates.append(spec.events / elapsed)
            us.append(1e6 * elapsed / spec.events)
            acts.append(actions)
            last_recs = recs
        if "memory" in only:
            figures.append("In memory (step_event over a dict of records, six-stage journey)")
            figures.append(Figure("events/s in memory", "ev/s", rates, target=500_000))
            figures.append(Figure("µs/event in memory", "µs", us, "{:,.2f}", better="low"))
            figures.append(Figure("actions per run", "", acts, note="sends, stage moves, handoffs, exits"))
        if "bytes" in only:
            assert last_recs is not None  # the loop above ran at least once
            figures.append("Bytes per lead (in memory)")
            figures.append(Figure("in memory, as a runner keeps it (key + packed record)", "B",
                                  [bytes_per_lead_memory(last_recs, packed=True)], target=300, better="low",
                                  note=f"{len(last_recs):,} records; tracemalloc"))
            figures.append(Figure("in memory, as the step works on it (key + Lead)", "B",
                                  [bytes_per_lead_memory(last_recs)], note="unpacked for each step"))

    if "baselines" in only and subset:
        figures.append(f"Baselines on the same events: the {len(subset):,} events of leads "
                       f"L0000000–{lead_id(BASELINE_LEADS - 1)} (event transitions only, no scoring or timers)")
        n = len(subset)
        col = [baseline_coltiva(cj, subset) for _ in range(repeat)]
        col_us = [1e6 * t / n for t in col]
        med = statistics.median(col_us)
        figures.append(Figure("Coltiva step_event (full semantics)", "µs/ev", col_us, "{:,.2f}"))
        for label, fn, reps in (
            ("transitions.Machine per lead", baseline_per_lead_machine, repeat),
            ("shared Machine + add_model per lead", baseline_shared_add_model, repeat),
            ("bare dict lookup loop (the floor)", baseline_dict_loop, repeat),
        ):
            progress(f"baseline: {label}")
            vals = [1e6 * fn(cj, subset) / n for _ in range(reps)]
            figures.append(Figure(label, "µs/ev", vals, "{:,.2f}",
                                  note=f"{statistics.median(vals) / med:.2f}× Coltiva's time per event"))
        figures.append(Figure("memory per lead, transitions.Machine per lead", "B", [per_lead_machine_bytes(cj)],
                              note="tracemalloc over 500 models, each with its own Machine"))

    if "tick" in only:
        progress(f"building a {TICK_LEADS:,}-lead store for tick")
        base = workdir / "tick-base.db"
        start = time.perf_counter()
        T = build_tick_store(cj, base, TICK_LEADS)
        notes.append(f"tick store: {TICK_LEADS:,} lead rows inserted directly in "
                     f"{time.perf_counter() - start:.1f} s ({base.stat().st_size / 1e6:,.0f} MB)")
        figures.append(f"Runner.tick on a {TICK_LEADS:,}-lead store (a fresh process, as `coltiva tick`: "
                       f"batch {BATCH:,}, nothing kept after)")
        per_due = {}
        for fraction, now in zip(TICK_FRACTIONS, (T - 4, T - 3, T - 2, T - 1)):
            vals, ticked = [], 0
            for r in range(repeat):
                progress(f"tick {fraction:.1%} due, run {r + 1}/{repeat}")
                elapsed, ticked = run_tick(cj, base, workdir, now)
                vals.append(1000 * elapsed)
            expected = int(TICK_LEADS * fraction)
            if ticked != expected:
                notes.append(f"tick {fraction:.1%}: advanced {ticked:,} leads, expected {expected:,}")
            per_due[fraction] = statistics.median(vals)
            figures.append(Figure(f"tick, {fraction:.1%} due ({expected:,} leads)", "ms", vals, "{:,.1f}",
                                  target=50 if fraction == 0.01 else None, better="low",
                                  note="" if not expected else
                                  f"{1000 * statistics.median(vals) / expected:,.1f} µs per due lead"))
            if fraction == 0.01:
                floor = [1000 * tick_floor(base, workdir, now) for _ in range(repeat)]
                figures.append(Figure(f"tick floor, {fraction:.1%} due: read + write the same rows", "ms", floor,
                                      "{:,.1f}", better="low", note="bench.tick_floor, no engine work"))
                figures.append(Figure(f"tick / floor, {fraction:.1%} due", "×",
                                      [v / statistics.median(floor) for v in vals], "{:,.2f}", target=2.0,
                                      better="low"))
        base.unlink()

    if "postgres" in only:
        from bench.bench_postgres import postgres_rows

        rows, pg_notes = postgres_rows(str(JOURNEY), spec, repeat, BATCH, CHUNK, durable_rate, progress)
        if rows:
            figures.append(f"PostgreSQL (Runner.run_lines on JSON lines, {BATCH:,} events per transaction, COPY)")
            figures += [Figure(row.name, row.unit, row.values, row.fmt, note=row.note) for row in rows]
        notes += pg_notes

    if "language" in only:
        if (ROOT / "bench" / "bench_language.py").exists():
            figures.append("Language: parse + check + compile_journey (bench_language's generated journeys)")
            for stages in (10, 100, 1000):
                progress(f"language {stages} stages")
                runs = language_times(stages, max(repeat, 5 if stages == 1000 else 10), args.lang_timeout)
                if not runs:
                    figures.append(Figure(f"{stages:,} stages: parse + check + compile", "ms",
                                          [1000 * args.lang_timeout], "> {:,.0f}",
                                          target=500 if stages == 1000 else None, better="low",
                                          note=f"timed out after {args.lang_timeout:.0f} s (--lang-timeout)"))
                    continue
                total = [1000 * (a + b) for a, b in runs]
                figures.append(Figure(f"{stages:,} stages: parse + check + compile", "ms", total, "{:,.1f}",
                                      target=500 if stages == 1000 else None, better="low"))
                figures.append(Figure(f"{stages:,} stages: of which compile_journey", "ms",
                                      [1000 * b for _, b in runs], "{:,.1f}"))
        else:
            notes.append("bench/bench_language.py not found: language section skipped")

    if "flink" in only:
        from bench.bench_flink import flink_rates

        figures.append("Apache Flink (the coltiva flink job, local mini-cluster, .venv-flink)")
        for workers in (1, 2):
            rates, note = flink_rates(workdir, repeat, args.seed, progress, workers)
            figures.append(Figure(f"Flink events/s per worker, {workers} worker{'s' if workers > 1 else ''}", "ev/s",
                                  rates, note=note + f"; load average {os.getloadavg()[0]:.1f}"))

    table = Table(title=f"Coltiva bench — {args.size} ({spec.leads:,} leads, {spec.events:,} events), "
                        f"{repeat} run(s), median and min – max", show_lines=False)
    columns: tuple[tuple[str, JustifyMethod], ...] = (
        ("figure", "left"), ("median", "right"), ("unit", "left"), ("min – max", "right"), ("target", "right"),
        ("", "left"), ("note", "left"))
    for heading, just in columns:
        table.add_column(heading, justify=just, overflow="fold")
    groups: list[list] = []
    for f in figures:
        if isinstance(f, str):
            groups.append([f])
        else:
            groups[-1].append(f)
    order = ("In memory", "Durable (", "Durable with", "PostgreSQL", "Bytes", "Baselines", "Runner.tick", "Language",
             "Apache Flink")
    groups.sort(key=lambda g: next((i for i, p in enumerate(order) if g[0].startswith(p)), len(order)))
    figures = [f for g in groups for f in g]
    for f in figures:
        if isinstance(f, str):
            table.add_section()
            table.add_row(f"[bold]{f}[/bold]", "", "", "", "", "", "")
            continue
        table.add_row(f.name, f.fmt.format(f.median), f.unit, f.spread(), f.target_text(), f.status(), f.note)
    if TTY:
        console.print(" " * 70, end="\r")
    console.print(table)
    targets = [f for f in figures if isinstance(f, Figure) and f.target is not None]
    if targets:
        met = sum(1 for f in targets if "not" not in f.status())
        console.print(f"targets met: {met} of {len(targets)}")
    for note in notes:
        console.print(f"note: {note}")
    console.print(f"bench took {time.perf_counter() - began:,.0f} s; peak RSS {peak_rss_bytes() / 1e6:,.0f} MB")
    tmp_ctx.cleanup()

    if "language" in only and (ROOT / "bench" / "bench_language.py").exists():
        console.rule("bench/bench_language.py (the language developer's own table)")
        sys.stdout.flush()
        try:
            subprocess.run([sys.executable, str(ROOT / "bench" / "bench_language.py")], cwd=ROOT, check=False,
                           timeout=2 * args.lang_timeout)
        except subprocess.TimeoutExpired:
            console.print(f"bench_language.py did not finish within {2 * args.lang_timeout:.0f} s: stopped")
    if "service" in only:
        console.rule("bench/bench_service.py (coltiva serve under load)")
        sys.stdout.flush()
        subprocess.run([sys.executable, str(ROOT / "bench" / "bench_service.py"), "--repeat", str(max(1, args.repeat))],
                       cwd=ROOT, check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
