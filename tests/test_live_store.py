"""Live journeys on a real store: drain equals the old version alone, migrate replays exactly, the plan is the change."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.explain import explain_lead
from engine.migrate import switch_lead
from engine.plan import make_plan
from engine.record import DONE, WAITING
from engine.step import advance
from engine.store import Store

from .engine_helpers import DAY
from .live_helpers import V1_TEXT, V2_TEXT, apply, compiled, halves, meaning, replay_store, run, tick

V1 = compiled(V1_TEXT)
V2 = compiled(V2_TEXT)
SETTINGS = settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
seeds = st.integers(0, 10_000)


def launched(tmp_path_factory, name: str, seed: int, leads: int = 20):
    """A store that ran the first half of a sample on V1: (its path, the second half, the instant between)."""
    db = tmp_path_factory.mktemp(name) / "s.db"
    before, after, cut = halves(leads, 60, seed)
    run(db, [V1], before)
    return db, after, cut


def in_flight(db) -> dict[str, list]:
    with Store(db, read_only=True) as store:
        return {lead: s.record.to_list() for lead, s in store.leads_of(V1[0].name)
                if s.record.state not in DONE and s.record.state != WAITING}


def records(db) -> dict[str, tuple]:
    with Store(db, read_only=True) as store:
        return {lead: (s.version, s.record.to_list()) for lead, s in store.leads_of(V1[0].name)}


def actions_of(db, leads) -> dict[str, list]:
    out: dict[str, list] = {lead: [] for lead in leads}
    with Store(db, read_only=True) as store:
        for _, a in store.actions():
            if a["lead"] in out:
                out[a["lead"]].append(a)
    return out


@SETTINGS
@given(seed=seeds)
def test_drain_gives_the_leads_in_flight_exactly_the_old_version_run_alone(tmp_path_factory, seed):
    tmp = tmp_path_factory.mktemp("drain")
    before, after, cut = halves(20, 60, seed)
    drained, alone = tmp / "drained.db", tmp / "alone.db"
    for db in (drained, alone):
        run(db, [V1], before)
        tick(db, cut)
    flying = in_flight(drained)
    existing = set(records(drained))
    apply(drained, V2, "drain")
    for db in (drained, alone):
        run(db, [V1], after) if db == alone else run(db, [V2], after)
        tick(db, cut + 90 * DAY)
    got, want = records(drained), records(alone)
    for lead in flying:
        assert got[lead] == want[lead], lead
    assert actions_of(drained, flying) == actions_of(alone, flying)
    # the leads that came after the switch entered the new version
    assert all(got[lead][0] == V2[0].version for lead in set(got) - existing)


@settings(SETTINGS, max_examples=5)
@given(seed=seeds)
def test_after_migrate_replaying_the_input_log_gives_the_identical_store(tmp_path_factory, seed):
    live, after, cut = launched(tmp_path_factory, "migrate", seed)
    tick(live, cut)
    apply(live, V2, "migrate")
    run(live, [V2], after)
    tick(live, cut + 90 * DAY)
    apply(live, V1, "migrate")  # and back: a rollback is one more switch
    tick(live, cut + 200 * DAY)
    again = live.parent / "again.db"
    replay_store(live, again)
    assert meaning(again) == meaning(live)
    with Store(live, read_only=True) as store:
        leads = [lead for lead, _ in store.leads_of(V1[0].name)]
        for lead in leads[:10]:
            (explanation,) = explain_lead(store, lead)
            assert explanation.consistent, lead


@SETTINGS
@given(seed=seeds)
def test_an_edit_of_layout_comments_and_labels_is_a_no_op_for_every_lead(tmp_path_factory, seed):
    db, _, _ = launched(tmp_path_factory, "noop", seed)
    cosmetic = compiled("# reworded\n" + V1_TEXT.replace('"Shown interest"', '"Interested"')
                        .replace("  initial\n", "  initial   # start here\n").replace("\n\n", "\n\n\n"))
    assert cosmetic[0].version != V1[0].version
    old, new = V1[0], cosmetic[0]
    with Store(db, read_only=True) as store:
        plan = make_plan(store, new, "migrate")
        stored = dict(store.leads_of(old.name))
    assert plan.leads == len(stored) > 0
    assert not plan.added and not plan.cancelled and not plan.retimed and not plan.refusals
    assert plan.switch_actions == {} and plan.at_once == 0
    assert all(m.source == m.target for m in plan.moves)
    for lead, rec in plan.records.items():
        caught, _ = advance(old, stored[lead].record, lead, plan.at)
        assert rec == caught, lead  # exactly the record the old version has at that instant
        again, actions = switch_lead(old, new, caught, lead, plan.at)
        assert again == caught and actions == []


@SETTINGS
@given(seed=seeds)
def test_the_plan_applied_is_the_plan_shown(tmp_path_factory, seed):
    db, _, cut = launched(tmp_path_factory, "shown", seed)
    outbox_before = len(meaning(db)["outbox"])
    shown, done = apply(db, V2, "migrate", cut + 3 * DAY)
    assert shown.to_json() == done.to_json()
    with Store(db, read_only=True) as store:
        now = {lead: (s.version, s.record) for lead, s in store.leads_of(V2[0].name)}
        assert store.current_version(V2[0].name) == V2[0].version
    assert {lead: (V2[0].version, rec) for lead, rec in shown.records.items()} == now
    outbox = meaning(db)["outbox"]
    assert [row[0] for row in outbox[outbox_before:]] == [a.key for a in shown.actions]
    # what the plan counted is what happened
    sent_at_switch = [json.loads(row[5]) for row in outbox[outbox_before:]
                      if json.loads(row[5])["version"] == V2[0].version]
    assert len(sent_at_switch) == sum(shown.switch_actions.values())


SMALL = '''journey "small"
scoring
  visit +1
fit
  size >= 100 +5
stage a
  initial
  send email "hello" on entry
  send email "later" after {delay}
  on go -> b
stage b
  final
'''


def small(delay: str = "3 days"):
    return compiled(SMALL.format(delay=delay), "small.journey")


def event(id, lead, type, t, attributes=None):
    from .engine_helpers import line

    return line(id, type, t, attributes=attributes, lead=lead)


def test_drain_old_timers_fire_for_old_leads_new_ones_for_new_leads_waiting_leads_move(tmp_path):
    from .engine_helpers import T0

    db = tmp_path / "d.db"
    v1, v2 = small("3 days"), small("1 day")
    run(db, [v1], [event("e1", "old", "visit", T0), event("e2", "waits", "lead.updated", T0, {"size": 500})])
    with Store(db, read_only=True) as store:
        assert {lead: s.record.state for lead, s in store.leads_of("small")} == {"old": "a", "waits": "waiting"}
    apply(db, v2, "drain")
    run(db, [v2], [event("e3", "new", "visit", T0 + 1), event("e4", "waits", "visit", T0 + 2)])
    tick(db, T0 + 10 * DAY)
    with Store(db, read_only=True) as store:
        versions = {lead: s.version for lead, s in store.leads_of("small")}
        later = {a["lead"]: (a["version"], a["time"]) for _, a in store.actions(kind="send")
                 if a["content"] == "later"}
        fit = {lead: s.record.fit for lead, s in store.leads_of("small")}
    assert versions == {"old": v1[0].version, "new": v2[0].version, "waits": v2[0].version}
    from .engine_helpers import iso

    assert later == {"old": (v1[0].version, iso(T0 + 3 * DAY)), "new": (v2[0].version, iso(T0 + 1 + DAY)),
                     "waits": (v2[0].version, iso(T0 + 2 + DAY))}
    assert fit["waits"] == 5  # its attributes came along


def test_a_changed_journey_with_no_lead_yet_is_a_switch_of_the_log(tmp_path):
    db = tmp_path / "r.db"
    v1, v2 = small("3 days"), small("1 day")
    run(db, [v1], [])
    run(db, [v2], [])
    with Store(db, read_only=True) as store:
        rows = [json.loads(e) for (e,) in store.db.execute("SELECT event FROM inputs WHERE kind = 'switch'")]
        assert [r.command for r in store.history("small")] == ["run", "run"]
    assert rows == [{"journey": "small", "from": v1[0].version, "to": v2[0].version, "policy": "register"}]


def test_a_format_2_store_opens_and_is_marked_current(tmp_path):
    import shutil
    import sqlite3

    from engine.store import SCHEMA_VERSION

    db = tmp_path / "f2.db"
    shutil.copy(Path(__file__).parent / "fixtures" / "store_v3.db", db)  # a store written by format 3
    con = sqlite3.connect(db)
    con.execute("PRAGMA user_version = 2")  # format 2 has the very same tables as format 3
    con.close()
    before = meaning(db)
    with Store(db, read_only=True) as store:
        assert store.format == 2 and "lead-0003" in [lead for lead, _ in store.leads_of("Demand generation (B2B)")]
    with Store(db, writer=True) as store:
        assert store.format == SCHEMA_VERSION == 6
    assert meaning(db) == before
