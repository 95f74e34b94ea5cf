"""`coltiva tick --now TIME`: fire everything due up to TIME (drips, holding loops, timeouts, decay)."""

from __future__ import annotations

import click

from ..tables import print_summary
from ._common import db_read_option, open_store, parse_when, partition_option

__all__ = ["command"]


@click.command("tick")
@click.option("--now", "now", required=True, help="ISO 8601 time with a zone, e.g. 2026-05-01T00:00:00Z.")
@db_read_option
@partition_option
def command(now, db, partition):
    """Advance time. Only leads with something due are read or written."""
    from engine.runner import Runner

    moment = parse_when(now)
    with open_store(db, writer=True, partition=partition) as store:
        runner = Runner(store, store.journeys())
        summary = runner.tick(moment)
    print_summary(summary, f"tick to {now}")
