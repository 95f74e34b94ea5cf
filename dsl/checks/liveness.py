"""Which ways out of a stage can never fire, and why.

A way is a trigger (by its index in `stage.triggers`) or the holding loop
(index `HOLD`). Each function here proves one reason a way is dead; nothing is
marked dead without a proof, so the graph checks built on top stay free of false
alarms. `dead_ways` gathers them once per journey (the checks share the result).
"""

from __future__ import annotations

import bisect
import math

from ..model import EventTrigger, Journey, ScoreTrigger, Stage, TimeTrigger
from .logic import ByIdentity, contains, implies, never_true, threshold_interval

__all__ = [
    "HOLD",
    "triggers_by_kind",
    "earlier_of_event",
    "shadowing_event",
    "shadowing_exit",
    "shadowing_goal",
    "dead_goals",
    "shadowing_threshold",
    "shadowing_timer",
    "hold_blocker",
    "hold_end_blocker",
    "score_bounds",
    "threshold_unreachable",
    "dead_ways",
    "live_targets",
    "goal_targets",
]

HOLD = -1


#: The earlier triggers of the same event that C044 and C045 compare a trigger with, at most.
MAX_EARLIER = 64

#: What the pairwise checks computed, by stage.
_memo = ByIdentity(4096)


def _per_stage(s: Stage) -> dict:
    """What the pairwise checks computed for this stage (each check walks every stage: computed once, not per check)."""
    facts = _memo.get(s)
    return facts if isinstance(facts, dict) else _memo.put(s, {})


def triggers_by_kind(s: Stage) -> dict:
    """The stage's triggers grouped for the pairwise checks, each as (index, trigger) in order.

    Keys: ("event", event type) for event triggers (a trigger of `a or b` is in
    both groups), "score" and "timer". A check that pairs a trigger with the
    earlier ones of its kind reads one group, not every trigger of the stage, so a
    stage with thousands of event types stays linear.
    """
    memo = _per_stage(s)
    if "kinds" not in memo:
        groups: dict = {}
        for i, t in enumerate(s.triggers):
            if isinstance(t, EventTrigger):
                for event in t.events:
                    groups.setdefault(("event", event), []).append((i, t))
                continue
            # the lead score is another quantity: its thresholds never shadow the journey's
            key = ("lead score" if t.lead else "score") if isinstance(t, ScoreTrigger) else "timer"
            groups.setdefault(key, []).append((i, t))
        memo["kinds"] = groups
    return memo["kinds"]


def earlier_of_event(s: Stage, i: int) -> list:
    """(index, trigger) of the first MAX_EARLIER triggers of trigger i's event before it.

    Whether one event trigger takes another's events is a question about two
    conditions, so a stage with thousands of triggers of one event would cost
    millions of them; past MAX_EARLIER, a finding may be missed, never made up.
    """
    memo = _per_stage(s).setdefault("earlier", {})
    if i in memo:
        return memo[i]
    later = s.triggers[i]
    found: dict[int, EventTrigger] = {}
    for event in later.events:  # type: ignore[union-attr]
        for k, t in triggers_by_kind(s).get(("event", event), ())[:MAX_EARLIER]:
            if k < i:
                found.setdefault(k, t)
    memo[i] = sorted(found.items(), key=lambda kt: kt[0])
    return memo[i]


def _covering(t: EventTrigger, rules, takes) -> object | None:
    """The first rule that takes every event `t` could take, or None.

    Each event type of `t` needs a rule of that type that `takes` it (for `a or b`,
    one rule may cover `a` and another `b`: the trigger is still never reached)."""
    first = None
    for event in t.events:
        rule = next((r for r in rules if event in r.events and takes(r)), None)
        if rule is None:
            return None
        first = first or rule
    return first


