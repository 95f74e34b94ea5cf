"""Live counts on a diagram: leads in each stage now, leads that took each edge.

The overlay reads two plain dicts (leads per stage and moves per edge, from
`Store.stage_counts` and `Store.transition_counts`), so it is tested without a
store and works with any store that can count.
Several triggers between the same two stages share one count (the store counts
moves, not triggers); their labels say so rather than pretend to split it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

from dsl.model import EXIT

from .diagram import EXIT_KEY, Diagram, Edge, exit_node, legend_for, node_key, number_edges

__all__ = ["StageCounts", "EdgeCounts", "apply_counts"]

StageCounts = dict[str, int]
EdgeCounts = dict[tuple[str, str], int]


def apply_counts(diagram: Diagram, stage_counts: StageCounts, edge_counts: EdgeCounts) -> Diagram:
    """The diagram with `count` on every stage and `count`/`share` on every moving edge.

    A lead that left through a global exit rule (a move to "exit" with no drawn
    edge) gets a thin "exit-rule" edge, so every counted move is visible.
    """
    stages = {n.stage for n in diagram.nodes if n.stage is not None}
    edges = list(diagram.edges)
    nodes = list(diagram.nodes)
    drawn = {e.transition for e in edges if e.kind != "hold"}
    for (source, target), count in sorted(edge_counts.items()):
        if target == EXIT and source in stages and (source, target) not in drawn and count > 0:
            edges.append(Edge("", node_key(source), EXIT_KEY, "exit-rule", "exit rule"))
            drawn.add((source, target))
    if any(e.target == EXIT_KEY for e in edges) and diagram.node(EXIT_KEY) is None:
        nodes.append(exit_node(max((n.order for n in nodes), default=-1) + 1))

    left = Counter()
    for (source, target), count in edge_counts.items():
        if source != target:
            left[source] += count
    group = Counter(e.transition for e in edges if e.kind != "hold")
    counted = []
    for e in edges:
        if e.kind == "hold":
            counted.append(e)
            continue
        source, _ = e.transition
        count = edge_counts.get(e.transition, 0)
        share = count / left[source] if left[source] else None
        counted.append(replace(e, count=count, share=share, shared_by=group[e.transition]))
    nodes = [n if n.stage is None else replace(n, count=stage_counts.get(n.stage, 0)) for n in nodes]
    edges = number_edges(counted)
    return replace(diagram, nodes=tuple(nodes), edges=edges, counted=True,
                   legend=legend_for(edges, diagram.mode, counted=True))
