"""Instructions, not seconds: the engine's work against its floor, counted by valgrind (callgrind).

    .venv/bin/python -m bench.instructions                  # tick and durable
    .venv/bin/python -m bench.instructions --only tick
    .venv/bin/python -m bench.instructions --only language  # the 1,000-stage journey loaded and compiled

A shared machine moves wall and CPU times by ±30 % from one run to the next
(docs/performance.md); a count of executed instructions does not move at all
(±0.1 % here, with PYTHONHASHSEED fixed). So a change to the hot path can be
judged on one run of this, where timings need many alternated runs.

Each figure is a difference of two runs of the same child process under
callgrind: one does the setup only (imports, the journey, the store), the
other the setup and the work; the difference is the work. The floors are
those of `python -m bench` (bench.tick_floor, bench.durable_floor): the same
rows read and written by the same store code with no engine work. The
language section has no floor (its target is a time): it counts loading
(`load_text`: parse, model, checks) and compiling `bench_language.py`'s
1,000-stage journey once, in a process that has loaded it once before. Ratios of
instructions are not ratios of time (SQLite's time is also in system calls
and the page cache, which callgrind does not count), so the targets stay in
`python -m bench`; this is the instrument for the steps between.

Needs valgrind (Debian's `valgrind`); without it, says so and exits 2.
"""

from __future__ import annotations

import argparse
import gc
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

__all__ = ["main"]

SECTIONS = ("tick", "durable", "language")
LANGUAGE_STAGES = 1000
TICK_LEADS = 100_000  # 1 % due: 1,000 leads
DURABLE_EVENTS = 20_000
_COLLECTED = re.compile(r"Collected : (\d+)")


# -- the child: setup, then (maybe) the work ----------------------------------------------------
def _language_child(part: str) -> None:
    """Setup: the journey's text, loaded and compiled once (the parser built, every import done); then
    `load`: loaded once more, or `all`: loaded and compiled once more."""
    from bench.bench_language import generate
    from dsl.loader import load_text
    from engine.compiler import compile_journey

    text = generate(LANGUAGE_STAGES)
    loaded = load_text(text, "generated.journey", ROOT)
    compile_journey(loaded.journey, loaded.diagnostics)
    del loaded
    gc.collect()
    if part in ("load", "all"):
        again = load_text(text, "generated.journey", ROOT)
        if part == "all":
            compile_journey(again.journey, again.diagnostics)


def _child(section: str, part: str, workdir: Path) -> None:
    if section == "language":
        _language_child(part)
        return
    from bench.__main__ import BATCH, _fresh_copy, floor_batches, load_cj, tick_rows, write_tick_rows
    from engine.runner import Runner
    from engine.store import Store

    loaded, cj = load_cj()
    if section == "tick":
        now = int((workdir / "tick-T").read_text()) - 2
        path = workdir / "tick-run.db"
        _fresh_copy(workdir / "tick-base.db", path)
        store = Store(path)
        if part.startswith("floor"):
            tick, by_lead = tick_rows(workdir / "tick-base.db", workdir / "tick-done.db", now)
            gc.collect()
            if part == "floor":
                write_tick_rows(store, now, tick, by_lead)
        else:
            runner = Runner(store, [cj], BATCH)
            gc.collect()
            if part == "work":
                runner.tick(now, keep=False)  # as `coltiva tick` (and python -m bench) runs it
        store.close()
    else:
        path = workdir / "durable-run.db"
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
        store = Store(path)
        if part.startswith("floor"):
            batches = floor_batches(workdir / "durable-done.db")
            gc.collect()
            if part == "floor":
                for batch in batches:
                    store.write_batch(**batch)
        else:
            store.register(cj, loaded.sources)
            lines = (workdir / "durable.jsonl").read_text().splitlines()
            runner = Runner(store, [cj], BATCH, freeze_gc=True)
            gc.collect()
            if part == "work":
                runner.run_lines(lines, "bench")
        store.close()


