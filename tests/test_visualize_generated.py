"""Diagrams of journeys nobody wrote: every generated model renders to DOT that `dot` accepts, to
well-formed SVG, and to Mermaid, with every stage present."""

import xml.etree.ElementTree as ET

from hypothesis import HealthCheck, given, settings

from visualize import build_diagram, render_bytes, to_dot, to_mermaid

from .strategies import journeys


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(journeys(max_stages=4))
def test_any_journey_model_renders_in_every_format(journey):
    diagram = build_diagram(journey)
    source = to_dot(diagram)
    assert source.lstrip().startswith(("digraph", "strict digraph"))
    svg = render_bytes(diagram, "svg")  # the real `dot`
    root = ET.fromstring(svg)  # well-formed, whatever the labels hold
    ids = {element.get("id") for element in root.iter() if element.get("id")}
    for stage in journey.stages:
        assert any(stage.id in i for i in ids), stage.id
    mermaid = to_mermaid(diagram)
    assert mermaid.count("\n---\n") <= 1 and "\nflowchart LR\n" in mermaid
