"""A checked journey becomes one `CompiledJourney`: a shared transitions Machine plus lookup tables.

One `Machine(model=None, auto_transitions=False)` per journey version, driven
with `machine.events[name].trigger(ctx)`: a per-lead Machine would cost ~34 KiB
and ~1.3 ms per lead. Stages are states (plus EXITED); every trigger is a named
transition whose conditions read the step context; entry and exit callbacks
send content, hand off to sales and note what is cancelled (see engine.step).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Callable
from dataclasses import dataclass, field

from transitions import Machine

from dsl.diagnostics import has_errors
from dsl.errors import JourneyError
from dsl.formatter import canonical_text, format_condition
from dsl.model import EXIT, EventTrigger, Journey, ScoreTrigger, TimeTrigger, compares, hads, lead_field

from .conditions import Predicate, compile_condition
from .record import EXITED
from .zones import Window

if TYPE_CHECKING:
    from dsl.catalogue import EventCatalogue

__all__ = ["CompiledJourney", "StagePlan", "SendTest", "DatedSend", "ActPlan", "EXIT_RULE", "GOAL_RULE", "LeadRules",
           "lead_rules", "NO_LEAD_RULES", "by_priority", "compile_journey", "journey_version", "version_of",
           "THRESHOLD_TESTS"]

#: How the rule of an `exit` action begins (then which rule, with its line): readers such as the counts
#: overlay tell an exit rule from a trigger to `exit` by it.
EXIT_RULE = "an exit rule matched"
#: How the rule of a move by a journey-level goal begins.
GOAL_RULE = "goal"

THRESHOLD_TESTS = {
    ">=": lambda s, v: s >= v,
    ">": lambda s, v: s > v,
    "<=": lambda s, v: s <= v,
    "<": lambda s, v: s < v,
}


@dataclass
class StagePlan:
    """What one stage does, precomputed so a step is dictionary lookups."""

    id: str
    final: bool
    handoff: bool
    sends: list = field(default_factory=list)        # (offset, bit, kind, content) in declaration order
    events: dict = field(default_factory=dict)       # type -> [(transition name, predicate)]
    thresholds: list = field(default_factory=list)   # (transition name, op, value, reads the lead score)
    timeouts: list = field(default_factory=list)     # (transition name, "idle"|"in stage", seconds)
    hold: tuple | None = None                        # (stall, every, times, kind, content, transition name)
    dated: list = field(default_factory=list)        # DatedSend of sends at a date, in declaration order
    since: list = field(default_factory=list)        # (transition name, mark slot, seconds) of `since "..."`
    tests: dict = field(default_factory=dict)        # content bit -> SendTest, for sends with `if`/`unless`
    acts: list = field(default_factory=list)         # ActPlan of the stage's internal actions, in the order written


@dataclass(frozen=True, slots=True)
class DatedSend:
    """A send at a moment read from a date field: `slot` in the lead's `dates`, signed `offset`."""

    slot: int
    offset: int
    past: str  # "skip" | "send"
    bit: int
    kind: str
    content: str


@dataclass(frozen=True)
class SendTest:
    """The condition of a conditional send: it goes out only if `predicate(view)` differs from `unless`."""

    predicate: Predicate
    unless: bool
    text: str  # as written, for explain


@dataclass(frozen=True)
class ActPlan:
    """One internal action of a stage: `offset` 0 on entry; `bit` marks a delayed one done in this visit."""

    offset: int
    bit: int
    kind: str
    rule: str      # the idempotency key's rule part: `KIND:STAGE#N`
    data: tuple    # (name, value) pairs of the action's data, after `stage`


def _act_data(act) -> tuple:
    if act.kind == "notify":
        return (("to", "owner" if act.to is None else act.to), ("message", act.value))
    if act.kind == "set_field":
        return (("field", act.to), ("value", act.value))
    name = {"task": "title", "tag": "tag", "add_to_list": "list", "webhook": "webhook"}[act.kind]
    return ((name, act.value),)


