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
@click.option("--db", type=click.Path(dir_okay=False),
              help="Also show what NEW would do to the leads in flight in this store (the plan of `coltiva plan`).")
def command(old, new, output, fmt, db):
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
    if db:
        _print_plan(new, db)
    if output:
        from visualize.diff_diagram import build_diff_diagram

        write_output(output, draw(build_diff_diagram(diff), fmt))
        click.echo(f"wrote {output} ({fmt})", err=True)


def _print_plan(new: str, db: str) -> None:
    """The plan's counts for NEW on the store: leads per stage and where they go, sends changed, refusals."""
    from engine.plan import make_plan, plan_lines

    from ._common import compile_files, open_store

    ((cj, _),) = compile_files([new])
    with open_store(db) as store:
        plan = make_plan(store, cj)
    out = console()
    out.print("")
    for line in plan_lines(plan):
        out.print(line, markup=False)
