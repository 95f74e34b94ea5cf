"""KNOWN DISCREPANCIES between the docs and the engine, found by the reference model.

Each entry is listed in tests/reference/FINDINGS.md with the docs' sentence and a
verdict. The comparison tests run the reference with these variants switched on
(so every other rule is still compared exactly), and `test_known_discrepancy`
proves, on each entry's minimal journey, that the engine still departs from the
docs: when the lead fixes the engine or the docs, that test fails and the entry
is removed from this table (and the variant from tests/reference/model.py).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Known", "KNOWN_DISCREPANCIES", "VARIANTS"]


@dataclass(frozen=True)
class Known:
    name: str
    docs: str  # the sentence of the docs the engine departs from
    engine: str  # what the engine does
    journey: str  # a minimal journey
    events: tuple[str, ...]  # a minimal event stream that shows it
    tick: str


#: Open: crossing-lost-behind-a-timer (D4). Settled: handoff-before-sends, enroll-triggers-before-thresholds,
#: fit-needs-a-known-attribute: see tests/reference/FINDINGS.md.
KNOWN_DISCREPANCIES: tuple[Known, ...] = (
    Known(
        name="crossing-lost-behind-a-timer",
        docs=("engine.md, Score and decay: \"Thresholds are levels. After any step (event or tick), no threshold "
              "of the lead's stage holds at the lead's clock\"; language.md: a threshold is \"a level, tested "
              "after every event, timer and arrival, and crossed by decay alone\""),
        engine=("a decay crossing due at the same second as a timer ordered before it (a delayed or held send) "
                "never fires: the lead stays in b, under its threshold, until its next event"),
        journey=("journey \"d4\"\nscoring\n  go +40\n  decay half-life 12 hours\nstage a\n  initial\n  on go -> b\n"
                 "stage b\n  send email \"later\" after 1 day\n  when score <= 10 -> c\nstage c\n  final\n"),
        events=('{"id": 1, "lead": "L", "type": "go", "time": "2026-01-01T00:00:00Z"}',),
        tick="2026-01-05T00:00:00+00:00",
    ),
)

VARIANTS = frozenset(k.name for k in KNOWN_DISCREPANCIES)
