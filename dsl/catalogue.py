"""The event catalogue: the event types producers send and the data fields of each.

A catalogue is a plain text file (docs/language.md, *Event catalogue*), one
event type a line followed by its data fields; `#` starts a comment:

    email.opened        campaign link
    form.submitted      form page.path
    email.unsubscribed

`coltiva check` holds a journey's event types and `where` fields to it (C100,
C101, with "did you mean"); `coltiva run` and the service keep aside events
whose type or data fields it does not list. A field covers what is nested under
it: listing `utm` allows `utm.source`.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path

from . import model as m
from .diagnostics import Diagnostic, Severity
from .errors import SourceError
from .source import read_journey_file

__all__ = ["EventCatalogue", "parse_catalogue", "read_catalogue", "check_journey", "BUILTIN_EVENTS"]

_TYPE = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*$")
_FIELD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*$")
#: Event types every journey understands without a catalogue line (attributes only).
BUILTIN_EVENTS = frozenset({"lead.updated"})
E = Severity.ERROR


@dataclass(frozen=True)
class EventCatalogue:
    """Event types and, for each, the data fields (dotted) it may carry."""

    path: str
    types: dict[str, frozenset[str]] = field(default_factory=dict)
    text: str = ""

    def knows_type(self, event_type: str) -> bool:
        return event_type in self.types or event_type in BUILTIN_EVENTS

    def knows_field(self, event_type: str, name: str) -> bool:
        """A listed field, one nested under a listed field, or one that has listed fields nested under it."""
        listed = self.types.get(event_type, frozenset())
        return any(name == f or name.startswith(f + ".") or f.startswith(name + ".") for f in listed)

    def guess_type(self, event_type: str) -> str | None:
        found = difflib.get_close_matches(event_type, sorted(self.types), n=1, cutoff=0.6)
        return found[0] if found else None

    def guess_field(self, event_type: str, name: str) -> str | None:
        found = difflib.get_close_matches(name, sorted(self.types.get(event_type, ())), n=1, cutoff=0.6)
        return found[0] if found else None

    def problem(self, event_type: str, data: dict) -> str | None:
        """Why an event breaks the catalogue (a quarantine reason), or None if it keeps to it."""
        if event_type in BUILTIN_EVENTS:
            return None
        if event_type not in self.types:
            guess = self.guess_type(event_type)
            hint = f" (did you mean {guess}?)" if guess else ""
            return f"event type {event_type!r} is not in the event catalogue {self.path}{hint}"
        for name in _leaves(data):
            if not self.knows_field(event_type, name):
                guess = self.guess_field(event_type, name)
                hint = f" (did you mean {guess}?)" if guess else ""
                return f"data field {name!r} of {event_type} is not in the event catalogue {self.path}{hint}"
        return None

    def merged(self, other: "EventCatalogue") -> "EventCatalogue":
        """Both catalogues' types, each with the fields either lists (several journeys, several files)."""
        types = dict(self.types)
        for name, fields in other.types.items():
            types[name] = types.get(name, frozenset()) | fields
        return EventCatalogue(f"{self.path}, {other.path}", types)


def _leaves(data: dict, prefix: str = ""):
    """The dotted paths of an event's data down to its values (an object's keys, level by level)."""
    stack = [(data, prefix)]
    while stack:
        node, at = stack.pop()
        for key, value in node.items():
            name = f"{at}{key}"
            if isinstance(value, dict) and value:
                stack.append((value, name + "."))
            else:
                yield name


