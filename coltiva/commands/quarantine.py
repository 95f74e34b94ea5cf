"""`coltiva quarantine`: events kept aside, with the reason, so nothing is dropped silently."""

from __future__ import annotations

import sys

import click
from rich.table import Table

from ..output import cell, console, json_text
from ._common import db_read_option, open_store

__all__ = ["command"]


@click.command("quarantine")
@db_read_option
@click.option("--format", "fmt", type=click.Choice(["table", "jsonl"]), default="table", show_default=True)
def command(db, fmt):
    """Each kept-aside line with its source, line number and reason."""
    with open_store(db) as store:
        rows = list(store.quarantined())
    if fmt == "jsonl":
        for seq, source, line_no, reason, raw in rows:
            sys.stdout.write(json_text({"seq": seq, "source": source, "line": line_no, "reason": reason,
                                        "raw": raw}) + "\n")
        return
    table = Table(title=f"{len(rows)} event(s) kept aside")
    table.add_column("source:line")
    table.add_column("reason")
    table.add_column("line", overflow="fold")
    for seq, source, line_no, reason, raw in rows:
        table.add_row(cell(f"{source}:{line_no}"), cell(reason), cell(raw[:120]))
    console().print(table)
