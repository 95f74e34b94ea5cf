"""Live counts on a diagram: leads in each stage now, leads that took each edge, leads who left.

The overlay reads plain dicts (leads per stage, moves per edge, and moves per
rule, from the store), so it is tested without a store and works with any store
that can count. The store records the rule of every move ("stage: on x -> y
(line 12)"): with `rule_counts` every trigger gets its own count, matched by the
line it was written on. Without them (or when some move between two stages
names no trigger drawn between them) the triggers between those two stages
share one count, and their labels say so rather than pretend to split it.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import replace

from dsl.model import EXIT, HoldLoop

from .diagram import ANY, ANY_KEY, EXIT_KEY, Diagram, Edge, exit_node, legend_for, node_key, number_edges

__all__ = ["StageCounts", "EdgeCounts", "RuleCounts", "apply_counts", "rule_line"]

StageCounts = dict[str, int]
EdgeCounts = dict[tuple[str, str], int]
RuleCounts = dict[tuple[str, str, str], int]  # (source, target, the store's rule text) -> moves

_LINE = re.compile(r"\(line (\d+)\)\s*$")
_HOLD = "holding loop"
#: How the engine's rule texts of exit rules and goals begin (engine.compiler.EXIT_RULE, GOAL_RULE).
EXIT_RULE = "an exit rule matched"
GOAL_RULE = "goal:"


def rule_line(rule: str) -> tuple[bool, int] | None:
    """(is a holding loop, line) of a rule text the store recorded; None when it names no line."""
    m = _LINE.search(rule or "")
    return None if m is None else (_HOLD in rule, int(m.group(1)))


def _exit_rule(rule: str) -> bool:
    """A move to exit made by an `exit on` rule (older stores named none; newer ones name it, with its line)."""
    return rule_line(rule) is None or (rule or "").startswith(EXIT_RULE)


def _edge_rule(edge: Edge) -> tuple[bool, int] | None:
    ref = edge.ref
    span = getattr(ref, "span", None)
    if span is None or edge.kind in ("hold", "exit-rule"):
        return None
    return isinstance(ref, HoldLoop), span.line


def _per_edge(edges: list[Edge], edge_counts: EdgeCounts, rule_counts: RuleCounts | None) -> dict[int, tuple]:
    """index -> (count, shared_by) for every moving edge."""
    moving = [i for i, e in enumerate(edges) if e.kind != "hold"]
    group = Counter(edges[i].transition for i in moving)
    if rule_counts is None:
        return {i: (edge_counts.get(edges[i].transition, 0), group[edges[i].transition]) for i in moving}
    by_rule = {(edges[i].transition, _edge_rule(edges[i])): i for i in moving if _edge_rule(edges[i])}
    own: Counter = Counter()
    left: Counter = Counter()  # moves whose rule no drawn edge names, by transition
    for (source, target, rule), n in rule_counts.items():
        if rule.startswith(GOAL_RULE):  # a goal's moves, from whatever stage, go to its one edge
            source = ANY
        i = by_rule.get(((source, target), rule_line(rule)))
        if i is None:
            left[(source, target)] += n
        else:
            own[i] += n
    out = {}
    for i in moving:
        transition = edges[i].transition
        siblings = [j for j in moving if edges[j].transition == transition]
        if len(siblings) == 1:
            out[i] = (own[i] + left[transition], 1)
        elif not left[transition]:
            out[i] = (own[i], 1)
        else:  # some moves name no trigger here (another version of the journey): the pair shares one count
            out[i] = (sum(own[j] for j in siblings) + left[transition], len(siblings))
    return out


def apply_counts(diagram: Diagram, stage_counts: StageCounts, edge_counts: EdgeCounts,
                 rule_counts: RuleCounts | None = None, enrolled: int | None = None) -> Diagram:
    """The diagram with `count` on every stage and on Exit (leads who left), `count`/`share` on every
    moving edge, and the number of leads enrolled on the entry edge.

    A lead that left through a global exit rule (a move to "exit" with no drawn
    edge) gets a thin "exit-rule" edge, so every counted move is visible.
    """
    stages = {n.stage for n in diagram.nodes if n.stage is not None}
    edges = list(diagram.edges)
    nodes = list(diagram.nodes)
    drawn = {e.transition for e in edges if e.kind != "hold"}
    exit_rule_moves = Counter()
    for (source, target, rule), n in (rule_counts or {}).items():
        if target == EXIT and _exit_rule(rule):
            exit_rule_moves[source] += n
    for (source, target), count in sorted(edge_counts.items()):
        ruled = source in exit_rule_moves and (source, target) in drawn
        if target == EXIT and source in stages and ((source, target) not in drawn or ruled) and count > 0:
            edges.append(Edge("", node_key(source), EXIT_KEY, "exit-rule", "exit rule"))
    if any(e.target == EXIT_KEY for e in edges) and diagram.node(EXIT_KEY) is None:
        nodes.append(exit_node(max((n.order for n in nodes), default=-1) + 1))

    left = Counter()
    for (source, target), count in edge_counts.items():
        if source != target:
            left[source] += count
    rules = None if rule_counts is None else {
        k: n for k, n in rule_counts.items() if not (k[1] == EXIT and _exit_rule(k[2]))}
    per = _per_edge([e for e in edges if e.kind != "exit-rule"], edge_counts, rules)
    counted = []
    plain = [e for e in edges if e.kind != "exit-rule"]
    for i, e in enumerate(plain):
        if e.kind == "hold":
            counted.append(e)
            continue
        count, shared_by = per[i]
        share = count / left[e.transition[0]] if left[e.transition[0]] else None
        counted.append(replace(e, count=count, share=share, shared_by=shared_by))
    for e in edges:
        if e.kind == "exit-rule":
            source = e.transition[0]
            count = exit_rule_moves[source] if rule_counts is not None else edge_counts.get(e.transition, 0)
            counted.append(replace(e, count=count, share=count / left[source] if left[source] else None))
    nodes = [n if n.key == ANY_KEY else replace(n, count=stage_counts.get(n.stage if n.stage is not None else EXIT, 0))
             for n in nodes]
    edges = number_edges(counted)
    return replace(diagram, nodes=tuple(nodes), edges=edges, counted=True, entry_count=enrolled,
                   legend=legend_for(edges, diagram.mode, counted=True))
