"""Seeded, streaming workloads for the six-stage example (journeys/demand_generation.journey).

A workload is N leads and M events spread evenly over a period, in time order.
Lead `k` arrives at event `k * 0.7 * M / N` (so every lead has arrived by 70 %
of the stream) with a first `page.visited` that carries its attributes; every
other event goes to a lead that has already arrived: half of them to a recently
arrived lead (new leads are the busy ones), half to any lead, so activity is
skewed and many leads stall for weeks. Each lead carries a small "phase" (where
the generator believes it is in the buying process), and the event mix depends
on it: readers open and click emails, interested leads download content and
attend webinars, evaluators visit /pricing and request demos or start trials,
sales answers with rejected / won / lost. Skips (webinar first, demo straight
from interest), steps back (deal lost, sales rejected, silence while the score
decays), stalls (leads that go quiet) and unsubscribes all occur, plus
`lead.updated` events that change attributes (company size, job title,
country) and so fit points.

Everything is drawn from one explicit `random.Random(seed)`: the same seed and
size give the same stream, event for event. Nothing is held in memory but a
byte per lead: 50M events stream as well as 500k.

    events(spec)      -> Event objects (fast: for in-memory runs)
    json_lines(spec)  -> JSON lines (for durable runs through Runner.run_lines)
    chunks(it, n)     -> lists of n items, to time stepping without generation
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import datetime, timezone
from itertools import islice
from typing import Iterator

from engine.events import Event

__all__ = ["Spec", "SIZES", "INTERACTIONS", "raw_events", "events", "json_lines", "chunks", "lead_id"]

START = int(datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc).timestamp())
DAY = 86_400


@dataclass(frozen=True)
class Spec:
    leads: int
    events: int
    days: int = 180
    seed: int = 42


SIZES = {
    "tiny": Spec(1_000, 50_000),
    "small": Spec(10_000, 500_000),
    "medium": Spec(100_000, 5_000_000),
    "large": Spec(1_000_000, 50_000_000),  # opt-in only
}

#: Every interaction type the generator emits (besides `lead.updated`).
INTERACTIONS = (
    "email.opened", "email.clicked", "page.visited", "content.downloaded", "webinar.attended",
    "form.submitted", "demo.requested", "trial.started", "sales.rejected", "deal.won", "deal.lost",
    "email.unsubscribed",
)

# Phases the generator tracks per lead (one byte each).
UNAWARE, INTERESTED, PROBLEM, SOLUTIONS, SALES, CUSTOMER, LEFT = range(7)

PATHS = ("/", "/blog/what-is-demand-gen", "/blog/scoring", "/pricing", "/pricing/enterprise",
         "/product/tour", "/customers/acme", "/docs/integrations")
PATH_DATA = tuple({"path": p} for p in PATHS)
PRICING = (3, 4)  # indexes of /pricing paths in PATHS
ASSETS = tuple({"asset": a} for a in ("ebook-hidden-cost", "checklist-buying-committee", "roi-calculator"))
FORMS = tuple({"form": f, "path": p} for f, p in (("newsletter", "/blog"), ("contact", "/contact"),
                                                    ("ebook", "/ebook")))
TITLES = ("Marketing Director", "VP Sales", "Head of Growth", "Analyst", "Marketing Manager", "CEO", "Intern")
COUNTRIES = ("IT", "DE", "FR", "ES", "US", "GB", "NL")
SIZES_CO = (8, 40, 120, 250, 800, 5000)

# (event type, weight, data kind) per phase; data kind: None, "path", "pricing", "asset", "form".
MIX = {
    UNAWARE: [("page.visited", 30, "path"), ("email.opened", 20, None), ("form.submitted", 12, "form"),
              ("webinar.attended", 4, None), ("content.downloaded", 6, "asset"), ("email.clicked", 6, None)],
    INTERESTED: [("email.opened", 30, None), ("email.clicked", 14, None), ("page.visited", 18, "path"),
                 ("content.downloaded", 10, "asset"), ("webinar.attended", 6, None), ("page.visited", 5, "pricing"),
                 ("demo.requested", 2, None), ("form.submitted", 3, "form")],
    PROBLEM: [("email.opened", 25, None), ("email.clicked", 12, None), ("page.visited", 12, "path"),
              ("page.visited", 10, "pricing"), ("content.downloaded", 8, "asset"), ("webinar.attended", 6, None),
              ("demo.requested", 3, None), ("trial.started", 2, None)],
    SOLUTIONS: [("email.opened", 20, None), ("email.clicked", 10, None), ("page.visited", 15, "pricing"),
                ("page.visited", 8, "path"), ("content.downloaded", 5, "asset"), ("demo.requested", 6, None),
                ("trial.started", 5, None)],
    SALES: [("email.opened", 15, None), ("page.visited", 10, "pricing"), ("sales.rejected", 4, None),
            ("deal.won", 4, None), ("deal.lost", 3, None), ("email.clicked", 5, None)],
    CUSTOMER: [("email.opened", 20, None), ("page.visited", 10, "path"), ("email.clicked", 4, None)],
    LEFT: [("email.opened", 10, None), ("page.visited", 5, "path")],
}
# Where an event moves the generator's idea of the lead (None: no change).
MOVES = {
    "form.submitted": {UNAWARE: INTERESTED},
    "webinar.attended": {UNAWARE: PROBLEM, INTERESTED: PROBLEM},        # a skip
    "content.downloaded": {INTERESTED: PROBLEM},
    "demo.requested": {INTERESTED: SALES, PROBLEM: SALES, SOLUTIONS: SALES},  # skips straight to sales
    "trial.started": {PROBLEM: SALES, SOLUTIONS: SALES},
    "sales.rejected": {SALES: SOLUTIONS},                               # a step back: recycled
    "deal.lost": {SALES: UNAWARE},                                      # a step back: dormant
    "deal.won": {SALES: CUSTOMER},
    "email.unsubscribed": {p: LEFT for p in range(7)},
}


def _tables():
    """Per phase: cumulative weights and (type, data kind) choices, for rng.choices-free picking."""
    out = {}
    for phase, mix in MIX.items():
        total, cum, picks = 0, [], []
        for kind, weight, data in mix:
            total += weight
            cum.append(total)
            picks.append((kind, data))
        out[phase] = (total, cum, picks)
    return out


TABLES = _tables()


def lead_id(k: int) -> str:
    return f"L{k:07d}"


def _attributes(rng: random.Random) -> dict:
    return {"company": {"size": rng.choice(SIZES_CO)}, "job": {"title": rng.choice(TITLES)},
            "country": rng.choice(COUNTRIES)}


def raw_events(spec: Spec) -> Iterator[tuple[int, int, str, int, dict | None, dict | None]]:
    """(index, lead number, type, time, data, attributes) in time order; the core of the generator."""
    from bisect import bisect_right

    rng = random.Random(spec.seed)
    rand, randrange = rng.random, rng.randrange
    n_leads, n_events = spec.leads, spec.events
    if n_events < n_leads:
        raise ValueError("a workload needs at least one event per lead")
    period = spec.days * DAY
    phase = bytearray(n_leads)
    quiet = bytearray(n_leads)  # stallers: leads that go silent for a while (skipped when picked)
    arrival_span = 0.7 * n_events
    next_arrival_at = 0.0
    arrived = 0
    for i in range(n_events):
        t = START + (i * period) // n_events
        if arrived < n_leads and i >= next_arrival_at:
            k = arrived
            arrived += 1
            next_arrival_at = arrived * arrival_span / n_leads
            quiet[k] = 1 if rand() < 0.25 else 0
            yield i, k, "page.visited", t, PATH_DATA[randrange(3)], _attributes(rng)
            continue
        # pick a lead that has arrived: recent ones are busier; stallers mostly stay silent
        for _ in range(4):
            if rand() < 0.5:
                window = max(1, arrived // 20)
                k = arrived - 1 - randrange(window)
            else:
                k = randrange(arrived)
            if not quiet[k] or rand() < 0.15:
                break
        r = rand()
        if r < 0.02:
            # an attribute update from the CRM (changes fit points)
            yield i, k, "lead.updated", t, None, _attributes(rng)
            continue
        if r < 0.0225:
            # about one lead in eight unsubscribes over the period (some keep sending events afterwards)
            phase[k] = LEFT
            yield i, k, "email.unsubscribed", t, None, None
            continue
        p = phase[k]
        total, cum, picks = TABLES[p]
        kind, data_kind = picks[bisect_right(cum, randrange(total))]
        if data_kind is None:
            data = None
        elif data_kind == "path":
            data = PATH_DATA[randrange(len(PATHS))]
        elif data_kind == "pricing":
            data = PATH_DATA[PRICING[randrange(2)]]
        elif data_kind == "asset":
            data = ASSETS[randrange(len(ASSETS))]
        else:
            data = FORMS[randrange(len(FORMS))]
        moves = MOVES.get(kind)
        if moves is not None:
            to = moves.get(p)
            if to is not None:
                phase[k] = to
        elif p == UNAWARE and kind == "page.visited" and data_kind == "path" and rand() < 0.05:
            phase[k] = INTERESTED  # drifting in by reading
        # a stall ends now and then; an active lead may go quiet
        if quiet[k] and rand() < 0.05:
            quiet[k] = 0
        elif not quiet[k] and rand() < 0.01:
            quiet[k] = 1
        yield i, k, kind, t, data, None


def events(spec: Spec) -> Iterator[Event]:
    """The workload as Event objects (no JSON round trip: for in-memory stepping)."""
    for i, k, kind, t, data, attributes in raw_events(spec):
        yield Event(f"e{i}", lead_id(k), kind, t, data, attributes)


def json_lines(spec: Spec) -> Iterator[str]:
    """The same workload as JSON lines, as a producer would send them (parse_event reads each)."""
    dumps = json.dumps
    last_t, last_iso = None, ""
    data_json: dict[int, str] = {}
    for i, k, kind, t, data, attributes in raw_events(spec):
        if t != last_t:
            last_t = t
            last_iso = datetime.fromtimestamp(t, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        line = f'{{"id":"e{i}","lead":"{lead_id(k)}","type":"{kind}","time":"{last_iso}"'
        if data is not None:
            d = data_json.get(id(data))
            if d is None:
                d = data_json[id(data)] = dumps(data, separators=(",", ":"))
            line += ',"data":' + d
        if attributes is not None:
            line += ',"attributes":' + dumps(attributes, separators=(",", ":"))
        yield line + "}"


def chunks(iterable, size: int):
    it = iter(iterable)
    while True:
        block = list(islice(it, size))
        if not block:
            return
        yield block
