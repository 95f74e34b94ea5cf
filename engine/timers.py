"""What is due for a lead, and when: derived from its record, never stored separately.

Deriving timers (instead of keeping a timer list per lead) means a timer can
never outlive the state that created it: leaving a stage cancels its content
and loops by construction. The record caches only the earliest due time
(`Lead.due`), which the store indexes so a tick touches only leads with
something due.
"""

from __future__ import annotations

import math
from array import array
from typing import Iterator, NamedTuple, Union, cast

from .compiled import THRESHOLD_TESTS, ActPlan, Cap, CompiledJourney, DatedSend, Hold, Send, StagePlan, Transition
from .record import Lead, LeadWide
from .zones import UTC, next_open, zone

__all__ = ["next_timer", "score_at", "lead_score_at", "holds", "release_time", "lead_release", "lead_zone",
           "window_due", "meant_sends", "Timer", "Meant", "SEND", "ACT", "HOLD_SEND", "HOLD_END", "TIMEOUT",
           "CROSSING"]

# Ties at one instant fire in this order.
SEND, ACT, HOLD_SEND, HOLD_END, TIMEOUT, CROSSING = range(6)


class Timer:
    """What is due next for a lead: at `due` (for a send: meant for `meant`, held by a cap or a window).

    `what` by `order`: SEND the Send or DatedSend, ACT the ActPlan, HOLD_SEND the
    Hold, HOLD_END / TIMEOUT / CROSSING the Transition (for CROSSING, the threshold's).
    A plain class, not a named tuple: compiled, it is made without a Python call, and
    every step derives two or three of them (docs/decisions.md, "One transition table")."""

    __slots__ = ("due", "order", "what", "meant")

    def __init__(self, due: int, order: int, what: Union[Send, DatedSend, ActPlan, Hold, Transition],
                 meant: int) -> None:
        self.due = due
        self.order = order
        self.what = what
        self.meant = meant

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Timer) and self.due == other.due and self.order == other.order
                and self.what == other.what and self.meant == other.meant)

    def __hash__(self) -> int:
        return hash((self.due, self.order, self.meant))

    def __repr__(self) -> str:
        return f"Timer(due={self.due}, order={self.order}, what={self.what!r}, meant={self.meant})"


class Meant(NamedTuple):
    """A send of the stage still to come, and when it is meant to go (before caps and windows)."""

    meant: int
    send: Union[Send, DatedSend]


def behaviour_at(cj, rec: Lead | LeadWide | _LeadView, t: int) -> float:
    """The behavioural part of the score at `t`: exact exponential decay from `score_at`."""
    if cj.half_life is None or t == rec.score_at or rec.score == 0.0:
        return rec.score
    return rec.score * 2.0 ** (-(t - rec.score_at) / cj.half_life)


def score_at(cj, rec: Lead | _LeadView, t: int) -> float:
    return rec.fit + behaviour_at(cj, rec, t)


def lead_score_at(rules, wide, t: int) -> float:
    """The lead score at `t` (0 without lead-wide rules): `lead scoring` points, decayed, no fit."""
    return 0.0 if wide is None else behaviour_at(rules, wide, t)


def release_time(cj: CompiledJourney, rec: Lead) -> int | None:
    """The earliest time the frequency caps allow another send (None: no cap is full)."""
    return _release(cj.caps, rec.sends)


def lead_release(rules, wide) -> int | None:
    """The earliest time the lead-wide caps allow another send to the lead, from any journey (None: none full)."""
    return None if wide is None else _release(rules.caps, wide.sends)


def _release(caps: tuple[Cap, ...], recent: array | None) -> int | None:
    if not caps or not recent:
        return None
    release = None
    # appended in time order, so already sorted (lead-wide sends too: the lead has one clock)
    for cap in caps:
        if len(recent) >= cap.limit:
            candidate = recent[len(recent) - cap.limit] + cap.seconds
            release = candidate if release is None or candidate > release else release
    return release


def lead_zone(cj: CompiledJourney, rec: Lead):
    """The lead's zone: its valid zone attribute, else the journey's default (engine.zones.zone)."""
    return (rec.zone is not None and zone(rec.zone)) or zone(cj.zone_default) or UTC


def window_due(cj: CompiledJourney, rec: Lead, t: int) -> int:
    """When a send due at `t` may go out: the first open instant of the journey's windows, in the lead's zone.

    Never before the lead's clock: a send is never decided in the lead's past, so
    it never goes out at a time its window closes."""
    if not cj.windows:
        return t
    return next_open(cj.windows, lead_zone(cj, rec), t if t > rec.clock else rec.clock)


