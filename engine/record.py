"""The lead record: everything the engine knows about one lead in one journey.

A small `__slots__` object (no per-lead Machine): the journey's one shared
`transitions.Machine` moves it by setting `state`. Timers are not stored: they
are derived from the record (`engine.timers`), so nothing can fall out of sync.
"""

from __future__ import annotations

import operator
import struct
from array import array
from sys import intern
from typing import Final, TypeVar, cast

from dsl.model import ACTION_KINDS as INTERNAL_KINDS

from .events import format_time
from .jsontext import compact, parse

__all__ = ["Lead", "LeadWide", "StoredLead", "Action", "Strings", "shared", "pack", "unpack", "OUTBOX_KINDS", "EXITED",
           "NOT_ENROLLED", "WAITING", "DONE", "ATTRIBUTES_ONLY"]

#: The machine state of a lead that left the journey (unsubscribed, `-> exit`).
EXITED = "exit"
#: A lead whose first event was an exit event: remembered so that no later event enrolls it.
NOT_ENROLLED = "not_enrolled"
#: A lead known only by attributes so far (no enrolling event yet): kept so fit rules see them.
WAITING = "waiting"
#: Every kind of action in the outbox: the engine's own, then the internal actions a stage may take.
OUTBOX_KINDS = ("stage", "send", "handoff", "exit") + INTERNAL_KINDS
#: States in which nothing more ever happens to a lead.
DONE = frozenset({EXITED, NOT_ENROLLED})
#: The event type that only carries attributes: it never enrolls a lead and is not activity.
ATTRIBUTES_ONLY = "lead.updated"


_T = TypeVar("_T")


def shared(value: _T) -> _T:
    """A string value kept by many records (a stage id, a job title, a country) as one object for all of them:
    records decoded from the store or built from events would otherwise each hold a copy (~50-60 B each)."""
    return cast(_T, intern(cast(str, value))) if type(value) is str else value


