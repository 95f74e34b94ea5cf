"""The renderer-neutral diagram: what a reviewer must see, before any drawing.

Every renderer (Graphviz, Mermaid, the HTML review page) reads this one model,
built from the one journey model, so they cannot disagree about what a journey
says. The counts overlay and the diff marks are applied to it, not to a renderer.
Text here is plain; each renderer escapes it for its own format.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import PurePath

from dsl.model import EXIT, EventTrigger, HoldLoop, Journey, ScoreTrigger, Stage, TimeTrigger, Trigger

from . import text as t

__all__ = [
    "EDGE_KINDS",
    "MARKS",
    "EXIT_KEY",
    "ANY_KEY",
    "ANY",
    "any_node",
    "goal_edge",
    "Line",
    "Node",
    "Edge",
    "Section",
    "Diagram",
    "node_key",
    "stage_node",
    "stage_edges",
    "trigger_edge",
    "hold_edges",
    "SECTION_OF",
    "exit_node",
    "rule_sections",
    "legend_for",
    "number_edges",
    "build_diagram",
    "MAX_TEXT",
    "clip",
    "shorten",
    "diagram_title",
    "entry_text",
    "BADGE_TEXT",
    "stage_of_span",
    "mark_warnings",
    "compact",
    "counts_text",
]

#: Edge kinds, each drawn differently: event (solid), score thresholds up and
#: down, time (dashed), holding loop (dotted self-loop) and where it ends.
EDGE_KINDS = ("event", "goal", "score-up", "score-down", "time", "hold", "hold-end", "exit-rule", "enroll")
MARKS = ("added", "removed", "changed")
EXIT_KEY = "x_exit"
#: The node goals start from: every stage but a final one (a goal is drawn once, not once per stage).
ANY_KEY = "x_any"
#: The source of a goal edge in `Edge.transition` (not a stage id: ids are words).
ANY = "*"
#: The longest text a diagram draws in one place (a condition, a label, a rule).
#: Longer text is cut with "…" and kept whole in `full` (a tooltip in SVG): a
#: 3,000-way `or` is unreadable in a picture, and `dot` refuses HTML labels over 16 KB.
MAX_TEXT = 300

#: What each badge says. A stage with a way out of the journey "can exit": it is
#: not an exit itself (a red EXIT read as "this stage is the exit").
BADGE_TEXT = {"initial": "INITIAL", "final": "FINAL", "sales-ready": "SALES-READY · handoff", "exit": "can exit"}

_LEGEND = {
    "event": "event trigger (with its condition)",
    "goal": "goal: from any stage but a final one, tried before the stage's triggers",
    "score-up": "score rises to a threshold",
    "score-down": "score falls below a threshold",
    "time": "time: idle for, in stage, in journey, or since a send",
    "hold": "holding loop for a stalled lead",
    "hold-end": "where a holding loop ends",
    "exit-rule": "global exit rule (counted only)",
    "enroll": "how a lead enters the journey",
}


#: The panel section each kind of global rule is listed in.
SECTION_OF = {"scoring": "Scoring", "decay": "Scoring", "fit": "Fit (profile points)",
              "exit": "Exit rules", "enroll": "Enroll rules", "cap": "Frequency caps",
              "zone": "Time", "window": "Time", "reentry": "Re-entry"}


@dataclass(frozen=True)
class Line:
    """One line of a node or panel: `text`, an optional `detail`, and a diff mark."""

    text: str
    detail: str = ""
    mark: str | None = None
    full: str = ""  # the whole text and detail, when `shorten` cut them


@dataclass(frozen=True)
class Node:
    key: str
    stage: str | None  # the stage id; None for the Exit node
    label: str
    kind: str  # "stage" | "exit"
    order: int
    badges: tuple[str, ...] = ()  # "initial", "final", "sales-ready", "exit"
    lines: tuple[Line, ...] = ()
    mark: str | None = None
    note: str = ""
    count: int | None = None
    full: str = ""  # the whole label and note, when `shorten` cut them
    warnings: tuple[str, ...] = ()  # checker findings written inside this stage ("W012 message")


@dataclass(frozen=True)
class Edge:
    key: str
    source: str  # node keys
    target: str
    kind: str
    label: str
    detail: str = ""
    mark: str | None = None
    note: str = ""
    count: int | None = None
    share: float | None = None
    shared_by: int = 1
    full: str = ""  # the whole label, detail and note, when `shorten` cut them
    number: int | None = None  # the trigger's place in its stage (1 is tried first: first match wins)
    ref: object = field(default=None, compare=False, repr=False)  # the trigger or hold loop drawn

    @property
    def transition(self) -> tuple[str, str]:
        """(source stage id, target stage id or "exit"): the store's key for this edge."""
        return _stage_of(self.source), _stage_of(self.target)


