"""`make demo`: the main job, end to end, on the embedded default store (SQLite).

Checks the six-stage example, writes a realistic sample of events (skips,
stalls, steps back, duplicates, malformed lines), runs them, ticks to the end
of the period, prints the funnel, the quarantine and a few `explain` traces.
Every step is the real `coltiva` command, run as a user would run it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click

from .sample import generate

__all__ = ["main"]

JOURNEY = "journeys/demand_generation.journey"


def _coltiva(*args: str) -> None:
    click.secho(f"\n$ coltiva {' '.join(args)}", bold=True)
    rc = subprocess.call([sys.executable, "-m", "coltiva.cli", *args])
    if rc != 0:
        raise SystemExit(rc)


@click.command()
@click.option("--db", default="demo.db", show_default=True, help="SQLite file for the demo store (recreated).")
@click.option("--leads", default=300, show_default=True)
def main(db, leads):
    for suffix in ("", "-wal", "-shm"):
        Path(db + suffix).unlink(missing_ok=True)
    events = Path("out/sample-events.jsonl")
    events.parent.mkdir(exist_ok=True)
    events.write_text("\n".join(generate(leads=leads, days=120, seed=7)) + "\n", encoding="utf-8")
    click.secho(f"wrote {events}: {leads} leads over 4 months (with duplicates and malformed lines)", fg="cyan")
    _coltiva("check", JOURNEY)
    _coltiva("run", JOURNEY, "--events", str(events), "--db", db)
    _coltiva("tick", "--now", "2026-06-01T00:00:00Z", "--db", db)
    _coltiva("leads", "--db", db)
    _coltiva("quarantine", "--db", db)
    for lead in ("lead-0000", "lead-0003", "lead-0006"):  # a fast mover, a stall, a recycled lead
        _coltiva("explain", lead, "--db", db)
    click.secho(f"\nthe outbox: `coltiva actions --db {db}` (JSON Lines, one idempotency key each)", fg="cyan")


if __name__ == "__main__":
    main()
