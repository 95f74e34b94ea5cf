"""`coltiva report --db STORE [JOURNEY]`: the funnel over time, from the store, as tables, JSON or a page."""

from __future__ import annotations

from pathlib import Path

import click

from ..output import cell, console, json_text, shown
from ._drawing import write_output

__all__ = ["command"]


def _journey_name(journey: str | None) -> tuple[str | None, object]:
    """A journey named in the store, or a .journey file (its name, and its model for stage order and caps)."""
    if journey is None or not journey.endswith(".journey") or not Path(journey).exists():
        return journey, None
    from ._drawing import load_or_exit

    loaded = load_or_exit(journey)
    assert loaded.journey is not None  # load_or_exit: a usable journey
    return loaded.journey.name, loaded.journey


def _print_text(report) -> None:
    from rich.table import Table

    from visualize.report import report_json

    out = console()
    data = report_json(report)
    out.print(shown(f"{report.journey} (version {report.version}): {len(report.weeks)} week(s)"), markup=False)
    pivot = {w: {"week": w} | {s: 0 for s in report.stages} for w in report.weeks}
    for row in data["reaching"]:
        pivot[row["week"]][row["stage"]] = row["leads"]
    sections = [
        ("Leads reaching each stage per week", ["week", *report.stages], list(pivot.values())),
        ("Stage-to-stage conversion", ["source", "target", "entered", "moved", "rate"], data["conversions"]),
        ("Time in stage, days", ["stage", "stays", "open", "median_days", "p90_days"], data["times"]),
        (f"Sends per lead per week (cap {report.cap_per_week if report.cap_per_week is not None else 'none'})",
         ["week", "leads", "sends", "mean_per_lead", "max_per_lead", "over_cap"], data["sends"]),
        ("Handoffs per week", ["week", "handoffs"], data["handoffs"]),
    ]
    for title, columns, rows in sections:
        table = Table(title=title, title_justify="left")
        for c in columns:
            table.add_column(c, justify="left" if c in ("week", "stage", "source", "target") else "right",
                             no_wrap=c == "week")
        for row in rows:
            table.add_row(*(cell("—" if row[c] is None else f"{row[c]:.1%}" if c == "rate" else row[c])
                            for c in columns))
        out.print(table)


@click.command("report")
@click.argument("journey", required=False)
@click.option("--db", required=True, type=click.Path(dir_okay=False), help="The engine's store.")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "html"]), default="text", show_default=True)
@click.option("-o", "--output", help="Write to this file (needed for html).")
def command(journey, db, fmt, output):
    """The funnel over time for JOURNEY (a name in the store or a .journey file; the only one when omitted):
    leads reaching each stage per week, conversion, time in stage, sends per lead per week, handoffs."""
    from dsl.errors import ColtivaError
    from visualize.report import build_report, report_json, report_page

    name, model = _journey_name(journey)
    report = build_report(db, name, model)
    if fmt == "json":
        text = json_text(report_json(report), indent=2) + "\n"
        if output:
            write_output(output, text)
        else:
            click.echo(text, nl=False)
    elif fmt == "html":
        if not output:
            raise ColtivaError("--format html writes a page: give it a file with -o report.html")
        write_output(output, report_page(report))
        click.echo(f"wrote {output}", err=True)
    else:
        _print_text(report)