@dataclass(frozen=True)
class Section:
    title: str
    lines: tuple[Line, ...]


@dataclass(frozen=True)
class Diagram:
    title: str
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]
    panel: tuple[Section, ...]
    legend: tuple[tuple[str, str], ...]
    mode: str = "plain"  # "plain" | "diff"
    counted: bool = False
    entry: str = ""  # who enters the journey: drawn on the edge into the initial stage
    entry_count: int | None = None  # leads enrolled, from the store

    def node(self, key: str) -> Node | None:
        return next((n for n in self.nodes if n.key == key), None)


def node_key(stage_id: str) -> str:
    """Renderer node names: prefixed, so no stage id can clash with Exit or the panel."""
    return EXIT_KEY if stage_id == EXIT else f"s_{stage_id}"


def _stage_of(key: str) -> str:
    return EXIT if key == EXIT_KEY else ANY if key == ANY_KEY else key[2:]


def stage_node(stage: Stage, order: int, titles: dict[tuple[str, str], str]) -> Node:
    """A stage with its badges and its content in order, each with its offset."""
    badges = []
    if stage.initial:
        badges.append("initial")
    if stage.handoff:
        badges.append("sales-ready")
    if stage.final:
        badges.append("final")
    if EXIT in stage.targets():
        badges.append("exit")
    lines = tuple(
        Line(f"{t.offset_text(s)} · {t.send_text(s)}", titles.get((s.kind, s.content), ""))
        for s in stage.sends
    ) + tuple(Line(f"{t.action_offset_text(a)} · ⚙ {t.action_text(a)}") for a in stage.actions)
    return Node(node_key(stage.id), stage.id, stage.title, "stage", order, tuple(badges), lines)


def any_node(order: int) -> Node:
    """Where goals start: one node for every stage a goal can move a lead from."""
    return Node(ANY_KEY, None, "Any stage", "any", order, (), (Line("every stage but a final one"),))


def goal_edge(goal: EventTrigger) -> Edge:
    detail = "" if goal.condition is None else f"where {t.condition_text(goal.condition)}"
    return Edge("", ANY_KEY, node_key(goal.target), "goal", "goal: " + t.trigger_event(goal), detail, ref=goal)


def exit_node(order: int) -> Node:
    return Node(EXIT_KEY, None, "Exit", "exit", order, ("exit",), (Line("leaves the journey"),))


def trigger_edge(stage: Stage, trigger: Trigger) -> Edge:
    src, dst = node_key(stage.id), node_key(trigger.target)
    if isinstance(trigger, EventTrigger):
        detail = "" if trigger.condition is None else f"where {t.condition_text(trigger.condition)}"
        return Edge("", src, dst, "event", t.trigger_event(trigger), detail, ref=trigger)
    if isinstance(trigger, ScoreTrigger):
        kind = "score-up" if trigger.upward else "score-down"
        return Edge("", src, dst, kind, t.trigger_event(trigger), ref=trigger)
    if isinstance(trigger, TimeTrigger):
        return Edge("", src, dst, "time", t.trigger_event(trigger), ref=trigger)
    raise TypeError(f"unknown trigger {trigger!r}")


def hold_edges(stage: Stage, hold: HoldLoop) -> list[Edge]:
    src = node_key(stage.id)
    loop = Edge("", src, src, "hold", t.hold_text(hold), t.hold_detail(hold), ref=hold)
    end = Edge("", src, node_key(hold.then), "hold-end", t.hold_end_text(hold), ref=hold)
    return [loop, end]


