"""What the engine commands share: the --db option, loading journeys, reading times."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import click

from dsl.errors import ColtivaError
from dsl.loader import load_journey

from ..output import err_console, print_diagnostic

__all__ = ["POSITION", "config_options", "db_option", "db_read_option", "format_option", "partition_option",
           "workers_option", "compile_files", "parse_when", "open_store", "writing_store", "stepping_runner"]

#: An outbox or dead-letter position: what the stores' 64-bit integers hold (the service's `after` has the
#: same bound), so a larger one is a usage message, not an OverflowError from the database driver.
POSITION = click.IntRange(0, 2 ** 62)

def config_options(fn, required: bool = True):
    """`--config coltiva.toml` and `--db` (default: the config's `store`), for the delivery commands."""
    fn = click.option("--db", default=None, type=click.Path(dir_okay=False),
                      help="The store (default: `store` in the config, else coltiva.db).")(fn)
    return click.option("--config", "config_path", required=required, type=click.Path(exists=True, dir_okay=False),
                        help="coltiva.toml with the [[webhooks]].")(fn)


db_option = click.option("--db", default="coltiva.db", show_default=True, type=click.Path(dir_okay=False),
                         help="The store: an SQLite file (created if missing) or a postgresql:// address.")
db_read_option = click.option("--db", default="coltiva.db", show_default=True, type=click.Path(dir_okay=False),
                              help="The store (made by `coltiva run`): an SQLite file or a postgresql:// address.")



def _partition(ctx, param, value):
    from engine.partition import WHOLE, Partition

    if value is None:
        return WHOLE
    try:
        return Partition.parse(value)
    except ValueError as err:
        raise click.BadParameter(str(err)) from None


partition_option = click.option(
    "--partition", default=None, metavar="K/N", callback=_partition,
    help="PostgreSQL only: this writer owns partition K of N (a stable hash of the lead id); run N writers, "
         "K = 0..N-1, on the same events.")


workers_option = click.option(
    "--workers", default=1, show_default=True, type=click.IntRange(1, 64),
    help="SQLite: processes stepping leads, split by a hash of the lead id (one commits); the store is the one "
         "a single process writes.")


@contextlib.contextmanager
def stepping_runner(store, journeys, workers: int, batch: int | None = None):
    """A Runner, or with --workers N > 1 a ParallelRunner (its processes stop when the block ends)."""
    from engine.runner import DEFAULT_BATCH, Runner

    if workers == 1:
        yield Runner(store, journeys, batch_size=batch or DEFAULT_BATCH, freeze_gc=True)  # a batch command
        return
    from engine.workers import ParallelRunner

    with ParallelRunner(store, journeys, workers, batch_size=batch or DEFAULT_BATCH) as runner:
        yield runner


format_option = click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
                             show_default=True, help="A table for people, or JSON for programs.")


catalogue_option = click.option(
    "--catalogue", type=click.Path(dir_okay=False), default=None,
    help="An event catalogue file: the journeys' event types and fields are checked against it, and events "
         "that break it are kept aside (instead of a journey's own `catalogue` line).")


def compile_files(paths, catalogue=None) -> list:
    """Load, check and compile journey files; print every diagnostic; exit 1 on errors.

    Each compiled journey carries the event catalogue it was checked against (`cj.catalogue`)."""
    from engine.compiler import compile_journey

    compiled = []
    failed = False
    names: dict[str, str] = {}
    for path in paths:
        loaded = load_journey(path, catalogue=catalogue)
        if loaded.diagnostics:
            out = err_console()
            for d in loaded.diagnostics:
                print_diagnostic(out, d, loaded.shown_sources())
        if loaded.fragment:
            click.echo(f"coltiva: {path} is a shared fragment (no `journey` line, no stages): "
                       "include it from a journey and run that journey", err=True)
            failed = True
            continue
        if not loaded.ok or loaded.journey is None:
            failed = True
            continue
        cj = compile_journey(loaded.journey, loaded.diagnostics)
        cj.catalogue = loaded.catalogue
        if cj.name in names:
            click.echo(f"coltiva: {path} and {names[cj.name]} are both named {cj.name!r}: "
                       "a journey's name is its identity in the store; give each journey its own name", err=True)
            failed = True
            continue
        names[cj.name] = path
        compiled.append((cj, loaded.sources))
    if failed:
        click.echo("coltiva: nothing was run; fix the journeys above first", err=True)
        sys.exit(1)
    return compiled


def parse_when(text: str) -> int:
    from engine.events import parse_time

    try:
        return parse_time(text)
    except ValueError as err:
        raise click.BadParameter(str(err)) from None


def open_store(db: str, must_exist: bool = True, writer: bool = False, partition=None):
    """Open the store: a writer takes the store's writer lock (of its partition), anything else reads only."""
    from engine.partition import WHOLE
    from engine.stores import is_postgres_url, open_store as open_any

    if must_exist and not is_postgres_url(db) and not Path(db).exists():
        raise ColtivaError(f"{db}: no such store (run `coltiva run ... --db {db}` first)")
    return open_any(db, writer=writer, read_only=not writer, partition=partition or WHOLE)


@contextlib.contextmanager
def writing_store(compiled, db: str, partition=None):
    """The store, locked for writing, with these journeys registered (a changed one is refused)."""
    from datetime import datetime, timezone

    command = click.get_current_context().info_name if click.get_current_context(silent=True) else None
    applied_at = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")  # when, for the journey's history only
    with open_store(db, must_exist=False, writer=True, partition=partition) as store:
        for cj, sources in compiled:
            store.register(cj, sources, command=command or "run", applied_at=applied_at)
        yield store
