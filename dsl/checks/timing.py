"""Checks of the time rules: zones, send windows, sends at a date, timers since a send (C082 to C087),
cycles of timers that never reset (C089).

C080 (a time that is no time of day) and C081 (months and years) are found
while building the model (dsl.builder).
"""

from __future__ import annotations

import difflib

import networkx as nx
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from ..diagnostics import Diagnostic, Severity
from ..model import Journey, TimeTrigger

__all__ = ["check_zones", "check_windows", "check_anchors", "check_since", "check_timer_cycles", "open_minutes"]

E, W = Severity.ERROR, Severity.WARNING
WEEK = 7 * 1440


def _is_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


def check_zones(j: Journey):
    for extra in j.zones[1:]:
        yield Diagnostic("C085", E, "the time zone is declared twice", extra.span,
                         f"keep one `time zone` line (first at line {j.zones[0].span.line})")
    for z in j.zones:
        if z.default is not None and not _is_zone(z.default):
            close = difflib.get_close_matches(z.default, sorted(available_timezones()), n=1)
            hint = f"did you mean `{close[0]}`?" if close else 'write an IANA zone name, e.g. "Europe/Rome"'
            yield Diagnostic("C082", E, f"`{z.default}` is not a time zone", z.span, hint)


def _minutes(w):
    """The minutes of a week (0 = Monday 00:00) a window spans; one crossing midnight runs into the next day."""
    start = 0 if w.start is None else w.start
    end = 1440 if w.start is None else (w.end if w.end > w.start else w.end + 1440)
    for day in w.days:
        for minute in range(day * 1440 + start, day * 1440 + end):
            yield minute % WEEK


def open_minutes(j: Journey) -> int:
    """How many minutes of a week (on a wall clock without DST) the send windows leave open."""
    if not j.windows:
        return WEEK
    only = [w for w in j.windows if w.kind == "only"]
    allowed = bytearray([0 if only else 1]) * WEEK
    for w in only:
        for minute in _minutes(w):
            allowed[minute] = 1
    for w in j.windows:
        if w.kind == "quiet":
            for minute in _minutes(w):
                allowed[minute] = 0
    return sum(allowed)


def check_windows(j: Journey):
    empty = False
    for w in j.windows:
        if w.start is not None and w.start == w.end:
            empty = True
            yield Diagnostic("C083", E, f"`{w.hours_text()}` has no hours: it starts when it ends", w.span,
                             "write the hours it spans, e.g. `09:00-17:00`; `22:00-06:00` crosses midnight")
    if not empty and j.windows and open_minutes(j) == 0:
        last = j.windows[-1]
        yield Diagnostic("C084", E, "no send can ever go out: the quiet hours cover every send window",
                         last.span, "leave some hours open: check the days and hours of `send only` and "
                         "`quiet hours`")


def check_anchors(j: Journey):
    takes = j.event_types()
    for s in j.stages:
        for send in s.sends:
            a = send.at
            if a is None or a.event is None or a.event in takes:
                continue
            yield Diagnostic("C086", E, f"no rule of this journey takes `{a.event}` events, so its `{a.field}` "
                             "never arrives", a.span,
                             f"take the event with a rule (e.g. `enroll on {a.event}` or a trigger), or read "
                             f"the date from an attribute: `{a.offset} {a.direction} {a.field} of lead`")


def check_since(j: Journey):
    sent = {send.content for s in j.stages for send in s.sends}
    sent |= {s.hold.content for s in j.stages if s.hold is not None}
    for s in j.stages:
        for t in s.triggers:
            if isinstance(t, TimeTrigger) and t.mode == "since" and t.content not in sent:
                close = difflib.get_close_matches(t.content or "", sorted(sent), n=1)
                hint = f"did you mean `{close[0]}`?" if close else "name content a `send` line sends"
                yield Diagnostic("C087", E, f"no stage sends `{t.content}`: this timer would never start",
                                 t.span, hint)


def check_timer_cycles(j: Journey):
    """`in journey` and `since` timers do not restart when the lead enters their stage: once past, they are due
    at once. A cycle of them (`b` -> `d` -> `b`) would move the lead round it forever at one instant."""
    graph = nx.DiGraph()
    edges = [(s.id, t) for s in j.stages for t in s.triggers
             if isinstance(t, TimeTrigger) and t.mode in ("in journey", "since") and t.target != s.id]
    graph.add_edges_from((source, t.target) for source, t in edges)
    looping = {stage for part in nx.strongly_connected_components(graph) if len(part) > 1 for stage in part}
    for source, t in edges:
        if source in looping and t.target in looping:
            yield Diagnostic("C089", E, f"`{source}` and `{t.target}` send a lead back and forth by timers that "
                             f"never restart (`in journey` / `since`): once past, it would loop at one instant",
                             t.span, "count one of them `in stage` or `idle`, or point it at another stage")
