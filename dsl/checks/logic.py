"""Reasoning about conditions and thresholds: can two of them hold at once? Does one imply the other?

Exact satisfiability of arbitrary conditions is not needed: `disjoint` only
answers True when it can prove that no input satisfies both, which is what the
overlap check needs to stay quiet on triggers that are written to exclude each
other; `implies` only answers True when it can prove that every input meeting
one condition meets the other, which is what the shadowing check (C044) needs.
Both follow the engine's comparisons (`engine.conditions`) to the letter: a
number never equals text or `true`, and an absent field meets only negations.
"""

from __future__ import annotations

import math
from typing import TypeGuard

from ..model import AllOf, AnyOf, Compare, Condition, Had, Not, ScoreTrigger

__all__ = ["ByIdentity", "disjoint", "implies", "never_true", "Interval", "threshold_interval", "intersect", "contains"]

Interval = tuple[float, bool, float, bool]  # low, low_closed, high, high_closed


def _numeric(v) -> TypeGuard[int | float]:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _same(v, o) -> bool:
    """Whether a field equal to `v` also equals `o`, as the engine compares them.

    A number equals a number (1 == 1.0); anything else only a value of its own
    type, so `0` is not `false` (although Python says `0 == False`).
    """
    return (_numeric(v) and _numeric(o) and v == o) or (type(v) is type(o) and v == o)


def _identical(a, b) -> bool:
    """Written the same, values of the same type: `== 0` and `== false` are equal in Python, not here.

    Equality first: it is cheap and false for most pairs, and two conditions
    written the same are always equal.
    """
    return type(a) is type(b) and a == b and repr(a) == repr(b)


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


def _as_set(c: Compare) -> tuple | None:
    """The values an `==` or `in` comparison accepts (compared as the engine does, see `_same`)."""
    if c.op == "==":
        return (c.value,)
    if c.op == "in":
        return tuple(c.value)  # type: ignore[arg-type]
    return None


def _compare_disjoint(a: Compare, b: Compare) -> bool:
    if a.field != b.field:
        return False
    sa, sb = _as_set(a), _as_set(b)
    if sa is not None and sb is not None:
        return not any(_same(v, o) for v in sa for o in sb)
    for x, y in ((a, b), (b, a)):
        sx = _as_set(x)
        if sx is not None:
            if y.op in ("!=", "not in"):
                excluded = (y.value,) if y.op == "!=" else tuple(y.value)  # type: ignore[arg-type]
                if all(any(_same(v, o) for o in excluded) for v in sx):
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
        return not (str(a.value).startswith(str(b.value)) or str(b.value).startswith(str(a.value)))  # texts
    if a.op == "ends with" and b.op == "ends with":
        return not (str(a.value).endswith(str(b.value)) or str(b.value).endswith(str(a.value)))  # texts
    if _numeric(a.value) and _numeric(b.value):
        ia, ib = _interval(a.op, float(a.value)), _interval(b.op, float(b.value))
        if ia is not None and ib is not None:
            return intersect(ia, ib) is None
    return False


def disjoint(a: Condition | None, b: Condition | None) -> bool:
    """True only if no input can satisfy both conditions (None means 'always')."""
    if a is None or b is None:
        return False
    if isinstance(a, Not) and _identical(a.part, b) or isinstance(b, Not) and _identical(b.part, a):
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


#: C058 examines at most this many pairs of parts of one `and` (see docs/decisions.md).
MAX_PAIRS = 100_000


class ByIdentity:
    """What the checks computed about an immutable model node, kept by the node's identity.

    Several checks ask the same question about the same node; each answer is computed once.
    The node is held beside its answer, so its id is not reused while it is here; past `limit`
    nodes everything is dropped (a long-lived process loads journey after journey).
    """

    def __init__(self, limit: int):
        self.limit = limit
        self._held: dict[int, tuple[object, object]] = {}

    def get(self, node: object, missing: object = None) -> object:
        held = self._held.get(id(node))
        return held[1] if held is not None and held[0] is node else missing

    def put(self, node: object, value):
        if len(self._held) >= self.limit:
            self._held.clear()
        self._held[id(node)] = (node, value)
        return value


#: never_true's answers: C058 and the liveness of every trigger ask about the same conditions.
_never = ByIdentity(8192)


def never_true(c: Condition | None) -> bool:
    """True only if no input can satisfy the condition (e.g. `plan == "a" and plan == "b"`)."""
    if c is None or isinstance(c, (Compare, Not, Had)):
        return False
    found = _never.get(c)
    return found if isinstance(found, bool) else _never.put(c, _never_true(c))