def shadowing_event(s: Stage, i: int) -> EventTrigger | None:
    """The earlier trigger of the same event that takes every event this one could take.

    That is the case when this trigger's condition implies the earlier one's (an
    earlier trigger without `where` takes them all).
    """
    later = s.triggers[i]
    if not isinstance(later, EventTrigger):
        return None
    memo = _per_stage(s).setdefault("shadowing", {})
    if i not in memo:  # asked by the liveness of every way and by C044 alike
        earlier = [t for _, t in earlier_of_event(s, i)]
        memo[i] = _covering(later, earlier, lambda e: implies(later.condition, e.condition))
    return memo[i]


def shadowing_exit(j: Journey, t) -> object | None:
    """An `exit on` rule that removes the lead on every event this trigger (or goal) could take."""
    if not isinstance(t, EventTrigger):
        return None
    return _covering(t, j.exits, lambda r: implies(t.condition, r.condition))


def shadowing_goal(j: Journey, s: Stage, t) -> EventTrigger | None:
    """A goal that takes every event this trigger of stage `s` could take.

    Goals are tried before the stage's triggers; a goal to `s` itself is passed over in `s`."""
    if not isinstance(t, EventTrigger) or s.final:
        return None
    goals = [g for g in j.goals if g.target != s.id]
    return _covering(t, goals, lambda g: implies(t.condition, g.condition))  # type: ignore[return-value]


_goals_cache: list = []


def dead_goals(j: Journey) -> dict[int, str]:
    """Goal index -> why it never moves a lead: an exit rule, or an earlier goal to the same stage, takes it."""
    if _goals_cache and _goals_cache[0] is j:
        return _goals_cache[1]
    dead: dict[int, str] = {}
    _goals_cache[:] = [j, dead]
    for i, g in enumerate(j.goals):
        rule = shadowing_exit(j, g)
        if rule is not None:
            dead[i] = f"`exit on {' or '.join(rule.events)}` (line {rule.span.line}) removes the lead first"  # type: ignore[attr-defined]
            continue
        same = [e for e in j.goals[:i] if e.target == g.target]
        earlier = _covering(g, same, lambda e: implies(g.condition, e.condition))
        if earlier is not None:
            dead[i] = f"the goal at line {earlier.span.line} already takes every such event to `{g.target}`"  # type: ignore[attr-defined]
    return dead


def _first_earlier_not_below(items: list, rank) -> dict:
    """For each (index, item) in order, the first earlier item whose rank is >= its own.

    The items that set a new highest rank are kept in order (their ranks
    increase); the first earlier item ranked no lower is the first of them ranked
    no lower, found by bisection. One pass instead of every pair.
    """
    ranks: list = []
    kept: list = []
    found: dict = {}
    for i, item in items:
        r = rank(item)
        at = bisect.bisect_left(ranks, r)
        if at < len(ranks):
            found[i] = kept[at]
        if not ranks or r > ranks[-1]:
            ranks.append(r)
            kept.append(item)
    return found


def _threshold_rank(t: ScoreTrigger) -> tuple:
    """An earlier threshold contains a later one of the same direction iff its rank is >=.

    `>= 10` contains `>= 20` and `> 10`; `<= 5` contains `< 5`.
    """
    low, low_closed, high, high_closed = threshold_interval(t)
    if t.upward:
        return (-low, 1 if low_closed else 0)
    return (high, 1 if high_closed else 0)


def _threshold_shadows(s: Stage) -> dict[int, ScoreTrigger]:
    """For each threshold, the first earlier one that contains it (thresholds up and down apart)."""
    thresholds = triggers_by_kind(s).get("score", [])
    if any(t.op not in (">=", ">", "<=", "<") for _, t in thresholds):  # refused by C010: every pair
        return _pairwise_thresholds(thresholds)
    up = [(i, t) for i, t in thresholds if t.upward]
    down = [(i, t) for i, t in thresholds if not t.upward]
    return _first_earlier_not_below(up, _threshold_rank) | _first_earlier_not_below(down, _threshold_rank)


def _pairwise_thresholds(thresholds: list) -> dict[int, ScoreTrigger]:
    shadows: dict[int, ScoreTrigger] = {}
    for n, (i, later) in enumerate(thresholds):
        for _, earlier in thresholds[:n]:
            if contains(threshold_interval(earlier), threshold_interval(later)):
                shadows[i] = earlier
                break
    return shadows