def stage_edges(stage: Stage) -> list[Edge]:
    """Every way out of a stage, in declaration order, triggers numbered; keys are given by the caller."""
    edges = [replace(trigger_edge(stage, trig), number=i) for i, trig in enumerate(stage.triggers, 1)]
    if stage.hold is not None:
        edges.extend(hold_edges(stage, stage.hold))
    return edges


def rule_sections(journey: Journey, mark=None, removed=None) -> tuple[Section, ...]:
    """The side panel: the global rules that act in every stage.

    `mark(rule)` gives a diff mark per rule; `removed` maps a section title to
    ghost lines (rules of the old version), both used by the diff view only.
    """
    mark = mark or (lambda rule: None)
    removed = removed or {}
    sections = []
    scoring = [Line(t.score_rule_text(r), mark=mark(r)) for r in journey.scoring]
    if journey.decay is not None:
        scoring.append(Line(f"decay half-life {journey.decay.half_life}", mark=mark(journey.decay)))
    pairs = [
        ("Scoring", scoring),
        ("Fit (profile points)", [Line(t.fit_rule_text(r), mark=mark(r)) for r in journey.fit]),
        ("Exit rules", [Line(t.exit_rule_text(r), mark=mark(r)) for r in journey.exits]),
        ("Enroll rules", [Line(t.enroll_rule_text(r), mark=mark(r)) for r in journey.enrollments]),
        ("Frequency caps", [Line(t.cap_text(c), mark=mark(c)) for c in journey.caps]),
        ("Time", [Line(t.zone_text(z), mark=mark(z)) for z in journey.zones]
         + [Line(t.window_text(w), mark=mark(w)) for w in journey.windows]),
        ("Re-entry", [Line(t.reentry_text(journey.reentry), mark=mark(journey.reentry))]
         if journey.reentry is not None else []),
    ]
    for title, lines in pairs:
        lines = lines + list(removed.get(title, ()))
        if lines:
            sections.append(Section(title, tuple(lines)))
    return tuple(sections)


def legend_for(edges, mode: str = "plain", counted: bool = False) -> tuple[tuple[str, str], ...]:
    """Only the edge kinds the diagram uses, in a fixed order, plus diff marks or counts."""
    used = {e.kind for e in edges}
    legend = [(kind, _LEGEND[kind]) for kind in EDGE_KINDS if kind in used]
    if any(e.number for e in edges):
        legend.append(("numbers", "1, 2, …: the order triggers are tried in (the first that matches wins)"))
    if mode == "diff":
        legend += [("added", "added in the new version"), ("removed", "removed (ghost)"),
                   ("changed", "changed")]
    if counted:
        legend.append(("counts", "leads in stage now; leads that took an edge (share of those who left)"))
    return tuple(legend)


def number_edges(edges) -> tuple[Edge, ...]:
    """Stable keys e0, e1, … in drawing order (SVG ids and tests rely on them)."""
    return tuple(replace(e, key=f"e{i}") for i, e in enumerate(edges))


def clip(text: str, limit: int = MAX_TEXT) -> str:
    """`text` on one line, cut to at most `limit` characters with "…" when longer."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


def _joined(*parts: str) -> str:
    return " ".join(" ".join(str(p).split()) for p in parts if p)


def _short_line(line: Line) -> Line:
    text, detail = clip(line.text), clip(line.detail)
    if (text, detail) == (line.text, line.detail):
        return line
    return replace(line, text=text, detail=detail, full=line.full or _joined(line.text, line.detail))


def _short_node(node: Node) -> Node:
    label, note = clip(node.label), clip(node.note)
    node = replace(node, warnings=tuple(clip(w) for w in node.warnings))
    full = node.full
    if (label, note) != (node.label, node.note):
        full = full or _joined(node.label, node.note)
    return replace(node, label=label, note=note, full=full, lines=tuple(_short_line(x) for x in node.lines))


def _short_edge(edge: Edge) -> Edge:
    label, detail, note = clip(edge.label), clip(edge.detail), clip(edge.note)
    if (label, detail, note) == (edge.label, edge.detail, edge.note):
        return edge
    return replace(edge, label=label, detail=detail, note=note,
                   full=edge.full or _joined(edge.label, edge.detail, edge.note))


def shorten(diagram: Diagram) -> Diagram:
    """Every text of the diagram cut to MAX_TEXT characters, the whole text kept in `full`.

    Idempotent, so every builder and every renderer may call it.
    """
    return replace(
        diagram,
        title=clip(diagram.title),
        entry=clip(diagram.entry),
        nodes=tuple(_short_node(n) for n in diagram.nodes),
        edges=tuple(_short_edge(e) for e in diagram.edges),
        panel=tuple(Section(s.title, tuple(_short_line(x) for x in s.lines)) for s in diagram.panel),
    )


def diagram_title(journey: Journey, fragment: bool = False) -> str:
    """The journey's name; a shared include fragment (no `journey` line) is named by its file."""
    if fragment or (journey.name is None and not journey.stages):
        return f"Shared fragment: {PurePath(journey.path or 'unnamed').name}"
    return journey.name if journey.name and journey.name.strip() else "(unnamed journey)"


