"""The JSON text of stored records and actions: `json.dumps`'s text and `json.loads`'s values, faster.

The store encodes every record it writes and every action, and decodes every
record it reads, so these run once per event and once per due lead.
`json.dumps(obj, separators=(",", ":"))` builds a `JSONEncoder` and a C encoder
on every call (about two thirds of its cost on a lead record): here the C
encoder is built once, and the text is exactly `json.dumps`'s. Text is read by
msgspec's decoder (about twice as fast as `json.loads` on a record), and
`json.loads` takes over for what msgspec refuses, so the values are exactly
`json.loads`'s (tests/test_jsontext.py). Stores are unchanged.

No check for reference cycles: what is encoded here is a record's `to_list()`
or an action's data, made of JSON values read or built by the engine, which
cannot refer to themselves.
"""

from __future__ import annotations

import json
from json import encoder as _encoder
from typing import Any, Callable

import msgspec

__all__ = ["compact", "compact_text", "parse"]


def _unknown(obj: Any) -> Any:
    raise TypeError(f"Object of type {obj.__class__.__name__} is not JSON serializable")


def _encoder_for(ensure_ascii: bool) -> Callable[[Any], str]:
    """`json.dumps(obj, ensure_ascii=..., separators=(",", ":"))`, with its C encoder built once."""
    make = getattr(_encoder, "c_make_encoder", None)  # CPython's C encoder (not in the type stubs)
    if make is None:  # no C accelerator (not CPython): the standard path
        return json.JSONEncoder(ensure_ascii=ensure_ascii, separators=(",", ":")).encode
    strings = _encoder.encode_basestring_ascii if ensure_ascii else _encoder.encode_basestring
    # (markers, default, encoder, indent, key separator, item separator, sort_keys, skipkeys, allow_nan)
    run = make(None, _unknown, strings, None, ":", ",", False, False, True)

    def encode(obj: Any) -> str:
        return "".join(run(obj, 0))

    return encode


#: `json.dumps(obj, separators=(",", ":"))`: ASCII text (a record, a lead-wide record).
compact: Callable[[Any], str] = _encoder_for(ensure_ascii=True)
#: `json.dumps(obj, ensure_ascii=False, separators=(",", ":"))`: an action's data.
compact_text: Callable[[Any], str] = _encoder_for(ensure_ascii=False)

_decode = msgspec.json.Decoder().decode


def parse(text: str) -> Any:
    """`json.loads(text)`, read by msgspec's decoder (about twice as fast on a lead record): it gives the
    same values for any JSON it accepts (tests/test_jsontext.py); what it refuses and `json.loads` reads
    (NaN, the infinities, 1E400, lone surrogates), or what neither reads, is handed to `json.loads`, which
    reads it or raises its usual error."""
    if type(text) is not str:
        return json.loads(text)
    try:
        return _decode(text)
    except (msgspec.MsgspecError, UnicodeError):  # a lone surrogate in the text itself: no UTF-8 holds it
        return json.loads(text)
