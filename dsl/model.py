"""The journey model: the one truth that the checker, compiler, engine and renderers read.

Every node is a frozen dataclass. Source positions (`span`) and comments are kept
for messages and for the formatter, but excluded from equality, so that a journey
and its formatted copy compare equal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple, Union

__all__ = [
    "Span",
    "Duration",
    "Compare",
    "AllOf",
    "AnyOf",
    "Not",
    "Had",
    "Condition",
    "LEAD",
    "lead_field",
    "compares",
    "hads",
    "Goal",
    "ScoreRule",
    "Decay",
    "FitRule",
    "ExitRule",
    "EnrollRule",
    "FrequencyCap",
    "TimeZone",
    "SendWindow",
    "DateAnchor",
    "WEEKDAYS",
    "Priority",
    "ContentItem",
    "Include",
    "Send",
    "InternalAction",
    "ACTION_KINDS",
    "Reentry",
    "Catalogue",
    "EventTrigger",
    "ScoreTrigger",
    "TimeTrigger",
    "Trigger",
    "HoldLoop",
    "Stage",
    "Comment",
    "Move",
    "Journey",
    "EXIT",
    "UNIT_SECONDS",
]

#: A trigger or holding loop whose target is EXIT removes the lead from the journey.
EXIT = "exit"

UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400, "week": 604800,
                # months and years are refused (C081: their length varies); these values only let the
                # other checks reason about a journey that already has that error
                "month": 30 * 86400, "year": 365 * 86400}


class Span(NamedTuple):
    """Where a node was written: 1-based line and column, end exclusive.

    A named tuple, not a frozen dataclass: the parser makes one per node (25,000 for a 1,000-stage
    journey) and a frozen dataclass costs five `object.__setattr__` calls to make (~2× the time)."""

    file: str
    line: int
    column: int
    end_line: int
    end_column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


NOWHERE = Span("<generated>", 0, 0, 0, 0)


def _span() -> Span:
    return field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Duration:
    """An amount of a unit, kept as written so the formatter can give it back."""

    amount: int
    unit: str  # singular: minute, hour, day, week
    span: Span = _span()

    @property
    def seconds(self) -> int:
        return self.amount * UNIT_SECONDS[self.unit]

    def __str__(self) -> str:
        return f"{self.amount} {self.unit}{'' if self.amount == 1 else 's'}"


Value = Union[str, int, float, bool, tuple]


@dataclass(frozen=True, slots=True)
class Compare:
    """`field op value` on event data or lead attributes; `field` may be dotted."""

    field: str
    op: str  # == != > >= < <= "starts with" "ends with" contains matches in "not in" "is set"
    value: Value | None
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class AllOf:
    parts: tuple["Condition", ...]
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class AnyOf:
    parts: tuple["Condition", ...]
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Not:
    part: "Condition"
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Had:
    """`had EVENT`: the lead has had an event of this type in this journey (docs/engine.md, *Had*)."""

    event: str
    span: Span = _span()


Condition = Union[Compare, AllOf, AnyOf, Not, Had]

#: A field that starts with this prefix reads the lead's attributes (its profile), not the event's data.
LEAD = "lead."


def lead_field(name: str) -> str | None:
    """`lead.lifecycle` -> `lifecycle` (an attribute of the lead); None for a field of the event's data."""
    return name[len(LEAD):] if name.startswith(LEAD) and len(name) > len(LEAD) else None


def hads(c: "Condition | None"):
    """Every `had EVENT` inside a condition, left to right."""
    if isinstance(c, Had):
        yield c
    elif isinstance(c, (AllOf, AnyOf)):
        for p in c.parts:
            yield from hads(p)
    elif isinstance(c, Not):
        yield from hads(c.part)


def compares(c: "Condition | None"):
    """Every comparison inside a condition, left to right."""
    if c is None:
        return
    if isinstance(c, Compare):
        yield c
    elif isinstance(c, (AllOf, AnyOf)):
        for p in c.parts:
            yield from compares(p)
    elif isinstance(c, Not):
        yield from compares(c.part)


