"""Checks on the journey as a graph (networkx): reachability, ways out, cascades, overlaps."""

from __future__ import annotations

import math
from typing import TypeGuard

import networkx as nx

from ..diagnostics import Diagnostic, Severity
from ..model import EXIT, EventTrigger, Journey, ScoreTrigger, Stage, TimeTrigger
from .liveness import (
    HOLD,
    dead_goals,
    dead_ways,
    earlier_of_event,
    goal_targets,
    hold_blocker,
    live_targets,
    score_bounds,
    shadowing_event,
    shadowing_exit,
    shadowing_goal,
    shadowing_threshold,
    shadowing_timer,
    threshold_unreachable,
)
from .logic import disjoint, intersect, never_true, threshold_interval

__all__ = [
    "stage_graph",
    "check_unreachable",
    "check_dead_ends",
    "check_stuck",
    "check_traps",
    "check_final_way_out",
    "check_event_overlaps",
    "check_goals",
    "check_never_true",
    "check_threshold_overlaps",
    "check_timer_overlaps",
    "check_cascades",
    "check_content_twice",
    "check_unsendable_content",
    "check_hold_never_starts",
    "check_initial_final",
    "check_thresholds_reachable",
    "score_bounds",
]

E, W = Severity.ERROR, Severity.WARNING


def stage_graph(j: Journey, live: bool = True) -> nx.DiGraph:
    """Stages as nodes (plus EXIT), an edge for each way between two stages.

    With `live` (the default), ways that can never fire (see `liveness`) are left
    out, and so are ways back to the stage itself (reported on their own).
    """
    g = nx.DiGraph()
    known = {s.id for s in j.stages}
    g.add_nodes_from(known)
    g.add_node(EXIT)
    edges = []
    for s in j.stages:
        targets = live_targets(j, s) if live else s.targets() + goal_targets(j, s, live=False)
        edges += [(s.id, target) for target in targets if (target == EXIT or target in known) and target != s.id]
    g.add_edges_from(edges)  # one call, not one per way
    return g


