"""engine.jsontext writes exactly what `json.dumps` writes and reads exactly what `json.loads` reads.

The store's text must not change with the encoder that writes it (a store written
before is read and compared by the same code): the law is equality of the text,
for any JSON value, including what only Python's JSON writes (NaN, the
infinities) and strings no UTF-8 can hold (lone surrogates).
"""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.jsontext import compact, compact_text, parse

SCALARS = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True)
           | st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x10FFFF)))
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=6)
                      | st.dictionaries(st.text(max_size=8), inner, max_size=6), max_leaves=40)


def _same(a, b) -> bool:
    """Equality of decoded JSON values, with NaN equal to itself."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


@settings(max_examples=400, deadline=None)
@given(VALUES)
def test_compact_is_json_dumps(value):
    assert compact(value) == json.dumps(value, separators=(",", ":"))
    assert compact_text(value) == json.dumps(value, ensure_ascii=False, separators=(",", ":"))


@settings(max_examples=400, deadline=None)
@given(VALUES)
def test_parse_is_json_loads(value):
    for text in (compact(value), compact_text(value), json.dumps(value), f"  {compact(value)}\n"):
        assert _same(parse(text), json.loads(text))


@pytest.mark.parametrize("value", ["\ud800", ["a\udfffb", {"\udc00": 1}], float("nan"), [float("inf"), -1e400]])
def test_parse_reads_what_only_python_writes(value):
    """Lone surrogates (written raw by compact_text, escaped by compact), NaN and the infinities: msgspec's
    decoder refuses them, `json.loads` reads them, and so does `parse`."""
    for text in (compact(value), compact_text(value), "1E400"):
        assert _same(parse(text), json.loads(text)), text


@pytest.mark.parametrize("text", ["", "[1,", "[1] x", "{\"a\":}", "nul", "[1]]", "\ufeff[1]"])
def test_parse_refuses_what_json_loads_refuses(text):
    with pytest.raises(json.JSONDecodeError) as expected:
        json.loads(text)
    with pytest.raises(json.JSONDecodeError) as got:
        parse(text)
    assert str(got.value) == str(expected.value)


def test_unknown_types_are_refused_as_json_dumps_refuses_them():
    with pytest.raises(TypeError, match="Object of type set is not JSON serializable"):
        compact([1, {2}])
    with pytest.raises(TypeError, match="Object of type bytes is not JSON serializable"):
        compact_text({"a": b"x"})


def test_subclasses_and_keys_as_json_dumps_writes_them():
    value = {1: True, 2.5: None, None: [False], "k": 10 ** 30}
    assert compact(value) == json.dumps(value, separators=(",", ":"))
