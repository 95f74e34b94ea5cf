"""Reasoning about conditions and thresholds: can two of them hold at once?

Exact satisfiability of arbitrary conditions is not needed: `disjoint` only
answers True when it can prove that no input satisfies both, which is what the
overlap check needs to stay quiet on triggers that are written to exclude each
other.
"""

from __future__ import annotations

import math

from ..model import AllOf, AnyOf, Compare, Condition, Not, ScoreTrigger

__all__ = ["disjoint", "never_true", "Interval", "threshold_interval", "intersect", "contains"]

Interval = tuple[float, bool, float, bool]  # low, low_closed, high, high_closed


def _numeric(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _interval(op: str, value: float) -> Interval | None:
    inf = math.inf
    return {
        ">=": (value, True, inf, False),
        ">": (value, False, inf, False),
        "<=": (-inf, False, value, True),
        "<": (-inf, False, value, False),
        "==": (value, True, value, True),
    }.get(op)


def intersect(a: Interval, b: Interval) -> Interval | None:
    """The common part of two intervals, or None if they share no number."""
    if a[0] > b[0] or (a[0] == b[0] and not a[1]):
        low, low_closed = a[0], a[1]
    else:
        low, low_closed = b[0], b[1]
    if a[2] < b[2] or (a[2] == b[2] and not a[3]):
        high, high_closed = a[2], a[3]
    else:
        high, high_closed = b[2], b[3]
    if low > high or (low == high and not (low_closed and high_closed)):
        return None
    return (low, low_closed, high, high_closed)


def contains(outer: Interval, inner: Interval) -> bool:
    """Whether every number of `inner` is in `outer`."""
    low_ok = outer[0] < inner[0] or (outer[0] == inner[0] and (outer[1] or not inner[1]))
    high_ok = outer[2] > inner[2] or (outer[2] == inner[2] and (outer[3] or not inner[3]))
    return low_ok and high_ok


def threshold_interval(t: ScoreTrigger) -> Interval:
    return _interval(t.op, float(t.value))  # type: ignore[return-value]


def _as_set(c: Compare) -> set | None:
    if c.op == "==":
        return {c.value}
    if c.op == "in":
        return set(c.value)  # type: ignore[arg-type]
    return None


def _compare_disjoint(a: Compare, b: Compare) -> bool:
    if a.field != b.field:
        return False
    sa, sb = _as_set(a), _as_set(b)
    if sa is not None and sb is not None:
        return not (sa & sb)
    for x, y in ((a, b), (b, a)):
        sx = _as_set(x)
        if sx is not None:
            if y.op in ("!=", "not in"):
                excluded = {y.value} if y.op == "!=" else set(y.value)  # type: ignore[arg-type]
                if sx <= excluded:
                    return True
            if y.op in ("starts with", "ends with", "contains") and all(isinstance(v, str) for v in sx):
                test = {
                    "starts with": str.startswith,
                    "ends with": str.endswith,
                    "contains": lambda s, p: p in s,
                }[y.op]
                if not any(test(v, y.value) for v in sx):
                    return True
    if a.op == "starts with" and b.op == "starts with":
        return not (a.value.startswith(b.value) or b.value.startswith(a.value))  # type: ignore[union-attr]
    if a.op == "ends with" and b.op == "ends with":
        return not (a.value.endswith(b.value) or b.value.endswith(a.value))  # type: ignore[union-attr]
    if _numeric(a.value) and _numeric(b.value):
        ia, ib = _interval(a.op, float(a.value)), _interval(b.op, float(b.value))
        if ia is not None and ib is not None:
            return intersect(ia, ib) is None
    return False


def disjoint(a: Condition | None, b: Condition | None) -> bool:
    """True only if no input can satisfy both conditions (None means 'always')."""
    if a is None or b is None:
        return False
    if isinstance(a, Not) and a.part == b or isinstance(b, Not) and b.part == a:
        return True
    if isinstance(a, AllOf):
        return any(disjoint(p, b) for p in a.parts)
    if isinstance(b, AllOf):
        return any(disjoint(a, p) for p in b.parts)
    if isinstance(a, AnyOf):
        return all(disjoint(p, b) for p in a.parts)
    if isinstance(b, AnyOf):
        return all(disjoint(a, p) for p in b.parts)
    if isinstance(a, Compare) and isinstance(b, Compare):
        return _compare_disjoint(a, b)
    return False


def never_true(c: Condition | None) -> bool:
    """True only if no input can satisfy the condition (e.g. `plan == "a" and plan == "b"`)."""
    if c is None or isinstance(c, (Compare, Not)):
        return False
    if isinstance(c, AnyOf):
        return all(never_true(p) for p in c.parts)
    parts = c.parts
    if any(never_true(p) for p in parts):
        return True
    return any(disjoint(a, b) for i, a in enumerate(parts) for b in parts[i + 1:])
