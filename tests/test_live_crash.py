"""A real crash during `coltiva apply`: SIGKILL while the switch is being written leaves all of it or nothing."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time

from engine.plan import make_plan
from engine.store import Store

from .engine_helpers import COLTIVA, ROOT
from .live_helpers import V1_TEXT, V2_TEXT, compiled

ENV = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
NAME = "Demand generation (B2B)"
LEADS = 2_500


def _state(db) -> dict:
    with Store(db) as store:  # a plain open: SQLite drops what a killed writer left uncommitted in the WAL
        leads = list(store.leads_of(NAME))
        return {
            "current": store.current_version(NAME),
            "versions": {s.version for _, s in leads},
            "records": {lead: s.record.to_list() for lead, s in leads},
            "outbox": [a["key"] for _, a in store.actions()],
            "switches": [json.loads(e) for (e,) in store.db.execute("SELECT event FROM inputs WHERE kind = 'switch'")],
            "log": store.db.execute("SELECT COUNT(*) FROM journey_log").fetchone()[0],
        }


def _wal_size(db) -> int:
    try:
        return os.path.getsize(f"{db}-wal")
    except OSError:
        return 0


def test_sigkill_during_apply_leaves_all_or_nothing(tmp_path):
    (tmp_path / "v1.journey").write_text(V1_TEXT)
    (tmp_path / "v2.journey").write_text(V2_TEXT)
    events = tmp_path / "events.jsonl"
    with events.open("w") as out:
        for i in range(LEADS):  # many leads: the switch rewrites every record in one transaction
            out.write(json.dumps({"id": f"e{i}", "lead": f"L{i:05d}", "type": "page.visited",
                                  "time": "2026-01-01T00:00:00Z", "data": {"path": "/pricing"}}) + "\n")
    template = tmp_path / "template.db"
    subprocess.run([str(COLTIVA), "run", str(tmp_path / "v1.journey"), "--events", str(events), "--db", str(template)],
                   cwd=ROOT, env=ENV, check=True, capture_output=True, timeout=300)
    assert _wal_size(template) == 0
    old = _state(template)
    with Store(template, read_only=True) as store:
        plan = make_plan(store, compiled(V2_TEXT)[0], "migrate")
    assert len(plan.records) == LEADS and plan.actions
    new_outbox = old["outbox"] + [a.key for a in plan.actions]

    def apply(db, kill_at: int | None):
        """Run `coltiva apply`; with `kill_at`, SIGKILL it once its WAL holds more than that many bytes.
        Returns (killed, the largest WAL size seen)."""
        proc = subprocess.Popen([str(COLTIVA), "apply", str(tmp_path / "v2.journey"), "--db", str(db),
                                 "--policy", "migrate", "--plan", plan.hash], cwd=ROOT, env=ENV,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        largest = 0
        while proc.poll() is None and time.monotonic() < deadline:
            largest = max(largest, _wal_size(db))
            if kill_at is not None and largest > kill_at:
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.001)
        proc.wait(timeout=120)
        return proc.returncode == -signal.SIGKILL, largest

    def assert_all(db):
        after = _state(db)
        assert after["current"] == plan.new_version and after["versions"] == {plan.new_version}
        assert after["records"] == {lead: rec.to_list() for lead, rec in plan.records.items()}
        assert after["outbox"] == new_outbox and after["log"] == old["log"] + 1
        assert [s["to"] for s in after["switches"]] == [plan.new_version]

    # once to the end: how large the write grows, and what "all" is
    reference = tmp_path / "reference.db"
    shutil.copy(template, reference)
    killed, written = apply(reference, None)
    assert not killed and written > 1_000_000
    assert_all(reference)
    # then killed at points spread over the write: each leaves the old store or the new one, nothing between
    # (the writer's page cache holds the whole switch until its commit, so the WAL grows in one burst at the
    # end: on a loaded machine a kill may land before or after it; more points are tried until one lands in it)
    killed_mid_write = 0
    for tried, fraction in enumerate((0.1, 0.5, 0.9, 0.3, 0.7, 0.2, 0.6, 0.8, 0.4, 0.95, 0.05, 0.99)):
        if tried >= 3 and killed_mid_write:
            break
        db = tmp_path / f"killed-{fraction}.db"
        shutil.copy(template, db)
        killed, _ = apply(db, int(written * fraction))
        if _state(db)["current"] == old["current"]:
            assert _state(db) == old, "a killed apply left part of the switch"
            killed_mid_write += killed
            # nothing was written, so the plan still holds: apply it again, to the end
            assert apply(db, None)[0] is False
        assert_all(db)
    assert killed_mid_write, "every apply finished before it could be killed mid-write"
