"""`coltiva render JOURNEY -o OUT`: the journey as SVG, PNG, PDF, DOT or Mermaid.

The format follows the file extension (or `--format`), so a reviewer asks for
`journey.svg` and gets an SVG. `--db` adds the live counts from the engine's
store, with a warning when the store runs another version of the journey.
The helpers (load, counts, draw, write) are in `_drawing`, shared with `diff`,
`review` and `report`.
"""

from __future__ import annotations

import click

from ._drawing import counts_for, draw, format_for, load_or_exit, write_output

__all__ = ["command"]


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
