"""Events in, validated: one JSON line becomes an `Event`, or a reason to keep it aside.

Validation is strict and explicit because a malformed event must never be
dropped silently nor stop a run: `parse_event` returns either an Event or a
`Malformed` carrying the reason, which the runner stores in quarantine.
"""

from __future__ import annotations

import functools
import json
import re
import time
from dataclasses import dataclass
from datetime import datetime

__all__ = ["Event", "Malformed", "parse_event", "parse_time", "format_time", "TYPE_PATTERN"]

#: Times outside [1970, 2200) are refused: a far-future typo would otherwise hold a lead's clock forever.
EARLIEST, LATEST = 0, 7_258_118_400
TYPE_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*$")


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

    def to_json(self) -> dict:
        out = {"id": self.id, "lead": self.lead, "type": self.type, "time": format_time(self.time)}
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


def parse_time(text: str) -> int:
    """ISO 8601 with a zone (`Z` or `+02:00`) to epoch seconds; a time without a zone is refused."""
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


def parse_event(line: str | bytes, known_types: frozenset[str] | None = None) -> Event | Malformed:
    """Validate one JSON line. `known_types`: event types some journey reacts to (None: any)."""
    if isinstance(line, bytes):
        try:
            line = line.decode("utf-8")
        except UnicodeDecodeError as err:
            return Malformed(f"not valid UTF-8 (byte {err.start + 1} of the line)", line.decode("utf-8", "replace"))
    if line.startswith("\ufeff"):
        line = line[1:]  # a byte-order mark at the start of a file is not part of the event
    try:
        obj = json.loads(line, parse_constant=_no_constant)
    except json.JSONDecodeError as err:
        return Malformed(f"not valid JSON ({err.msg.removesuffix(' at')}, column {err.colno})", line)
    except ValueError as err:
        return Malformed(f"not valid JSON ({err})", line)
    if not isinstance(obj, dict):
        return Malformed("an event must be a JSON object", line)
    try:
        event_id = _field(obj, "id", (str, int), "a string or a whole number")
        lead = _field(obj, "lead", (str, int), "a string or a whole number")
        kind = _field(obj, "type", str, "a string")
        time = parse_time(_field(obj, "time", str, "an ISO 8601 string"))
        if str(event_id) == "" or str(lead) == "":
            raise ValueError("`id` and `lead` must not be empty")
        for name, value in (("id", event_id), ("lead", lead)):
            try:
                str(value).encode("utf-8")
            except UnicodeEncodeError:
                raise ValueError(f"`{name}` is not valid Unicode (a lone surrogate escape)") from None
        known = known_types is not None and kind in known_types  # a journey's own types are well-formed
        if not known and not TYPE_PATTERN.match(kind):
            raise ValueError(f"type {kind!r} is not an event type like email.opened")
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
    return Event(str(event_id), str(lead), kind, time, data, attributes or None)
