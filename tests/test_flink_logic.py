"""What the Flink job does to one lead, without Flink (engine_flink.logic), and `coltiva flink` without PyFlink."""

from __future__ import annotations

import importlib.util
import json

import subprocess
import sys
from pathlib import Path

from hypothesis import given, strategies as st

from engine.events import Event
from engine_flink.logic import Keyed, LeadState, Rejected, Tick, apply_event, classify, known_types

from .conftest import ROOT

DAY = 86_400
JOURNEY = ROOT / "journeys" / "demand_generation.journey"


def _journeys():
    from dsl.loader import load_journey
    from engine.compiler import compile_journey

    loaded = load_journey(str(JOURNEY))
    return [compile_journey(loaded.journey, loaded.diagnostics)]


def test_lines_are_ticks_events_or_kept_aside():
    known = known_types(_journeys())
    assert classify('{"tick": "2026-03-01T00:00:00Z"}', known) == Tick(1772323200)
    line = '{"id": "e1", "lead": "L1", "type": "page.visited", "time": "2026-03-01T00:00:00Z"}'
    assert classify(line, known) == Keyed("L1", 1772323200, line)
    assert isinstance(classify('{"tick": "yesterday"}', known), Rejected)
    assert isinstance(classify('{"id": "e1", "lead": "L1", "type": "nope.never", "time": "2026-03-01T00:00:00Z"}',
                               known), Rejected)
    assert classify("   ", known) is None


@given(st.lists(st.tuples(st.sampled_from(["a", "b", "c", "d"]), st.integers(0, 100)), max_size=30))
def test_a_seen_id_is_dropped_until_the_lead_is_ttl_newer(arrivals):
    """The rule docs/scaling.md states: an id is a duplicate while no event of the lead is ttl newer."""
    ttl, state, kept = 10 * DAY, LeadState(), {}
    for event_id, day in arrivals:
        event = Event(event_id, "L1", "page.visited", day * DAY)
        latest = max([event.time, *kept.values()])
        expected = event_id in kept  # ids are pruned when a fresh event comes, so a kept id is a duplicate
        assert state.duplicate(event, ttl) == expected
        if not expected:
            kept = {i: t for i, t in kept.items() if t >= latest - ttl}
            kept[event_id] = event.time
        assert state.seen == kept


def test_lead_state_round_trips_as_json_text():
    journeys = _journeys()
    state = LeadState()
    for n, kind in enumerate(["page.visited", "form.submitted", "email.clicked"]):
        event = Event(f"e{n}", "L1", kind, 1772323200 + n * DAY, {"path": "/pricing"}, None)
        state.duplicate(event, 30 * DAY)
        apply_event(journeys, state, event)
    text = state.to_text()
    json.loads(text)  # plain JSON, never a pickle
    again = LeadState.from_text(text)
    assert again == state and again.to_text() == text


def test_the_command_without_pyflink_says_how_to_get_it(tmp_path):
    if importlib.util.find_spec("pyflink") is not None:  # in .venv-flink the command runs for real (tests_flink)
        return
    events = tmp_path / "e.jsonl"
    events.write_text("", encoding="utf-8")
    result = subprocess.run([str(Path(sys.executable).parent / "coltiva"), "flink", str(JOURNEY), "--events",
                             str(events), "--until", "2026-03-01T00:00:00Z", "--out", str(tmp_path / "out")],
                            capture_output=True, text=True)
    assert result.returncode == 1
    assert "make flink" in result.stderr and "Traceback" not in result.stderr


def test_an_outbox_that_is_not_postgresql_is_refused_with_a_message(tmp_path):
    events = tmp_path / "e.jsonl"
    events.write_text("", encoding="utf-8")
    result = subprocess.run([str(Path(sys.executable).parent / "coltiva"), "flink", str(JOURNEY), "--events",
                             str(events), "--until", "2026-05-01T00:00:00Z", "--out", str(tmp_path / "out"),
                             "--outbox", str(tmp_path / "x.db")], capture_output=True, text=True)
    assert result.returncode != 0
    assert "give a postgresql:// address" in result.stderr and "Traceback" not in result.stderr
