"""The Graphviz renderer: a Diagram to DOT, then SVG, PNG or PDF through `dot`.

Stages run left to right in declaration (buying-process) order: an invisible
chain fixes the ranks and edges that go back are laid out forward with
`dir=back`, so `dot` never reorders the stages to break a cycle. Every text goes
into an HTML-like label through `_h`, so no label, id or condition can become
markup; every node and edge gets an `id` and `class` that the SVG keeps, so
tests and stylesheets can tell edge kinds apart without reading pixels.
"""

from __future__ import annotations

import html
import re
import subprocess
from dataclasses import dataclass

import graphviz

from dsl.errors import ColtivaError

from .diagram import BADGE_TEXT, Diagram, Edge, Line, Node, counts_text, shorten

__all__ = ["FORMATS", "EDGE_STYLE", "Layout", "PAGE_LAYOUTS", "to_graphviz", "to_dot", "render_bytes"]

FORMATS = ("svg", "png", "pdf", "dot")
FONT = "DejaVu Sans,Helvetica,Arial,sans-serif"

#: How each edge kind looks; colour and line style both differ, so a reader
#: without colour still tells a threshold from a timer.
EDGE_STYLE = {
    "event": {"style": "solid", "color": "#344054", "penwidth": "1.3"},
    "goal": {"style": "solid", "color": "#0e7490", "penwidth": "2.2", "arrowhead": "diamond"},
    "score-up": {"style": "bold", "color": "#1a7f37", "penwidth": "2.6"},
    "score-down": {"style": "bold", "color": "#d9480f", "penwidth": "2.6", "arrowhead": "empty"},
    "time": {"style": "dashed", "color": "#1d4ed8", "penwidth": "1.4"},
    "hold": {"style": "dotted", "color": "#7c3aed", "penwidth": "2"},
    "hold-end": {"style": "dotted", "color": "#7c3aed", "penwidth": "2", "arrowhead": "vee"},
    "exit-rule": {"style": "dashed", "color": "#98a2b3", "penwidth": "1"},
    "enroll": {"style": "solid", "color": "#1d4ed8", "penwidth": "2"},
}
MARK_COLOR = {"added": "#1a7f37", "removed": "#d92d20", "changed": "#dc6803"}
MARK_FILL = {"added": "#e7f6ec", "removed": "#ffffff", "changed": "#fff4e5"}
MARK_SIGN = {"added": "+ ", "removed": "− ", "changed": "~ "}
#: Badge colours; the words are BADGE_TEXT's. "can exit" is grey: it marks a way out, not an exit.
BADGE = {
    "initial": (BADGE_TEXT["initial"], "#1d4ed8"),
    "final": (BADGE_TEXT["final"], "#344054"),
    "sales-ready": (BADGE_TEXT["sales-ready"], "#b54708"),
    "exit": (BADGE_TEXT["exit"], "#667085"),
}
WARN_COLOR = "#b54708"
START_KEY = "x_start"
_GHOST = "#98a2b3"
#: `dot` refuses an HTML-like label longer than 16,384 bytes; a node or the
#: rules panel stops listing lines well before that and says how many it left out.
LABEL_BUDGET = 12_000
#: The longest tooltip kept whole (the full text of a shortened label).
TOOLTIP_LIMIT = 100_000
#: `dot` refuses a run of more than 16,384 bytes in a quoted string; a tooltip is written in pieces of
#: at most this many characters (4 bytes each at most), joined by a backslash-newline continuation.
_PIECE = 3_000


@dataclass(frozen=True)
class Layout:
    """How `dot` lays a diagram out: direction (LR or TB), whether the rules panel and legend are
    drawn, the stage titles' size, and the space between ranks (inches)."""

    rankdir: str = "LR"
    panel: bool = True
    title_size: int = 16
    ranksep: float = 1.0


