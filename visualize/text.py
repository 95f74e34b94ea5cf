"""Model parts as short plain text, the words every renderer and the diff share.

One wording for a trigger, a send or a rule keeps the diagram, the Mermaid
text, the review page and the diff summary saying the same thing. The text is
plain (never escaped here): each renderer escapes for its own format.
"""

from __future__ import annotations

from dataclasses import replace

from dsl.formatter import format_action, format_condition, format_value
from dsl.model import (
    EXIT,
    Condition,
    Duration,
    EnrollRule,
    EventTrigger,
    ExitRule,
    FitRule,
    FrequencyCap,
    HoldLoop,
    Journey,
    ScoreRule,
    ScoreTrigger,
    Send,
    SendWindow,
    TimeTrigger,
    TimeZone,
    Trigger,
)

__all__ = [
    "value_text",
    "condition_text",
    "duration_text",
    "points_text",
    "op_text",
    "offset_text",
    "send_text",
    "action_text",
    "action_offset_text",
    "reentry_text",
    "trigger_text",
    "trigger_event",
    "hold_text",
    "hold_detail",
    "hold_end_text",
    "score_rule_text",
    "fit_rule_text",
    "exit_rule_text",
    "enroll_rule_text",
    "goal_text",
    "cap_text",
    "zone_text",
    "window_text",
    "time_rule_texts",
    "target_text",
]

_OPS = {">=": "≥", "<=": "≤", "!=": "≠", "==": "=", "=": "="}


def value_text(value) -> str:
    """A condition value as the language writes it (the formatter's own writer)."""
    return format_value(value)


def condition_text(cond: Condition) -> str:
    """A condition as the language writes it (the formatter's writer: the fewest parentheses)."""
    return format_condition(cond)


def duration_text(d: Duration) -> str:
    return str(d)


def points_text(points: int) -> str:
    return f"{points:+d}"


def op_text(op: str) -> str:
    """Comparison operators as a reader writes them on paper (≥, ≤)."""
    return _OPS.get(op, op)


def offset_text(send: Send) -> str:
    """When a send goes: on entry, after a delay, or at a date (`24 hours before starts_at of webinar.registered`)."""
    if send.at is not None:
        return str(send.at)
    return "on entry" if send.after is None else f"after {send.after}"


def send_text(send: Send) -> str:
    text = f"{send.kind} {send.content}" + (" (every visit)" if send.every_visit else "")
    if send.condition is None:
        return text
    return f"{text} {'unless' if send.unless else 'if'} {condition_text(send.condition)}"


def action_text(act) -> str:
    """An internal action as written, without its delay (`notify owner "…"`, `set lifecycle to "mql"`)."""
    return format_action(replace(act, after=None))


def action_offset_text(act) -> str:
    return "on entry" if act.after is None else f"after {act.after}"


def reentry_text(reentry) -> str:
    if reentry.mode == "per":
        return f"re-enter once per {reentry.window} (after an exit or a final stage)"
    if reentry.mode == "always":
        return "re-enter every time (after an exit or a final stage)"
    return "re-enter once: a lead enters at most once"


def target_text(target: str) -> str:
    return "exit" if target == EXIT else target


def trigger_event(trigger: Trigger) -> str:
    """The first line of an edge label: what makes the lead move."""
    if isinstance(trigger, EventTrigger):
        return f"on {' or '.join(trigger.events)}"
    if isinstance(trigger, ScoreTrigger):
        return f"{'lead score' if trigger.lead else 'score'} {op_text(trigger.op)} {trigger.value}"
    if isinstance(trigger, TimeTrigger):
        return f"after {trigger.after} {trigger.clock}"
    return str(trigger)


def trigger_text(trigger: Trigger) -> str:
    """The whole trigger on one line, condition included."""
    head = trigger_event(trigger)
    if isinstance(trigger, EventTrigger) and trigger.condition is not None:
        head += f" where {condition_text(trigger.condition)}"
    return head


def hold_text(hold: HoldLoop) -> str:
    return f"hold: after {hold.stall_after} idle,"


def hold_detail(hold: HoldLoop) -> str:
    return f"every {hold.every} {hold.kind} {hold.content} ×{hold.times}"


def hold_end_text(hold: HoldLoop) -> str:
    return f"hold over ({hold.times} sent)"


def _where(cond: Condition | None) -> str:
    return "" if cond is None else f" where {condition_text(cond)}"


def score_rule_text(rule: ScoreRule) -> str:
    text = f"{rule.event}{_where(rule.condition)} {points_text(rule.points)}"
    if rule.cap_count is not None and rule.cap_window is not None:
        text += f", at most {rule.cap_count} per {rule.cap_window}"
    return text


def fit_rule_text(rule: FitRule) -> str:
    return f"{condition_text(rule.condition)} {points_text(rule.points)}"


def exit_rule_text(rule: ExitRule) -> str:
    return f"exit on {' or '.join(rule.events)}{_where(rule.condition)}"


def enroll_rule_text(rule: EnrollRule) -> str:
    return f"enroll on {' or '.join(rule.events)}{_where(rule.condition)}"


def goal_text(goal: EventTrigger) -> str:
    """A journey-level goal on one line, as the panel and the review page list it."""
    return f"{trigger_text(goal)} -> {target_text(goal.target)} (from any stage)"


def cap_text(cap: FrequencyCap) -> str:
    return f"at most {cap.count} message{'' if cap.count == 1 else 's'} per {cap.window}"


def zone_text(zone: TimeZone) -> str:
    if zone.field is None:
        return f"time zone {zone.zone}"
    return f"time zone from {zone.field}, default {zone.zone}"


def window_text(window: SendWindow) -> str:
    return str(window)


def time_rule_texts(journey: Journey) -> list[str]:
    """The zone and the send windows, one line each: what every diagram and the review page show."""
    return [zone_text(z) for z in journey.zones] + [window_text(w) for w in journey.windows]
