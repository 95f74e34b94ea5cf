"""The Coltiva Flink job (PyFlink DataStream API): the pure step, keyed by lead, in Flink state.

    lines ─ parse (1 task) ─┬─ malformed ─────────────────────────────► quarantine sink
          timestamps: event │ time, tick lines move the watermark
                            └─ keyBy(lead) ─ LeadFunction (N tasks) ─┬► action sink (by key)
                                                                     ├► records changelog
                                                                     └► quarantine (a bug)

One input line at a time in input order reaches each lead (one reader, then a
hash of the lead), so a lead sees its events in the order a single machine
would. Its records live in keyed state as JSON text; one event-time timer sits
at the lead's next due time, and fires when the watermark (moved by event times
and tick lines, broadcast to every partition) passes it: the timer does what
`coltiva tick` would do to that lead. Seen event ids live in keyed state with a
TTL. docs/scaling.md says what is guaranteed.
"""

from __future__ import annotations

import glob
import os
import signal
import sys
from dataclasses import dataclass

__all__ = ["JobSpec", "build", "run", "configuration", "register_outbox", "shipped", "spec_from_json", "main",
           "FAIL_MARKER"]

#: The test-only failure leaves this file in the checkpoint folder, so it fails once, not on every attempt.
FAIL_MARKER = "injected-failure"
MS = 1000
MAX_WATERMARK = 2**63 - 1
#: PyFlink's switch between Python workers in separate processes and threads of the client ("loopback").
WORKER_MODE = "_python_worker_execution_mode"


@dataclass(frozen=True)
class JobSpec:
    """Everything a run needs; plain data, so it travels to every worker as JSON-ready values."""
    journeys: tuple[dict, ...]       # {"name", "version", "sources"}: the journeys as text
    events: str                      # a JSON Lines file (a bounded file source)
    out: str                         # a folder: actions/, records/, quarantine/
    until: int | None                # the last tick: timers due later are not fired (None: time never stops)
    parallelism: int = 1
    state: str = "hashmap"           # or "rocksdb"
    checkpoints: str | None = None   # a folder for checkpoints (None: out/checkpoints); sinks commit on them
    checkpoint_ms: int = 500
    out_of_orderness: int = 0        # seconds the watermark waits for late events
    seen_ttl_days: int = 30          # how long an event id is remembered (the lead's event time)
    bundle: int = 1000               # elements a Python worker takes at once; a checkpoint waits for it
    fail_after: int | None = None    # test only: fail once after this many events, once a checkpoint is done
    fail_how: str = "raise"          # test only: "raise" (Flink restarts the job) or "kill" (SIGKILL, all of it)
    restore: str | None = None       # a checkpoint (its chk-N folder) to start from: a job resumed after a crash
    outbox: str | None = None        # a postgresql:// store: actions go to its outbox by key, not to out/actions


def checkpoint_dir(spec: JobSpec) -> str:
    return spec.checkpoints or os.path.join(spec.out, "checkpoints")


def configuration(spec: JobSpec):
    """Flink's settings for this run: Python workers, state backend, checkpoints, restarts."""
    from pyflink.common import Configuration

    config = Configuration()
    config.set_string("python.executable", sys.executable)  # the workers run in this environment
    config.set_string("python.client.executable", sys.executable)
    # Beam workers (not thread mode, pemja, which never got the source running here); `run` also keeps
    # them out of this process
    config.set_string("python.execution-mode", "process")
    config.set_string("python.fn-execution.bundle.size", str(spec.bundle))
    config.set_string("state.backend.type", spec.state)
    config.set_string("restart-strategy.type", "fixed-delay")
    # a restart needs the failed attempt's slots back (its Python workers take a moment to stop)
    config.set_string("restart-strategy.fixed-delay.attempts", "10")
    config.set_string("restart-strategy.fixed-delay.delay", "2 s")
    config.set_string("execution.checkpointing.dir", "file://" + os.path.abspath(checkpoint_dir(spec)))
    config.set_string("execution.checkpointing.interval", f"{spec.checkpoint_ms} ms")
    config.set_string("execution.checkpointing.mode", "EXACTLY_ONCE")
    if spec.state == "rocksdb":  # a checkpoint ships only the RocksDB files (.sst) that changed
        config.set_string("execution.checkpointing.incremental", "true")
    if spec.restore is not None:  # the state, timers, reader position and sinks of that checkpoint
        config.set_string("execution.state-recovery.path", "file://" + os.path.abspath(spec.restore))
    # the last checkpoint stays on disk after the run: a later job can start from it
    config.set_string("execution.checkpointing.externalized-checkpoint-retention", "RETAIN_ON_CANCELLATION")
    return config