#: The review page's drawings: no panel (it is HTML beside them), larger titles, tighter ranks.
PAGE_LAYOUTS = {"LR": Layout("LR", panel=False, title_size=20, ranksep=0.8),
                "TB": Layout("TB", panel=False, title_size=20, ranksep=0.45)}

_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def _h(text: str) -> str:
    """Plain text to HTML-label text: markup characters and backslashes become entities.

    `dot` still reads backslash escapes inside an HTML-like label (`\\N` is the
    node name, a doubled backslash is one), even when written as `&#92;`; so
    every backslash is doubled to come out exactly as written.
    """
    text = _CONTROL.sub("\ufffd", " ".join(str(text).split()))  # XML (and so `dot`) refuses control characters
    # `]` as an entity: `dot` refuses a text that is only `]` or `]]` in an HTML-like label
    escaped = html.escape(text, quote=True).replace("\\", "\\\\").replace("]", "&#93;")
    return escaped or "&#160;"  # `dot` refuses an empty <B></B>: blank text becomes one no-break space


def _line(line: Line, colour: str | None = None) -> str:
    colour = MARK_COLOR.get(line.mark, colour)
    sign = MARK_SIGN.get(line.mark, "")
    body = _h(sign + line.text)
    if line.mark == "removed":
        body = f"<S>{body}</S>"
    if line.detail:
        body += f'<BR/><FONT POINT-SIZE="9" COLOR="#667085">{_h(line.detail)}</FONT>'
    if colour:
        body = f'<FONT COLOR="{colour}">{body}</FONT>'
    return f'<TR><TD ALIGN="LEFT" BALIGN="LEFT">{body}</TD></TR>'


def _tooltip(texts) -> str | None:
    """A plain-text tooltip (quoted DOT string, never HTML); backslashes doubled like `_h`."""
    text = _CONTROL.sub("\ufffd", " | ".join(" ".join(str(x).split()) for x in texts if x))
    if not text:
        return None
    if len(text) > TOOLTIP_LIMIT:
        text = text[:TOOLTIP_LIMIT - 1] + "…"
    return graphviz.nohtml(_continued(text.replace("\\", "\\\\")))


def _continued(quoted: str) -> str:
    """A long quoted-string body in pieces joined by backslash-newline, which `dot` reads as nothing."""
    if len(quoted) <= _PIECE:
        return quoted
    pieces, start = [], 0
    while len(quoted) - start > _PIECE:
        end = start + _PIECE
        run = end - len(quoted[:end].rstrip("\\"))  # backslashes just before the cut (doubled: pairs)
        if run % 2:
            end -= 1  # never between the two backslashes of an escaped one
        pieces.append(quoted[start:end])
        start = end
    pieces.append(quoted[start:])
    return "\\\n".join(pieces)


def _line_rows(lines, colour: str | None = None, budget: int = LABEL_BUDGET) -> list[str]:
    """One row per line, until `budget` bytes of label; then one row saying how many were left out."""
    rows, used = [], 0
    for i, line in enumerate(lines):
        row = _line(line, colour)
        if used + len(row) > budget:
            more = len(lines) - i
            rows.append(f'<TR><TD ALIGN="LEFT"><I>… {more} more line{"" if more == 1 else "s"} not drawn '
                        f'(see coltiva review)</I></TD></TR>')
            break
        rows.append(row)
        used += len(row)
    return rows


