"""`coltiva render JOURNEY -o OUT`: the journey as SVG, PNG, PDF, DOT or Mermaid.

The format follows the file extension (or `--format`), so a reviewer asks for
`journey.svg` and gets an SVG. `--db` adds the live counts from the engine's
store, with a warning when the store runs another version of the journey.
The small helpers here (load, counts, draw, write) are shared with `diff` and
`review`, so the three commands fail the same way on the same mistake.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from dsl.errors import ColtivaError
from dsl.loader import Loaded, load_journey

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


def counts_for(db: str, loaded: Loaded):
    """The store's counts for the journey drawn (visualize.analytics.StoreCounts); warnings go to stderr.

    A store that has no journey of this name is an error: nothing to draw.
    """
    from visualize.analytics import read_counts

    assert loaded.journey is not None  # load_or_exit: a usable journey
    if loaded.fragment:
        raise ColtivaError(f"{loaded.journey.path}: a shared fragment has no leads; "
                           "draw a journey that includes it with --db")
    counts = read_counts(db, loaded.journey)
    for note in counts.notes:
        click.echo(f"coltiva: warning: {db}: {note}", err=True)
    return counts


def draw(diagram, fmt: str, direction: str = "LR") -> bytes | str:
    """The diagram in `fmt`, stages along `direction` (LR or TB): Mermaid text, or what `dot` makes of it."""
    if fmt == "mermaid":
        from visualize.mermaid import to_mermaid

        return to_mermaid(diagram, direction)
    from visualize.dot import Layout, render_bytes

    return render_bytes(diagram, fmt, Layout(rankdir=direction))


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
@click.option("--direction", type=click.Choice(["LR", "TB"]), default="LR", show_default=True,
              help="Stages left to right, or top to bottom (for a long journey).")
def command(journey, output, fmt, db, direction):
    """Draw JOURNEY: stages in order, triggers, content, holding loops, rules."""
    from visualize.diagram import build_diagram, mark_warnings

    fmt = format_for(output, fmt)
    loaded = load_or_exit(journey)
    diagram = mark_warnings(build_diagram(loaded.journey, fragment=loaded.fragment), loaded.journey,
                            loaded.diagnostics)
    if db:
        from visualize.overlay import apply_counts

        counts = counts_for(db, loaded)
        diagram = apply_counts(diagram, counts.stages, counts.edges, counts.rules, counts.enrolled)
    write_output(output, draw(diagram, fmt, direction))
    click.echo(f"wrote {output} ({fmt})", err=True)
