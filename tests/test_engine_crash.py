"""A real crash: `coltiva run` killed with SIGKILL mid-run, then run again, equals an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time

from coltiva.sample import generate
from engine.store import Store

from .engine_helpers import COLTIVA, DEMAND, ROOT

ENV = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}


def _run(args, check=True):
    done = subprocess.run([str(COLTIVA), *args], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=120)
    if check:
        assert done.returncode == 0, (done.stdout, done.stderr)
    return done


def _outbox_count(db) -> int:
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.05)
        try:
            return con.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error:
        return 0


def _dump(db) -> dict:
    with Store(db) as store:
        return store.dump()


def test_sigkill_mid_run_then_rerun_equals_an_uninterrupted_run(tmp_path):
    events = tmp_path / "events.jsonl"
    events.write_text("\n".join(generate(300, 120, 11)) + "\n", encoding="utf-8")
    b = tmp_path / "B.db"
    command = ["run", str(DEMAND), "--events", str(events), "--batch", "50"]
    _run([*command, "--db", str(b)])
    full = _outbox_count(b)
    assert full > 1000

    killed_at = None
    for attempt in range(6):  # the run is fast: retry in a fresh store if it finished before the kill
        a = tmp_path / f"A{attempt}.db"
        proc = subprocess.Popen([str(COLTIVA), *command, "--db", str(a)], cwd=ROOT, env=ENV,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            if _outbox_count(a) > 0:
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.002)
        proc.wait(timeout=60)
        if proc.returncode == -signal.SIGKILL:
            killed_at = _outbox_count(a)
            break
    assert proc.returncode == -signal.SIGKILL, "the run always finished before it could be killed"
    assert 0 < killed_at < full, (killed_at, full)

    # the same command again, to completion, on the crashed store
    _run([*command, "--db", str(a)])
    da, db = _dump(a), _dump(b)
    assert da == db
    keys = [row[0] for row in da["outbox"]]
    assert len(keys) == len(set(keys)), "an action was emitted twice"
    assert set(keys) == {row[0] for row in db["outbox"]}, "an action is missing"
    assert len(da["quarantine"]) == 5

    # time passes the same way on both
    for db_path in (a, b):
        _run(["tick", "--now", "2026-12-31T00:00:00Z", "--db", str(db_path)])
    da, db = _dump(a), _dump(b)
    assert da == db
    assert len(da["outbox"]) > full
    assert da["inputs"][-1][0] == "tick"
    sends = [json.loads(row[5]) for row in da["outbox"] if row[3] == "send"]
    plain = [(s["lead"], s["content"]) for s in sends if "edition" not in s]
    assert len(plain) == len(set(plain))
