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


KNOWN_DISCREPANCIES = (
    Known(
        "handoff-before-sends",
        'engine.md: "Entering a stage sends its on-entry content, hands off to sales if the stage says so"',
        "the handoff action comes before the on-entry sends, whatever the order written",
        """journey "d1"
stage a
  initial
  on go -> b
stage b
  send email "x" on entry
  handoff to sales
  on done -> c
stage c
  final
""",
        ('{"id": 1, "lead": "L", "type": "go", "time": "2026-01-01T00:00:00Z"}',),
        "2026-01-02T00:00:00Z",
    ),
    Known(
        "enroll-triggers-before-thresholds",
        'engine.md: "On enrollment: fit points, score rules, entry of the initial stage, then the event\'s '
        'triggers in that stage" (and entering a stage "evaluates the new stage\'s thresholds again (a cascade)")',
        "the enrolling event's triggers are tried first; the initial stage's thresholds only when none fired",
        """journey "d2"
scoring
  go +50
stage a
  initial
  on go -> c
  when score >= 20 -> b
stage b
  on go -> d
stage c
  final
stage d
  final
""",
        ('{"id": 1, "lead": "L", "type": "go", "time": "2026-01-01T00:00:00Z"}',),
        "2026-01-02T00:00:00Z",
    ),
    Known(
        "fit-needs-a-known-attribute",
        'language.md: "A field that is missing equals nothing: every comparison with it is false, except != '
        'and not in (the opposites of == and in), which are true" and "A lead\'s fit points are the sum of the '
        'lines its attributes meet now"',
        "fit points are 0 until the lead's profile holds at least one field a fit line reads",
        """journey "d3"
fit
  country not in ["US", "CA"] +5
scoring
  go +1
stage a
  initial
  on done -> b
stage b
  final
""",
        ('{"id": 1, "lead": "L", "type": "go", "time": "2026-01-01T00:00:00Z"}',),
        "2026-01-02T00:00:00Z",
    ),
)

#: what the comparison tests switch on in the reference, to compare everything else exactly
VARIANTS = frozenset(k.name for k in KNOWN_DISCREPANCIES)
