"""A journey diff drawn: the new journey with its changes marked and the removed parts as ghosts.

It builds the same Diagram as a plain render (same nodes, same edges, same
wording) and only adds marks, so the diff view cannot drift from the diagram
a reviewer already knows. Matching is by model object identity: `Change.old`
and `Change.new` are the very objects the diagram is drawn from.
"""

from __future__ import annotations

from dataclasses import replace

from dsl.model import (EXIT, Decay, EnrollRule, ExitRule, FitRule, FrequencyCap, HoldLoop, Journey, ScoreRule,
                       SendWindow, Stage, TimeZone)

from . import text as t
from .diagram import (
    EXIT_KEY,
    SECTION_OF,
    Diagram,
    Line,
    any_node,
    entry_text,
    exit_node,
    goal_edge,
    hold_edges,
    legend_for,
    number_edges,
    rule_sections,
    shorten,
    stage_edges,
    stage_node,
    trigger_edge,
)
from .diff import Change, JourneyDiff

__all__ = ["build_diff_diagram"]


def _order(old: Journey, new: Journey) -> list[Stage]:
    """New stages in their order, each removed stage just after where it used to be."""
    merged = list(new.stages)
    new_ids = {s.id for s in new.stages}
    for i, stage in enumerate(old.stages):
        if stage.id in new_ids:
            continue
        at = 0
        for prev in reversed(old.stages[:i]):
            ids = [s.id for s in merged]
            if prev.id in ids:
                at = ids.index(prev.id) + 1
                break
        merged.insert(at, stage)
    return merged


def _was(change: Change) -> str:
    """What a changed edge said before, shown under its new label."""
    old = change.old
    if isinstance(old, HoldLoop):
        return f"was {t.hold_text(old)} {t.hold_detail(old)} -> {t.target_text(old.then)}"
    return f"was {t.trigger_text(old)} -> {t.target_text(old.target)}"


def _rule_text(rule) -> str:
    for kind, fn in ((ScoreRule, t.score_rule_text), (FitRule, t.fit_rule_text), (ExitRule, t.exit_rule_text),
                     (EnrollRule, t.enroll_rule_text), (FrequencyCap, t.cap_text), (TimeZone, t.zone_text),
                     (SendWindow, t.window_text)):
        if isinstance(rule, kind):
            return fn(rule)  # type: ignore[arg-type]  # each function is paired with its own rule type
    if isinstance(rule, Decay):
        return f"decay half-life {rule.half_life}"
    return str(rule)


def build_diff_diagram(diff: JourneyDiff) -> Diagram:
    """The NEW journey with added (green), removed (red ghosts) and changed (orange) parts."""
    old, new = diff.old, diff.new
    by_new = {id(c.new): c for c in diff.changes if c.new is not None and c.kind not in ("label", "flag")}
    removed = [c for c in diff.changes if c.sign == "-"]
    touched = {c.stage for c in diff.changes if c.stage is not None}
    notes: dict[str, list[str]] = {}
    c: Change | None
    for c in diff.changes:
        if c.kind in ("label", "flag") and c.stage is not None:
            notes.setdefault(c.stage, []).append(c.text if c.sign == "~" else f"{c.sign} {c.text}")
    titles = {(c.kind, c.id): c.title for c in old.contents + new.contents if c.title}
    new_ids = {s.id for s in new.stages}

    nodes, edges = [], []
    for order, stage in enumerate(_order(old, new)):
        node = stage_node(stage, order, titles)
        if stage.id not in new_ids:
            nodes.append(replace(node, mark="removed"))
            edges += [replace(e, mark="removed") for e in stage_edges(stage)]
            continue
        lines = []
        for send, line in zip(stage.sends, node.lines):
            c = by_new.get(id(send))
            if c is None:
                lines.append(line)
            elif c.sign == "+":
                lines.append(replace(line, mark="added"))
            else:
                was = f"was {t.offset_text(c.old)} · {t.send_text(c.old)}"
                lines.append(replace(line, mark="changed", detail=was))
        for act, line in zip(stage.actions, node.lines[len(stage.sends):]):
            c = by_new.get(id(act))
            lines.append(line if c is None else replace(line, mark="added" if c.sign == "+" else "changed"))
        old_stage = old.stage(stage.id)
        for c in removed:
            if c.stage == stage.id and c.kind == "send":
                lines.append(Line(f"{t.offset_text(c.old)} · {t.send_text(c.old)}", mark="removed"))
            elif c.stage == stage.id and c.kind == "act":
                lines.append(Line(f"{t.action_offset_text(c.old)} · ⚙ {t.action_text(c.old)}", mark="removed"))
        mark = "added" if old_stage is None else ("changed" if stage.id in touched else None)
        nodes.append(replace(node, lines=tuple(lines), mark=mark, note="; ".join(notes.get(stage.id, []))))
        for e in stage_edges(stage):
            c = by_new.get(id(e.ref))
            if c is not None:
                e = replace(e, mark="added" if c.sign == "+" else "changed", note=_was(c) if c.sign == "~" else "")
            edges.append(e)
        for c in removed:
            if c.stage == stage.id and c.kind == "trigger" and old_stage is not None:
                edges.append(replace(trigger_edge(old_stage, c.old), mark="removed"))
            elif c.stage == stage.id and c.kind == "hold" and old_stage is not None:
                edges += [replace(e, mark="removed") for e in hold_edges(old_stage, c.old)]

    goal_changes = [c for c in diff.changes if c.kind == "goal"]
    if new.goals or goal_changes:  # goals: drawn once each, from "Any stage", as in the plain diagram
        nodes.append(any_node(len(nodes)))
        for i, g in enumerate(new.goals, 1):
            c = by_new.get(id(g))
            e = replace(goal_edge(g), number=i)
            edges.append(e if c is None else replace(e, mark="added" if c.sign == "+" else "changed",
                                                     note=f"was {t.goal_text(c.old)}" if c.sign == "~" else ""))
        edges += [replace(goal_edge(c.old), mark="removed") for c in goal_changes if c.sign == "-"]

    if any(e.target == EXIT_KEY for e in edges):
        exit_mark = None if any(EXIT in s.targets() for s in new.stages) else "removed"
        nodes.append(replace(exit_node(len(nodes)), mark=exit_mark))

    rule_marks = {id(c.new): ("added" if c.sign == "+" else "changed") for c in diff.changes
                  if c.stage is None and c.new is not None}
    ghosts: dict[str, list[Line]] = {}
    for c in diff.changes:
        if c.stage is None and c.sign == "-" and c.kind in SECTION_OF:
            ghosts.setdefault(SECTION_OF[c.kind], []).append(Line(_rule_text(c.old), mark="removed"))
    panel = rule_sections(new, mark=lambda rule: rule_marks.get(id(rule)), removed=ghosts)
    numbered = number_edges(edges)
    return shorten(Diagram(
        title=f"{new.name or '(unnamed journey)'} — changes",
        nodes=tuple(nodes),
        edges=numbered,
        panel=panel,
        legend=legend_for(numbered, mode="diff"),
        mode="diff",
        entry="" if new.initial is None else entry_text(new),
    ))
