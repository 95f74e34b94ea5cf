"""`--workers N`: leads stepped by N processes (split by the lead hash), one writer: the very store of one process.

Real processes (forked workers), real SQLite files, the real CLI. No timings here:
the speed-up is measured by `make bench` (bench/__main__.py, section `workers`).
"""

from __future__ import annotations

import json
import subprocess

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coltiva.sample import generate
from dsl.errors import ColtivaError
from engine.runner import Runner
from engine.store import Store
from engine.workers import ParallelRunner

from .engine_helpers import COLTIVA, DAY, DEMAND, SAAS, T0, example, iso

JOURNEYS = [example(DEMAND), example(SAAS)]
COMPILED = [cj for cj, _ in JOURNEYS]
FAST = settings(deadline=None, max_examples=15,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def store_at(path, window: int | None = None) -> Store:
    store = Store(path) if window is None else Store(path, dedupe_window=window)
    for cj, sources in JOURNEYS:
        store.register(cj, sources)
    return store


def run(path, lines, workers: int, batch: int, ticks=(), window: int | None = None):
    """Run the lines (and then the ticks) with N workers (1: the plain Runner); the summaries."""
    with store_at(path, window) as store:
        if workers == 1:
            runner = Runner(store, COMPILED, batch_size=batch)
            return [runner.run_lines(lines, "events.jsonl")] + [runner.tick(t) for t in ticks]
        with ParallelRunner(store, COMPILED, workers, batch_size=batch) as runner:
            return [runner.run_lines(lines, "events.jsonl")] + [runner.tick(t) for t in ticks]


def dump(path) -> dict:
    with Store(path, read_only=True) as store:
        return store.dump()


def noisy(lines: list[str], rng_seed: int) -> list[str]:
    """The lines with duplicates, malformed lines and blank lines mixed in."""
    out = list(lines)
    for k in range(0, len(lines), 7):
        out.insert(min(len(out), k + 3 + rng_seed % 5), lines[k])  # a duplicate a little later
    out[len(out) // 2:len(out) // 2] = ["{not json", "", json.dumps({"id": "x", "lead": "y", "type": "nope.nope",
                                                                     "time": "2026-01-01T00:00:00Z"})]
    return out


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_n_workers_write_the_store_one_process_writes(tmp_path, workers):
    lines = noisy(generate(40, 90, 7), 7)
    ticks = [T0 + 30 * DAY, T0 + 400 * DAY]
    reference = run(tmp_path / "one.db", lines, 1, 50, ticks)
    summaries = run(tmp_path / "n.db", lines, workers, 50, ticks)
    one, many = dump(tmp_path / "one.db"), dump(tmp_path / "n.db")
    assert many == one  # records, input log, outbox (same order, same keys), quarantine, transitions
    assert [vars(s) for s in summaries] == [vars(s) for s in reference]
    assert reference[0].applied > 100 and reference[0].duplicates > 10 and reference[0].quarantined >= 2
    assert sum(s.ticked_leads for s in reference[1:]) > 0


@FAST
@given(st.integers(1, 12), st.sampled_from([30, 90]), st.integers(0, 10**6), st.integers(2, 3),
       st.integers(1, 30), st.integers(1, 6))
def test_any_event_file_gives_the_same_store_with_workers(tmp_path_factory, leads, days, seed, workers, batch,
                                                          window):
    """Generated files, any batch size, a tiny duplicate window: N workers equal one process."""
    lines = noisy(generate(leads, days, seed), seed)
    base = tmp_path_factory.mktemp("w")
    ticks = [T0 + 200 * DAY]
    assert run(base / "n.db", lines, workers, batch, ticks, window) == run(base / "one.db", lines, 1, batch, ticks,
                                                                             window)
    assert dump(base / "n.db") == dump(base / "one.db")


