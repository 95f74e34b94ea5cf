"""Checks of the lead-wide rules: the lead score one journey reads, and rules journeys must share.

A journey reads the lead score with `when lead score`; the score itself is
declared by `lead scoring`, usually in a file every journey includes. Journeys
run together must declare the same lead-wide rules (or none): there is one lead
score and one cap per lead, not one per journey.
"""

from __future__ import annotations

from ..diagnostics import Diagnostic, Severity
from ..model import Journey, ScoreTrigger, compares, hads, lead_field
from .liveness import score_bounds, threshold_unreachable

__all__ = ["check_lead_score_declared", "check_lead_thresholds_reachable", "check_lead_scoring_conditions",
           "lead_text", "check_lead_agreement"]

E = Severity.ERROR


def _lead_thresholds(j: Journey):
    for s in j.stages:
        for t in s.triggers:
            if isinstance(t, ScoreTrigger) and t.lead:
                yield t


def check_lead_score_declared(j: Journey):
    if j.lead_scoring or j.lead_decay is not None:
        return
    for t in _lead_thresholds(j):
        yield Diagnostic("C110", E,
                         "`when lead score` reads the lead score, but this journey declares no `lead scoring`",
                         t.span, "add (or include) the shared `lead scoring` block, e.g. `include \"lead.coltiva\"`; "
                         "for this journey's own score write `when score`")


def check_lead_thresholds_reachable(j: Journey):
    if not j.lead_scoring and j.lead_decay is None:
        return  # C110 says what is missing
    bounds = score_bounds(j, lead=True)
    for t in _lead_thresholds(j):
        if threshold_unreachable(t, bounds):
            way = "up to" if t.upward else "down to"
            yield Diagnostic("C112", E, f"no lead score can go {way} `lead score {t.op} {t.value:g}`", t.span,
                             "the `lead scoring` rules never give such a score; change the threshold or the rules")


def check_lead_scoring_conditions(j: Journey):
    """C025: a `lead scoring` rule reads the event's own fields only.

    The lead score counts from the lead's first event, before any journey keeps the
    lead's attributes or the events it had, so `lead.FIELD` and `had EVENT` there would
    read nothing (they were silently false before this check)."""
    for rule in j.lead_scoring:
        for c in compares(rule.condition):
            if lead_field(c.field) is not None:
                yield Diagnostic("C025", E, f"a `lead scoring` rule reads the event's own fields only: `{c.field}` "
                                 "is the lead's attribute", c.span,
                                 "test it in a journey's own `scoring` (which reads the lead), or send the value "
                                 "in the event's data")
        for h in hads(rule.condition):
            yield Diagnostic("C025", E, "a `lead scoring` rule reads the event's own fields only, not the events "
                             "the lead had", h.span,
                             "test `had EVENT` in a journey's own `scoring` or in a `where` condition instead")


def lead_text(j: Journey) -> str:
    """The lead-wide rules of a journey as canonical text ("" when it declares none): what journeys must share."""
    from ..formatter import format_journey

    return format_journey(Journey(name=None, lead_scoring=j.lead_scoring, lead_decay=j.lead_decay,
                                  lead_caps=j.lead_caps))


def check_lead_agreement(journeys: list[Journey]) -> list[Diagnostic]:
    """C113: journeys run together that declare different lead-wide rules (journeys declaring none take part)."""
    first: Journey | None = None
    found = []
    for j in journeys:
        text = lead_text(j)
        if not text:
            continue
        if first is None:
            first = j
        elif text != lead_text(first):
            found.append(Diagnostic(
                "C113", E, f"journeys {first.name!r} and {j.name!r} declare different lead-wide rules "
                "(`lead scoring`, `... across journeys`)", j.span,
                "there is one lead score and one cap per lead: declare them once in a shared file both include"))
    return found
