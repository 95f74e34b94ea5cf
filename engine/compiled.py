"""A compiled journey (`CompiledJourney`) and its parts: named records the step and the timers read by attribute.

engine.compiler builds them once per journey version; nothing here changes after
that, so one plan is shared by every lead of that version. The transition table
(`Transition`) is the one place a transition exists: the `transitions` Machine
gets one transition per row, and the step fires rows. mypyc compiles this module
with the step (engine.NATIVE_MODULES): the classes are native, and the step, which
names them in its annotations, reads each field at a fixed offset.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from typing import Any, Callable, Literal, NamedTuple

from transitions import Machine

from dsl.catalogue import EventCatalogue
from dsl.model import Journey

from .conditions import Predicate
from .zones import Window

__all__ = ["Transition", "TransitionKind", "Send", "DatedSend", "SendTest", "ActPlan", "EventRule", "Threshold",
           "Timeout", "SinceTimer", "Hold", "ScorePlan", "FitPlan", "Cap", "Anchor", "Reentry", "StagePlan",
           "CompiledJourney", "THRESHOLD_TESTS"]

#: What makes a transition fire: an event trigger of its stage, a score threshold, a timer (`after N idle`,
#: `in stage`, `in journey`), a timer since a send, the end of a holding loop, a journey-level goal, an exit rule.
TransitionKind = Literal["event", "threshold", "timeout", "since", "hold", "goal", "exit"]


@dataclass(frozen=True, slots=True)
class Transition:
    """One row of the journey's transition table: a named move from `sources` to `target`.

    The step decides whether a row fires (its condition is evaluated once, by the
    step) and then drives the Machine's transition of the same `id`."""

    id: str                     # "STAGE#i" (the i-th trigger), "STAGE#hold", "goal#i", "exit#i"
    kind: TransitionKind
    sources: tuple[str, ...]    # the stages it leaves from (one, but for goals and exit rules)
    target: str                 # a stage id, or engine.record.EXITED
    rule: str                   # the rule as written, with its line: what `stage` actions and explain name
    line: int


@dataclass(frozen=True, slots=True)
class Send:
    """A send line of a stage: on entry (`offset` 0) or `offset` seconds after it; `bit` marks it sent."""

    offset: int
    bit: int
    kind: str
    content: str


@dataclass(frozen=True, slots=True)
class DatedSend:
    """A send at a moment read from a date field: `slot` in the lead's `dates`, signed `offset`."""

    slot: int
    offset: int
    past: str  # "skip" | "send"
    bit: int
    kind: str
    content: str


@dataclass(frozen=True, slots=True)
class SendTest:
    """The condition of a conditional send: it goes out only if `predicate(view)` differs from `unless`."""

    predicate: Predicate
    unless: bool
    text: str  # as written, for explain


@dataclass(frozen=True, slots=True)
class ActPlan:
    """One internal action of a stage: `offset` 0 on entry; `bit` marks a delayed one done in this visit."""

    offset: int
    bit: int
    kind: str
    rule: str      # the idempotency key's rule part: `KIND:STAGE#N`
    data: tuple    # (name, value) pairs of the action's data, after `stage`


@dataclass(frozen=True, slots=True)
class EventRule:
    """A rule an event type wakes: a stage's event trigger, a goal, an exit or an enroll rule.

    `transition` is what it fires (None for an enroll rule, which only admits a lead)."""

    predicate: Predicate
    transition: Transition | None = None


class Threshold(NamedTuple):
    """`when [lead] score OP VALUE`: `test(score, value)` is the comparison `op` names.

    A named tuple: readers unpack it as (transition, op, value, lead)."""

    transition: Transition
    op: str
    value: float
    lead: bool  # compares the lead score (`lead scoring`), not the journey's

    @property
    def test(self) -> Callable[[float, float], bool]:
        return THRESHOLD_TESTS[self.op]


#: The comparison each threshold operator names (`when score OP VALUE`).
THRESHOLD_TESTS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
}


@dataclass(frozen=True, slots=True)
class Timeout:
    """`after N idle`, `after N in stage` or `after N in journey`."""

    transition: Transition
    mode: str  # "idle" | "in stage" | "in journey"
    seconds: int


@dataclass(frozen=True, slots=True)
class SinceTimer:
    """`after N since "content"`: counts from the send whose time is kept in mark slot `slot`."""

    transition: Transition
    slot: int
    seconds: int


@dataclass(frozen=True, slots=True)
class Hold:
    """A holding loop: after `stall` idle seconds, `content` every `every` seconds, `times` times, then
    `transition` (to the loop's `then`)."""

    stall: int
    every: int
    times: int
    kind: str
    content: str
    bit: int
    transition: Transition