def _node_label(node: Node, title_size: int = 16) -> str:
    rows = []
    badges = [b for b in node.badges if node.stage is not None or b != "exit"]
    if badges:
        cells = "".join(
            f'<TD BGCOLOR="{BADGE[b][1]}"><FONT COLOR="white" POINT-SIZE="9"><B>{_h(BADGE[b][0])}</B></FONT></TD>'
            for b in badges
        )
        rows.append(f'<TR><TD><TABLE BORDER="0" CELLSPACING="2" CELLPADDING="2"><TR>{cells}</TR></TABLE></TD></TR>')
    sign = MARK_SIGN.get(node.mark, "")
    rows.append(f'<TR><TD><FONT POINT-SIZE="{title_size}"><B>{_h(sign + node.label)}</B></FONT></TD></TR>')
    if node.stage is not None:
        rows.append(f'<TR><TD><FONT POINT-SIZE="9" COLOR="#667085">{_h(node.stage)}</FONT></TD></TR>')
    if node.note:
        rows.append(f'<TR><TD><FONT POINT-SIZE="9" COLOR="{MARK_COLOR["changed"]}">{_h(node.note)}</FONT></TD></TR>')
    for warning in node.warnings:
        rows.append(f'<TR><TD BGCOLOR="#fffaeb"><FONT POINT-SIZE="10" COLOR="{WARN_COLOR}"><B>{_h("⚠ " + warning)}'
                    '</B></FONT></TD></TR>')
    if node.lines:
        rows.append("<HR/>")
        rows.extend(_line_rows(node.lines, _GHOST if node.mark == "removed" else None))
    if node.count is not None:
        rows.append("<HR/>")
        when = "now" if node.stage is not None else "reached by goals" if node.kind == "any" else "left"
        rows.append(f'<TR><TD><FONT POINT-SIZE="12"><B>{node.count} lead{"" if node.count == 1 else "s"} {when}'
                    '</B></FONT></TD></TR>')
    return f'<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="3">{"".join(rows)}</TABLE>>'


def _edge_label(edge: Edge, colour: str) -> str:
    sign = MARK_SIGN.get(edge.mark, "")
    number = f"{edge.number}. " if edge.number else ""
    parts = [f'<FONT COLOR="{colour}"><B>{_h(sign + number + edge.label)}</B></FONT>']
    if edge.detail:
        parts.append(f'<FONT POINT-SIZE="9">{_h(edge.detail)}</FONT>')
    if edge.note:
        parts.append(f'<FONT POINT-SIZE="9" COLOR="{MARK_COLOR["changed"]}">{_h(edge.note)}</FONT>')
    counts = counts_text(edge)
    if counts:
        parts.append(f'<FONT POINT-SIZE="10"><B>{_h(counts)}</B></FONT>')
    return "<" + "<BR/>".join(parts) + ">"


def _node_attrs(node: Node, diff: bool) -> dict[str, str]:
    attrs = {"shape": "box", "style": "rounded,filled", "margin": "0.08",
             "fillcolor": "#f8fafc", "color": "#475467", "penwidth": "1.2"}
    if node.kind == "exit":
        attrs.update(fillcolor="#fef3f2", color="#d92d20", shape="box", style="rounded,filled,bold")
    elif node.kind == "any":
        attrs.update(fillcolor="#ecfeff", color="#0e7490", style="rounded,filled,dashed")
    elif node.warnings:
        attrs.update(color=WARN_COLOR, penwidth="2.5")
    elif "final" in node.badges:
        attrs.update(peripheries="2")
    elif "sales-ready" in node.badges:
        attrs.update(fillcolor="#fffaeb", color="#b54708", penwidth="2")
    if diff:
        attrs.update(color=MARK_COLOR.get(node.mark, _GHOST), fillcolor=MARK_FILL.get(node.mark, "#ffffff"))
        if node.mark:
            attrs["penwidth"] = "2.5"
        if node.mark == "removed":
            attrs["style"] = "rounded,dashed"
            attrs["fontcolor"] = _GHOST
    classes = [node.kind if node.kind in ("stage", "any") else "exit"] + [f"badge-{b}" for b in node.badges]
    if node.warnings:
        classes.append("warned")
    if node.mark:
        classes.append(f"mark-{node.mark}")
    attrs["class"] = " ".join(classes)
    attrs["id"] = f"stage-{node.stage}" if node.stage is not None else "any-stage" if node.kind == "any" else "exit"
    tooltip = _tooltip([node.full] + [line.full for line in node.lines])
    if tooltip:
        attrs["tooltip"] = tooltip
    return attrs


