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


def test_bench_store_replays_a_runs_rows_in_either_layout(tmp_path):
    """bench/bench_store.py writes a finished run's rows again, all of them, per statement; format5 is the
    old layout (a unique index on the outbox key), format6 the store's own."""
    from bench.__main__ import load_cj
    from bench.bench_store import fresh, replay
    from engine.runner import Runner
    from engine.store import Store

    loaded, cj = load_cj()
    done = tmp_path / "done.db"
    with Store(done) as store:
        store.register(cj, loaded.sources)
        Runner(store, [cj]).run_lines(list(json_lines(Spec(200, 12_000))))
        counts = {t: store.db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in ("inputs", "outbox")}
    for layout, unique in (("format5", True), ("format6", False)):
        rows = replay(done, layout, 5_000)
        assert [int(r["inputs_done"]) for r in rows] == [5_000, 10_000, 12_000]
        assert all(r["all"] > 0 for r in rows)
        db = fresh(tmp_path / f"{layout}.db", layout)
        assert any(u for _, _, u, *_ in db.execute("PRAGMA index_list(outbox)")) is unique
        db.close()
    assert counts["inputs"] == 12_000 and counts["outbox"] > 0
