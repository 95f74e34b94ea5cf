"""Helpers the drawing commands share (`render`, `diff`, `review`, `report`): load, counts, draw, write.

They live here, not in one of those commands, so each command stays a leaf and the
commands fail the same way on the same mistake.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from dsl.errors import ColtivaError
from dsl.loader import Loaded, load_journey

from ..output import err_console, print_diagnostic

__all__ = ["EXTENSIONS", "load_or_exit", "counts_for", "write_output", "format_for", "draw"]

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
