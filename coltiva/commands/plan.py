"""`coltiva plan NEW.journey --db STORE`: what a new version would do to the leads in flight, before it is done."""

from __future__ import annotations

import json
import sys

import click

from ..output import console
from ._common import compile_files, db_read_option, format_option, open_store, parse_when

__all__ = ["command"]


@click.command("plan")
@click.argument("journey", type=click.Path(exists=True, dir_okay=False))
@db_read_option
@click.option("--policy", type=click.Choice(["migrate", "drain"]), default="migrate", show_default=True,
              help="migrate: leads in flight move to the new version; drain: they finish on theirs.")
@click.option("--at", "at", help="The switch instant (ISO 8601); default: the last instant the store applied.")
@format_option
def command(journey, db, policy, at, fmt):
    """A dry run: changes nothing. Prints the plan's hash for `coltiva apply --plan`. Exit 1 if it has refusals."""
    from engine.plan import make_plan, plan_lines

    ((cj, _),) = compile_files([journey])
    with open_store(db) as store:
        plan = make_plan(store, cj, policy, None if at is None else parse_when(at))
    if fmt == "json":
        json.dump(plan.to_json(), sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        out = console()
        for line in plan_lines(plan):
            out.print(line, markup=False)
        if not plan.refusals and plan.current != plan.new_version:
            when = "" if at is None else f" --at {at}"
            out.print(f"to apply it: coltiva apply {journey} --db {db} --policy {policy} --plan {plan.hash}{when}",
                      markup=False)
    sys.exit(1 if plan.refusals else 0)
