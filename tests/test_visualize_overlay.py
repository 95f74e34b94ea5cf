"""The live counts overlay: leads in each stage, leads and share per edge, from plain dicts."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dsl import load_journey
from visualize.diagram import build_diagram
from visualize.dot import render_bytes
from visualize.mermaid import to_mermaid
from visualize.overlay import apply_counts

from .strategies import journeys
from .visualize_helpers import SVG, run_cli, svg_root, svg_texts


@pytest.fixture(scope="module")
def diagram():
    return build_diagram(load_journey("journeys/webinar_followup.journey").journey)


STAGES = {"registered": 40, "attended": 25, "missed": 10, "sales_ready": 3, "done": 22}
MOVES = {("registered", "attended"): 30, ("registered", "missed"): 10, ("attended", "sales_ready"): 8,
         ("attended", "done"): 2, ("missed", "attended"): 5, ("missed", "done"): 4, ("sales_ready", "done"): 6,
         ("sales_ready", "exit"): 1, ("gone_stage", "done"): 9}


def _edge(d, source, target, kind):
    return next(e for e in d.edges if e.transition == (source, target) and e.kind == kind)


def test_stage_counts(diagram):
    counted = apply_counts(diagram, STAGES, MOVES)
    assert {n.stage: n.count for n in counted.nodes if n.stage} == STAGES
    assert apply_counts(diagram, {}, {}).node("s_done").count == 0


def test_edge_counts_and_shares(diagram):
    counted = apply_counts(diagram, STAGES, MOVES)
    e = _edge(counted, "registered", "attended", "event")
    assert (e.count, e.share, e.shared_by) == (30, 0.75, 1)
    assert _edge(counted, "registered", "missed", "event").share == 0.25
    # two triggers lead from attended to sales_ready: they share the one count
    both = [e for e in counted.edges if e.transition == ("attended", "sales_ready")]
    assert len(both) == 2 and all((e.count, e.shared_by) == (8, 2) for e in both)
    assert all(e.share == 0.8 for e in both)
    hold_end = _edge(counted, "missed", "done", "hold-end")
    assert hold_end.count == 4 and round(hold_end.share, 3) == round(4 / 9, 3)
    assert _edge(counted, "missed", "missed", "hold").count is None  # a loop moves nobody


def test_moves_through_a_global_exit_rule_get_their_own_edge(diagram):
    counted = apply_counts(diagram, STAGES, MOVES)
    e = _edge(counted, "sales_ready", "exit", "exit-rule")
    assert e.count == 1 and counted.node("x_exit") is not None
    assert "exit-rule" in dict(counted.legend)


def test_counts_are_drawn(diagram):
    counted = apply_counts(diagram, STAGES, MOVES)
    root = svg_root(render_bytes(counted, "svg"))
    text = svg_texts(root)
    assert "40 leads now" in text and "22 leads now" in text
    assert "30 leads · 75%" in text and "8 leads · 80% (shared by 2 triggers)" in text
    assert root.find(f".//{SVG}g[@class='edge edge-exit-rule']") is not None
    assert "40 leads now" in to_mermaid(counted)


def test_render_and_review_with_a_real_store(tmp_path, capsys):
    """End to end: `coltiva run` fills a store, `render --db` and `review --db` read its counts."""
    events = tmp_path / "events.jsonl"
    rows = [{"id": f"e{i}", "lead": f"lead{i}", "type": "webinar.registered", "time": "2026-03-01T09:00:00Z"}
            for i in range(3)]
    rows.append({"id": "a1", "lead": "lead0", "type": "webinar.attended", "time": "2026-03-02T09:00:00Z"})
    events.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    db = tmp_path / "store.db"
    code, _, err = run_cli(["run", "journeys/webinar_followup.journey", "--events", str(events),
                            "--db", str(db)], capsys)
    assert code == 0, err
    svg = tmp_path / "counted.svg"
    code, _, err = run_cli(["render", "journeys/webinar_followup.journey", "-o", str(svg), "--db", str(db)], capsys)
    assert code == 0, err
    text = svg_texts(svg_root(svg.read_bytes()))
    assert "2 leads now" in text and "1 lead now" in text and "1 lead · 100%" in text
    page = tmp_path / "review.html"
    code, _, err = run_cli(["review", "journeys/webinar_followup.journey", "-o", str(page), "--db", str(db)], capsys)
    assert code == 0, err
    assert "<h2>Funnel</h2>" in page.read_text() and "3 in the journey now, 0 left it." in page.read_text()
    code, _, err = run_cli(["render", "journeys/saas_trial.journey", "-o", str(svg), "--db", str(db)], capsys)
    assert code == 1 and "no journey named" in err and "Traceback" not in err


def _store_with_leads(tmp_path, capsys):
    """A store that ran webinar_followup: 2 leads in `registered`, 1 in `attended`, 1 never enrolled."""
    events = tmp_path / "events.jsonl"
    rows = [{"id": f"e{i}", "lead": f"lead{i}", "type": "webinar.registered", "time": "2026-03-01T09:00:00Z"}
            for i in range(3)]
    rows.append({"id": "a1", "lead": "lead0", "type": "webinar.attended", "time": "2026-03-02T09:00:00Z"})
    rows.append({"id": "u1", "lead": "lead9", "type": "email.unsubscribed", "time": "2026-03-02T10:00:00Z"})
    events.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    db = tmp_path / "store.db"
    code, _, err = run_cli(["run", "journeys/webinar_followup.journey", "--events", str(events),
                            "--db", str(db)], capsys)
    assert code == 0, err
    return db


def test_same_version_draws_without_a_warning(tmp_path, capsys):
    db = _store_with_leads(tmp_path, capsys)
    code, _, err = run_cli(["render", "journeys/webinar_followup.journey", "-o", str(tmp_path / "a.svg"),
                            "--db", str(db)], capsys)
    assert code == 0, err
    assert "coltiva: warning" not in err and "counts may not match" not in err


def test_another_version_of_the_journey_is_drawn_with_a_warning(tmp_path, capsys):
    """The file was edited since the store ran it: `attended` became `joined`. Counts are drawn, with a word."""
    from engine.compiler import journey_version
    from engine.store import Store

    db = _store_with_leads(tmp_path, capsys)
    source = open("journeys/webinar_followup.journey", encoding="utf-8").read()
    edited = re.sub(r"(stage |-> )attended\b", r"\1joined", source)
    assert edited != source and "stage joined" in edited
    path = tmp_path / "webinar_followup.journey"
    path.write_text(edited, encoding="utf-8")
    with Store(str(db)) as store:
        stored = next(cj.version for cj in store.journeys() if cj.name == "Webinar follow-up")
    new = journey_version(load_journey(str(path)).journey)
    assert stored != new

    for cmd, out in (("render", tmp_path / "edited.svg"), ("render", tmp_path / "edited.mmd"),
                     ("review", tmp_path / "edited.html")):
        code, _, err = run_cli([cmd, str(path), "-o", str(out), "--db", str(db)], capsys)
        assert code == 0, err
        assert (f"the store runs version {stored} of this journey; this file is version {new}: "
                "counts may not match") in err
        assert "1 lead is in stages this file does not have: attended" in err
        assert out.exists() and "Traceback" not in err
    text = svg_texts(svg_root((tmp_path / "edited.svg").read_bytes()))
    assert "2 leads now" in text  # still drawn: `registered` exists in both versions


def test_a_store_without_this_journey_is_an_error(tmp_path, capsys):
    db = _store_with_leads(tmp_path, capsys)
    for cmd, out in (("render", "x.svg"), ("review", "x.html")):
        code, _, err = run_cli([cmd, "journeys/saas_trial.journey", "-o", str(tmp_path / out), "--db", str(db)],
                               capsys)
        assert code == 1 and "Traceback" not in err
        assert "no journey named" in err
        assert "it has: 'Webinar follow-up'" in err
        assert not (tmp_path / out).exists()


def test_rule_counts_give_every_trigger_its_own_count(diagram):
    """The store's rule text names the trigger's line: no "shared by" count when it does."""
    journey = load_journey("journeys/webinar_followup.journey").journey
    attended = journey.stage("attended")
    to_ready = [t for t in attended.triggers if t.target == "sales_ready"]
    assert len(to_ready) == 2
    rules = {("attended", "sales_ready", f"attended: first -> sales_ready (line {to_ready[0].span.line})"): 5,
             ("attended", "sales_ready", f"attended: second -> sales_ready (line {to_ready[1].span.line})"): 3,
             ("sales_ready", "exit", "an exit rule matched (exit on email.unsubscribed)"): 1,
             ("registered", "attended", "an old rule (line 999)"): 30}
    counted = apply_counts(diagram, STAGES, MOVES, rules, enrolled=77)
    both = [e for e in counted.edges if e.transition == ("attended", "sales_ready")]
    assert [(e.ref, e.count, e.shared_by) for e in both] == [(to_ready[0], 5, 1), (to_ready[1], 3, 1)]
    assert _edge(counted, "registered", "attended", "event").count == 30  # the only edge: it takes unnamed moves
    assert _edge(counted, "sales_ready", "exit", "exit-rule").count == 1
    assert counted.entry_count == 77
    text = svg_texts(svg_root(render_bytes(counted, "svg")))
    assert "shared by" not in text and "77 leads enrolled" in text


def test_exit_node_counts_the_leads_who_left(diagram):
    counted = apply_counts(diagram, STAGES | {"exit": 7}, MOVES)
    assert counted.node("x_exit").count == 7
    assert "7 leads left" in svg_texts(svg_root(render_bytes(counted, "svg")))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), journey=journeys(max_stages=4))
def test_every_move_is_counted_once(data, journey):
    """Law: for each pair of stages, the edges' counts (a shared count divided among its sharers) add up
    to the moves the store recorded, whatever rule texts it recorded."""
    from dsl.model import EXIT

    from visualize.diagram import ANY

    diagram = build_diagram(journey)
    # a goal's edge starts from "any stage": the store records its moves from the lead's real stage
    # (any stage but a final one and the goal's target)
    drawn_pairs = {e.transition for e in diagram.edges if e.kind not in ("hold", "goal")}
    goal_texts = {}  # (stage, goal target) -> what the store records for a move by that goal
    for e in diagram.edges:
        for s in journey.stages if e.kind == "goal" else ():
            if s.id != e.transition[1] and not s.final:
                goal_texts.setdefault((s.id, e.transition[1]), []).append(
                    f"goal: on x -> {e.transition[1]} (line {e.ref.span.line})")
    pairs = sorted(drawn_pairs | set(goal_texts))
    if not pairs:
        return
    lines = sorted({e.ref.span.line for e in diagram.edges if e.ref is not None} | {999})
    rules = {}
    for _ in range(data.draw(st.integers(0, 8))):
        source, target = data.draw(st.sampled_from(pairs))
        texts = goal_texts.get((source, target), [])
        if (source, target) in drawn_pairs:
            texts = texts + ([f"{source}: a rule (line {n})" for n in lines]
                             + [f"{source}: holding loop ended (line {n})" for n in lines]
                             + ["an exit rule matched (exit on x.y)",
                                "an exit rule matched: exit on x.y (line 3)"] * (target == EXIT))
        text = data.draw(st.sampled_from(texts))
        rules[(source, target, text)] = rules.get((source, target, text), 0) + data.draw(st.integers(1, 50))
    moves = {}
    for (source, target, text), n in rules.items():
        if text.startswith("goal:"):  # drawn on the goal's one edge, whatever stage the lead was in
            source = ANY
        moves[(source, target)] = moves.get((source, target), 0) + n
    counted = apply_counts(diagram, {}, moves, rules)
    drawn = {}
    for e in counted.edges:
        if e.kind != "hold":
            drawn[e.transition] = drawn.get(e.transition, 0) + e.count / e.shared_by
    for pair, n in moves.items():
        assert drawn.get(pair, 0) == pytest.approx(n), (pair, rules)
