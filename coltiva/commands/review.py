"""`coltiva review JOURNEY -o OUT.html`: one self-contained page for the people who approve a journey."""

from __future__ import annotations

import click

from dsl.errors import ColtivaError

from .render import counts_for, load_or_exit, write_output

__all__ = ["command"]


@click.command("review")
@click.argument("journey", type=click.Path(dir_okay=False))
@click.option("-o", "--output", required=True, help="The HTML file to write.")
@click.option("--db", type=click.Path(dir_okay=False), help="Add live counts and the funnel from this store.")
def command(journey, output, db):
    """Write a review page: diagram, content per stage, scoring, checker warnings, funnel."""
    from visualize.diagram import build_diagram, diagram_title
    from visualize.dot import render_bytes
    from visualize.review import review_html

    if not output.lower().endswith((".html", ".htm")):
        raise ColtivaError(f"{output}: the review page is HTML; name it something.html")
    loaded = load_or_exit(journey)
    diagram = build_diagram(loaded.journey, fragment=loaded.fragment)
    stage_counts = None
    if db:
        from visualize.overlay import apply_counts

        counts = counts_for(db, loaded)
        stage_counts = counts.stages
        diagram = apply_counts(diagram, counts.stages, counts.edges, counts.rules, counts.enrolled)
    svg = render_bytes(diagram, "svg").decode("utf-8")
    page = review_html(loaded.journey, svg, loaded.diagnostics, loaded.sources, stage_counts,
                       title=diagram_title(loaded.journey, loaded.fragment))
    write_output(output, page)
    click.echo(f"wrote {output}", err=True)