@dataclass
class CompiledJourney:
    name: str
    version: str
    journey: Journey
    text: str                               # the canonical text: what the store keeps, what `version` hashes
    machine: Machine
    initial: str
    stages: dict[str, StagePlan]
    content_bits: dict[str, int]
    score_rules: dict[str, list]            # type -> [(rule index, predicate, points, cap count, cap seconds, slot)]
    exit_rules: dict[str, list[tuple[int, Predicate]]]   # type -> [(rule index, predicate)]
    enroll_rules: dict[str, list[tuple[int, Predicate]]] | None
    goals: dict[str, list[tuple[str, str, Predicate]]]   # type -> [(transition name, target stage, predicate)]
    had_bits: dict[str, int]                # event types `had` conditions name -> their bit in `Lead.had`
    reads_lead: bool                        # some condition reads the lead (`lead.FIELD`, `had`): views carry it
    fit_rules: list                         # (predicate over attributes, points)
    fit_fields: tuple[str, ...]             # attributes kept: fit fields, then `lead.` fields, in declaration order
    fit_empty: int                          # the fit points of a lead whose profile holds none of those fields
    half_life: int | None
    caps: list                              # (count, seconds)
    cap_slots: int                          # how many score rules have a cap
    event_types: frozenset[str]
    callbacks: object = None                # engine.step.Callbacks, bound at compile time
    zone_default: str = "UTC"               # the zone of a lead without a valid zone attribute
    zone_field: str | None = None           # the attribute that holds a lead's zone
    windows: tuple = ()                     # engine.zones.Window of each `send only` / `quiet hours` line
    anchors: tuple = ()                     # (event type or None for an attribute, field) per date slot
    marks: tuple = ()                       # content ids `since "..."` timers count from, per mark slot
    uses_enrolled: bool = False             # a timer counts `in journey`: records keep their enrollment
    reentry: tuple = ("once", None)         # ("once" | "always" | "per", seconds or None)
    again_bits: int = 0                     # content of `send ... every visit` lines: forgotten on re-entry
    catalogue: EventCatalogue | None = None  # the event catalogue it was checked against, if any
    rules: dict = field(default_factory=dict)  # transition name or "score#i" -> readable rule with its line
    priority: int = 0                       # `priority N`: who goes first when journeys send at once

    def stage_ids(self) -> list[str]:
        return [s.id for s in self.journey.stages]


def journey_version(journey: Journey) -> str:
    """A hash of the journey's canonical text: layout, comments, files and positions do not change it."""
    return version_of(canonical_text(journey))


