"""Events in, validated: one JSON line becomes an `Event`, or a reason to keep it aside.

Validation is strict and explicit because a malformed event must never be
dropped silently nor stop a run: `parse_event` returns either an Event or a
`Malformed` carrying the reason, which the runner stores in quarantine.
"""

from __future__ import annotations

import functools
import json
import math
import re
import time
from dataclasses import dataclass
from datetime import date, datetime
from typing import BinaryIO, Iterable, Iterator

import msgspec

__all__ = ["Event", "Malformed", "parse_event", "parse_time", "format_time", "TYPE_PATTERN",
           "MAX_EVENT_BYTES", "MAX_DEPTH", "MAX_ID_LENGTH", "read_lines"]

#: Times outside [1970, 2200) are refused: a far-future typo would otherwise hold a lead's clock forever.
EARLIEST, LATEST = 0, 7_258_118_400
TYPE_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*$")
#: The longest event line taken (bytes of UTF-8): a longer one is kept aside unread.
MAX_EVENT_BYTES = 1024 * 1024
#: How deeply objects and arrays may nest in one event (the event itself is depth 1).
MAX_DEPTH = 32
#: The longest event id or lead id, in characters.
MAX_ID_LENGTH = 256
#: Control characters (C0, DEL, C1): never part of an id; a terminal would obey them.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class Event:
    """One interaction of one lead. `time` is whole seconds since the epoch (UTC)."""

    __slots__ = ("id", "lead", "type", "time", "data", "attributes")

    def __init__(self, id: str, lead: str, type: str, time: int, data: dict | None = None,
                 attributes: dict | None = None):
        self.id = id
        self.lead = lead
        self.type = type
        self.time = time
        self.data = data if data is not None else {}
        self.attributes = attributes

    def __repr__(self) -> str:
        return f"Event({self.id!r}, {self.lead!r}, {self.type!r}, {format_time(self.time)})"

    def __reduce__(self):
        """Pickled as its fields (the service's writer process receives events read by the server): half the
        cost of the default for a class with slots."""
        return (Event, (self.id, self.lead, self.type, self.time, self.data, self.attributes))

    def to_json(self) -> dict:
        out: dict = {"id": self.id, "lead": self.lead, "type": self.type, "time": format_time(self.time)}
        if self.data:
            out["data"] = self.data
        if self.attributes:
            out["attributes"] = self.attributes
        return out


@dataclass(frozen=True, slots=True)
class Malformed:
    """A line that is not a usable event, and why."""

    reason: str
    raw: str


#: The form producers send most (`2026-03-01T09:30:00Z`): read without building a datetime.
_ZULU = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T([0-9]{2}):([0-9]{2}):([0-9]{2})Z")


@functools.lru_cache(maxsize=4096)
def _midnight(day: str) -> int:
    """Epoch seconds at 00:00 UTC of a `YYYY-MM-DD` date (ValueError if there is no such date)."""
    return (date.fromisoformat(day).toordinal() - _EPOCH_DAY) * 86_400


_EPOCH_DAY = date(1970, 1, 1).toordinal()


def parse_time(text: str) -> int:
    """ISO 8601 with a zone (`Z` or `+02:00`) to epoch seconds; a time without a zone is refused."""
    if type(text) is str and len(text) == 20 and (zulu := _ZULU.fullmatch(text)) is not None:
        hours, minutes, seconds = int(zulu[1]), int(zulu[2]), int(zulu[3])
        if hours < 24 and minutes < 60 and seconds < 60:
            try:
                moment = _midnight(text[:10]) + 3600 * hours + 60 * minutes + seconds
            except ValueError:
                pass  # no such date: the general reading below words the reason
            else:
                if EARLIEST <= moment < LATEST:
                    return moment
    return _parse_time_general(text)


def _parse_time_general(text: str) -> int:
    """parse_time for any form; the quick reading above agrees with it (tests/test_events_fast.py)."""
    if not isinstance(text, str):
        raise ValueError("time must be a string in ISO 8601, e.g. 2026-03-01T09:30:00Z")
    try:
        moment = datetime.fromisoformat(text.strip().replace("z", "Z"))
    except ValueError as err:
        detail = f" ({err})" if "out of range" in str(err) or "must be in" in str(err) else ""
        raise ValueError(f"time {text!r} is not a valid ISO 8601 time{detail} (e.g. 2026-03-01T09:30:00Z)") from None
    if moment.tzinfo is None:
        raise ValueError(f"time {text!r} has no zone; add Z or an offset like +01:00")
    seconds = int(moment.timestamp())
    if not EARLIEST <= seconds < LATEST:
        raise ValueError(f"time {text!r} is out of range (1970 to 2199): a typo, or a placeholder date?")
    return seconds


