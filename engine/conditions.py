"""Conditions of the model compiled once into plain Python predicates over a dict.

A field is looked up as a flat key first (`"company.size"`), then as a path into
nested objects (`company` -> `size`). Comparisons are strict about types: a
number never equals a string, and an absent field satisfies nothing except
`not ...` and `!=`.

A predicate reads one dict, the condition's *view*: the event's data, plus, for
conditions on the lead (`lead.FIELD`, `had EVENT`), the lead's attributes under
the key ATTRS and the event types it has had under HAD. Those keys are objects,
not strings, so no JSON data can hold or hide them.
"""

from __future__ import annotations

import operator
from typing import Callable, cast

from dsl.model import AllOf, AnyOf, Compare, Condition, Had, Not, lead_field
from dsl.patterns import compile_pattern

__all__ = ["compile_condition", "lookup", "Predicate", "ALWAYS", "MISSING", "ATTRS", "HAD"]

Predicate = Callable[[dict], bool]
#: What `lookup` returns for an absent field (None is a value).
MISSING = object()
#: In a view: the lead's attributes, {field: value} (see engine.step); absent when nothing is known.
ATTRS = object()
#: In a view: the set of event types the lead has had (only those `had` conditions name).
HAD = object()
_NOTHING: dict = {}


def ALWAYS(_data: dict) -> bool:
    return True


def lookup(data: dict, field: str):
    if field in data:
        return data[field]
    if "." not in field:
        return MISSING
    node: object = data  # a dict, then any JSON value down the path (mypyc checks the declared type)
    for part in field.split("."):
        if not isinstance(node, dict) or part not in node:
            return MISSING
        node = node[part]
    return node


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _on_lead(inner: Predicate) -> Predicate:
    """A comparison of `lead.FIELD`: the same test, on the lead's attributes instead of the event's data."""
    return lambda d: inner(d.get(ATTRS, _NOTHING))


def _compare(c: Compare) -> Predicate:
    attribute = lead_field(c.field)
    if attribute is not None:
        return _on_lead(_compare(Compare(attribute, c.op, c.value)))
    field, op, value = c.field, c.op, c.value
    if op == "is set":
        return lambda d: lookup(d, field) not in (MISSING, None)
    if op in ("==", "!="):
        numeric = _is_number(value)

        def equal(d) -> bool:
            v = lookup(d, field)
            if numeric:
                return _is_number(v) and v == value
            return type(v) is type(value) and v == value

        return equal if op == "==" else (lambda d: not equal(d))
    if op in (">", ">=", "<", "<="):
        if not _is_number(value):
            return lambda d: False  # ordering compares numbers only: a text or a boolean bound never holds
        test = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}[op]
        bound = cast(float, value)  # a number: checked just above

        def ordered(d) -> bool:
            v = lookup(d, field)  # Python compares an int and a float exactly, however large the int
            return _is_number(v) and test(v, bound)

        return ordered
    if op in ("in", "not in"):
        options = tuple(value)  # type: ignore[arg-type]

        def member(d) -> bool:
            v = lookup(d, field)
            return any((_is_number(v) and _is_number(o) and v == o) or (type(v) is type(o) and v == o)
                       for o in options)

        return member if op == "in" else (lambda d: not member(d))
    text = str(value)
    if op == "starts with":
        return lambda d: isinstance(v := lookup(d, field), str) and v.startswith(text)
    if op == "ends with":
        return lambda d: isinstance(v := lookup(d, field), str) and v.endswith(text)
    if op == "contains":
        return lambda d: isinstance(v := lookup(d, field), str) and text in v
    if op == "matches":
        found = compile_pattern(text).found  # RE2: linear time whatever the pattern (dsl.patterns)
        return lambda d: isinstance(v := lookup(d, field), str) and found(v)
    raise ValueError(f"unknown operator {op!r}")  # the grammar cannot produce one


def compile_condition(c: Condition | None) -> Predicate:
    if c is None:
        return ALWAYS
    if isinstance(c, Compare):
        return _compare(c)
    if isinstance(c, Had):
        event = c.event
        return lambda d: event in d.get(HAD, ())
    if isinstance(c, Not):
        inner = compile_condition(c.part)
        return lambda d: not inner(d)
    parts = tuple(compile_condition(p) for p in c.parts)
    if isinstance(c, AllOf):
        return lambda d: all(p(d) for p in parts)
    if isinstance(c, AnyOf):
        return lambda d: any(p(d) for p in parts)
    raise TypeError(f"not a condition: {c!r}")