def _edge_attrs(edge: Edge, diff: bool) -> dict[str, str]:
    attrs = dict(EDGE_STYLE[edge.kind])
    if diff:
        attrs["color"] = MARK_COLOR.get(edge.mark, _GHOST)
        if edge.mark == "removed":
            attrs["style"] = "dashed"
    classes = [f"edge-{edge.kind}"] + ([f"mark-{edge.mark}"] if edge.mark else [])
    attrs.update({"id": f"edge-{edge.key}", "class": " ".join(classes), "fontcolor": "#344054",
                  "label": _edge_label(edge, attrs["color"])})
    tooltip = _tooltip([edge.full])
    if tooltip:
        attrs["tooltip"] = tooltip
    return attrs


def _panel_label(diagram: Diagram) -> str:
    rows = ['<TR><TD ALIGN="LEFT" BGCOLOR="#eef2f6"><B>Rules for every stage</B></TD></TR>']
    budget = LABEL_BUDGET // max(1, len(diagram.panel))
    for section in diagram.panel:
        rows.append(f'<TR><TD ALIGN="LEFT"><B>{_h(section.title)}</B></TD></TR>')
        rows.extend(_line_rows(section.lines, budget=budget))
    if not diagram.panel:
        rows.append('<TR><TD ALIGN="LEFT">no global rules</TD></TR>')
    return f'<<TABLE BORDER="1" COLOR="#98a2b3" CELLBORDER="0" CELLSPACING="0" CELLPADDING="3">{"".join(rows)}</TABLE>>'


def _legend_label(diagram: Diagram) -> str:
    rows = ['<TR><TD ALIGN="LEFT" COLSPAN="2" BGCOLOR="#eef2f6"><B>Legend</B></TD></TR>']
    for kind, meaning in diagram.legend:
        if kind in EDGE_STYLE:
            style = EDGE_STYLE[kind]
            dash = {"solid": "———", "bold": "━━━", "dashed": "– – –", "dotted": "·······"}[style["style"]]
            sample = f'<FONT COLOR="{style["color"]}"><B>{dash}</B></FONT>'
        elif kind in MARK_COLOR:
            sample = f'<FONT COLOR="{MARK_COLOR[kind]}"><B>{_h(MARK_SIGN[kind] + kind)}</B></FONT>'
        else:
            sample = "<B>n</B>"
        rows.append(f'<TR><TD ALIGN="LEFT">{sample}</TD><TD ALIGN="LEFT">{_h(meaning)}</TD></TR>')
    return f'<<TABLE BORDER="1" COLOR="#98a2b3" CELLBORDER="0" CELLSPACING="0" CELLPADDING="3">{"".join(rows)}</TABLE>>'


def _entry(g: graphviz.Digraph, diagram: Diagram, initial: Node) -> None:
    """The start dot and the enrollment edge into the initial stage: who enters the journey."""
    g.node(START_KEY, "", shape="circle", width="0.25", fixedsize="true", style="filled", fillcolor="#1d4ed8",
           color="#1d4ed8", id="start", **{"class": "start"})
    text = diagram.entry
    label = f'<FONT COLOR="#1d4ed8"><B>{_h(text)}</B></FONT>'
    if diagram.entry_count is not None:
        label += f'<BR/><FONT POINT-SIZE="10"><B>{diagram.entry_count} lead{"" if diagram.entry_count == 1 else "s"}' \
                 ' enrolled</B></FONT>'
    g.edge(START_KEY, initial.key, label=f"<{label}>", id="edge-enroll", **EDGE_STYLE["enroll"],
           **{"class": "edge-enroll"})


