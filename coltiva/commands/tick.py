"""`coltiva tick --now TIME`: fire everything due up to TIME (drips, holding loops, timeouts, decay).

Time only goes forwards: a tick before the last one is refused. A tick far beyond
both the wall clock and the latest event (more than --max-ahead days) is most often
a typo (2062 for 2026) that would fire every drip at once, so it needs --force.
--dry-run says what would fire and writes nothing.
"""

from __future__ import annotations

import click

from ..tables import print_summary
from ._common import db_read_option, open_store, parse_when, partition_option, stepping_runner, workers_option

__all__ = ["command"]


@click.command("tick")
@click.option("--now", "now", required=True, help="ISO 8601 time with a zone, e.g. 2026-05-01T00:00:00Z.")
@db_read_option
@click.option("--dry-run", is_flag=True, help="Say what would fire; write nothing.")
@click.option("--force", is_flag=True, help="Allow a tick far beyond the wall clock and the latest event.")
@click.option("--max-ahead", default=90, show_default=True, type=click.IntRange(min=0),
              help="Days beyond the wall clock and the latest event a tick may go without --force.")
@partition_option
@workers_option
def command(now, db, dry_run, force, max_ahead, partition, workers):
    """Advance time. Only leads with something due are read or written."""
    from service.clock import check_tick, preview_tick

    moment = parse_when(now)
    with open_store(db, writer=not dry_run, partition=partition) as store:
        check_tick(store, moment, force=force, max_ahead_days=max_ahead)
        if dry_run:
            summary = preview_tick(store, store.journeys(), moment)
        else:
            with stepping_runner(store, store.journeys(), workers) as runner:
                summary = runner.tick(moment, keep=False)  # the process stops after it: nothing to keep
    print_summary(summary, f"tick to {now}" + (" (dry run: nothing written)" if dry_run else ""))