def _fmt_score(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def _has_ways(s: Stage) -> bool:
    return bool(s.triggers) or s.hold is not None


_live: list = []


def _live_graph(j: Journey) -> tuple[nx.DiGraph, set[str]]:
    """The live stage graph and what the first stage reaches in it (itself included; every stage when there
    is no first stage), made once per journey: check_unreachable and check_traps read the same ones."""
    if _live and _live[0] is j:
        return _live[1], _live[2]
    g = stage_graph(j)
    start = j.initial
    reached = nx.descendants(g, start.id) | {start.id} if start is not None else {s.id for s in j.stages}
    _live[:] = [j, g, reached]
    return g, reached


def check_unreachable(j: Journey):
    start = j.initial
    if start is None:
        return
    _, reached = _live_graph(j)
    for s in j.stages:
        if s.id not in reached:
            yield Diagnostic("C040", E, f"no lead can ever reach stage `{s.id}`", s.id_span,
                             f"add a trigger that leads to `{s.id}` from a stage leads can reach, or remove it")


def check_dead_ends(j: Journey):
    for s in j.stages:
        if not s.final and not _has_ways(s) and not goal_targets(j, s, live=False):
            yield Diagnostic("C041", E, f"stage `{s.id}` has no way out", s.id_span,
                             "add a trigger (`on ...`, `when score ...`, `after ...`) or mark it `final`")


def check_stuck(j: Journey):
    """A stage with ways out of which none can ever fire is as stuck as one with none."""
    dead = dead_ways(j)
    for s in j.stages:
        goals = goal_targets(j, s, live=False)
        if s.final or not (_has_ways(s) or goals) or live_targets(j, s):
            continue
        ways = [(i, t.span.line) for i, t in enumerate(s.triggers)]
        if s.hold is not None:
            ways.append((HOLD, s.hold.span.line))
        reasons = [f"line {line}: {dead[(s.id, i)]}" for i, line in ways]
        reasons += [f"goal at line {j.goals[i].span.line}: {why}" for i, why in dead_goals(j).items()
                    if j.goals[i].target != s.id]
        why = "; ".join(reasons)
        yield Diagnostic("C059", E, f"no lead can ever leave stage `{s.id}`: none of its ways out can fire",
                         s.id_span, f"{why}; fix one of them or mark the stage `final`")


def check_traps(j: Journey):
    """A group of stages that lead only to each other, with no final stage and no exit among them."""
    g, reached = _live_graph(j)
    order = {s.id: n for n, s in enumerate(j.stages)}
    if EXIT in order:  # a stage named `exit` (C024): the node is both; leave it out, as before that error
        g = g.copy()
        g.remove_node(EXIT)
        start = j.initial
        reached = nx.descendants(g, start.id) | {start.id} if start is not None else set(order)
    finals = {s.id for s in j.stages if s.final}
    # `exit` stays in the graph: it has no way out, so it is a group of its own (passed over below as a
    # node with no way out), and a group with a way to it has a way out of the group
    exits = {s.id for s in j.stages if EXIT in live_targets(j, s)} if EXIT in order else set()
    for group in nx.strongly_connected_components(g):
        if group & finals or group & exits or not group & reached:
            continue
        if any(target not in group for s in group for target in g.successors(s)):
            continue  # a way leads out of the group
        if len(group) == 1 and not g.out_degree(next(iter(group))):
            continue  # a stage with no way out: reported by check_dead_ends / check_stuck
        names = sorted(group, key=order.__getitem__)
        first = j.stages[order[names[0]]]
        listed = ", ".join(f"`{n}`" for n in names)
        yield Diagnostic("C042", E, f"a lead in {listed} can never reach a final stage or leave the journey",
                         first.id_span,
                         "give this loop a way out: a trigger to a `final` stage, `-> exit`, "
                         "or a holding loop that ends with `then -> ...`")


def check_final_way_out(j: Journey):
    for s in j.stages:
        if s.final and _has_ways(s):
            way = s.triggers[0].span if s.triggers else s.hold.span  # type: ignore[union-attr]
            yield Diagnostic("C043", E, f"final stage `{s.id}` has a way out", way,
                             "a final stage is where a journey ends: remove `final` or remove its triggers")


def check_initial_final(j: Journey):
    for s in j.stages:
        if s.initial and s.final:
            yield Diagnostic("C053", W, f"stage `{s.id}` is both initial and final", s.id_span,
                             "leads would enter and finish at once; is that intended?")


def _event_overlap(s: Stage, i: int) -> EventTrigger | None:
    """An earlier trigger to another stage that may take some of this trigger's events."""
    later = s.triggers[i]
    if not isinstance(later, EventTrigger):
        return None
    for _, earlier in earlier_of_event(s, i):
        if earlier.target != later.target and not disjoint(earlier.condition, later.condition):
            return earlier
    return None


def _goal_overlap(j: Journey, s: Stage, t: EventTrigger) -> EventTrigger | None:
    """A goal (to another stage than this trigger's) that may take some of its events first."""
    if s.final:
        return None
    for g in j.goals:
        if (g.target not in (s.id, t.target) and set(g.events) & set(t.events)
                and not disjoint(g.condition, t.condition)):
            return g
    return None


def check_goals(j: Journey):
    """Goals: a goal to `exit`, and goals that never move a lead (an exit rule or an earlier goal takes them)."""
    dead = dead_goals(j)
    for i, g in enumerate(j.goals):
        if g.target == EXIT:
            yield Diagnostic("C090", E, "a goal leads to a stage; `-> exit` here would be an exit rule",
                             g.target_span, f"write `exit on {' or '.join(g.events)}"
                             f"{'' if g.condition is None else ' where ...'}` to remove leads on this event")
        elif i in dead:
            yield Diagnostic("C044", E, f"this goal never fires: {dead[i]}", g.span,
                             "remove it, or narrow the rule that takes it first with `where`")


def check_event_overlaps(j: Journey):
    for s in j.stages:
        for i, later in enumerate(s.triggers):
            if not isinstance(later, EventTrigger):
                continue
            earlier = shadowing_event(s, i)
            rule = shadowing_exit(j, later)
            goal = shadowing_goal(j, s, later) if earlier is None and rule is None else None
            if earlier is not None and earlier.condition is None:
                yield Diagnostic(
                    "C044", W if earlier.target == later.target else E,
                    f"this trigger never fires: line {earlier.span.line} already takes every "
                    f"`{' or '.join(later.events)}` in `{s.id}`", later.span,
                    "remove it, or make the earlier one more specific with `where`",
                )
            elif earlier is not None:
                yield Diagnostic(
                    "C044", W if earlier.target == later.target else E,
                    f"this trigger never fires: every `{' or '.join(later.events)}` it matches also matches "
                    f"line {earlier.span.line}, which comes first", later.span,
                    "put the more specific trigger first (the first matching trigger wins), or remove it",
                )
            elif rule is not None:
                yield Diagnostic(
                    "C044", W if later.target == EXIT else E,
                    f"this trigger never fires: `exit on {' or '.join(rule.events)}` (line {rule.span.line}) "  # type: ignore[attr-defined]
                    "removes the lead first", later.span,
                    "remove the trigger, or narrow the exit rule with `where`",
                )
            elif goal is not None:
                yield Diagnostic(
                    "C044", W if later.target == goal.target else E,
                    f"this trigger never fires in `{s.id}`: the goal at line {goal.span.line} "
                    f"(`-> {goal.target}`) takes every such event first", later.span,
                    "goals are tried before a stage's triggers: remove the trigger, or narrow the goal with `where`",
                )
            elif (overlap := _goal_overlap(j, s, later)) is not None:
                yield Diagnostic(
                    "C045", W,
                    f"this trigger and the goal at line {overlap.span.line} (to `{overlap.target}`) may match "
                    "the same event; the goal wins", later.span,
                    "add `where` conditions that exclude each other to make the choice explicit",
                )
            elif (overlap := _event_overlap(s, i)) is not None:
                yield Diagnostic(
                    "C045", W,
                    f"`{' or '.join(later.events)}` can match both this trigger and line {overlap.span.line} "
                    f"(to `{overlap.target}`); the earlier one wins", later.span,
                    "add `where` conditions that exclude each other to make the choice explicit",
                )


def check_never_true(j: Journey):
    for c in j.conditions():
        if c is not None and never_true(c):
            yield Diagnostic("C058", W, "this condition can never be true", c.span,
                             "its parts exclude each other (e.g. `plan == \"a\" and plan == \"b\"`); "
                             "did you mean `or`?")


def check_threshold_overlaps(j: Journey):
    for s in j.stages:
        for i, later in enumerate(s.triggers):
            earlier = shadowing_threshold(s, i)
            if earlier is None:
                continue
            yield Diagnostic(
                "C044", W if earlier.target == later.target else E,
                f"this threshold never fires: line {earlier.span.line} "
                f"(`score {earlier.op} {_fmt_score(earlier.value)}`) always fires first", later.span,
                "order thresholds from the most to the least demanding, e.g. `>= 80` before `>= 40`",
            )


def check_timer_overlaps(j: Journey):
    for s in j.stages:
        for i, later in enumerate(s.triggers):
            earlier = shadowing_timer(s, i)
            if earlier is None:
                continue
            yield Diagnostic(
                "C044", W if earlier.target == later.target else E,
                f"this timer never fires: line {earlier.span.line} (`after {earlier.after} {earlier.mode}`) "
                "always fires first", later.span,
                "a lead idle for a time has also been in the stage that long; make this timer shorter "
                "or remove it",
            )


def _first_met(rules: list[tuple], score: float) -> str | None:
    """Where a lead entering a stage with this score goes at once (first threshold met wins).

    `rules` are the stage's thresholds as (low, low_closed, high, high_closed, target).
    """
    for low, low_closed, high, high_closed, target in rules:
        if (low < score or (low_closed and low == score)) and (score < high or (high_closed and score == high)):
            return target
    return None


def _journey_threshold(t) -> TypeGuard[ScoreTrigger]:
    """A `when score` threshold: `when lead score` ones compare another score (dsl.checks.lead checks them)."""
    return isinstance(t, ScoreTrigger) and not t.lead


def _threshold_rules(s: Stage) -> list[tuple]:
    return [threshold_interval(t) + (t.target,) for t in s.triggers if _journey_threshold(t)]


def _threshold_graph(j: Journey) -> nx.DiGraph:
    known = {s.id for s in j.stages}
    g = nx.DiGraph()
    for s in j.stages:
        for t in s.triggers:
            if _journey_threshold(t) and t.target in known and t.target != s.id:
                g.add_edge(s.id, t.target)
    return g


def _samples(stages: dict[str, Stage], group: set[str]):
    """Scores to try, each with the stages a loop at that score must pass through.

    The scores where a loop exists form a range; its lower end is a threshold value
    of a stage on the loop (or there is none, and any low score shows the loop).
    So trying each value v, and a score just above it, from the stages with a
    threshold at v, finds every loop without trying every stage at every score.
    """
    by_value: dict[float, set[str]] = {}
    for sid in group:
        for t in stages[sid].triggers:
            if _journey_threshold(t):
                by_value.setdefault(float(t.value), set()).add(sid)
    values = sorted(by_value)
    yield values[0] - 1, sorted(group)
    for a, b in zip(values, values[1:] + [values[-1] + 2]):
        starts = sorted(by_value[a])
        yield a, starts
        yield (a + b) / 2, starts


def _cascade_cycles(rules: dict[str, list], group: set[str], score: float, starts: list[str]):
    """At a fixed score every stage has at most one instant move: follow them, yield each loop."""
    done: set[str] = set()
    for start in starts:
        path: list[str] = []
        on_path: dict[str, int] = {}
        here: str | None = start
        while here is not None and here in group and here not in done and here not in on_path:
            on_path[here] = len(path)
            path.append(here)
            here = _first_met(rules[here], score)
        if here is not None and here in on_path:
            yield path[on_path[here]:]
        done.update(path)


def check_cascades(j: Journey):
    """Threshold moves happen instantly on entry; a loop of them at one score would never stop."""
    stages = {s.id: s for s in j.stages}
    order = {s.id: n for n, s in enumerate(j.stages)}
    reported: set[frozenset] = set()
    for group in nx.strongly_connected_components(_threshold_graph(j)):
        if len(group) < 2:
            continue
        rules = {sid: _threshold_rules(stages[sid]) for sid in group}
        for score, starts in _samples(stages, group):
            for cycle in _cascade_cycles(rules, group, score, starts):
                if frozenset(cycle) in reported:
                    continue
                reported.add(frozenset(cycle))
                turn = min(range(len(cycle)), key=lambda k: order[cycle[k]])
                yield _cascade_diagnostic(stages, cycle[turn:] + cycle[:turn])


def _complement(t: ScoreTrigger):
    """The scores where threshold `t` is not met, as an interval (None for `==`/`!=`)."""
    inf, v = math.inf, float(t.value)
    return {
        ">=": (-inf, False, v, False),
        ">": (-inf, False, v, True),
        "<=": (v, False, inf, False),
        "<": (v, True, inf, False),
    }.get(t.op)


def _cascade_diagnostic(stages: dict[str, Stage], cycle: list[str]) -> Diagnostic:
    interval = (-math.inf, False, math.inf, False)
    first = None
    for a, b in zip(cycle, cycle[1:] + cycle[:1]):
        thresholds = [t for t in stages[a].triggers if _journey_threshold(t)]
        k = next(k for k, t in enumerate(thresholds) if t.target == b)
        first = first or thresholds[k]
        interval = intersect(interval, threshold_interval(thresholds[k])) or interval
        for earlier in thresholds[:k]:  # an earlier threshold met first would lead elsewhere
            outside = _complement(earlier)
            if outside is not None:
                interval = intersect(interval, outside) or interval
    path = " -> ".join(cycle + cycle[:1])
    low = "(-inf" if interval[0] == -math.inf else ("[" if interval[1] else "(") + _fmt_score(interval[0])
    high = "inf)" if interval[2] == math.inf else _fmt_score(interval[2]) + ("]" if interval[3] else ")")
    return Diagnostic("C047", E, f"score thresholds can move a lead round in circles: {path}",
                      first.span,  # type: ignore[union-attr]
                      f"for scores in {low}, {high} every threshold on the way is met; "
                      "make the ranges exclude each other")


def check_content_twice(j: Journey):
    """The same content sent by a `send` line that one lead can meet after another send of it.

    The other send is a `send` line, or a holding loop that a lead may pass
    before it reaches this line: a lead gets each content once, so the second
    `send` is skipped for it. (A holding loop after a `send` line is not reported:
    a loop is a series and sends its editions whatever came before.)
    """
    g = stage_graph(j, live=False)
    by_content: dict[str, list] = {}
    loops: dict[str, list] = {}
    for s in j.stages:
        for x in s.sends:
            by_content.setdefault(x.content, []).append((s, x))
        if s.hold is not None:
            loops.setdefault(s.hold.content, []).append(s)
    below: dict[str, set] = {}

    def reaches(a: str, b: str) -> bool:
        if a not in below:
            below[a] = nx.descendants(g, a)
        return b in below[a]

    for content, sends in by_content.items():
        for i, (stage_b, b) in enumerate(sends):
            earlier = next((a for stage_a, a in sends[:i] if stage_a.id == stage_b.id
                            or reaches(stage_a.id, stage_b.id) or reaches(stage_b.id, stage_a.id)), None)
            if earlier is not None:
                yield Diagnostic("C048", W, f"content `{b.content}` is also sent at line {earlier.span.line}",
                                 b.span, "a lead gets each content once: the second send is skipped for it")
                continue
            loop = next((s for s in loops.get(content, ()) if s.id == stage_b.id or reaches(s.id, stage_b.id)),
                        None)
            if loop is not None:
                yield Diagnostic("C048", W, f"content `{b.content}` is also sent by the holding loop at line "
                                 f"{loop.hold.span.line}", b.span,
                                 "a lead that got it from the loop does not get it again from this line")


def _in_stage_limit(s: Stage):
    limits = [t for t in s.triggers if isinstance(t, TimeTrigger) and t.mode == "in stage"]
    return min(limits, key=lambda t: t.after.seconds) if limits else None


def check_unsendable_content(j: Journey):
    for s in j.stages:
        limit = _in_stage_limit(s)
        if limit is None:
            continue
        for x in s.sends:
            if x.after is not None and x.after.seconds > limit.after.seconds:
                yield Diagnostic("C050", W, f"`{x.content}` is never sent: leads leave `{s.id}` after {limit.after}",
                                 x.span,
                                 f"send it no later than {limit.after}, or stay longer (line {limit.span.line})")


def check_hold_never_starts(j: Journey):
    for s in j.stages:
        t = hold_blocker(s)
        if t is not None:
            yield Diagnostic("C051", W, "this holding loop never starts", s.hold.span,  # type: ignore[union-attr]
                             f"leads idle for {t.after} already move on (line {t.span.line}); "
                             "stall sooner or wait longer there")


def check_thresholds_reachable(j: Journey):
    bounds = score_bounds(j)
    low, high = bounds
    for s in j.stages:
        for t in s.triggers:
            if not _journey_threshold(t) or not threshold_unreachable(t, bounds):
                continue
            v = _fmt_score(float(t.value))
            if t.upward:
                how = ("the journey has no scoring rules" if not j.scoring and not j.fit
                       else f"the highest score the scoring and fit rules allow is {_fmt_score(high)}")
                yield Diagnostic("C046", E, f"no lead can reach `score {t.op} {v}`", t.span,
                                 f"{how}; lower the threshold or add scoring rules")
            else:
                yield Diagnostic("C046", E, f"no lead can go down to `score {t.op} {v}`", t.span,
                                 f"the lowest possible score is {_fmt_score(low)}; add negative points "
                                 "(e.g. `email.unsubscribed -50`) or raise the threshold")
