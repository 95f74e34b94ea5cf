"""Tables the commands print: a run's summary and a journey's funnel (shared, so no command imports another)."""

from __future__ import annotations

from rich.table import Table

from .output import cell, console

__all__ = ["print_summary", "funnel_table"]


def print_summary(summary, title: str) -> None:
    table = Table(title=cell(title), show_header=False)
    table.add_column("what")
    table.add_column("count", justify="right")
    for label, value in [("lines read", summary.lines), ("events applied", summary.applied),
                         ("duplicates ignored", summary.duplicates), ("kept aside (quarantine)", summary.quarantined),
                         ("leads advanced by time", summary.ticked_leads)]:
        table.add_row(label, f"{value:,}")
    for kind in sorted(summary.actions):
        table.add_row(f"actions: {kind}", f"{summary.actions[kind]:,}")
    console().print(table)


def funnel_table(cj, stage_counts: dict[str, int]) -> Table:
    """Leads per stage in the journey's order, then those that left; those not in the journey apart."""
    per_stage = dict(stage_counts)
    never = per_stage.pop("not_enrolled", 0)
    waiting = per_stage.pop("waiting", 0)
    total = sum(per_stage.values())
    table = Table(title=cell(f"{cj.name} (version {cj.version})"))
    table.add_column("stage")
    table.add_column("label")
    table.add_column("leads", justify="right")
    table.add_column("share", justify="right")
    for stage in cj.journey.stages:
        n = per_stage.get(stage.id, 0)
        table.add_row(cell(stage.id), cell(stage.title), f"{n:,}", f"{n / total:.0%}" if total else "-")
    known = {stage.id for stage in cj.journey.stages} | {"exit"}
    for stage, n in sorted(per_stage.items()):  # leads draining on an older version, in a stage this one dropped
        if stage not in known and n:
            table.add_row(cell(stage), cell("(a stage of an older version: leads draining there)"), f"{n:,}",
                          f"{n / total:.0%}" if total else "-")
    n = per_stage.get("exit", 0)
    table.add_row("exit", "left the journey", f"{n:,}", f"{n / total:.0%}" if total else "-")
    table.add_row("", "total", f"{total:,}", "")
    if never:
        table.add_row("not_enrolled", "never enrolled: an exit event came first", f"{never:,}", "")
    if waiting:
        table.add_row("waiting", "known by attributes, waiting for an enrolling event", f"{waiting:,}", "")
    return table