def shadowing_threshold(s: Stage, i: int) -> ScoreTrigger | None:
    """The earlier threshold met whenever this one is (so it always wins)."""
    if not isinstance(s.triggers[i], ScoreTrigger):
        return None
    memo = _per_stage(s)
    if "thresholds" not in memo:
        memo["thresholds"] = _threshold_shadows(s)
    return memo["thresholds"].get(i)


def _timer_beats(first: TimeTrigger, first_index: int, other: TimeTrigger, other_index: int) -> bool:
    """Whether `first` always fires before `other` could (idle time never exceeds time in stage)."""
    if first.mode == "idle" and other.mode == "in stage":
        return False  # activity postpones the idle timer; the stage timer may come first
    a, b = first.after.seconds, other.after.seconds
    return a < b or (a == b and first_index < other_index)


def _first_faster(timers: list) -> dict[int, TimeTrigger]:
    """For each timer (index, trigger), the first other one, in index order, that fires strictly first.

    An earlier timer fires first if it is no longer; a later one if it is shorter
    (of two equal timers the first written wins). Earlier: by bisection (see
    `_first_earlier_not_below`); later: the next shorter one, with a stack.
    """
    found = _first_earlier_not_below(timers, lambda t: -t.after.seconds)
    stack: list[TimeTrigger] = []  # the next timers, shortest on the bottom
    for i, t in reversed(timers):
        while stack and stack[-1].after.seconds >= t.after.seconds:
            stack.pop()
        if stack and i not in found:
            found[i] = stack[-1]
        stack.append(t)
    return found


#: Timers that count from the stage's entry or from the lead's last activity in it.
_STAGE_CLOCKS = ("idle", "in stage")


def shadowing_timer(s: Stage, i: int) -> TimeTrigger | None:
    """A timer of the stage that always fires before this one (see `_timer_beats`): the first in order."""
    t = s.triggers[i]
    if not isinstance(t, TimeTrigger) or t.mode not in _STAGE_CLOCKS:
        return None
    memo = _per_stage(s)
    if "timers" not in memo:
        # a timer since enrollment or since a send counts from another moment: never compared here
        timers = [(k, x) for k, x in triggers_by_kind(s).get("timer", []) if x.mode in _STAGE_CLOCKS]
        in_stage = [(k, x) for k, x in timers if x.mode == "in stage"]
        memo["timers"] = (_first_faster(timers), _first_faster(in_stage))
    any_timer, in_stage_timer = memo["timers"]
    # an idle timer never beats a stage timer: activity may postpone it
    return (in_stage_timer if t.mode == "in stage" else any_timer).get(i)


def hold_blocker(s: Stage) -> TimeTrigger | None:
    """A timer that moves every stalled lead on before its holding loop starts."""
    if s.hold is None:
        return None
    stall = s.hold.stall_after.seconds
    for t in s.triggers:  # at the same instant the loop's send goes first (docs/engine.md)
        if isinstance(t, TimeTrigger) and t.mode != "since" and t.after.seconds < stall:
            return t
    return None


def hold_end_blocker(s: Stage) -> TimeTrigger | None:
    """A timer that moves every stalled lead on before its holding loop ends (so `then` is never taken).

    Both count from the lead's last activity (or its entry, if later); a stage timer
    counts from entry, which is never later, so it fires no later either.
    """
    if s.hold is None:
        return None
    end = s.hold.stall_after.seconds + s.hold.times * s.hold.every.seconds
    for t in s.triggers:  # at the same instant the loop's end goes first (docs/engine.md)
        if isinstance(t, TimeTrigger) and t.mode != "since" and t.after.seconds < end:
            return t
    return None