def parse_catalogue(text: str, path: str) -> tuple[EventCatalogue, list[Diagnostic]]:
    """A catalogue's text to its types and fields, with C102 (a malformed line) and C103 (a type twice)."""
    types: dict[str, frozenset[str]] = {}
    where: dict[str, int] = {}
    found: list[Diagnostic] = []
    for number, line in enumerate(text.splitlines(), 1):
        code = line.split("#", 1)[0]
        words = code.split()
        if not words:
            continue
        column = len(code) - len(code.lstrip()) + 1
        span = m.Span(path, number, column, number, len(code.rstrip()) + 1)
        bad = next((w for w in words[1:] if not _FIELD.match(w)), None)
        if not _TYPE.match(words[0]) or bad is not None:
            what = f"`{words[0]}` is not an event type" if bad is None else f"`{bad}` is not a field name"
            found.append(Diagnostic("C102", E, f"{what} in the event catalogue", span,
                                    "a catalogue line is an event type, then its data fields, separated by spaces "
                                    "(e.g. `form.submitted  form page.path`)"))
            continue
        if words[0] in types:
            found.append(Diagnostic("C103", E, f"event type `{words[0]}` is listed twice in the catalogue", span,
                                    f"keep one line for it (first at line {where[words[0]]}), with all its fields"))
            continue
        types[words[0]] = frozenset(words[1:])
        where[words[0]] = number
    return EventCatalogue(path, types, text), found


def read_catalogue(path: str | Path, span: m.Span | None = None) -> tuple[EventCatalogue | None, list[Diagnostic]]:
    """Read and parse a catalogue file; C104 (on `span`, the line naming it, if any) when it cannot be read."""
    try:
        text = read_journey_file(path)
    except SourceError as err:
        where = span or m.Span(str(path), 1, 1, 1, 2)
        return None, [Diagnostic("C104", E, f"cannot read the event catalogue `{path}`: {err.reason}", where,
                                 "give the path of a text file; in a journey it is relative to the journey's file")]
    return parse_catalogue(text, str(path))


def _uses(j: m.Journey):
    """(event types, condition or None, span) of every rule that names events (`on a or b`: both)."""
    for r in j.scoring:
        yield (r.event,), r.condition, r.span
    for x in j.exits + j.enrollments + j.goals:
        yield x.events, x.condition, x.span
    for s in j.stages:
        for t in s.triggers:
            if isinstance(t, m.EventTrigger):
                yield t.events, t.condition, t.span
    for cond in j.conditions():  # `had EVENT` names an event type too
        for had in m.hads(cond):
            yield (had.event,), None, had.span


def check_journey(j: m.Journey, catalogue: EventCatalogue):
    """C100: an event type the catalogue does not list; C101: a `where` field none of its types carries.

    Fields of the lead (`lead.lifecycle`) are attributes, not event data: the catalogue does not hold them."""
    for events, condition, span in _uses(j):
        unknown = [e for e in events if not catalogue.knows_type(e)]
        for event in unknown:
            guess = catalogue.guess_type(event)
            hint = f"did you mean `{guess}`?" if guess else f"add it to {catalogue.path}, or use a type listed there"
            yield Diagnostic("C100", E, f"event type `{event}` is not in the event catalogue", span, hint)
        listed = [e for e in events if e in catalogue.types]
        if unknown or not listed:
            continue
        for c in m.compares(condition):
            if m.lead_field(c.field) is not None or any(catalogue.knows_field(e, c.field) for e in listed):
                continue
            event = listed[0]
            guess = catalogue.guess_field(event, c.field)
            hint = (f"did you mean `{guess}`?" if guess else
                    f"{event} carries: {', '.join(sorted(catalogue.types[event])) or 'no data fields'}")
            yield Diagnostic("C101", E, f"`{event}` has no data field `{c.field}` in the event catalogue",
                             c.span, hint)
    # a send at a date reads a data field of its event: the catalogue must list it (C088)
    for a in j.anchors():
        if a.event is None or a.event in BUILTIN_EVENTS or not catalogue.knows_type(a.event):
            continue
        if not catalogue.knows_field(a.event, a.field):
            guess = catalogue.guess_field(a.event, a.field)
            hint = (f"did you mean `{guess}`?" if guess else
                    f"{a.event} carries: {', '.join(sorted(catalogue.types[a.event])) or 'no data fields'}")
            yield Diagnostic("C088", E, f"no event declares the date `{a.field}`: `{a.event}` has no such data field "
                             "in the event catalogue", a.span, hint)
