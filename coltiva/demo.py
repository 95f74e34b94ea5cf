"""`make demo`: the main job on the embedded default store (grows with the engine)."""

from __future__ import annotations

import glob
import subprocess
import sys

import click

__all__ = ["main"]


@click.command()
@click.option("--db", default="demo.db", show_default=True, help="SQLite file for the demo store.")
def main(db):
    journeys = sorted(glob.glob("journeys/*.journey"))
    click.echo(f"$ coltiva check {' '.join(journeys)}")
    rc = subprocess.call([sys.executable, "-m", "coltiva.cli", "check", *journeys])
    sys.exit(rc)


if __name__ == "__main__":
    main()
