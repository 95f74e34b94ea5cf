"""`coltiva check FILE...`: every problem of every file, as text or JSON."""

from __future__ import annotations

import json
import sys

import click

from dsl.errors import ColtivaError
from dsl.loader import load_journey

from ..output import console, print_diagnostic
from ._common import catalogue_option

__all__ = ["command"]


@click.command("check")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="json: one object with every diagnostic, for editors and CI.")
@catalogue_option
def command(files, fmt, catalogue):
    """Check journey files. Exit 0: clean or warnings only; 1: errors; 2: a file cannot be read."""
    out = console()
    unreadable = False
    errors = warnings = 0
    report = []
    journeys = []
    for path in files:
        try:
            loaded = load_journey(path, catalogue=catalogue)
        except ColtivaError as err:
            unreadable = True
            click.echo(f"coltiva: {err}", err=True)
            report.append({"file": path, "readable": False, "reason": str(err), "diagnostics": []})
            continue
        if not loaded.fragment and loaded.journey is not None:
            journeys.append(loaded.journey)
        if path == files[-1]:  # files checked together run together: one lead score, one cap per lead (C113)
            from dsl.checks.lead import check_lead_agreement

            loaded.diagnostics.extend(check_lead_agreement(journeys))
        if loaded.fragment and fmt == "text" and not loaded.diagnostics:
            out.print(f"{path}: a shared fragment for `include` (no journey line, no stages): syntax ok",
                      markup=False)
        errors += sum(d.is_error for d in loaded.diagnostics)
        warnings += sum(not d.is_error for d in loaded.diagnostics)
        if fmt == "json":
            from dsl.diagnostics import to_json

            report.append({"file": path, "readable": True, "fragment": loaded.fragment,
                           "diagnostics": [to_json(d) for d in loaded.diagnostics]})
            continue
        for d in loaded.diagnostics:
            print_diagnostic(out, d, loaded.shown_sources())
    if fmt == "json":
        json.dump({"files": report, "errors": errors, "warnings": warnings}, sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        unread = sum(not r["readable"] for r in report)
        verdict = "ok" if not errors and not unreadable else "failed"
        summary = f"{len(files)} file(s) checked: {errors} error(s), {warnings} warning(s)"
        summary += f", {unread} unreadable" if unread else ""
        summary += f" — {verdict}"
        out.print(summary, markup=False)
    if unreadable:
        sys.exit(2)
    sys.exit(1 if errors else 0)
