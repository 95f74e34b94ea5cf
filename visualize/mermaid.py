"""The Mermaid renderer: a `flowchart` that a pull request shows inline, checked by the real Mermaid.

A flowchart, not a `stateDiagram-v2`: only a flowchart has invisible links
(`~~~`), and an invisible chain through the stages in declaration order is what
keeps the buying process left to right (Mermaid's layout otherwise reorders
stages to break cycles, as `dot` would without its own chain). The chain is
written before any real edge so the layout meets it first.

Mermaid has its own escaping: every ASCII character outside letters, digits,
space and `-_.,/()+'` becomes a `#NNN;` entity code, which Mermaid draws as that
character and never reads as syntax or markup; every label is also quoted.
Node ids are prefixed (`s_`, `x_`, `p_`) so no stage id can collide with a
Mermaid keyword (`end`, `graph`, `subgraph`, `class`, `style`).

The title is not diagram text but YAML front matter, where `#NNN;` codes are
not decoded and ` #` starts a comment: it is written as a double-quoted YAML
string instead (`yaml_quote`).
"""

from __future__ import annotations

from .diagram import ANY_KEY, BADGE_TEXT, EXIT_KEY, Diagram, Edge, Node, counts_text, shorten

__all__ = ["mermaid_escape", "yaml_quote", "to_mermaid", "START_KEY", "RULES_KEY"]

START_KEY = "x_start"
RULES_KEY = "p_rules"
_SAFE = set(" -_.,/()+'")
_JOINER = "\u2060"  # WORD JOINER: zero width, never a line break
_CLASSES = {
    "added": "fill:#e7f6ec,stroke:#1a7f37,stroke-width:3px",
    "removed": "fill:#ffffff,stroke:#d92d20,stroke-dasharray:5 5,color:#98a2b3",
    "changed": "fill:#fff4e5,stroke:#dc6803,stroke-width:3px",
    "salesready": "fill:#fffaeb,stroke:#b54708,stroke-width:2px",
    "exitnode": "fill:#fef3f2,stroke:#d92d20",
    "anynode": "fill:#ecfeff,stroke:#0e7490,stroke-dasharray:5 5",
    "warned": "stroke:#dc6803,stroke-width:3px",
    "start": "fill:#1d4ed8,stroke:#1d4ed8,color:#ffffff",
    "rules": "fill:#f8fafc,stroke:#98a2b3,text-align:left",
}
_SIGN = {"added": "+ ", "removed": "- ", "changed": "~ "}
_KIND_WORD = {"score-up": "▲ ", "score-down": "▼ ", "time": "⏱ ", "hold": "↻ ", "hold-end": "↻ ",
              "exit-rule": "", "event": "", "goal": ""}
#: Arrow per edge kind: solid for events, thick for score thresholds, dotted for time and holds.
_ARROW = {"event": "-->", "goal": "--o", "score-up": "==>", "score-down": "==>", "time": "-.->", "hold": "-.->",
          "hold-end": "-.->", "exit-rule": "-.->"}
_EDGE_STYLE = {"removed": "stroke:#d92d20,stroke-dasharray:5 5", "added": "stroke:#1a7f37,stroke-width:3px",
               "changed": "stroke:#dc6803,stroke-width:3px"}


def mermaid_escape(text: str) -> str:
    """Plain text to Mermaid text: anything that could be syntax becomes `#NNN;`."""
    out = []
    for ch in " ".join(str(text).split()):
        keep = ch in _SAFE or (ch.isprintable() and (ch.isalnum() or ord(ch) > 127))
        out.append(ch if keep else f"#{ord(ch)};")
        if ch == "\\":
            out.append(_JOINER)  # Mermaid draws a decoded `\n` as a line break; an invisible joiner keeps it text
    return "".join(out)


