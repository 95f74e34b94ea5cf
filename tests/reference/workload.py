"""Event streams for a journey, from a random source (seeded, or hypothesis's `st.randoms()`).

Events use the journey's own types, fields and compared values (and values just
beside them), so conditions, caps, timers and thresholds are all reached; some
events arrive late, some ids repeat, some lines are malformed on purpose.
"""

from __future__ import annotations

import dataclasses
import json
import random
from datetime import datetime, timezone

from dsl import model as m

from .model import iso

__all__ = ["generate_lines", "mixed", "START"]

START = int(datetime(2026, 3, 1, 9, 0, tzinfo=timezone.utc).timestamp())

_STEPS = [0, 1, 59, 600, 1800, 3600, 6 * 3600, 86400 - 1, 86400, 86400 + 1, 2 * 86400, 3 * 86400, 7 * 86400,
          14 * 86400, 30 * 86400]

_MALFORMED = [
    b"{not json",
    b'{"id": "x1", "lead": "L", "type": "%s"}',  # no time
    b'{"id": "x2", "lead": "L", "type": "%s", "time": "2026-03-01T09:00:00"}',  # no zone
    b'{"id": "x3", "lead": "L", "type": "%s", "time": "2026-03-01T09:00:00Z", "data": {"n": NaN}}',
    b'{"id": "x4", "id": "x5", "lead": "L", "type": "%s", "time": "2026-03-01T09:00:00Z"}',
    b'{"id": "x6", "lead": "L", "type": "%s", "time": "2026-03-01T09:00:00Z", "data": ' + b"[" * 40 + b"]" * 40
    + b"}",
    b'{"id": "x7", "lead": "", "type": "%s", "time": "2026-03-01T09:00:00Z"}',
    b'{"id": "x8", "lead": "L", "type": "email.opend", "time": "2026-03-01T09:00:00Z"}',
    b'{"id": "x9", "lead": "L", "type": "%s", "time": "2026-03-01T09:00:00Z", "data": [1]}',
    b'{"id": true, "lead": "L", "type": "%s", "time": "2026-03-01T09:00:00Z"}',
    b'{"id": "x10", "lead": "L", "type": "%s", "time": "1969-12-31T23:59:59Z"}',
]


def _values(cond: m.Condition | None, out: dict[str, list]) -> None:
    for c in m.compares(cond):
        vals = out.setdefault(c.field, [])
        for v in c.value if isinstance(c.value, tuple) else (c.value,):
            if isinstance(v, bool):
                vals += [v, not v, 1]
            elif isinstance(v, (int, float)):
                vals += [v, v - 1, v + 1, str(v)]
            elif isinstance(v, str):
                vals += [v, v + "/x", "x" + v, v.upper(), ""]
        vals.append(None)


def _nest(flat: dict[str, object]) -> dict:
    out: dict = {}
    for name, value in flat.items():
        node = out
        parts = name.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                break
        else:
            node[parts[-1]] = value
    return out


def _pick(rng: random.Random, fields: dict[str, list]) -> dict:
    flat = {f: rng.choice(vals) for f, vals in sorted(fields.items()) if rng.random() < 0.6}
    return _nest(flat)


def mixed(journeys: list[m.Journey]) -> m.Journey:
    """One model holding the rules of several journeys: events for a run of them all."""
    def every(name: str) -> tuple:
        return sum((getattr(j, name) for j in journeys), ())

    return dataclasses.replace(journeys[0], stages=every("stages"), scoring=every("scoring"), fit=every("fit"),
                               exits=every("exits"), enrollments=every("enrollments"), goals=every("goals"))


_ZONES = ("Europe/Rome", "America/New_York", "Asia/Tokyo", "Australia/Sydney", "UTC", "Not/AZone")


