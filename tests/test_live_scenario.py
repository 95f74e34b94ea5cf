"""A live journey's life: launch, three edits of different kinds, a rollback; nothing sent twice, no lead lost."""

from __future__ import annotations

import json

from engine.explain import explain_lead
from engine.record import EXITED, NOT_ENROLLED, WAITING
from engine.store import Store

from .engine_helpers import DAY
from .live_helpers import V1_TEXT, V2_TEXT, apply, compiled, meaning, replay_store, run, tick
from coltiva.sample import generate
from engine.events import parse_time

NAME = "Demand generation (B2B)"
# edit 2: a stage renamed (with its move) and new content in a stage
V3_TEXT = (V2_TEXT.replace("stage dormant", "stage sleeping").replace("-> dormant", "-> sleeping")
           .replace('moves\n', 'moves\n  stage dormant -> sleeping\n', 1)
           .replace('  send checklist "buying-committee" after 5 days\n',
                    '  send checklist "buying-committee" after 5 days\n  send email "new-ideas" after 1 day\n'))
# edit 3 (drained): a faster decay and one drip less
V4_TEXT = V3_TEXT.replace("decay half-life 45 days", "decay half-life 30 days").replace(
    '  send video "product-tour" after 3 days\n', "")
SAME = {"welcome-2026": "welcome"}  # one content under two ids, by the journey's own move


def quarters(seed: int):
    rows = sorted((parse_time(json.loads(line)["time"]), line) for line in generate(60, 150, seed)
                  if _valid(line))
    cuts = [rows[len(rows) * k // 4][0] for k in (1, 2, 3)]
    bounds = [float("-inf"), *cuts, float("inf")]
    return [[line for t, line in rows if lo <= t < hi] for lo, hi in zip(bounds, bounds[1:])], cuts


def _valid(line: str) -> bool:
    try:
        parse_time(json.loads(line)["time"])
        return True
    except Exception:
        return False


def leads_now(db) -> dict:
    with Store(db, read_only=True) as store:
        return {lead: s for lead, s in store.leads_of(NAME)}


def test_launch_three_edits_and_a_rollback(tmp_path):
    v1, v2, v3, v4 = (compiled(t) for t in (V1_TEXT, V2_TEXT, V3_TEXT, V4_TEXT))
    parts, cuts = quarters(21)
    db = tmp_path / "live.db"
    ever: set[str] = set()

    def step(lines, journey, until):
        run(db, [journey], lines)
        tick(db, until)
        ever.update(leads_now(db))

    step(parts[0], v1, cuts[0])
    apply(db, v2, "migrate")                          # edit 1: threshold, renamed content, sooner drip
    step(parts[1], v2, cuts[1])
    in_dormant = [lead for lead, s in leads_now(db).items() if s.record.state == "dormant"]
    _, second = apply(db, v3, "migrate")              # edit 2: a renamed stage, new content
    assert any(m.source == "dormant" and m.target == "sleeping" for m in second.moves) == bool(in_dormant)
    assert all(leads_now(db)[lead].record.state == "sleeping" for lead in in_dormant)
    _, third = apply(db, v4, "drain")                 # edit 3: decay and a drip, leads in flight drain
    step(parts[2], v4, cuts[2])
    on = {s.version for s in leads_now(db).values()}
    assert v4[0].version in on and v3[0].version in on  # both versions run side by side
    _, back = apply(db, v1, "migrate")                # the rollback: the launch version again
    assert not back.refusals
    step(parts[3], v1, cuts[2] + 300 * DAY)

    final = leads_now(db)
    assert set(final) == ever, "a lead was lost"
    stages = {s.id for s in v1[0].journey.stages} | {EXITED, NOT_ENROLLED, WAITING}
    assert {s.version for s in final.values()} == {v1[0].version}
    assert all(s.record.state in stages for s in final.values())
    with Store(db, read_only=True) as store:
        sends = [a for _, a in store.actions(kind="send") if "edition" not in a]
        switches = [json.loads(e) for (e,) in store.db.execute("SELECT event FROM inputs WHERE kind = 'switch'")]
    assert [(s["policy"], s["to"]) for s in switches] == [
        ("migrate", v2[0].version), ("migrate", v3[0].version), ("drain", v4[0].version), ("migrate", v1[0].version)]
    received = [(a["lead"], SAME.get(a["content"], a["content"])) for a in sends]
    assert len(received) == len(set(received)), "a content was sent twice to a lead"
    assert any(c == "new-ideas" for _, c in received) and any(c == "welcome" for _, c in received)
    # the whole store is its input log replayed, and every lead explains itself across the four switches
    again = tmp_path / "again.db"
    replay_store(db, again)
    assert meaning(again) == meaning(db)
    with Store(db, read_only=True) as store:
        for lead in sorted(final)[:12]:
            (explanation,) = explain_lead(store, lead)
            assert explanation.consistent, lead
