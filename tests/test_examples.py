"""The example journeys are fixtures: each must check clean, with no warning."""

import pytest

from dsl import load_journey, render_plain

from .conftest import JOURNEYS


def test_there_are_examples():
    assert len(JOURNEYS) >= 5


@pytest.mark.parametrize("path", JOURNEYS, ids=lambda p: p.name)
def test_example_checks_clean(path):
    loaded = load_journey(path)
    assert loaded.ok, "\n".join(render_plain(d, loaded.sources) for d in loaded.diagnostics)
    assert loaded.diagnostics == []


def test_six_stage_example_has_the_buying_process():
    journey = load_journey("journeys/demand_generation.journey").journey
    labels = [s.label for s in journey.stages]
    for label in ["Unaware", "Shown interest", "Problem established", "Looking at solutions",
                  "May purchase", "Customer"]:
        assert label in labels


def test_italian_labels_survive():
    journey = load_journey("journeys/domanda_it.journey").journey
    assert journey.stage("problema").label == "Problema riconosciuto"


def test_include_merges_shared_scoring():
    loaded = load_journey("journeys/with_include.journey")
    assert {r.event for r in loaded.journey.scoring} >= {"email.opened", "demo.requested"}
    assert any(path.endswith("shared/scoring.journey") for path in loaded.sources)
