"""`coltiva explain LEAD`: every step of a lead — the input, the rules, score and stage, the actions."""

from __future__ import annotations

import json
import sys

import click
from rich.markup import escape
from rich.table import Table

from dsl.errors import ColtivaError

from ..output import console
from ._common import db_option, open_store

__all__ = ["command"]


@click.command("explain")
@click.argument("lead")
@db_option
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def command(lead, db, fmt):
    """Replays the lead's events and ticks and shows why each step happened."""
    from engine.events import format_time
    from engine.explain import explain_lead

    with open_store(db) as store:
        explanations = explain_lead(store, lead)
    if not explanations:
        raise ColtivaError(f"no lead {lead!r} in {db}")
    if fmt == "json":
        json.dump([{"journey": e.journey, "version": e.version, "consistent": e.consistent, "steps": e.steps}
                   for e in explanations], sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
        return
    out = console()
    for e in explanations:
        table = Table(title=f"{lead} in {e.journey} (version {e.version})", show_lines=True)
        for column in ("time", "input", "rules and notes", "score", "stage", "actions"):
            table.add_column(column, overflow="fold")
        for s in e.steps:
            stage = s["stage"][0] if s["stage"][0] == s["stage"][1] else f"{s['stage'][0]} → {s['stage'][1]}"
            score = f"{s['score'][0]:g}" if s["score"][0] == s["score"][1] else f"{s['score'][0]:g} → {s['score'][1]:g}"
            actions = "\n".join(
                f"{a['kind']} {a.get('content_kind', '')} {a.get('content', a.get('to', a.get('stage', '')))}".strip()
                for a in s["actions"])
            table.add_row(format_time(s["time"]), escape(s["input"]), escape("\n".join(s["notes"])), score,
                          escape(str(stage)), escape(actions))
        out.print(table)
        stored = e.stored
        out.print(f"now: stage [bold]{escape(stored.state)}[/bold], next due {format_time(stored.due)}")
        if not e.consistent:
            out.print("[red]warning: replaying the log does not give the stored record; "
                      "the store may have been edited by hand[/red]")