def _functions():
    """The Flink functions; defined on use, so importing this module does not need PyFlink."""
    from pyflink.common.typeinfo import Types
    from pyflink.common.watermark_strategy import TimestampAssigner
    from pyflink.datastream import KeyedProcessFunction, OutputTag, ProcessFunction
    from pyflink.datastream.state import ValueStateDescriptor

    quarantine_tag = OutputTag("quarantine", Types.STRING())
    records_tag = OutputTag("records", Types.STRING())

    class Parse(ProcessFunction):
        """Lines to (lead, time, line); ticks pass with no lead, malformed lines go aside."""

        def __init__(self, journeys):
            self.shipped = journeys

        def open(self, runtime_context):
            from .logic import known_types, rebuild_journeys

            self.known = known_types(rebuild_journeys(self.shipped))

        def process_element(self, line, ctx):
            from .logic import Keyed, Rejected, Tick, classify

            got = classify(line, self.known)
            if isinstance(got, Rejected):
                yield quarantine_tag, got.to_line()
            elif isinstance(got, Tick):
                yield "", got.time, ""
            elif isinstance(got, Keyed):
                yield got.lead, got.time, got.line

    class EventTime(TimestampAssigner):
        def extract_timestamp(self, value, record_timestamp) -> int:
            return value[1] * MS

    class LeadFunction(KeyedProcessFunction):
        """One lead: its records, seen ids and timer in one JSON text; one timer at its next due time."""

        def __init__(self, spec: JobSpec):
            self.shipped = spec.journeys
            self.until = spec.until
            self.ttl = spec.seen_ttl_days * 86_400
            self.fail_after = spec.fail_after
            self.fail_how = spec.fail_how
            self.checkpoints = checkpoint_dir(spec)

        def open(self, runtime_context):
            from .logic import known_types, rebuild_journeys

            self.journeys = rebuild_journeys(self.shipped)
            self.known = known_types(self.journeys)
            # one value per lead: PyFlink caches it in the worker, where a MapState lookup of a new
            # key (every fresh event id) would be a round trip to the JVM
            self.state = runtime_context.get_state(ValueStateDescriptor("lead", Types.STRING()))
            self.count = 0

        def _maybe_fail(self):
            """Test only: fail once, after `fail_after` events here and a completed checkpoint. "raise": this
            task fails and Flink restarts the job; "kill": SIGKILL to the whole process group (the command,
            its JVM and every Python worker, as a machine that dies), for a new job to resume from the
            checkpoint (`restore`)."""
            self.count += 1
            if self.count < self.fail_after:
                return
            marker = os.path.join(self.checkpoints, FAIL_MARKER)
            if os.path.exists(marker) or not glob.glob(os.path.join(self.checkpoints, "*", "chk-*", "_metadata")):
                return
            with open(marker, "w") as f:
                f.write(f"failed ({self.fail_how}) after {self.count} events\n")
            if self.fail_how == "kill":
                os.killpg(os.getpgrp(), signal.SIGKILL)
            raise RuntimeError("injected failure (test only)")

        def _emit(self, lead, state, stepped, ctx):
            from .logic import action_line, record_line

            self._set_timer(state, ctx)
            self.state.update(state.to_text())
            for a in stepped.actions:
                yield action_line(a)
            for name in stepped.changed:
                yield records_tag, record_line(lead, name, state)

        def _set_timer(self, state, ctx):
            due = state.due()
            if due is not None and self.until is not None and due > self.until:
                due = None  # past the last tick: never fired in this run
            wanted = None if due is None else due * MS
            if state.timer == wanted:
                return
            if state.timer is not None:
                ctx.timer_service().delete_event_time_timer(state.timer)
            if wanted is not None:
                ctx.timer_service().register_event_time_timer(wanted)
            state.timer = wanted

        def process_element(self, value, ctx):
            from engine.events import parse_event

            from .logic import LeadState, Rejected, apply_event

            lead, _, line = value
            if not lead:
                return  # a tick: it has moved the watermark on its way here
            if self.fail_after is not None:
                self._maybe_fail()
            event = parse_event(line, self.known)
            state = LeadState.from_text(self.state.value())
            if state.duplicate(event, self.ttl):
                return  # seen: ignored, as a single machine does
            try:
                stepped = apply_event(self.journeys, state, event)
            except Exception as err:  # a bug must not take the job down: the event is kept aside
                yield quarantine_tag, Rejected(f"could not be applied ({type(err).__name__}: {err}); "
                                               "this is a Coltiva bug, please report it", line).to_line()
                return  # the state is not written: the id is not remembered either
            yield from self._emit(lead, state, stepped, ctx)

        def on_timer(self, timestamp, ctx):
            from .logic import LeadState, apply_tick

            state = LeadState.from_text(self.state.value())
            if state.timer != timestamp:
                return  # a timer moved since (its deletion may cross its firing): nothing to do
            state.timer = None
            stepped = apply_tick(self.journeys, state, ctx.get_current_key(), timestamp // MS)
            yield from self._emit(ctx.get_current_key(), state, stepped, ctx)

    return Parse, EventTime, LeadFunction, quarantine_tag, records_tag


def build(env, spec: JobSpec, action_sink) -> None:
    """Add the job to a StreamExecutionEnvironment; `action_sink(stream)` writes the actions (swappable)."""
    from pyflink.common import Duration, WatermarkStrategy
    from pyflink.common.typeinfo import Types
    from pyflink.datastream.connectors.file_system import FileSource, StreamFormat

    from .sinks import file_sink

    Parse, EventTime, LeadFunction, quarantine_tag, records_tag = _functions()
    source = FileSource.for_record_stream_format(StreamFormat.text_line_format(), os.path.abspath(spec.events)).build()
    lines = env.from_source(source, WatermarkStrategy.no_watermarks(), "events").set_parallelism(1)
    keyed_type = Types.TUPLE([Types.STRING(), Types.LONG(), Types.STRING()])
    parsed = lines.process(Parse(list(spec.journeys)), output_type=keyed_type).set_parallelism(1).name("parse")
    malformed = parsed.get_side_output(quarantine_tag)
    watermarks = (WatermarkStrategy.for_bounded_out_of_orderness(Duration.of_seconds(spec.out_of_orderness))
                  .with_timestamp_assigner(EventTime()))
    timed = parsed.assign_timestamps_and_watermarks(watermarks).set_parallelism(1)
    actions = (timed.key_by(lambda v: v[0], key_type=Types.STRING())
               .process(LeadFunction(spec), output_type=Types.STRING()).name("leads")
               .set_parallelism(spec.parallelism))
    action_sink(actions)
    actions.get_side_output(records_tag).sink_to(file_sink(os.path.join(spec.out, "records"))).name("records") \
        .set_parallelism(spec.parallelism)
    malformed.union(actions.get_side_output(quarantine_tag)).sink_to(
        file_sink(os.path.join(spec.out, "quarantine"))).name("quarantine")


def run(spec: JobSpec, action_sink=None) -> int:
    """Run the job to the end of its input on a local mini-cluster (or the cluster Flink points to);
    returns Flink's net run time in milliseconds (from the job's start to its end, JVM start excluded)."""
    from pyflink.datastream import StreamExecutionEnvironment

    from .sinks import file_action_sink, postgres_action_sink

    if action_sink is None and spec.outbox:
        register_outbox(spec)
        action_sink = postgres_action_sink(spec.outbox, spec.parallelism)
    # On a local mini-cluster PyFlink runs the Python workers as threads of this process ("loopback")
    # unless told otherwise. A failed attempt's loopback worker is never stopped: it goes on sending
    # keyed-state requests after Flink has disposed the attempt's RocksDB, and the JVM dies of a
    # segmentation fault in RocksDB (createColumnFamily). Separate worker processes die with their attempt.
    os.environ[WORKER_MODE] = "process"
    env = StreamExecutionEnvironment.get_execution_environment(configuration(spec))
    # one task reads, parses and stamps the input (PyFlink's own timestamp map takes the default
    # parallelism: two of them would interleave the lines); only the leads are spread over workers
    env.set_parallelism(1)
    build(env, spec, action_sink or file_action_sink(os.path.join(spec.out, "actions"), spec.parallelism))
    return env.execute("coltiva").get_net_runtime()


def register_outbox(spec: JobSpec) -> None:
    """The journeys of the run, recorded in the outbox's store (its tables made if new): `coltiva
    actions`, `explain` and the service read versions there, as after `coltiva run`."""
    from engine.pgstore import PgStore

    from .logic import rebuild_journeys

    assert spec.outbox is not None  # called for a run with an outbox
    with PgStore(spec.outbox) as store:
        for item, cj in zip(spec.journeys, rebuild_journeys(list(spec.journeys))):
            store.register(cj, item["sources"], command="flink")


def shipped(compiled) -> tuple[dict, ...]:
    """Journeys as text for the workers: (CompiledJourney, sources) pairs from `compile_files`."""
    return tuple({"name": cj.name, "version": cj.version, "sources": dict(sources)} for cj, sources in compiled)



def spec_from_json(text: str) -> JobSpec:
    """A JobSpec from its JSON form (what `python -m engine_flink.job SPEC.json` reads)."""
    import json

    data = json.loads(text)
    data["journeys"] = tuple(data["journeys"])
    return JobSpec(**data)


def main(argv: list[str] | None = None) -> None:
    """`python -m engine_flink.job SPEC.json`: run a job from a spec file (how a cluster submits it too)."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        sys.exit("usage: python -m engine_flink.job SPEC.json")
    with open(args[0], encoding="utf-8") as f:
        millis = run(spec_from_json(f.read()))
    print(f"net runtime: {millis} ms")


if __name__ == "__main__":
    main()