# -- the parent: prepare, count, report ---------------------------------------------------------
def _prepare(section: str, workdir: Path) -> int:
    """The stores and inputs the children read; the number of units of work (due leads, events)."""
    from bench.__main__ import BATCH, _fresh_copy, build_tick_store, load_cj
    from bench.workload import SIZES, json_lines
    from engine.runner import Runner
    from engine.store import Store

    loaded, cj = load_cj()
    if section == "tick":
        base = workdir / "tick-base.db"
        now = build_tick_store(cj, base, TICK_LEADS) - 2
        (workdir / "tick-T").write_text(str(now + 2))
        _fresh_copy(base, workdir / "tick-done.db")
        store = Store(workdir / "tick-done.db")
        ticked = Runner(store, [cj], BATCH).tick(now).ticked_leads
        store.close()
        return ticked
    lines: list[str] = []
    for line in json_lines(SIZES["small"]):
        if len(lines) == DURABLE_EVENTS:
            break
        lines.append(line)
    (workdir / "durable.jsonl").write_text("\n".join(lines) + "\n")
    store = Store(workdir / "durable-done.db")
    store.register(cj, loaded.sources)
    applied = Runner(store, [cj], BATCH).run_lines(lines, "bench").applied
    store.close()
    return applied


def _count(section: str, part: str, workdir: Path) -> int:
    """Instructions callgrind counted in one child run."""
    env = dict(os.environ, PYTHONHASHSEED="0")
    out = subprocess.run(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={workdir / 'callgrind.out'}",
         sys.executable, "-m", "bench.instructions", "--child", section, part, str(workdir)],
        cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    found = _COLLECTED.search(out.stderr)
    if out.returncode != 0 or found is None:
        raise SystemExit(f"{section} {part}: the child failed under valgrind:\n{out.stderr[-2000:]}")
    return int(found.group(1))


def measure(section: str, workdir: Path) -> dict[str, float]:
    units = _prepare(section, workdir)
    work = _count(section, "work", workdir) - _count(section, "setup", workdir)
    floor = _count(section, "floor", workdir) - _count(section, "floor-setup", workdir)
    return {"units": units, "work": work / units, "floor": floor / units, "ratio": work / floor}


def measure_language(workdir: Path) -> dict[str, float]:
    setup = _count("language", "setup", workdir)
    load = _count("language", "load", workdir) - setup
    both = _count("language", "all", workdir) - setup
    return {"load": load, "compile": both - load, "total": both}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"sections, of {', '.join(SECTIONS)}")
    parser.add_argument("--child", nargs=3, metavar=("SECTION", "PART", "DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        section, part, workdir = args.child
        _child(section, part, Path(workdir))
        return 0
    wanted = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = [s for s in wanted if s not in SECTIONS]
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; known: {', '.join(SECTIONS)}")
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (Debian: apt-get install valgrind): no instruction counts", file=sys.stderr)
        return 2
    units = {"tick": f"due lead ({TICK_LEADS:,}-lead store, 1 % due)",
             "durable": f"event (the small workload's first {DURABLE_EVENTS:,}, Runner.run_lines)"}
    for section in wanted:
        if section == "language":
            with tempfile.TemporaryDirectory(prefix="coltiva-ir-") as tmp:
                lang = measure_language(Path(tmp))
            print(f"language: {lang['total']:,.0f} instructions to load and compile the {LANGUAGE_STAGES:,}-stage "
                  f"journey (load_text {lang['load']:,.0f}, compile_journey {lang['compile']:,.0f})", flush=True)
            continue
        with tempfile.TemporaryDirectory(prefix="coltiva-ir-") as tmp:
            r = measure(section, Path(tmp))
        print(f"{section}: {r['work']:,.0f} instructions per {units[section]}; floor {r['floor']:,.0f}; "
              f"{r['ratio']:.2f}× the floor ({r['units']:,} units)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
