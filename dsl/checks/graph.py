"""Checks on the journey as a graph (networkx): reachability, ways out, cascades, overlaps."""

from __future__ import annotations

import math

import networkx as nx

from ..diagnostics import Diagnostic, Severity
from ..model import EXIT, EventTrigger, Journey, ScoreTrigger, Stage, TimeTrigger
from .logic import contains, disjoint, intersect, threshold_interval

__all__ = [
    "stage_graph",
    "check_unreachable",
    "check_dead_ends",
    "check_traps",
    "check_final_way_out",
    "check_event_overlaps",
    "check_threshold_overlaps",
    "check_cascades",
    "check_content_twice",
    "check_unsendable_content",
    "check_hold_never_starts",
    "check_initial_final",
    "check_thresholds_reachable",
    "score_bounds",
]

E, W = Severity.ERROR, Severity.WARNING


def stage_graph(j: Journey) -> nx.DiGraph:
    """Stages as nodes (plus EXIT), one edge per stage pair with every way between them."""
    g = nx.DiGraph()
    known = {s.id for s in j.stages}
    for s in j.stages:
        g.add_node(s.id)
    g.add_node(EXIT)
    for s in j.stages:
        ways = [(t.target, t) for t in s.triggers]
        if s.hold is not None:
            ways.append((s.hold.then, s.hold))
        for target, way in ways:
            if target != EXIT and target not in known:
                continue
            if g.has_edge(s.id, target):
                g[s.id][target]["ways"].append(way)
            else:
                g.add_edge(s.id, target, ways=[way])
    return g