class Lead:
    __slots__: Final = (
        "state",     # stage id, or EXITED
        "entered",   # when it entered the current stage (epoch seconds)
        "active",    # its last activity (last event) in this journey
        "score",     # behavioural score as of `score_at` (decays from there)
        "score_at",
        "fit",       # profile points from attributes (never decay)
        "attrs",     # the attribute values fit rules read, by the journey's fit fields, or None
        "sent",      # bit set of content already sent (never twice)
        "hold",      # holding-loop sends in the current stall
        "hold_at",   # time of the last holding-loop send
        "caps",      # per capped score rule: its recent counted times (array), or None
        "sends",     # recent send times (array), for frequency caps, or None
        "seq",       # actions emitted so far (the occurrence in idempotency keys)
        "due",       # next time something is due, or None (cached from engine.timers)
        "clock",     # the lead's own time: its last step
        "gone",      # content ids received under an earlier version that this one does not send, or None
        "acted",     # bit set of the current stage's delayed internal actions done in this stay
        "enrolled",  # when the lead last entered the journey (kept by journeys that re-enter or count
                     # `after D in journey`), or None
        "left",      # None, or in a journey that re-enters: "way" (left by `-> exit`), "rule" (met an exit rule)
        "had",       # bit set of the event types `had` conditions name that the lead has had (0: none)
        "passed",    # bit set of conditional sends passed over in this visit of the stage (0: none)
        # time (docs/engine.md, Time zones): each None unless the journey uses it, so other records
        # store exactly as before
        "zone",      # the lead's IANA zone from its attribute, or None (the journey's default)
        "dates",     # per date anchor of the journey: (date, known since) or None; None if none known
        "marks",     # per content a `since "..."` timer watches: when it was last sent, or None
    )
    #: The time fields, by name in the stored record's trailing object.
    TIME_FIELDS: Final = ("zone", "dates", "marks")

    def __init__(self, state: str, now: int):
        self.state = state
        self.entered = now
        self.active = now
        self.score = 0.0
        self.score_at = now
        self.fit = 0
        self.attrs: tuple | None = None
        self.sent = 0
        self.hold = 0
        self.hold_at: int | None = None
        self.caps: tuple[array | None, ...] | None = None
        self.sends: array | None = None
        self.seq = 0
        self.due: int | None = None
        self.clock = now
        self.gone: tuple[str, ...] | None = None
        self.acted = 0
        self.enrolled: int | None = None
        self.left: str | None = None
        self.had = 0
        self.passed = 0
        self.zone: str | None = None
        self.dates: tuple[tuple[int, int] | None, ...] | None = None
        self.marks: tuple[int | None, ...] | None = None

    def copy(self) -> "Lead":
        """A shallow copy: `attrs` and `caps` are replaced, never mutated, by the step (copy-on-write).

        Built through `__init__` (not `Lead.__new__`): compiled by mypyc, a native class has no other way in."""
        new = Lead(self.state, self.entered)
        new.active = self.active
        new.score = self.score
        new.score_at = self.score_at
        new.fit = self.fit
        new.attrs = self.attrs
        new.sent = self.sent
        new.hold = self.hold
        new.hold_at = self.hold_at
        new.caps = self.caps
        new.sends = self.sends
        new.seq = self.seq
        new.due = self.due
        new.clock = self.clock
        new.gone = self.gone
        new.acted = self.acted
        new.enrolled = self.enrolled
        new.left = self.left
        new.had = self.had
        new.passed = self.passed
        new.zone = self.zone
        new.dates = self.dates
        new.marks = self.marks
        return new

    def to_list(self) -> list:
        """A JSON-ready form for the store; `from_list` is its exact inverse.

        The optional tail (`gone`, `acted`, `enrolled`, `left`, `had`, `passed`, then the time
        fields as one object) is written only up to its last field that differs from its default,
        so a record that uses none of them reads exactly as before, and records stored before a
        field existed read back with its default."""
        caps = None if self.caps is None else [None if c is None else list(c) for c in self.caps]
        out = [
            self.state, self.entered, self.active, self.score, self.score_at, self.fit,
            None if self.attrs is None else list(self.attrs),
            self.sent, self.hold, self.hold_at, caps, None if self.sends is None else list(self.sends),
            self.seq, self.due, self.clock,
        ]
        time = {name: getattr(self, name) for name in self.TIME_FIELDS if getattr(self, name) is not None}
        if self.dates is not None:
            time["dates"] = [None if d is None else list(d) for d in self.dates]
        if self.marks is not None:
            time["marks"] = list(self.marks)
        tail = [list(self.gone) if self.gone else None, self.acted, self.enrolled, self.left,
                self.had, self.passed, time or None]
        defaults = [None, 0, None, None, 0, 0, None]
        while tail and tail[-1] == defaults[len(tail) - 1]:
            tail.pop()
        return out + tail

    @classmethod
    def from_list(cls, data: list) -> "Lead":
        (state, entered, active, score, score_at, fit, attrs, sent, hold, hold_at, caps, sends, seq, due,
         clock) = data[:15]
        new = Lead(intern(state), entered)  # through __init__, as `copy`
        new.active, new.score_at, new.fit, new.sent = active, score_at, fit, sent
        new.hold, new.hold_at, new.seq, new.due, new.clock = hold, hold_at, seq, due, clock
        new.gone = tuple(data[15]) if len(data) > 15 and data[15] else None
        new.acted = int(data[16]) if len(data) > 16 else 0
        new.enrolled = data[17] if len(data) > 17 else None
        new.left = data[18] if len(data) > 18 else None
        new.had = int(data[19]) if len(data) > 19 else 0
        new.passed = int(data[20]) if len(data) > 20 else 0
        time = data[21] if len(data) > 21 and isinstance(data[21], dict) else {}
        found = time.get("zone")
        new.zone = None if found is None else intern(found)
        dates = time.get("dates")
        new.dates = None if dates is None else tuple(None if d is None else (d[0], d[1]) for d in dates)
        marks = time.get("marks")
        new.marks = None if marks is None else tuple(marks)
        new.score = float(score)
        new.attrs = None if attrs is None else tuple([shared(value) for value in attrs])
        new.caps = None if caps is None else tuple(None if c is None else array("q", c) for c in caps)
        new.sends = None if sends is None else array("q", sends)
        return new

    def __eq__(self, other) -> bool:
        """The same as `self.to_list() == other.to_list()` (tests/test_record_eq.py), without building the lists:
        a tick compares every record it advanced with the one it read."""
        if not isinstance(other, Lead):
            return False
        return other is self or (_COMPARED(self) == _COMPARED(other) and (self.gone or None) == (other.gone or None))

    def __repr__(self) -> str:
        return f"Lead(state={self.state!r}, score={self.score:.3f}@{self.score_at}, due={self.due})"