def _time_fields(journey: m.Journey, rng: random.Random, kind: str, t: int, event: dict) -> None:
    """Dates for sends at a date (some already past, some not dates) and a zone attribute now and then."""
    for a in journey.anchors():
        if a.event == kind or (a.event is None and rng.random() < 0.2):
            value = iso(t + rng.randrange(-2 * 86400, 20 * 86400)) if rng.random() < 0.9 else "soon"
            holder = event.setdefault("data" if a.event is not None else "attributes", {})
            holder[a.field] = value
    if journey.time_zone.field and rng.random() < 0.3:
        event.setdefault("attributes", {})[journey.time_zone.field] = rng.choice(_ZONES)


def generate_lines(journey: m.Journey, rng: random.Random, leads: int, per_lead: int,
                   rounds: int = 1, late: float = 0.06) -> tuple[tuple[list[bytes], int], ...]:
    """JSON Lines for `leads` leads in `rounds` batches, each with an instant to tick to after it.

    A tick may pass the next batch's first events: those arrive late for the leads it advanced.
    `late`: the share of events earlier than the lead's previous one (by up to a day; with `late`
    above the default, up to three days, behind the sends other journeys' timers made meanwhile).
    """
    back = _STEPS[1:8] if late <= 0.06 else _STEPS[1:12]
    types = sorted(journey.event_types())
    event_fields: dict[str, list] = {}
    attr_fields: dict[str, list] = {}
    for cond in journey.conditions():
        _values(cond, event_fields)
    for f in journey.fit:
        _values(f.condition, attr_fields)
    # a `lead.FIELD` compared in a condition is an attribute of the lead: its values go in `attributes`
    for name in [f for f in event_fields if f.startswith("lead.")]:
        attr_fields.setdefault(name[len("lead."):], []).extend(event_fields.pop(name))
    events: list[tuple[int, int, dict]] = []
    serial = 0
    for n in range(leads):
        lead = f"L{n}" if rng.random() < 0.9 else n  # a whole-number lead id now and then
        t = START + rng.randrange(0, 5 * 86400)
        for _ in range(rng.randrange(1, per_lead + 1)):
            if rng.random() < late:
                t -= rng.choice(back)  # a late event
            else:
                t += rng.choice(_STEPS)
            kind = "lead.updated" if rng.random() < 0.08 else rng.choice(types)
            serial += 1
            event = {"id": f"e{serial}" if rng.random() < 0.9 else serial, "lead": lead, "type": kind,
                     "time": iso(t)}
            data = _pick(rng, event_fields)
            if data:
                event["data"] = data
            if attr_fields and rng.random() < 0.3:
                event["attributes"] = _pick(rng, attr_fields)
            _time_fields(journey, rng, kind, t, event)
            events.append((t, serial, event))
    # arrival order: mostly by time, a few events swapped with their neighbour
    events.sort(key=lambda e: (e[0], e[1]))
    for i in range(len(events) - 1):
        if rng.random() < 0.05:
            events[i], events[i + 1] = events[i + 1], events[i]
    lines = []
    times = []
    for t, _, event in events:
        lines.append(json.dumps(event).encode())
        times.append(t)
        r = rng.random()
        if r < 0.03:
            lines.append(json.dumps(event).encode())  # a retry: the same line again
        elif r < 0.05:
            lines.append(json.dumps(dict(event, type=rng.choice(types))).encode())  # same id, other content
        elif r < 0.07:
            bad = rng.choice(_MALFORMED)
            lines.append(bad.replace(b"%s", types[0].encode()) if b"%s" in bad else bad)
        elif r < 0.075:
            lines.append(rng.choice([b"", b"   "]))  # a blank line
        times += [t] * (len(lines) - len(times))
    cuts = sorted(rng.sample(range(1, len(lines)), rounds - 1)) if 1 < rounds <= len(lines) - 1 else []
    out = []
    tick = 0
    for start, end in zip([0] + cuts, cuts + [len(lines)]):
        # time never goes backwards (`coltiva tick` refuses an instant before the last tick)
        tick = max(tick, times[end - 1] + rng.choice([0, 3600, 86400, 5 * 86400]))
        out.append((lines[start:end], tick))
    last = max(times, default=START)
    out[-1] = (out[-1][0], max(out[-1][1], last) + rng.choice([0, 86400, 30 * 86400, 200 * 86400]))
    return tuple(out)
