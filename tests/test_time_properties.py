"""Laws of the time rules, over the two time examples and generated streams (leads in many zones, dates).

- any batch size gives the same store; replaying a lead's inputs gives its stored record (explain agrees);
- ticks between events change nothing (timers are derived, and fire at their own due time);
- every send leaves at an instant the windows hold on the lead's wall clock, in the order it was due
  (a wall-clock instant that happens twice, on an autumn night, is left out: docs/engine.md reads it as
  its first occurrence);
- the same input twice gives identical outputs.
"""

from __future__ import annotations

import json
from datetime import datetime
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.events import format_time, parse_time
from engine.explain import explain_lead
from engine.record import DONE
from engine.runner import Runner
from engine.step import advance, step_event
from engine.stores import open_store

from .engine_helpers import DAY, HOUR, JOURNEYS, T0, dump, ev, example, iso, run_store
from .strategies import journeys

SERIES, _ = example(JOURNEYS / "webinar_series.journey")
TRIAL, _ = example(JOURNEYS / "trial_business_hours.journey")
SOURCES = [(SERIES, {"webinar_series.journey": SERIES.text}), (TRIAL, {"trial_business_hours.journey": TRIAL.text})]
FAST = settings(deadline=None, max_examples=30, suppress_health_check=[HealthCheck.too_slow,
                                                                       HealthCheck.function_scoped_fixture])

ZONES = ["America/New_York", "Europe/Rome", "Asia/Tokyo", "Australia/Sydney", "Asia/Kolkata", "UTC", "Nowhere/Atlantis"]
TYPES = ["series.registered", "webinar.attended", "webinar.missed", "demo.requested", "trial.started",
         "app.setup_done", "app.login", "feature.used", "pricing.viewed", "subscription.started", "lead.updated",
         "email.unsubscribed"]


@st.composite
def streams(draw) -> list[str]:
    """A few leads over a few weeks around the March and October clock changes, with dates and zones."""
    t = draw(st.sampled_from([1_773_900_000, 1_792_000_000, T0]))
    lines = []
    for i in range(draw(st.integers(1, 25))):
        t += draw(st.sampled_from([-HOUR, 0, 1, 7 * 60, HOUR, 5 * HOUR, DAY, 2 * DAY, 5 * DAY]))
        kind = draw(st.sampled_from(TYPES))
        event = {"id": f"t{i}", "lead": draw(st.sampled_from(["p", "q", "r"])), "type": kind, "time": iso(t)}
        when = st.integers(-2 * DAY, 20 * DAY).map(lambda d, t=t: iso(t + d))
        if kind == "series.registered":
            event["data"] = {f"session{n}_at": draw(when) for n in (1, 2, 3)}
        elif kind == "trial.started":
            event["data"] = {"trial_ends": draw(st.one_of(when, st.just("2026-13-45"), st.just("soon")))}
        elif kind.startswith("webinar."):
            event["data"] = {"session": draw(st.integers(1, 3))}
        if draw(st.booleans()):
            event["attributes"] = {"timezone": draw(st.sampled_from(ZONES))}
        lines.append(json.dumps(event))
    return lines


def _last(lines) -> int:
    return max(parse_time(json.loads(x)["time"]) for x in lines)


@FAST
@given(streams(), st.integers(1, 9))
def test_any_batch_size_gives_the_same_store_and_replays_agree(tmp_path_factory, lines, batch):
    tmp = tmp_path_factory.mktemp("time")
    one, other = tmp / "one.db", tmp / "other.db"
    for path, size in ((one, 5000), (other, batch)):
        run_store(path, SOURCES, lines, batch=size)
        with open_store(path) as store:
            Runner(store, store.journeys()).tick(_last(lines) + 60 * DAY)
    assert dump(one) == dump(other)
    with open_store(one) as store:
        for lead in ("p", "q", "r"):
            for explanation in explain_lead(store, lead):
                assert explanation.consistent, (lead, explanation.journey)


