"""Checks of re-entry, sends repeated per visit and internal actions (codes C048 on cycles, C105-C108).

A journey that re-enters turns every lead's path into a cycle: initial stage,
..., a final stage or an exit, then the initial stage again. Content is sent
once per lead unless its line says `every visit`, so the "never twice" analysis
(C048) must look round that cycle too.
"""

from __future__ import annotations

from ..diagnostics import Diagnostic, Severity
from ..model import Journey, TimeTrigger

__all__ = ["check_reentry_sends", "check_every_visit_without_reentry", "check_reentry_without_enroll",
           "check_actions_never_done"]

W = Severity.WARNING


def _reenters(j: Journey) -> bool:
    return j.reentry is not None and j.reentry.mode != "once"


def check_reentry_sends(j: Journey):
    """C048 on the re-entry cycle: a `send` line without `every visit` is skipped on every later visit."""
    if not _reenters(j):
        return
    again = {x.content for s in j.stages for x in s.sends if x.every_visit}
    for s in j.stages:
        for x in s.sends:
            if x.content not in again:
                yield Diagnostic(
                    "C048", W,
                    f"content `{x.content}` is sent on a lead's first visit only: the journey re-enters "
                    f"(line {j.reentry.span.line}) and content is sent once per lead",  # type: ignore[union-attr]
                    x.span, "end the line with `every visit` to send it on each visit; leave it so to send it once")


def check_every_visit_without_reentry(j: Journey):
    if _reenters(j):
        return
    for s in j.stages:
        for x in s.sends:
            if x.every_visit:
                yield Diagnostic("C105", W, f"`every visit` changes nothing: leads never re-enter this journey",
                                 x.span, "add `re-enter every time` (or `re-enter once per D`) at the top level, "
                                 "or drop `every visit`")


def check_reentry_without_enroll(j: Journey):
    if _reenters(j) and not j.enrollments:
        yield Diagnostic("C106", W, "without `enroll on`, any event of a finished lead brings it back into the journey",
                         j.reentry.span,  # type: ignore[union-attr]
                         "say which events start a new visit, e.g. `enroll on subscription.lapsed`")


def check_actions_never_done(j: Journey):
    """A delayed internal action that an in-stage timer always beats (like C050 for content)."""
    for s in j.stages:
        limits = [t for t in s.triggers if isinstance(t, TimeTrigger) and t.mode == "in stage"]
        if not limits:
            continue
        limit = min(limits, key=lambda t: t.after.seconds)
        for act in s.actions:
            if act.after is not None and act.after.seconds > limit.after.seconds:
                yield Diagnostic("C108", W, f"this {act.kind} is never done: leads leave `{s.id}` after {limit.after}",
                                 act.span, f"do it no later than {limit.after}, or stay longer "
                                 f"(line {limit.span.line})")