#: Every field of a Lead but `gone` (stored as None when empty), fetched at once for `Lead.__eq__`.
_COMPARED = operator.attrgetter(*(name for name in Lead.__slots__ if name != "gone"))


class LeadWide:
    """What belongs to the lead itself, across every journey: its lead score, its recent sends, its clock.

    It exists only when the journeys run declare lead-wide rules (`lead scoring`,
    `... across journeys`). `clock` is the lead's one time: the latest instant any
    of its journeys was stepped to, so sends across journeys are logged in time order.
    """

    __slots__ = (
        "score",     # lead score as of `score_at` (decays with the `lead scoring` half-life)
        "score_at",
        "caps",      # per capped lead score rule: its recent counted times (array), or None
        "sends",     # recent send times across journeys (array, in time order), or None
        "senders",   # the journey of each of `sends` (explain says who used the cap)
        "clock",
    )

    def __init__(self, now: int):
        self.score = 0.0
        self.score_at = now
        self.caps: tuple[array | None, ...] | None = None
        self.sends: array | None = None
        self.senders: tuple[str, ...] = ()
        self.clock = now

    def copy(self) -> "LeadWide":
        new = LeadWide(self.clock)  # through __init__, as Lead.copy
        new.score, new.score_at, new.caps = self.score, self.score_at, self.caps
        new.sends, new.senders, new.clock = self.sends, self.senders, self.clock
        return new

    def to_list(self) -> list:
        caps = None if self.caps is None else [None if c is None else list(c) for c in self.caps]
        return [self.score, self.score_at, caps, None if self.sends is None else list(self.sends),
                list(self.senders), self.clock]

    @classmethod
    def from_list(cls, data: list) -> "LeadWide":
        score, score_at, caps, sends, senders, clock = data[:6]
        new = LeadWide(clock)
        new.score_at = score_at
        new.score = float(score)
        new.caps = None if caps is None else tuple(None if c is None else array("q", c) for c in caps)
        new.sends = None if sends is None else array("q", sends)
        new.senders = tuple(senders)
        return new

    def __eq__(self, other) -> bool:
        return isinstance(other, LeadWide) and self.to_list() == other.to_list()

    def __repr__(self) -> str:
        return f"LeadWide(score={self.score:.3f}@{self.score_at}, sends={list(self.sends or ())}, clock={self.clock})"


class StoredLead:
    """A lead's record with the journey version it runs on (leads in flight may drain on an older one).

    A value: never changed once made. A plain class rather than a frozen dataclass: compiled,
    it is made without a Python call (a frozen dataclass's `__init__` cost ~4,800 instructions,
    and a runner makes one per record it reads and one per record a step changes)."""

    __slots__ = ("version", "record")

    def __init__(self, version: str, record: Lead) -> None:
        self.version = version
        self.record = record

    @classmethod
    def decode(cls, version: str, record: str) -> "StoredLead":
        """A `leads` row's version and record text (both stores): the version string shared by every lead on it."""
        return StoredLead(intern(version), Lead.from_list(parse(record)))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, StoredLead) and self.version == other.version and self.record == other.record

    def __repr__(self) -> str:
        return f"StoredLead(version={self.version!r}, record={self.record!r})"


