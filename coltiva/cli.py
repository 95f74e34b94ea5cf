"""The `coltiva` command: a thin front door that imports each subcommand on use.

Subcommands live in `coltiva.commands.*`; importing them lazily keeps
`coltiva check` fast (no SQLite, graphviz or transitions import for a check).
"""

from __future__ import annotations

import importlib
import sys

import click

from . import __version__

__all__ = ["main", "COMMANDS"]

# name -> (module, short help). The module defines `command`, a click.Command.
COMMANDS = {
    "check": ("coltiva.commands.check", "Check journey files and print every problem found."),
    "fmt": ("coltiva.commands.fmt", "Rewrite journey files in the canonical layout."),
    "run": ("coltiva.commands.run", "Step leads through journeys with events from a JSONL file."),
    "tick": ("coltiva.commands.tick", "Fire everything due up to a given time."),
    "leads": ("coltiva.commands.leads", "How many leads are in each stage of each journey."),
    "explain": ("coltiva.commands.explain", "Every step a lead took, and why."),
    "actions": ("coltiva.commands.actions", "The outbox: what to send and whom to hand to sales, as JSONL."),
    "quarantine": ("coltiva.commands.quarantine", "Events kept aside, with the reason."),
    "serve": ("coltiva.commands.serve", "Run the service: events over HTTP, a clock, webhook delivery."),
    "keys": ("coltiva.commands.keys", "API keys for the service: create, list, revoke."),
    "deliver": ("coltiva.commands.deliver", "Post due actions to their webhooks once (for cron)."),
    "deliveries": ("coltiva.commands.deliveries", "Webhook delivery: offsets, retries, dead letters; retry, skip."),
    "flink": ("coltiva.commands.flink", "Run events through journeys as an Apache Flink job (optional extra)."),
    "simulate": ("coltiva.commands.simulate",
                 "Try journeys on events in memory before launch: funnel, sends, handoffs."),
    "render": ("coltiva.commands.render", "Draw a journey as SVG, PNG, PDF, DOT or Mermaid."),
    "diff": ("coltiva.commands.diff", "Draw what changed between two versions of a journey."),
    "review": ("coltiva.commands.review", "Write a self-contained HTML review page for a journey."),
    "report": ("coltiva.commands.report", "The funnel over time from the store: per week, conversion, time in stage."),
    "versions": ("coltiva.commands.versions", "A journey's history of versions, with the leads on each."),
    "plan": ("coltiva.commands.plan", "What a new version of a live journey would do to the leads in flight."),
    "apply": ("coltiva.commands.apply", "Make the change a plan showed: migrate or drain the leads in flight."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        return sorted(name for name, (module, _) in COMMANDS.items() if importlib.util.find_spec(module))

    def get_command(self, ctx, name):
        if name not in COMMANDS:
            return None
        module_name, _ = COMMANDS[name]
        if importlib.util.find_spec(module_name) is None:
            return None
        return importlib.import_module(module_name).command

    def format_commands(self, ctx, formatter):
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="coltiva")
def cli():
    """Coltiva: journeys for B2B lead nurturing, checked, run and drawn."""


def main(argv=None):
    """Entry point: a user's mistake ends with a message and an exit code, never a traceback."""
    import sqlite3

    from dsl.errors import ColtivaError

    try:
        return cli.main(args=argv, prog_name="coltiva", standalone_mode=True)
    except ColtivaError as err:
        click.echo(f"coltiva: {err}", err=True)
        sys.exit(1)
    except sqlite3.Error as err:  # a full disk, a locked or read-only file: the store's words, not a traceback
        click.echo(f"coltiva: the store failed: {err}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        click.echo("coltiva: interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":  # pragma: no cover
    main()
