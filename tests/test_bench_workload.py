"""The benchmark workload generator: deterministic, exact counts, valid events, every interaction.

No timings here: the benchmark itself is `make bench`.
"""

from __future__ import annotations

import json
from itertools import islice

from bench.workload import INTERACTIONS, Spec, events, json_lines, raw_events
from engine.events import Event, Malformed, parse_event

SPEC = Spec(leads=300, events=20_000, days=120, seed=3)


def test_same_seed_same_stream_other_seed_other_stream():
    a = list(json_lines(SPEC))
    assert a == list(json_lines(SPEC))
    other = list(islice(json_lines(Spec(300, 20_000, 120, seed=4)), 2_000))
    assert other != a[:2_000]


def test_counts_and_time_order():
    rows = list(raw_events(SPEC))
    assert len(rows) == SPEC.events
    assert {k for _, k, *_ in rows} == set(range(SPEC.leads))
    times = [t for _, _, _, t, _, _ in rows]
    assert times == sorted(times)
    assert times[-1] - times[0] < SPEC.days * 86_400


def test_every_json_line_parses_and_matches_the_event_objects():
    for line, event in zip(json_lines(SPEC), events(SPEC), strict=True):
        parsed = parse_event(line)
        assert not isinstance(parsed, Malformed), parsed
        assert isinstance(event, Event)
        assert parsed.to_json() == event.to_json()
        assert json.loads(line)["id"] == event.id


def test_every_interaction_type_and_attribute_updates_occur():
    seen = {e.type for e in events(SPEC)}
    assert set(INTERACTIONS) <= seen
    assert "lead.updated" in seen
    updates = [e for e in events(SPEC) if e.type == "lead.updated"]
    assert updates and all(e.attributes for e in updates)
    pricing = [e for e in events(SPEC) if e.type == "page.visited" and e.data.get("path", "").startswith("/pricing")]
    assert pricing


def test_the_journey_knows_every_generated_type():
    from pathlib import Path

    from dsl.loader import load_journey
    from engine.runner import BUILTIN_TYPES

    loaded = load_journey(Path(__file__).resolve().parent.parent / "journeys" / "demand_generation.journey")
    known = loaded.journey.event_types() | BUILTIN_TYPES
    assert {e.type for e in events(SPEC)} <= set(known)