def yaml_quote(text: str) -> str:
    """Plain text as a YAML double-quoted scalar, on one line: `"` and `\\` escaped, control characters as `\\uXXXX`."""
    out = []
    for ch in " ".join(str(text).split()):
        if ch in '"\\':
            out.append("\\" + ch)
        elif not ch.isprintable() or ch in "\u2028\u2029\ufeff":
            out.append(f"\\u{ord(ch):04x}" if ord(ch) <= 0xFFFF else f"\\U{ord(ch):08x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _label(lines: list[str]) -> str:
    """Escaped lines joined by Mermaid's line break, quoted; the first line bold."""
    escaped = [mermaid_escape(x) for x in lines if x]
    if escaped:
        escaped[0] = f"<b>{escaped[0]}</b>"
    return '"' + "<br/>".join(escaped) + '"'


def _node_line(node: Node) -> str:
    title = _SIGN.get(node.mark, "") + node.label
    if node.stage is not None and node.stage != node.label:
        title += f" ({node.stage})"
    lines = [title]
    badges = [BADGE_TEXT[b] for b in node.badges if b in BADGE_TEXT and not (node.stage is None and b == "exit")]
    if badges:
        lines.append(" · ".join(badges))
    if node.note:
        lines.append(node.note)
    lines += [f"⚠ {w}" for w in node.warnings]
    lines += [_SIGN.get(line.mark, "") + line.text for line in node.lines]
    if node.count is not None:
        lines.append(f"{node.count} lead{'' if node.count == 1 else 's'} {'now' if node.stage else 'left'}")
    return f"    {node.key}[{_label(lines)}]"


def _edge_text(edge: Edge) -> str:
    number = f"{edge.number}. " if edge.number else ""
    text = _SIGN.get(edge.mark, "") + number + _KIND_WORD.get(edge.kind, "") + edge.label
    if edge.detail:
        text += " " + edge.detail
    if edge.note:
        text += f" ({edge.note})"
    if edge.count is not None:
        text += f" · {counts_text(edge)}"
    return text


def to_mermaid(diagram: Diagram, direction: str = "LR") -> str:
    """The diagram as Mermaid flowchart text, stages in declaration order along `direction` (LR or TB)."""
    diagram = shorten(diagram)
    out = ["---", f"title: {yaml_quote(diagram.title)}", "---", f"flowchart {direction}"]
    nodes = sorted(diagram.nodes, key=lambda n: n.order)
    initial = next((n for n in nodes if "initial" in n.badges), None)
    entry = initial is not None and bool(diagram.entry)
    if diagram.panel:
        rules = ["Rules for every stage"]
        rules += [f"{s.title}: {line.text}" for s in diagram.panel for line in s.lines]
        out.append(f"    {RULES_KEY}[{_label(rules)}]")
    if entry:
        out.append(f'    {START_KEY}(("start"))')
    for node in nodes:
        out.append(_node_line(node))
    links: list[str] = []  # every link in order: linkStyle counts them from 0
    chain = ([RULES_KEY] if diagram.panel else []) + ([START_KEY] if entry else []) + [n.key for n in nodes]
    links += [f"    {a} ~~~ {b}" for a, b in zip(chain, chain[1:])]
    if entry:
        text = diagram.entry + ("" if diagram.entry_count is None else f" · {diagram.entry_count} leads")
        links.append(f'    {START_KEY} -->|"{mermaid_escape(text)}"| {initial.key}')
    styles = []
    for edge in diagram.edges:
        if edge.mark in _EDGE_STYLE:
            styles.append(f"    linkStyle {len(links)} {_EDGE_STYLE[edge.mark]}")
        links.append(f'    {edge.source} {_ARROW[edge.kind]}|"{mermaid_escape(_edge_text(edge))}"| {edge.target}')
    out += links + styles
    for name, style in _CLASSES.items():
        out.append(f"    classDef {name} {style}")
    if diagram.panel:
        out.append(f"    class {RULES_KEY} rules")
    if entry:
        out.append(f"    class {START_KEY} start")
    for node in nodes:
        if node.mark:
            out.append(f"    class {node.key} {node.mark}")
        elif node.warnings:
            out.append(f"    class {node.key} warned")
        elif "sales-ready" in node.badges:
            out.append(f"    class {node.key} salesready")
        elif node.key == EXIT_KEY:
            out.append(f"    class {node.key} exitnode")
        elif node.key == ANY_KEY:
            out.append(f"    class {node.key} anynode")
    return "\n".join(out) + "\n"
