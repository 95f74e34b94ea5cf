"""`coltiva actions`: the outbox as JSON Lines, for whatever sends the emails and notifies sales."""

from __future__ import annotations

import sys

import click

from engine.record import OUTBOX_KINDS

from ..output import json_text
from ._common import POSITION, db_read_option, open_store, parse_when

__all__ = ["command"]


@click.command("actions")
@db_read_option
@click.option("--since", default=None, help="Only actions at or after this ISO 8601 time.")
@click.option("--after", "after", default=0, show_default=True, type=POSITION,
              help="Only actions after this outbox position.")
@click.option("--kind", type=click.Choice(list(OUTBOX_KINDS)), default=None)
def command(db, since, after, kind):
    """Each line has a stable `key`: deliver idempotently by it; `seq` is the outbox position."""
    since_time = parse_when(since) if since else None
    with open_store(db) as store:
        for seq, action in store.actions(since=since_time, after=after, kind=kind):
            sys.stdout.write(json_text({"seq": seq, **action}) + "\n")