def meant_sends(cj: CompiledJourney, plan, rec: Lead) -> Iterator[Meant]:
    """Each send of the stage still to come, with when it is meant to go (`_meant`, named)."""
    for meant, send in _meant(cj, plan, rec):
        yield Meant(meant, send)


def _meant(cj: CompiledJourney, plan: StagePlan, rec: Lead) -> Iterator[tuple[int, Union[Send, DatedSend]]]:
    """Each send of the stage still to come, with when it is meant to go: (meant, send) as plain pairs, which
    compiled code makes without a Python call (`meant_sends` names them).

    A send at a date counts from the date once known; a moment already past when
    it became known (or when the lead entered the stage) is skipped or sent at
    once, as the line says (`if past send now`)."""
    done = rec.sent | rec.passed  # sent, or a conditional send passed over in this visit
    for send in plan.sends:
        if not done & send.bit:
            yield rec.entered + send.offset, send
    if not plan.dated or rec.dates is None:
        return
    for d in plan.dated:
        known = rec.dates[d.slot]
        if done & d.bit or known is None:
            continue
        meant = known[0] + d.offset
        start = known[1] if known[1] > rec.entered else rec.entered
        if meant < start:
            if d.past == "skip":
                continue
            meant = start
        yield meant, d


def holds(op: str, score: float, value: float) -> bool:
    """A score threshold, as the step tests it (`when score OP VALUE`): the same comparison table."""
    return THRESHOLD_TESTS[op](score, value)


def _first_holding(cj, rec: Lead | _LeadView, op: str, value: float, guess: int, limit: int) -> int | None:
    """The first whole second in (clock, limit] at which `score op value` holds, searching from `guess`.

    The decayed score moves one way only, so the threshold, once it holds, holds
    for good: the answer is found by walking from the closed-form guess (normally
    right, or off by one second of rounding) and by bisection otherwise. Testing
    with `score_at`, the very function the step compares, makes the timer and the
    threshold agree to the second, whatever the float rounding.
    """
    def ok(t: int) -> bool:
        return holds(op, score_at(cj, rec, t), value)

    low = rec.clock  # the threshold does not hold at the clock (else it would have fired)
    if ok(low):
        return None  # held already: a cascade bound stopped the lead; no future instant to wait for
    t = min(max(guess, low + 1), limit)
    if ok(t):
        for _ in range(3):  # rounding: the instant may be a second or two earlier
            if t - 1 > low and ok(t - 1):
                t -= 1
            else:
                return t
        high = t
    else:
        for _ in range(3):
            if t + 1 <= limit and ok(t + 1):
                return t + 1
            t += 1
        if not ok(limit):
            return None
        low, high = max(low, t), limit
    while high - low > 1:  # ok(high) and not ok(low)
        mid = (low + high) // 2
        if ok(mid):
            high = mid
        else:
            low = mid
    return high


def _crossing(cj, rec: Lead | _LeadView, op: str, value: float) -> int | None:
    """When decay alone first makes `score op value` true, in whole seconds after the lead's clock.

    The behavioural part b(t) = S * 2^(-(t - t0) / h) shrinks toward zero; the
    threshold compares fit + b(t). A score that lands exactly on a threshold's
    boundary (10 with `< 10`) crosses it one second later; a boundary equal to the
    fit points (`<= fit` while S > 0) is reached when b(t) underflows to zero.
    """
    if cj.half_life is None or rec.score == 0.0:
        return None
    down = rec.score > 0
    if down != (op in ("<", "<=")):
        return None
    target = value - rec.fit  # the threshold holds when b(t) op target
    if down and not (target > 0 or (target == 0 and op == "<=")):
        return None
    if not down and not (target < 0 or (target == 0 and op == ">=")):
        return None
    h = cj.half_life
    # the latest instant worth looking at: b(t) is exactly zero after about 1075 + log2|S| half-lives
    limit = rec.score_at + math.ceil(h * (1080 + max(math.log2(abs(rec.score)), 0)))
    if target == 0:
        guess = limit
    else:
        ratio = target / rec.score
        guess = math.ceil(rec.score_at - h * math.log2(ratio)) if ratio < 1 else rec.clock + 1
    return _first_holding(cj, rec, op, value, guess, limit)


