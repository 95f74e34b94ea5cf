"""A realistic, seeded sample of events for the six-stage example (used by `make demo` and tests).

Leads follow personas seen in B2B nurturing: fast movers who skip stages, slow
readers, leads that stall and get holding content, leads that go cold and step
back as their score decays, unsubscribers, deals won and lost, leads recycled
by sales. A few duplicates and malformed lines are mixed in on purpose.
Randomness comes from an explicit seeded generator, never global state.
"""

from __future__ import annotations

import json
import random
import sys
from datetime import datetime, timedelta, timezone

import click

__all__ = ["generate", "main"]

START = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)
TITLES = ["Marketing Director", "VP Sales", "Head of Growth", "Analyst", "Marketing Manager", "CEO", "Intern"]
COUNTRIES = ["IT", "DE", "FR", "ES", "US", "GB"]
PERSONAS = ["fast", "steady", "slow", "stall", "cold", "unsubscribe", "recycled", "lost"]


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _lead_events(rng: random.Random, lead: str, persona: str, days: int) -> list[tuple[datetime, str, dict]]:
    t = START + timedelta(days=rng.uniform(0, days * 0.5), minutes=rng.randrange(600))
    out: list[tuple[datetime, str, dict]] = []

    def at(delta_days: float, kind: str, data: dict | None = None):
        nonlocal t
        t = t + timedelta(days=delta_days, minutes=rng.randrange(240))
        out.append((t, kind, data or {}))

    at(0, "page.visited", {"path": rng.choice(["/blog/what-is-demand-gen", "/", "/blog/scoring"])})
    if persona == "fast":
        at(1, "webinar.attended")
        at(2, "page.visited", {"path": "/pricing"})
        at(3, "demo.requested")
        at(rng.uniform(10, 30), rng.choice(["deal.won", "deal.won", "sales.rejected"]))
    elif persona in ("steady", "recycled", "lost"):
        at(1, "form.submitted")
        for _ in range(rng.randrange(4, 9)):
            at(rng.uniform(1, 6), rng.choice(["email.opened", "email.opened", "email.clicked", "content.downloaded"]))
        at(rng.uniform(2, 8), "page.visited", {"path": "/pricing"})
        at(rng.uniform(1, 5), "webinar.attended")
        at(rng.uniform(1, 5), "page.visited", {"path": "/pricing/enterprise"})
        at(rng.uniform(1, 5), "demo.requested")
        if persona == "recycled":
            at(rng.uniform(5, 15), "sales.rejected")
            at(rng.uniform(10, 20), "email.clicked")
            at(rng.uniform(3, 9), "demo.requested")
            at(rng.uniform(5, 20), "deal.won")
        elif persona == "lost":
            at(rng.uniform(5, 20), "deal.lost")
        else:
            at(rng.uniform(5, 25), rng.choice(["deal.won", "deal.lost"]))
    elif persona == "slow":
        at(rng.uniform(3, 10), "form.submitted")
        for _ in range(rng.randrange(3, 7)):
            at(rng.uniform(7, 20), rng.choice(["email.opened", "email.clicked", "page.visited"]),
               {"path": "/blog"} if rng.random() < 0.3 else {})
    elif persona == "stall":
        at(1, "form.submitted")
        at(2, "email.opened")  # then silence: holding loop, then dormant
    elif persona == "cold":
        at(1, "webinar.attended")  # a skip to problem established
        at(1, "email.clicked")
        at(2, "page.visited", {"path": "/pricing"})
        at(rng.uniform(40, 70), "email.opened")  # decayed meanwhile: may step back
    elif persona == "unsubscribe":
        at(1, "form.submitted")
        at(rng.uniform(2, 10), "email.opened")
        at(rng.uniform(1, 10), "email.unsubscribed")
        at(rng.uniform(1, 10), "email.opened")  # after leaving: changes nothing
    end = START + timedelta(days=days)
    return [e for e in out if e[0] < end]


def generate(leads: int = 300, days: int = 120, seed: int = 7) -> list[str]:
    """JSON lines in arrival order, with ~2% duplicates and a handful of malformed lines."""
    rng = random.Random(seed)
    rows = []
    for n in range(leads):
        lead = f"lead-{n:04d}"
        persona = PERSONAS[n % len(PERSONAS)] if n < len(PERSONAS) * 2 else rng.choice(PERSONAS)
        attributes = {
            "company": {"size": rng.choice([8, 40, 120, 250, 800, 5000])},
            "job": {"title": rng.choice(TITLES)},
            "country": rng.choice(COUNTRIES),
        }
        for i, (moment, kind, data) in enumerate(_lead_events(rng, lead, persona, days)):
            event: dict[str, object] = {"id": f"{lead}-{i}", "lead": lead, "type": kind, "time": _iso(moment)}
            if data:
                event["data"] = data
            if i == 0:
                event["attributes"] = attributes
            rows.append((moment, event))
    rows.sort(key=lambda r: (r[0], r[1]["id"]))
    lines = [json.dumps(event) for _, event in rows]
    for _ in range(max(1, len(lines) // 50)):  # duplicates: a producer that retries
        i = rng.randrange(len(lines))
        lines.insert(min(len(lines), i + rng.randrange(1, 20)), lines[i])
    malformed = [
        '{"id": "bad-1", "lead": "lead-0001", "type": "email.opened", "time": "2026-02-01T10:00:00Z"',
        '{"id": "bad-2", "type": "email.opened", "time": "2026-02-02T10:00:00Z"}',
        '{"id": "bad-3", "lead": "lead-0002", "type": "email.opend", "time": "2026-02-03T10:00:00Z"}',
        '{"id": "bad-4", "lead": "lead-0003", "type": "email.opened", "time": "yesterday"}',
        '["not", "an", "object"]',
    ]
    for line in malformed:
        lines.insert(rng.randrange(len(lines)), line)
    return lines


@click.command()
@click.option("--leads", default=300, show_default=True)
@click.option("--days", default=120, show_default=True)
@click.option("--seed", default=7, show_default=True)
def main(leads, days, seed):
    """Print a sample event file (JSON Lines) for journeys/demand_generation.journey."""
    for line in generate(leads, days, seed):
        sys.stdout.write(line + "\n")


if __name__ == "__main__":
    main()
