"""`coltiva apply NEW.journey --db STORE --policy P --plan HASH`: make exactly the change a plan showed."""

from __future__ import annotations

from datetime import datetime, timezone

import click

from ..output import console
from ._common import compile_files, db_read_option, open_store, parse_when

__all__ = ["command"]


@click.command("apply")
@click.argument("journey", type=click.Path(exists=True, dir_okay=False))
@db_read_option
@click.option("--policy", type=click.Choice(["migrate", "drain"]), required=True,
              help="migrate: leads in flight move to the new version; drain: they finish on theirs.")
@click.option("--plan", "plan_hash", required=True, help="The hash `coltiva plan` printed for this change.")
@click.option("--at", "at", help="The switch instant, as given to `coltiva plan` (default: the store's last instant).")
def command(journey, db, policy, plan_hash, at):
    """Refused if the store changed since the plan. One transaction: all of it, or nothing."""
    from engine.plan import apply_plan

    ((cj, sources),) = compile_files([journey])
    applied_at = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")  # for the history only
    with open_store(db, writer=True) as store:
        plan = apply_plan(store, cj, sources, policy, plan_hash, None if at is None else parse_when(at),
                          applied_at=applied_at)
    moved = sum(m.leads for m in plan.moves if m.source != m.target)
    console().print(f"applied version {plan.new_version} of {plan.journey!r} ({policy}): {len(plan.records)} lead(s) "
                    f"switched, {moved} in another stage, {len(plan.actions)} action(s) in the outbox; "
                    f"roll back with `coltiva plan` and `coltiva apply` of version {plan.current}'s file",
                    markup=False)
