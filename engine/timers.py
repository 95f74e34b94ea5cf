"""What is due for a lead, and when: derived from its record, never stored separately.

Deriving timers (instead of keeping a timer list per lead) means a timer can
never outlive the state that created it: leaving a stage cancels its content
and loops by construction. The record caches only the earliest due time
(`Lead.due`), which the store indexes so a tick touches only leads with
something due.
"""

from __future__ import annotations

import math

from .record import Lead

__all__ = ["next_timer", "score_at", "release_time", "SEND", "HOLD_SEND", "HOLD_END", "TIMEOUT", "CROSSING"]

# Ties at one instant fire in this order.
SEND, HOLD_SEND, HOLD_END, TIMEOUT, CROSSING = range(5)


def behaviour_at(cj, rec: Lead, t: int) -> float:
    """The behavioural part of the score at `t`: exact exponential decay from `score_at`."""
    if cj.half_life is None or t == rec.score_at or rec.score == 0.0:
        return rec.score
    return rec.score * 2.0 ** (-(t - rec.score_at) / cj.half_life)


def score_at(cj, rec: Lead, t: int) -> float:
    return rec.fit + behaviour_at(cj, rec, t)


def release_time(cj, rec: Lead) -> int | None:
    """The earliest time the frequency caps allow another send (None: no cap is full)."""
    if not cj.caps or not rec.sends:
        return None
    release = None
    recent = rec.sends  # appended in time order, so already sorted
    for count, window in cj.caps:
        if len(recent) >= count:
            candidate = recent[len(recent) - count] + window
            release = candidate if release is None or candidate > release else release
    return release


def _crossing(cj, rec: Lead, op: str, value: float) -> int | None:
    """When decay alone makes `score op value` true, if it ever does (in whole seconds)."""
    if cj.half_life is None or rec.score == 0.0:
        return None
    ratio = (value - rec.fit) / rec.score
    if not (0.0 < ratio < 1.0):
        return None
    moving_down = rec.score > 0
    if moving_down != (op in ("<", "<=")):
        return None
    when = rec.score_at - cj.half_life * math.log2(ratio)
    if when < rec.clock:
        return None  # crossed already (a cascade bound held the lead): not a future event to wait for
    # a strict threshold holds just after the instant, a non-strict one at it
    due = math.floor(when) + 1 if op in ("<", ">") else math.ceil(when)
    return max(due, rec.clock + 1)


def next_timer(cj, rec: Lead):
    """(due, order, payload) of the earliest thing due, or None.

    Ties at one instant go to what was meant earliest (sends held by the
    frequency cap leave in the order they were due), then by kind (content,
    holding loop, loop end, timeout, decay crossing), then in declaration
    order. Sends carry the time they were meant for, so a deferred send can
    say so."""
    if rec.state not in cj.stages:
        return None  # left, never enrolled, or waiting to enroll: no stage, nothing due
    plan = cj.stages[rec.state]
    # the best so far, as plain variables: this runs on every step, tuples per comparison cost
    due_b = meant_b = order_b = None
    payload_b = None
    release = release_time(cj, rec) if cj.caps else None
    for offset, bit, kind, content in plan.sends:
        if rec.sent & bit:
            continue
        meant = due = rec.entered + offset
        if release is not None and release > due:
            due = release
        if due_b is None or due < due_b or (due == due_b and meant < meant_b):
            due_b, meant_b, order_b, payload_b = due, meant, SEND, (bit, kind, content, meant)
    idle_since = rec.active if rec.active > rec.entered else rec.entered
    if plan.hold is not None:
        stall, every, times, kind, content, name = plan.hold
        if rec.hold < times:
            meant = due = idle_since + stall if rec.hold == 0 else rec.hold_at + every
            if release is not None and release > due:
                due = release
            order, payload = HOLD_SEND, (plan.hold, meant)
        else:
            meant = due = rec.hold_at + every
            order, payload = HOLD_END, name
        if due_b is None or (due, meant, order) < (due_b, meant_b, order_b):
            due_b, meant_b, order_b, payload_b = due, meant, order, payload
    for name, mode, seconds in plan.timeouts:
        due = (idle_since if mode == "idle" else rec.entered) + seconds
        if due_b is None or due < due_b or (due == due_b and (due, TIMEOUT) < (meant_b, order_b)):
            due_b, meant_b, order_b, payload_b = due, due, TIMEOUT, name
    if plan.thresholds and cj.half_life is not None:
        for name, op, value in plan.thresholds:
            due = _crossing(cj, rec, op, value)
            if due is not None and (due_b is None or due < due_b or
                                    (due == due_b and (due, CROSSING) < (meant_b, order_b))):
                due_b, meant_b, order_b, payload_b = due, due, CROSSING, name
    return None if due_b is None else (due_b, order_b, payload_b)
