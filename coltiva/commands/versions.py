"""`coltiva versions NAME --db STORE`: a journey's history of versions, with the leads on each."""

from __future__ import annotations

import json
import sys

import click
from rich.table import Table

from dsl.errors import ColtivaError

from ..output import console
from ._common import db_read_option, format_option, open_store

__all__ = ["command"]


@click.command("versions")
@click.argument("name")
@db_read_option
@format_option
def command(name, db, fmt):
    """Oldest first; the last line is the version that runs now (new leads enter it)."""
    with open_store(db) as store:
        if store.format < 2:
            raise ColtivaError(f"{db}: store format {store.format} keeps no history; open it once with "
                               "`coltiva tick` or `coltiva run` to migrate it")
        rows = store.history(name)
        known = store.journey_names()
    if not rows:
        raise ColtivaError(f"no journey {name!r} in {db}" + (f" (journeys: {', '.join(known)})" if known else ""))
    if fmt == "json":
        json.dump([{"seq": r.seq, "version": r.version, "applied_at": r.applied_at, "command": r.command,
                    "policy": r.policy, "note": r.note, "leads": r.leads, "in_flight": r.in_flight,
                    "current": i == len(rows) - 1} for i, r in enumerate(rows)], sys.stdout, indent=2)
        sys.stdout.write("\n")
        return
    table = Table(title=f"{name}: versions")
    for column in ("#", "version", "applied at", "by", "policy", "leads", "in flight", ""):
        table.add_column(column, justify="right" if column in ("#", "leads", "in flight") else "left")
    for i, r in enumerate(rows):
        table.add_row(str(r.seq), r.version, r.applied_at or "-", r.command or "-", r.policy or "-", f"{r.leads:,}",
                      f"{r.in_flight:,}", "current" if i == len(rows) - 1 else "")
    console().print(table)
