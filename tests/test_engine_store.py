"""Runner and store: duplicates, quarantine, ticks that touch only due leads, changed journeys, several journeys."""

from __future__ import annotations

import json

import pytest

from dsl.errors import StoreError
from dsl.loader import load_text
from engine.compiler import compile_journey
from engine.record import Lead
from engine.runner import Runner
from engine.pgstore import PgStore
from engine.store import Store
from engine.stores import LeadStore, open_store

from .engine_helpers import DAY, HOUR, T0, dump, line, run_store, tick_store

TEXT = '''journey "store-test"

exit on email.unsubscribed

scoring
  email.opened +1

stage a "A"
  initial
  send email "hello" on entry
  send email "later" after 1 day
  on go -> b

stage b "B"
  send email "b-hello" on entry
  after 2 days idle -> c

stage c "C"
  final
'''


def compiled(text=TEXT):
    loaded = load_text(text)
    assert loaded.ok, [str(d) for d in loaded.diagnostics]
    return compile_journey(loaded.journey, loaded.diagnostics), {"<string>": text}


def test_seen_event_id_changes_nothing(store_at):
    db = store_at("s")
    cj = compiled()
    lines = [line("e1", "email.opened", T0, lead="A"), line("e2", "go", T0 + HOUR, lead="A"),
             line("e3", "email.opened", T0 + 2 * HOUR, lead="B")]
    s1 = run_store(db, [cj], lines)
    assert s1.applied == 3 and s1.duplicates == 0
    before = dump(db)
    s2 = run_store(db, [cj], lines)
    assert s2.applied == 0 and s2.duplicates == 3
    assert dump(db) == before
    # the same id with another payload is still the same event: ignored
    s3 = run_store(db, [cj], [line("e2", "email.unsubscribed", T0 + 3 * HOUR, lead="A")])
    assert s3.duplicates == 1 and dump(db) == before


def test_duplicate_inside_one_batch_is_ignored(store_at):
    cj = compiled()
    once = [line("e1", "email.opened", T0), line("e2", "go", T0 + HOUR)]
    twice = [once[0], once[0], once[1], once[0], once[1]]
    a, b = store_at("a"), store_at("b")
    run_store(a, [cj], once)
    summary = run_store(b, [cj], twice)
    assert summary.duplicates == 3
    assert dump(a) == dump(b)


def test_malformed_lines_are_quarantined_with_reason_and_line_number(store_at):
    db = store_at("q")
    cj = compiled()
    lines = [
        line("e1", "email.opened", T0),                                                  # 1 good
        '{"id": "x1", "lead": "L1", "type": "email.opened"',                             # 2 bad JSON
        '{"id": "x2", "type": "email.opened", "time": "2026-01-01T00:00:00Z"}',          # 3 no lead
        '{"id": "x3", "lead": "L1", "type": "email.opend", "time": "2026-01-01T00:00:00Z"}',  # 4 unknown type
        '{"id": "x4", "lead": "L1", "type": "email.opened", "time": "yesterday"}',       # 5 bad time
        '["not", "an", "object"]',                                                       # 6 not an object
        '{"id": "x5", "lead": "L1", "type": "email.opened", "time": "2026-01-01T00:00:00"}',  # 7 no zone
        line("e2", "go", T0 + HOUR),                                                     # 8 good
    ]
    summary = run_store(db, [cj], lines, batch=3, source="in.jsonl")
    assert summary.quarantined == 6 and summary.applied == 2
    with open_store(db) as store:
        rows = list(store.quarantined())
        state = store.lead_journeys("L1")[0][1].state
    assert [(source, n) for _, source, n, _, _ in rows] == [("in.jsonl", n) for n in (2, 3, 4, 5, 6, 7)]
    reasons = {n: reason for _, _, n, reason, _ in rows}
    assert "JSON" in reasons[2]
    assert "lead" in reasons[3]
    assert "email.opend" in reasons[4] and "email.opened" in reasons[4]  # did you mean
    assert "yesterday" in reasons[5]
    assert "object" in reasons[6]
    assert "zone" in reasons[7]
    assert [raw for *_, raw in rows] == lines[1:7]
    assert state == "b"  # the run went on past the bad lines