class Action:
    """What the engine asks the world to do; `key` makes delivery idempotent downstream."""

    __slots__ = ("kind", "journey", "version", "lead", "time", "key", "data")

    def __init__(self, kind: str, journey: str, version: str, lead: str, time: int, key: str, data: dict):
        self.kind = kind
        self.journey = journey
        self.version = version
        self.lead = lead
        self.time = time
        self.key = key
        self.data = data

    def to_json(self) -> dict:
        return {"key": self.key, "kind": self.kind, "journey": self.journey, "version": self.version,
                "lead": self.lead, "time": format_time(self.time), **self.data}

    def __eq__(self, other) -> bool:
        return isinstance(other, Action) and self.to_json() == other.to_json()

    def __repr__(self) -> str:
        return f"Action({self.kind}, {self.lead}, {self.key})"


# -- the packed record ---------------------------------------------------------------------------
# A lead waiting for its next event is kept by a runner as one `bytes` object (`pack`), not as a `Lead`
# with its tuples and arrays: ~170 B instead of ~660 B, and nothing for the garbage collector to scan. It
# exists only in memory (the store keeps `to_list`'s JSON), so its layout may change between releases:
# a header (layout, score, clock), then 32-bit words: times as offsets from the clock, strings as their
# place in the runner's `Strings`, bit sets in 31-bit words. A record the words cannot hold exactly (a
# time 68 years from its clock, an attribute that is a float or a list, a full string table) is kept as
# the JSON of `to_list` instead: `unpack(pack(r))` is always `r` (tests/test_record_pack.py).
# docs/decisions.md, "The packed record".

#: The first byte of a packed record: its layout.
PACKED_JSON: Final = 0
PACKED_BINARY: Final = 1

#: layout, how many words follow, score, clock; then the words, then the times of caps and sends as 64-bit
#: integers (their arrays' own bytes: copied, never converted one by one)
_HEAD: Final = struct.Struct("<BxHdq")
_HEAD_SIZE: Final = 20
#: a time that is None
_NO_TIME: Final = -(1 << 31)
#: an optional part that is absent (None)
_ABSENT: Final = -1
_WORD: Final = 0x7FFFFFFF

# an attribute value's tag
_NONE: Final = 0
_STR: Final = 1
_INT: Final = 2
_BOOL: Final = 3


class _Unpackable(Exception):
    """A record the words cannot hold exactly: it is kept as JSON."""


#: The layout of n words, by n (struct converts a list of ints twice as fast as array does).
_LAYOUTS: dict[int, struct.Struct] = {}


def _layout(count: int) -> struct.Struct:
    found = _LAYOUTS.get(count)
    if found is None:
        found = _LAYOUTS[count] = struct.Struct(f"<{count}i")
    return found


#: What one more string costs a `Strings` table besides its characters: the string object, its list slot and
#: its dict entry (~100 B for a short one).
_STRING_COST: Final = 100


class Strings:
    """The strings a runner's packed records name (stage ids, attribute values, zones, contents), each once.

    A runner's own, like its cache: a record is unpacked with the table it was packed with. It is
    bounded (`room`, in bytes: each string's characters plus `_STRING_COST`): past that, records with
    new strings are packed as JSON, so hostile attribute values cannot grow it without end."""

    __slots__ = ("items", "places", "room")

    def __init__(self, room: int = 64 << 20):
        self.items: list[str] = []
        self.places: dict[str, int] = {}
        self.room = room

    def place(self, value: object) -> int:
        if type(value) is not str:
            raise _Unpackable
        text = cast(str, value)
        found = self.places.get(text)
        if found is not None:
            return found
        cost = len(text) + _STRING_COST
        if cost > self.room:
            raise _Unpackable
        self.room -= cost
        text = intern(text)
        self.places[text] = len(self.items)
        self.items.append(text)
        return len(self.items) - 1


def pack(rec: Lead, strings: Strings) -> bytes:
    """`rec` as one `bytes` object; `unpack` with the same `strings` gives it back, equal field for field."""
    try:
        return _pack_binary(rec, strings)
    except (_Unpackable, OverflowError, struct.error):
        return bytes([PACKED_JSON]) + compact(rec.to_list()).encode()