def _fmt_score(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def check_unreachable(j: Journey):
    start = j.initial
    if start is None:
        return
    reached = nx.descendants(stage_graph(j), start.id) | {start.id}
    for s in j.stages:
        if s.id not in reached:
            yield Diagnostic("C040", E, f"no lead can ever reach stage `{s.id}`", s.id_span,
                             f"add a trigger that leads to `{s.id}` from a stage leads can reach, or remove it")


def check_dead_ends(j: Journey):
    for s in j.stages:
        if not s.final and not s.triggers and s.hold is None:
            yield Diagnostic("C041", E, f"stage `{s.id}` has no way out", s.id_span,
                             "add a trigger (`on ...`, `when score ...`, `after ...`) or mark it `final`")


def check_traps(j: Journey):
    g = stage_graph(j)
    goals = {s.id for s in j.stages if s.final} | {EXIT}
    can_finish = set(goals)
    for goal in goals:
        can_finish |= nx.ancestors(g, goal)
    for s in j.stages:
        if s.final or s.id in can_finish or (not s.triggers and s.hold is None):
            continue  # dead ends are reported by check_dead_ends
        yield Diagnostic("C042", E, f"a lead in `{s.id}` can never reach a final stage or leave the journey",
                         s.id_span,
                         "give this loop a way out: a trigger to a `final` stage, `-> exit`, "
                         "or a holding loop that ends with `then -> ...`")


def check_final_way_out(j: Journey):
    for s in j.stages:
        if s.final and (s.triggers or s.hold is not None):
            way = s.triggers[0].span if s.triggers else s.hold.span  # type: ignore[union-attr]
            yield Diagnostic("C043", E, f"final stage `{s.id}` has a way out", way,
                             "a final stage is where a journey ends: remove `final` or remove its triggers")


def check_initial_final(j: Journey):
    for s in j.stages:
        if s.initial and s.final:
            yield Diagnostic("C053", W, f"stage `{s.id}` is both initial and final", s.id_span,
                             "leads would enter and finish at once; is that intended?")


def check_event_overlaps(j: Journey):
    for s in j.stages:
        events = [t for t in s.triggers if isinstance(t, EventTrigger)]
        for i, later in enumerate(events):
            for earlier in events[:i]:
                if earlier.event != later.event:
                    continue
                if earlier.condition is None or earlier.condition == later.condition:
                    same = earlier.target == later.target
                    yield Diagnostic(
                        "C044", W if same else E,
                        f"this trigger never fires: line {earlier.span.line} already takes every "
                        f"`{later.event}` in `{s.id}`", later.span,
                        "remove it, or make the earlier one more specific with `where`",
                    )
                    break
                if earlier.target != later.target and not disjoint(earlier.condition, later.condition):
                    yield Diagnostic(
                        "C045", W,
                        f"`{later.event}` can match both this trigger and line {earlier.span.line} "
                        f"(to `{earlier.target}`); the earlier one wins", later.span,
                        "add `where` conditions that exclude each other to make the choice explicit",
                    )
                    break


def check_threshold_overlaps(j: Journey):
    for s in j.stages:
        thresholds = [t for t in s.triggers if isinstance(t, ScoreTrigger)]
        for i, later in enumerate(thresholds):
            for earlier in thresholds[:i]:
                a, b = threshold_interval(earlier), threshold_interval(later)
                if contains(a, b):
                    yield Diagnostic(
                        "C044", W if earlier.target == later.target else E,
                        f"this threshold never fires: line {earlier.span.line} "
                        f"(`score {earlier.op} {_fmt_score(earlier.value)}`) always fires first", later.span,
                        "order thresholds from the most to the least demanding, e.g. `>= 80` before `>= 40`",
                    )
                    break


def check_cascades(j: Journey):
    """Threshold moves happen instantly on entry; a cycle of them whose ranges meet loops forever."""
    known = {s.id: s for s in j.stages}
    g = nx.DiGraph()
    for s in j.stages:
        for t in s.triggers:
            if isinstance(t, ScoreTrigger) and t.target in known and not g.has_edge(s.id, t.target):
                g.add_edge(s.id, t.target, trigger=t)
    reported = set()
    for cycle in nx.simple_cycles(g, length_bound=len(known)):
        interval = (-math.inf, False, math.inf, False)
        for a, b in zip(cycle, cycle[1:] + cycle[:1]):
            interval = intersect(interval, threshold_interval(g[a][b]["trigger"]))  # type: ignore[arg-type]
            if interval is None:
                break
        key = frozenset(cycle)
        if interval is None or key in reported:
            continue
        reported.add(key)
        first = g[cycle[0]][cycle[1 % len(cycle)]]["trigger"]
        path = " -> ".join(cycle + cycle[:1])
        low = "" if interval[0] == -math.inf else ("[" if interval[1] else "(") + _fmt_score(interval[0])
        high = "" if interval[2] == math.inf else _fmt_score(interval[2]) + ("]" if interval[3] else ")")
        where = f"scores in {low or '(-inf'}, {high or 'inf)'}"
        yield Diagnostic("C047", E, f"score thresholds can move a lead round in circles: {path}", first.span,
                         f"for {where} every threshold on the way is met; make the ranges exclude each other")


def check_content_twice(j: Journey):
    g = stage_graph(j)
    sends = [(s, x) for s in j.stages for x in s.sends]
    for i, (stage_b, b) in enumerate(sends):
        for stage_a, a in sends[:i]:
            if a.content != b.content:
                continue
            if stage_a.id == stage_b.id or nx.has_path(g, stage_a.id, stage_b.id) or nx.has_path(
                g, stage_b.id, stage_a.id
            ):
                yield Diagnostic("C048", W, f"content `{b.content}` is also sent at line {a.span.line}",
                                 b.span, "a lead gets each content once: the second send is skipped for it")
                break


def _in_stage_limit(s: Stage):
    limits = [t for t in s.triggers if isinstance(t, TimeTrigger) and t.mode == "in stage"]
    return min(limits, key=lambda t: t.after.seconds) if limits else None


def check_unsendable_content(j: Journey):
    for s in j.stages:
        limit = _in_stage_limit(s)
        if limit is None:
            continue
        for x in s.sends:
            if x.after is not None and x.after.seconds >= limit.after.seconds:
                yield Diagnostic("C050", W, f"`{x.content}` is never sent: leads leave `{s.id}` after {limit.after}",
                                 x.span, f"send it sooner than {limit.after}, or stay longer (line {limit.span.line})")


def check_hold_never_starts(j: Journey):
    for s in j.stages:
        if s.hold is None:
            continue
        idles = [t for t in s.triggers if isinstance(t, TimeTrigger)]
        for t in idles:
            if t.mode == "idle" and t.after.seconds <= s.hold.stall_after.seconds:
                yield Diagnostic("C051", W, "this holding loop never starts", s.hold.span,
                                 f"leads idle for {t.after} already move on (line {t.span.line}); "
                                 "stall sooner or wait longer there")
                break


def score_bounds(j: Journey) -> tuple[float, float]:
    """The lowest and highest score a lead can ever have (inf when unbounded)."""
    fit_max = sum(f.points for f in j.fit if f.points > 0)
    fit_min = sum(f.points for f in j.fit if f.points < 0)
    half_life = j.decay.half_life.seconds if j.decay is not None and j.decay.half_life.seconds > 0 else None

    def extreme(rules) -> float:
        total = 0.0
        for r in rules:
            if r.cap_count is None or r.cap_window is None or half_life is None:
                return math.inf
            window = max(r.cap_window.seconds, 1)
            # capped points every window, decaying: a geometric series
            total += r.cap_count * abs(r.points) / (1 - 2 ** (-window / half_life))
        return total

    high = fit_max + extreme([r for r in j.scoring if r.points > 0])
    low = fit_min - extreme([r for r in j.scoring if r.points < 0])
    return low, high


def check_thresholds_reachable(j: Journey):
    low, high = score_bounds(j)
    for s in j.stages:
        for t in s.triggers:
            if not isinstance(t, ScoreTrigger):
                continue
            v = float(t.value)
            if t.upward and (v > high or (t.op == ">" and v >= high)):
                yield Diagnostic("C046", E, f"no lead can reach `score {t.op} {_fmt_score(v)}`", t.span,
                                 f"the highest score the scoring rules allow is {_fmt_score(high)}; "
                                 "lower the threshold or add scoring rules")
            elif not t.upward and (v < low or (t.op == "<" and v <= low)):
                yield Diagnostic("C046", E, f"no lead can go down to `score {t.op} {_fmt_score(v)}`", t.span,
                                 f"the lowest possible score is {_fmt_score(low)}; add negative points "
                                 "or `decay`, or raise the threshold")
