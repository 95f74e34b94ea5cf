"""Several writers on one PostgreSQL store: each owns a hash partition of the leads.

On the benchmark workload, SQLite, PostgreSQL with one writer and with two
writer processes give the same records and the same actions; a writer killed
with SIGKILL and started again changes nothing; the outbox cursor a consumer
reads follows commit order, whoever commits.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import threading
import time

import pytest

from bench.workload import Spec, json_lines
from dsl.errors import StoreError
from engine.partition import Partition, lead_hash, owner
from engine.pgstore import PgStore
from engine.record import Action
from engine.stores import open_store

from .engine_helpers import COLTIVA, DEMAND, ROOT, T0, dump, example, line, run_store

ENV = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
SPEC = Spec(leads=240, events=6_000, days=120, seed=5)
END = "2027-01-01T00:00:00Z"


def _coltiva(*args, check=True):
    done = subprocess.run([str(COLTIVA), *map(str, args)], cwd=ROOT, env=ENV, capture_output=True, text=True,
                          timeout=300)
    if check:
        assert done.returncode == 0, (done.stdout, done.stderr)
    return done


def _start(*args):
    return subprocess.Popen([str(COLTIVA), *map(str, args)], cwd=ROOT, env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _wait(proc):
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, (out, err)


def _meaning(db) -> dict:
    """What must not depend on the number of writers: records, actions, history, the events applied.
    The interleaving of two writers' logs is theirs: compared as sets, each writer's own order aside."""
    with open_store(db) as store:
        d = store.dump()
    return {"leads": d["leads"], "outbox": sorted(d["outbox"]), "transitions": sorted(d["transitions"], key=repr),
            "events": sorted(row for row in d["inputs"] if row[0] == "event"),
            "quarantine": sorted(d["quarantine"])}


@pytest.fixture(scope="module")
def workload(tmp_path_factory):
    path = tmp_path_factory.mktemp("workload") / "events.jsonl"
    lines = list(json_lines(SPEC))
    lines[100:100] = ['{"id": "bad", "lead": "L0000001"', "[1, 2]"]  # quarantined once, whoever reads them
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def reference(workload, tmp_path_factory):
    """The embedded default: one SQLite writer, then a tick to the end."""
    db = tmp_path_factory.mktemp("ref") / "ref.db"
    _coltiva("run", DEMAND, "--events", workload, "--db", db, "--batch", "500")
    _coltiva("tick", "--now", END, "--db", db)
    return _meaning(db)


def test_partition_is_a_stable_hash_of_the_lead():
    # fixed values: the same in every process and every release (Python's hash() is salted per process)
    assert lead_hash("L0000001") == lead_hash("L0000001")
    assert [owner(f"L{k:07d}", 2) for k in range(8)] == [owner(f"L{k:07d}", 2) for k in range(8)]
    out = subprocess.run([str(ROOT / ".venv/bin/python"), "-c",
                          "from engine.partition import lead_hash; print(lead_hash('L0000001'))"],
                         cwd=ROOT, capture_output=True, text=True, env={**ENV, "PYTHONHASHSEED": "123"})
    assert int(out.stdout) == lead_hash("L0000001")
    counts = [sum(owner(f"L{k:07d}", 2) == part for k in range(1000)) for part in (0, 1)]
    assert min(counts) > 400  # both writers get work
    assert Partition.parse("1/2") == Partition(1, 2)
    with pytest.raises(ValueError):
        Partition.parse("2/2")


def test_one_writer_on_postgresql_equals_sqlite(workload, reference, pg_server):
    db = pg_server.create_schema("coltiva", "one_writer")
    _coltiva("run", DEMAND, "--events", workload, "--db", db, "--batch", "500")
    _coltiva("tick", "--now", END, "--db", db)
    assert _meaning(db) == reference


def test_two_writer_processes_equal_one(workload, reference, pg_server):
    db = pg_server.create_schema("coltiva", "two_writers")
    writers = [_start("run", DEMAND, "--events", workload, "--db", db, "--batch", "200", "--partition", f"{k}/2")
               for k in (0, 1)]
    for proc in writers:
        _wait(proc)
    with open_store(db) as store:  # both wrote: each lead lives where its partition says
        owners = {owner(lead, 2) for _, lead, *_ in store.dump()["leads"]}
    assert owners == {0, 1}
    ticks = [_start("tick", "--now", END, "--db", db, "--partition", f"{k}/2") for k in (0, 1)]
    for proc in ticks:
        _wait(proc)
    assert _meaning(db) == reference


def test_a_writer_killed_mid_run_and_started_again_changes_nothing(workload, reference, pg_server):
    db = pg_server.create_schema("coltiva", "killed")
    PgStore(db).close()  # the tables, for the reader below
    run = ["run", DEMAND, "--events", workload, "--db", db, "--batch", "50"]
    other = _start(*run, "--partition", "1/2")
    victim = _start(*run, "--partition", "0/2")
    killed = False
    deadline = time.monotonic() + 120
    with PgStore(db, read_only=True) as reader:
        while victim.poll() is None and time.monotonic() < deadline:
            if _events_of(reader, 0) > 200:
                victim.send_signal(signal.SIGKILL)
                killed = True
                break
            time.sleep(0.05)
    victim.wait()
    assert killed, "the writer finished before it could be killed: give it more events"
    _wait(other)
    with PgStore(db, read_only=True) as reader:
        applied = _events_of(reader, 0)
    assert 0 < applied < sum(1 for line in workload.read_text().splitlines()
                             if '"lead"' in line and Partition(0, 2).owns_line(line))
    _coltiva(*run, "--partition", "0/2")  # the same file again: what was committed is skipped as seen
    for k in (0, 1):
        _coltiva("tick", "--now", END, "--db", db, "--partition", f"{k}/2")
    assert _meaning(db) == reference


def _events_of(store: PgStore, part: int) -> int:
    rows = store.db.execute("SELECT lead FROM inputs WHERE kind = 'event'").fetchall()
    return sum(owner(lead, 2) == part for (lead,) in rows)


def test_a_second_writer_of_the_same_partition_is_refused(pg_server):
    db = pg_server.create_schema("coltiva", "refused")
    with PgStore(db, writer=True, partition=Partition(0, 2)):
        with pytest.raises(StoreError, match="partition 0/2"):
            PgStore(db, writer=True, partition=Partition(0, 2))
        with pytest.raises(StoreError, match="whole store"):
            PgStore(db, writer=True)
        PgStore(db, writer=True, partition=Partition(1, 2)).close()  # another partition: fine
    with PgStore(db, writer=True):
        with pytest.raises(StoreError):
            PgStore(db, writer=True, partition=Partition(1, 2))
    PgStore(db, writer=True).close()  # the lock went with the connection


def _action(key: str, lead: str) -> Action:
    return Action(key=key, journey="j", version="v1", lead=lead, kind="send", time=T0, data={"content": key})


def test_outbox_positions_follow_commit_order(pg_server):
    """Writer A takes its positions and has not committed; writer B commits meanwhile. A consumer that
    reads B's rows and moves its cursor past them must still receive A's rows: positions follow commits."""
    db = pg_server.create_schema("coltiva", "commit_order")
    cj, sources = example(DEMAND)
    with PgStore(db) as setup:
        setup.register(cj, sources)
    a = PgStore(db, writer=True, partition=Partition(0, 2))
    b = PgStore(db, writer=True, partition=Partition(1, 2))
    consumer = PgStore(db, read_only=True)
    try:
        with a.db.transaction():
            a._write(actions=[_action(f"a{i}", "la") for i in range(3)])  # positions taken, not committed
            done = threading.Event()
            writer_b = threading.Thread(target=lambda: (b.write_batch(actions=[_action(f"b{i}", "lb")
                                                                               for i in range(2)]), done.set()))
            writer_b.start()
            _until_waiting_or_done(consumer, b, done)
            seen = list(consumer.actions(after=0))
            cursor = max((position for position, _ in seen), default=0)
        writer_b.join(timeout=60)
        assert done.is_set()
        seen += list(consumer.actions(after=cursor))
    finally:
        for store in (a, b, consumer):
            store.close()
    keys = [action["key"] for _, action in seen]
    assert sorted(keys) == ["a0", "a1", "a2", "b0", "b1"], keys  # nothing missed, nothing twice
    assert keys == ["a0", "a1", "a2", "b0", "b1"]  # A committed first: its rows come first


def _until_waiting_or_done(reader: PgStore, writer: PgStore, done: threading.Event) -> None:
    """Until B waits for a lock held by A's open transaction (or, if nothing makes it wait, has finished)."""
    pid = writer.db.info.backend_pid
    for _ in range(6000):
        if done.is_set() or reader.db.execute(
                "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()[0]:
            return
        time.sleep(0.01)


def test_lead_inputs_of_a_partition_hold_only_its_own_ticks(pg_server):
    """`explain` replays a lead with the ticks of the writer that owned it, not another writer's."""
    db = pg_server.create_schema("coltiva", "ticks")
    mine, theirs = Partition(0, 2), Partition(1, 2)
    lead = next(f"L{k}" for k in range(100) if mine.owns(f"L{k}"))
    cj, sources = example(DEMAND)
    for part, at in ((mine, T0 + 10), (theirs, T0 + 20)):
        with PgStore(db, partition=part) as store:
            store.register(cj, sources)
            store.write_batch(inputs=[("tick", None, None, at, None, json.dumps([cj.name]))])
    with PgStore(db) as store:
        ticks = [time for kind, time, _, _ in store.lead_inputs(lead) if kind == "tick"]
    assert ticks == [T0 + 10]


def test_reading_commands_read_a_postgresql_store(workload, pg_server):
    db = pg_server.create_schema("coltiva", "cli_read")
    _coltiva("run", DEMAND, "--events", workload, "--db", db, "--batch", "1000")
    with open_store(db) as store:
        expected = [action for _, action in store.actions()]
    lines = _coltiva("actions", "--db", db).stdout.splitlines()
    assert [{k: v for k, v in json.loads(x).items() if k != "seq"} for x in lines] == expected
    positions = [json.loads(x)["seq"] for x in lines]
    after = _coltiva("actions", "--db", db, "--after", positions[9]).stdout.splitlines()
    assert after == lines[10:]
    assert "shown_interest" in _coltiva("leads", "--db", db).stdout
    refused = _coltiva("run", DEMAND, "--events", workload, "--db", f"{tempfile.gettempdir()}/x.db",
                       "--partition", "0/2", check=False)
    assert refused.returncode != 0 and "postgresql://" in refused.stderr and "Traceback" not in refused.stderr


def test_a_reader_never_writes(pg_server):
    db = pg_server.create_schema("coltiva", "reader")
    PgStore(db).close()
    with PgStore(db, read_only=True) as reader:
        with pytest.raises(StoreError, match="read-only"):
            reader.write_batch(quarantine=[("x", 1, "why", "raw")])


def test_a_schema_of_other_tables_or_another_format_is_refused(pg_server):
    import psycopg

    other = pg_server.create_schema("coltiva", "not_ours")
    with psycopg.connect(other, autocommit=True) as conn:
        conn.execute("CREATE TABLE outbox (id int)")
    with pytest.raises(StoreError, match="not a Coltiva store"):
        PgStore(other)
    newer = pg_server.create_schema("coltiva", "newer")
    PgStore(newer).close()
    with psycopg.connect(newer, autocommit=True) as conn:
        conn.execute("UPDATE coltiva_meta SET value = '99' WHERE key = 'format'")
    with pytest.raises(StoreError, match="store format 99"):
        PgStore(newer)
    missing = pg_server.url("coltiva", "no_such_schema")
    with pytest.raises(StoreError, match="no schema"):
        PgStore(missing)


def test_text_postgresql_cannot_hold(pg_server):
    """A NUL in a quarantined line is kept as U+FFFD; an event id seen with two leads of two writers fails
    the second writer's batch with a message, never silently."""
    db = pg_server.create_schema("coltiva", "nul")
    with PgStore(db) as store:
        store.write_batch(quarantine=[("in", 1, "not valid JSON", "{\x00}")])
        assert [raw for *_, raw in store.quarantined()] == ["{\ufffd}"]
    first, second = (next(f"L{k}" for k in range(100) if owner(f"L{k}", 2) == part) for part in (0, 1))
    row = ("event", "same-id", None, T0, "{}", "[]")
    with PgStore(db, partition=Partition(0, 2)) as a, PgStore(db, partition=Partition(1, 2)) as b:
        a.write_batch(inputs=[(*row[:2], first, *row[3:])])
        with pytest.raises(StoreError, match="same lead"):
            b.write_batch(inputs=[(*row[:2], second, *row[3:])])


@pytest.mark.parametrize("policy", ["migrate", "drain"])
def test_plan_apply_and_explain_agree_on_both_stores(tmp_path, pg_server, policy):
    """A live change made on PostgreSQL gives the SQLite store's plan, records, actions and explanations."""
    from engine.explain import explain_lead
    from engine.plan import apply_plan, make_plan

    from .live_helpers import V1_TEXT, V2_TEXT, compiled, halves

    before, after, cut = halves(30, 60, 4)
    v1, v2 = compiled(V1_TEXT), compiled(V2_TEXT)
    results = []
    for db in (tmp_path / "live.db", pg_server.create_schema("coltiva", f"live_{policy}")):
        run_store(db, [v1], before)
        with open_store(db, read_only=True) as reader:
            shown = make_plan(reader, v2[0], policy, cut)
        with open_store(db, writer=True) as store:
            done = apply_plan(store, v2[0], v2[1], policy, shown.hash, cut)
        run_store(db, [v2], after)
        with open_store(db) as store:
            leads = sorted({lead for _, lead, *_ in store.dump()["leads"]})[:5]
            why = [(e.journey, e.consistent, len(e.steps)) for lead in leads for e in explain_lead(store, lead)]
            history = [(r.version, r.policy, r.leads) for r in store.history(v1[0].name)]
        results.append((shown.hash == done.hash, dump(db), why, history))
    assert results[0][0] and results[1][0]
    assert results[1][1:] == results[0][1:]
    assert all(consistent for _, consistent, _ in results[1][2])


def test_render_counts_and_a_bad_address_on_postgresql(workload, pg_server, tmp_path):
    db = pg_server.create_schema("coltiva", "render")
    _coltiva("run", DEMAND, "--events", workload, "--db", db, "--batch", "2000")
    _coltiva("render", DEMAND, "-o", tmp_path / "live.svg", "--db", db)
    assert "<svg" in (tmp_path / "live.svg").read_text(encoding="utf-8")
    for bad in (f"postgresql://postgres:s3cret@/coltiva?host={tmp_path}/nowhere", "postgresql://[::1"):
        done = _coltiva("leads", "--db", bad, check=False)
        assert done.returncode != 0 and "Traceback" not in done.stderr, done.stderr
        assert "s3cret" not in done.stderr  # messages name the store without its password
        assert "cannot connect" in done.stderr or "not a PostgreSQL address" in done.stderr, done.stderr


def test_a_batch_that_fails_midway_by_copy_leaves_nothing_and_a_retry_equals_sqlite(workload, pg_server, tmp_path,
                                                                                     monkeypatch):
    """A large batch (COPY) fails after its records went in and before its outbox rows: the transaction
    leaves nothing, the load table it made goes with it, and the same run again gives SQLite's store."""
    from engine.runner import Runner

    lines = workload.read_text(encoding="utf-8").splitlines()[:1500]
    cj, sources = example(DEMAND)
    db = pg_server.create_schema("coltiva", "copy_fails")
    real = PgStore._copy

    def failing(self, cur, table, columns, rows):
        if table == "outbox":
            raise OSError("connection lost mid-COPY")
        return real(self, cur, table, columns, rows)

    with PgStore(db, writer=True) as store:
        store.register(cj, sources)
        monkeypatch.setattr(PgStore, "_copy", failing)
        with pytest.raises(OSError):
            Runner(store, [cj], 1000).run_lines(lines, "events.jsonl")
        assert store.dump()["leads"] == [] and store.dump()["outbox"] == []
        monkeypatch.setattr(PgStore, "_copy", real)
        Runner(store, [cj], 1000).run_lines(lines, "events.jsonl")  # the same connection: its load table is made again
    sqlite = tmp_path / "ref.db"
    run_store(sqlite, [(cj, sources)], lines, batch=1000)
    assert dump(db) == dump(sqlite)


def test_a_committed_batch_survives_a_crash_of_the_server_even_where_commits_are_asynchronous():
    """docs/scaling.md, *Durability*: a batch PgStore committed is in the write-ahead log the operating system
    holds, as an SQLite commit is in its WAL file, even on a server whose default is `synchronous_commit = off`
    (a commit there returns before its WAL is written; the WAL writer would write it 10 s later)."""
    from bench.pgserver import PgServer

    with PgServer(settings="-c synchronous_commit=off -c wal_writer_delay=10000") as server:
        server.create_database("crash")
        db = server.create_schema("crash", "store")
        with PgStore(db, writer=True) as store:
            store.write_batch(quarantine=[("in", 1, "not valid JSON", "{")])
        server.crash_and_restart()
        with PgStore(db, read_only=True) as store:
            assert [raw for *_, raw in store.quarantined()] == ["{"]


@pytest.mark.parametrize("batch", [10, 5000])  # below COPY_FROM rows per table (pipeline), and far above (COPY)
def test_lead_wide_records_of_a_batch_equal_sqlites_in_pipeline_and_by_copy(tmp_path, pg_server, batch):
    """Under lead-wide rules each batch upserts the lead-wide records it changed (`lead_wide`): 150 leads in
    two journeys, with scores and a cap across journeys, give SQLite's store whichever way the rows travel."""
    from .test_lead_wide import run, welcome

    journeys = [welcome("alpha", "a-mail", 2), welcome("beta", "b-mail", 1)]
    lines = [line(f"f{n}", "form.submitted", T0 + n, lead=f"L{n:03d}") for n in range(150)]
    lines += [line(f"c{n}", "email.clicked", T0 + 500 + n, lead=f"L{n:03d}") for n in range(0, 150, 2)]
    pg = pg_server.create_schema("coltiva", f"lead_wide_{batch}")
    results = [run(db, journeys, lines, tick=T0 + 3 * 86_400, batch=batch) for db in (tmp_path / "s.db", pg)]
    assert len(results[0][1]["lead_wide"]) == 150
    assert results[1] == results[0]
