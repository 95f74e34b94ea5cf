"""`coltiva leads`: how many leads are in each stage of each journey (the funnel)."""

from __future__ import annotations

import click
from rich.table import Table

from ..output import console
from ._common import db_read_option, open_store

__all__ = ["command", "funnel_table"]


@click.command("leads")
@db_read_option
def command(db):
    """Leads per stage, in the journey's order, with the exited ones last."""
    with open_store(db) as store:
        counts = store.stage_counts()
        journeys = store.journeys()
    out = console()
    if not journeys:
        out.print("no journeys in this store yet")
        return
    for cj in journeys:
        out.print(funnel_table(cj, counts.get(cj.name, {})))


def funnel_table(cj, stage_counts: dict[str, int]) -> Table:
    """Leads per stage in the journey's order, then those that left; those not in the journey apart."""
    per_stage = dict(stage_counts)
    never = per_stage.pop("not_enrolled", 0)
    waiting = per_stage.pop("waiting", 0)
    total = sum(per_stage.values())
    table = Table(title=f"{cj.name} (version {cj.version})")
    table.add_column("stage")
    table.add_column("label")
    table.add_column("leads", justify="right")
    table.add_column("share", justify="right")
    for stage in cj.journey.stages:
        n = per_stage.get(stage.id, 0)
        table.add_row(stage.id, stage.title, f"{n:,}", f"{n / total:.0%}" if total else "-")
    n = per_stage.get("exit", 0)
    table.add_row("exit", "left the journey", f"{n:,}", f"{n / total:.0%}" if total else "-")
    table.add_row("", "total", f"{total:,}", "")
    if never:
        table.add_row("not_enrolled", "never enrolled: an exit event came first", f"{never:,}", "")
    if waiting:
        table.add_row("waiting", "known by attributes, waiting for an enrolling event", f"{waiting:,}", "")
    return table
