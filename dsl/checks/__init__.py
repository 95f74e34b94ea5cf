"""Every check a journey gets before it runs: small named functions, run in one pass.

Each check takes the merged journey and yields diagnostics; `run_checks` runs all
of them, so a marketer sees every problem at once, not the first one.
"""

from __future__ import annotations

from ..diagnostics import Diagnostic, sort_key
from ..model import Journey
from . import graph, lead, moves, names, timing, visits

__all__ = ["CHECKS", "GRAPH_CHECKS", "run_checks"]

# Checks that read the stage graph: their findings would only echo a broken name.
GRAPH_CHECKS = (
    graph.check_unreachable,
    graph.check_stuck,
    graph.check_traps,
    graph.check_cascades,
    graph.check_content_twice,
    visits.check_reentry_sends,
)
NAME_ERRORS = {"C030", "C031", "C032", "C033", "C052"}

CHECKS = (
    names.check_has_stages,
    names.check_duplicate_stages,
    names.check_initial_stage,
    names.check_unknown_targets,
    names.check_self_targets,
    names.check_durations,
    names.check_counts,
    names.check_numbers,
    names.check_content_library,
    names.check_event_typos,
    names.check_regexes,
    names.check_lead_conditions,
    names.check_lengths,
    names.check_remembered,
    graph.check_unreachable,
    graph.check_dead_ends,
    graph.check_stuck,
    graph.check_traps,
    graph.check_final_way_out,
    graph.check_initial_final,
    graph.check_event_overlaps,
    graph.check_goals,
    graph.check_never_true,
    graph.check_threshold_overlaps,
    graph.check_timer_overlaps,
    graph.check_cascades,
    graph.check_content_twice,
    graph.check_unsendable_content,
    graph.check_hold_never_starts,
    graph.check_thresholds_reachable,
    moves.check_moves,
    timing.check_zones,
    timing.check_windows,
    timing.check_anchors,
    timing.check_since,
    timing.check_timer_cycles,
    lead.check_lead_score_declared,
    lead.check_lead_thresholds_reachable,
    lead.check_lead_scoring_conditions,
    visits.check_reentry_sends,
    visits.check_every_visit_without_reentry,
    visits.check_reentry_without_enroll,
    visits.check_actions_never_done,
)


def run_checks(journey: Journey) -> list[Diagnostic]:
    """Every check, in one pass; graph checks are skipped when names are broken (they would echo them)."""
    found: list[Diagnostic] = []
    for check in CHECKS:
        if check in GRAPH_CHECKS and any(d.code in NAME_ERRORS for d in found):
            continue
        if check.__module__ == graph.__name__ and any(d.code == "C061" for d in found):
            continue  # a number too large to compute with: the graph checks reason about numbers
        found.extend(check(journey))
    return sorted(found, key=sort_key)