def unpack(data: bytes, strings: Strings) -> Lead:
    """The record `pack` packed."""
    if data[0] == PACKED_JSON:
        return Lead.from_list(parse(data[1:].decode()))
    return _unpack_binary(data, strings)


def _int(value: object) -> int:
    if type(value) is not int:
        raise _Unpackable  # a float or a bool where an int is kept: JSON tells them apart
    return cast(int, value)


def _time(value: object, clock: int) -> int:
    if value is None:
        return _NO_TIME
    offset = _int(value) - clock
    if offset == _NO_TIME:
        raise _Unpackable
    return offset


def _bits(parts: list[int], value: object) -> int:
    """A bit set (a non-negative int of any size) as 31-bit words, lowest first, onto `parts`: how many."""
    bits = _int(value)
    if bits < 0 or bits.bit_length() > 127 * 31:
        raise _Unpackable  # 3,937 bits: the count must fit its byte of one word
    count = 0
    while bits:
        parts.append(bits & _WORD)
        bits >>= 31
        count += 1
    return count


def _times(words: list[int], blocks: list[bytes], values: array) -> None:
    if values.typecode != "q":
        raise _Unpackable
    words.append(len(values))
    blocks.append(values.tobytes())


def _pack_binary(rec: Lead, strings: Strings) -> bytes:
    clock = _int(rec.clock)
    score = rec.score
    if type(score) is not float:
        raise _Unpackable
    words = [strings.place(rec.state), _time(_int(rec.entered), clock), _time(_int(rec.active), clock),
             _time(_int(rec.score_at), clock), _int(rec.fit), _int(rec.hold), _time(rec.hold_at, clock), _int(rec.seq),
             _time(rec.due, clock), _time(rec.enrolled, clock)]
    # the four bit sets: one word with the number of words of each (a byte each), then their words
    parts: list[int] = []
    sizes = _bits(parts, rec.sent)
    sizes |= _bits(parts, rec.acted) << 8
    sizes |= _bits(parts, rec.had) << 16
    sizes |= _bits(parts, rec.passed) << 24
    words.append(sizes)
    words.extend(parts)
    if rec.attrs is None:
        words.append(_ABSENT)
    else:
        # how many, a word of tags for each 15 values (2 bits each), then a word per value
        count = len(rec.attrs)
        tags = [0] * ((count + 14) // 15)
        values: list[int] = []
        for n, value in enumerate(rec.attrs):
            kind = type(value)
            if value is None:
                tag, word = _NONE, 0
            elif kind is str:
                tag, word = _STR, strings.place(value)
            elif kind is int:
                tag, word = _INT, cast(int, value)  # beyond 32 bits: struct.error, JSON
            elif kind is bool:
                tag, word = _BOOL, 1 if value else 0
            else:
                raise _Unpackable  # a float, a list or an object: JSON keeps it as it is
            tags[n // 15] |= tag << (2 * (n % 15))
            values.append(word)
        words.append(count)
        words.extend(tags)
        words.extend(values)
    blocks: list[bytes] = []
    if rec.caps is None:
        words.append(_ABSENT)
    else:
        words.append(len(rec.caps))
        for cap in rec.caps:
            if cap is None:
                words.append(_ABSENT)
            else:
                _times(words, blocks, cap)
    if rec.sends is None:
        words.append(_ABSENT)
    else:
        _times(words, blocks, rec.sends)
    # the parts most records lack come last, and absent parts at the end are not written
    last = (5 if rec.marks is not None else 4 if rec.dates is not None else 3 if rec.gone is not None
            else 2 if rec.zone is not None else 1 if rec.left is not None else 0)
    if last >= 1:
        words.append(_ABSENT if rec.left is None else strings.place(rec.left))
    if last >= 2:
        words.append(_ABSENT if rec.zone is None else strings.place(rec.zone))
    if last < 3:
        pass
    elif rec.gone is None:
        words.append(_ABSENT)
    else:
        words.append(len(rec.gone))
        for content in rec.gone:
            words.append(strings.place(content))
    if last < 4:
        pass
    elif rec.dates is None:
        words.append(_ABSENT)
    else:
        words.append(len(rec.dates))
        for known in rec.dates:
            if known is None:
                words.append(_ABSENT)
            else:
                words.append(1)
                words.append(_time(known[0], clock))
                words.append(_time(known[1], clock))
    if rec.marks is not None:
        words.append(len(rec.marks))
        for mark in rec.marks:
            words.append(_time(mark, clock))
    return b"".join([_HEAD.pack(PACKED_BINARY, len(words), score, clock), _layout(len(words)).pack(*words),
                     *blocks])


def _unpack_binary(data: bytes, strings: Strings) -> Lead:
    _, count, score, clock = _HEAD.unpack_from(data, 0)
    words: tuple[int, ...] = _layout(count).unpack_from(data, _HEAD_SIZE)
    block = _HEAD_SIZE + 4 * count  # where the times of caps and sends start
    names = strings.items
    rec = Lead(names[words[0]], clock + words[1])
    rec.active, rec.score_at, rec.score, rec.clock = clock + words[2], clock + words[3], score, clock
    rec.fit, rec.hold, rec.seq = words[4], words[5], words[7]
    rec.hold_at = None if words[6] == _NO_TIME else clock + words[6]
    rec.due = None if words[8] == _NO_TIME else clock + words[8]
    rec.enrolled = None if words[9] == _NO_TIME else clock + words[9]
    sizes = words[10]
    at = 11
    bits: list[int] = []
    for shift in (0, 8, 16, 24):
        count = (sizes >> shift) & 255
        value = 0
        for k in range(count):
            value |= words[at + k] << (31 * k)
        bits.append(value)
        at += count
    rec.sent, rec.acted, rec.had, rec.passed = bits[0], bits[1], bits[2], bits[3]
    count = words[at]
    at += 1
    if count != _ABSENT:
        attrs: list = []
        tags = at
        at += (count + 14) // 15
        for n in range(count):
            tag = (words[tags + n // 15] >> (2 * (n % 15))) & 3
            value = words[at]
            at += 1
            if tag == _STR:
                attrs.append(names[value])
            elif tag == _INT:
                attrs.append(value)
            elif tag == _BOOL:
                attrs.append(value == 1)
            else:
                attrs.append(None)
        rec.attrs = tuple(attrs)
    count = words[at]
    at += 1
    if count != _ABSENT:
        caps: list[array | None] = []
        for _ in range(count):
            size = words[at]
            at += 1
            if size == _ABSENT:
                caps.append(None)
            else:
                caps.append(array("q", data[block:block + 8 * size]))
                block += 8 * size
        rec.caps = tuple(caps)
    count = words[at]
    at += 1
    if count != _ABSENT:
        rec.sends = array("q", data[block:block + 8 * count])
    end = len(words)
    if at == end:
        return rec
    place = words[at]
    rec.left = None if place == _ABSENT else names[place]
    at += 1
    if at == end:
        return rec
    place = words[at]
    rec.zone = None if place == _ABSENT else names[place]
    at += 1
    if at == end:
        return rec
    count = words[at]
    at += 1
    if count != _ABSENT:
        rec.gone = tuple([names[place] for place in words[at:at + count]])
        at += count
    if at == end:
        return rec
    count = words[at]
    at += 1
    if count != _ABSENT:
        dates: list[tuple[int, int] | None] = []
        for _ in range(count):
            if words[at] == _ABSENT:
                dates.append(None)
                at += 1
            else:
                dates.append((clock + words[at + 1], clock + words[at + 2]))
                at += 3
        rec.dates = tuple(dates)
    if at == end:
        return rec
    count = words[at]
    at += 1
    if count != _ABSENT:
        rec.marks = tuple([None if t == _NO_TIME else clock + t for t in words[at:at + count]])
    return rec