def version_of(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def _plan_stage(stage, bits: dict[str, int], anchors: tuple, marks: tuple) -> StagePlan:
    plan = StagePlan(stage.id, stage.final, stage.handoff)
    for send in stage.sends:
        if send.condition is not None:
            text = f"{'unless' if send.unless else 'if'} {format_condition(send.condition)}"
            plan.tests[bits[send.content]] = SendTest(compile_condition(send.condition), send.unless, text)
        if send.at is not None:
            plan.dated.append(DatedSend(anchors.index(_anchor_key(send.at)), send.at.seconds, send.at.past,
                                        bits[send.content], send.kind, send.content))
            continue
        offset = 0 if send.after is None else send.after.seconds
        plan.sends.append((offset, bits[send.content], send.kind, send.content))
    for i, t in enumerate(stage.triggers):
        name = f"{stage.id}#{i}"
        if isinstance(t, EventTrigger):
            predicate = compile_condition(t.condition)
            for event in t.events:
                plan.events.setdefault(event, []).append((name, predicate))
        elif isinstance(t, ScoreTrigger):
            plan.thresholds.append((name, t.op, float(t.value), t.lead))
        elif isinstance(t, TimeTrigger) and t.mode == "since":
            plan.since.append((name, marks.index(t.content), t.after.seconds))
        elif isinstance(t, TimeTrigger):
            plan.timeouts.append((name, t.mode, t.after.seconds))
    delayed = 0
    for i, act in enumerate(stage.actions):
        offset = 0 if act.after is None else act.after.seconds
        bit = 0 if offset == 0 else 1 << delayed
        delayed += offset != 0
        plan.acts.append(ActPlan(offset, bit, act.kind, f"{act.kind}:{stage.id}#{i}", _act_data(act)))
    if stage.hold is not None:
        h = stage.hold
        plan.hold = (h.stall_after.seconds, h.every.seconds, h.times, h.kind, h.content, f"{stage.id}#hold",
                     bits[h.content])
    return plan


def _anchor_key(anchor) -> tuple:
    return (anchor.event, anchor.field)


def _window(w) -> Window:
    return Window(w.kind == "only", frozenset(w.days), w.start, w.end)


def _target_state(target: str) -> str:
    return EXITED if target == EXIT else target


def _build_machine(journey: Journey, callbacks) -> Machine:
    states = []
    for s in journey.stages:
        states.append({"name": s.id, "on_enter": [callbacks.on_enter], "on_exit": [callbacks.on_exit]})
    states.append({"name": EXITED, "on_enter": [callbacks.on_exit_journey]})
    assert journey.initial is not None, "a checked journey has a first stage"
    machine = Machine(
        model=None,
        states=states,
        initial=journey.initial.id,
        auto_transitions=False,
        send_event=False,
        ignore_invalid_triggers=False,
    )
    for s in journey.stages:
        for i, t in enumerate(s.triggers):
            name = f"{s.id}#{i}"
            conditions: list[str | Callable[..., bool | None]] = []
            if isinstance(t, EventTrigger) and t.condition is not None:
                predicate = compile_condition(t.condition)
                conditions.append(lambda ctx, p=predicate: p(ctx.view))
            elif isinstance(t, ScoreTrigger):
                test, value = THRESHOLD_TESTS[t.op], float(t.value)
                if t.lead:
                    conditions.append(lambda ctx, test=test, value=value: test(ctx.lead_score_now(), value))
                else:
                    conditions.append(lambda ctx, test=test, value=value: test(ctx.score_now(), value))
            machine.add_transition(name, s.id, _target_state(t.target), conditions=conditions)
        if s.hold is not None:
            machine.add_transition(f"{s.id}#hold", s.id, _target_state(s.hold.then))
    # exit rules remove a lead from any stage but a final one: a finished lead stays where it ended
    not_final: list = [s.id for s in journey.stages if not s.final]
    machine.add_transition("exit", not_final, EXITED)
    # a goal moves a lead from any stage but a final one and its own target (docs/engine.md, Goals)
    for i, g in enumerate(journey.goals):
        sources: list = [s.id for s in journey.stages if not s.final and s.id != g.target]
        if sources:
            machine.add_transition(f"goal#{i}", sources, _target_state(g.target))
    return machine


def _rules_by_type(rules, build) -> dict[str, list]:
    table: dict[str, list] = {}
    for i, rule in enumerate(rules):
        for event in getattr(rule, "events", (rule.event,)):
            table.setdefault(event, []).append(build(i, rule))
    return table


def _score_rules(rules, cap_slots: dict[int, int]) -> dict[str, list]:
    return _rules_by_type(
        rules,
        lambda i, r: (i, compile_condition(r.condition) if r.condition else None, r.points, r.cap_count,
                      r.cap_window.seconds if r.cap_window else None, cap_slots.get(i)),
    )


def _cap_slots(rules) -> dict[int, int]:
    """Each capped score rule gets a slot in a record's `caps` tuple."""
    return {i: slot for slot, i in enumerate(i for i, r in enumerate(rules) if r.cap_count)}


@dataclass(frozen=True)
class LeadRules:
    """The lead-wide rules of a run: one lead score and one cap per lead, whatever the journey.

    Compiled from the journeys that run now (they must agree, C113); a lead on an
    older version of a journey obeys these too.
    """

    score_rules: dict = field(default_factory=dict)  # as CompiledJourney.score_rules
    cap_slots: int = 0
    half_life: int | None = None
    caps: tuple = ()                                 # (count, seconds)
    caps_text: str = ""                              # the cap lines, for explain
    rules: dict = field(default_factory=dict)        # "lead#i" -> readable rule with its line

    @property
    def active(self) -> bool:
        """Whether leads need a lead-wide record at all: without these rules journeys never interact."""
        return bool(self.score_rules or self.caps or self.half_life)


NO_LEAD_RULES = LeadRules()


def lead_rules(journeys) -> LeadRules:
    """The one set of lead-wide rules of the compiled journeys; JourneyError (C113) if they disagree."""
    from dsl.checks.lead import check_lead_agreement

    models = [cj.journey for cj in journeys]
    conflicts = check_lead_agreement(models)
    if conflicts:
        raise JourneyError(conflicts[0].message, conflicts)
    j = next((m for m in models if m.lead_scoring or m.lead_decay or m.lead_caps), None)
    if j is None:
        return NO_LEAD_RULES
    slots = _cap_slots(j.lead_scoring)
    return LeadRules(
        score_rules=_score_rules(j.lead_scoring, slots),
        cap_slots=len(slots),
        half_life=j.lead_decay.half_life.seconds if j.lead_decay else None,
        caps=tuple((c.count, c.window.seconds) for c in j.lead_caps),
        caps_text="; ".join(f"at most {c.count} message{'' if c.count == 1 else 's'} per {c.window} across journeys"
                            for c in j.lead_caps),
        rules={f"lead#{i}": f"lead score: {r.event} {r.points:+d} (line {r.span.line})"
               for i, r in enumerate(j.lead_scoring)},
    )


def by_priority(journeys) -> list:
    """Journeys in the order they act on one lead at one instant: higher `priority` first, then by name.

    The order depends on nothing else (not the order given or stored), so a run is the same however it is split.
    """
    return sorted(journeys, key=lambda cj: (-cj.priority, cj.name))
def _had_bits(journey: Journey) -> dict[str, int]:
    """A bit per event type that a `had` condition names, in order of first mention."""
    types = dict.fromkeys(h.event for c in journey.conditions() for h in hads(c))
    return {event: 1 << n for n, event in enumerate(types)}


def compile_journey(journey: Journey | None, diagnostics=()) -> CompiledJourney:
    """Compile a journey that checked without errors; refuse one that did not (or that did not build)."""
    if journey is None:  # a load that failed: `Loaded.journey` is None
        raise JourneyError("the journey has errors; run `coltiva check` on it", diagnostics)
    if has_errors(diagnostics) or journey.initial is None:
        raise JourneyError(f"journey {journey.name!r} has errors; run `coltiva check` on it", diagnostics)
    from .step import Callbacks

    bits: dict[str, int] = {}
    # send lines first, then holding-loop content (a later `send` line skips what a loop sent): bits
    # of send lines keep the positions records stored before loops had bits
    contents = [send.content for s in journey.stages for send in s.sends]
    contents += [s.hold.content for s in journey.stages if s.hold is not None]
    for content in contents:
        if content not in bits:
            bits[content] = 1 << len(bits)
    # each capped score rule gets a slot in a lead's `caps` tuple
    cap_slots = _cap_slots(journey.scoring)
    callbacks = Callbacks()
    text = canonical_text(journey)
    anchors = tuple(dict.fromkeys(_anchor_key(a) for a in journey.anchors()))
    timers = [t for s in journey.stages for t in s.triggers if isinstance(t, TimeTrigger)]
    marks = tuple(dict.fromkeys(t.content for t in timers if t.mode == "since"))
    cj = CompiledJourney(
        name=journey.name or journey.path,
        version=version_of(text),
        journey=journey,
        text=text,
        machine=_build_machine(journey, callbacks),
        initial=journey.initial.id,
        stages={s.id: _plan_stage(s, bits, anchors, marks) for s in journey.stages},
        content_bits=bits,
        score_rules=_score_rules(journey.scoring, cap_slots),
        cap_slots=len(cap_slots),
        exit_rules=_rules_by_type(journey.exits, lambda i, r: (i, compile_condition(r.condition))),
        enroll_rules=_rules_by_type(journey.enrollments, lambda i, r: (i, compile_condition(r.condition)))
        if journey.enrollments else None,
        goals=_rules_by_type(journey.goals, lambda i, g: (f"goal#{i}", g.target, compile_condition(g.condition))),
        had_bits=_had_bits(journey),
        reads_lead=any(lead_field(c.field) is not None for x in journey.conditions() for c in compares(x))
        or any(True for x in journey.conditions() for _ in hads(x)),
        fit_rules=[(compile_condition(f.condition), f.points) for f in journey.fit],
        fit_fields=tuple(dict.fromkeys(_fit_fields(journey))),
        # a missing field meets `!=` and `not in` (docs/language.md, Conditions): a lead with no
        # profile yet still gets the fit lines its empty profile meets
        fit_empty=sum(f.points for f in journey.fit if compile_condition(f.condition)({})),
        half_life=journey.decay.half_life.seconds if journey.decay else None,
        caps=[(c.count, c.window.seconds) for c in journey.caps],
        event_types=frozenset(journey.event_types()),
        zone_default=journey.time_zone.zone,
        zone_field=journey.time_zone.field,
        windows=tuple(_window(w) for w in journey.windows),
        anchors=anchors,
        marks=marks,
        uses_enrolled=any(t.mode == "in journey" for t in timers),
        priority=journey.priority.value if journey.priority is not None else 0,
    )
    if journey.reentry is not None and journey.reentry.mode != "once":
        cj.reentry = (journey.reentry.mode, journey.reentry.window.seconds if journey.reentry.window else None)
    for s in journey.stages:
        for send in s.sends:
            if send.every_visit:
                cj.again_bits |= bits[send.content]
    cj.rules = _describe_rules(journey)
    callbacks.bind(cj)
    cj.callbacks = callbacks
    return cj


def _describe_rules(journey: Journey) -> dict[str, str]:
    """Readable names for explain: the rule as a marketer wrote it, with its line."""
    def where(span) -> str:
        if span.file not in (journey.path, "<string>") and span.file:
            return f"{Path(span.file).name}:{span.line}"  # a rule from an included file
        return f"line {span.line}"

    def on(rule) -> str:
        return " or ".join(rule.events) + ("" if rule.condition is None else " where ...")

    out = {"exit": EXIT_RULE}
    for i, r in enumerate(journey.exits):
        out[f"exit#{i}"] = f"{EXIT_RULE}: exit on {on(r)} ({where(r.span)})"
    for i, g in enumerate(journey.goals):
        out[f"goal#{i}"] = f"{GOAL_RULE}: on {on(g)} -> {g.target} ({where(g.span)})"
    for i, sr in enumerate(journey.scoring):
        out[f"score#{i}"] = f"{sr.event} {sr.points:+d} ({where(sr.span)})"
    for s in journey.stages:
        for i, t in enumerate(s.triggers):
            if isinstance(t, EventTrigger):
                what = f"on {on(t)}"
            elif isinstance(t, ScoreTrigger):
                what = f"when {'lead ' if t.lead else ''}score {t.op} {t.value:g}"
            else:
                what = f"after {t.after} {t.clock}"
            out[f"{s.id}#{i}"] = f"{s.id}: {what} -> {t.target} (line {t.span.line})"
        if s.hold is not None:
            out[f"{s.id}#hold"] = f"{s.id}: holding loop ended -> {s.hold.then} (line {s.hold.span.line})"
    return out


def _fit_fields(journey: Journey):
    """The attribute fields fit rules and `lead.` conditions read: only these are kept on a lead.

    Fit fields come first, so a journey without `lead.` conditions keeps its records as before."""
    for f in journey.fit:
        for c in compares(f.condition):
            yield c.field
    for x in journey.conditions():
        for c in compares(x):
            attribute = lead_field(c.field)
            if attribute is not None:
                yield attribute

