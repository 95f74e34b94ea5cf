"""`coltiva simulate` answers "what would this journey do?" exactly as a real run would, and keeps nothing."""

import re
import subprocess
import sys

from coltiva.sample import generate
from engine.store import Store

from .conftest import ROOT

JOURNEY = str(ROOT / "journeys" / "demand_generation.journey")
END = "2026-06-01T00:00:00Z"


def _coltiva(*args, cwd):
    done = subprocess.run([sys.executable, "-m", "coltiva.cli", *args], capture_output=True, text=True, cwd=cwd,
                          env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    return done


def test_a_simulation_equals_a_real_run_and_leaves_no_file(tmp_path):
    events = tmp_path / "events.jsonl"
    events.write_text("\n".join(generate(leads=60, days=90, seed=5)) + "\n")
    before = set(tmp_path.iterdir())
    sim = _coltiva("simulate", JOURNEY, "--events", str(events), "--until", END, cwd=tmp_path)
    assert set(tmp_path.iterdir()) == before, "a simulation must leave nothing behind"

    real = tmp_path / "real.db"
    _coltiva("run", JOURNEY, "--events", str(events), "--db", str(real), cwd=tmp_path)
    _coltiva("tick", "--now", END, "--db", str(real), cwd=tmp_path)
    with Store(real) as store:
        stages = store.stage_counts()["Demand generation (B2B)"]
        sends = store.send_counts("Demand generation (B2B)")
        handoffs = store.action_counts("Demand generation (B2B)").get("handoff", 0)

    def shown(label):
        row = next(r for r in sim.stdout.splitlines() if re.search(rf"│ {re.escape(label)}\s+│", r))
        return int(row.split("│")[3].strip().replace(",", ""))

    for stage, n in stages.items():
        if stage != "not_enrolled":
            assert shown(stage) == n, stage
    for kind, content, n in sends:
        row = next(r for r in sim.stdout.splitlines() if f"│ {content} " in r)
        assert int(row.split("│")[3].strip().replace(",", "")) == n, content
    assert f"handed to sales: {handoffs:,} time(s)" in sim.stdout
    assert "kept aside:" in sim.stderr and "email.opend" in sim.stderr