def _drive(cj, events, ticks):
    """Step every event (and a tick at each time in `ticks`) through the pure step; all actions in order."""
    records, actions = {}, []
    for kind, payload in sorted([("e", e) for e in events] + [("t", t) for t in ticks],
                                key=lambda x: x[1].time if x[0] == "e" else x[1]):
        if kind == "e":
            rec, out = step_event(cj, records.get(payload.lead), payload.lead, payload)
            if rec is not None:
                records[payload.lead] = rec
            actions += out
        else:
            for lead, rec in list(records.items()):
                if rec.state not in DONE and rec.due is not None:
                    records[lead], out = advance(cj, rec, lead, payload)
                    actions += out
    return records, actions


def _events(lines):
    out = []
    for x in lines:
        e = json.loads(x)
        out.append(ev(e["id"], e["type"], parse_time(e["time"]), e.get("data"), e.get("attributes"), e["lead"]))
    return out


def _by_lead(actions) -> dict[str, list[dict]]:
    """Each lead's actions in order (leads step independently: their interleaving is the driver's)."""
    out: dict[str, list[dict]] = {}
    for a in actions:
        out.setdefault(a.lead, []).append(a.to_json())
    return out


@FAST
@given(streams(), st.lists(st.integers(0, 30 * DAY), max_size=6))
def test_ticks_between_events_change_nothing(lines, offsets):
    events = _events(lines)
    end = _last(lines) + 60 * DAY
    for cj in (SERIES, TRIAL):
        start = min(e.time for e in events)
        plain = _drive(cj, events, [end])
        ticked = _drive(cj, events, sorted({start + o for o in offsets} | {end}))
        assert _by_lead(plain[1]) == _by_lead(ticked[1])
        assert plain[0] == ticked[0]
        assert _drive(cj, events, [end])[1] == plain[1]  # the same input twice: identical outputs


def _repeated(t: int, tz: ZoneInfo) -> bool:
    """Whether the wall-clock time at `t` happens twice that night (the hour a fall-back repeats)."""
    local = datetime.fromtimestamp(t, tz)
    return local.replace(fold=0).utcoffset() != local.replace(fold=1).utcoffset()


@FAST
@given(streams())
def test_trial_sends_leave_in_business_hours_on_the_leads_clock(lines):
    _, actions = _drive(TRIAL, _events(lines), [_last(lines) + 60 * DAY])
    for a in (a for a in actions if a.kind == "send"):
        ok = []
        for zone in _zones_at(lines, a.lead, a.time):
            tz = ZoneInfo(zone)
            local = datetime.fromtimestamp(a.time, tz)
            ok.append(_repeated(a.time, tz) or (local.weekday() < 5 and 10 <= local.hour < 16))
        assert any(ok), (a.lead, format_time(a.time), a.data)


def _zones_at(lines, lead, t) -> set[str]:
    """The lead's zone just before `t`, and each zone an event at `t` itself gave it (the send may follow any)."""
    zone = "America/New_York"  # the journey's default
    at_t = set()
    for e in sorted(_events(lines), key=lambda e: e.time):
        tz = (e.attributes or {}).get("timezone")
        if e.lead != lead or tz not in ZONES[:-1] or e.time > t:
            continue
        if e.time < t:
            zone = tz
        else:
            at_t.add(tz)
    return {zone} | at_t


def test_generated_journeys_use_the_time_constructs():
    """The strategy the format round trip, the engine fuzz and the diagrams share makes every time construct."""
    seen = set()

    @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
    @given(journeys(max_stages=3))
    def collect(j):
        seen.update({"zone"} if j.zones else set())
        seen.update({f"window-{w.kind}" for w in j.windows})
        for s in j.stages:
            seen.update("date-send" for send in s.sends if send.at is not None)
            seen.update(t.mode for t in s.triggers if hasattr(t, "mode"))
    collect()
    assert {"zone", "window-only", "window-quiet", "date-send", "in journey", "since"} <= seen
