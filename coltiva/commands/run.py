"""`coltiva run JOURNEY... --events FILE|-`: step every lead, durably, batch by batch."""

from __future__ import annotations

import sys

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ..output import err_console
from ..tables import print_summary
from ._common import (catalogue_option, compile_files, db_option, partition_option, stepping_runner, workers_option,
                      writing_store)

__all__ = ["command"]


@click.command("run")
@click.argument("journeys", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--events", "events", required=True, type=click.File("rb"),
              help="JSON Lines, one event a line (see docs/events.md); - for standard input.")
@db_option
@click.option("--batch", default=5000, show_default=True, help="Events per transaction.")
@partition_option
@workers_option
@catalogue_option
def command(journeys, events, db, batch, partition, workers, catalogue):
    """Run events through journeys. Malformed events are kept aside, duplicates ignored."""
    from engine.events import read_lines

    compiled = compile_files(journeys, catalogue)
    source = "-" if events.name == "<stdin>" else events.name
    lines = read_lines(events)
    if not partition.whole:
        lines = partition.lines(lines)  # the other writers' lines are blank here: line numbers are kept
    with writing_store(compiled, db, partition) as store, \
            stepping_runner(store, [cj for cj, _ in compiled], workers, batch) as runner:
        if err_console().is_terminal:  # after the workers started: a process is never forked with a thread
            with Progress(TextColumn("stepping leads"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                          console=err_console(), transient=True) as bar:
                task = bar.add_task("run", total=None)
                summary = runner.run_lines(lines, source, progress=lambda n: bar.advance(task, n))
        else:
            summary = runner.run_lines(lines, source)
    print_summary(summary, f"run: {', '.join(cj.name for cj, _ in compiled)}")
    if summary.quarantined:
        click.echo(f"{summary.quarantined} event(s) kept aside: see `coltiva quarantine --db {db}`", err=True)
    sys.exit(0)
