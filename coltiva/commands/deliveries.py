"""`coltiva deliveries`: where each webhook stands; the dead letters; retry or skip by hand."""

from __future__ import annotations

import functools
import json
import sys

import click
from rich.table import Table

from ..output import console
from ._common import POSITION, config_options

__all__ = ["command"]


def _store(config_path, db, writer=False):
    from service.config import config_for_store

    from ._common import open_store

    config = config_for_store(config_path, db)
    return config, open_store(config.db, writer=writer)


@click.group("deliveries", invoke_without_command=True)
@functools.partial(config_options, required=False)
@click.pass_context
def command(ctx, config_path, db):
    """Each destination: its offset, how far behind, the action being retried, dead letters.

    Subcommands: dead (list), retry DESTINATION SEQ, skip DESTINATION [SEQ].
    """
    if ctx.invoked_subcommand:
        return
    if config_path is None:
        raise click.UsageError("give --config coltiva.toml (its [[webhooks]] name the destinations)")
    from service.delivery import destination_states, ensure_tables

    config, store = _store(config_path, db, writer=True)
    with store:
        ensure_tables(store)
        states = destination_states(store, config.webhooks)
    table = Table(title="deliveries")
    for col in ("destination", "offset", "behind", "retrying", "first retrying", "attempts", "last error", "dead"):
        table.add_column(col)
    for s in states:
        table.add_row(s.destination, str(s.offset), str(s.behind), str(s.retrying or ""),
                      f"#{s.retry_seq}" if s.retry_seq is not None else "", str(s.retry_attempts or ""),
                      s.retry_error[:80], str(s.dead))
    console().print(table)


@command.command("dead")
@config_options
@click.option("--destination", default=None)
@click.option("--format", "fmt", type=click.Choice(["table", "jsonl"]), default="table", show_default=True)
def dead(config_path, db, destination, fmt):
    """The dead letters: actions given up after their webhook's max_attempts."""
    from engine.events import format_time
    from service.delivery import dead_letters, ensure_tables

    config, store = _store(config_path, db, writer=True)
    with store:
        ensure_tables(store)
        rows = dead_letters(store, destination)
    if fmt == "jsonl":
        for d in rows:
            sys.stdout.write(json.dumps({"destination": d.destination, "seq": d.seq, "key": d.key,
                                         "attempts": d.attempts, "error": d.error, "time": format_time(d.time)},
                                        ensure_ascii=False) + "\n")
        return
    table = Table(title=f"{len(rows)} dead letter(s)")
    for col in ("destination", "seq", "key", "attempts", "error"):
        table.add_column(col, overflow="fold")
    for d in rows:
        table.add_row(d.destination, str(d.seq), d.key, str(d.attempts), d.error[:100])
    console().print(table)


@command.command("retry")
@click.argument("destination")
@click.argument("seq", type=POSITION)
@config_options
def retry(destination, seq, config_path, db):
    """Post one dead letter again now; on success it leaves the list."""
    import random

    from service.delivery import Deliverer

    config, store = _store(config_path, db, writer=True)
    with store:
        deliverer = Deliverer(config.webhooks, lambda fn: fn(store), lambda fn: fn(store), rng=random.Random(0))
        try:
            error = deliverer.redeliver(destination, seq)
        finally:
            deliverer.close()
    if error:
        raise click.ClickException(f"not delivered: {error}")
    click.echo(f"delivered {destination} #{seq}")


@command.command("skip")
@click.argument("destination")
@click.argument("seq", type=POSITION, required=False)
@config_options
def skip(destination, seq, config_path, db):
    """Give up an action a destination is retrying (the earliest, or SEQ): it goes to the dead letters and
    its lead's next action may leave."""
    from service.delivery import ensure_tables, skip as skip_action

    config, store = _store(config_path, db, writer=True)
    with store:
        ensure_tables(store)
        skipped = skip_action(store, destination, seq)
    if skipped is None:
        raise click.ClickException(f"{destination} is not retrying " + (f"#{seq}" if seq is not None else "anything"))
    click.echo(f"skipped {destination} #{skipped}")