@dataclass(frozen=True, slots=True)
class ScorePlan:
    """A score rule (a journey's `scoring`, or `lead scoring`): points for an event whose condition holds,
    at most `cap_count` per `cap_seconds` (its recent times kept in caps slot `slot`)."""

    predicate: Predicate | None
    points: int
    cap_count: int | None
    cap_seconds: int | None
    slot: int | None
    rule: str  # as explain names it, with its line


@dataclass(frozen=True, slots=True)
class FitPlan:
    """A fit line: `points` while the lead's attributes meet `predicate`."""

    predicate: Predicate
    points: int


class Cap(NamedTuple):
    """A frequency cap: at most `limit` sends per `seconds`."""

    limit: int
    seconds: int


class Anchor(NamedTuple):
    """Where a date slot's value comes from: field `field` of events of type `event`, or of the lead (None)."""

    event: str | None
    field: str


class Reentry(NamedTuple):
    """How a finished lead comes back: "once" (never), "always", or "per" (at most once per `seconds`)."""

    mode: str
    seconds: int | None = None


@dataclass(frozen=True, slots=True)
class StagePlan:
    """What one stage does, precomputed so a step is attribute reads and dictionary lookups."""

    id: str
    final: bool
    handoff: bool
    sends: tuple[Send, ...] = ()                        # in declaration order
    events: dict[str, tuple[EventRule, ...]] = field(default_factory=dict)  # by event type, in declaration order
    thresholds: tuple[Threshold, ...] = ()
    timeouts: tuple[Timeout, ...] = ()
    hold: Hold | None = None
    dated: tuple[DatedSend, ...] = ()                   # sends at a date, in declaration order
    since: tuple[SinceTimer, ...] = ()
    tests: dict[int, SendTest] = field(default_factory=dict)  # content bit -> its test, for `if`/`unless` sends
    acts: tuple[ActPlan, ...] = ()                      # internal actions, in the order written


@dataclass(slots=True)
class CompiledJourney:
    """One journey version, compiled: the plan every lead on that version is stepped with (engine.step)."""

    name: str
    version: str
    journey: Journey
    text: str                               # the canonical text: what the store keeps, what `version` hashes
    machine: Machine                        # built from `transitions`, one Machine transition per row
    transitions: tuple[Transition, ...]     # the transition table: every way a lead moves, each once
    initial: str
    stages: dict[str, StagePlan]
    content_bits: dict[str, int]
    score_rules: dict[str, tuple[ScorePlan, ...]]   # by event type, in declaration order
    exit_rules: dict[str, tuple[EventRule, ...]]    # by event type, in declaration order
    enroll_rules: dict[str, tuple[EventRule, ...]] | None
    goals: dict[str, tuple[EventRule, ...]]         # by event type, in declaration order
    had_bits: dict[str, int]                # event types `had` conditions name -> their bit in `Lead.had`
    reads_lead: bool                        # some condition reads the lead (`lead.FIELD`, `had`): views carry it
    fit_rules: tuple[FitPlan, ...]
    fit_fields: tuple[str, ...]             # attributes kept: fit fields, then `lead.` fields, in declaration order
    fit_empty: int                          # the fit points of a lead whose profile holds none of those fields
    half_life: int | None
    caps: tuple[Cap, ...]
    cap_slots: int                          # how many score rules have a cap
    event_types: frozenset[str]
    callbacks: Any = None                   # engine.step.Callbacks, bound at compile time
    zone_default: str = "UTC"               # the zone of a lead without a valid zone attribute
    zone_field: str | None = None           # the attribute that holds a lead's zone
    windows: tuple[Window, ...] = ()        # each `send only` / `quiet hours` line
    anchors: tuple[Anchor, ...] = ()        # per date slot
    marks: tuple[str, ...] = ()             # content ids `since "..."` timers count from, per mark slot
    uses_enrolled: bool = False             # a timer counts `in journey`: records keep their enrollment
    reentry: Reentry = Reentry("once")
    again_bits: int = 0                     # content of `send ... every visit` lines: forgotten on re-entry
    catalogue: EventCatalogue | None = None  # the event catalogue it was checked against, if any
    rules: dict[str, str] = field(default_factory=dict)  # transition id or "score#i" -> the rule with its line
    priority: int = 0                       # `priority N`: who goes first when journeys send at once

    def stage_ids(self) -> list[str]:
        return [s.id for s in self.journey.stages]