def counts_text(edge: Edge) -> str:
    """An edge's counts in words ("30 leads · 75%"), the same in every renderer; "" when not counted."""
    if edge.count is None:
        return ""
    text = f"{edge.count} lead{'' if edge.count == 1 else 's'}"
    if edge.share is not None:
        text += f" · {edge.share:.0%}"
    if edge.shared_by > 1:
        text += f" (shared by {edge.shared_by} triggers)"
    return text


def entry_text(journey: Journey) -> str:
    """Who enters: the enroll rules, or the engine's default (any event of a lead it does not know)."""
    if not journey.enrollments:
        return "enroll: any event of a new lead"
    return "; ".join(t.enroll_rule_text(r) for r in journey.enrollments)


def build_diagram(journey: Journey, fragment: bool = False) -> Diagram:
    """The whole journey: stages in declaration (buying-process) order, Exit last.

    A shared fragment (`fragment`, from dsl.loader's `Loaded.fragment`) has no
    stages: it is drawn as its rules panel, titled by its file name.
    """
    titles = {(c.kind, c.id): c.title for c in journey.contents if c.title}
    nodes = [stage_node(s, i, titles) for i, s in enumerate(journey.stages)]
    edges = [e for s in journey.stages for e in stage_edges(s)]
    if journey.goals and journey.stages:  # each goal drawn once, from "any stage"
        nodes.append(any_node(len(nodes)))
        edges += [replace(goal_edge(g), number=i) for i, g in enumerate(journey.goals, 1)]
    if any(e.target == EXIT_KEY for e in edges):
        nodes.append(exit_node(len(nodes)))
    numbered = number_edges(edges)
    return shorten(Diagram(
        title=diagram_title(journey, fragment),
        nodes=tuple(nodes),
        edges=numbered,
        panel=rule_sections(journey),
        legend=legend_for(numbered),
        entry="" if fragment or journey.initial is None else entry_text(journey),
    ))


def stage_of_span(journey: Journey, span) -> str | None:
    """The id of the stage whose lines hold `span` (same file), or None for a global rule."""
    for stage in journey.stages:
        if stage.span.file == span.file and stage.span.line <= span.line <= stage.span.end_line:
            return stage.id
    return None


def mark_warnings(diagram: Diagram, journey: Journey, diagnostics) -> Diagram:
    """Each checker finding written inside a stage, shown on that stage's node ("⚠ C048 …")."""
    found: dict[str, list[str]] = {}
    for d in diagnostics:
        stage = stage_of_span(journey, d.span)
        if stage is not None:
            found.setdefault(stage, []).append(f"{d.code} {d.message}")
    if not found:
        return diagram
    nodes = tuple(replace(n, warnings=n.warnings + tuple(found.get(n.stage, ()))) if n.stage in found else n
                  for n in diagram.nodes)
    return shorten(replace(diagram, nodes=nodes))


def compact(diagram: Diagram) -> Diagram:
    """The drawing for a page that lists content and conditions beside it: stages with their
    badges, warnings and counts; edges with their number, event and counts."""
    return replace(diagram, nodes=tuple(replace(n, lines=()) for n in diagram.nodes),
                   edges=tuple(replace(e, detail="") for e in diagram.edges))
