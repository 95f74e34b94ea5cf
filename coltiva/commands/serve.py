"""`coltiva serve JOURNEY...`: the service: events in over HTTP, time passing, actions out by webhook.

An ASGI app on uvicorn (service/): reads run concurrently, writes go through one
writer that group-commits the requests waiting, and an answer 2xx means committed.
Settings come from options, or from `--config coltiva.toml` (docs/service.md).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import click

from ._common import catalogue_option, compile_files, open_store, writing_store

__all__ = ["command"]


@click.command("serve")
@click.argument("journeys", nargs=-1, type=click.Path(exists=True, dir_okay=False))
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False),
              help="coltiva.toml: journeys, store, keys, clock, limits, webhooks, Segment mapping.")
@click.option("--db", default=None, type=click.Path(dir_okay=False),
              help="The SQLite store (created if missing).  [default: coltiva.db]")
@click.option("--host", default=None, help="Address to listen on.  [default: 127.0.0.1]")
@click.option("--port", default=None, type=int, help="0 picks a free port (printed).  [default: 8787]")
@click.option("--keys", "keys_path", default=None, type=click.Path(dir_okay=False),
              help="API keys file (`coltiva keys create`); required beyond loopback."
                   "  [default: coltiva-keys.json if present]")
@click.option("--clock", type=click.Choice(["wall", "manual"]), default=None,
              help="wall: tick from the wall clock every --tick-every s; manual: only POST /tick.  [default: wall]")
@click.option("--tick-every", type=float, default=None, help="Seconds between ticks of the wall clock.  [default: 60]")
@click.option("--max-ahead", type=click.IntRange(min=0), default=None,
              help="Days beyond the clock, the latest event and tick POST /tick may go without force=true.  "
                   "[default: 90]")
@catalogue_option
def command(journeys, config_path, db, host, port, keys_path, clock, tick_every, max_ahead, catalogue):
    """Accept events over HTTP (POST /events, POST /segment), tick by itself, deliver actions by webhook."""
    from engine.runner import Runner
    from service.config import check_webhook_calls, load_config
    from service.keys import DEFAULT_KEYS
    from service.server import serve

    config = load_config(config_path)
    overrides = {"db": db, "host": host, "port": port, "keys": keys_path, "clock": clock, "tick_every": tick_every,
                 "max_ahead_days": max_ahead}
    config = replace(config, **{k: v for k, v in overrides.items() if v is not None})
    if config.keys is None and Path(DEFAULT_KEYS).exists():
        config = replace(config, keys=DEFAULT_KEYS)  # the file `coltiva keys create` writes by default
    if journeys:
        config = replace(config, journeys=tuple(journeys))
    if not config.journeys:
        raise click.UsageError("give the journeys to run (arguments, or `journeys` in --config)")
    if config.tick_every <= 0:
        raise click.BadParameter("must be a positive number of seconds", param_hint="--tick-every")
    compiled = compile_files(config.journeys, catalogue)
    check_webhook_calls(config, [cj.journey for cj, _ in compiled])
    with writing_store(compiled, config.db):
        pass  # registers the journeys (a changed one is refused here, with its diff) and checks the lock

    def open_runner():  # in the writer's process, where every write to the store happens
        store = open_store(config.db, must_exist=False, writer=True)
        for cj, sources in compiled:
            store.register(cj, sources)
        return Runner(store, [cj for cj, _ in compiled])

    serve(config, open_runner,
          announce=lambda text: click.echo(text) or click.get_text_stream("stdout").flush())
