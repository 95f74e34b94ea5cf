"""`coltiva flink JOURNEY... --events FILE --until TIME --out DIR`: the same run, as an Apache Flink job.

PyFlink is an optional extra in its own environment (`make flink` makes
.venv-flink); engine_flink holds the job. See docs/scaling.md.
"""

from __future__ import annotations

import importlib.util
import sys

import click

from dsl.errors import ColtivaError

from ._common import compile_files, parse_when

__all__ = ["command"]


@click.command("flink")
@click.argument("journeys", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--events", "events", required=True, type=click.Path(exists=True, dir_okay=False),
              help="JSON Lines: events, and tick lines {\"tick\": TIME} that move time for every lead.")
@click.option("--until", "until", required=True,
              help="The last tick (ISO 8601): everything due by then fires, as `coltiva tick --now`.")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False),
              help="A new folder for actions/, records/, quarantine/ and checkpoints/.")
@click.option("--parallelism", default=1, show_default=True, type=click.IntRange(1, 512),
              help="Workers the leads are spread over (by a hash of the lead).")
@click.option("--state", "state", default="hashmap", show_default=True, type=click.Choice(["hashmap", "rocksdb"]),
              help="Where Flink keeps the leads: in memory, or RocksDB on disk for large state.")
@click.option("--out-of-orderness", default=0, show_default=True, type=click.IntRange(0),
              help="Seconds the watermark waits for events that arrive out of time order.")
@click.option("--seen-ttl-days", default=30, show_default=True, type=click.IntRange(1),
              help="How long (in the lead's event time) an event id is remembered to drop duplicates.")
@click.option("--checkpoint-ms", default=500, show_default=True, type=click.IntRange(10),
              help="Checkpoint interval; the sinks commit at each checkpoint.")
@click.option("--outbox", "outbox", default=None, metavar="URL",
              help="A postgresql:// store: actions go to its outbox, by key (else to DIR/actions).")
def command(journeys, events, until, out, parallelism, state, out_of_orderness, seen_ttl_days, checkpoint_ms,
            outbox):
    """Run events through journeys on Apache Flink (a local mini-cluster here)."""
    from pathlib import Path

    from engine.stores import is_postgres_url, open_store

    if outbox is not None and not is_postgres_url(outbox):
        raise ColtivaError(f"--outbox {outbox}: give a postgresql:// address (see docs/scaling.md)")
    if importlib.util.find_spec("pyflink") is None:
        raise ColtivaError("PyFlink is not installed in this environment: run `make flink` and use "
                           ".venv-flink/bin/coltiva flink ... (see docs/scaling.md)")
    if Path(out).exists() and any(Path(out).iterdir()):
        raise ColtivaError(f"{out}: not empty; give a new folder (a run's output is never mixed with another's)")
    from engine_flink.job import JobSpec, run, shipped
    from engine_flink.sinks import read_results

    compiled = compile_files(journeys)
    spec = JobSpec(journeys=shipped(compiled), events=events, out=out, until=parse_when(until),
                   parallelism=parallelism, state=state, out_of_orderness=out_of_orderness,
                   seen_ttl_days=seen_ttl_days, checkpoint_ms=checkpoint_ms, outbox=outbox)
    try:
        run(spec)
    except ColtivaError:
        raise
    except Exception as err:  # the JVM's error: its first lines say why, not a Python traceback
        reason = " ".join(str(err).split())[:400]
        raise ColtivaError(f"the Flink job failed: {reason}") from None
    results = read_results(out)
    if outbox is None:
        actions = f"{len(results.actions):,} actions"
    else:
        with open_store(outbox, read_only=True) as store:
            actions = f"actions in the outbox of {store.path} (up to position {store.last_action_seq():,})"
    click.echo(f"flink: {actions}, {len(results.records):,} lead records, "
               f"{len(results.quarantine):,} lines kept aside; written under {out}")
    sys.exit(0)