class _LeadView:
    """The lead score seen from one journey's record: what `_crossing` reads (no fit, the record's clock)."""

    __slots__ = ("score", "score_at", "fit", "clock")

    def __init__(self, wide, clock: int):
        self.score, self.score_at, self.fit, self.clock = wide.score, wide.score_at, 0, clock


def next_timer(cj: CompiledJourney, rec: Lead, wide=None, rules=None) -> Timer | None:
    """The earliest thing due, or None.

    Ties at one instant go to what was meant earliest (sends held by the
    frequency cap leave in the order they were due), then by kind (content,
    holding loop, loop end, timeout, decay crossing), then in declaration
    order. Sends carry the time they were meant for, so a deferred send can
    say so. Delayed internal actions come right after content sends."""
    if rec.state not in cj.stages:
        return None  # left, never enrolled, or waiting to enroll: no stage, nothing due
    plan: StagePlan = cj.stages[rec.state]
    # the best so far, as plain variables: this runs on every step, tuples per comparison cost
    due_b: int | None = None
    meant_b = order_b = 0  # read only once due_b is set
    what_b: Send | DatedSend | ActPlan | Hold | Transition | None = None
    release = release_time(cj, rec) if cj.caps else None
    if wide is not None and rules.caps:  # the lead-wide cap holds sends of every journey
        held = lead_release(rules, wide)
        if held is not None and (release is None or held > release):
            release = held
    for meant, send in _meant(cj, plan, rec):
        due = meant
        if release is not None and release > due:
            due = release
        if cj.windows:
            due = window_due(cj, rec, due)
        if due_b is None or due < due_b or (due == due_b and meant < meant_b):
            due_b, meant_b, order_b, what_b = due, meant, SEND, send
    for act in plan.acts:  # delayed internal actions: never held by the frequency cap
        if act.bit and not rec.acted & act.bit:
            due = rec.entered + act.offset
            if due_b is None or due < due_b or (due == due_b and (due, ACT) < (meant_b, order_b)):
                due_b, meant_b, order_b, what_b = due, due, ACT, act
    idle_since = rec.active if rec.active > rec.entered else rec.entered
    hold = plan.hold
    if hold is not None:
        what: Hold | Transition
        if rec.hold < hold.times:
            meant = due = idle_since + hold.stall if rec.hold == 0 else cast(int, rec.hold_at) + hold.every
            if release is not None and release > due:
                due = release
            if cj.windows:
                due = window_due(cj, rec, due)
            order, what = HOLD_SEND, hold
        else:
            meant = due = cast(int, rec.hold_at) + hold.every  # set by the loop's sends
            order, what = HOLD_END, hold.transition
        if due_b is None or (due, meant, order) < (due_b, meant_b, order_b):
            due_b, meant_b, order_b, what_b = due, meant, order, what
    for timeout in plan.timeouts:
        mode = timeout.mode
        if mode == "in journey":  # a record stored before it kept its enrollment counts from its stage entry
            since = rec.enrolled if rec.enrolled is not None else rec.entered
        else:
            since = idle_since if mode == "idle" else rec.entered
        due = since + timeout.seconds
        if due_b is None or due < due_b or (due == due_b and (due, TIMEOUT) < (meant_b, order_b)):
            due_b, meant_b, order_b, what_b = due, due, TIMEOUT, timeout.transition
    for timer in plan.since:
        sent_at = rec.marks[timer.slot] if rec.marks is not None else None
        if sent_at is None:
            continue  # not sent yet: the timer waits for the send
        due = sent_at + timer.seconds
        if due_b is None or due < due_b or (due == due_b and (due, TIMEOUT) < (meant_b, order_b)):
            due_b, meant_b, order_b, what_b = due, due, TIMEOUT, timer.transition
    if plan.thresholds and (cj.half_life is not None or (wide is not None and rules.half_life is not None)):
        for threshold in plan.thresholds:
            if not threshold.lead:
                crossing = None if cj.half_life is None else _crossing(cj, rec, threshold.op, threshold.value)
            elif wide is None or rules.half_life is None:
                continue
            else:
                crossing = _crossing(rules, _LeadView(wide, rec.clock), threshold.op, threshold.value)
            if crossing is not None and (due_b is None or crossing < due_b or
                                         (crossing == due_b and (crossing, CROSSING) < (meant_b, order_b))):
                due_b, meant_b, order_b, what_b = crossing, crossing, CROSSING, threshold.transition
    if due_b is None:
        return None
    assert what_b is not None
    return Timer(due_b, order_b, what_b, meant_b)