@dataclass(frozen=True, slots=True)
class ScoreRule:
    """Points for an event; `cap_count` per `cap_window` limits how often it counts."""

    event: str
    points: int
    condition: Condition | None = None
    cap_count: int | None = None
    cap_window: Duration | None = None
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Decay:
    half_life: Duration
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class FitRule:
    """Profile points: they follow the lead's attributes and never decay."""

    condition: Condition
    points: int
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class ExitRule:
    event: str
    condition: Condition | None = None
    span: Span = _span()
    #: further event types after `or` (`exit on a or b`): the rule takes any of them
    more: tuple[str, ...] = ()

    @property
    def events(self) -> tuple[str, ...]:
        return (self.event, *self.more)


@dataclass(frozen=True, slots=True)
class EnrollRule:
    event: str
    condition: Condition | None = None
    span: Span = _span()
    #: further event types after `or` (`exit on a or b`): the rule takes any of them
    more: tuple[str, ...] = ()

    @property
    def events(self) -> tuple[str, ...]:
        return (self.event, *self.more)


@dataclass(frozen=True, slots=True)
class FrequencyCap:
    count: int
    window: Duration
    span: Span = _span()


#: Day names as written in send windows, Monday first (Python's `weekday()` numbering).
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True, slots=True)
class TimeZone:
    """`time zone "Europe/Rome"` or `time zone from FIELD [default "Europe/Rome"]`.

    `field` names the lead attribute holding an IANA zone name; `default` is the
    zone of a lead without one (None: UTC)."""

    default: str | None = None
    field: str | None = None
    span: Span = _span()

    @property
    def zone(self) -> str:
        return self.default or "UTC"


@dataclass(frozen=True, slots=True)
class SendWindow:
    """`send only DAYS [HH:MM-HH:MM]` (kind "only") or `quiet hours [DAYS] [HH:MM-HH:MM]` (kind "quiet").

    Days are weekday numbers (0 = Monday), sorted; `start`/`end` are minutes of the
    local day, `end <= start` crossing midnight into the next day; None is the whole day."""

    kind: str  # "only" | "quiet"
    days: tuple[int, ...] = (0, 1, 2, 3, 4, 5, 6)
    start: int | None = None
    end: int | None = None
    span: Span = _span()

    @property
    def whole_day(self) -> bool:
        return self.start is None

    def hours_text(self) -> str:
        if self.start is None or self.end is None:
            return ""
        return f"{self.start // 60:02d}:{self.start % 60:02d}-{self.end // 60:02d}:{self.end % 60:02d}"

    def days_text(self) -> str:
        """The days as the formatter writes them: `every day`, `weekdays`, `weekends` or `mon,wed-fri`."""
        days = self.days
        if days == (0, 1, 2, 3, 4, 5, 6):
            return "every day"
        if days == (0, 1, 2, 3, 4):
            return "weekdays"
        if days == (5, 6):
            return "weekends"
        runs: list[list[int]] = []
        for d in days:
            if runs and runs[-1][-1] == d - 1:
                runs[-1].append(d)
            else:
                runs.append([d])
        return ",".join(WEEKDAYS[r[0]] if len(r) == 1 else f"{WEEKDAYS[r[0]]}-{WEEKDAYS[r[-1]]}" for r in runs)

    def __str__(self) -> str:
        head = "send only" if self.kind == "only" else "quiet hours"
        days = "" if self.kind == "quiet" and self.days == (0, 1, 2, 3, 4, 5, 6) and self.start is not None \
            else f" {self.days_text()}"
        hours = f" {self.hours_text()}" if self.start is not None else ""
        return f"{head}{days}{hours}"


@dataclass(frozen=True, slots=True)
class DateAnchor:
    """`N UNIT before|after FIELD of EVENT` (or `... of lead` for an attribute): a moment from a date field.

    `event` is None for a lead attribute. `past` says what happens when the moment
    is already past when it becomes known: "skip" (never sent) or "send" (at once)."""

    offset: "Duration"
    direction: str  # "before" | "after"
    field: str
    event: str | None = None
    past: str = "skip"
    span: Span = _span()

    @property
    def seconds(self) -> int:
        """The signed offset from the date: negative before it."""
        return -self.offset.seconds if self.direction == "before" else self.offset.seconds

    @property
    def source(self) -> str:
        return f"{self.field} of {self.event if self.event is not None else 'lead'}"

    def __str__(self) -> str:
        past = " if past send now" if self.past == "send" else ""
        return f"{self.offset} {self.direction} {self.source}{past}"