def _never_true(c: AllOf | AnyOf) -> bool:
    if isinstance(c, AnyOf):
        return all(never_true(p) for p in c.parts)
    parts = c.parts
    if any(never_true(p) for p in parts):
        return True
    return any(disjoint(parts[i], parts[k]) for i, k in _candidate_pairs(parts))


def _reach(c: Condition, fields: set, shapes: set | None, negated: set) -> None:
    """What `disjoint` can meet below `c` (through `and` and `or`, never inside `not`).

    `fields`: the fields compared (two comparisons exclude each other only on one
    field); `shapes`: every condition as written (None: not wanted, nothing is
    negated); `negated`: what a `not` negates (`not x` excludes `x`). An empty
    `and`/`or` may meet anything: field `*`.
    """
    if shapes is not None:
        shapes.add(repr(c))
    if isinstance(c, Compare):
        fields.add(c.field)
    elif isinstance(c, Had):
        pass  # `had x` excludes only `not had x`, which `negated` finds
    elif isinstance(c, Not):
        negated.add(repr(c.part))
    else:
        if not c.parts:
            fields.add("*")
        for p in c.parts:
            _reach(p, fields, shapes, negated)


def _candidate_pairs(parts: tuple[Condition, ...]):
    """The pairs (i, k), i < k, of parts that `disjoint` could find exclusive; the others cannot be.

    Grouping by field and by written shape first keeps a long `and` linear (an
    `and` of 5,000 comparisons of different fields has no candidate pair at all);
    at most MAX_PAIRS pairs are yielded, so a pathological one stays bounded.
    """
    by_field: dict[str, list[int]] = {}
    by_shape: dict[str, list[int]] = {}
    by_negated: dict[str, list[int]] = {}
    for i, p in enumerate(parts):
        fields: set = set()
        negated: set = set()
        _reach(p, fields, None, negated)
        for key, index in ((fields, by_field), (negated, by_negated)):
            for k in key:
                index.setdefault(k, []).append(i)
    if by_negated:  # the shapes are only matched against what a `not` negates (repr: ~20 % of the checks)
        for i, p in enumerate(parts):
            shapes: set = set()
            _reach(p, set(), shapes, set())
            for k in shapes:
                by_shape.setdefault(k, []).append(i)
    wild = by_field.pop("*", [])
    seen: set[tuple[int, int]] = set()

    def pairs():
        for group in by_field.values():
            for x, i in enumerate(group):
                for k in group[x + 1:]:
                    yield i, k
        for shape, nots in by_negated.items():
            for i in nots:
                for k in by_shape.get(shape, ()):
                    yield min(i, k), max(i, k)
        for i in wild:
            for k in range(len(parts)):
                yield min(i, k), max(i, k)

    for pair in pairs():
        if pair[0] == pair[1] or pair in seen:
            continue
        seen.add(pair)
        yield pair
        if len(seen) >= MAX_PAIRS:
            return


# ---- implication -------------------------------------------------------------

_POSITIVE_SET = ("==", "in")
_NEGATIVE_SET = ("!=", "not in")
_ORDERED = (">", ">=", "<", "<=")
_TEXT = {
    "starts with": str.startswith,
    "ends with": str.endswith,
    "contains": lambda s, p: p in s,
}


def _values(c: Compare) -> tuple:
    """The values of an `==`, `!=`, `in` or `not in` comparison."""
    return (c.value,) if c.op in ("==", "!=") else tuple(c.value)  # type: ignore[arg-type]


def _negate(c: Condition) -> Condition:
    """`not c` with the negation pushed inwards where the engine makes it exact."""
    if isinstance(c, Not):
        return c.part
    if isinstance(c, Had):
        return Not(c)
    if isinstance(c, AllOf):
        return AnyOf(tuple(_negate(p) for p in c.parts))
    if isinstance(c, AnyOf):
        return AllOf(tuple(_negate(p) for p in c.parts))
    flipped = {"==": "!=", "!=": "==", "in": "not in", "not in": "in"}.get(c.op)
    if flipped is not None:
        return Compare(c.field, flipped, c.value)
    return Not(c)  # `not n > 5` also holds for an absent field or text: no exact opposite


