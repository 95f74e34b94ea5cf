"""`coltiva render JOURNEY -o OUT`: the journey as SVG, PNG, PDF, DOT or Mermaid.

The format follows the file extension (or `--format`), so a reviewer asks for
`journey.svg` and gets an SVG. `--db` adds the live counts from the engine's
store. The small helpers here (load, counts, write) are shared with `diff`
and `review`, so the three commands fail the same way on the same mistake.
"""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

import click

from dsl.errors import ColtivaError
from dsl.loader import Loaded, load_journey

from ..output import err_console, print_diagnostic

__all__ = ["command", "load_or_exit", "store_counts", "write_output", "format_for"]

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


def store_counts(db: str, journey_name: str) -> tuple[dict[str, int], dict[tuple[str, str], int]]:
    """Leads per stage and moves per edge, from the engine's store (imported only when asked for)."""
    if not Path(db).is_file():
        raise ColtivaError(f"{db}: no such database file")
    try:
        from engine.store import journey_counts
    except ImportError as err:
        raise ColtivaError(f"the engine's store cannot count leads yet ({err})") from None
    try:
        return journey_counts(db, journey_name)
    except sqlite3.Error as err:
        raise ColtivaError(f"{db}: cannot read the store: {err}") from None


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
    diagram = build_diagram(loaded.journey)
    if db:
        from visualize.overlay import apply_counts

        diagram = apply_counts(diagram, *store_counts(db, loaded.journey.name))
    if fmt == "mermaid":
        from visualize.mermaid import to_mermaid

        write_output(output, to_mermaid(diagram))
    else:
        from visualize.dot import render_bytes

        write_output(output, render_bytes(diagram, fmt))
    click.echo(f"wrote {output} ({fmt})", err=True)
