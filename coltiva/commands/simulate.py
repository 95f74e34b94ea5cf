"""`coltiva simulate JOURNEY... --events FILE`: try a journey on real or sample events before launch.

The same runner and store as `coltiva run`, on an in-memory store that is gone
when the command ends: nothing is sent, nothing is kept. Time is ticked to
`--until` (default: the last event's time), so drips, holding loops and
timeouts happen as they would in production.
"""

from __future__ import annotations

import click
from rich.table import Table

from ..output import cell, console
from ..tables import funnel_table, print_summary
from ._common import compile_files, parse_when, writing_store

__all__ = ["command"]


@click.command("simulate")
@click.argument("journeys", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--events", "events", required=True, type=click.File("rb"),
              help="JSON Lines, one event a line (see docs/events.md); - for standard input.")
@click.option("--until", "until", default=None,
              help="Tick to this ISO 8601 time at the end (default: the time of the last event).")
def command(journeys, events, until):
    """Run events through journeys in memory and show the funnel, the sends and the handoffs."""
    from engine.events import read_lines
    from engine.runner import Runner

    compiled = compile_files(journeys)
    out = console()
    with writing_store(compiled, ":memory:") as store:
        runner = Runner(store, [cj for cj, _ in compiled])
        source = "-" if events.name == "<stdin>" else events.name
        summary = runner.run_lines(read_lines(events), source)
        last = store.db.execute("SELECT MAX(time) FROM inputs WHERE kind = 'event'").fetchone()[0]
        end = parse_when(until) if until else last
        if end is not None:
            summary.add(runner.tick(end))
        print_summary(summary, "simulation (in memory: nothing sent, nothing kept)")
        counts = store.stage_counts()
        for cj, _ in compiled:
            out.print(funnel_table(cj, counts.get(cj.name, {})))
            sends = Table(title=cell(f"{cj.name}: what would be sent"))
            sends.add_column("kind")
            sends.add_column("content")
            sends.add_column("sends", justify="right")
            for kind, content, n in store.send_counts(cj.name):
                sends.add_row(cell(kind), cell(content), f"{n:,}")
            out.print(sends)
            handoffs = store.action_counts(cj.name).get("handoff", 0)
            out.print(f"handed to sales: {handoffs:,} time(s)", markup=False)
        quarantined = list(store.quarantined())
    for _, src, line_no, reason, _ in quarantined[:10]:
        click.echo(f"kept aside: {src}:{line_no}: {reason}", err=True)
    if len(quarantined) > 10:
        click.echo(f"... and {len(quarantined) - 10} more kept aside", err=True)
