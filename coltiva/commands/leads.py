"""`coltiva leads`: how many leads are in each stage of each journey (the funnel)."""

from __future__ import annotations

import click

from ..output import console
from ..tables import funnel_table
from ._common import db_read_option, open_store

__all__ = ["command"]


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
