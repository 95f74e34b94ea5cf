"""Journey diagrams: one renderer-neutral Diagram, drawn by Graphviz, Mermaid and the review page.

journey model ──build_diagram──▶ Diagram ──(apply_counts | diff marks)──▶ dot / mermaid / review
"""

from .diagram import Diagram, Edge, Line, Node, Section, build_diagram
from .diff import Change, JourneyDiff, diff_journeys
from .diff_diagram import build_diff_diagram
from .dot import FORMATS, render_bytes, to_dot, to_graphviz
from .mermaid import mermaid_escape, to_mermaid
from .overlay import apply_counts
from .review import review_html

__all__ = [
    "Diagram",
    "Edge",
    "Line",
    "Node",
    "Section",
    "build_diagram",
    "Change",
    "JourneyDiff",
    "diff_journeys",
    "build_diff_diagram",
    "FORMATS",
    "render_bytes",
    "to_dot",
    "to_graphviz",
    "mermaid_escape",
    "to_mermaid",
    "apply_counts",
    "review_html",
]