@pytest.mark.parametrize("workers", [1, 2])
def test_a_tick_that_keeps_nothing_leaves_no_stale_record_behind(tmp_path, workers):
    """`tick(keep=False)` (what `coltiva tick` runs) drops the records it wrote from the cache: events and ticks
    that follow in the same process step from the store's records, exactly as when the tick keeps them."""
    lines = generate(30, 90, 4)
    parts = [lines[:len(lines) // 3], lines[len(lines) // 3:2 * len(lines) // 3], lines[2 * len(lines) // 3:]]
    ticks = [T0 + 20 * DAY, T0 + 50 * DAY, T0 + 400 * DAY]
    summaries = {}
    for keep in (True, False):
        with store_at(tmp_path / f"{keep}.db") as store:
            runner = Runner(store, COMPILED, batch_size=25) if workers == 1 else ParallelRunner(
                store, COMPILED, workers, batch_size=25)
            try:
                done = []
                for part, moment in zip(parts, ticks):
                    done += [runner.run_lines(part, "events.jsonl"), runner.tick(moment, keep=keep)]
            finally:
                if workers > 1:
                    runner.close()
        summaries[keep] = [vars(s) for s in done]
    assert sum(s["ticked_leads"] for s in summaries[True]) > 20
    assert summaries[False] == summaries[True]
    assert dump(tmp_path / "False.db") == dump(tmp_path / "True.db")


def test_a_worker_continues_a_store_one_process_began_and_the_other_way(tmp_path):
    lines = generate(30, 60, 3)
    half = len(lines) // 2
    run(tmp_path / "one.db", lines, 1, 40, [T0 + 400 * DAY])
    run(tmp_path / "mix.db", lines[:half], 2, 40)
    run(tmp_path / "mix.db", lines, 1, 40)  # the first half again: all duplicates
    run(tmp_path / "mix.db", [], 3, 40, [T0 + 400 * DAY])
    assert dump(tmp_path / "mix.db") == dump(tmp_path / "one.db")


def test_the_cli_runs_and_ticks_with_workers_like_without(tmp_path):
    events = tmp_path / "events.jsonl"
    events.write_text("\n".join(noisy(generate(25, 60, 11), 11)) + "\n")
    outputs = {}
    for workers in (1, 2):
        db = tmp_path / f"w{workers}.db"
        ran = subprocess.run([str(COLTIVA), "run", str(DEMAND), str(SAAS), "--events", str(events), "--db", str(db),
                              "--workers", str(workers), "--batch", "30"], capture_output=True, text=True)
        assert ran.returncode == 0, ran.stderr
        ticked = subprocess.run([str(COLTIVA), "tick", "--now", iso(T0 + 120 * DAY), "--db", str(db),
                                 "--workers", str(workers)], capture_output=True, text=True)
        assert ticked.returncode == 0, ticked.stderr
        outputs[workers] = (ran.stdout, ticked.stdout, dump(db))
    assert outputs[2] == outputs[1]


def test_workers_are_refused_with_a_message_where_they_cannot_run(tmp_path):
    with store_at(":memory:") as store:
        with pytest.raises(ColtivaError, match="SQLite store file"):
            ParallelRunner(store, COMPILED, 2)
    with store_at(tmp_path / "s.db") as store:
        with pytest.raises(ColtivaError, match="want 1 to 64"):
            ParallelRunner(store, COMPILED, 0)
    done = subprocess.run([str(COLTIVA), "run", str(DEMAND), "--events", "-", "--db", str(tmp_path / "c.db"),
                           "--workers", "0"], input="", capture_output=True, text=True)
    assert done.returncode == 2 and "Traceback" not in done.stderr and "--workers" in done.stderr


def test_a_worker_that_dies_stops_the_run_and_leaves_the_last_batch_uncommitted(tmp_path):
    lines = generate(20, 60, 5)
    with store_at(tmp_path / "s.db") as store:
        with ParallelRunner(store, COMPILED, 2, batch_size=len(lines) // 3) as runner:
            runner._procs[1].kill()
            runner._procs[1].join()
            with pytest.raises(ColtivaError, match="worker 1 of 2 stopped"):
                runner.run_lines(lines, "events.jsonl")
        committed = store.db.execute("SELECT COUNT(*) FROM inputs").fetchone()[0]
    assert committed < len(lines)
    run(tmp_path / "s.db", lines, 2, 50)  # run again: the store ends as if nothing had happened
    run(tmp_path / "one.db", lines, 1, 50)
    assert dump(tmp_path / "s.db") == dump(tmp_path / "one.db")


def test_an_event_the_step_fails_on_is_kept_aside_by_workers_as_by_one_process(tmp_path, monkeypatch):
    """A bug in the step (made here for two events) keeps those events aside in their place, with the same reason,
    and nothing of theirs is written, with workers as with one process (the workers are forked: they share the fault)."""
    import engine.runner

    real = engine.runner.step_lead
    lines = generate(20, 60, 5)
    events = [line for line in lines if line.startswith('{"id": "lead-')]  # the sample's well-formed events
    picked = {events[len(events) // 3], events[2 * len(events) // 3]}
    doomed = {json.loads(line)["id"] for line in picked}

    def faulty(journeys, rules, records, wide, lead, event):
        if event.id in doomed:
            raise RuntimeError(f"made to fail on {event.id}")
        return real(journeys, rules, records, wide, lead, event)

    monkeypatch.setattr(engine.runner, "step_lead", faulty)
    reference = run(tmp_path / "one.db", lines, 1, 25)
    summaries = run(tmp_path / "n.db", lines, 2, 25)
    assert [vars(s) for s in summaries] == [vars(s) for s in reference]
    one, many = dump(tmp_path / "one.db"), dump(tmp_path / "n.db")
    assert many == one
    assert {raw for _, _, reason, raw in one["quarantine"] if "made to fail" in reason} == picked
    assert reference[0].actions