def test_tick_touches_only_leads_with_something_due(store_at, monkeypatch):
    db = store_at("t")
    cj = compiled()
    # early: "later" due at T0+1d; late: enrolled at T0+10d, "later" due at T0+11d
    run_store(db, [cj], [line("e1", "email.opened", T0, lead="early"),
                         line("e2", "email.opened", T0 + 10 * DAY, lead="late")])
    before = dump(db)
    read = []
    kind = PgStore if isinstance(db, str) else Store
    original_due, original_load = kind.due_leads, kind.load_leads

    def spy_due(self, now):  # a tick reads lead records only through this one indexed query
        rows = original_due(self, now)
        read.extend(row[1] for row in rows)
        return rows

    def spy_load(self, journey, leads):
        read.extend(leads)
        return original_load(self, journey, leads)

    monkeypatch.setattr(kind, "due_leads", spy_due)
    monkeypatch.setattr(kind, "load_leads", spy_load)
    with open_store(db) as store:
        changes = _rows_written(store)
        summary = Runner(store, store.journeys()).tick(T0 + 2 * DAY)
        written = _rows_written(store) - changes
    assert read == ["early"]
    assert summary.ticked_leads == 1
    after = dump(db)
    late_before = [r for r in before["leads"] if r[1] == "late"]
    assert [r for r in after["leads"] if r[1] == "late"] == late_before
    # rows written: 1 tick input + 1 lead + 1 outbox action ("later")
    assert written == 3
    assert [json.loads(a)["content"] for *_, a in after["outbox"][len(before["outbox"]):]] == ["later"]
    # a tick with nothing due reads and writes no lead
    read.clear()
    with open_store(db) as store:
        summary = Runner(store, store.journeys()).tick(T0 + 2 * DAY + 1)
    assert read == [] and summary.ticked_leads == 0


def _rows_written(store) -> int:
    """Rows inserted, updated or deleted so far: SQLite's own counter, or PostgreSQL's statistics."""
    if isinstance(store, Store):
        return store.db.total_changes
    store.db.execute("SELECT pg_stat_force_next_flush()")  # this session's counts, published when it idles
    store.db.execute("SELECT pg_stat_clear_snapshot()")
    return store.db.execute("SELECT COALESCE(SUM(n_tup_ins + n_tup_upd + n_tup_del), 0) FROM pg_stat_user_tables "
                            "WHERE schemaname = current_schema()").fetchone()[0]


def test_changed_journey_with_leads_in_it_is_refused(store_at):
    db = store_at("c")
    run_store(db, [compiled()], [line("e1", "email.opened", T0)])
    changed = TEXT.replace('send email "later" after 1 day', 'send email "later" after 3 days')
    cj2, sources2 = compiled(changed)
    with open_store(db) as store:
        with pytest.raises(StoreError) as info:
            store.register(cj2, sources2)
    message = str(info.value)
    assert "store-test" in message and "changed" in message
    assert "after 3 days" in message and "after 1 day" in message
    # the same journey again is fine, and nothing changed
    before = dump(db)
    run_store(db, [compiled()], [])
    assert dump(db) == before


def test_changed_journey_without_leads_is_accepted(store_at):
    db = store_at("n")
    with open_store(db) as store:
        store.register(*compiled())
        changed = TEXT.replace("after 2 days idle", "after 4 days idle")
        cj2, sources2 = compiled(changed)
        store.register(cj2, sources2)
        assert [j.version for j in store.journeys()] == [cj2.version]


OTHER = '''journey "other-journey"

stage x "X"
  initial
  send email "x-hello" on entry
  on go -> y

stage y "Y"
  final
'''


def test_store_holds_several_journeys_and_a_lead_can_be_in_several(store_at):
    db = store_at("m")
    one, two = compiled(), compiled(OTHER)
    run_store(db, [one, two], [line("e1", "email.opened", T0), line("e2", "go", T0 + HOUR)])
    with open_store(db) as store:
        names = sorted(j.name for j in store.journeys())
        records = dict(store.lead_journeys("L1"))
        counts = store.stage_counts()
    assert names == ["other-journey", "store-test"]
    assert records["store-test"].state == "b" and records["other-journey"].state == "y"
    assert counts == {"store-test": {"b": 1}, "other-journey": {"y": 1}}
    tick_store(db, T0 + 10 * DAY)
    with open_store(db) as store:
        records = dict(store.lead_journeys("L1"))
    assert records["store-test"].state == "c" and records["other-journey"].state == "y"


def test_record_round_trips_through_the_store(store_at):
    db = store_at("r")
    run_store(db, [compiled()], [line("e1", "email.opened", T0), line("e2", "email.opened", T0 + 5)])
    with open_store(db) as store:
        assert isinstance(store, LeadStore)  # both stores have every method of the interface
        rec = store.lead_journeys("L1")[0][1]
    assert Lead.from_list(json.loads(json.dumps(rec.to_list()))) == rec
    assert rec.score == 2.0


def test_explain_is_consistent_for_a_journey_added_to_the_store_later(store_at):
    """Events applied before a journey was registered never reached it; replay must not feed them to it."""
    from engine.explain import explain_lead

    db = store_at("later")
    run_store(db, [compiled()], [line("e1", "email.opened", T0), line("e2", "go", T0 + HOUR)])
    run_store(db, [compiled(), compiled(OTHER)], [line("e3", "email.opened", T0 + 2 * HOUR)])
    with open_store(db) as store:
        records = dict(store.lead_journeys("L1"))
        explanations = {e.journey: e for e in explain_lead(store, "L1")}
    assert records["other-journey"].state == "x"  # only e3 reached it: no `go` yet
    assert explanations["store-test"].consistent
    other = explanations["other-journey"]
    assert other.consistent, f"stored {other.stored}, replayed {other.replayed}"
