"""Flink events/s per worker: `coltiva flink`'s job on a local mini-cluster, in .venv-flink.

A job's run time includes starting its Python workers (~15 s here), so the rate
is marginal: two workloads of E1 and E2 events on W workers, rate per worker =
(E2 - E1) / (T2 - T1) / W, with T Flink's net run time of each job. Each job runs
in its own process in .venv-flink (`make flink`), as `python -m engine_flink.job`.
"""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
from pathlib import Path

from bench.workload import Spec, json_lines

__all__ = ["flink_rates", "FLINK_PY"]

ROOT = Path(__file__).resolve().parent.parent
FLINK_PY = ROOT / ".venv-flink" / "bin" / "python"
JOURNEY = ROOT / "journeys" / "demand_generation.journey"
SIZES = (Spec(500, 5_000, days=120), Spec(2_000, 25_000, days=120))


def _job_millis(spec: Spec, workdir: Path, seed: int, workers: int) -> int:
    from dsl.loader import load_journey
    from engine.compiler import compile_journey
    from engine.events import parse_time
    from engine_flink.job import JobSpec, shipped

    spec = dataclasses.replace(spec, seed=seed)
    run_dir = workdir / f"flink-{spec.events}"
    run_dir.mkdir(parents=True)
    events = run_dir / "events.jsonl"
    events.write_text("\n".join(json_lines(spec)) + "\n", encoding="utf-8")
    loaded = load_journey(str(JOURNEY))
    cj = compile_journey(loaded.journey, loaded.diagnostics)
    job = JobSpec(journeys=shipped([(cj, loaded.sources)]), events=str(events), out=str(run_dir / "out"),
                  until=parse_time("2026-05-05T00:00:00Z"), parallelism=workers)
    spec_file = run_dir / "spec.json"
    spec_file.write_text(json.dumps(dataclasses.asdict(job)), encoding="utf-8")
    done = subprocess.run([str(FLINK_PY), "-m", "engine_flink.job", str(spec_file)], cwd=ROOT,
                          capture_output=True, text=True)
    found = re.search(r"net runtime: (\d+) ms", done.stdout)
    if done.returncode != 0 or not found:
        raise RuntimeError(f"the Flink job failed: {done.stderr[-500:]}")
    return int(found.group(1))


def flink_rates(workdir: Path, repeat: int, seed: int, progress, workers: int = 1) -> tuple[list[float], str]:
    """Marginal events/s per worker on `workers` workers, one value per repeat; and a note saying how."""
    if not FLINK_PY.exists():
        raise RuntimeError(f"{FLINK_PY} is missing: run `make flink` first")
    rates = []
    for r in range(repeat):
        millis = []
        for spec in SIZES:
            progress(f"flink: {spec.events:,} events on {workers} worker(s), run {r + 1}/{repeat}")
            millis.append(_job_millis(spec, workdir / f"run{r}-w{workers}", seed, workers))
        rates.append((SIZES[1].events - SIZES[0].events) / max(1e-3, (millis[1] - millis[0]) / 1000) / workers)
    note = (f"marginal, (E2-E1)/(T2-T1)/{workers} for {SIZES[0].events:,} and {SIZES[1].events:,} events; "
            f"a job also costs ~{millis[0] / 1000:,.0f} s to start its workers")
    return rates, note
