"""Where the job's outputs go. An action sink is a function that attaches to the action stream.

The file sink is exactly-once: part files are committed when a checkpoint
completes, so a restore neither loses nor repeats a line. Every action carries
its key (`lead|journey@version|rule|seq`), so any sink can be idempotent by key:
the PostgreSQL sink writes each action into a store's outbox by key (a key
already there is left as it is), so the actions a restore replays find their
rows and the outbox holds each action once. It commits in batches, the actions not
yet committed kept in Flink state, so a checkpoint covers them. A Kafka sink would
write with the key as the message key.
"""

from __future__ import annotations

import glob
import json
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.pgstore import PgStore

__all__ = ["file_sink", "file_action_sink", "postgres_action_sink", "OutboxWriter", "OUTBOX_BATCH", "outbox_bucket",
           "read_lines", "read_results", "Results"]


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


#: Actions a PostgreSQL sink task gathers before it commits them in one transaction (it commits sooner
#: when the watermark passes the first one gathered).
OUTBOX_BATCH = 500


class OutboxWriter:
    """The PostgreSQL sink's work, without Flink: batches of action lines into a store's outbox, by key.

    One batch is one transaction (COPY for a large one). A key already in the
    outbox keeps its row and its position: the actions a restore replays, and a
    batch written again, find their keys there (written once, at their first
    position).
    """

    def __init__(self, url: str):
        self.url = url
        self.store: PgStore | None = None

    def open(self) -> None:
        from engine.pgstore import PgStore

        self.store = PgStore(self.url)

    def write(self, lines: list[str]) -> None:
        """Commit these action lines, in this order, in one transaction."""
        from .logic import action_from_line

        assert self.store is not None  # open() came first
        if lines:
            self.store.add_actions([action_from_line(line) for line in lines])

    def close(self) -> None:
        if self.store is not None:
            self.store.close()
            self.store = None


def outbox_bucket(line: str, parallelism: int) -> int:
    """The sink task an action line goes to: a stable hash of its lead, so a lead's actions keep their order."""
    from engine.partition import owner

    return owner(json.loads(line)["lead"], parallelism)


def postgres_action_sink(url: str, parallelism: int = 1, batch: int = OUTBOX_BATCH):
    """Actions into the outbox of the PostgreSQL store at `url`, idempotent by key, in batches.

    The actions are keyed by a hash of their lead and gathered in keyed state (a
    list): a checkpoint holds the ones not yet committed, so a restore commits
    them, and the actions it replays find their keys. A batch commits when it
    reaches `batch` actions or when the watermark passes the first action of it
    (an event-time timer; the end of the input moves the watermark to the end).
    """
    def attach(actions):
        from pyflink.common.typeinfo import Types
        from pyflink.datastream import KeyedProcessFunction
        from pyflink.datastream.state import ListStateDescriptor, ValueStateDescriptor

        class Outbox(KeyedProcessFunction):
            def __init__(self, url: str, batch: int):
                self.url = url
                self.batch = batch

            def open(self, runtime_context):
                self.writer = OutboxWriter(self.url)
                self.writer.open()
                self.pending = runtime_context.get_list_state(ListStateDescriptor("pending", Types.STRING()))
                self.count = runtime_context.get_state(ValueStateDescriptor("count", Types.INT()))

            def process_element(self, line, ctx):
                self.pending.add(line)
                count = (self.count.value() or 0) + 1
                if count >= self.batch:
                    self._commit()
                    return ()
                if count == 1:  # the first of a batch: commit it when the watermark has passed it
                    ctx.timer_service().register_event_time_timer(ctx.timestamp())
                self.count.update(count)
                return ()

            def on_timer(self, timestamp, ctx):
                self._commit()
                return ()  # outputs nothing (PyFlink iterates what a timer returns)

            def _commit(self):
                self.writer.write(list(self.pending.get() or ()))
                self.pending.clear()
                self.count.clear()

            def close(self):
                self.writer.close()

        buckets = parallelism
        (actions.key_by(lambda line: outbox_bucket(line, buckets), key_type=Types.INT())
         .process(Outbox(url, batch)).name("outbox").set_parallelism(parallelism))
    return attach


def read_lines(path: str) -> list[dict]:
    """Every committed line under a sink's folder (in-progress and hidden files are not committed)."""
    rows: list[dict] = []
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
