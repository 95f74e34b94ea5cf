"""`coltiva review JOURNEY -o OUT.html`: one self-contained page for the people who approve a journey."""

from __future__ import annotations

import click

from dsl.errors import ColtivaError

from ._drawing import counts_for, load_or_exit, write_output

__all__ = ["command"]


@click.command("review")
@click.argument("journey", type=click.Path(dir_okay=False))
@click.option("-o", "--output", required=True, help="The HTML file to write.")
@click.option("--db", type=click.Path(dir_okay=False), help="Add live counts, the funnel and the weekly report "
              "from this store.")
@click.option("--layout", type=click.Choice(["auto", "LR", "TB"]), default="auto", show_default=True,
              help="The drawing the page opens on: left to right, top to bottom, or whichever fits larger.")
def command(journey, output, db, layout):
    """Write a review page: the whole journey on the first screen, rules, content per stage, warnings, funnel."""
    from engine.compiler import journey_version
    from visualize.diagram import build_diagram, compact, diagram_title, mark_warnings
    from visualize.dot import PAGE_LAYOUTS, render_bytes
    from visualize.review import LAYOUTS, review_html

    if not output.lower().endswith((".html", ".htm")):
        raise ColtivaError(f"{output}: the review page is HTML; name it something.html")
    loaded = load_or_exit(journey)
    diagram = mark_warnings(build_diagram(loaded.journey, fragment=loaded.fragment), loaded.journey,
                            loaded.diagnostics)
    notes, analytics = (), ""
    if db:
        from visualize.overlay import apply_counts
        from visualize.report import build_report, report_section

        counts = counts_for(db, loaded)
        notes = counts.notes
        diagram = apply_counts(diagram, counts.stages, counts.edges, counts.rules, counts.enrolled)
        analytics = report_section(build_report(db, loaded.journey.name, loaded.journey))
    drawing = compact(diagram)
    svgs = {k: render_bytes(drawing, "svg", PAGE_LAYOUTS[k]).decode("utf-8") for k in LAYOUTS}
    version = "" if loaded.fragment else journey_version(loaded.journey)
    page = review_html(loaded.journey, diagram, svgs, loaded.diagnostics, loaded.sources,
                       title=diagram_title(loaded.journey, loaded.fragment), version=version,
                       layout=None if layout == "auto" else layout, notes=notes, analytics=analytics)
    write_output(output, page)
    click.echo(f"wrote {output}", err=True)
