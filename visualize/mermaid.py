"""The Mermaid renderer: a `stateDiagram-v2` that a pull request shows inline.

Mermaid has its own escaping: every ASCII character outside letters, digits,
space and `-_.,/()+'` becomes a `#NNN;` entity code, which Mermaid draws as that
character and never reads as syntax or markup. Stage ids are prefixed so no id
can collide with a Mermaid keyword (`end`, `state`, `note`, `class`).

The title is not diagram text but YAML front matter, where `#NNN;` codes are
not decoded and ` #` starts a comment: it is written as a double-quoted YAML
string instead (`yaml_quote`).
"""

from __future__ import annotations

from .diagram import EXIT_KEY, Diagram, Edge, Node, shorten

__all__ = ["mermaid_escape", "yaml_quote", "to_mermaid"]

_SAFE = set(" -_.,/()+'")
_CLASSES = {
    "added": "fill:#e7f6ec,stroke:#1a7f37,stroke-width:3px",
    "removed": "fill:#ffffff,stroke:#d92d20,stroke-dasharray:5 5,color:#98a2b3",
    "changed": "fill:#fff4e5,stroke:#dc6803,stroke-width:3px",
    "salesready": "fill:#fffaeb,stroke:#b54708,stroke-width:2px",
    "exitnode": "fill:#fef3f2,stroke:#d92d20",
}
_SIGN = {"added": "+ ", "removed": "- ", "changed": "~ "}
_KIND_WORD = {"score-up": "▲ ", "score-down": "▼ ", "time": "⏱ ", "hold": "↻ ", "hold-end": "↻ ",
              "exit-rule": "", "event": ""}


def mermaid_escape(text: str) -> str:
    """Plain text to Mermaid text: anything that could be syntax becomes `#NNN;`."""
    out = []
    for ch in " ".join(str(text).split()):
        keep = ch in _SAFE or (ch.isprintable() and (ch.isalnum() or ord(ch) > 127))
        out.append(ch if keep else f"#{ord(ch)};")
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


def _state_lines(node: Node) -> list[str]:
    title = _SIGN.get(node.mark, "") + node.label
    if node.stage is not None and node.stage != node.label:
        title += f" ({node.stage})"
    lines = [f'    state "{mermaid_escape(title)}" as {node.key}']
    badges = [b for b in node.badges if b != "exit"]
    if badges:
        lines.append(f"    {node.key} : {mermaid_escape(' · '.join(b.upper() for b in badges))}")
    for line in node.lines:
        text = _SIGN.get(line.mark, "") + line.text
        lines.append(f"    {node.key} : {mermaid_escape(text)}")
    if node.count is not None:
        lines.append(f"    {node.key} : {mermaid_escape(f'{node.count} leads now')}")
    return lines


def _edge_line(edge: Edge) -> str:
    text = _SIGN.get(edge.mark, "") + _KIND_WORD.get(edge.kind, "") + edge.label
    if edge.detail:
        text += " " + edge.detail
    if edge.note:
        text += f" ({edge.note})"
    if edge.count is not None:
        text += f" · {edge.count} leads"
        if edge.share is not None:
            text += f" {edge.share:.0%}"
    return f"    {edge.source} --> {edge.target} : {mermaid_escape(text)}"


def to_mermaid(diagram: Diagram) -> str:
    """The diagram as Mermaid text; `[*]` marks the initial and the final stages."""
    diagram = shorten(diagram)
    out = ["---", f"title: {yaml_quote(diagram.title)}", "---", "stateDiagram-v2", "    direction LR"]
    for node in sorted(diagram.nodes, key=lambda n: n.order):
        out.extend(_state_lines(node))
    for node in diagram.nodes:
        if "initial" in node.badges:
            out.append(f"    [*] --> {node.key}")
    for edge in diagram.edges:
        out.append(_edge_line(edge))
    for node in diagram.nodes:
        if "final" in node.badges:
            out.append(f"    {node.key} --> [*]")
    anchor = next((n.key for n in diagram.nodes if "initial" in n.badges), None)
    if diagram.panel and anchor is not None:
        rules = [f"{mermaid_escape(s.title)}: " + "; ".join(mermaid_escape(line.text) for line in s.lines)
                 for s in diagram.panel]
        out.append(f"    note left of {anchor} : " + "<br/>".join(rules))
    elif diagram.panel and not diagram.nodes:  # a shared fragment: its rules are all there is to draw
        out.append(f'    state "{mermaid_escape("Rules for every stage")}" as p_rules')
        for s in diagram.panel:
            for line in s.lines:
                out.append(f"    p_rules : {mermaid_escape(f'{s.title}: {line.text}')}")
    for name, style in _CLASSES.items():
        out.append(f"    classDef {name} {style}")
    for node in diagram.nodes:
        if node.mark:
            out.append(f"    class {node.key} {node.mark}")
        elif "sales-ready" in node.badges:
            out.append(f"    class {node.key} salesready")
        elif node.key == EXIT_KEY:
            out.append(f"    class {node.key} exitnode")
    return "\n".join(out) + "\n"