@functools.lru_cache(maxsize=8192)
def _format_seconds(seconds: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def format_time(seconds: int | float | None) -> str:
    """Epoch seconds to ISO 8601 UTC (a conversion of the given value: no clock is read)."""
    if seconds is None:
        return "-"
    return _format_seconds(int(seconds))


def _field(obj: dict, name: str, kinds, what: str):
    if name not in obj:
        raise ValueError(f"missing field `{name}`")
    value = obj[name]
    if not isinstance(value, kinds) or isinstance(value, bool):
        raise ValueError(f"field `{name}` must be {what}")
    return value


def _no_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if value in (math.inf, -math.inf):
        raise ValueError(f"the number {text[:30]} is too large (a float is at most about 1.8e308)")
    return value


def _object(pairs: list) -> dict:
    """An object whose keys are all different: a repeated key is an error, not "the last one wins"."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set = set()
        repeated = next(key for key, _ in pairs if key in seen or seen.add(key))  # type: ignore[func-returns-value]
        raise ValueError(f"the key {repeated!r} appears twice in one object")
    return obj


#: One decoder for every line (`json.loads` with options builds a new one per call).
_DECODER = json.JSONDecoder(parse_constant=_no_constant, parse_float=_finite, object_pairs_hook=_object)


def _depth(value) -> int:
    """How deeply objects and arrays nest in a parsed value, without recursion."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Iterable = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        deepest = max(deepest, depth)
        if depth > MAX_DEPTH:
            return depth
        stack.extend((child, depth + 1) for child in children)
    return deepest


#: The fast decoder (msgspec, built once): it takes the JSON the reference decoder takes, but lets a repeated key
#: win silently and nests to its own limit, so `_decode` uses its value only when neither can have happened.
_FAST = msgspec.json.Decoder()
#: A key followed by white space before its colon: the fast path's key count would not see it.
_SPACED_KEY = re.compile(r'"[ \t\n\r]')


def _keys(node, depth: int) -> int:
    """How many keys the objects of a parsed value hold (nested ones included), or -1 if it nests deeper than
    MAX_DEPTH (`depth`: the level of `node`; scalars hold none)."""
    kind = type(node)
    if kind is dict:
        children = node.values()
        n = len(node)
    elif kind is list:
        children = node
        n = 0
    else:
        return 0
    if depth > MAX_DEPTH:
        return -1
    for child in children:
        if type(child) is dict or type(child) is list:
            inner = _keys(child, depth + 1)
            if inner < 0:
                return -1
            n += inner
    return n


def _fast(line: str):
    """The line's value by msgspec when it is provably the reference decoder's value, else None.

    Taken only if the value nests at most MAX_DEPTH deep and no key can be repeated: every
    key is a string directly followed by `:` (no white space between), so the line holds at
    most `line.count('":')` keys; when the decoded objects hold that many, none was lost to a
    repeat. Anything else (an error, a doubt) goes to the reference decoder, which gives the
    reason; numbers agree (msgspec refuses 1e400, NaN and Infinity too, and keeps big integers exact)."""
    try:
        value = _FAST.decode(line)
    except (msgspec.DecodeError, RecursionError, UnicodeEncodeError):  # a lone surrogate in a str: the reference judges
        return None
    keys = _keys(value, 1)
    if keys < 0 or keys != line.count('":') or _SPACED_KEY.search(line):
        return None
    return value


def _decode(line: str):
    """The JSON value of a line, or ValueError saying why it is not one we take."""
    value = _fast(line)
    if value is not None:
        return value
    try:
        value = _DECODER.decode(line)
    except json.JSONDecodeError as err:
        raise ValueError(f"not valid JSON ({err.msg.removesuffix(' at')}, column {err.colno})") from None
    except RecursionError:
        raise ValueError(f"nested more than {MAX_DEPTH} levels deep") from None
    except ValueError as err:  # a constant, a float out of range, a repeated key, an integer of 4300+ digits
        reason = "a whole number has more than 4300 digits" if "integer string conversion" in str(err) else err
        raise ValueError(f"not valid JSON ({reason})") from None
    # a cheap test first: a line with few brackets cannot nest deeply
    if line.count("{") + line.count("[") > MAX_DEPTH and _depth(value) > MAX_DEPTH:
        raise ValueError(f"nested more than {MAX_DEPTH} levels deep")
    return value


def _identifier(obj: dict, name: str) -> str:
    value = _field(obj, name, (str, int), "a string or a whole number")
    text = str(value)
    if text == "":
        raise ValueError("`id` and `lead` must not be empty")
    if len(text) > MAX_ID_LENGTH:
        raise ValueError(f"`{name}` is longer than {MAX_ID_LENGTH} characters")
    if _CONTROL.search(text):
        raise ValueError(f"`{name}` contains a control character ({_CONTROL.search(text).group()!r})")  # type: ignore[union-attr]
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(f"`{name}` is not valid Unicode (a lone surrogate escape)") from None
    return text


def read_lines(stream: BinaryIO) -> Iterator[bytes]:
    """The lines of a binary stream, each read with a bound: an endless line never fills the memory.

    A line longer than MAX_EVENT_BYTES is given as its first MAX_EVENT_BYTES + 1
    bytes (which `parse_event` keeps aside as too long); the rest of it is skipped.
    """
    while True:
        line = stream.readline(MAX_EVENT_BYTES + 1)
        if not line:
            return
        if len(line) > MAX_EVENT_BYTES and not line.endswith(b"\n"):
            while True:  # skip the rest of the overlong line, a bounded chunk at a time
                rest = stream.readline(MAX_EVENT_BYTES)
                if not rest or rest.endswith(b"\n"):
                    break
        yield line


def parse_event(line: str | bytes, known_types: frozenset[str] | None = None) -> Event | Malformed:
    """Validate one JSON line. `known_types`: event types some journey reacts to (None: any).

    Any line gives an Event or a Malformed with the reason, never an exception:
    size and nesting are bounded, numbers must be finite, keys unique.
    """
    size = len(line) if isinstance(line, bytes) else len(line) * 4  # a str: an upper bound, counted exactly below
    if size > MAX_EVENT_BYTES and (isinstance(line, bytes) or len(line.encode("utf-8", "replace")) > MAX_EVENT_BYTES):
        shown = line[:200] if isinstance(line, str) else line[:200].decode("utf-8", "replace")
        return Malformed(f"longer than {MAX_EVENT_BYTES // 1024} KiB (an event is at most 1 MiB)", shown + "...")
    if isinstance(line, bytes):
        raw = line
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as err:
            return Malformed(f"not valid UTF-8 (byte {err.start + 1} of the line)", raw.decode("utf-8", "replace"))
    if line.startswith("\ufeff"):
        line = line[1:]  # a byte-order mark at the start of a file is not part of the event
    quick = _quick(line, known_types)
    return quick if quick is not None else _checked(line, known_types)


class _Line(msgspec.Struct, forbid_unknown_fields=True):
    """The usual event line, as msgspec decodes it in one pass (`_quick`); anything else is read by `_checked`."""

    id: str
    lead: str
    type: str
    time: str
    data: dict | None | msgspec.UnsetType = msgspec.UNSET
    attributes: dict | None | msgspec.UnsetType = msgspec.UNSET


_QUICK = msgspec.json.Decoder(_Line)


def _quick(line: str, known_types: frozenset[str] | None) -> Event | None:
    """The Event `_checked` gives for a usual line (string ids, printable ASCII, the six fields at most, a type a
    journey knows), in one typed decode; None for anything else, which `_checked` then reads and words.

    The same proof as `_fast`: no repeated key (the decoded keys number `line.count('":')`), nesting within
    MAX_DEPTH; the other checks are `_checked`'s, on their common case (tests/test_events_fast.py)."""
    try:
        obj = _QUICK.decode(line)
    except Exception:  # a repeated or unknown field, another type, invalid JSON, a lone surrogate: `_checked` judges
        return None
    event_id, lead, kind, data, attributes = obj.id, obj.lead, obj.type, obj.data, obj.attributes
    if not (0 < len(event_id) <= MAX_ID_LENGTH and event_id.isascii() and event_id.isprintable()
            and 0 < len(lead) <= MAX_ID_LENGTH and lead.isascii() and lead.isprintable()):
        return None
    if kind not in known_types if known_types is not None else not TYPE_PATTERN.fullmatch(kind):
        return None
    keys = 4
    if data is msgspec.UNSET or data is None:
        keys += data is None
        data = {}
    else:
        inner = _keys(data, 2)
        if inner < 0:
            return None
        keys += 1 + inner
    if attributes is msgspec.UNSET or attributes is None:
        keys += attributes is None
        attributes = None
    else:
        inner = _keys(attributes, 2)
        if inner < 0:
            return None
        keys += 1 + inner
    if keys != line.count('":') or _SPACED_KEY.search(line):
        return None
    try:
        time = parse_time(obj.time)
    except ValueError:
        return None
    return Event(event_id, lead, kind, time, data, attributes or None)


def _checked(line: str, known_types: frozenset[str] | None) -> Event | Malformed:
    """parse_event for any decoded line: every check, and the reason of a refusal."""
    try:
        obj = _decode(line)
    except ValueError as err:
        return Malformed(str(err), line)
    if not isinstance(obj, dict):
        return Malformed("an event must be a JSON object", line)
    try:
        event_id = _identifier(obj, "id")
        lead = _identifier(obj, "lead")
        kind = _field(obj, "type", str, "a string")
        time = parse_time(_field(obj, "time", str, "an ISO 8601 string"))
        known = known_types is not None and kind in known_types  # a journey's own types are well-formed
        if not known and not TYPE_PATTERN.fullmatch(kind):  # not .match: `$` lets a final newline in
            raise ValueError(f"type {kind[:100]!r} is not an event type like email.opened")
        if known_types is not None and not known:
            import difflib

            guess = difflib.get_close_matches(kind, sorted(known_types), n=1, cutoff=0.75)
            hint = f" (did you mean {guess[0]}?)" if guess else ""
            raise ValueError(f"unknown event type {kind!r}: no journey reacts to it{hint}")
        data = obj.get("data", {})
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ValueError("field `data` must be an object")
        attributes = obj.get("attributes")
        if attributes is not None and not isinstance(attributes, dict):
            raise ValueError("field `attributes` must be an object")
    except ValueError as err:
        return Malformed(str(err), line)
    return Event(event_id, lead, kind, time, data, attributes or None)
