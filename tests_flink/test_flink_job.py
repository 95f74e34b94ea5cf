"""The Flink job on a real local mini-cluster equals `coltiva run` + `coltiva tick` on the same inputs.

Runs in .venv-flink (`make test-flink`): PyFlink, Java 17. One input holds the
sampled six-stage example (duplicates and malformed lines included) and a
benchmark workload, merged in time order, with tick lines. Each job runs in a
process of its own: 1 worker on RocksDB through `coltiva flink` (actions to the
exactly-once file sink); 2 workers that fail once after a checkpoint and restore from it, writing
actions by key to a PostgreSQL outbox on a private server: in memory, Flink
restarts the job; on RocksDB, the job is killed (SIGKILL) and a new one resumes
from the last completed checkpoint.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from bench.workload import Spec, json_lines
from coltiva.sample import generate
from engine.events import format_time, parse_time
from engine.store import Store
from engine_flink.job import FAIL_MARKER, JobSpec, shipped
from engine_flink.sinks import read_results

ROOT = Path(__file__).resolve().parent.parent
JOURNEY = ROOT / "journeys" / "demand_generation.journey"
UNTIL = "2026-05-20T00:00:00Z"
BIN = Path(sys.executable).parent


def _time(line: str) -> int | None:
    try:
        return parse_time(json.loads(line)["time"])
    except (ValueError, KeyError, TypeError):
        return None


def _merged(*streams: list[str]) -> list[str]:
    """Lines of several streams in time order (a line without a valid time keeps its stream's place)."""
    keyed = []
    for s, lines in enumerate(streams):
        last = 0
        for n, line in enumerate(lines):
            last = _time(line) or last
            keyed.append((last, s, n, line))
    return [line for *_, line in sorted(keyed)]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """The events (with weekly tick lines), and the single machine's records and action keys on them."""
    d = tmp_path_factory.mktemp("flink")
    sample = generate(60, 120, 7)
    bench = list(json_lines(Spec(150, 2000, days=120, seed=3)))
    lines = _merged(sample, bench)
    ticks, lines_with_ticks, week = [], [], 7 * 86_400
    next_tick = parse_time("2026-01-12T00:00:00Z")
    for line in lines:
        t = _time(line)
        while t is not None and t > next_tick:  # a tick at T once every event before T is in
            lines_with_ticks.append(json.dumps({"tick": format_time(next_tick)}))
            ticks.append(next_tick)
            next_tick += week
        lines_with_ticks.append(line)
    events = d / "events.jsonl"
    events.write_text("\n".join(lines_with_ticks) + "\n", encoding="utf-8")
    # the single machine: the same events, in the same order, each tick as `coltiva tick` in between
    db = d / "single.db"
    chunk, chunks = [], []
    for line in lines_with_ticks:
        if line.startswith('{"tick"'):
            chunks.append((chunk, json.loads(line)["tick"]))
            chunk = []
        else:
            chunk.append(line)
    chunks.append((chunk, UNTIL))
    for n, (part, tick) in enumerate(chunks):
        part_file = d / f"part{n}.jsonl"
        part_file.write_text("\n".join(part) + "\n", encoding="utf-8")
        subprocess.run([BIN / "coltiva", "run", str(JOURNEY), "--events", str(part_file), "--db", str(db)],
                       check=True, capture_output=True)
        subprocess.run([BIN / "coltiva", "tick", "--now", tick, "--db", str(db)], check=True, capture_output=True)
    with Store(str(db), read_only=True) as store:
        records = {(j, lead): json.loads(rec) for j, lead, _, _, _, rec in store.dump()["leads"]}
        keys = {a["key"] for _, a in store.actions()}
        order: dict[str, list[str]] = {}
        for _, a in store.actions():
            order.setdefault(a["lead"], []).append(a["key"])
        quarantined = len(list(store.quarantined()))
    assert len(ticks) >= 10 and quarantined == 5
    return {"dir": d, "events": events, "records": records, "keys": keys, "order": order, "quarantined": quarantined}


def _same_as_single_machine(results, inputs) -> None:
    keys = [a["key"] for a in results.actions]
    assert len(keys) == len(set(keys)), "an action was written twice"
    assert set(keys) == inputs["keys"]
    assert results.records == inputs["records"]
    for prefix in ("lead-", "L0"):  # both workloads are in, and equal
        assert any(lead.startswith(prefix) for _, lead in results.records)
    assert len(results.quarantine) == inputs["quarantined"]


def test_one_worker_on_rocksdb_through_the_command_equals_the_single_machine(inputs):
    out = inputs["dir"] / "one"
    logs = inputs["dir"] / "one-logs"
    # each job in its own process: a JVM that restarted a job is not reused
    result = subprocess.run([BIN / "coltiva", "flink", str(JOURNEY), "--events", str(inputs["events"]),
                             "--until", UNTIL, "--out", str(out), "--parallelism", "1", "--state", "rocksdb"],
                            capture_output=True, text=True, env={**os.environ, "FLINK_LOG_DIR": str(logs)})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "actions" in result.stdout
    _same_as_single_machine(read_results(str(out)), inputs)
    log = "\n".join(p.read_text(errors="replace") for p in logs.glob("*.log"))
    assert "RocksDBKeyedStateBackend" in log  # RocksDB really held the state


def _run_job(spec: JobSpec, name: str, inputs) -> tuple[subprocess.CompletedProcess, str]:
    """`python -m engine_flink.job SPEC.json` in a process group of its own; (the result, Flink's log).

    A JVM that crashes leaves its hs_err report in the log folder; it is shown with the failure."""
    spec_file = inputs["dir"] / f"{name}.json"
    spec_file.write_text(json.dumps(dataclasses.asdict(spec)), encoding="utf-8")
    logs = inputs["dir"] / f"{name}-logs"
    result = subprocess.run([sys.executable, "-m", "engine_flink.job", str(spec_file)], capture_output=True, text=True,
                            cwd=ROOT, start_new_session=True,
                            env={**os.environ, "FLINK_LOG_DIR": str(logs),
                                 "JVM_ARGS": f"-XX:ErrorFile={logs}/hs_err_pid%p.log"})
    crashes = [p.read_text(errors="replace")[:6000] for p in logs.glob("hs_err_pid*.log")]
    assert not crashes, "the JVM crashed:\n" + "\n".join(crashes)
    return result, "\n".join(p.read_text(errors="replace") for p in logs.glob("*.log"))


def _latest_checkpoint(folder: Path) -> Path:
    """The completed checkpoint (its `_metadata` written) with the highest number."""
    done = [p.parent for p in folder.glob("*/chk-*/_metadata")]
    assert done, "no completed checkpoint"
    return max(done, key=lambda p: int(p.name.split("-")[1]))


@pytest.mark.parametrize("state", ["hashmap", "rocksdb"])
def test_two_workers_fail_once_and_restore_with_nothing_lost_or_repeated(inputs, pg_server, state):
    """Two workers fail once mid-stream, after a checkpoint, and go on from it; the actions go to a
    PostgreSQL outbox by key, in batches. After the restore each single-machine action is there once,
    each lead's in the order the single machine produced them, readable by `coltiva actions`.

    hashmap: a task raises and Flink restarts the job in the same JVM from its last checkpoint.
    rocksdb: the whole job (command, JVM, Python workers) is killed with SIGKILL, as a machine that
    dies, and a new job resumes from the last completed checkpoint. (On a local mini-cluster a job
    restarted inside the same JVM on RocksDB may crash that JVM: a cancelled task's Python worker can
    send a keyed-state request after the task's RocksDB is closed; docs/scaling.md, *Pitfalls*.)"""
    from dsl.loader import load_journey
    from engine.compiler import compile_journey

    loaded = load_journey(str(JOURNEY))
    cj = compile_journey(loaded.journey, loaded.diagnostics)
    out = inputs["dir"] / f"two-{state}"
    outbox = pg_server.create_schema("coltiva", f"flink_outbox_{state}")
    kill = state == "rocksdb"
    spec = JobSpec(journeys=shipped([(cj, loaded.sources)]), events=str(inputs["events"]), out=str(out),
                   until=parse_time(UNTIL), parallelism=2, state=state, checkpoint_ms=200, bundle=100, fail_after=400,
                   fail_how="kill" if kill else "raise", outbox=outbox)
    result, log = _run_job(spec, f"two-{state}", inputs)
    marker = out / "checkpoints" / FAIL_MARKER
    assert marker.exists(), "the job did not fail: the restore was not exercised"
    if kill:
        assert result.returncode == -signal.SIGKILL, result.stderr[-3000:]
        checkpoint = _latest_checkpoint(out / "checkpoints")
        spec = dataclasses.replace(spec, fail_after=None, restore=str(checkpoint))
        result, log = _run_job(spec, f"two-{state}-resumed", inputs)
        # the new job read the checkpoint back (Flink names a checkpoint it starts from a savepoint)
        assert f"from Savepoint {checkpoint.name.split('-')[1]} @" in log
    assert result.returncode == 0, result.stderr[-3000:]
    assert not (out / "actions").exists()  # the outbox took the actions
    listed = subprocess.run([BIN / "coltiva", "actions", "--db", outbox], capture_output=True, text=True)
    assert listed.returncode == 0, listed.stderr
    in_outbox = [json.loads(line) for line in listed.stdout.splitlines()]
    _same_as_single_machine(dataclasses.replace(read_results(str(out)), actions=in_outbox), inputs)
    positions = [a["seq"] for a in in_outbox]
    assert positions == sorted(set(positions))
    for lead in {a["lead"] for a in in_outbox}:  # each lead's actions in the single machine's order
        assert [a["key"] for a in in_outbox if a["lead"] == lead] == inputs["order"][lead]
    # the restore read the checkpoint back, with the state where this test put it: Flink's own log says so
    assert "Restoring job" in log and ("from Savepoint" if kill else "from Checkpoint") in log
    assert ("RocksDBKeyedStateBackend" in log) == (state == "rocksdb")
    # the Python workers ran as processes of their own, not as threads of the client ("loopback"): a failed
    # attempt's loopback worker outlives its RocksDB and crashes the JVM (the restore test's old flake)
    assert "Python worker in loopback mode" not in log
