"""Coltiva's event lines posted to the service, validated with pydantic before they reach the writer.

The schema (`ColtivaEvent`) states the rules of docs/events.md that a JSON Schema can
say: the four required fields and their types, ids of 1 to 256 characters without
control characters (or whole numbers of at most 256 digits), the type's pattern, a
time with a zone between 1970 and 2199 (the engine's own `parse_time`), `data` and
`attributes` objects. A request with a line that breaks them is refused whole with
400, each problem with its line and field, and nothing of it is kept.

What a schema cannot say (a key twice in one object, nesting deeper than 32, NaN
or a number beyond a float, an event type no journey reacts to, the catalogue) is
judged by the engine's reader as in a file: such a line is kept aside in the
quarantine with its reason. So the service never refuses a line `coltiva run`
applies, and applies exactly the lines `coltiva run` applies
(tests/test_service_events.py compares them on generated good and hostile lines).

Validation runs on pydantic-core's JSON parser (one pass in Rust). A line that
parser refuses as JSON is read again by Python's `json`, the engine's grammar, so
a line the engine reads (a lone surrogate escape in `data`, say) is never refused.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Any, Union

from pydantic import (AfterValidator, ConfigDict, Discriminator, Field, StrictInt, StrictStr, Tag, TypeAdapter,
                      ValidationError, with_config)
from typing_extensions import NotRequired, TypedDict

from engine.events import MAX_EVENT_BYTES, MAX_ID_LENGTH, TYPE_PATTERN, Malformed, parse_event, parse_time
from engine.runner import ReadLines

from .errors import ServiceError

__all__ = ["ColtivaEvent", "EventId", "EVENT_ADAPTER", "Problem", "InvalidEvents", "problems", "read_events",
           "MAX_PROBLEMS"]

#: How many problems a 400 lists (the count of all of them is given too).
MAX_PROBLEMS = 20
_BOM = "\ufeff".encode()


def _id_kind(value: Any) -> str | None:
    if isinstance(value, str):
        return "text"
    if isinstance(value, int) and not isinstance(value, bool):
        return "number"
    return None


#: An event id or lead id: text without control characters (C0, DEL, C1) or a whole number, 1 to 256 characters.
EventId = Annotated[
    Union[
        Annotated[Annotated[StrictStr, Field(min_length=1, max_length=MAX_ID_LENGTH,
                                             pattern=r"^[^\x00-\x1f\x7f-\x9f]+$")], Tag("text")],
        Annotated[Annotated[StrictInt, Field(ge=-(10 ** (MAX_ID_LENGTH - 1) - 1), le=10 ** MAX_ID_LENGTH - 1)],
                  Tag("number")],
    ],
    Discriminator(_id_kind, custom_error_type="id_type",
                  custom_error_message="must be a string or a whole number"),
]


def _time(text: str) -> str:
    parse_time(text)  # the engine's rule: ISO 8601 with a zone, 1970 to 2199
    return text


@with_config(ConfigDict(strict=True, title="ColtivaEvent"))
class ColtivaEvent(TypedDict):
    """One line of POST /events (docs/events.md): what a lead did, and when."""

    id: Annotated[EventId, Field(description="unique per event; an id seen before is a duplicate")]
    lead: Annotated[EventId, Field(description="the lead's id")]
    type: Annotated[StrictStr, Field(pattern=TYPE_PATTERN.pattern,
                                     description="an event type some journey reacts to, like email.opened")]
    time: Annotated[StrictStr, AfterValidator(_time),
                    Field(description="ISO 8601 with a zone, 1970 to 2199, e.g. 2026-03-01T09:30:00Z")]
    data: NotRequired[Annotated[dict[str, Any] | None, Field(description="what `where` conditions read")]]
    attributes: NotRequired[Annotated[dict[str, Any] | None, Field(description="merged into the lead's profile")]]


EVENT_ADAPTER = TypeAdapter(ColtivaEvent)


@dataclass(frozen=True, slots=True)
class Problem:
    """Why one line of a request is not an event: its line number (from 1), the field (or ""), the problem."""

    line: int
    field: str
    problem: str

    def text(self) -> str:
        return f"line {self.line}" + (f", `{self.field}`" if self.field else "") + f": {self.problem}"


class InvalidEvents(ServiceError):
    """400: lines of a request that are not events; the request is refused whole."""

    def __init__(self, found: list[Problem], total: int):
        shown = "; ".join(p.text() for p in found)
        more = f" (and {total - len(found)} more)" if total > len(found) else ""
        super().__init__(f"{total} line(s) are not Coltiva events, nothing of the request was kept: {shown}{more}")
        self.problems = found
        self.total = total


#: Clearer words for pydantic's messages where its own would show a regular expression.
_WORDS = {
    ("id", "string_pattern_mismatch"): "contains a control character",
    ("lead", "string_pattern_mismatch"): "contains a control character",
    ("type", "string_pattern_mismatch"): "is not an event type like email.opened",
    ("id", "string_unicode"): "is not valid Unicode (a lone surrogate escape)",
    ("lead", "string_unicode"): "is not valid Unicode (a lone surrogate escape)",
}


def _explain(number: int, err: ValidationError) -> list[Problem]:
    out = []
    for e in err.errors(include_url=False, include_context=False, include_input=False):
        loc = [str(p) for p in e["loc"] if p not in ("text", "number")]
        field = ".".join(loc)
        message = _WORDS.get((field, e["type"])) or e["msg"].removeprefix("Value error, ")
        if e["type"] == "model_type" or e["type"] == "dict_type" and not loc:
            message = "an event must be a JSON object"
        out.append(Problem(number, field, message))
    return out


def _line_problems(number: int, line: bytes) -> list[Problem]:
    """The problems of one non-blank line, as the schema sees them (none: it is an event)."""
    if len(line) > MAX_EVENT_BYTES:
        return [Problem(number, "", f"longer than {MAX_EVENT_BYTES // 1024} KiB (an event is at most 1 MiB)")]
    if line.startswith(_BOM):
        line = line[len(_BOM):]  # a byte-order mark is not part of the event (as in a file)
    try:
        EVENT_ADAPTER.validate_json(line)
        return []
    except ValidationError as err:
        if any(e["type"] != "json_invalid" for e in err.errors(include_url=False)):
            return _explain(number, err)
    # pydantic-core's parser refused it as JSON: read it with Python's json (the engine's grammar), which
    # also takes what the engine takes and pydantic-core does not (a lone surrogate escape in a string)
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as err:
        return [Problem(number, "", f"not valid UTF-8 (byte {err.start + 1} of the line)")]
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        return [Problem(number, "", f"not valid JSON ({err.msg}, column {err.colno})")]
    except RecursionError:
        return [Problem(number, "", "nested too deeply")]
    except ValueError as err:  # a whole number of more than 4300 digits
        return [Problem(number, "", f"not valid JSON ({err})")]
    try:
        EVENT_ADAPTER.validate_python(value)
        return []
    except ValidationError as err:
        return _explain(number, err)


def problems(lines: list[bytes]) -> tuple[list[Problem], int]:
    """(the first MAX_PROBLEMS problems of a request's lines, how many there are); blank lines are skipped."""
    found: list[Problem] = []
    total = 0
    for number, line in enumerate(lines, 1):
        if line.strip():
            total += _keep(found, _line_problems(number, line))
    return found, total


def _keep(found: list[Problem], bad: list[Problem]) -> int:
    """Add a line's problems to `found` (the first MAX_PROBLEMS of a request are listed); how many it has."""
    found.extend(bad[:MAX_PROBLEMS - len(found)])
    return len(bad)


def read_events(lines: list[bytes], known_types: frozenset[str]) -> tuple[ReadLines, list[Problem], int]:
    """A request's lines read once: (each non-blank line with what the engine's reader made of it, the first
    MAX_PROBLEMS problems, how many there are).

    Each line is read by `parse_event`, the reader of `coltiva run` (what the writer would do),
    and the writer takes its result as it is: no line is parsed twice. A line the engine reads
    as an event satisfies the schema (every rule of the schema is one of the reader's: tested
    on generated lines), so only a line the reader keeps aside is validated with the schema,
    which tells a line to refuse (400) from one the quarantine keeps, exactly as `problems`.
    """
    read = ReadLines([], [])
    found: list[Problem] = []
    total = 0
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        parsed = parse_event(line, known_types)
        if isinstance(parsed, Malformed):
            bad = _line_problems(number, line)
            if bad:
                total += _keep(found, bad)
                continue
        read.lines.append((number, line))
        read.parsed.append(parsed)
    return read, found, total