@dataclass(frozen=True, slots=True)
class Priority:
    """`priority N`: when journeys want to send to one lead at once, the higher N goes first."""

    value: int
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class ContentItem:
    kind: str
    id: str
    title: str | None = None
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Include:
    path: str
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Send:
    """Content sent in a stage: on entry (`after` and `at` None), a delay after entry, or at a date.

    With `condition`, it is sent only if the condition holds (`if`) or does not
    (`unless`) when the send would go out; the condition reads the lead (`lead.` fields, `had`).
    """

    kind: str
    content: str
    after: Duration | None = None
    span: Span = _span()
    condition: Condition | None = None
    unless: bool = False
    at: DateAnchor | None = None
    #: `every visit`: a lead that re-enters the journey may receive this content again (once per visit)
    every_visit: bool = False


#: The internal actions a stage may take, as the outbox names their kinds.
ACTION_KINDS = ("notify", "task", "set_field", "tag", "add_to_list", "webhook")


@dataclass(frozen=True, slots=True)
class InternalAction:
    """Something done for the team, not sent to the lead: on entry (`after` None) or a delay after entry.

    `value` is the message (notify), title (task), tag, list or webhook name, or the value
    a field is set to; `to` is the user notified (None: the lead's owner) or the field set.
    """

    kind: str  # one of ACTION_KINDS
    value: "Value"
    to: str | None = None
    after: Duration | None = None
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Reentry:
    """Whether a lead that left or finished may enter again: "once" (never), "always", or "per" `window`."""

    mode: str  # "once" | "always" | "per"
    window: Duration | None = None
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Catalogue:
    """`catalogue "PATH"`: the event catalogue this journey is checked against (relative to its file)."""

    path: str
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class EventTrigger:
    """`on EVENT [or EVENT…] [where …] -> TARGET`, in a stage, or at the top level as a goal."""

    event: str
    target: str
    condition: Condition | None = None
    span: Span = _span()
    target_span: Span = _span()
    #: further event types after `or`: the trigger takes any of them
    more: tuple[str, ...] = ()

    @property
    def events(self) -> tuple[str, ...]:
        return (self.event, *self.more)


#: A journey-level goal (`on EVENT -> STAGE` at the top level) has the form of an event trigger.
Goal = EventTrigger


@dataclass(frozen=True, slots=True)
class ScoreTrigger:
    op: str  # >= > <= <
    value: int | float
    target: str
    span: Span = _span()
    target_span: Span = _span()
    #: `when lead score ...`: compares the lead score shared by every journey (`lead scoring`)
    lead: bool = False

    @property
    def upward(self) -> bool:
        return self.op in (">=", ">")


@dataclass(frozen=True, slots=True)
class TimeTrigger:
    """`after N idle`, `after N in stage` (since entry), `after N in journey` (since enrollment)
    or `after N since "content"` (since that content was last sent; `content` names it)."""

    after: Duration
    mode: str  # "idle" | "in stage" | "in journey" | "since"
    target: str
    span: Span = _span()
    target_span: Span = _span()
    content: str | None = None

    @property
    def clock(self) -> str:
        """How the timer reads in the language, after its duration."""
        from .builder import encode_string  # the builder imports this module

        return f"since {encode_string(self.content or '')}" if self.mode == "since" else self.mode


Trigger = Union[EventTrigger, ScoreTrigger, TimeTrigger]


@dataclass(frozen=True, slots=True)
class HoldLoop:
    """Keep-warm content for a stalled lead, then a way out (`then` is a stage or EXIT)."""

    stall_after: Duration
    every: Duration
    kind: str
    content: str
    times: int
    then: str
    span: Span = _span()
    target_span: Span = _span()