def _normal(c: Condition) -> Condition:
    """Negations pushed down to comparisons (so `not (a or b)` reads `not a and not b`)."""
    if isinstance(c, Not):
        inner = c.part
        if isinstance(inner, Had) or isinstance(inner, Compare) and inner.op not in _POSITIVE_SET + _NEGATIVE_SET:
            return c
        return _normal(_negate(inner))
    if isinstance(c, AllOf):
        return AllOf(tuple(_normal(p) for p in c.parts))
    if isinstance(c, AnyOf):
        return AnyOf(tuple(_normal(p) for p in c.parts))
    return c


def _ordered_interval(c: Compare) -> Interval | None:
    """The numbers an ordered comparison (`>`, `>=`, `<`, `<=`) lets through."""
    if c.op not in _ORDERED or not _numeric(c.value):
        return None  # a text or a boolean bound: the engine's comparison never holds
    return _interval(c.op, float(c.value))


def _value_meets(v, c: Compare) -> bool:
    """Whether a field equal to `v` (as the engine compares) certainly satisfies the comparison `c`."""
    if c.op in _POSITIVE_SET:
        return any(_same(v, o) for o in _values(c))
    if c.op in _NEGATIVE_SET:
        return not any(_same(v, o) for o in _values(c))
    if c.op in _ORDERED:
        ic = _ordered_interval(c)
        return ic is not None and _numeric(v) and contains(ic, (float(v), True, float(v), True))
    if c.op in _TEXT:
        return isinstance(v, str) and isinstance(c.value, str) and bool(_TEXT[c.op](v, c.value))
    if c.op == "is set":
        return True  # values in the language are never null
    return False  # `matches`: not worth a regex engine here


def _compare_implies(a: Compare, b: Compare) -> bool:
    if a.field != b.field:
        return False
    if _identical(a, b):
        return True
    if a.op in _POSITIVE_SET:
        return all(_value_meets(v, b) for v in _values(a))
    if a.op in _NEGATIVE_SET:
        # an absent field satisfies `a`: only another exclusion can follow from it
        return b.op in _NEGATIVE_SET and all(any(_same(o, v) for v in _values(a)) for o in _values(b))
    # from here on `a` needs the field to be set (a number, or a text for the text tests)
    if b.op == "is set":
        return True
    if a.op in _ORDERED:
        ia, ib = _ordered_interval(a), _ordered_interval(b)
        if ia is None:
            return False
        if ib is not None:
            return contains(ib, ia)
        if b.op in _NEGATIVE_SET:  # a number in `ia` is none of the excluded values
            return not any(_numeric(o) and intersect(ia, (float(o), True, float(o), True)) for o in _values(b))
        return False
    if a.op in _TEXT:
        p = a.value
        if not isinstance(p, str):
            return False
        if b.op in _NEGATIVE_SET:  # the field is a text passing `a`'s test; no excluded value does
            return not any(isinstance(o, str) and _TEXT[a.op](o, p) for o in _values(b))
        if b.op not in _TEXT or not isinstance(b.value, str):
            return False
        q = b.value
        if b.op == "contains":
            return q in p
        return a.op == b.op and _TEXT[b.op](p, q)  # starts with "/pricing" -> starts with "/p"
    return False


def implies(a: Condition | None, b: Condition | None) -> bool:
    """True only if every input satisfying `a` satisfies `b` (None means 'always').

    Sound, not complete: False means "not proven". The engine's semantics are
    followed exactly: an absent field satisfies only `!=`, `not in` and `not ...`.
    """
    if b is None:
        return True
    if a is None:
        return False
    return _implies(_normal(a), _normal(b))


def _implies(a: Condition, b: Condition) -> bool:
    if _identical(a, b):
        return True
    if isinstance(a, AnyOf):  # every alternative must lead to b
        return all(_implies(p, b) for p in a.parts)
    if isinstance(b, AllOf):  # a must give every part of b
        return all(_implies(a, q) for q in b.parts)
    if isinstance(a, AllOf) and any(_implies(p, b) for p in a.parts):
        return True
    if isinstance(b, AnyOf) and any(_implies(a, q) for q in b.parts):
        return True
    if isinstance(b, Not):
        if isinstance(a, Not):  # not x -> not y when y -> x
            return _implies(b.part, a.part)
        return disjoint(a, b.part)
    if isinstance(a, Not) and isinstance(b, Compare) and b.op in _POSITIVE_SET + _NEGATIVE_SET:
        return _implies(_negate(b), a.part)  # contrapositive: not b -> x
    if isinstance(a, Compare) and isinstance(b, Compare):
        return _compare_implies(a, b)
    return False