def score_bounds(j: Journey, lead: bool = False) -> tuple[float, float]:
    """The lowest and highest score a lead can ever have (inf when unbounded); `lead`: its lead score."""
    fit = () if lead else j.fit
    fit_max = sum(f.points for f in fit if f.points > 0)
    fit_min = sum(f.points for f in fit if f.points < 0)
    decay, scoring = (j.lead_decay, j.lead_scoring) if lead else (j.decay, j.scoring)
    half_life = decay.half_life.seconds if decay is not None and decay.half_life.seconds > 0 else None

    def extreme(rules) -> float:
        total = 0.0
        for r in rules:
            if r.cap_count is None or r.cap_window is None or half_life is None:
                return math.inf
            window = max(r.cap_window.seconds, 1)
            # capped points every window, decaying: a geometric series
            total += max(r.cap_count, 0) * abs(r.points) / (1 - 2 ** (-window / half_life))
        return total

    high = fit_max + extreme([r for r in scoring if r.points > 0])
    low = fit_min - extreme([r for r in scoring if r.points < 0])
    return low, high


def threshold_unreachable(t: ScoreTrigger, bounds: tuple[float, float]) -> bool:
    low, high = bounds
    v = float(t.value)
    if t.upward:
        return v > high or (t.op == ">" and v >= high)
    return v < low or (t.op == "<" and v <= low)


def _dead_reason(j: Journey, s: Stage, i: int, bounds) -> str | None:
    t = s.triggers[i]
    if isinstance(t, EventTrigger):
        if t.condition is not None and never_true(t.condition):
            return "its condition can never be true"
        earlier = shadowing_event(s, i)
        if earlier is not None:
            if earlier.condition is None:
                return f"line {earlier.span.line} takes every `{' or '.join(t.events)}` first"
            return f"line {earlier.span.line} takes every `{' or '.join(t.events)}` it matches first"
        if shadowing_exit(j, t) is not None:
            return f"`exit on {' or '.join(t.events)}` removes the lead first"
        goal = shadowing_goal(j, s, t)
        if goal is not None:
            return f"the goal at line {goal.span.line} takes it first"
    elif isinstance(t, ScoreTrigger):
        if threshold_unreachable(t, score_bounds(j, lead=True) if t.lead else bounds):
            return f"no lead can get `{'lead ' if t.lead else ''}score {t.op} {t.value}`"
        if shadowing_threshold(s, i) is not None:
            return f"line {shadowing_threshold(s, i).span.line} always fires first"  # type: ignore[union-attr]
    elif isinstance(t, TimeTrigger):
        other = shadowing_timer(s, i)
        if other is not None:
            return f"line {other.span.line} (`after {other.after} {other.mode}`) always fires first"
    return None


_cache: list = []


def dead_ways(j: Journey) -> dict[tuple[str, int], str]:
    """(stage id, trigger index or HOLD) -> why that way can never be taken."""
    if _cache and _cache[0] is j:
        return _cache[1]
    bounds = score_bounds(j)
    dead: dict[tuple[str, int], str] = {}
    for s in j.stages:
        for i in range(len(s.triggers)):
            reason = _dead_reason(j, s, i, bounds)
            if reason is not None:
                dead[(s.id, i)] = reason
        blocker = hold_end_blocker(s)
        if blocker is not None:
            dead[(s.id, HOLD)] = f"line {blocker.span.line} moves stalled leads on before the loop ends"
    _cache[:] = [j, dead]
    return dead


def goal_targets(j: Journey, s: Stage, live: bool = True) -> list[str]:
    """The stages the journey's goals can move a lead in `s` to (none from a final stage or to `s`)."""
    if s.final:
        return []
    dead = dead_goals(j) if live else {}
    return [g.target for i, g in enumerate(j.goals) if g.target != s.id and i not in dead]


def live_targets(j: Journey, s: Stage) -> list[str]:
    """Where a lead in `s` can actually go: the targets of the ways that can fire, goals included."""
    dead = dead_ways(j)
    out = [t.target for i, t in enumerate(s.triggers) if (s.id, i) not in dead]
    if s.hold is not None and (s.id, HOLD) not in dead:
        out.append(s.hold.then)
    return out + goal_targets(j, s)
