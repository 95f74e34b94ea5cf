"""Where the job's outputs go. An action sink is a function that attaches to the action stream.

The file sink is exactly-once: part files are committed when a checkpoint
completes, so a restore neither loses nor repeats a line. Every action carries
its key (`lead|journey@version|rule|seq`), so any sink can be idempotent by key:
the PostgreSQL sink writes each action into a store's outbox by key (a key
already there is left as it is), so the actions a restore replays find their
rows and the outbox holds each action once; a Kafka sink would write with the
key as the message key.
"""

from __future__ import annotations

import glob
import json
import os
from dataclasses import dataclass

__all__ = ["file_sink", "file_action_sink", "postgres_action_sink", "OutboxWriter", "read_lines", "read_results",
           "Results"]


def file_sink(path: str):
    """An exactly-once FileSink of text lines, rolled (committed) at every checkpoint."""
    from pyflink.common.serialization import Encoder
    from pyflink.datastream.connectors.file_system import FileSink, RollingPolicy

    return (FileSink.for_row_format(os.path.abspath(path), Encoder.simple_string_encoder("UTF-8"))
            .with_rolling_policy(RollingPolicy.on_checkpoint_rolling_policy())
            .build())


def file_action_sink(path: str, parallelism: int = 1):
    """The default action sink: actions as JSON Lines in committed part files under `path`."""
    def attach(actions):
        actions.sink_to(file_sink(path)).name("actions").set_parallelism(parallelism)
    return attach


class OutboxWriter:
    """The PostgreSQL sink's work, without Flink: action lines into a store's outbox, by key.

    Each action commits before the next is taken: when a checkpoint completes,
    every action before its barrier is in the outbox, and those replayed after a
    restore find their keys there (written once, at their first position).
    """

    def __init__(self, url: str):
        self.url = url
        self.store = None

    def open(self) -> None:
        from engine.pgstore import PgStore

        self.store = PgStore(self.url)

    def write(self, line: str) -> None:
        from .logic import action_from_line

        self.store.add_actions([action_from_line(line)])

    def close(self) -> None:
        if self.store is not None:
            self.store.close()
            self.store = None


def postgres_action_sink(url: str, parallelism: int = 1):
    """Actions into the outbox of the PostgreSQL store at `url`, idempotent by key (one writer per worker)."""
    def attach(actions):
        from pyflink.datastream import ProcessFunction

        class Outbox(ProcessFunction):
            def __init__(self, url: str):
                self.url = url

            def open(self, runtime_context):
                self.writer = OutboxWriter(self.url)
                self.writer.open()

            def process_element(self, line, ctx):
                self.writer.write(line)
                return iter(())

            def close(self):
                self.writer.close()

        actions.process(Outbox(url)).name("outbox").set_parallelism(parallelism)
    return attach


def read_lines(path: str) -> list[dict]:
    """Every committed line under a sink's folder (in-progress and hidden files are not committed)."""
    rows = []
    for name in sorted(glob.glob(os.path.join(path, "**", "*"), recursive=True)):
        if os.path.isfile(name) and not os.path.basename(name).startswith("."):
            with open(name, encoding="utf-8") as f:
                rows.extend(json.loads(line) for line in f if line.strip())
    return rows


@dataclass(frozen=True)
class Results:
    """What a finished run committed: actions (in file order), each lead's latest record, quarantine."""
    actions: list[dict]
    records: dict[tuple[str, str], list]   # (journey, lead) -> Lead.to_list()
    quarantine: list[dict]


def read_results(out: str) -> Results:
    """Read a run's output folder; the records changelog is folded to the latest change of each lead."""
    latest: dict[tuple[str, str], dict] = {}
    for row in read_lines(os.path.join(out, "records")):
        key = (row["journey"], row["lead"])
        if key not in latest or latest[key]["changes"] < row["changes"]:
            latest[key] = row
    return Results(read_lines(os.path.join(out, "actions")), {k: v["record"] for k, v in latest.items()},
                   read_lines(os.path.join(out, "quarantine")))
