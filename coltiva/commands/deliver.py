"""`coltiva deliver --config coltiva.toml`: one delivery pass from cron, when the service is not running."""

from __future__ import annotations

import click

from ._common import config_options

__all__ = ["command"]


@click.command("deliver")
@config_options
@click.option("--seed", type=int, default=None, help="Seed the retry jitter (for reproducible runs).")
def command(config_path, db, seed):
    """Post every action due to its webhook; failures are retried by a later run, after their backoff."""
    import random

    from engine.events import format_time
    from service.config import config_for_store
    from service.delivery import Deliverer

    from ._common import open_store

    config = config_for_store(config_path, db)
    if not config.webhooks:
        raise click.UsageError(f"{config_path} has no [[webhooks]]: nothing to deliver to")
    with open_store(config.db, writer=True) as store:
        deliverer = Deliverer(config.webhooks, lambda fn: fn(store), lambda fn: fn(store),
                              rng=random.Random(seed if seed is not None else config.delivery_seed))
        try:
            result = deliverer.pass_once()
        finally:
            deliverer.close()
    waiting = f"; next retry at {format_time(result.next_retry)}" if result.next_retry else ""
    click.echo(f"delivered {result.delivered}, failed {result.failed}, dead-lettered {result.dead}{waiting}")