def to_graphviz(diagram: Diagram, layout: Layout = Layout()) -> graphviz.Digraph:
    """The diagram as a graphviz.Digraph, ready to render with the real `dot`.

    `layout.rankdir` TB lays a long journey top to bottom; `layout.panel=False`
    leaves the rules and the legend out (the review page shows them as HTML beside it).
    """
    diagram = shorten(diagram)
    diff = diagram.mode == "diff"
    panel = layout.panel
    g = graphviz.Digraph("journey")
    g.attr(rankdir=layout.rankdir, nodesep="0.45", ranksep=f"{layout.ranksep:g}", newrank="true",
           fontname=FONT, labelloc="t", labeljust="l", id="journey", bgcolor="white", pad="0.3")
    if panel:  # a page that draws it beside its own heading needs no second title
        g.attr(label=f'<<FONT POINT-SIZE="18"><B>{_h(diagram.title)}</B></FONT>>')
    g.attr("node", fontname=FONT, fontsize="11")
    g.attr("edge", fontname=FONT, fontsize="10", arrowsize="0.8")
    order = {n.key: n.order for n in diagram.nodes}
    nodes = sorted(diagram.nodes, key=lambda n: n.order)
    for node in nodes:
        g.node(node.key, _node_label(node, layout.title_size), **_node_attrs(node, diff))
    initial = next((n for n in nodes if "initial" in n.badges), None)
    if initial is not None and diagram.entry:
        _entry(g, diagram, initial)
    # The invisible chain: one rank per stage, in declaration order.
    for a, b in zip(nodes, nodes[1:]):
        g.edge(a.key, b.key, style="invis", weight="20", **{"class": "layout"})
    for edge in diagram.edges:
        attrs = _edge_attrs(edge, diff)
        if order[edge.target] < order[edge.source]:
            g.edge(edge.target, edge.source, dir="back", arrowtail=attrs.pop("arrowhead", "normal"), **attrs)
        else:
            g.edge(edge.source, edge.target, **attrs)
    if not panel:
        return g
    with g.subgraph(name="cluster_rules") as side:
        side.attr(label="", style="invis", id="rules-panel")
        panel_tip = _tooltip([line.full for s in diagram.panel for line in s.lines])
        side.node("p_rules", _panel_label(diagram), shape="plain", id="rules", **{"class": "panel"},
                  **({"tooltip": panel_tip} if panel_tip else {}))
        side.node("p_legend", _legend_label(diagram), shape="plain", id="legend", **{"class": "legend"})
        side.edge("p_rules", "p_legend", style="invis", **{"class": "layout"})
    if nodes:
        g.edge(nodes[-1].key, "p_rules", style="invis", weight="1", **{"class": "layout"})
    return g


def to_dot(diagram: Diagram, layout: Layout = Layout()) -> str:
    return to_graphviz(diagram, layout).source


def render_bytes(diagram: Diagram, fmt: str, layout: Layout = Layout()) -> bytes:
    """SVG, PNG, PDF (through `dot`) or DOT source, as bytes."""
    if fmt not in FORMATS:
        raise ColtivaError(f"unknown format {fmt!r}: choose one of {', '.join(FORMATS)}")
    if fmt == "dot":
        return to_dot(diagram, layout).encode("utf-8")
    source = to_dot(diagram, layout).encode("utf-8")
    try:
        # communicate() reads dot's error even when dot stops reading early (no broken pipe)
        done = subprocess.run(["dot", f"-T{fmt}"], input=source, capture_output=True, check=False)
    except FileNotFoundError:
        raise ColtivaError("the `dot` program is missing: install Graphviz (make system-deps)") from None
    except OSError as err:
        raise ColtivaError(f"dot failed to draw the journey ({err.strerror or err})") from None
    if done.returncode != 0 or not done.stdout:
        stderr = done.stderr.decode("utf-8", "replace")
        raise ColtivaError(f"dot failed to draw the journey{_first_line(stderr)}")
    return done.stdout


def _first_line(stderr: str) -> str:
    """dot's first error line, short and on one line (never its whole output)."""
    line = next((x.strip() for x in stderr.splitlines() if x.strip()), "")
    line = line.removeprefix("Error:").strip()
    if not line:
        return ""
    return ": " + (line if len(line) <= 200 else line[:199] + "…")
