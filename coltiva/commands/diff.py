"""`coltiva diff OLD NEW -o OUT`: what changed, on the terminal and in a marked diagram."""

from __future__ import annotations

import click
from rich.markup import escape

from ..output import console
from .render import draw, format_for, load_or_exit, write_output

__all__ = ["command"]

_COLOUR = {"+": "green", "-": "red", "~": "yellow"}


@click.command("diff")
@click.argument("old", type=click.Path(dir_okay=False))
@click.argument("new", type=click.Path(dir_okay=False))
@click.option("-o", "--output", help="Also draw NEW with the changes marked (.svg .png .pdf .dot .mmd).")
@click.option("--format", "fmt", type=click.Choice(["svg", "png", "pdf", "dot", "mermaid"]),
              help="Format to write, whatever the extension.")
def command(old, new, output, fmt):
    """Compare two versions of a journey. Exit 0 whether or not they differ."""
    from visualize.diff import diff_journeys

    if output:
        fmt = format_for(output, fmt)
    diff = diff_journeys(load_or_exit(old).journey, load_or_exit(new).journey)
    out = console()
    if diff.empty:
        out.print("no changes", markup=False)
    for change in diff.changes:
        line = escape(str(change))
        out.print(f"[{_COLOUR[change.sign]}]{line}[/]" if out.is_terminal else str(change),
                  markup=out.is_terminal)
    if output:
        from visualize.diff_diagram import build_diff_diagram

        write_output(output, draw(build_diff_diagram(diff), fmt))
        click.echo(f"wrote {output} ({fmt})", err=True)
