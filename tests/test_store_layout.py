"""Store format 4: an input log appended at its end only, a bounded duplicate window, old stores migrated.

The fixture tests/fixtures/store_v3.db was written by format 3 (the commit before
format 4): the six-stage example run on tests/fixtures/store_v1.events.jsonl, a
tick, a changed version applied with `--policy migrate` (a switch in the log),
three more events (one a duplicate) and a second tick.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.explain import explain_lead
from engine.runner import Runner
from engine.store import DEDUPE_WINDOW, SCHEMA_VERSION, Store

from .engine_helpers import DAY, T0, iso, journey

FIXTURES = Path(__file__).parent / "fixtures"
V3 = FIXTURES / "store_v3.db"
V1_EVENTS = FIXTURES / "store_v1.events.jsonl"

SMALL = journey('''journey "window"

stage a "A"
  initial
  send email "hi" on entry
  on go -> b

stage b "B"
  send email "bye" on entry
  on go -> a
  on stop -> done

stage done "Done"
  final
''')
FAST = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def v3_copy(tmp_path) -> Path:
    path = tmp_path / "v3.db"
    shutil.copy(V3, path)
    return path


def go(event_id: str, lead: str = "L1", t: int = T0) -> str:
    return json.dumps({"id": event_id, "lead": lead, "type": "go", "time": iso(t)})


def explained(path, leads) -> dict:
    with Store(path, read_only=True) as store:
        return {lead: [(x.journey, x.version, x.steps, x.stored, x.replayed, x.consistent)
                       for x in explain_lead(store, lead)] for lead in leads}


def all_leads(path) -> list[str]:
    with Store(path, read_only=True) as store:
        return [lead for (lead,) in store.db.execute("SELECT DISTINCT lead FROM leads ORDER BY lead")]


def indexes(db, table: str) -> dict[str, bool]:
    """Index name -> partial, of a table."""
    return {name: bool(partial) for _, name, _, _, partial in db.execute(f"PRAGMA index_list({table})")}


# -- the old format opens and migrates -------------------------------------------------------------

def test_the_fixture_is_format_3_with_its_random_order_indexes():
    con = sqlite3.connect(f"file:{V3}?mode=ro&immutable=1", uri=True)
    try:
        assert con.execute("PRAGMA user_version").fetchone()[0] == 3
        found = indexes(con, "inputs")
        assert "inputs_by_lead" in found and any(name.startswith("sqlite_autoindex_inputs") for name in found)
        assert {kind for (kind,) in con.execute("SELECT DISTINCT kind FROM inputs")} == {"event", "tick", "switch"}
    finally:
        con.close()


def test_a_writer_migrates_format_3_keeping_every_meaning_and_every_explanation(tmp_path):
    path = v3_copy(tmp_path)
    leads = all_leads(path)
    with Store(path, read_only=True) as store:  # a reader reads format 3 as it is
        assert store.format == 3
        before, inputs_before = store.dump(), {lead: store.lead_inputs(lead) for lead in leads}
    explanations = explained(path, leads)
    assert all(c for rows in explanations.values() for *_, c in rows)
    with Store(path, writer=True) as store:
        assert store.format == SCHEMA_VERSION == 6
        assert store.dump() == before
        assert {lead: store.lead_inputs(lead) for lead in leads} == inputs_before
        assert indexes(store.db, "inputs") == {"inputs_global": True}  # no index in random order left
    assert explained(path, leads) == explanations


def test_a_migrated_store_still_knows_its_ids_and_runs_on(tmp_path):
    path = v3_copy(tmp_path)
    with Store(path, writer=True) as store:
        (cj,) = store.journeys()
        runner = Runner(store, [cj])
        again = runner.run_lines(V1_EVENTS.read_text().splitlines(), "again")
        assert again.applied == 0 and again.duplicates > 250
        fresh = runner.run_lines([json.dumps({"id": "after-4", "lead": "lead-0003", "type": "email.clicked",
                                              "time": "2026-03-02T10:00:00Z"})], "more")
        assert fresh.applied == 1
    (row,) = [x for x in explained(path, ["lead-0003"])["lead-0003"]]
    assert row[-1] and any("email.clicked" in json.dumps(step) for step in row[2])


def test_a_failed_migration_leaves_the_old_format_whole(tmp_path):
    path = v3_copy(tmp_path)
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE lead_log (lead TEXT)")  # in the way of the migration's own table
    con.commit()
    con.close()
    with pytest.raises(sqlite3.Error):
        Store(path, writer=True)
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA user_version").fetchone()[0] == 3
    assert "inputs_by_lead" in indexes(con, "inputs")
    con.close()


def format_5(path) -> None:
    """Turn a store into format 5 as it was: the same tables, the outbox with its unique index on the key."""
    con = sqlite3.connect(path)
    con.executescript("""
        ALTER TABLE outbox RENAME TO outbox_now;
        CREATE TABLE outbox (seq INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, journey TEXT NOT NULL,
            version TEXT NOT NULL, lead TEXT NOT NULL, kind TEXT NOT NULL, time INTEGER NOT NULL, data TEXT NOT NULL);
        INSERT INTO outbox SELECT * FROM outbox_now;
        DROP TABLE outbox_now;
        PRAGMA user_version = 5;
    """)
    con.close()


def lines_of(start: int, stop: int) -> list[str]:
    return [go(f"e{i}", f"L{i % 7}", T0 + i * 3600) for i in range(start, stop)]


def test_a_writer_migrates_format_5_to_an_outbox_without_a_key_index_and_runs_on_as_if_it_never_stopped(tmp_path):
    old, fresh = tmp_path / "old.db", tmp_path / "fresh.db"
    for path in (old, fresh):
        with Store(path) as store:
            store.register(SMALL, {})
            Runner(store, [SMALL]).run_lines(lines_of(0, 40))
    format_5(old)
    with Store(old, read_only=True) as store:  # a reader reads format 5 as it is
        assert store.format == 5 and any(unique for _, _, unique, *_ in store.db.execute("PRAGMA index_list(outbox)"))
        before = store.dump()
        actions_before = list(store.actions())
    assert actions_before and len({a["key"] for _, a in actions_before}) == len(actions_before)
    with Store(old, writer=True) as store:
        assert store.format == SCHEMA_VERSION == 6
        assert indexes(store.db, "outbox") == {}  # the outbox is appended in order and read by position only
        assert store.dump() == before and list(store.actions()) == actions_before  # positions kept
    for path in (old, fresh):
        with Store(path) as store:
            Runner(store, [SMALL]).run_lines(lines_of(40, 80))
            Runner(store, [SMALL]).tick(T0 + 30 * DAY)
    with Store(old, read_only=True) as a, Store(fresh, read_only=True) as b:
        assert a.dump() == b.dump()


def test_a_failed_migration_to_format_6_leaves_format_5_whole(tmp_path):
    path = tmp_path / "s.db"
    with Store(path) as store:
        store.register(SMALL, {})
        Runner(store, [SMALL]).run_lines(lines_of(0, 10))
    format_5(path)
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE outbox_format5 (x)")  # in the way of the migration's own copy
    con.commit()
    con.close()
    with pytest.raises(sqlite3.Error):
        Store(path, writer=True)
    with Store(path, read_only=True) as store:
        assert store.format == 5 and len(list(store.actions())) > 0
        assert any(unique for _, _, unique, *_ in store.db.execute("PRAGMA index_list(outbox)"))


def test_a_step_writes_its_record_without_touching_the_version_index_a_switch_moves_it(tmp_path):
    """A batch upserts state, due and record only: a lead stays on its version (docs/decisions.md,
    "Store format 6"); only a switch of version writes the version."""
    from engine.store import LEADS_STEPPED, LEADS_SWITCHED

    assert "version = excluded.version" not in LEADS_STEPPED and "version = excluded.version" in LEADS_SWITCHED
    with Store(tmp_path / "s.db") as store:
        store.register(SMALL, {})
        Runner(store, [SMALL]).run_lines(lines_of(0, 10))
        store.db.execute("UPDATE leads SET version = 'old' WHERE lead = 'L1'")  # as a lead drained on an old one
        rows = [("window", "L1", SMALL.version, "b", None, "[]")]
        store.write_batch(lead_rows=rows)
        assert store.db.execute("SELECT version, state FROM leads WHERE lead = 'L1'").fetchone() == ("old", "b")


# -- the layout ------------------------------------------------------------------------------------

def test_the_hot_path_and_explain_never_scan_or_index_the_log_out_of_order(tmp_path):
    with Store(tmp_path / "s.db") as store:
        store.register(SMALL, {})
        Runner(store, [SMALL]).run_lines([go(f"e{i}", f"L{i % 3}", T0 + i) for i in range(20)])
        Runner(store, [SMALL]).tick(T0 + DAY)
        assert indexes(store.db, "inputs") == {"inputs_global": True}
        plans = {sql: " | ".join(row[3] for row in store.db.execute("EXPLAIN QUERY PLAN " + sql, args))
                 for sql, args in (
                     ("SELECT last FROM lead_log WHERE lead = ?", ("L1",)),
                     ("SELECT seq, kind, time, event, journeys, prev FROM inputs WHERE seq = ?", (3,)),
                     ("SELECT seq, kind, time, event, journeys FROM inputs WHERE lead IS NULL ORDER BY seq", ()),
                     ("SELECT MAX(time) FROM inputs WHERE lead IS NULL AND kind = 'tick'", ()),
                     ("SELECT COALESCE(MAX(seq), 0) FROM inputs", ()),
                     ("SELECT seq, event_id FROM inputs WHERE seq > ? AND event_id IS NOT NULL ORDER BY seq", (5,)))}
        for sql, plan in plans.items():  # a search by key, or the partial index of the few inputs of no lead
            assert plan.startswith("SEARCH") or plan == "SCAN inputs USING INDEX inputs_global", (sql, plan)


@FAST
@given(st.lists(st.tuples(st.integers(0, 4), st.booleans()), max_size=40), st.integers(1, 7))
def test_each_leads_chain_is_exactly_its_inputs_and_the_global_ones(tmp_path_factory, steps, batch):
    path = tmp_path_factory.mktemp("chain") / "s.db"
    with Store(path) as store:
        store.register(SMALL, {})
        runner = Runner(store, [SMALL], batch_size=batch)
        for i, (lead, tick) in enumerate(steps):
            if tick:
                runner.tick(T0 + i)
            else:
                runner.run_lines([go(f"e{i}", f"L{lead}", T0 + i)])
        for lead in [f"L{k}" for k in range(5)]:
            expected = [(kind, time, event, json.loads(reached)) for kind, time, event, reached in store.db.execute(
                "SELECT kind, time, event, journeys FROM inputs WHERE lead = ? OR lead IS NULL ORDER BY seq", (lead,))]
            assert store.lead_inputs(lead) == expected


# -- the duplicate window --------------------------------------------------------------------------

def test_the_window_is_the_documented_million():
    assert DEDUPE_WINDOW == 1_000_000
    docs = (Path(__file__).parent.parent / "docs")
    for page in ("engine.md", "events.md"):
        assert "last 1,000,000 entries" in (docs / page).read_text().replace("**", ""), page


@pytest.mark.parametrize("batch", [1, 2, 100])
def test_an_id_exactly_at_the_windows_edge_is_a_duplicate_one_entry_further_it_is_not(tmp_path, batch):
    """Window 3: `x` then two others, then `x` again: x is the 3rd entry back, a duplicate. With three
    others in between, it is the 4th entry back: applied again (a second entry in the log)."""
    def applied(lines) -> list[str]:
        path = tmp_path / f"w{len(lines)}-{batch}.db"
        with Store(path, dedupe_window=3) as store:
            store.register(SMALL, {})
            Runner(store, [SMALL], batch_size=batch).run_lines(lines)
            return [i for (i,) in store.db.execute("SELECT event_id FROM inputs ORDER BY seq")]

    inside = [go("x", "L1", T0), go("a", "L2", T0 + 1), go("b", "L3", T0 + 2), go("x", "L1", T0 + 3)]
    assert applied(inside) == ["x", "a", "b"]
    outside = [go("x", "L1", T0), go("a", "L2", T0 + 1), go("b", "L3", T0 + 2), go("c", "L4", T0 + 3),
               go("x", "L1", T0 + 4)]
    assert applied(outside) == ["x", "a", "b", "c", "x"]


def test_ticks_take_entries_of_the_window_and_the_window_survives_a_restart(tmp_path):
    path = tmp_path / "s.db"
    with Store(path, dedupe_window=3) as store:
        store.register(SMALL, {})
        runner = Runner(store, [SMALL])
        runner.run_lines([go("x", "L1", T0), go("a", "L2", T0 + 1)])
        runner.tick(T0 + 2)  # the third entry
    with Store(path, dedupe_window=3) as store:  # a new process reads the window from the log's end
        assert store.seen(["x", "a", "zz"]) == {"x", "a"}
        runner = Runner(store, [SMALL])
        assert runner.run_lines([go("x", "L1", T0 + 3)]).duplicates == 1
        runner.tick(T0 + 4)  # x is now the 4th entry back
        assert store.seen(["x", "a"]) == {"a"}
        assert runner.run_lines([go("x", "L1", T0 + 5)]).applied == 1


@FAST
@given(st.lists(st.sampled_from("abcdef"), max_size=30), st.integers(1, 5), st.integers(1, 8))
def test_duplicates_follow_the_window_rule_whatever_the_batch(tmp_path_factory, ids, window, batch):
    """The rule, as a model: an event is a duplicate when its id is among the last `window` log entries."""
    log: list[str] = []
    for i in ids:
        if i not in log[-window:]:
            log.append(i)
    path = tmp_path_factory.mktemp("w") / "s.db"
    with Store(path, dedupe_window=window) as store:
        store.register(SMALL, {})
        summary = Runner(store, [SMALL], batch_size=batch).run_lines(
            [go(i, f"L{n % 3}", T0 + n) for n, i in enumerate(ids)])
        assert [i for (i,) in store.db.execute("SELECT event_id FROM inputs ORDER BY seq")] == log
        assert summary.duplicates == len(ids) - len(log)


# -- the writer's connection ----------------------------------------------------------------------------

def test_a_writer_keeps_the_documented_commit_with_a_larger_cache_and_rarer_checkpoints(tmp_path):
    """WAL and synchronous=NORMAL (docs/scaling.md, "Durability"); the cache and the checkpoint interval are speed
    only (docs/decisions.md, "SQLite's cache and checkpoints"); a reader is left with SQLite's defaults."""
    from engine.store import CHECKPOINT_PAGES, WRITER_CACHE_KIB

    with Store(tmp_path / "s.db", writer=True) as store:
        pragma = lambda name: store.db.execute(f"PRAGMA {name}").fetchone()[0]  # noqa: E731
        assert (pragma("journal_mode"), pragma("synchronous")) == ("wal", 1)
        assert (pragma("cache_size"), pragma("wal_autocheckpoint")) == (-WRITER_CACHE_KIB, CHECKPOINT_PAGES)
        store.register(SMALL, {})
    assert WRITER_CACHE_KIB >= 32_768 and CHECKPOINT_PAGES >= 5_000
    with Store(tmp_path / "s.db", read_only=True) as store:
        assert store.db.execute("PRAGMA cache_size").fetchone()[0] == -2000
    docs = (Path(__file__).parent.parent / "docs" / "decisions.md").read_text()
    assert "SQLite's cache and checkpoints" in docs and f"{WRITER_CACHE_KIB // 1024} MiB" in docs