@dataclass(frozen=True, slots=True)
class Stage:
    id: str
    label: str | None = None
    initial: bool = False
    final: bool = False
    handoff: bool = False
    sends: tuple[Send, ...] = ()
    triggers: tuple[Trigger, ...] = ()
    hold: HoldLoop | None = None
    span: Span = _span()
    id_span: Span = _span()
    #: internal actions (notify, task, set, tag, list, webhook), in the order written
    actions: tuple[InternalAction, ...] = ()
    #: (flag, span) for each `initial`/`final`/`handoff` line: the formatter keeps their comments.
    flag_spans: tuple[tuple[str, Span], ...] = field(default=(), compare=False, repr=False)

    @property
    def title(self) -> str:
        """What people read: the label, or the id when there is none (or it is blank)."""
        return self.label if self.label and self.label.strip() else self.id

    def targets(self) -> list[str]:
        """Every stage (or EXIT) this stage can lead to, in declaration order."""
        out = [t.target for t in self.triggers]
        if self.hold is not None:
            out.append(self.hold.then)
        return out


@dataclass(frozen=True, slots=True)
class Move:
    """A line of the `moves` block: where leads in flight go when the journey changes under them.

    `stage OLD -> NEW` sends leads still in a stage this version no longer has
    (renamed or removed) to NEW (a stage or EXIT); `content "OLD" -> "NEW"` says a
    lead that received OLD has received NEW (a renamed content id is not resent).
    """

    kind: str  # "stage" | "content"
    old: str
    new: str
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Comment:
    line: int
    column: int
    text: str  # including the leading '#'


@dataclass(frozen=True, slots=True)
class Journey:
    """One journey file, or after `load`, the file with its includes merged in."""

    name: str | None
    stages: tuple[Stage, ...] = ()
    scoring: tuple[ScoreRule, ...] = ()
    decay: Decay | None = None
    fit: tuple[FitRule, ...] = ()
    exits: tuple[ExitRule, ...] = ()
    enrollments: tuple[EnrollRule, ...] = ()
    caps: tuple[FrequencyCap, ...] = ()
    zones: tuple[TimeZone, ...] = ()
    windows: tuple[SendWindow, ...] = ()
    contents: tuple[ContentItem, ...] = ()
    includes: tuple[Include, ...] = ()
    moves: tuple[Move, ...] = ()
    #: lead-wide rules (docs/language.md, "One lead across journeys"): the same in every journey that declares them
    lead_scoring: tuple[ScoreRule, ...] = ()
    lead_decay: Decay | None = None
    lead_caps: tuple[FrequencyCap, ...] = ()
    priority: Priority | None = None
    #: journey-level goals, in the order written (tried before the stage's own triggers)
    goals: tuple[EventTrigger, ...] = ()
    reentry: Reentry | None = None
    catalogue: Catalogue | None = None
    path: str = field(default="<string>", compare=False)
    span: Span = _span()
    comments: tuple[Comment, ...] = field(default=(), compare=False, repr=False)
    #: (kind, span) for each `scoring`/`fit`/`content` header line: the formatter keeps their comments.
    block_spans: tuple[tuple[str, Span], ...] = field(default=(), compare=False, repr=False)

    def stage(self, stage_id: str) -> Stage | None:
        for s in self.stages:
            if s.id == stage_id:
                return s
        return None

    @property
    def initial(self) -> Stage | None:
        for s in self.stages:
            if s.initial:
                return s
        return None

    def conditions(self):
        """Every `where` and fit condition of the journey (None where a rule has none)."""
        for r in self.scoring + self.lead_scoring:
            yield r.condition
        for f in self.fit:
            yield f.condition
        for r in self.exits + self.enrollments + self.goals:
            yield r.condition
        for s in self.stages:
            for t in s.triggers:
                if isinstance(t, EventTrigger):
                    yield t.condition
            for x in s.sends:
                if x.condition is not None:
                    yield x.condition

    def event_types(self) -> set[str]:
        """Every event type the journey reacts to."""
        types = {r.event for r in self.scoring + self.lead_scoring}
        for r in self.exits + self.enrollments + self.goals:
            types.update(r.events)
        for s in self.stages:
            for t in s.triggers:
                if isinstance(t, EventTrigger):
                    types.update(t.events)
        for c in self.conditions():
            types.update(h.event for h in hads(c))
        return types

    @property
    def time_zone(self) -> TimeZone:
        """The journey's zone rule (the first `time zone` line), or UTC for every lead."""
        return self.zones[0] if self.zones else TimeZone()

    def anchors(self):
        """Every date anchor of a send, stage by stage."""
        for s in self.stages:
            for send in s.sends:
                if send.at is not None:
                    yield send.at
