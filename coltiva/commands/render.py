"""`coltiva render JOURNEY -o OUT`: the journey as SVG, PNG, PDF, DOT or Mermaid.

The format follows the file extension (or `--format`), so a reviewer asks for
`journey.svg` and gets an SVG. `--db` adds the live counts from the engine's
store, with a warning when the store runs another version of the journey.
The small helpers here (load, counts, draw, write) are shared with `diff` and
`review`, so the three commands fail the same way on the same mistake.
"""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

import click

from dsl.errors import ColtivaError
from dsl.loader import Loaded, load_journey
from dsl.model import EXIT

from ..output import err_console, print_diagnostic

__all__ = ["command", "load_or_exit", "counts_for", "write_output", "format_for", "draw"]

EXTENSIONS = {".svg": "svg", ".png": "png", ".pdf": "pdf", ".dot": "dot", ".gv": "dot",
              ".mmd": "mermaid", ".mermaid": "mermaid"}


def load_or_exit(path: str) -> Loaded:
    """The checked journey; errors are printed with their positions and end the command (exit 1)."""
    loaded = load_journey(path)
    out = err_console()
    for d in loaded.diagnostics:
        print_diagnostic(out, d, loaded.sources)
    if not loaded.ok:
        click.echo(f"coltiva: {path}: the journey has errors; fix them before drawing it", err=True)
        sys.exit(1)
    return loaded


def counts_for(db: str, loaded: Loaded) -> tuple[dict[str, int], dict[tuple[str, str], int]]:
    """The store's counts for the journey drawn, with a warning on stderr when they may not match it.

    The store keeps the version of the journey it runs; when the file drawn is
    another version (an edited file, a branch), the counts are still drawn, but
    the reader is told, and leads in stages the file no longer has are named.
    A store that has no journey of this name is an error: nothing to draw.
    """
    if loaded.fragment:
        raise ColtivaError(f"{loaded.journey.path}: a shared fragment has no leads; "
                           "draw a journey that includes it with --db")
    from engine.stores import is_postgres_url

    if not is_postgres_url(db) and not Path(db).is_file():
        raise ColtivaError(f"{db}: no such database file")
    journey = loaded.journey
    try:
        from engine.compiler import journey_version
        from engine.record import DONE, NOT_ENROLLED, WAITING
        from engine.stores import open_store
    except ImportError as err:
        raise ColtivaError(f"the engine's store cannot count leads yet ({err})") from None
    try:
        with open_store(db, read_only=True) as store:
            stored = store.journeys()
            current = next((cj for cj in stored if cj.name == journey.name), None)
            if current is None:
                names = ", ".join(repr(cj.name) for cj in stored) or "none"
                raise ColtivaError(f"{db}: no journey named {journey.name!r} in this store (it has: {names})")
            stage_counts = {stage: n for stage, n in store.stage_counts().get(journey.name, {}).items()
                            if stage not in (NOT_ENROLLED, WAITING)}  # not in the journey (yet): in no stage
            edge_counts = store.transition_counts(journey.name)
    except sqlite3.Error as err:
        raise ColtivaError(f"{db}: cannot read the store: {err}") from None
    notes = []
    version = journey_version(journey)
    if current.version != version:
        notes.append(f"the store runs version {current.version} of this journey; this file is version {version}: "
                     "counts may not match")
    known = {s.id for s in journey.stages} | {EXIT} | set(DONE)
    gone = {stage: n for stage, n in sorted(stage_counts.items()) if stage not in known and n}
    if gone:
        total = sum(gone.values())
        notes.append(f"{total} lead{'' if total == 1 else 's'} {'is' if total == 1 else 'are'} in stages "
                     f"this file does not have: {', '.join(gone)}")
    for note in notes:
        click.echo(f"coltiva: warning: {db}: {note}", err=True)
    return stage_counts, edge_counts


def draw(diagram, fmt: str) -> bytes | str:
    """The diagram in `fmt`: Mermaid text, or what `dot` makes of it."""
    if fmt == "mermaid":
        from visualize.mermaid import to_mermaid

        return to_mermaid(diagram)
    from visualize.dot import render_bytes

    return render_bytes(diagram, fmt)


def format_for(output: str, fmt: str | None) -> str:
    if fmt:
        return fmt
    suffix = Path(output).suffix.lower()
    if suffix not in EXTENSIONS:
        known = ", ".join(sorted(EXTENSIONS))
        raise ColtivaError(f"{output}: unknown extension {suffix or '(none)'!r}; use one of {known} or --format")
    return EXTENSIONS[suffix]


def write_output(output: str, data: bytes | str) -> None:
    try:
        path = Path(output)
        if isinstance(data, str):
            path.write_text(data, encoding="utf-8")
        else:
            path.write_bytes(data)
    except OSError as err:
        raise ColtivaError(f"{output}: cannot write: {err.strerror or err}") from None


@click.command("render")
@click.argument("journey", type=click.Path(dir_okay=False))
@click.option("-o", "--output", required=True, help="Output file; its extension picks the format "
              "(.svg .png .pdf .dot .mmd).")
@click.option("--format", "fmt", type=click.Choice(["svg", "png", "pdf", "dot", "mermaid"]),
              help="Format to write, whatever the extension.")
@click.option("--db", type=click.Path(dir_okay=False), help="Add live counts from this store.")
def command(journey, output, fmt, db):
    """Draw JOURNEY: stages left to right, triggers, content, holding loops, rules."""
    from visualize.diagram import build_diagram

    fmt = format_for(output, fmt)
    loaded = load_or_exit(journey)
    diagram = build_diagram(loaded.journey, fragment=loaded.fragment)
    if db:
        from visualize.overlay import apply_counts

        diagram = apply_counts(diagram, *counts_for(db, loaded))
    write_output(output, draw(diagram, fmt))
    click.echo(f"wrote {output} ({fmt})", err=True)
