"""`coltiva explain LEAD`: every step of a lead — the input, the rules, score and stage, the actions."""

from __future__ import annotations

import sys

import click

from dsl.errors import ColtivaError
from dsl.model import ACTION_KINDS as INTERNAL_KINDS

from ..output import console, json_text, shown
from ._common import db_read_option, format_option, open_store

__all__ = ["command"]

#: The fields every action has: the rest of an internal action is what it does.
_COMMON = {"key", "kind", "journey", "version", "lead", "time", "stage"}


@click.command("explain")
@click.argument("lead")
@db_read_option
@format_option
def command(lead, db, fmt):
    """Replays the lead's events and ticks and shows why each step happened."""
    from engine.events import format_time
    from engine.explain import explain_lead

    with open_store(db) as store:
        explanations = explain_lead(store, lead)
    if not explanations:
        raise ColtivaError(f"no lead {lead!r} in {db}")
    if fmt == "json":
        steps = lambda e: [{**s, "time": format_time(s["time"])} for s in e.steps]  # noqa: E731 - ISO like actions
        sys.stdout.write(json_text([{"journey": e.journey, "version": e.version, "consistent": e.consistent,
                                     "steps": steps(e)} for e in explanations], indent=2))
        sys.stdout.write("\n")
        return
    out = console()

    def esc(text) -> str:  # user text inside our markup: control characters shown, brackets escaped
        from rich.markup import escape

        return escape(shown(text))

    for e in explanations:
        out.rule(f"{esc(lead)} in {esc(e.journey)} (version {e.version})")
        for s in e.trace:
            before, after = s.stage
            stage = before if before == after else f"{before} -> {after}"
            low, high = s.score
            score = f"{low:g}" if low == high else f"{low:g} -> {high:g}"
            out.print(f"[bold]{format_time(s.time)}[/bold]  {esc(s.input)}")
            for note in s.notes:
                out.print(f"    {esc(note)}", style="dim" if note.startswith("entered") else None)
            out.print(f"    score {score}   stage [bold]{esc(str(stage))}[/bold]")
            for a in (action.to_json() for action in s.actions):
                if a["kind"] in INTERNAL_KINDS:  # notify, task, set_field, ...: what it says
                    data = ", ".join(f"{k}={v!r}" for k, v in a.items() if k not in _COMMON)
                    out.print(f"    [green]=> {a['kind']}[/green] {esc(data)}")
                    continue
                what = a.get("content") or a.get("to") or a.get("stage") or ""
                extra = f" #{a['edition']}" if "edition" in a else ""
                label = " ".join(x for x in (a.get("content_kind"), str(what)) if x)
                out.print(f"    [green]=> {a['kind']}[/green] {esc(label)}{extra}")
        stored = e.stored
        out.print(f"now: stage [bold]{esc(stored.state)}[/bold], next due {format_time(stored.due)}")
        if e.consistent:
            out.print("replay of the log matches the stored record", style="dim")
        else:
            out.print("[red]warning: replaying the log does not give the stored record; "
                      "the store may have been edited by hand[/red]")
