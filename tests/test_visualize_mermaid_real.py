"""Mermaid text checked by the real Mermaid (npm `mermaid`, in headless Chromium, offline).

Every diagram Coltiva writes (each example journey, the --db overlay, the diff,
and generated journeys) must parse and render with no error, show every stage,
and keep the stages in declaration order along the layout direction.
"""

from __future__ import annotations

import re
from pathlib import Path

from hypothesis import HealthCheck, given, settings

from dsl import load_journey
from visualize import build_diagram, build_diff_diagram, diff_journeys, to_mermaid
from visualize.overlay import apply_counts

from .browser_session import browser  # noqa: F401  (the shared session fixture)
from .strategies import journeys

EXAMPLES = sorted(str(p) for p in Path("journeys").glob("*.journey"))
_NODE_ID = re.compile(r"^d\d+-flowchart-(?P<key>.+)-\d+$")


def _keys(result: dict) -> dict[str, dict]:
    """Rendered node boxes by our node key (`s_unaware`), from Mermaid's SVG ids."""
    out = {}
    for node in result["nodes"]:
        m = _NODE_ID.match(node["id"])
        assert m, node["id"]
        out[m.group("key")] = node
    return out


def assert_drawn_in_order(result: dict, diagram, direction: str = "LR") -> None:
    """No error; every node of the diagram drawn; stages strictly along `direction` in declaration order."""
    assert result["error"] is None, result["error"]
    boxes = _keys(result)
    ordered = [n.key for n in sorted(diagram.nodes, key=lambda n: n.order)]
    assert set(ordered) <= set(boxes), set(ordered) - set(boxes)
    axis = "x" if direction == "LR" else "y"
    positions = [boxes[k][axis] for k in ordered]
    assert positions == sorted(positions) and len(set(positions)) == len(positions), list(zip(ordered, positions))


def _example_diagrams():
    out = []
    for path in EXAMPLES:
        loaded = load_journey(path)
        out.append((path, build_diagram(loaded.journey, fragment=loaded.fragment)))
    return out


def test_every_example_renders_in_real_mermaid_in_stage_order(browser):
    cases = _example_diagrams()
    texts = [to_mermaid(d) for _, d in cases] + [to_mermaid(d, direction="TB") for _, d in cases]
    results = browser.mermaid(texts)
    for (path, diagram), result in zip(cases, results[:len(cases)]):
        assert_drawn_in_order(result, diagram), path
    for (path, diagram), result in zip(cases, results[len(cases):]):
        assert_drawn_in_order(result, diagram, "TB"), path


def test_the_shared_fragment_renders(browser):
    loaded = load_journey("journeys/shared/scoring.journey")
    [result] = browser.mermaid([to_mermaid(build_diagram(loaded.journey, fragment=True))])
    assert result["error"] is None and "p_rules" in _keys(result)


def test_counts_overlay_and_diff_render(browser, tmp_path):
    journey = load_journey("journeys/demand_generation.journey").journey
    diagram = build_diagram(journey)
    stage_counts = {s.id: 3 * i for i, s in enumerate(journey.stages)} | {"exit": 4}
    edge_counts = {("unaware", "shown_interest"): 12, ("dormant", "exit"): 2, ("shown_interest", "exit"): 2}
    counted = apply_counts(diagram, stage_counts, edge_counts)
    old = load_journey("journeys/demand_generation.journey").journey
    source = Path("journeys/demand_generation.journey").read_text()
    edited = source.replace('  on deal.lost -> dormant\n', '  on deal.lost -> exit\n').replace(
        'stage customer "Customer"', 'stage activated "Activated: ok; yes"\n  on x.y -> customer\n\n'
                                     'stage customer "Customer"')
    new_path = tmp_path / "new.journey"
    new_path.write_text(edited)
    new = load_journey(str(new_path)).journey
    assert new is not None
    diff = build_diff_diagram(diff_journeys(old, new))
    results = browser.mermaid([to_mermaid(counted), to_mermaid(diff)])
    assert_drawn_in_order(results[0], counted)
    assert_drawn_in_order(results[1], diff)


def test_warnings_on_their_stage_render(browser, tmp_path, capsys):
    """`render` marks checker warnings on their stage; the Mermaid text still parses and shows them."""
    from .visualize_helpers import run_cli

    source = Path("journeys/webinar_followup.journey").read_text()
    twice = 'send email "see-you-there" on entry'
    path = tmp_path / "warn.journey"
    path.write_text(source.replace(twice, twice + '\n  send email "see-you-there" after 1 day'))
    out = tmp_path / "warn.mmd"
    code, _, err = run_cli(["render", str(path), "-o", str(out)], capsys)
    assert code == 0, err
    [result] = browser.mermaid([out.read_text()])
    assert result["error"] is None, result["error"]
    stage = load_journey(str(path)).journey.initial.id
    drawn = {_NODE_ID.match(n["id"]).group("key"): n["text"] for n in result["nodes"]}
    assert "⚠ C048" in drawn[f"s_{stage}"]
    assert not any("⚠" in text for key, text in drawn.items() if key != f"s_{stage}")


def test_a_broken_diagram_is_reported_by_the_harness(browser):
    """The harness can fail: a raw `;` and `:` in a stateDiagram note (the old output) is a parse error."""
    bad = "stateDiagram-v2\n    s_a : x\n    note left of s_a : Scoring: a; b\n    s_a --> s_b : on x"
    good = "flowchart LR\n    a ~~~ b"
    bad_result, dangling, good_result = browser.mermaid([bad, "flowchart LR\n a --> |x| b -->", good])
    assert bad_result["error"] and "Parse error" in bad_result["error"]
    assert dangling["error"]
    assert good_result["error"] is None


def test_fifty_generated_journeys_render_in_real_mermaid(browser):
    """50 generated journeys, rendered in one browser round trip: each parses, renders, keeps stage order.

    Hypothesis generates the models (an inner @given collects them); the browser
    then renders the whole batch at once, which keeps the test to seconds.
    """
    diagrams = []

    @settings(max_examples=50, database=None, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(journeys(max_stages=5))
    def collect(journey):
        diagrams.append(build_diagram(journey))

    collect()
    assert len(diagrams) == 50
    texts = [to_mermaid(d) for d in diagrams]
    for diagram, text, result in zip(diagrams, texts, browser.mermaid(texts)):
        assert result["error"] is None, f"{result['error']}\n{text}"
        assert_drawn_in_order(result, diagram)
