"""Checks on the `moves` block: each move must say something a change of version can use.

A move is read when a live journey changes (engine.migrate): a lead in a stage
the new version lacks goes where a `stage` move says; a lead that received a
content id the new version renamed is known to have received the new id.
"""

from __future__ import annotations

from ..diagnostics import Diagnostic, Severity
from ..model import EXIT, Journey
from .names import did_you_mean

__all__ = ["check_moves"]

E = Severity.ERROR


def check_moves(j: Journey):
    stages = {s.id for s in j.stages}
    sent = {send.content for s in j.stages for send in s.sends}  # what `sent` remembers (loops resend)
    seen: dict[tuple[str, str], int] = {}
    for move in j.moves:
        what = "stage" if move.kind == "stage" else "content"
        shown = move.old if move.kind == "stage" else f'"{move.old}"'
        if (move.kind, move.old) in seen:
            yield Diagnostic("C072", E, f"{what} {shown} is moved twice", move.span,
                             f"keep one move for it (first at line {seen[(move.kind, move.old)]})")
            continue
        seen[(move.kind, move.old)] = move.span.line
        if move.kind == "stage":
            if move.old in stages:
                yield Diagnostic("C071", E, f"stage `{move.old}` is moved, but this journey still has it",
                                 move.span, "a stage move is for a stage that was renamed or removed; "
                                 "leads in a stage that still exists stay in it")
            elif move.new != EXIT and move.new not in stages:
                yield Diagnostic("C070", E, f"stage `{move.old}` is moved to an unknown stage `{move.new}`",
                                 move.span, did_you_mean(move.new, stages) or "move it to a stage of this journey "
                                 "or to `exit`")
        else:
            if move.old in sent:
                yield Diagnostic("C071", E, f'content "{move.old}" is moved, but this journey still sends it',
                                 move.span, "a content move is for a content id that was renamed")
            elif move.new not in sent:
                yield Diagnostic("C070", E, f'content "{move.old}" is moved to "{move.new}", which no stage sends',
                                 move.span, did_you_mean(move.new, sent) or "name a content id this journey sends")
