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


#: Open: none. Settled: handoff-before-sends, enroll-triggers-before-thresholds, fit-needs-a-known-attribute,
#: crossing-lost-behind-a-timer: see tests/reference/FINDINGS.md.
KNOWN_DISCREPANCIES: tuple[Known, ...] = ()

VARIANTS = frozenset(k.name for k in KNOWN_DISCREPANCIES)
