"""`coltiva diff OLD NEW -o OUT`: what changed, on the terminal and in a marked diagram."""

from __future__ import annotations

from pathlib import Path

import click
from rich.markup import escape

from ..output import console, shown
from ._drawing import draw, format_for, load_or_exit, write_output

__all__ = ["command"]

_COLOUR = {"+": "green", "-": "red", "~": "yellow"}


def _say(out, text: str, colour: str | None = None) -> None:
    text = shown(text)  # labels and contents are user text: no control character reaches the terminal
    if out.is_terminal and colour:
        out.print(f"[{colour}]{escape(text)}[/]")
    else:
        out.print(text, markup=False)


def _leads_at_changes(out, db: str, diff) -> None:
    """How many leads sit, now, at each stage the change lands on (where its effect is felt first)."""
    from visualize.analytics import leads_per_stage

    name, version, counts = leads_per_stage(db, [diff.new.name, diff.old.name])
    _say(out, f"leads now at the changed stages ({db}, journey {name!r} version {version}):")
    removed = {c.stage for c in diff.changes if c.kind == "stage" and c.sign == "-"}
    added = {c.stage for c in diff.changes if c.kind == "stage" and c.sign == "+"}
    for stage in diff.stages:
        n = counts.get(stage, 0)
        what = " (a stage the new version removes)" if stage in removed else \
            " (a new stage: nobody can be there yet)" if stage in added else ""
        _say(out, f"  {stage}: {n} lead{'' if n == 1 else 's'}{what}", "red" if stage in removed and n else None)


@click.command("diff")
@click.argument("old", type=click.Path(dir_okay=False))
@click.argument("new", type=click.Path(dir_okay=False))
@click.option("-o", "--output", help="Also draw NEW with the changes marked (.svg .png .pdf .dot .mmd).")
@click.option("--format", "fmt", type=click.Choice(["svg", "png", "pdf", "dot", "mermaid"]),
              help="Format to write, whatever the extension.")
@click.option("--db", type=click.Path(dir_okay=False), help="Also say how many leads sit at each stage the "
              "change lands on, in this store, and what the change would do to the leads in flight "
              "(the plan of `coltiva plan`).")
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
        _say(out, str(change), _COLOUR[change.sign])
        for line in change.contents:
            _say(out, f"    {line}", _COLOUR[change.sign])
    plan = None
    if db:
        if Path(db).exists():  # a missing store is reported by the count of leads below
            plan = _print_plan(new, db)
        _leads_at_changes(out, db, diff)
    if output:
        from visualize.diff_diagram import build_diff_diagram

        diagram = build_diff_diagram(diff)
        if plan is not None:  # each stage drawn with the leads it will hold right after the change
            from visualize.overlay import apply_counts

            after: dict[str, int] = {}
            for move in plan.moves:
                after[move.target] = after.get(move.target, 0) + move.leads
            diagram = apply_counts(diagram, after, {})
        write_output(output, draw(diagram, fmt))
        click.echo(f"wrote {output} ({fmt})", err=True)


def _print_plan(new: str, db: str):
    """The plan's counts for NEW on the store: leads per stage and where they go, sends changed, refusals."""
    from engine.plan import make_plan, plan_lines

    from ._common import compile_files, open_store

    ((cj, _),) = compile_files([new])
    with open_store(db) as store:
        plan = make_plan(store, cj)
    out = console()
    for line in plan_lines(plan):
        _say(out, line)
    out.print("")
    return plan
